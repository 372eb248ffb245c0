"""Runs the official DolphinDB JavaScript API's suite (tests/js/api.test.mjs, npm package
`dolphindb`) against a node over WebSocket. scripts/test-all.sh installs it with `npm ci`."""
import os
import subprocess

JS_DIR = os.path.join(os.path.dirname(__file__), "..", "js")


def run_suite(host, port, timeout=120):
    """`node --test` of the suite against ws://host:port; fails with its report unless it
    passes."""
    if not os.path.isdir(os.path.join(JS_DIR, "node_modules", "dolphindb")):
        raise AssertionError("the JavaScript API is not installed: run `npm ci` in tests/js")
    env = dict(os.environ, PORPOISE_WS=f"ws://{host}:{port}")
    r = subprocess.run(["node", "--test", "api.test.mjs"], cwd=JS_DIR, env=env,
                       capture_output=True, text=True, timeout=timeout)
    report = r.stdout + r.stderr
    assert r.returncode == 0, report
    assert "# fail 0" in report and "# pass 0" not in report, report
    return report
