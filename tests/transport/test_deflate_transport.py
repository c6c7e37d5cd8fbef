"""permessage-deflate on the wire (RFC 7692): negotiation in the 101, compressed
echo both ways, compress-once fan-out, bombs, and an independent client
(``websockets``) talking to us with compression on."""

from __future__ import annotations

import asyncio
import secrets
import zlib

import websockets
from _nethelpers import (
    HOST,
    _close_raw_clients,
    close_code,
    mask_frame,
    new_key,
    open_raw,
    read_response,
    read_to_eof,
    serving,
    upgrade_request,
)

from hero_fast._core import accept_key, encode_frame
from hero_fast._transport import Server, WebSocketProtocol, fanout
from hero_fast.echo import EchoHandler

TEXT, BINARY, CLOSE, PING, PONG = 0x1, 0x2, 0x8, 0x9, 0xA
OFFER = "permessage-deflate; client_max_window_bits"


def deflate_raw(data: bytes) -> bytes:
    co = zlib.compressobj(6, zlib.DEFLATED, -12)
    return (co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]


def inflate_raw(data: bytes) -> bytes:
    return zlib.decompressobj(-15).decompress(data + b"\x00\x00\xff\xff")


def rsv1_frame(opcode, payload, fin=True, key=b"\x11\x22\x33\x44"):
    f = bytearray(mask_frame(opcode, payload, fin=fin, key=key))
    f[0] |= 0x40
    return bytes(f)


async def read_frame_rsv(reader):
    """(fin, rsv, opcode, payload) of one server frame."""
    b0, b1 = await reader.readexactly(2)
    n = b1 & 0x7F
    if n == 126:
        n = int.from_bytes(await reader.readexactly(2), "big")
    elif n == 127:
        n = int.from_bytes(await reader.readexactly(8), "big")
    return bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, await reader.readexactly(n)


async def ws_deflate(port, offer=OFFER):
    reader, writer = await open_raw(port)
    key = new_key()
    writer.write(upgrade_request("/", key, extra=[("Sec-WebSocket-Extensions", offer)]))
    status, _, headers, _ = await read_response(reader)
    assert status == 101 and headers["sec-websocket-accept"] == accept_key(key)
    return reader, writer, headers.get("sec-websocket-extensions")


def test_negotiated_in_the_101_and_messages_compressed_both_ways(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer, ext = await ws_deflate(server.port)
            assert ext == ("permessage-deflate; server_no_context_takeover; client_no_context_takeover; "
                           "client_max_window_bits=12")
            big = "compress me please " * 200
            writer.write(rsv1_frame(TEXT, deflate_raw(big.encode())) + mask_frame(TEXT, "tiny"))
            fin, rsv, op, payload = await read_frame_rsv(reader)
            assert (fin, rsv, op) == (True, 4, TEXT) and inflate_raw(payload) == big.encode()
            assert len(payload) < 200
            assert await read_frame_rsv(reader) == (True, 0, TEXT, b"tiny")  # under the threshold
            assert server.counters["deflate_connections"] == 1

    run(main())


def test_no_offer_no_compression_and_disabled_option(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/"))
            assert "sec-websocket-extensions" not in (await read_response(reader))[2]
            writer.write(rsv1_frame(TEXT, deflate_raw(b"x")))  # RSV1 without agreement
            _, _rsv, op, payload = await read_frame_rsv(reader)
            assert (op, close_code(payload)) == (CLOSE, 1002)
        async with serving(EchoHandler(), deflate=False) as server:
            _, _, ext = await ws_deflate(server.port)
            assert ext is None

    run(main())


def test_decompression_bomb_over_the_wire_closes_1009(run):
    async def main():
        async with serving(EchoHandler(), max_message_size=1 << 20) as server:
            reader, writer, _ = await ws_deflate(server.port)
            other_r, other_w, _ = await ws_deflate(server.port)
            bomb = deflate_raw(b"\0" * (64 << 20))  # 64 MiB in ~64 KiB
            writer.write(rsv1_frame(BINARY, bomb))
            _, _, op, payload = await read_frame_rsv(reader)
            assert (op, close_code(payload)) == (CLOSE, 1009)
            assert await read_to_eof(reader) == b""
            other_w.write(mask_frame(TEXT, "still here"))
            assert await read_frame_rsv(other_r) == (True, 0, TEXT, b"still here")

    run(main())


def test_websockets_client_with_compression(run):
    async def main():
        async with serving(EchoHandler()) as server:
            uri = f"ws://{HOST}:{server.port}/"
            async with websockets.connect(uri, compression="deflate", max_size=None) as ws:
                assert ws.response.headers["Sec-WebSocket-Extensions"].startswith("permessage-deflate")
                for msg in ["a" * 100_000, b"\x00\x01" * 30_000, "é" * 5000, "x", ""]:
                    await ws.send(msg)
                    assert await ws.recv() == msg
            assert server.counters["deflate_connections"] == 1
            assert server.counters["protocol_errors"] == 0

    run(main())


class IdentityTransport:
    """Keeps the very objects written, to see that fan-out shares one frame."""

    def __init__(self, transport, log):
        self._t = transport
        self._log = log

    def write(self, data):
        self._log.append(data)
        self._t.write(data)

    def writelines(self, chunks):
        self._log.extend(chunks)
        self._t.writelines(chunks)

    def __getattr__(self, name):
        return getattr(self._t, name)


def test_fanout_compresses_once_for_no_context_takeover_connections(run):
    class Room:
        def __init__(self):
            self.conns = []

        def on_connect(self, conn):
            self.conns.append(conn)

        def on_message(self, conn, message):
            fanout(encode_frame(TEXT, message), self.conns)

    async def main():
        from hero_fast._transport import Options

        loop = asyncio.get_running_loop()
        room = Room()
        server = Server(room, Options(tick=0.05, ping_interval=0), loop)
        writes = {}

        class Proto(WebSocketProtocol):
            def connection_made(self, transport):
                log = writes.setdefault(id(self), [])
                super().connection_made(IdentityTransport(transport, log))

        server.aio_server = await loop.create_server(lambda: Proto(server), HOST, 0)
        try:
            clients = [await ws_deflate(server.port) for _ in range(5)]
            plain_r, plain_w = await open_raw(server.port)
            plain_w.write(upgrade_request("/"))
            assert (await read_response(plain_r))[0] == 101
            while len(room.conns) < 6:
                await asyncio.sleep(0.01)
            for log in writes.values():
                log.clear()
            # incompressible enough that the compressed frame is queued by reference
            # (a small one would be copied into each connection's output buffer)
            msg = secrets.token_hex(4000)
            clients[0][1].write(mask_frame(TEXT, msg))
            for reader, _, _ in clients:
                _, rsv, op, payload = await read_frame_rsv(reader)
                assert (rsv, op) == (4, TEXT) and inflate_raw(payload) == msg.encode()
            assert await read_frame_rsv(plain_r) == (True, 0, TEXT, msg.encode())
            frames = [log[0] for log in writes.values() if log and log[0][0] & 0x40]
            assert len(frames) == 5
            assert all(f is frames[0] for f in frames)  # one compressed object for all
        finally:
            _close_raw_clients()
            await server.shutdown(timeout=1.0)

    run(main())


def test_fanout_with_a_precompressed_frame_and_a_smaller_window(run):
    class Room:
        def __init__(self):
            self.conns = []

        def on_connect(self, conn):
            self.conns.append(conn)

    async def main():
        room = Room()
        async with serving(room) as server:
            r15, _, _ext15 = await ws_deflate(server.port, "permessage-deflate")
            r9, _, ext9 = await ws_deflate(server.port, "permessage-deflate; server_max_window_bits=9")
            assert "server_max_window_bits=9" in ext9
            while len(room.conns) < 2:
                await asyncio.sleep(0.01)
            msg = b"0123456789abcdef" * 200
            pre = encode_frame(BINARY, msg, compress=True)
            assert fanout(encode_frame(BINARY, msg), room.conns, pre) == 2
            for reader, wbits in ((r15, 15), (r9, 9)):
                _, rsv, _, payload = await read_frame_rsv(reader)
                assert rsv == 4
                assert zlib.decompressobj(-wbits).decompress(payload + b"\x00\x00\xff\xff") == msg

    run(main())


def test_send_frame_compresses_plain_frames_and_refuses_rsv1_without_deflate(run):
    class Keep:
        def __init__(self):
            self.conns = []

        def on_connect(self, conn):
            self.conns.append(conn)

    async def main():
        keep = Keep()
        async with serving(keep) as server:
            reader, _, _ = await ws_deflate(server.port)
            plain_r, plain_w = await open_raw(server.port)
            plain_w.write(upgrade_request("/"))
            assert (await read_response(plain_r))[0] == 101
            while len(keep.conns) < 2:
                await asyncio.sleep(0.01)
            deflated, plain = keep.conns
            assert deflated.deflate is not None and plain.deflate is None
            deflated.send_frame(encode_frame(TEXT, "z" * 1000))
            _, rsv, _, payload = await read_frame_rsv(reader)
            assert rsv == 4 and inflate_raw(payload) == b"z" * 1000
            try:
                plain.send_frame(encode_frame(TEXT, "z" * 1000, compress=True))
            except ValueError:
                pass
            else:
                raise AssertionError("an RSV1 frame went to a connection without deflate")

    run(main())
