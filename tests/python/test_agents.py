"""Agents start and stop their hosts' data and compute nodes on a controller's command, as in
the tutorial's Step 4: only the controllers and agents are started by hand (as
startController.sh and startagent.sh do), then `startDataNode` / `stopDataNode` run on the
leader controller through the official client, with aliases or "host:port"."""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from local_cluster import HERE, HOSTS, IPS, get, login


def porpoise_children(root):
    """pid -> command line of every porpoise process running from a directory under `root`."""
    out = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            cwd = os.readlink(f"/proc/{pid}/cwd")
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().split(b"\0")
        except OSError:
            continue
        if cwd.startswith(root) and cmd and os.path.basename(cmd[0]) == b"porpoise":
            out[int(pid)] = [c.decode() for c in cmd if c]
    return out


def nodes(leader):
    """alias -> live, from the leader's metadata."""
    text = get(*leader, "/nodes") or ""
    return {line.split(",")[0]: line.split(",")[4] == "true" for line in text.splitlines() if line.count(",") == 4}


def wait_for(what, check, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def topology():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    root = tempfile.mkdtemp(prefix="porpoise-agents-")
    procs = []
    for h in HOSTS:
        d = os.path.join(root, h)
        shutil.copytree(os.path.join(HERE, "..", "..", "configs", "cluster", h), d)
        os.makedirs(os.path.join(d, "log"))
        procs.append(subprocess.Popen(
            [binary, "-console", "0", "-mode", "controller", "-home", "data", "-config", "config/controller.cfg",
             "-logFile", "log/controller.log", "-nodesFile", "config/cluster.nodes", "-clusterConfig", "config/cluster.cfg"],
            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [binary, "-console", "0", "-mode", "agent", "-home", "data", "-config", "config/agent.cfg",
             "-logFile", "log/agent.log"],
            cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    try:
        leader = None

        def up():
            nonlocal leader
            for ip in IPS:
                s = login(ip, 8800)
                if s is None:
                    continue
                try:
                    alias = s.run("getActiveMaster()")
                except Exception:
                    continue
                site = next(ip_ for ip_, i in zip(IPS, range(1, 4)) if alias == f"controller{i}")
                leader = (site, 8800)
                live = nodes(leader)
                return all(live.get(f"agent{i}") for i in range(1, 4))
            return False

        wait_for("the controllers and agents", up)
        yield root, leader
    finally:
        for p in procs:
            p.kill()
            p.wait()
        # The agents' children outlive them (as DolphinDB's do): stop them as stopAllNode.sh does.
        for pid in porpoise_children(root):
            try:
                os.kill(pid, 9)
            except OSError:
                pass
        shutil.rmtree(root, ignore_errors=True)


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
