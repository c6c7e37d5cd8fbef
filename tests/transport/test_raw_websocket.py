"""The WebSocket side of the transport with raw sockets: protocol errors on the
wire, the close handshake and its timeout, keepalive pings, write coalescing
and flow control."""

from __future__ import annotations

import asyncio
import socket

import pytest
from _nethelpers import (
    CountingTransport,
    StrEchoHandler,
    close_code,
    mask_frame,
    new_key,
    open_raw,
    read_frame,
    read_response,
    read_to_eof,
    serving,
    serving_counted,
    upgrade_request,
    wait_until,
    ws_raw,
)

from hero_fast._core import encode_frame
from hero_fast._transport import Options, Server, WebSocketProtocol
from hero_fast.echo import EchoHandler

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Recorder(StrEchoHandler):
    def __init__(self):
        self.conns = []
        self.closes = []

    def on_connect(self, conn):
        self.conns.append(conn)

    def on_close(self, conn, code, reason):
        self.closes.append((code, reason))


def test_echo_over_raw_socket(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "hello") + mask_frame(BINARY, b"\x00\xff" * 40000))
            assert await read_frame(reader) == (True, TEXT, b"hello")
            assert await read_frame(reader) == (True, BINARY, b"\x00\xff" * 40000)

    run(main())


def test_frames_in_the_same_segment_as_the_upgrade(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/") + mask_frame(TEXT, "early") + mask_frame(TEXT, "bird"))
            assert (await read_response(reader))[0] == 101
            assert await read_frame(reader) == (True, TEXT, b"early")
            assert await read_frame(reader) == (True, TEXT, b"bird")

    run(main())


def test_frames_with_async_upgrade_in_the_same_segment(run):
    class Slow(StrEchoHandler):
        async def on_upgrade(self, conn, request, subprotocols):
            await asyncio.sleep(0.05)

    async def main():
        async with serving(Slow()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/") + mask_frame(TEXT, "early"))
            await asyncio.sleep(0.01)
            writer.write(mask_frame(TEXT, "during"))  # arrives while on_upgrade runs
            assert (await read_response(reader))[0] == 101
            assert await read_frame(reader) == (True, TEXT, b"early")
            assert await read_frame(reader) == (True, TEXT, b"during")

    run(main())


@pytest.mark.parametrize(
    "frame,code",
    [
        (mask_frame(TEXT, "unmasked", masked=False), 1002),
        (bytes([0xC1, 0x80]) + b"\x00" * 4, 1002),  # RSV1
        (mask_frame(0x3), 1002),  # reserved opcode
        (mask_frame(PING, b"", fin=False), 1002),
        (mask_frame(TEXT, b"\xff\xfe"), 1007),
        (mask_frame(BINARY, b"x" * 2000), 1009),
        (mask_frame(CLOSE, b"\x03"), 1002),
        (mask_frame(CLOSE, b"\x03\xed"), 1002),  # close code 1005
    ],
    ids=["unmasked", "rsv", "opcode", "fragmented-ping", "utf8", "too-big", "close-1-byte", "close-1005"],
)
def test_protocol_error_gets_close_frame_then_connection_ends(run, frame, code):
    async def main():
        handler = Recorder()
        async with serving(handler, max_message_size=1000) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "before") + frame + mask_frame(TEXT, "after"))
            assert await read_frame(reader) == (True, TEXT, b"before")
            fin, op, payload = await read_frame(reader)
            assert (fin, op, close_code(payload)) == (True, CLOSE, code)
            assert payload[2:].decode()  # a reason
            # nothing else (no "after" echo), then the server's FIN
            assert await read_to_eof(reader) == b""
            assert handler.closes == [(code, payload[2:].decode())]
            assert server.counters["protocol_errors"] == 1

    run(main())


def test_server_keeps_reading_after_a_failure(run):
    # the peer may still be sending when we fail the connection: we keep
    # draining so our close frame is not destroyed by a RST
    async def main():
        async with serving(EchoHandler(), max_message_size=1000) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "x", masked=False))
            for _ in range(50):
                writer.write(mask_frame(BINARY, b"y" * 10000))
            _fin, op, payload = await read_frame(reader)
            assert (op, close_code(payload)) == (CLOSE, 1002)

    run(main())


def test_client_ping_gets_pong_with_same_payload(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(PING, b"ping!") + mask_frame(TEXT, "after ping"))
            assert await read_frame(reader) == (True, PONG, b"ping!")
            assert await read_frame(reader) == (True, TEXT, b"after ping")

    run(main())


def test_pong_leaves_before_replies_to_later_messages(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "one") + mask_frame(PING, b"p") + mask_frame(TEXT, "two"))
            got = [await read_frame(reader) for _ in range(3)]
            assert got == [(True, TEXT, b"one"), (True, PONG, b"p"), (True, TEXT, b"two")]

    run(main())


def test_client_initiated_close_handshake(run):
    async def main():
        handler = Recorder()
        async with serving(handler) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(CLOSE, b"\x0f\xa0done"))  # 4000 "done"
            assert await read_frame(reader) == (True, CLOSE, b"\x0f\xa0")
            assert await read_to_eof(reader) == b""  # the server closes TCP first
            assert handler.closes == [(4000, "done")]

    run(main())


def test_empty_close_echoed_empty(run):
    async def main():
        handler = Recorder()
        async with serving(handler) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(CLOSE, b""))
            assert await read_frame(reader) == (True, CLOSE, b"")
            assert await read_to_eof(reader) == b""
            assert handler.closes == [(1005, "")]

    run(main())


def test_server_initiated_close_then_peer_answers(run):
    class Closer(Recorder):
        def on_message(self, conn, message):
            conn.close(1000, "done")

    async def main():
        handler = Closer()
        async with serving(handler, close_timeout=30) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "x"))
            assert await read_frame(reader) == (True, CLOSE, b"\x03\xe8done")
            writer.write(mask_frame(CLOSE, b"\x03\xe8"))
            # TCP closed right away, not after close_timeout (it used to wait for it)
            assert await read_to_eof(reader, timeout=3) == b""
            assert server.counters["close_timeouts"] == 0

    run(main())


def test_peer_that_never_answers_our_close_is_aborted(run):
    class Closer(Recorder):
        def on_message(self, conn, message):
            conn.close(4000, "go")

    async def main():
        handler = Closer()
        async with serving(handler, close_timeout=0.3, tick=0.05) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "x"))
            assert await read_frame(reader) == (True, CLOSE, b"\x0f\xa0go")
            # we never answer; the server gives up after close_timeout
            await read_to_eof(reader, timeout=5)
            await wait_until(lambda: not server.connections)
            assert server.counters["close_timeouts"] == 1
            assert handler.closes == [(4000, "go")]

    run(main())


def test_idle_connection_pinged_and_closed_when_silent(run):
    async def main():
        handler = Recorder()
        async with serving(handler, ping_interval=0.2, ping_timeout=0.2, close_timeout=0.2, tick=0.05) as server:
            reader, _writer = await ws_raw(server.port)
            fin, op, payload = await asyncio.wait_for(read_frame(reader), 5)
            assert (fin, op) == (True, PING)
            # no pong: the server closes with 1011, then gives up on the handshake
            fin, op, payload = await asyncio.wait_for(read_frame(reader), 5)
            assert (op, close_code(payload)) == (CLOSE, 1011)
            await read_to_eof(reader, timeout=5)
            await wait_until(lambda: not server.connections)
            assert server.counters["ping_timeouts"] == 1
            assert handler.closes[0][0] == 1011

    run(main())


def test_idle_connection_that_answers_pings_stays_open(run):
    async def main():
        async with serving(EchoHandler(), ping_interval=0.1, ping_timeout=0.1, tick=0.02) as server:
            reader, writer = await ws_raw(server.port)
            for _ in range(3):
                _, op, payload = await asyncio.wait_for(read_frame(reader), 5)
                assert op == PING
                writer.write(mask_frame(PONG, payload))
            writer.write(mask_frame(TEXT, "still here"))
            while True:
                _fin, op, payload = await asyncio.wait_for(read_frame(reader), 5)
                if op != PING:
                    break
            assert (op, payload) == (TEXT, b"still here")
            assert server.counters["ping_timeouts"] == 0

    run(main())


def test_tcp_drop_reports_1006(run):
    async def main():
        handler = Recorder()
        async with serving(handler) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "x"))
            await read_frame(reader)
            writer.transport.abort()
            await wait_until(lambda: handler.closes)
            assert handler.closes == [(1006, "")]
            conn = handler.conns[0]
            assert conn.send("late") is False and conn.open is False

    run(main())


# -- write coalescing -------------------------------------------------------------------


def test_replies_to_one_read_leave_in_one_write(run):
    async def main():
        async with serving_counted(EchoHandler()) as (server, writes):
            reader, writer = await ws_raw(server.port)
            n_before = len(writes)
            msgs = [f"m{i}".encode() for i in range(100)]
            writer.write(b"".join(mask_frame(TEXT, m) for m in msgs))  # one segment
            got = [await asyncio.wait_for(read_frame(reader), 5) for _ in msgs]
            assert got == [(True, TEXT, m) for m in msgs]
            batch = writes[n_before:]
            # one write per read batch; the 100 frames normally arrive in one read
            assert len(batch) <= 2, len(batch)
            assert b"".join(batch) == b"".join(encode_frame(TEXT, m) for m in msgs)

    run(main())


def test_one_write_per_read_batch_counted_exactly(run):
    async def main():
        loop = asyncio.get_running_loop()
        server = Server(EchoHandler(), Options(tick=0.05), loop)
        reads, writes = [], []

        class Proto(WebSocketProtocol):
            def connection_made(self, transport):
                super().connection_made(CountingTransport(transport, writes))

            def buffer_updated(self, n):
                reads.append(n)
                super().buffer_updated(n)

        server.aio_server = await loop.create_server(lambda: Proto(server), "127.0.0.1", 0)
        try:
            reader, writer = await ws_raw(server.port)
            r0, w0 = len(reads), len(writes)
            for round_ in range(5):
                writer.write(b"".join(mask_frame(BINARY, bytes([round_, i])) for i in range(40)))
                for i in range(40):
                    assert await asyncio.wait_for(read_frame(reader), 5) == (True, BINARY, bytes([round_, i]))
            # never more writes than reads: every reply of a read batch shares one write
            assert len(writes) - w0 <= len(reads) - r0
            writer.close()
        finally:
            await server.shutdown(timeout=1)

    run(main())


def test_sends_from_one_loop_iteration_leave_in_one_write(run):
    class Burst(StrEchoHandler):
        def on_message(self, conn, message):
            loop = asyncio.get_running_loop()
            # outside the read batch: 200 sends in one callback
            loop.call_soon(lambda: [conn.send(f"b{i}") for i in range(200)])

    async def main():
        async with serving_counted(Burst()) as (server, writes):
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "go"))
            got = [await asyncio.wait_for(read_frame(reader), 5) for _ in range(200)]
            assert got == [(True, TEXT, f"b{i}".encode()) for i in range(200)]
            # the 101 response, then a single write with all 200 frames
            assert len(writes) == 2
            assert writes[1] == b"".join(encode_frame(TEXT, f"b{i}") for i in range(200))

    run(main())


def test_fan_out_one_write_per_connection(run):
    class Room(StrEchoHandler):
        def __init__(self):
            self.members = []

        def on_connect(self, conn):
            self.members.append(conn)

        def on_message(self, conn, message):
            frame = encode_frame(TEXT, message)
            for m in self.members:
                for _ in range(3):
                    m.send_frame(frame)

    async def main():
        handler = Room()
        async with serving_counted(handler) as (server, writes):
            clients = [await ws_raw(server.port) for _ in range(4)]
            n0 = len(writes)
            clients[0][1].write(mask_frame(TEXT, "hi all"))
            for reader, _ in clients:
                for _ in range(3):
                    assert await asyncio.wait_for(read_frame(reader), 5) == (True, TEXT, b"hi all")
            assert len(writes) - n0 == 4  # one per receiver

    run(main())


# -- flow control -----------------------------------------------------------------------


def test_pause_and_resume_writing_visible(run):
    events = []

    class Flood(StrEchoHandler):
        def on_connect(self, conn):
            self.conn = conn

        def on_message(self, conn, message):
            chunk = b"z" * (256 * 1024)
            for _ in range(64):  # 16 MiB: far beyond any socket buffer here
                conn.send(chunk)

        def on_pause_writing(self, conn):
            events.append(("pause", conn.buffered_amount, conn.writing_paused))

        def on_resume_writing(self, conn):
            events.append(("resume", conn.buffered_amount, conn.writing_paused))

    async def main():
        handler = Flood()
        async with serving(handler, write_buffer_high=64 * 1024, write_buffer_low=16 * 1024) as server:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
            reader, writer = await asyncio.open_connection(sock=sock, limit=1 << 24)
            key = new_key()
            writer.write(upgrade_request("/", key))
            assert (await read_response(reader))[0] == 101
            writer.write(mask_frame(TEXT, "flood"))
            await wait_until(lambda: events)
            assert events[0][0] == "pause"
            assert events[0][1] > 64 * 1024 and events[0][2] is True
            assert handler.conn.writing_paused is True
            assert handler.conn.buffered_amount > 1024 * 1024
            total = 0
            while total < 64 * (256 * 1024 + 10):
                chunk = await asyncio.wait_for(reader.read(1 << 20), 5)
                assert chunk
                total += len(chunk)
            await wait_until(lambda: len(events) >= 2)
            assert events[1][0] == "resume" and events[1][2] is False
            await wait_until(lambda: handler.conn.buffered_amount == 0)
            assert handler.conn.writing_paused is False
            writer.write(mask_frame(TEXT, "x"))  # reading resumed too
            writer.close()

    run(main(), timeout=30)


def test_send_str_subclass_and_ping_limits(run):
    class Text(str):
        pass

    results = []

    class Api(StrEchoHandler):
        def on_message(self, conn, message):
            conn.send(Text("as text"))
            conn.ping(b"p" * 125)
            try:
                conn.ping(b"p" * 126)  # would be a protocol violation on the wire
            except ValueError:
                results.append("refused")

    async def main():
        async with serving(Api()) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "go"))
            assert await read_frame(reader) == (True, TEXT, b"as text")
            assert await read_frame(reader) == (True, PING, b"p" * 125)
            writer.write(mask_frame(TEXT, "still open"))
            assert await read_frame(reader) == (True, TEXT, b"as text")
            assert results == ["refused", "refused"]

    run(main())


def test_fanout_encodes_once_and_skips_closed(run):
    from hero_fast._transport import fanout

    counts = []

    class Room(StrEchoHandler):
        def __init__(self):
            self.members = []

        def on_connect(self, conn):
            self.members.append(conn)

        def on_message(self, conn, message):
            if message == "leave":
                conn.close(1000)
                return
            frame = encode_frame(TEXT, message)
            counts.append(fanout(frame, self.members))
            counts.append(fanout(frame, self.members))

    async def main():
        handler = Room()
        async with serving_counted(handler) as (server, writes):
            clients = [await ws_raw(server.port) for _ in range(3)]
            clients[2][1].write(mask_frame(TEXT, "leave"))
            assert (await read_frame(clients[2][0]))[1] == CLOSE
            clients[2][1].write(mask_frame(CLOSE, b"\x03\xe8"))
            n0 = len(writes)
            clients[0][1].write(mask_frame(TEXT, "news"))
            for reader, _ in clients[:2]:
                for _ in range(2):
                    assert await asyncio.wait_for(read_frame(reader), 5) == (True, TEXT, b"news")
            assert counts == [2, 2]  # the closing connection is skipped
            assert len(writes) - n0 == 2  # one write per receiver

    run(main())
