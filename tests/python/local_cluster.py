"""The tutorial's local cluster for the official-client tests and benchmarks: three
controllers and three data nodes on 127.0.0.80-82, each host from its own copy of
configs/cluster/<host>, the data nodes started with the command line an agent uses."""
import contextlib
import json
import os
import shutil
import subprocess
import tempfile
import time
import urllib.request

import dolphindb as ddb

HOSTS = ["P1", "P2", "P3"]
IPS = ["127.0.0.80", "127.0.0.81", "127.0.0.82"]
HERE = os.path.dirname(os.path.abspath(__file__))


def get(ip, port, path):
    try:
        with urllib.request.urlopen(f"http://{ip}:{port}{path}", timeout=2) as r:
            return r.read().decode()
    except OSError:
        return None


def login(ip, port):
    s = ddb.session()
    try:
        if s.connect(ip, port, "admin", "123456"):
            return s
    except Exception:
        pass
    return None


@contextlib.contextmanager
def running(binary):
    """Starts the cluster from `binary`; yields the leader controller's (ip, port) once every
    data node is live and datanode1 takes a login; kills every process on the way out."""
    with cluster(binary) as c:
        yield c.leader


class Cluster:
    """A running local cluster: the leader controller's (ip, port) and each process by alias."""

    def __init__(self, leader, procs, root, commands):
        self.leader = leader
        self.procs = procs
        self.root = root
        self.commands = commands

    def log(self, host, name):
        """The text of log `name` (e.g. `computenode1.log`) under host `host`'s `log/`."""
        with open(os.path.join(self.root, host, "log", name), errors="replace") as f:
            return f.read()

    def kill(self, alias):
        """`kill -9` of one node."""
        p = self.procs[alias]
        p.kill()
        p.wait()

    def restart(self, alias):
        """Starts a killed node again with its command line (its home kept)."""
        args, cwd = self.commands[alias]
        self.procs[alias] = subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@contextlib.contextmanager
def cluster(binary, compute=False):
    """[running], optionally with computenode1-3 on port 8803 (each host's compute node, as
    an agent starts it); yields a [Cluster] once every node takes a login."""
    root = tempfile.mkdtemp(prefix="porpoise-cluster-")
    procs = {}
    commands = {}

    def spawn(alias, args, cwd):
        commands[alias] = (args, cwd)
        return subprocess.Popen(args, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    for i, (h, ip) in enumerate(zip(HOSTS, IPS), start=1):
        d = os.path.join(root, h)
        shutil.copytree(os.path.join(HERE, "..", "..", "configs", "cluster", h), d)
        os.makedirs(os.path.join(d, "log"))
        procs[f"controller{i}"] = (spawn(f"controller{i}",
            [binary, "-console", "0", "-mode", "controller", "-home", "data", "-config", "config/controller.cfg",
             "-logFile", "log/controller.log", "-nodesFile", "config/cluster.nodes", "-clusterConfig", "config/cluster.cfg"],
            d))
        procs[f"datanode{i}"] = (spawn(f"datanode{i}",
            [binary, "-console", "0", "-mode", "datanode", "-home", "data", "-localSite", f"{ip}:8802:datanode{i}",
             "-controllerSite", f"{ip}:8800:controller{i}", "-clusterConfig", "config/cluster.cfg",
             "-logFile", f"log/datanode{i}.log"],
            d))
        if compute:
            procs[f"computenode{i}"] = spawn(f"computenode{i}",
                [binary, "-console", "0", "-mode", "computenode", "-home", "data", "-localSite",
                 f"{ip}:8803:computenode{i}", "-controllerSite", f"{ip}:8800:controller{i}",
                 "-clusterConfig", "config/cluster.cfg", "-logFile", f"log/computenode{i}.log"],
                d)
    try:
        deadline = time.time() + 60
        leader = None
        while time.time() < deadline:
            raft = get(IPS[0], 8800, "/raft")
            site = json.loads(raft).get("leaderSite") if raft else None
            if site:
                ip, port, _ = site.split(":")
                nodes = get(ip, int(port), "/nodes") or ""
                if all(f"datanode{i},{ip_},8802,DataNode,true" in nodes for i, ip_ in enumerate(IPS, start=1)):
                    leader = (ip, int(port))
                    break
            time.sleep(0.2)
        assert leader, "the cluster did not come up"
        # Wait for a login, not a TCP accept.
        ports = [8802, 8803] if compute else [8802]
        for ip in IPS:
            for port in ports:
                while time.time() < deadline and not login(ip, port):
                    time.sleep(0.2)
        yield Cluster(leader, procs, root, commands)
    finally:
        for p in procs.values():
            p.kill()
            p.wait()
        if os.environ.get("PORPOISE_KEEP_CLUSTER"):
            print(f"cluster homes kept in {root}", flush=True)
        else:
            shutil.rmtree(root, ignore_errors=True)


def script(name):
    with open(os.path.join(HERE, "..", "..", "lang", "tests", "scripts", name)) as f:
        return f.read()


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
    raise AssertionError(f"timed out waiting for {what}")



@contextlib.contextmanager
def agents_topology(binary):
    """The tutorial's Step 4 starting point: each host's controller and agent started by hand
    (as startController.sh and startagent.sh do), nothing else; yields (root, leader) once the
    leader sees every agent. Every process started from a host's directory is killed on the
    way out, the agents' children too (as stopAllNode.sh does)."""
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


