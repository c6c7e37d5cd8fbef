"""The bad-input battery's setting: a live hero-fast Api, a *bystander* joined to
``defaultRoom`` and a *sayer* saying into it. After each offence the battery checks
that the bystander still gets the sayer's room message (``battery.check()``)."""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import struct
import uuid
import zlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
import websockets
from integration.conftest import make_project, merge

from hero_fast.app import Api

ROOMS = {"defaultRoom": {}, "anotherRoom": {}, **{f"r{i}": {} for i in range(25)}}

BATTERY_CONFIG: dict[str, Any] = {
    "general": {"startingChatRooms": ROOMS},
    "servers": {
        "websocket": {
            "server": {"pingInterval": 0, "origins": ["http://good.example"]},
            "handshakeTimeout": 1,
            "closeTimeout": 1,
            "frameTimeout": 1,
            "maxHeaderBytes": 2_000_000,  # big enough that 100k-item lists reach the parsers
            "writeBufferHigh": 65536,
            "writeBufferLow": 16384,
            "maxSendBuffer": 262144,
        }
    },
}


class Peer:
    """A well-behaved client (the ``websockets`` package, compression on): answers the
    Primus heartbeat, keeps everything pushed to it."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.inbox: asyncio.Queue[Any] = asyncio.Queue()
        self.seen: list[Any] = []
        self.task = asyncio.ensure_future(self._read())

    @classmethod
    async def connect(cls, api: Api, **kw: Any) -> Peer:
        ws = await asyncio.wait_for(
            websockets.connect(f"ws://127.0.0.1:{api.port}/primus", max_size=None, **kw), 5)
        return cls(ws)

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                m = json.loads(raw)
                if isinstance(m, str) and m.startswith("primus::ping::"):
                    await self.ws.send(json.dumps("primus::pong::" + m[14:]))
                    continue
                self.inbox.put_nowait(m)
        except websockets.ConnectionClosed:
            pass

    async def expect(self, pred: Callable[[Any], bool], timeout: float = 10) -> Any:
        for m in self.seen:
            if pred(m):
                self.seen.remove(m)
                return m

        async def wait() -> Any:
            while True:
                m = await self.inbox.get()
                if pred(m):
                    return m
                self.seen.append(m)

        return await asyncio.wait_for(wait(), timeout)

    async def request(self, event: str, **fields: Any) -> dict[str, Any]:
        mid = next(self.ids)
        await self.ws.send(json.dumps({"event": event, "messageId": mid, **fields}))
        return await self.expect(lambda m: isinstance(m, dict) and m.get("context") == "response"
                                 and m.get("messageId") == mid)  # type: ignore[no-any-return]

    async def close(self) -> None:
        await self.ws.close()
        self.task.cancel()


class Battery:
    def __init__(self, api: Api, bystander: Peer, sayer: Peer) -> None:
        self.api = api
        self.bystander = bystander
        self.sayer = sayer
        self.port = api.port
        self.checks = 0

    @property
    def counters(self) -> dict[str, int]:
        assert self.api.server is not None
        return self.api.server.counters

    async def check(self) -> None:
        """The bystander still gets room messages (and the server is alive)."""
        token = f"check-{uuid.uuid4()}"
        r = await self.sayer.request("say", room="defaultRoom", message={"t": token})
        assert r.get("status") == "OK", r
        m = await self.bystander.expect(
            lambda m: isinstance(m, dict) and m.get("context") == "user" and m.get("message") == {"t": token})
        assert m["room"] == "defaultRoom"
        self.checks += 1


async def start(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Api:
    api = Api(make_project(tmp_path), overrides=merge(BATTERY_CONFIG, overrides or {}))
    await api.start(host="127.0.0.1", port=0)
    return api


@pytest.fixture
async def battery(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Battery]:
    marker = request.node.get_closest_marker("battery_config")
    api = await start(tmp_path, marker.args[0] if marker else None)
    bystander = await Peer.connect(api)
    sayer = await Peer.connect(api)
    try:
        for p in (bystander, sayer):
            assert (await p.request("roomAdd", room="defaultRoom"))["status"] == "OK"
        b = Battery(api, bystander, sayer)
        await b.check()
        yield b
        await b.check()  # once more after the test, whatever it did
        assert b.checks >= 3, "the test must call battery.check() after its offence"
    finally:
        close_raw()  # offenders first: a shutdown would wait for their close frames
        await bystander.close()
        await sayer.close()
        await asyncio.wait_for(api.stop(), 10)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "battery_config(overrides): config overrides for the battery's Api")


# -- raw offenders ------------------------------------------------------------------------------

_raw: list[asyncio.StreamWriter] = []


def close_raw() -> None:
    while _raw:
        w = _raw.pop()
        if not w.is_closing():
            w.close()


@pytest.fixture(autouse=True)
async def _close_raw() -> AsyncIterator[None]:
    yield
    close_raw()


async def raw_open(port: int, **kw: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, **kw)
    _raw.append(writer)
    return reader, writer


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def upgrade(path: str = "/primus", *, key: str | None = None, method: str = "GET", version: str = "1.1",
            extra: tuple[tuple[str, str], ...] = (), omit: tuple[str, ...] = ()) -> bytes:
    headers = {"Host": "127.0.0.1", "Upgrade": "websocket", "Connection": "Upgrade",
               "Sec-WebSocket-Key": key or new_key(), "Sec-WebSocket-Version": "13"}
    for name in omit:
        headers.pop(name, None)
    lines = [f"{method} {path} HTTP/{version}", *(f"{k}: {v}" for k, v in headers.items()),
             *(f"{k}: {v}" for k, v in extra)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def read_response(reader: asyncio.StreamReader, timeout: float = 10) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(n), timeout) if n else b""
    return status, headers, body


async def raw_ws(port: int, extra: tuple[tuple[str, str], ...] = ()) -> tuple[
        asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw WebSocket after the 101 and the welcome message."""
    reader, writer = await raw_open(port)
    writer.write(upgrade(extra=extra))
    status, _, _ = await read_response(reader)
    assert status == 101
    _, op, payload = await read_frame(reader)
    if extra and b"welcome" not in payload:  # permessage-deflate compressed it (it carries a recovery token)
        payload = zlib.decompressobj(-15).decompress(payload + b"\x00\x00\xff\xff")
    assert op == 1 and b"welcome" in payload
    return reader, writer


def frame(opcode: int, payload: bytes | str = b"", *, fin: bool = True, rsv: int = 0,
          key: bytes | None = b"\x11\x22\x33\x44") -> bytes:
    if isinstance(payload, str):
        payload = payload.encode()
    n = len(payload)
    head = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    m = 0x80 if key is not None else 0
    if n <= 125:
        head += bytes([m | n])
    elif n <= 0xFFFF:
        head += bytes([m | 126]) + struct.pack("!H", n)
    else:
        head += bytes([m | 127]) + struct.pack("!Q", n)
    if key is None:
        return head + payload
    return head + key + _fast_mask(payload, key)


def _fast_mask(payload: bytes, key: bytes) -> bytes:
    if not payload:
        return b""
    k = (key * (len(payload) // 4 + 1))[: len(payload)]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(len(payload), "big")


async def read_frame(reader: asyncio.StreamReader, timeout: float = 10) -> tuple[bool, int, bytes]:
    async def read() -> tuple[bool, int, bytes]:
        b0, b1 = await reader.readexactly(2)
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", await reader.readexactly(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", await reader.readexactly(8))[0]
        return bool(b0 & 0x80), b0 & 0x0F, await reader.readexactly(n)

    return await asyncio.wait_for(read(), timeout)


async def read_until_close(reader: asyncio.StreamReader, timeout: float = 10) -> tuple[int, str, list[bytes]]:
    """Frames until the close frame: (close code, reason, the data payloads before it)."""
    before = []
    while True:
        _, op, payload = await read_frame(reader, timeout)
        if op == 8:
            return struct.unpack("!H", payload[:2])[0], payload[2:].decode(), before
        before.append(payload)


async def eof_within(reader: asyncio.StreamReader, timeout: float) -> bool:
    async def drain() -> None:
        while True:
            try:
                if not await reader.read(65536):
                    return
            except ConnectionError:
                return

    try:
        await asyncio.wait_for(drain(), timeout)
        return True
    except asyncio.TimeoutError:
        return False
