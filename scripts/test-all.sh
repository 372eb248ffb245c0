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

echo "== the official DolphinDB Python client (dolphindb==3.0.6.1) against porpoise -mode single"
cargo build -p node --bin porpoise
venv=target/py-venv
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r tests/python/requirements.txt
PORPOISE_BIN="$PWD/target/debug/porpoise" "$venv/bin/python" -m pytest -q tests/python

echo "== cargo clippy (madsim)"
CARGO_TARGET_DIR=target/sim RUSTFLAGS="--cfg madsim" cargo clippy --workspace --all-targets -- -D warnings

echo "== simulation tests (madsim)"
bash scripts/test-sim.sh

echo "== disk used by target/ (D79)"
du -sh target/debug target/sim 2>/dev/null || true
