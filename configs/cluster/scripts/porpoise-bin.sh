#!/bin/sh
# Locates the porpoise binary for the scripts beside this file: $PORPOISE_BIN if set, else a
# `porpoise` on PATH, else the repository's release or debug build.
if [ -n "${PORPOISE_BIN:-}" ]; then
    echo "$PORPOISE_BIN"
elif command -v porpoise >/dev/null 2>&1; then
    command -v porpoise
else
    here=$(cd "$(dirname "$0")" && pwd -P)
    for cand in "$here/../../../target/release/porpoise" "$here/../../../target/debug/porpoise"; do
        if [ -x "$cand" ]; then
            echo "$cand"
            exit 0
        fi
    done
    echo "porpoise binary not found: build it with 'cargo build --release' or set PORPOISE_BIN" >&2
    exit 1
fi
