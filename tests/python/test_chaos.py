"""The chaos script's short version (issue 17): three days of the tutorial's data through the
official client in high-availability mode while each data node, the leader controller and a
compute node are killed -9 in turn and restarted. `scripts/chaos.py --days 20` on a release
binary is the full run."""
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
CHAOS = os.path.join(HERE, "..", "..", "scripts", "chaos.py")


def test_ingest_through_kill_9_of_every_role_loses_and_doubles_nothing():
    run = subprocess.run(
        [sys.executable, CHAOS, "--days", "3", "--every", "2", "--pause", "2"],
        capture_output=True, text=True, timeout=1200, env=dict(os.environ))
    out = run.stdout + run.stderr
    print(out)
    assert run.returncode == 0, out
    summary = [line for line in run.stdout.splitlines() if line.startswith("ingested")]
    assert summary and " 0 lost, 0 doubled" in summary[0], out
    kills = [line for line in run.stdout.splitlines() if line.startswith("kill -9")]
    killed = {line.split()[2] for line in kills}
    assert {"datanode1", "datanode2", "datanode3", "computenode1", "computenode2"} <= killed, out
    assert any(k.startswith("controller") for k in killed), out
