#!/usr/bin/env bash
# Runs the peers (../shared/peers/peer_bench.py) and Porpoise's benchmarks back to back, so
# the figures come from the same machine state. Compare ratios, not absolute times.
#   bash bench/compare.sh [storage|startup|query|ingest|timeseries] [peer names, default duckdb]
# `ingest` runs the peers' durable ingest of 1.21M rows, then ingest.rs on the local cluster, then
# the tutorial's Step 5 end to end through the official Python client (bench/step5_client.py).
# `query` runs the peers over 1 and 20 days of the tutorial's data (Q1, Q2), then query.rs (the
# single node), cluster_query.rs (the local 3-host cluster through computenode1) and Step 6 end
# to end through the official Python client on computenode1 (bench/step6_client.py).
# `timeseries` runs bench/ts_peers.py (moving average, as-of join, 5-minute bars in Polars and
# DuckDB), then timeseries.rs.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-storage}
peers=${2:-duckdb}
shared=${PORPOISE_SHARED:-../shared}
venv=${PEERS_VENV:-target/peers-venv}
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q -r "$shared/peers/requirements.txt"
fi
if [ "$what" = timeseries ]; then
    PORPOISE_SHARED="$shared" "$venv/bin/python" bench/ts_peers.py --peers "$peers" --reps 5 \
        --json target/peers-timeseries.json
elif [ "$what" = query ]; then
    for days in 1 20; do
        "$venv/bin/python" "$shared/peers/peer_bench.py" --peers "$peers" --days "$days" --reps 5 \
            --json "target/peers-${days}d.json"
    done
else
    "$venv/bin/python" "$shared/peers/peer_bench.py" --peers "$peers" --reps 5 --json target/peers.json
fi
if [ "$what" = ingest ] || [ "$what" = query ]; then
    cargo build --release -p node --bin porpoise
fi
benches=$what
[ "$what" = query ] && benches="query cluster_query"
for b in $benches; do
    cargo bench -p bench --bench "$b" 2>&1 | grep -E 'footprint|time:|thrpt:|^storage|^resolve|^check|^query|^ingest|^timeseries' | grep -v '%'
done
if [ "$what" = ingest ] || [ "$what" = query ]; then
    # Step 5 (ingest) or Step 6 (query) end to end through the official client (the tests' venv).
    pyvenv=target/py-venv
    [ -x "$pyvenv/bin/python" ] || python3 -m venv "$pyvenv"
    "$pyvenv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
    client=bench/step5_client.py
    [ "$what" = query ] && client=bench/step6_client.py
    PORPOISE_BIN="$PWD/target/release/porpoise" "$pyvenv/bin/python" "$client" 5
fi
