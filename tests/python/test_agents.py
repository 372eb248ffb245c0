"""Agents start and stop their hosts' data and compute nodes on a controller's command, as in
the tutorial's Step 4: only the controllers and agents are started by hand (as
startController.sh and startagent.sh do), then `startDataNode` / `stopDataNode` run on the
leader controller through the official client, with aliases or "host:port"."""
import os
import subprocess
import time

import dolphindb as ddb
import pytest

from local_cluster import HOSTS, IPS, agents_topology, login, nodes, porpoise_children, wait_for


@pytest.fixture(scope="module")
def topology():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    with agents_topology(binary) as t:
        yield t


def test_the_leader_controller_starts_and_stops_nodes_through_the_agents(topology):
    root, leader = topology
    s = login(*leader)
    assert s.run("getNodeType()") == 2, "a controller"
    perf = s.run("getClusterPerf(true)")
    modes = dict(zip(perf["name"], perf["mode"]))
    assert modes["datanode1"] == 0 and modes["computenode1"] == 4 and modes["agent1"] == 1
    assert modes["controller1"] == 2
    assert not any(perf[perf["name"].str.startswith("datanode")]["state"])
    # Agents answer with their own figures.
    agents = perf[perf["mode"] == 1]
    assert len(agents) == 3 and all(agents["state"]) and all(agents["memoryUsed"] > 0)

    # Aliases, and "host:port" as DolphinDB's web sends them.
    s.run('startDataNode(["datanode1", "datanode2"])')
    s.run(f'startDataNode("{IPS[2]}:8802")')
    s.run('startDataNode("computenode2")')
    wait_for("the data nodes to heartbeat", lambda: all(nodes(leader).get(f"datanode{i}") for i in range(1, 4)))
    for ip in IPS:
        wait_for(f"a login on {ip}:8802", lambda: login(ip, 8802) is not None)
    wait_for("a login on computenode2", lambda: login(IPS[1], 8803) is not None)

    # Each started from its host's directory with DolphinDB's command line, logging under log/.
    running = porpoise_children(root)
    for i, (h, ip) in enumerate(zip(HOSTS, IPS), start=1):
        cmd = next(c for c in running.values() if f"{ip}:8802:datanode{i}" in c)
        assert cmd[cmd.index("-mode") + 1] == "datanode"
        assert cmd[cmd.index("-controllerSite") + 1] == f"{ip}:8800:controller{i}"
        assert cmd[cmd.index("-clusterConfig") + 1] == "config/cluster.cfg"
        assert os.path.exists(os.path.join(root, h, "log", f"datanode{i}.log"))

    # The cluster works: DDL and a query through a started data node.
    d = login(IPS[0], 8802)
    d.run("db = database('dfs://agentDB', VALUE, 1..3)\n"
          "t = table(1..3 as k, 1.0 2.0 3.0 as v)\n"
          "db.createPartitionedTable(t, `pt, `k).append!(t)")
    assert login(IPS[1], 8803).run("exec sum(v) from loadTable('dfs://agentDB', `pt)") == 6.0

    # Starting a running node again starts no second process.
    before = len(porpoise_children(root))
    s.run('startDataNode("datanode1")')
    time.sleep(0.5)
    assert len(porpoise_children(root)) == before

    s.run('stopDataNode("datanode2")')
    wait_for("datanode2's process to exit",
             lambda: not any("127.0.0.81:8802:datanode2" in c for c in porpoise_children(root).values()))
    wait_for("datanode2 to be marked down", lambda: nodes(leader).get("datanode2") is False)
    perf = s.run("getClusterPerf(true)")
    state = dict(zip(perf["name"], perf["state"]))
    assert not state["datanode2"] and state["datanode1"] and state["computenode2"]

    with pytest.raises(RuntimeError, match="not a data or compute node"):
        s.run('startDataNode("nosuch")')
    with pytest.raises(RuntimeError, match="node alias"):
        s.run("startDataNode(1)")


def controller_pid(root, host):
    return next(pid for pid, cmd in porpoise_children(root).items()
                if "controller" in cmd and os.readlink(f"/proc/{pid}/cwd") == os.path.join(root, host))


def read(root, host, name):
    with open(os.path.join(root, host, "config", name)) as f:
        return f.read()


def vector(lines):
    return "[" + ", ".join('"' + l.replace('"', '\\"') + '"' for l in lines) + "]"


def test_configuration_saved_on_the_leader_is_in_every_controllers_files(topology):
    """The tutorial's chapter 2 through the functions its web manager calls: the Raft group
    keeps controller.cfg and cluster.cfg, every controller's files follow (one that was down
    when the edit was saved, once it is back), and a data node restarted reads the change."""
    root, leader = topology
    s = login(*leader)
    me = IPS.index(leader[0]) + 1
    ctl = list(s.run("loadControllerConfigs()"))
    assert ctl[0] == f"localSite={leader[0]}:8800:controller{me}", ctl
    assert "dfsReplicationFactor=2" in ctl and "mode=controller" in ctl
    cluster = list(s.run("loadClusterNodesConfigs()"))
    assert "maxConnections=512" in cluster and "workerNum=4" in cluster, cluster

    # One follower is down while the edits are saved.
    down = next(h for i, h in enumerate(HOSTS, start=1) if i != me)
    down_dir = os.path.join(root, down)
    os.kill(controller_pid(root, down), 9)

    edited = [l for l in cluster if not l.startswith("maxConnections=")] + ["datanode%.maxConnections=600"]
    s.run(f"saveClusterNodesConfigs({vector(edited)})")
    assert sorted(s.run("loadClusterNodesConfigs()")) == sorted(edited)
    s.run(f"saveControllerConfigs({vector([l.replace('maxMemSize=8', 'maxMemSize=12') for l in ctl])})")

    def written(host):
        text = read(root, host, "cluster.cfg")
        c = read(root, host, "controller.cfg")
        i = HOSTS.index(host)
        return ("datanode%.maxConnections=600" in text and "\nmaxConnections=" not in "\n" + text
                and "maxMemSize=12" in c and f"localSite={IPS[i]}:8800:controller{i + 1}" in c)

    for h in HOSTS:
        if h != down:
            wait_for(f"{h}'s files to follow the edit", lambda: written(h), 10)
    # The file keeps its layout: the untouched keys stay where they were.
    assert read(root, HOSTS[me - 1], "cluster.cfg").startswith("maxMemSize=32\nworkerNum=4\n")
    assert not written(down)

    # The follower comes back, catches up from the log and rewrites its files.
    subprocess.Popen(
        [os.environ["PORPOISE_BIN"], "-console", "0", "-mode", "controller", "-home", "data", "-config",
         "config/controller.cfg", "-logFile", "log/controller.log", "-nodesFile", "config/cluster.nodes",
         "-clusterConfig", "config/cluster.cfg"],
        cwd=down_dir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for(f"{down}'s files to follow the edit", lambda: written(down), 30)

    # A data node restarted takes the new setting.
    s.run('startDataNode("datanode1")')
    wait_for("datanode1", lambda: login(IPS[0], 8802) is not None)
    s.run('stopDataNode("datanode1")')
    wait_for("datanode1 to stop", lambda: nodes(leader).get("datanode1") is False)
    s.run('startDataNode("datanode1")')
    wait_for("datanode1 again", lambda: login(IPS[0], 8802) is not None)
    perf = s.run("getClusterPerf(true)")
    assert dict(zip(perf["name"], perf["maxConnections"]))["datanode1"] == 600

    # A bad edit changes nothing and names its line.
    with pytest.raises(RuntimeError, match=r"CFG-013 cluster.cfg:2: unknown configuration key 'noSuchKey'"):
        s.run(f'saveClusterNodesConfigs({vector(["maxMemSize=8", "noSuchKey=1"])})')
    with pytest.raises(RuntimeError, match=r"CFG-008 cluster.cfg:1"):
        s.run(f'saveClusterNodesConfigs({vector(["workerNum=many"])})')
    assert sorted(s.run("loadClusterNodesConfigs()")) == sorted(edited)
    guest = ddb.session()
    guest.connect(*leader)
    with pytest.raises(RuntimeError, match="NoPrivilege"):
        guest.run(f"saveClusterNodesConfigs({vector(edited)})")


def test_every_node_reads_its_own_log_and_any_other_nodes_through_the_cluster(topology):
    """getServerLogLength / getServerLog, as DolphinDB's web Log page calls them, read the
    node's `-logFile` (here log/datanode1.log under its host, where the agent pointed it);
    another node's alias is answered by that node. getClusterNodesCfg lists cluster.nodes."""
    root, leader = topology
    s = login(*leader)
    s.run('startDataNode(["datanode1", "computenode2"])')
    wait_for("datanode1", lambda: login(IPS[0], 8802) is not None)
    wait_for("computenode2", lambda: login(IPS[1], 8803) is not None)
    path = os.path.join(root, HOSTS[0], "log", "datanode1.log")
    d = login(IPS[0], 8802)
    n = int(d.run("getServerLogLength()"))
    with open(path, "rb") as f:
        text = f.read()
    assert 0 < n <= len(text)
    # The log only grows: its first n bytes are what the node read.
    assert list(d.run(f"getServerLog({n}, 0, true)")) == text[:n].decode().splitlines()
    # A window in the middle: its lines, the first and last cut where the window cuts them.
    assert "\n".join(d.run("getServerLog(40, 10)")) == text[10:50].decode().removesuffix("\n")
    tail = list(d.run("getServerLog(200, 0, false)"))
    assert tail and all(line in text.decode() for line in tail)
    # Another node's log, through the cluster, from a compute node on another host.
    c = login(IPS[1], 8803)
    remote = list(c.run(f'getServerLog({n}, 0, true, "datanode1")'))
    assert remote == text[:n].decode().splitlines()
    assert int(c.run('getServerLogLength("datanode1")')) >= n
    assert all("node=datanode1" in line for line in remote)

    with open(os.path.join(root, HOSTS[0], "config", "cluster.nodes")) as f:
        listed = [l.strip() for l in f.read().splitlines()[1:] if l.strip()]
    assert sorted(s.run("getClusterNodesCfg()")) == sorted(listed)
