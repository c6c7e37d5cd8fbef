"""The engine's message path: the opt-in ``on_data`` hook (payload bytes, never decoded
to str), ``send(bytes, text=True)`` framing, large payloads written by reference through
``writelines`` (RFC 6455 5.2 frames asserted whole), and the Server's message and byte
counters."""

from __future__ import annotations

import asyncio

from _nethelpers import FAST, HOST, _close_raw_clients, mask_frame, read_frame, ws_raw

from hero_fast._core import encode_frame
from hero_fast._transport import Options, Server, WebSocketProtocol
from hero_fast.echo import EchoHandler

TEXT, BINARY = 0x1, 0x2
SIZES = [0, 1, 125, 126, 65535, 65536]


class RecordingTransport:
    """Keeps every object handed to write/writelines (identity matters here)."""

    def __init__(self, transport, log):
        self._t = transport
        self._log = log

    def write(self, data):
        self._log.append(("write", [data]))
        self._t.write(data)

    def writelines(self, chunks):
        self._log.append(("writelines", list(chunks)))
        self._t.writelines(chunks)

    def __getattr__(self, name):
        return getattr(self._t, name)


async def recording_server(handler, **opts):
    loop = asyncio.get_running_loop()
    server = Server(handler, Options(**{**FAST, **opts}), loop)
    log: list[tuple[str, list]] = []

    class Proto(WebSocketProtocol):
        def connection_made(self, transport):
            super().connection_made(RecordingTransport(transport, log))

    server.aio_server = await loop.create_server(lambda: Proto(server), HOST, 0)
    return server, log


async def read_exactly_frame(reader, expected: bytes) -> bytes:
    return await asyncio.wait_for(reader.readexactly(len(expected)), 5)


def test_rfc6455_5_6_on_data_gets_payload_bytes_and_the_frame_type(run):
    seen = []

    class Handler(EchoHandler):
        def on_message(self, conn, message):  # must not be used when on_data exists
            raise AssertionError("on_message called")

        def on_data(self, conn, payload, is_text):
            seen.append((type(payload), is_text, len(payload)))
            super().on_data(conn, payload, is_text)

    async def main():
        server, _ = await recording_server(Handler())
        try:
            reader, writer = await ws_raw(server.port)
            for n in SIZES:
                text = ("é" * (n // 2) + "a" * (n % 2)).encode()
                assert len(text) == n
                for op, payload in ((TEXT, text), (BINARY, bytes(range(256)) * (n // 256) + b"\xff" * (n % 256))):
                    writer.write(mask_frame(op, payload))
                    expected = encode_frame(op, payload)  # the whole frame, header included
                    assert await read_exactly_frame(reader, expected) == expected
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())
    assert seen == [(bytes, is_text, n) for n in SIZES for is_text in (True, False)]


def test_large_bytes_payload_leaves_by_reference_in_one_writelines(run):
    big = b"x" * 100_000

    class Handler:
        def on_data(self, conn, payload, is_text):
            conn.send(b"a", True)
            conn.send(big, True)
            conn.send("b")

    async def main():
        server, log = await recording_server(Handler())
        try:
            reader, writer = await ws_raw(server.port)
            del log[:]
            writer.write(mask_frame(TEXT, "go"))
            wire = b"".join(encode_frame(TEXT, p) for p in (b"a", big, b"b"))
            assert await read_exactly_frame(reader, wire) == wire
            assert [kind for kind, _ in log] == ["writelines"]
            chunks = log[0][1]
            assert any(c is big for c in chunks)  # never copied
            assert b"".join(chunks) == wire
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())


def test_small_replies_of_one_read_leave_in_one_write_of_one_bytes_object(run):
    async def main():
        server, log = await recording_server(EchoHandler())
        try:
            reader, writer = await ws_raw(server.port)
            del log[:]
            msgs = [b"m%d" % i for i in range(50)]
            writer.write(b"".join(mask_frame(TEXT, m) for m in msgs))
            wire = b"".join(encode_frame(TEXT, m) for m in msgs)
            assert await read_exactly_frame(reader, wire) == wire
            assert all(kind == "write" and type(data[0]) is bytes for kind, data in log)
            assert b"".join(d for _, data in log for d in data) == wire
            assert len(log) <= 2  # one per read; the 50 frames normally arrive in one read
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())


def test_send_text_from_bytes_and_binary_from_buffers(run):
    class Handler:
        def on_data(self, conn, payload, is_text):
            conn.send(bytearray(b"ba"))           # bytes-like: binary by default
            conn.send(memoryview(b"mv"), True)     # text when asked
            conn.send(b"\xc3\xa9", text=True)
            conn.send("é")

    async def main():
        server, _ = await recording_server(Handler())
        try:
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "go"))
            got = [await asyncio.wait_for(read_frame(reader), 5) for _ in range(4)]
            assert got == [(True, BINARY, b"ba"), (True, TEXT, b"mv"), (True, TEXT, "é".encode()),
                           (True, TEXT, "é".encode())]
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())


def test_server_counts_messages_and_bytes_in_and_out(run):
    async def main():
        server, _log = await recording_server(EchoHandler())
        try:
            assert (server.messages_received, server.messages_sent, server.bytes_received,
                    server.bytes_sent) == (0, 0, 0, 0)
            reader, writer = await ws_raw(server.port)
            sent_on_upgrade = server.bytes_sent  # the 101 response
            frames = [mask_frame(TEXT, b"x" * n) for n in (3, 200, 70_000)]
            for f in frames:
                writer.write(f)
            replies = [encode_frame(TEXT, b"x" * n) for n in (3, 200, 70_000)]
            for r in replies:
                assert await read_exactly_frame(reader, r) == r
            assert server.messages_received == 3
            assert server.messages_sent == 3
            assert server.bytes_received == 3 + 200 + 70_000  # payload bytes
            assert {k: server.counters[k] for k in ("messages_in", "bytes_in", "messages_out", "bytes_out")} == {
                "messages_in": 3, "bytes_in": 70_203, "messages_out": 3, "bytes_out": server.bytes_sent}
            assert server.bytes_sent - sent_on_upgrade == sum(map(len, replies))
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())


def test_read_buffer_grows_under_load_and_is_released_when_idle(run):
    class Watch(EchoHandler):
        def __init__(self):
            self.conn = None
            self.largest = 0

        def on_data(self, conn, payload, is_text):
            self.conn = conn
            self.largest = max(self.largest, conn.read_buffer_size)

    async def main():
        handler = Watch()
        server, _ = await recording_server(handler, max_message_size=1 << 20)
        try:
            _reader, writer = await ws_raw(server.port)
            frame = mask_frame(BINARY, b"x" * 1000)
            writer.write(frame * 4000)  # 4 MB as fast as the socket takes it
            await writer.drain()
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while server.messages_received < 4000 and loop.time() < deadline:
                await asyncio.sleep(0.01)
            assert server.messages_received == 4000
            assert handler.largest >= 256 * 1024  # reads that fill the buffer double it
            while handler.conn.read_buffer_size and loop.time() < deadline:
                await asyncio.sleep(0.02)  # the idle tick (0.05 s here) gives it back
            assert handler.conn.read_buffer_size == 0
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())
