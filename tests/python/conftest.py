"""Starts `porpoise -mode single` on loopback for the official-client tests.

PORPOISE_BIN names the binary (scripts/test-all.sh passes target/debug/porpoise)."""
import os
import socket
import subprocess
import tempfile
import time

import pytest

PORT = int(os.environ.get("PORPOISE_TEST_PORT", "18870"))


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    home = tempfile.mkdtemp(prefix="porpoise-pytest-")
    # stderr goes to a file, never to an unread pipe: a node whose stderr pipe fills blocks in
    # its next write, and the test waiting on it hangs.
    stderr = open(os.path.join(home, "stderr.log"), "wb")
    proc = subprocess.Popen(
        [binary, "-mode", "single", "-home", home, "-localSite", f"127.0.0.1:{PORT}:pytest1",
         "-logFile", os.path.join(home, "porpoise.log")],
        stdout=subprocess.DEVNULL, stderr=stderr)
    deadline = time.time() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                with open(os.path.join(home, "stderr.log"), "rb") as f:
                    raise RuntimeError(f"porpoise did not start: {f.read().decode()}")
            time.sleep(0.05)
    yield ("127.0.0.1", PORT)
    proc.terminate()
    proc.wait(timeout=10)
    stderr.close()
