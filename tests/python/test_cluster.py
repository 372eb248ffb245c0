"""The official DolphinDB Python client against the tutorial's cluster: three controllers and
three data nodes on 127.0.0.80-82, each host from its own copy of configs/cluster/<host>, the
data nodes started with the command line an agent uses (the tutorial's Step 5 on datanode1)."""
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import dolphindb as ddb
import numpy as np
import pandas as pd
import pytest

HOSTS = ["P1", "P2", "P3"]
IPS = ["127.0.0.80", "127.0.0.81", "127.0.0.82"]
HERE = os.path.dirname(os.path.abspath(__file__))


def _get(ip, port, path):
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def _login(ip, port):
    s = ddb.session()
    try:
        if s.connect(ip, port, "admin", "123456"):
            return s
    except Exception:
        pass
    return None


@pytest.fixture(scope="module")
def cluster():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    root = tempfile.mkdtemp(prefix="porpoise-cluster-")
    procs = []
    for i, (h, ip) in enumerate(zip(HOSTS, IPS), start=1):
        d = os.path.join(root, h)
        shutil.copytree(os.path.join(HERE, "..", "..", "configs", "cluster", h), d)
        os.makedirs(os.path.join(d, "log"))
        procs.append(subprocess.Popen(
            [binary, "-console", "0", "-mode", "controller", "-home", "data", "-config", "config/controller.cfg",
             "-logFile", "log/controller.log", "-nodesFile", "config/cluster.nodes", "-clusterConfig", "config/cluster.cfg"],
            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [binary, "-console", "0", "-mode", "datanode", "-home", "data", "-localSite", f"{ip}:8802:datanode{i}",
             "-controllerSite", f"{ip}:8800:controller{i}", "-clusterConfig", "config/cluster.cfg",
             "-logFile", f"log/datanode{i}.log"],
            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        deadline = time.time() + 60
        leader = None
        while time.time() < deadline:
            raft = _get(IPS[0], 8800, "/raft")
            site = json.loads(raft).get("leaderSite") if raft else None
            if site:
                ip, port, _ = site.split(":")
                nodes = _get(ip, int(port), "/nodes") or ""
                if all(f"datanode{i},{ip_},8802,DataNode,true" in nodes for i, ip_ in enumerate(IPS, start=1)):
                    leader = (ip, int(port))
                    break
            time.sleep(0.2)
        assert leader, "the cluster did not come up"
        # Wait for a login, not a TCP accept.
        while time.time() < deadline and not _login(IPS[0], 8802):
            time.sleep(0.2)
        yield leader
    finally:
        for p in procs:
            p.kill()
            p.wait()
        shutil.rmtree(root, ignore_errors=True)


def _script(name):
    with open(os.path.join(HERE, "..", "..", "lang", "tests", "scripts", name)) as f:
        return f.read()


def test_step_5_verbatim_on_datanode1_and_the_count_on_datanode2(cluster):
    s = _login(IPS[0], 8802)
    s.run(_script("tutorial_step5.dos"))
    other = _login(IPS[1], 8802)
    q = other.run('select count(*) from loadTable("dfs://testDB", "testTB") group by date(DateTime)')
    assert q["count"].tolist() == [1210000]
    # On the leader controller, as in DolphinDB: each partition on two distinct hosts.
    ctl = _login(*cluster)
    status = ctl.run("getClusterChunksStatus()")
    assert len(status) >= 1
    for replicas in status["replicas"]:
        nodes = {r.split(":")[0] for r in replicas.split(",")}
        assert len(nodes) == 2, replicas
    assert set(status["state"]) == {"COMPLETE"}


def test_step_6_and_the_partitioned_appender_on_the_cluster(cluster):
    s = _login(IPS[0], 8802)
    if not s.run('existsDatabase("dfs://testDB")'):
        s.run(_script("tutorial_step5.dos"))
    s.run(_script("tutorial_step6.dos"))
    assert len(s.run("result")) == 5000
    s.run("if (existsDatabase('dfs://apps')) { dropDatabase('dfs://apps') }\n"
          "db = database('dfs://apps', VALUE, 2023.01.01..2023.01.02)\n"
          "t = table(1 2 as id, 2023.01.01 2023.01.02 as d, 0.5 1.5 as v)\n"
          "db.createPartitionedTable(table=t, tableName='pt', partitionColumns=`d)")
    pool = ddb.DBConnectionPool(IPS[2], 8802, 2, "admin", "123456")
    try:
        ap = ddb.PartitionedTableAppender(dbPath="dfs://apps", tableName="pt", partitionColName="d", pool=pool)
        many = pd.DataFrame({"id": np.array([2, 3, 4], dtype=np.int32),
                             "d": pd.to_datetime(["2023-01-01", "2023-01-02", "2023-01-03"]), "v": [1.0, 2.0, 3.0]})
        assert ap.append(many) == 3
    finally:
        pool.shutDown()
    counts = _login(IPS[1], 8802).run("select count(*) from loadTable('dfs://apps', 'pt') group by d")
    assert counts["count"].tolist() == [1, 1, 1]
