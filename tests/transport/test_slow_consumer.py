"""A receiver that stops reading must not stall the sender or the others, and
must not grow our memory: past max_send_buffer its messages are dropped (and
counted), or it is closed with 1008."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _nethelpers import read_frame, serving, wait_until, ws_raw

from hero_fast._core import encode_frame
from hero_fast._transport import Connection, fanout

HIGH = 16 * 1024
CAP = 64 * 1024
SIZE = 16 * 1024


class Collect:
    def __init__(self) -> None:
        self.conns: list[Connection] = []

    def on_connect(self, conn: Connection) -> None:
        self.conns.append(conn)


async def _slow_and_fast(port: int):
    slow_reader, slow_writer = await ws_raw(port)
    sock = slow_writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    slow_writer.transport.pause_reading()  # never read again
    fast_reader, fast_writer = await ws_raw(port)
    return (slow_reader, slow_writer), (fast_reader, fast_writer)


async def _flood(server, handler: Collect, fast_reader, stop) -> tuple[int, int]:
    """Fan out SIZE-byte messages until ``stop()`` or a bound; the fast client
    must get every one. Returns (sent, received by the fast client)."""
    received = 0
    sent = 0
    payload = b"x" * SIZE

    async def read_all() -> None:
        nonlocal received
        while True:
            _, op, data = await read_frame(fast_reader)
            if op == 2:
                assert len(data) == SIZE
                received += 1

    reader_task = asyncio.ensure_future(read_all())
    try:
        frame = encode_frame(2, payload)
        while sent < 4000 and not stop():
            for _ in range(8):
                fanout(frame, handler.conns)
                sent += 1
            await asyncio.sleep(0)
        await wait_until(lambda: received == sent, timeout=10)
    finally:
        reader_task.cancel()
    return sent, received


def test_slow_consumer_messages_dropped_others_unaffected(run) -> None:
    async def main() -> None:
        handler = Collect()
        async with serving(handler, write_buffer_high=HIGH, write_buffer_low=HIGH // 4,
                           max_send_buffer=CAP, slow_consumer="drop") as server:
            _, (fast_reader, _) = await _slow_and_fast(server.port)
            await wait_until(lambda: len(handler.conns) == 2)
            slow = handler.conns[0]
            counters = server.counters
            sent, received = await _flood(server, handler, fast_reader,
                                          lambda: counters["messages_dropped"] > 50)
            assert received == sent
            assert counters["messages_dropped"] > 50
            assert counters["bytes_dropped"] >= counters["messages_dropped"] * SIZE
            assert counters["slow_consumer_closes"] == 0
            assert slow.open
            # memory bounded: the transport takes at most one flush past the
            # high-water mark, and the queue behind it holds at most the cap
            assert slow.buffered_amount <= HIGH + 2 * (CAP + SIZE + 16)

    run(main(), timeout=30)


def test_slow_consumer_closed_with_1008(run) -> None:
    async def main() -> None:
        handler = Collect()
        async with serving(handler, write_buffer_high=HIGH, write_buffer_low=HIGH // 4,
                           max_send_buffer=CAP, slow_consumer="close", close_timeout=0.3) as server:
            _, (fast_reader, _) = await _slow_and_fast(server.port)
            await wait_until(lambda: len(handler.conns) == 2)
            slow = handler.conns[0]
            counters = server.counters
            sent, received = await _flood(server, handler, fast_reader,
                                          lambda: counters["slow_consumer_closes"] > 0)
            assert received == sent
            assert counters["slow_consumer_closes"] == 1
            assert slow.close_code == 1008 and not slow.open
            # it cannot take the close frame either: aborted after close_timeout
            await wait_until(lambda: slow not in server.connections, timeout=5)

    run(main(), timeout=30)


def test_options_refuse_unknown_policy() -> None:
    from hero_fast._transport import Options

    with pytest.raises(ValueError, match="slow_consumer"):
        Options(slow_consumer="block")
