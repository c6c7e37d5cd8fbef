"""Soak: 20,000 connect / roomAdd / say / disconnect cycles against a live Api on
uvloop, from several concurrent raw clients. Afterwards every count is back to its
baseline — engine and app connections, room members, the engine's one timer,
asyncio tasks — and RSS grew by less than 5% after a warm-up."""

from __future__ import annotations

import asyncio
import gc
import json
import os
import struct
import time
from pathlib import Path

import pytest

from .conftest import frame, new_key, start

CYCLES = int(os.environ.get("HERO_FAST_SOAK_CYCLES", "20000"))
WARMUP = 2000
CLIENTS = 16
PAGE = os.sysconf("SC_PAGE_SIZE")


def rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE


def cycle_bytes(i: int) -> bytes:
    """One whole client session in one write: upgrade, join, say, close."""
    head = ("GET /primus HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {new_key()}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode()
    return (head + frame(1, json.dumps({"event": "roomAdd", "room": "defaultRoom", "messageId": 1}))
            + frame(1, json.dumps({"event": "say", "room": "defaultRoom", "messageId": 2, "message": i}))
            + frame(8, struct.pack("!H", 1000)))


async def one_cycle(port: int, i: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(cycle_bytes(i))
        data = b""
        while True:  # until the server closes after the close handshake
            chunk = await reader.read(65536)
            if not chunk:
                break
            data += chunk
        return data
    finally:
        writer.close()


async def run_cycles(port: int, start_i: int, n: int) -> None:
    counter = iter(range(start_i, start_i + n))

    async def client() -> None:
        for i in counter:
            data = await one_cycle(port, i)
            assert data.startswith(b"HTTP/1.1 101 "), data[:80]
            assert b'"messageId":2' in data and b'"status":"OK"' in data, data[-300:]
            assert (b'"message":%d,' % i) in data  # the sayer got its own chat message
            assert data.endswith(b"\x88\x02\x03\xe8"), data[-20:]  # the close echo, then EOF

    await asyncio.wait_for(asyncio.gather(*(client() for _ in range(CLIENTS))), 120)


@pytest.mark.slow
def test_soak_connect_join_say_disconnect(tmp_path: Path) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = uvloop.new_event_loop()
    try:
        loop.run_until_complete(asyncio.wait_for(soak(tmp_path), 150))
    finally:
        loop.close()


async def settled(api, server) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not server.connections and not api.connections.by_id and not api._tasks:
            return
        await asyncio.sleep(0.02)


async def soak(tmp_path: Path) -> None:
    api = await start(tmp_path, {"servers": {"websocket": {"maxConnections": 100_000, "closeTimeout": 5}}})
    server = api.server
    try:
        port = api.port
        room = api.chat_room.rooms["defaultRoom"]
        tasks_before = len(asyncio.all_tasks())
        await run_cycles(port, 0, WARMUP)
        await settled(api, server)
        gc.collect()
        rss_warm = rss()
        started = time.monotonic()
        await run_cycles(port, WARMUP, CYCLES - WARMUP)
        elapsed = time.monotonic() - started
        await settled(api, server)
        gc.collect()
        rss_after = rss()
        # everything back to baseline
        assert len(server.connections) == 0
        assert server.accepted == 0 and server.ip_counts == {}
        assert api.connections.by_id == {}
        assert room.members == {} and room.sockets() == []
        assert all(not r.members for r in api.chat_room.rooms.values())
        assert len(api.websocket.sockets) == 0
        assert len(asyncio.all_tasks()) == tasks_before
        assert server.timer is not None and not server.timer.cancelled()  # the one engine timer
        assert server.counters["protocol_errors"] == 0 and server.counters["close_timeouts"] == 0
        growth = (rss_after - rss_warm) / rss_warm
        print(f"\nsoak: {CYCLES - WARMUP} cycles in {elapsed:.1f}s after {WARMUP} warm-up; "
              f"RSS {rss_warm / 2**20:.1f} -> {rss_after / 2**20:.1f} MiB ({growth:+.2%})")
        assert growth < 0.05
    finally:
        await asyncio.wait_for(api.stop(), 10)
