"""The tutorial's Step 5, end to end through the official DolphinDB Python client, on the
local 3-host cluster (RF 2, 2PC, dataSync=1): the script as the tutorial gives it — create the
database, generate the 1.21M rows, append them — run on datanode1, timed from the client.

    PORPOISE_BIN=target/release/porpoise target/py-venv/bin/python bench/step5_client.py [reps]

`bash bench/compare.sh ingest` runs it after the criterion benchmark."""
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "python"))
from local_cluster import IPS, login, running, script  # noqa: E402


def main():
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    binary = os.environ.get("PORPOISE_BIN", "target/release/porpoise")
    step5 = script("tutorial_step5.dos")
    with running(binary):
        s = login(IPS[0], 8802)
        s.run(step5)  # once untimed: placement, connections, caches
        times = []
        for _ in range(reps):
            start = time.perf_counter()
            s.run(step5)
            times.append(time.perf_counter() - start)
        n = login(IPS[1], 8802).run('exec count(*) from loadTable("dfs://testDB", "testTB")')
        assert n == 1210000, n
    print(f"step5 via the official client on datanode1: min {min(times) * 1000:.0f} ms, "
          f"median {statistics.median(times) * 1000:.0f} ms over {reps} runs "
          f"(drop, create, generate 1.21M rows, append)")


if __name__ == "__main__":
    main()
