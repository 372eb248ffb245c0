"""Losing a node loses nothing (issue 17), through the official client in high-availability
mode on the tutorial's cluster with its compute nodes: a session carries on when the node
under it is killed mid-script, and appends go on with a data node killed, whose replicas catch
up when it returns."""
import os
import threading
import time

import dolphindb as ddb
import pytest

from local_cluster import IPS, cluster, login, script

SITES = [f"{ip}:{port}" for port in (8803, 8802) for ip in IPS]
ALIASES = [f"{kind}{i}" for kind in ("computenode", "datanode") for i in (1, 2, 3)]


def ha_session():
    s = ddb.session()
    s.connect(IPS[0], 8803, "admin", "123456", highAvailability=True, highAvailabilitySites=SITES)
    return s


def wait_login(ip, port, secs=60):
    deadline = time.time() + secs
    while time.time() < deadline:
        if login(ip, port):
            return
        time.sleep(0.2)
    pytest.fail(f"{ip}:{port} never took a login")


def site_of(alias):
    i = int(alias[-1]) - 1
    return IPS[i], 8803 if alias.startswith("compute") else 8802


@pytest.fixture(scope="module")
def c():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    with cluster(binary, compute=True) as c:
        step5 = script("tutorial_step5.dos")
        login(IPS[0], 8802).run(step5[: step5.index("// simulate")])
        yield c


def test_a_session_carries_on_when_the_node_under_it_is_killed_mid_script(c):
    s = ha_session()
    s.run("x = 41")
    under = s.run("getNodeAlias()")
    assert under in ALIASES
    got = {}

    def long_script():
        try:
            got["alias"] = s.run("sleep(3000)\ngetNodeAlias()")
        except Exception as e:  # the test reports it below
            got["error"] = e

    t = threading.Thread(target=long_script)
    t.start()
    time.sleep(1.0)
    c.kill(under)
    t.join(90)
    assert not t.is_alive(), "the script never finished"
    assert "error" not in got, got.get("error")
    # The client reconnected to another node and ran the script again there.
    assert got["alias"] in ALIASES and got["alias"] != under
    assert s.run("1 + 2") == 3
    c.restart(under)
    wait_login(*site_of(under))


def day_rows(n, k):
    """`n` rows for day 2023.01.08 + k % 3, Volume 1..n."""
    return (
        f"n = {n}\nd = 2023.01.08T09:30:00 + ({k} % 3) * 86400\n"
        "t = table(symbol(lpad(string(take(0..999, n)), 6, `0)) as SecurityID, take(d, n) as DateTime, "
        "take(10.5, n) as PreClosePx, take(10.5, n) as OpenPx, take(10.5, n) as HighPx, take(10.5, n) as LowPx, "
        "take(10.5, n) as LastPx, int(1..n) as Volume, take(10.5, n) as Amount)\n"
        'loadTable("dfs://testDB", "testTB").append!(t)'
    )


def chunk_states(c):
    return login(*c.leader).run("exec state from getClusterChunksStatus()").tolist()


def test_appends_go_on_with_a_data_node_killed_and_its_replicas_catch_up(c):
    s = ha_session()
    for k in range(3):
        s.run(day_rows(1000, k))
    c.kill("datanode3")
    started = time.time()
    for k in range(3, 12):
        s.run(day_rows(1000, k))
    degraded_s = time.time() - started
    total = 12 * 1000
    q = 'select count(*) as n, sum(long(Volume)) as v from loadTable("dfs://testDB", "testTB")'
    r = s.run(q)
    assert r["n"][0] == total
    assert r["v"][0] == 12 * 1000 * 1001 // 2
    assert "RECOVERING" in chunk_states(c)
    c.restart("datanode3")
    back = time.time()
    deadline = back + 90
    while time.time() < deadline and set(chunk_states(c)) != {"COMPLETE"}:
        time.sleep(0.2)
    recovered_s = time.time() - back
    assert set(chunk_states(c)) == {"COMPLETE"}
    tasks = login(*c.leader).run("getRecoveryTaskStatus()")
    assert (tasks["Status"] == "Finished").all()
    assert (tasks["Dest"] == "datanode3").all()
    assert (tasks["IsIncrementalRecovery"]).all()
    # Without datanode1, the partitions it shared with datanode3 are read from the recovered
    # replicas.
    wait_login(IPS[2], 8802)
    c.kill("datanode1")
    r = login(IPS[1], 8803).run(q)
    assert r["n"][0] == total
    assert r["v"][0] == 12 * 1000 * 1001 // 2
    c.restart("datanode1")
    wait_login(IPS[0], 8802)
    print(f"9 appends with datanode3 down: {degraded_s:.2f} s; caught up {recovered_s:.2f} s after its restart")
