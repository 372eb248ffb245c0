"""The tutorial's Step 6, end to end through the official DolphinDB Python client, on
`computenode1` of the local 3-host cluster (3 controllers, 3 data nodes, 3 compute nodes on
127.0.0.80-82), after Step 5 on `datanode1`: the script as the tutorial gives it (load the
table's handle, Q1 downloaded, Q2 kept in `result` on the compute node), then `result`
downloaded to the client as a DataFrame, each timed from the client.

    PORPOISE_BIN=target/release/porpoise target/py-venv/bin/python bench/step6_client.py [reps]

`bash bench/compare.sh query` runs it after the criterion benchmarks."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from local_cluster import IPS, cluster, login, script  # noqa: E402


def timed(reps, f):
    times = []
    for _ in range(reps):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return min(times) * 1000, statistics.median(times) * 1000


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    binary = os.environ.get("PORPOISE_BIN", "target/release/porpoise")
    with cluster(binary, compute=True):
        login(IPS[0], 8802).run(script("tutorial_step5.dos"))
        s = login(IPS[0], 8803)
        step6 = script("tutorial_step6.dos")
        s.run(step6)  # once untimed: the first plan, connections, the data nodes' caches
        assert s.run("exec count(*) from result") == 5000
        step = timed(reps, lambda: s.run(step6))
        fetched = timed(reps, lambda: s.run("result"))
        assert len(s.run("result")) == 5000
    print(f"step6 via the official client on computenode1: min {step[0]:.1f} ms, "
          f"median {step[1]:.1f} ms over {reps} runs (loadTable, Q1 downloaded, Q2 into result)")
    print(f"result (5,000 OHLC rows) downloaded: min {fetched[0]:.1f} ms, median {fetched[1]:.1f} ms")


if __name__ == "__main__":
    main()
