#!/usr/bin/env bash
# Runs everything CI runs: formatting, lints (both backends), the tests on the real runtime,
# and the simulation tests over the fixed seed list. README.md names this as the test command.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (glommio)"
cargo clippy --workspace --all-targets -- -D warnings

echo "== cargo test (glommio)"
cargo test --workspace

echo "== the official DolphinDB Python and JavaScript clients against porpoise processes"
cargo build -p node --bin porpoise
venv=target/py-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
# The official JavaScript API (npm `dolphindb`, pinned in tests/js/package-lock.json).
(cd tests/js && npm ci --no-audit --no-fund --loglevel=error)
PORPOISE_BIN="$PWD/target/debug/porpoise" "$venv/bin/python" -m pytest -q tests/python

echo "== cargo clippy (madsim)"
CARGO_TARGET_DIR=target/sim RUSTFLAGS="--cfg madsim" cargo clippy --workspace --all-targets -- -D warnings

echo "== simulation tests (madsim)"
bash scripts/test-sim.sh

echo "== disk used by target/ (D79)"
du -sh target/debug target/sim 2>/dev/null || true
