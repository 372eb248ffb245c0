"""Chaos on the local 3-host cluster (issue 17): ingest days of the tutorial's data through the
official client with high availability while killing -9 one node at a time — each data node,
the leader controller, a compute node — and restarting it after a pause. At the end the rows
must be exactly what was acknowledged, every chunk COMPLETE with its replicas, and queries
answered throughout.

    PORPOISE_BIN=target/release/porpoise target/py-venv/bin/python scripts/chaos.py --days 20 \
        --every 1 --pause 1.5 --plan datanode1,leader,computenode2,datanode2,leader,computenode1,datanode3

prints one line per kill and a summary; exits non-zero when an invariant fails.
"""
import argparse
import json
import os
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "python"))

import dolphindb as ddb  # noqa: E402

from local_cluster import IPS, cluster, get, login, script  # noqa: E402

ROWS_PER_DAY = 1_210_000
# The client's sessions go to data nodes only (it keeps sites of mode 0 from getClusterPerf).
SITES = [f"{ip}:8802" for ip in IPS]
Q_DAYS = 'select count(*) as n from loadTable("dfs://testDB", "testTB") group by date(DateTime) as d'


def ha_session():
    s = ddb.session()
    s.connect(IPS[0], 8802, "admin", "123456", highAvailability=True, highAvailabilitySites=SITES)
    return s


def day_script(day, batch, batches):
    """The tutorial's simulation for day `day` (0 = 2023.01.08), securities of part `batch` of
    `batches` (the day's 5,000 split evenly), appended; returns its rows."""
    s = script("tutorial_step5.dos")
    sim = s[s.index("// simulate"):]
    per = 5000 // batches
    sim = sim.replace("n = 1210000", f"n = {per * 242}")
    sim = sim.replace("take(0..4999, 5000)", f"take({batch * per}..{batch * per + per - 1}, {per})")
    sim = sim.replace("2023.01.08T09:30:00", f"(2023.01.08T09:30:00 + {day} * 86400)")
    sim = sim.replace("2023.01.08T13:00:00", f"(2023.01.08T13:00:00 + {day} * 86400)")
    return sim + "\nsize(t)"


def leader_of():
    for ip in IPS:
        raft = get(ip, 8800, "/raft")
        site = json.loads(raft).get("leaderSite") if raft else None
        if site:
            h, p, alias = site.split(":")
            return (h, int(p)), alias
    return None, None


def states():
    site, _ = leader_of()
    s = login(*site) if site else None
    if not s:
        return None
    try:
        return s.run("exec state from getClusterChunksStatus()").tolist()
    except Exception:
        return None


def site_of(alias):
    i = int(alias[-1]) - 1
    port = {"controller": 8800, "datanode": 8802, "computenode": 8803}[alias.rstrip("123")]
    return IPS[i], port


def diagnose():
    """Prints what recovery is doing, for a wait that timed out."""
    site, _ = leader_of()
    s = login(*site) if site else None
    if not s:
        print("  no leader takes a login")
        return
    for q in ("select * from getClusterChunksStatus() where state != 'COMPLETE'",
              "select * from getRecoveryTaskStatus() where Status != 'Finished'"):
        try:
            print(s.run(q).to_string(), flush=True)
        except Exception as e:  # noqa: BLE001
            print(f"  {q}: {e}")


def wait(what, secs, ok):
    deadline = time.time() + secs
    while time.time() < deadline:
        if ok():
            return True
        time.sleep(0.2)
    print(f"  timed out waiting for {what}", flush=True)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=20)
    ap.add_argument("--pause", type=float, default=3.0, help="seconds a killed node stays down")
    ap.add_argument("--every", type=float, default=4.0, help="seconds between kills")
    ap.add_argument("--batches", type=int, default=10, help="appends per day (5000 must divide evenly)")
    ap.add_argument("--plan", default="datanode1,leader,computenode2,datanode2,datanode3,computenode1,leader",
                    help="the victims in turn, repeated (leader: the leader controller at the time)")
    args = ap.parse_args()
    binary = os.environ.get("PORPOISE_BIN")
    assert binary, "set PORPOISE_BIN to the porpoise binary"
    failures = []
    with cluster(binary, compute=True) as c:
        step5 = script("tutorial_step5.dos")
        login(IPS[0], 8802).run(step5[: step5.index("// simulate")])
        acked = {}
        errors = []
        done = threading.Event()

        def ingest():
            s = ha_session()
            for day in range(args.days):
                for batch in range(args.batches):
                    for attempt in range(5):
                        try:
                            acked[(day, batch)] = int(s.run(day_script(day, batch, args.batches)))
                            break
                        except Exception as e:  # noqa: BLE001 - reported below
                            # The server's message, without the script the client echoes.
                            why = str(e).split(" script: ")[0][:300]
                            errors.append(f"day {day} batch {batch} attempt {attempt}: {why}")
                            time.sleep(1)
            done.set()

        reads = {"ok": 0, "failed": 0, "last_error": ""}

        def reader():
            s = ha_session()
            while not done.is_set():
                try:
                    s.run('exec count(*) from loadTable("dfs://testDB", "testTB")')
                    reads["ok"] += 1
                except Exception as e:  # noqa: BLE001
                    reads["failed"] += 1
                    reads["last_error"] = str(e)
                time.sleep(0.3)

        started = time.time()
        threads = [threading.Thread(target=ingest), threading.Thread(target=reader)]
        for t in threads:
            t.start()
        plan = args.plan.split(",")
        kills = []
        k = 0
        # Kills go on while the ingest runs, and until every victim of the plan had its turn.
        while not done.is_set() or k < len(plan):
            time.sleep(args.every)
            victim = plan[k % len(plan)]
            k += 1
            if victim == "leader":
                _, victim = leader_of()
                if not victim:
                    continue
            during = not done.is_set()
            c.kill(victim)
            t_kill = time.time()
            time.sleep(args.pause)
            c.restart(victim)
            wait(f"{victim} to take a login", 60, lambda: login(*site_of(victim)) is not None)
            back = time.time()
            if victim.startswith("datanode"):
                if not wait("every chunk COMPLETE", 120, lambda: set(states() or ["?"]) <= {"COMPLETE"}):
                    diagnose()
                    failures.append(f"the replicas on {victim} did not recover within 120 s")
            recovered = time.time() - back
            kills.append((victim, round(back - t_kill, 2), round(recovered, 2), during))
            print(f"kill -9 {victim} ({'during' if during else 'after'} the ingest): back after {back - t_kill:.1f} s, "
                  f"recovered {recovered:.2f} s after its restart", flush=True)
        for t in threads:
            t.join(600)
        ingest_s = time.time() - started
        # The final state, once every chunk settled.
        wait("every chunk COMPLETE", 180, lambda: set(states() or ["?"]) == {"COMPLETE"})
        final_states = states() or []
        per_day = login(IPS[1], 8802).run(Q_DAYS)
        got = dict(zip(range(len(per_day)), per_day["n"].tolist()))
        acked_rows = sum(acked.values())
        counted = int(per_day["n"].sum())
        day_acked = {d: sum(n for (dd, _), n in acked.items() if dd == d) for d in range(args.days)}
        lost = sum(max(0, day_acked[d] - got.get(d, 0)) for d in range(args.days))
        doubled = sum(max(0, got.get(d, 0) - day_acked[d]) for d in range(args.days))
        replicas = login(*leader_of()[0]).run("exec replicaCount from getClusterChunksStatus()").tolist()
        print(f"ingested {args.days} days in {ingest_s:.1f} s with {len(kills)} kills: "
              f"{acked_rows} rows acknowledged, {counted} counted, {lost} lost, {doubled} doubled; "
              f"reads {reads['ok']} answered, {reads['failed']} failed; client errors {len(errors)}", flush=True)
        for e in errors:
            print("  client error:", e)
        if counted != acked_rows or lost or doubled:
            failures.append("the rows are not exactly what was acknowledged")
        if len(acked) != args.days * args.batches:
            failures.append(f"{args.days * args.batches - len(acked)} appends were never acknowledged")
        if set(final_states) != {"COMPLETE"}:
            failures.append(f"chunks not COMPLETE: {final_states}")
        if any(r != 2 for r in replicas):
            failures.append(f"replica counts {replicas}")
        if reads["failed"] > reads["ok"] // 5:
            failures.append(f"too many reads failed ({reads['failed']}; last: {reads['last_error']})")
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
