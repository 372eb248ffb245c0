"""The official DolphinDB JavaScript API (npm `dolphindb`, unmodified) over WebSocket on a
node's own port (D105), and the WebSocket layer's answers to frames a server must refuse."""
import base64
import hashlib
import os
import socket
import struct

from js_api import run_suite

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def test_the_javascript_api_suite_passes_against_a_single_node(server):
    report = run_suite(*server)
    assert "# pass 8" in report, report


def upgrade(server, version="13"):
    """A raw WebSocket upgrade; returns the socket and the response head."""
    s = socket.create_connection(server, timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall((f"GET / HTTP/1.1\r\nHost: {server[0]}:{server[1]}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               f"Sec-WebSocket-Version: {version}\r\n\r\n").encode())
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        assert chunk, head
        head += chunk
    want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
    return s, head.decode(), want


def frame(opcode, payload, masked=True):
    mask = os.urandom(4)
    head = bytes([0x80 | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([(0x80 if masked else 0) | n])
    else:
        head += bytes([(0x80 if masked else 0) | 126]) + struct.pack(">H", n)
    if not masked:
        return head + payload
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(s):
    def exact(n):
        b = b""
        while len(b) < n:
            chunk = s.recv(n - len(b))
            assert chunk, "connection closed mid-frame"
            b += chunk
        return b
    b0, b1 = exact(2)
    n = b1 & 0x7F
    if n == 126:
        n = struct.unpack(">H", exact(2))[0]
    elif n == 127:
        n = struct.unpack(">Q", exact(8))[0]
    assert b1 & 0x80 == 0, "server frames are never masked"
    return b0 & 0x0F, exact(n)


def script_over_websocket(s, text):
    """One `script` request; returns the print messages and the reply."""
    body = b"script\n" + text
    s.sendall(frame(0x2, b"API2 0 %d / 0_1_4_64\n" % len(body) + body))
    printed = []
    while True:
        op, payload = read_frame(s)
        assert op == 0x2, (op, payload)
        if not payload.startswith(b"MSG\n"):
            return printed, payload
        printed.append(payload)


def test_the_handshake_answers_with_the_accept_key_and_api_frames_flow(server):
    s, head, want = upgrade(server)
    assert head.startswith("HTTP/1.1 101"), head
    assert f"Sec-WebSocket-Accept: {want}" in head, head
    printed, reply = script_over_websocket(s, b"print(`hi)\n1 + 2")
    assert printed == [b"MSG\nhi\x00"], "print output is its own message"
    status, rest = reply.split(b"\n", 1)
    assert status.endswith(b" 1 1") and rest.startswith(b"OK\n"), reply


def test_a_ping_is_answered_and_a_close_is_echoed(server):
    s, head, _ = upgrade(server)
    assert head.startswith("HTTP/1.1 101")
    s.sendall(frame(0x9, b"are you there"))
    assert read_frame(s) == (0xA, b"are you there")
    s.sendall(frame(0x8, struct.pack(">H", 1000)))
    assert read_frame(s) == (0x8, struct.pack(">H", 1000))


def test_garbage_frames_close_that_connection_only(server):
    cases = [(frame(0x2, b"API2 0 4 / 0\nabcd", masked=False), 1002),  # an unmasked client frame
             (bytes([0x83, 0x80, 0, 0, 0, 0]), 1002),                    # unknown opcode 3
             (bytes([0xC2, 0x80, 0, 0, 0, 0]), 1002),                    # a reserved bit
             (frame(0x2, b"this is not an API request\n"), None)]       # not an API header
    for bad, code in cases:
        s, head, _ = upgrade(server)
        assert head.startswith("HTTP/1.1 101"), head
        s.sendall(bad)
        got = b""
        while True:
            try:
                chunk = s.recv(4096)
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
        if code is None:
            assert got == b"", (bad, got)
        else:
            assert got[:2] == bytes([0x88, len(got) - 2]), (bad, got)
            assert struct.unpack(">H", got[2:4])[0] == code, got
    # The node still serves a fresh WebSocket session.
    s, head, _ = upgrade(server)
    assert script_over_websocket(s, b"6 * 7")[1].split(b"\n")[1] == b"OK"


def test_an_unknown_websocket_version_gets_426(server):
    s, head, _ = upgrade(server, version="8")
    assert head.startswith("HTTP/1.1 426"), head
    assert "Sec-WebSocket-Version: 13" in head, head
