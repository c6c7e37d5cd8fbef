"""Fuzzing the HTTP side of the engine: random and mutated requests (upgrades
included), in random chunkings, fed to a real engine connection over a fake
transport. Every input is either answered with a documented status — 101 and then
WebSocket frames, 200 from the handler, or 400/403/404/408/413/414/426/431/503 —
or gets no answer yet (an incomplete request); nothing raises, nothing answers 500."""

from __future__ import annotations

import asyncio
import ipaddress
import re

from _fuzzsupport import fuzz_settings
from hypothesis import given
from hypothesis import strategies as st

from hero_fast._transport import Options, Reject, Response, Server, WebSocketProtocol

DOCUMENTED = {101, 200, 400, 403, 404, 408, 413, 414, 426, 431, 503}
STATUS = re.compile(rb"HTTP/1\.1 (\d{3}) [^\r\n]*\r\n")


class FakeTransport:
    def __init__(self) -> None:
        self.out = bytearray()
        self.closed = False
        self.eof = False
        self.paused = False

    def write(self, data: bytes) -> None:
        assert not self.closed, "write after close"
        assert not self.eof, "write after write_eof"
        self.out += data

    def close(self) -> None:
        self.closed = True

    abort = close

    def write_eof(self) -> None:
        self.eof = True

    def can_write_eof(self) -> bool:
        return True

    def pause_reading(self) -> None:
        self.paused = True

    def resume_reading(self) -> None:
        self.paused = False

    def get_extra_info(self, name, default=None):  # type: ignore[no-untyped-def]
        return ("127.0.0.1", 40000) if name == "peername" else default

    def set_write_buffer_limits(self, high: int, low: int) -> None:
        pass

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return self.closed


class Handler:
    def on_http(self, request):  # type: ignore[no-untyped-def]
        if request.path == "/missing":
            return Response(404, [], b"nope")
        return Response(200, [("Content-Type", "text/plain")], b"ok " + str(len(request.body)).encode())

    def on_upgrade(self, conn, request, subprotocols):  # type: ignore[no-untyped-def]
        if request.path.startswith("/reject"):
            raise Reject(403, "forbidden")
        return subprotocols[0] if subprotocols and subprotocols[0] == "chat" else None

    def on_message(self, conn, message):  # type: ignore[no-untyped-def]
        conn.send(message)


LOOP = asyncio.new_event_loop()
SERVER = Server(Handler(), Options(max_request_line=300, max_headers=12, max_header_bytes=600,
                                   max_body_size=200, max_connections_per_ip=0), LOOP)


def feed(chunks: list[bytes]) -> FakeTransport:
    t = FakeTransport()
    proto = WebSocketProtocol(SERVER)
    proto.connection_made(t)
    for chunk in chunks:
        view = memoryview(chunk)
        while view.nbytes:
            buf = proto.get_buffer(-1)
            n = min(len(buf), view.nbytes)
            buf[:n] = view[:n]
            proto.buffer_updated(n)
            view = view[n:]
    proto.connection_lost(None)
    return t


def check(out: bytes) -> None:
    i = 0
    while i < len(out):
        m = STATUS.match(out, i)
        assert m, f"not an HTTP response at {i}: {out[i:i + 60]!r}"
        status = int(m.group(1))
        assert status in DOCUMENTED, out[i : i + 200]
        head_end = out.index(b"\r\n\r\n", i) + 4
        if status == 101:
            return  # WebSocket frames follow
        length = re.search(rb"\r\nContent-Length: (\d+)\r\n", out[i:head_end])
        if length and not out.startswith(b"HTTP/1.1 ", head_end):  # (a HEAD answer has no body)
            i = head_end + int(length.group(1))
        else:
            i = head_end


# -- strategies -------------------------------------------------------------------------------------

token = st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABC-_0123456789!#$%&'*+.^`|~"), min_size=0, max_size=12)
junk = st.binary(max_size=40)
value = st.one_of(token, st.text(max_size=30), st.sampled_from(
    ["websocket", "Upgrade", "keep-alive, Upgrade", "13", "8", "dGhlIHNhbXBsZSBub25jZQ==", "chat, superchat",
     "permessage-deflate; client_max_window_bits", "permessage-deflate; server_max_window_bits=8", "0", "-1",
     "99999999999999999999", "chunked", "gzip, chunked", "close", "a" * 400]))
header_name = st.one_of(token, st.sampled_from(
    ["Host", "Upgrade", "Connection", "Sec-WebSocket-Key", "Sec-WebSocket-Version", "Sec-WebSocket-Protocol",
     "Sec-WebSocket-Extensions", "Content-Length", "Transfer-Encoding", "Origin", "Cookie", "Expect"]))


@st.composite
def request(draw) -> bytes:  # type: ignore[no-untyped-def]
    method = draw(st.sampled_from(["GET", "GET", "POST", "HEAD", "PUT", "OPTIONS", "BREW", "get", ""]))
    target = draw(st.one_of(st.sampled_from(["/", "/ws", "/missing", "/reject", "/?a=b#c", "*", "/%00", "/%zz"]),
                            st.text(max_size=40).map(lambda s: "/" + s)))
    version = draw(st.sampled_from(["HTTP/1.1", "HTTP/1.1", "HTTP/1.0", "HTTP/2.0", "HTTP/9", "HTTX/1.1", ""]))
    eol = draw(st.sampled_from(["\r\n", "\r\n", "\n", "\r"]))
    base = [("Host", "x"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="), ("Sec-WebSocket-Version", "13")]
    headers = draw(st.lists(st.tuples(header_name, value), max_size=15))
    if draw(st.booleans()):
        headers = base + headers
    body = draw(st.one_of(st.just(b""), st.binary(max_size=300)))
    lines = [f"{method} {target} {version}"] + [f"{k}: {v}" for k, v in headers]
    raw = (eol.join(lines) + eol + eol).encode("utf-8", "surrogatepass") + body
    # a few byte-level mutations on top
    for op, pos, byte in draw(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 10**6), st.integers(0, 255)),
                                       max_size=4)):
        if not raw:
            break
        pos %= len(raw)
        if op == 0:
            raw = raw[:pos] + bytes([byte]) + raw[pos + 1 :]
        elif op == 1:
            raw = raw[:pos] + bytes([byte]) + raw[pos:]
        else:
            raw = raw[:pos] + raw[pos + 1 :]
    if draw(st.booleans()):  # pipelined, or frames after an upgrade
        raw += draw(st.one_of(junk, st.just(b"GET / HTTP/1.1\r\nHost: y\r\n\r\n"),
                              st.just(b"\x81\x85\x00\x00\x00\x00hello")))
    return raw


@st.composite
def chunked(draw, data: bytes) -> list[bytes]:  # type: ignore[no-untyped-def]
    cuts = sorted(set(draw(st.lists(st.integers(0, max(0, len(data))), max_size=8))))
    out, prev = [], 0
    for c in [*cuts, len(data)]:
        if c > prev:
            out.append(data[prev:c])
            prev = c
    return out


@fuzz_settings(300)
@given(st.data())
def test_mutated_requests(data) -> None:  # type: ignore[no-untyped-def]
    raw = data.draw(st.one_of(request(), st.binary(max_size=400)))
    out = feed(data.draw(chunked(raw)))
    check(bytes(out.out))


@fuzz_settings(100)
@given(request())
def test_chunking_never_changes_the_answer_to_a_complete_request(raw: bytes) -> None:
    whole = bytes(feed([raw]).out)
    bytewise = bytes(feed([raw[i : i + 1] for i in range(len(raw))]).out)
    check(whole)
    check(bytewise)
    # the status line of the first answer is the same however the bytes arrived
    first = lambda b: b.split(b"\r\n", 1)[0]  # noqa: E731
    if whole and bytewise:
        assert first(whole) == first(bytewise)


# -- X-Forwarded-For from a trusted proxy -----------------------------------------------------------


class WhoHandler:
    def on_http(self, request):  # type: ignore[no-untyped-def]
        return Response(200, [], f"{request.remote_address} {request.scheme}".encode())


PROXIED = Server(WhoHandler(), Options(trusted_proxies=["127.0.0.0/8", "10.0.0.0/8"]), LOOP)
address = st.one_of(
    st.ip_addresses().map(str),
    st.ip_addresses(v=4).map(lambda a: f"{a}:{443}"),
    st.ip_addresses(v=6).map(lambda a: f"[{a}]:80"),
    st.sampled_from(["10.0.0.1", "127.0.0.1", "unknown", "", " ", "_hidden", "1.2.3", "::ffff:10.0.0.1"]),
    st.text(max_size=20).filter(lambda s: "\r" not in s and "\n" not in s),
)


@fuzz_settings(300)
@given(st.lists(st.lists(address, max_size=5).map(", ".join), max_size=3),
       st.lists(st.sampled_from(["http", "https", "HTTPS", "ftp", "", "https, http"]), max_size=2))
def test_forwarded_for_from_a_trusted_proxy(xff: list[str], proto: list[str]) -> None:
    """Whatever a client writes into X-Forwarded-For (a trusted proxy appends to it), the
    client address is a real IP: the proxy's peer (127.0.0.1) or one of the entries."""
    lines = ["GET / HTTP/1.1", "Host: x"] + [f"X-Forwarded-For: {v}" for v in xff] + [
        f"X-Forwarded-Proto: {v}" for v in proto]
    raw = ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogatepass")
    t = FakeTransport()
    proto_ = WebSocketProtocol(PROXIED)
    proto_.connection_made(t)
    buf = proto_.get_buffer(-1)
    buf[: len(raw)] = raw
    proto_.buffer_updated(len(raw))
    proto_.connection_lost(None)
    out = bytes(t.out)
    if not out.startswith(b"HTTP/1.1 200 "):
        assert out.startswith(b"HTTP/1.1 400 "), out[:80]  # a header value httptools refuses
        return
    addr, scheme = out.split(b"\r\n\r\n", 1)[1].decode().split(" ")
    assert addr == "127.0.0.1" or addr in _entry_ips(xff), (addr, xff)
    assert scheme in ("http", "https")


def _entry_ips(values: list[str]) -> set[str]:
    """Every address written in the headers, normalised ("[::1]:80" → "::1")."""
    found = set()
    for entry in ",".join(values).split(","):
        entry = entry.strip()
        host = entry[1:].partition("]")[0] if entry.startswith("[") else entry
        for candidate in (host, host.rpartition(":")[0]):
            try:
                found.add(str(ipaddress.ip_address(candidate)))
            except ValueError:
                pass
    return found
