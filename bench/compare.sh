#!/usr/bin/env bash
# Runs the peers (../shared/peers/peer_bench.py) and Porpoise's benchmarks back to back, so
# the figures come from the same machine state. Compare ratios, not absolute times.
#   bash bench/compare.sh [storage|startup] [peer names, default duckdb]
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
"$venv/bin/python" "$shared/peers/peer_bench.py" --peers "$peers" --reps 5 --json target/peers.json
cargo bench -p bench --bench "$what" 2>&1 | grep -E 'footprint|time:|thrpt:|^storage|^resolve|^check' | grep -v '%'
