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


class Raw:
    """The client protocol by hand, to send what the official client sends in high-availability
    mode: each request tagged with the session's uuid and a sequence number, negated when the
    request is resent after a failover."""

    def __init__(self, ip, port):
        import socket

        self.sock = socket.create_connection((ip, port), timeout=30)
        self.buf = b""
        self.sid = "0"
        body = "connect\nlogin\nadmin\n123456\nfalse"
        self.sid, ok = self._ask(f"API 0 {len(body)} / 32_1_4_2\n{body}".encode())
        assert ok == "OK", ok

    def _line(self):
        while b"\n" not in self.buf:
            more = self.sock.recv(65536)
            assert more, "the connection closed"
            self.buf += more
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode()

    def _ask(self, request):
        self.sock.sendall(request)
        head = self._line()
        sid, n, _ = head.split()
        status = self._line()
        # The objects are not read: each test request answers at most one small scalar, and
        # the next request's reply starts on a line of its own after it.
        if int(n) > 0:
            import time as _t

            _t.sleep(0.2)
            self.sock.setblocking(False)
            try:
                self.sock.recv(65536)
            except BlockingIOError:
                pass
            self.sock.setblocking(True)
            self.buf = b""
        return sid, status

    def run(self, text, uuid, seq):
        body = f"script\n{text}"
        _, status = self._ask(f"API2 {self.sid} {len(body.encode())} / 32_1_4_64__0__{uuid}_{seq}\n{body}".encode())
        return status


def test_a_resent_write_is_answered_and_never_applied_twice(c):
    """A write whose first attempt committed is not applied again when the client resends it
    (through another node, a compute node that forwards it); one whose first attempt never
    ran is applied."""
    uuid = "7e4c0d4a-5d0b-4c7e-9c1e-2a6f2f0e9b11"
    q = 'exec count(*) from loadTable("dfs://testDB", "testTB")'
    before = login(IPS[1], 8802).run(q)
    append = day_rows(500, 1).replace("\n", ";\n")
    first = Raw(IPS[0], 8802)
    assert first.run(append, uuid, 5) == "OK"
    assert login(IPS[1], 8802).run(q) == before + 500
    # The failover: the client resends request 5 to another node, seq negated.
    resend = Raw(IPS[1], 8803)
    assert resend.run(append, uuid, -5) == "OK"
    assert login(IPS[1], 8802).run(q) == before + 500, "applied twice"
    # A resend of a request that never reached a commit is applied.
    assert resend.run(append, uuid, -6) == "OK"
    assert login(IPS[1], 8802).run(q) == before + 1000
    # Two writes in one request: a resend skips both.
    two = append + ";\n" + day_rows(250, 2).replace("\n", ";\n")
    assert first.run(two, uuid, 7) == "OK"
    assert resend.run(two, uuid, -7) == "OK"
    assert login(IPS[1], 8802).run(q) == before + 1750

    # An update and a delete resent: not applied again. The update adds 1000000 to the
    # Volume of rows at most 10 and of the rows it moved past 1000000 before (so it is not
    # idempotent): applied twice, some would pass 2000000.
    pt = 'pt = loadTable("dfs://testDB", "testTB")\n'
    bump = pt + "update pt set Volume = Volume + 1000000 where Volume <= 10 or Volume > 1000000"
    bumped = 'exec count(*) from loadTable("dfs://testDB", "testTB") where Volume between 1000001:1000010'
    twice = 'exec count(*) from loadTable("dfs://testDB", "testTB") where Volume > 2000000'
    assert login(IPS[1], 8802).run(bumped) == 0
    assert first.run(bump, uuid, 8) == "OK"
    n_bumped = login(IPS[1], 8802).run(bumped)
    assert n_bumped > 0
    assert resend.run(bump, uuid, -8) == "OK"
    assert login(IPS[1], 8802).run(bumped) == n_bumped
    assert login(IPS[1], 8802).run(twice) == 0, "the update was applied twice"
    # The delete removes the bumped rows; before its resend another client appends rows it
    # would match, which must survive the resend.
    drop = pt + "delete from pt where Volume > 1000000"
    assert first.run(drop, uuid, 9) == "OK"
    assert login(IPS[1], 8802).run(bumped) == 0
    other = login(IPS[2], 8802)
    other.run(day_rows(20, 1) + "\n" + pt + "update pt set Volume = Volume + 1000000 where Volume <= 10")
    assert login(IPS[1], 8802).run(bumped) == 10
    assert resend.run(drop, uuid, -9) == "OK"
    assert login(IPS[1], 8802).run(bumped) == 10, "the delete was applied twice"

    # atomic='CHUNK': each chunk of an append is a commit of its own, each recorded by chunk.
    # A resend of a write all of whose chunks committed writes none again; one whose first
    # attempt committed only some chunks writes only the others (here the first attempt is
    # made to touch partitions 1 and 2 only, as if it had stopped there).
    uuid2 = "0c9d2b1e-3f4a-4b5c-8d6e-7f8091a2b3c4"
    other.run('if (existsDatabase("dfs://chunkDB")) { dropDatabase("dfs://chunkDB") }\n'
              "db = database(\"dfs://chunkDB\", VALUE, 1..4, atomic='CHUNK')\n"
              "db.createPartitionedTable(table(1:0, `k`v, [INT, INT]), `pt, `k)")
    rows = 'exec count(*) from loadTable("dfs://chunkDB", `pt)'
    ins = 'loadTable("dfs://chunkDB", `pt).append!(table(1 2 3 4 1 2 as k, 1..6 as v))'
    assert first.run(ins, uuid2, 3) == "OK"
    assert resend.run(ins, uuid2, -3) == "OK"
    assert login(IPS[1], 8802).run(rows) == 6, "a per-chunk append was applied twice"
    part = 'loadTable("dfs://chunkDB", `pt).append!(table(1 2 1 as k, 7 8 9 as v))'
    assert first.run(part, uuid2, 4) == "OK"
    assert login(IPS[1], 8802).run(rows) == 9
    assert resend.run(ins, uuid2, -4) == "OK"
    per_k = login(IPS[1], 8802).run('select count(*) as n from loadTable("dfs://chunkDB", `pt) group by k order by k')
    # k 1 and 2 were written by request 4 and are skipped; k 3 and 4 get their one row each.
    assert list(per_k["n"]) == [2 + 2, 2 + 1, 1 + 1, 1 + 1], per_k
