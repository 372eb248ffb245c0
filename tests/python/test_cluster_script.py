"""`configs/cluster/cluster.sh up | status | down`: the tutorial's whole topology in one
command — controllers and agents by their start scripts, data and compute nodes by the agents
on the leader's `startDataNode` — run from a copy of `configs/cluster`."""
import os
import shutil
import subprocess
import tempfile

from local_cluster import HERE, IPS, login


def sh(root, *args):
    env = dict(os.environ, PORPOISE_BIN=os.environ["PORPOISE_BIN"])
    return subprocess.run(["sh", os.path.join(root, "cluster.sh"), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def test_one_command_brings_the_topology_up_shows_it_and_takes_it_down():
    root = os.path.join(tempfile.mkdtemp(prefix="porpoise-topology-"), "cluster")
    shutil.copytree(os.path.join(HERE, "..", "..", "configs", "cluster"), root, symlinks=True)
    try:
        up = sh(root, "up")
        assert up.returncode == 0, up.stdout + up.stderr
        assert "the cluster is up" in up.stdout
        status = sh(root, "status")
        assert status.returncode == 0, status.stderr
        lines = [l.split() for l in status.stdout.splitlines()[1:]]
        online = {l[0] for l in lines if l[-1] == "online"}
        assert {f"{r}{i}" for r in ("agent", "datanode", "computenode") for i in (1, 2, 3)} <= online, status.stdout
        assert login(IPS[2], 8803).run("1 + 2") == 3
        down = sh(root, "down")
        assert down.returncode == 0, down.stdout + down.stderr
        assert "the cluster is down" in down.stdout
        assert sh(root, "status").returncode == 1
    finally:
        sh(root, "down")
        shutil.rmtree(os.path.dirname(root), ignore_errors=True)
