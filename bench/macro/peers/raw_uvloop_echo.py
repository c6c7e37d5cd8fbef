"""Raw upper-bound baseline: a uvloop Protocol with a minimal WebSocket server.

It completes the opening handshake, then, for every read, parses the client's
frames, unmasks them and writes all server frames produced by that read back
in ONE transport.write().  No per-message objects beyond what the parse needs.

--passthrough writes back exactly the bytes one read returned (client frames
still masked: not valid for a strict client, but bench/macro/loadgen accepts
masked server frames).  That is the "writes back whatever one read returned"
row of shared/notes/performance.md.

Usage: python bench/macro/peers/raw_uvloop_echo.py --port N [--host 127.0.0.1] [--passthrough]
"""
import asyncio
import base64
import hashlib

from _cli import run_peer

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
MAX_HEADER = 16384
MAX_FRAME = 64 * 1024 * 1024


def accept_key(key: bytes) -> bytes:
    return base64.b64encode(hashlib.sha1(key + GUID).digest())


def handshake_response(head: bytes):
    key = None
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"sec-websocket-key":
            key = value.strip()
    if key is None:
        return None
    return (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept_key(key) + b"\r\n\r\n")


def unmask(payload: bytes, key: bytes) -> bytes:
    n = len(payload)
    if n == 0:
        return payload
    k = (key * ((n >> 2) + 1))[:n]
    return (int.from_bytes(payload, "little") ^ int.from_bytes(k, "little")).to_bytes(n, "little")


def server_header(b0: int, n: int) -> bytes:
    if n < 126:
        return bytes((b0, n))
    if n < 65536:
        return bytes((b0, 126)) + n.to_bytes(2, "big")
    return bytes((b0, 127)) + n.to_bytes(8, "big")


class RawEcho(asyncio.Protocol):
    __slots__ = ("buf", "transport", "upgraded")

    def __init__(self):
        self.transport = None
        self.buf = b""
        self.upgraded = False

    def connection_made(self, transport):
        self.transport = transport

    def _handshake(self, data: bytes) -> bytes:
        self.buf += data
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            if len(self.buf) > MAX_HEADER:
                self.transport.close()
            return b""
        resp = handshake_response(self.buf[:end])
        if resp is None:
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
            self.transport.close()
            return b""
        self.transport.write(resp)
        self.upgraded = True
        rest = self.buf[end + 4:]
        self.buf = b""
        return rest

    def data_received(self, data: bytes):
        if not self.upgraded:
            data = self._handshake(data)
            if not data:
                return
        buf = self.buf + data if self.buf else data
        n = len(buf)
        pos = 0
        out = []
        while n - pos >= 2:
            b0 = buf[pos]
            plen = buf[pos + 1] & 0x7F
            hl = 2
            if plen == 126:
                if n - pos < 4:
                    break
                plen = int.from_bytes(buf[pos + 2:pos + 4], "big")
                hl = 4
            elif plen == 127:
                if n - pos < 10:
                    break
                plen = int.from_bytes(buf[pos + 2:pos + 10], "big")
                hl = 10
            if plen > MAX_FRAME or not buf[pos + 1] & 0x80:
                self.transport.close()  # client frames must be masked
                return
            end = pos + hl + 4 + plen
            if end > n:
                break
            payload = unmask(buf[pos + hl + 4:end], buf[pos + hl:pos + hl + 4])
            op = b0 & 0x0F
            if op == 8:  # close: answer and hang up
                out.append(server_header(0x88, len(payload)) + payload)
                self.transport.write(b"".join(out))
                self.transport.close()
                return
            if op == 9:  # ping -> pong
                b0 = 0x8A
            elif op == 10:
                pos = end
                continue
            out.append(server_header(b0, plen))
            out.append(payload)
            pos = end
        self.buf = buf[pos:] if pos < n else b""
        if out:
            self.transport.write(b"".join(out))


class PassthroughEcho(RawEcho):
    __slots__ = ()

    def data_received(self, data: bytes):
        if self.upgraded:
            self.transport.write(data)
            return
        rest = self._handshake(data)
        if rest:
            self.transport.write(rest)


async def main(host: str, port: int, passthrough: bool) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(PassthroughEcho if passthrough else RawEcho, host, port, backlog=1024)
    print(f"raw uvloop echo listening on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    run_peer(main, "--passthrough")
