"""Helpers for transport tests: servers on 127.0.0.1, raw HTTP/WebSocket clients."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import struct

from hero_fast._core import accept_key
from hero_fast._transport import Options, Server, WebSocketProtocol, serve

HOST = "127.0.0.1"

# Short timers so timeout behaviour shows up quickly (every test is bounded anyway).
FAST = dict(tick=0.05, handshake_timeout=5.0, close_timeout=5.0, ping_interval=0, keepalive_timeout=5.0)


# raw client connections opened by a test, closed when its server stops
_open_writers: list[asyncio.StreamWriter] = []


def _close_raw_clients():
    while _open_writers:
        w = _open_writers.pop()
        if not w.is_closing():
            w.close()


@contextlib.asynccontextmanager
async def serving(handler, **opts):
    options = Options(**{**FAST, **opts})
    server = await serve(handler, HOST, 0, options=options)
    try:
        yield server
    finally:
        _close_raw_clients()
        await server.shutdown(timeout=1.0)


class CountingTransport:
    """Wraps the loop's transport to count ``write`` calls (works on uvloop too,
    whose transports cannot be patched)."""

    def __init__(self, transport, log):
        self._t = transport
        self._log = log

    def write(self, data):
        self._log.append(bytes(data))
        self._t.write(data)

    def writelines(self, chunks):
        # one call, one entry: uvloop sends the list with a single writev
        self._log.append(b"".join(chunks))
        self._t.writelines(chunks)

    def __getattr__(self, name):
        return getattr(self._t, name)


@contextlib.asynccontextmanager
async def serving_counted(handler, **opts):
    """Like ``serving``; yields (server, writes) where ``writes`` lists every
    ``transport.write`` payload of every connection, in order."""
    loop = asyncio.get_running_loop()
    options = Options(**{**FAST, **opts})
    server = Server(handler, options, loop)
    writes: list[bytes] = []

    class Counting(WebSocketProtocol):
        def connection_made(self, transport):
            super().connection_made(CountingTransport(transport, writes))

    server.aio_server = await loop.create_server(lambda: Counting(server), HOST, 0)
    try:
        yield server, writes
    finally:
        _close_raw_clients()
        await server.shutdown(timeout=1.0)


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade_request(path="/", key=None, *, method="GET", version="1.1", extra=(), omit=()) -> bytes:
    key = key or new_key()
    headers = {
        "Host": "127.0.0.1",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key,
        "Sec-WebSocket-Version": "13",
    }
    for name in omit:
        headers.pop(name, None)
    lines = [f"{method} {path} HTTP/{version}"] + [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"{k}: {v}" for k, v in extra]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def open_raw(port):
    reader, writer = await asyncio.open_connection(HOST, port)
    _open_writers.append(writer)
    return reader, writer


async def read_response(reader, *, head_only=False):
    """(status, reason, headers dict lower-case, body) of one HTTP response."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    _, status, reason = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    body = b""
    n = int(headers.get("content-length", "0"))
    if n and not head_only:
        body = await reader.readexactly(n)
    return int(status), reason, headers, body


async def read_to_eof(reader, timeout=5.0) -> bytes:
    """Everything until the server closes (EOF or reset)."""
    out = b""
    async def _read():
        nonlocal out
        while True:
            try:
                chunk = await reader.read(65536)
            except (ConnectionResetError, BrokenPipeError):
                return
            if not chunk:
                return
            out += chunk
    await asyncio.wait_for(_read(), timeout)
    return out


async def ws_raw(port, path="/", **kw):
    """A raw WebSocket client after a successful handshake: (reader, writer)."""
    reader, writer = await open_raw(port)
    key = new_key()
    writer.write(upgrade_request(path, key, **kw))
    status, _, headers, _ = await read_response(reader)
    assert status == 101, status
    assert headers["sec-websocket-accept"] == accept_key(key)
    return reader, writer


def mask_frame(opcode, payload=b"", fin=True, key=b"\x11\x22\x33\x44", masked=True) -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | opcode])
    mbit = 0x80 if masked else 0
    if n <= 125:
        head += bytes([mbit | n])
    elif n <= 0xFFFF:
        head += bytes([mbit | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mbit | 127]) + struct.pack("!Q", n)
    if not masked:
        return head + payload
    return head + key + bytes(b ^ key[i & 3] for i, b in enumerate(payload))


async def read_frame(reader):
    """(fin, opcode, payload) of one unmasked server frame."""
    b0, b1 = await reader.readexactly(2)
    assert not b1 & 0x80, "server frames are never masked"
    n = b1 & 0x7F
    if n == 126:
        (n,) = struct.unpack("!H", await reader.readexactly(2))
    elif n == 127:
        (n,) = struct.unpack("!Q", await reader.readexactly(8))
    return bool(b0 & 0x80), b0 & 0x0F, await reader.readexactly(n)


def close_code(payload: bytes) -> int:
    return struct.unpack("!H", payload[:2])[0]


async def wait_until(predicate, timeout=5.0, interval=0.01):
    async def _poll():
        while not predicate():
            await asyncio.sleep(interval)
    await asyncio.wait_for(_poll(), timeout)


class StrEchoHandler:
    """The echo handler written against the str/bytes ``on_message`` API (subclassed by
    tests that override on_message; ``hero_fast.echo.EchoHandler`` uses ``on_data``)."""

    def on_message(self, conn, message):
        conn.send(message)
