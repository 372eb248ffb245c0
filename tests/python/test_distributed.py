"""Distributed queries through the official client (issue 16) on the tutorial's cluster with
its compute nodes: Step 5 on datanode1, Step 6 verbatim on computenode1 checked against pandas
over the downloaded table, pushed-down filters and partition-wise queries, and `kill -9` of
the data nodes under a running query."""
import os
import threading
import time

import numpy as np
import pandas as pd
import pytest

import re

from js_api import run_suite
from local_cluster import IPS, cluster, get, login, script


@pytest.fixture(scope="module")
def c():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    with cluster(binary, compute=True) as c:
        login(IPS[0], 8802).run(script("tutorial_step5.dos"))
        yield c


@pytest.fixture(scope="module")
def table(c):
    """The whole table, downloaded once through computenode2."""
    return login(IPS[1], 8803).run('select * from loadTable("dfs://testDB", "testTB")')


def ohlc(df):
    g = df.assign(Date=df["DateTime"].dt.normalize()).groupby(["Date", "SecurityID"], sort=True)["LastPx"]
    return pd.DataFrame({"Open": g.first(), "High": g.max(), "Low": g.min(), "Close": g.last()}).reset_index()


def test_step_6_verbatim_on_computenode1_equals_pandas(c, table):
    s = login(IPS[0], 8803)
    assert s.run("getNodeAlias()") == "computenode1"
    s.run(script("tutorial_step6.dos"))
    counts = s.run('select count(*) from loadTable("dfs://testDB", "testTB") group by date(DateTime) as Date')
    assert counts["count"].tolist() == [len(table)] == [1210000]
    # `result` stays on the compute node until it is asked for.
    assert s.run("typestr(result)") == "IN-MEMORY TABLE"
    got = s.run("result")
    want = ohlc(table)
    assert len(got) == len(want) == 5000
    assert got["SecurityID"].tolist() == want["SecurityID"].tolist()
    assert (got["Date"].values == want["Date"].values).all()
    for col in ["Open", "High", "Low", "Close"]:
        np.testing.assert_allclose(got[col].to_numpy(), want[col].to_numpy(), err_msg=col)


def test_filters_run_where_the_chunks_are_and_equal_pandas(c, table):
    s = login(IPS[2], 8803)
    s.run('pt = loadTable("dfs://testDB", "testTB"); lo = 10.5; ids = ["000001", "000100", "002000"]')
    got = s.run("select SecurityID, DateTime, LastPx from pt where SecurityID in ids, LastPx > lo")
    want = table[table["SecurityID"].isin(["000001", "000100", "002000"]) & (table["LastPx"] > 10.5)]
    assert len(got) == len(want) > 0
    assert got["LastPx"].sum() == pytest.approx(want["LastPx"].sum())
    # A condition that is not row-wise is evaluated over the whole selection, not per chunk.
    got = s.run("select count(*) from pt where LastPx > avg(LastPx)")
    assert got["count"].tolist() == [int((table["LastPx"] > table["LastPx"].mean()).sum())]
    # Aggregates with a where clause: partial aggregates on the data nodes, merged here.
    got = s.run("select count(*) as n, sum(Volume) as v, avg(LastPx) as a from pt where LastPx > lo group by SecurityID")
    w = table[table["LastPx"] > 10.5].groupby("SecurityID", sort=True)
    assert got["n"].tolist() == w.size().tolist()
    assert got["v"].tolist() == w["Volume"].sum().tolist()
    np.testing.assert_allclose(got["a"].to_numpy(), w["LastPx"].mean().to_numpy())


def test_a_partition_wise_query_runs_per_partition_and_equals_pandas(c, table):
    s = login(IPS[0], 8803)
    got = s.run('select SecurityID, DateTime, mavg(LastPx, 3) as m from loadTable("dfs://testDB", "testTB") '
                'where SecurityID in ["000001", "000002"] context by date(DateTime), SecurityID')
    sub = table[table["SecurityID"].isin(["000001", "000002"])]
    sub = sub.sort_values(["SecurityID"], kind="stable")
    want = sub.groupby("SecurityID")["LastPx"].transform(lambda x: x.rolling(3).mean())
    assert got["SecurityID"].tolist() == sub["SecurityID"].tolist()
    np.testing.assert_allclose(got["m"].to_numpy(), want.to_numpy())


def test_sql_ds_and_mr_map_each_partition_where_it_is(c):
    """`sqlDS` splits a query over a 5-day table into one data source per day; `mr` maps
    each where its chunk is and folds the results, equal to pandas over the whole table."""
    login(IPS[0], 8802).run("""
n = 40000
t = table(2023.02.01T09:30:00 + (0..(n-1)) * 9 as DateTime, take(`A`B`C`D, n) as sym, rand(100.0, n) as px)
if (existsDatabase("dfs://mrDB")) dropDatabase("dfs://mrDB")
db = database("dfs://mrDB", VALUE, 2023.02.01..2023.02.05)
db.createPartitionedTable(t, `pt, `DateTime).append!(t)""")
    s = login(IPS[2], 8803)
    df = s.run('select * from loadTable("dfs://mrDB", "pt")')
    s.run('pt = loadTable("dfs://mrDB", "pt")')
    assert s.run("size(sqlDS(<select * from pt>))") == df["DateTime"].dt.normalize().nunique() == 5
    assert s.run("size(sqlDS(<select * from pt where date(DateTime) = 2023.02.03>))") == 1
    total = s.run("mr(sqlDS(<select px from pt where sym = `B>), def(t) { return sum(t.px) }, +)")
    assert total == pytest.approx(df[df["sym"] == "B"]["px"].sum())
    # No reduce: one map result per partition, in partition order.
    counts = s.run("mr(sqlDS(<select * from pt>), rows)")
    assert list(counts) == df.groupby(df["DateTime"].dt.normalize()).size().tolist()
    # A map, a reduce and a final function, as DolphinDB's manual composes them.
    mean = s.run("mr(sqlDS(<select px from pt>), def(t) { return [sum(t.px), count(t.px)] }, +, def(x) { return x[0] / x[1] })")
    assert mean == pytest.approx(df["px"].mean())
    with pytest.raises(RuntimeError, match="forcePartition"):
        s.run("sqlDS(<select count(*) from pt group by sym>)")
    # Top-k runs in each partition; the merge keeps k.
    top = s.run("select top 5 sym, px from pt where sym != `A order by px desc")
    want = df[df["sym"] != "A"].nlargest(5, "px")
    assert top["px"].tolist() == want["px"].tolist() and top["sym"].tolist() == want["sym"].tolist()
    # Distinct per partition, then over the merge: first occurrences in table order.
    got = s.run("select distinct sym from pt where px > 50")
    assert got["sym"].tolist() == df[df["px"] > 50]["sym"].drop_duplicates().tolist()
    assert s.run("select count(distinct sym) as n from pt")["n"][0] == df["sym"].nunique()
    last = s.run("select DateTime from pt order by px limit -3")
    assert last["DateTime"].tolist() == df.sort_values("px", kind="stable")["DateTime"].tail(3).tolist()


def test_a_join_of_two_tables_of_one_database_runs_where_their_partitions_are(c):
    """A database keeps each partition of all its tables on the same data nodes, so `ej` and
    `lj` on keys that include the partitioning column run where both chunks are (D95); the
    answers equal pandas' merges of the downloaded tables."""
    login(IPS[0], 8802).run("""
n = 6000
t = table(2023.03.01T09:30:00 + (0..(n-1)) * 60 as DateTime, take(`A`B`C`D`E, n) as sym, rand(100.0, n) as px)
q = select DateTime, sym, rand(10, size(DateTime)) as qty from t where DateTime < 2023.03.04T00:00:00, sym != `E
if (existsDatabase("dfs://joinDB")) dropDatabase("dfs://joinDB")
db = database("dfs://joinDB", VALUE, 2023.03.01..2023.03.05)
db.createPartitionedTable(t, `trades, `DateTime).append!(t)
db.createPartitionedTable(q, `quotes, `DateTime).append!(q)""")
    status = login(*c.leader).run("getClusterChunksStatus()")
    mine = status[status["file"].str.contains("joinDB")]
    sites = {}
    for f, r in zip(mine["file"], mine["replicas"]):
        day = next(p for p in f.split("/") if p.startswith("2023"))
        sites.setdefault(day, set()).add(",".join(sorted(x.split(":")[0] for x in r.split(","))))
    assert len(sites) == 5 and all(len(s) == 1 for s in sites.values()), sites
    s = login(IPS[1], 8803)
    trades = s.run('select * from loadTable("dfs://joinDB", "trades")')
    quotes = s.run('select * from loadTable("dfs://joinDB", "quotes")')
    s.run('trades = loadTable("dfs://joinDB", "trades")\nquotes = loadTable("dfs://joinDB", "quotes")')
    got = s.run("select * from ej(trades, quotes, `DateTime`sym)")
    want = trades.merge(quotes, on=["DateTime", "sym"], how="inner")
    assert len(got) == len(want) > 0
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    got = s.run("select * from lj(trades, quotes, `DateTime`sym)")
    want = trades.merge(quotes, on=["DateTime", "sym"], how="left")
    assert len(got) == len(trades)
    pd.testing.assert_frame_equal(got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False)
    v = s.run("select sum(px * qty) as v from ej(trades, quotes, `DateTime`sym) group by sym")
    m = trades.merge(quotes, on=["DateTime", "sym"])
    assert v["v"].tolist() == pytest.approx((m["px"] * m["qty"]).groupby(m["sym"]).sum().tolist())


SAMPLE = re.compile(r'^([a-z_][a-z0-9_]*)(\{((?:[a-z_]+="(?:[^"\\]|\\.)*",?)*)\})? (-?[0-9.e+]+|[+-]Inf|NaN)$')


def metrics(ip, port):
    """`GET /metrics` as {(name, ((label, value), ...)): value}, checking every line against
    Prometheus' text format: each sample after its metric's `# HELP` and `# TYPE`."""
    text = get(ip, port, "/metrics")
    assert text, f"no /metrics on {ip}:{port}"
    typed, out = set(), {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("# HELP "):
            continue
        m = SAMPLE.match(line)
        assert m, f"{ip}:{port}: not a sample line: {line!r}"
        name = m.group(1)
        assert any(name == t or name.startswith(t + "_") for t in typed), f"{name} before its TYPE"
        labels = tuple(re.findall(r'([a-z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(name, labels)] = float(m.group(4))
    return out


def test_every_node_serves_prometheus_metrics_and_controllers_log_each_leader(c):
    """Every controller, data and compute node answers `GET /metrics` in Prometheus' text
    format: one controller is the Raft leader in the term all share, the data nodes count
    prepared rows and query tasks as they happen, and each controller logs the leadership it
    sees."""
    ctl = [metrics(ip, 8800) for ip in IPS]
    assert sum(m[("porpoise_raft_state", (("state", "leader"),))] for m in ctl) == 1
    assert len({m[("porpoise_raft_term", ())] for m in ctl}) == 1
    lead = next(m for m in ctl if m[("porpoise_raft_state", (("state", "leader"),))] == 1)
    assert lead[("porpoise_cluster_nodes", (("role", "datanode"), ("state", "up")))] == 3
    assert lead[("porpoise_cluster_nodes", (("role", "computenode"), ("state", "up")))] == 3
    assert lead[("porpoise_heartbeats_total", ())] > 0
    assert all(m[("porpoise_raft_commit_index", ())] >= 1 for m in ctl)
    for i in range(1, 4):
        log = c.log(f"P{i}", "controller.log")
        assert "event=leader_changed" in log and "leads term" in log, log[-2000:]

    before = [metrics(ip, 8802) for ip in IPS]
    s = login(IPS[0], 8802)
    s.run("""
if (existsDatabase("dfs://metricsDB")) dropDatabase("dfs://metricsDB")
db = database("dfs://metricsDB", VALUE, 1..3)
t = table(take(1..3, 3000) as k, rand(1.0, 3000) as v)
db.createPartitionedTable(t, `pt, `k).append!(t)""")
    assert s.run('exec sum(v) from loadTable("dfs://metricsDB", "pt")') > 0
    after = [metrics(ip, 8802) for ip in IPS]
    rows = lambda ms: sum(m[("porpoise_prepared_rows_total", ())] for m in ms)
    # RF 2: every row is prepared on two replicas.
    assert rows(after) - rows(before) == 6000
    tasks = lambda ms: sum(m[("porpoise_query_tasks_total", ())] for m in ms)
    assert tasks(after) > tasks(before)
    hist = lambda ms: sum(m[("porpoise_query_task_seconds_count", ())] for m in ms)
    assert hist(after) - hist(before) == tasks(after) - tasks(before)
    for m in after:
        assert m[("porpoise_query_task_seconds_bucket", (("le", "+Inf"),))] == m[("porpoise_query_task_seconds_count", ())]
        assert m[("porpoise_disk_free_bytes", next(k[1] for k in m if k[0] == "porpoise_disk_free_bytes"))] > 0
    scripts = lambda: metrics(IPS[1], 8803)[("porpoise_script_seconds_count", ())]
    ran = scripts()
    assert login(IPS[1], 8803).run("1 + 1") == 2
    assert scripts() > ran
    compute = metrics(IPS[1], 8803)
    assert any(k[0] == "porpoise_node_info" and ("alias", "computenode2") in k[1] for k in compute)


def test_a_compute_nodes_metadata_cache_never_misses_a_new_or_dropped_partition(c):
    """computenode3 caches the table's metadata by version (after the previous test's
    queries); partitions added and dropped through datanode1 show at once."""
    s = login(IPS[2], 8803)
    q = 'exec count(*) from loadTable("dfs://mrDB", "pt")'
    before = s.run(q)
    assert before == 40000 and s.run(q) == before
    d = login(IPS[0], 8802)
    d.run('t = table(2023.02.10T10:00:00 + 0..99 as DateTime, take(`A, 100) as sym, rand(1.0, 100) as px)\n'
          'loadTable("dfs://mrDB", "pt").append!(t)')
    assert s.run(q) == before + 100
    assert s.run('size(sqlDS(<select * from loadTable("dfs://mrDB", "pt")>))') == 6
    d.run('dropPartition(database("dfs://mrDB"), 2023.02.10, "pt")')
    assert s.run(q) == before
    first_day = s.run('exec count(*) from loadTable("dfs://mrDB", "pt") where date(DateTime) = 2023.02.01')
    assert 0 < first_day < before
    d.run('dropPartition(database("dfs://mrDB"), 2023.02.01, "pt")')
    assert s.run(q) == before - first_day


def test_rpc_pnode_run_and_get_cluster_perf_answer_for_the_cluster(c):
    s = login(IPS[0], 8803)
    assert s.run("getNodeType()") == 4
    assert login(IPS[1], 8802).run("getNodeType()") == 0
    assert s.run("rpc('datanode2', getNodeAlias)") == "datanode2"
    # A user function travels with its definition; arguments travel as values.
    assert list(s.run("def tag(x) { return (getNodeAlias(), x * 2) }\nrpc('datanode3', tag, 7)")) == ["datanode3", 14]
    assert s.run("rpc('computenode2', add, 2, 3)") == 5
    nodes = [f"datanode{i}" for i in (1, 2, 3)] + [f"computenode{i}" for i in (1, 2, 3)]
    t = s.run("pnodeRun(getNodeAlias)")
    assert sorted(t["node"]) == sorted(nodes) and (t["node"] == t["value"]).all()
    t = s.run("pnodeRun(getNodeAlias, `datanode1`computenode3)")
    assert sorted(t["value"]) == ["computenode3", "datanode1"]
    # Tables are stacked with the node's alias first.
    t = s.run("def one() { return table(getNodeAlias() as who, 1 as n) }\npnodeRun(one)")
    assert list(t.columns) == ["node", "who", "n"] and (t["node"] == t["who"]).all() and len(t) == 6
    perf = s.run("getClusterPerf()")
    for col in ["host", "port", "site", "mode", "state", "maxConnections", "connectionNum", "workerNum",
                "executorNum", "publicName", "name", "memoryUsed", "memoryAlloc", "cpuUsage", "avgLoad",
                "runningJobs", "queuedJobs", "runningTasks", "queuedTasks", "jobLoad", "diskCapacity",
                "diskFreeSpace", "diskFreeSpaceRatio", "maxRunningQueryTime"]:
        assert col in perf.columns, col
    live = perf[perf["name"].isin(nodes)].set_index("name")
    assert sorted(live.index) == sorted(nodes)
    assert (live["state"] == 1).all()
    assert (live["memoryUsed"] > 0).all() and (live["diskCapacity"] > 0).all()
    assert live.loc["computenode1", "runningJobs"] >= 1  # this very script
    assert live.loc["datanode1", "mode"] == 0 and live.loc["computenode1", "mode"] == 4
    assert live.loc["datanode2", "site"] == f"{IPS[1]}:8802:datanode2"
    master = s.run("getActiveMaster()")
    with_ctl = s.run("getClusterPerf(true)")
    ctl = with_ctl[with_ctl["mode"] == 2].set_index("name")
    assert sorted(ctl.index) == ["controller1", "controller2", "controller3"]
    assert (ctl["state"] == 1).all(), ctl
    assert ctl.index[ctl["isLeader"]].tolist() == [master]
    assert f"{c.leader[0]}:{c.leader[1]}" in ctl.loc[master, "site"]
    # The official client's high-availability connect reads getClusterPerf through rpc and
    # moves to the least-loaded data node it lists.
    import dolphindb as ddb
    ha = ddb.session()
    sites = [f"{ip}:8802" for ip in IPS]
    assert ha.connect(IPS[0], 8802, "admin", "123456", highAvailability=True, highAvailabilitySites=sites)
    assert ha.run("getNodeAlias()") in nodes[:3]
    ha.close()
    # A follower controller killed: listed, and down once it misses the leader's heartbeats.
    follower = next(n for n in ["controller1", "controller2", "controller3"] if n != master)
    c.kill(follower)
    deadline = time.time() + 15
    while time.time() < deadline:
        ctl = s.run("getClusterPerf(true)").set_index("name")
        if ctl.loc[follower, "state"] == 0:
            break
        time.sleep(0.3)
    assert ctl.loc[follower, "state"] == 0 and ctl.loc[master, "state"] == 1 and len(ctl[ctl["mode"] == 2]) == 3


def test_the_dfs_directory_lists_databases_partitions_and_each_chunks_replica_sites(c):
    """getDFSDirectoryContent, as DolphinDB's web DFS page calls it (on the leader controller,
    with the `dfs:/` prefix taken off), and its answer equals getClusterChunksStatus."""
    s = login(*c.leader)
    root = s.run('getDFSDirectoryContent("/")')
    assert list(root.columns) == ["filename", "filetype", "size", "chunks", "sites"]
    assert "testDB" in list(root["filename"]) and set(root["filetype"]) == {0}
    days = s.run('getDFSDirectoryContent("/testDB/")')
    assert "20230108" in list(days["filename"]), days
    assert set(days["filetype"]) == {0}
    leaf = s.run('getDFSDirectoryContent("dfs://testDB/20230108/")')
    assert list(leaf["filename"]) == ["testTB"] and list(leaf["filetype"]) == [4]
    sites = leaf["sites"][0].split(",")
    assert len(sites) == 2 and sorted(sites) == replicas_of_the_day(c)
    status = s.run("getClusterChunksStatus()")
    chunk = status[status["file"] == "/testDB/20230108/testTB"]["chunkId"].iloc[0]
    assert leaf["chunks"][0] == chunk
    assert len(s.run('getDFSDirectoryContent("/noSuchDB/")')) == 0


def test_the_javascript_api_drives_a_compute_node_and_a_data_node_over_websocket(c):
    """The official JavaScript API's suite on computenode1 (its DFS database is created and
    written through 2PC from there), then again on datanode3, which drops and recreates it."""
    run_suite(IPS[0], 8803)
    run_suite(IPS[2], 8802)
    rows = login(IPS[1], 8803).run('select count(*) as n from loadTable("dfs://jsdb", "t")')
    assert int(rows["n"][0]) == 5


def replicas_of_the_day(c):
    status = login(*c.leader).run("getClusterChunksStatus()")
    row = status[status["file"].str.contains("20230108")] if "file" in status else status
    return sorted(r.split(":")[0] for r in row["replicas"].iloc[0].split(","))


def test_kill_9_of_a_replica_mid_query_costs_a_retry_and_both_an_error(c, table):
    want = ohlc(table)
    holders = replicas_of_the_day(c)
    assert len(holders) == 2, holders
    q = ("select first(LastPx) as Open, max(LastPx) as High, min(LastPx) as Low, last(LastPx) as Close "
         "from loadTable('dfs://testDB', 'testTB') group by date(DateTime) as Date, SecurityID")
    answers, errors, stop = [], [], threading.Event()

    def loop(s):
        while not stop.is_set():
            try:
                answers.append((time.time(), s.run(q)))
            except Exception as e:  # noqa: BLE001 - any failure is the test's finding
                errors.append(str(e))

    # Three sessions at once keep a task in flight on both replicas (the coordinator sends
    # each to the less busy one), so the kill lands on running work.
    sessions = [login(IPS[0], 8803) for _ in range(3)]
    threads = [threading.Thread(target=loop, args=(s,)) for s in sessions]
    for t in threads:
        t.start()
    while len(answers) < 3:
        time.sleep(0.05)
    c.kill(holders[0])
    killed_at = time.time()
    while len([a for a in answers if a[0] > killed_at]) < 6 and not errors:
        time.sleep(0.1)
    stop.set()
    for t in threads:
        t.join()
    assert errors == [], errors
    for _, got in answers:
        assert len(got) == 5000
        np.testing.assert_allclose(got["Close"].to_numpy(), want["Close"].to_numpy())
        np.testing.assert_allclose(got["Open"].to_numpy(), want["Open"].to_numpy())
    assert "query_task_failed" in c.log("P1", "computenode1.log")
    s = sessions[0]
    # With both replicas of the chunk gone, the query fails and says which chunk.
    c.kill(holders[1])
    with pytest.raises(Exception) as e:
        s.run(q)
    assert "DataNodeNotAvail" in str(e.value) and "chunk" in str(e.value) and "20230108" in str(e.value)
