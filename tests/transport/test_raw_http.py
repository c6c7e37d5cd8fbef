"""HTTP/1.1 side of the transport with raw sockets: handshake refusals, request
limits (414/431/413), the handshake deadline (slowloris), and the on_http hook
with keep-alive, pipelining and HEAD."""

from __future__ import annotations

import asyncio

import pytest
from _nethelpers import (
    StrEchoHandler,
    open_raw,
    read_response,
    read_to_eof,
    serving,
    upgrade_request,
)

from hero_fast._core import accept_key
from hero_fast._transport import Response
from hero_fast.echo import EchoHandler

KEY = "dGhlIHNhbXBsZSBub25jZQ=="


async def refused(port, request: bytes):
    reader, writer = await open_raw(port)
    writer.write(request)
    status, reason, headers, body = await asyncio.wait_for(read_response(reader), 5)
    rest = await read_to_eof(reader)  # the server closes after a refusal
    writer.close()
    return status, reason, headers, body, rest


def test_successful_raw_handshake(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/", KEY))
            head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            assert head == (
                b"HTTP/1.1 101 Switching Protocols\r\n"
                b"Upgrade: websocket\r\n"
                b"Connection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
                b"\r\n"
            )
            assert accept_key(KEY) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
            writer.close()

    run(main())


REFUSALS = [
    ("post", dict(method="POST"), 400, "GET"),
    ("http10", dict(version="1.0"), 400, "HTTP/1.1"),
    ("no key", dict(omit=["Sec-WebSocket-Key"]), 400, "Sec-WebSocket-Key"),
    ("bad key", dict(key="c2hvcnQ="), 400, "Sec-WebSocket-Key"),
    ("17-byte key", dict(key="eHh4eHh4eHh4eHh4eHh4eHg="), 400, "Sec-WebSocket-Key"),
    ("two keys", dict(extra=[("Sec-WebSocket-Key", KEY)]), 400, "Sec-WebSocket-Key"),
    ("no version", dict(omit=["Sec-WebSocket-Version"]), 426, "Sec-WebSocket-Version"),
    ("version 8", dict(omit=["Sec-WebSocket-Version"], extra=[("Sec-WebSocket-Version", "8")]), 426,
     "Sec-WebSocket-Version"),
    ("no connection upgrade", dict(omit=["Connection"]), 400, "Connection"),
    ("connection keep-alive", dict(omit=["Connection"], extra=[("Connection", "keep-alive")]), 400,
     "Connection"),
]


@pytest.mark.parametrize("name,kw,status,reason_word", REFUSALS, ids=[r[0] for r in REFUSALS])
def test_handshake_refusals(run, name, kw, status, reason_word):
    async def main():
        async with serving(EchoHandler()) as server:
            kw2 = {"key": KEY, **kw}
            st, _, headers, body, _ = await refused(server.port, upgrade_request("/", **kw2))
            assert st == status
            assert reason_word.encode() in body  # a short reason in the body
            assert headers.get("connection") == "close"
            if status == 426:
                assert headers["sec-websocket-version"] == "13"
            assert server.connections == set() or all(not c.open for c in server.connections)

    run(main())


def test_upgrade_to_something_else_goes_to_http_handler(run):
    async def main():
        async with serving(EchoHandler()) as server:
            req = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
            st, _, headers, body, _ = await refused(server.port, req)
            assert st == 404 and body == b"not found\n"
            assert headers.get("connection") == "close"

    run(main())


def test_request_line_too_long_414(run):
    async def main():
        async with serving(EchoHandler(), max_request_line=1000) as server:
            ok = upgrade_request("/" + "a" * 900)
            reader, writer = await open_raw(server.port)
            writer.write(ok)
            assert (await read_response(reader))[0] == 101
            writer.close()
            st, _, _, body, _ = await refused(server.port, upgrade_request("/" + "a" * 1001))
            assert st == 414 and b"too long" in body

    run(main())


async def dribble(writer, data: bytes, piece: int):
    """Send ``data`` in pieces, each its own TCP segment most of the time; stop
    quietly when the server has closed (it refuses before the end)."""
    try:
        for i in range(0, len(data), piece):
            writer.write(data[i : i + piece])
            await writer.drain()
            await asyncio.sleep(0)
    except ConnectionError:
        pass


def test_request_line_too_long_split_across_segments(run):
    async def main():
        async with serving(EchoHandler(), max_request_line=1000) as server:
            reader, writer = await open_raw(server.port)
            await dribble(writer, upgrade_request("/" + "b" * 5000), 97)
            status, *_ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 414
            await read_to_eof(reader)

    run(main())


def test_request_line_without_end_is_bounded(run):
    # a target that never ends: the server refuses once the bound is passed
    async def main():
        async with serving(EchoHandler(), max_request_line=1000, max_header_bytes=1000) as server:
            reader, writer = await open_raw(server.port)
            await dribble(writer, b"GET /" + b"c" * 20000, 1000)
            status, *_ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 414

    run(main())


def test_too_many_headers_431(run):
    async def main():
        async with serving(EchoHandler(), max_headers=20) as server:
            extra = [(f"X-H{i}", "v") for i in range(14)]  # 5 standard + 14 + Host... = 20
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/", extra=extra))
            assert (await read_response(reader))[0] == 101
            writer.close()
            extra = [(f"X-H{i}", "v") for i in range(16)]
            st, _, _, body, _ = await refused(server.port, upgrade_request("/", extra=extra))
            assert st == 431 and b"too large" in body

    run(main())


@pytest.mark.parametrize("piece", [1, 7, 50])
def test_too_many_headers_split_across_segments(run, piece):
    async def main():
        async with serving(EchoHandler(), max_headers=10) as server:
            reader, writer = await open_raw(server.port)
            req = upgrade_request("/", extra=[(f"X-{i}", "v") for i in range(30)])
            await dribble(writer, req, piece)
            status, *_ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 431

    run(main())


def test_header_bytes_too_big_431(run):
    async def main():
        async with serving(EchoHandler(), max_header_bytes=2000) as server:
            st, _, _, _body, _ = await refused(server.port, upgrade_request("/", extra=[("X-Big", "v" * 2500)]))
            assert st == 431

    run(main())


@pytest.mark.parametrize("piece", [3, 64, 500])
def test_header_bytes_too_big_split_across_segments(run, piece):
    async def main():
        async with serving(EchoHandler(), max_header_bytes=2000) as server:
            reader, writer = await open_raw(server.port)
            req = upgrade_request("/", extra=[(f"X-{i}", "v" * 100) for i in range(30)])
            await dribble(writer, req, piece)
            status, *_ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 431

    run(main())


def test_one_endless_header_value_is_bounded(run):
    async def main():
        async with serving(EchoHandler(), max_header_bytes=2000, max_request_line=1000) as server:
            reader, writer = await open_raw(server.port)
            await dribble(writer, b"GET / HTTP/1.1\r\nX-Long: " + b"v" * 50000, 1000)
            status, *_ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 431

    run(main())


def test_slowloris_cut_off_by_handshake_timeout(run):
    async def main():
        async with serving(EchoHandler(), handshake_timeout=0.3, tick=0.05) as server:
            reader, writer = await open_raw(server.port)
            req = upgrade_request("/")
            got = b""

            async def dribbler():
                try:
                    for i in range(len(req) - 2):  # never the final CRLF
                        writer.write(req[i : i + 1])
                        await asyncio.sleep(0.02)
                except ConnectionError:
                    pass

            task = asyncio.ensure_future(dribbler())
            got = await read_to_eof(reader, timeout=5)
            task.cancel()
            assert got.startswith(b"HTTP/1.1 408 ")
            assert server.counters["http_timeouts"] >= 1

    run(main())


def test_silent_connection_closed_after_handshake_timeout(run):
    async def main():
        async with serving(EchoHandler(), handshake_timeout=0.2, tick=0.05) as server:
            reader, _writer = await open_raw(server.port)
            assert await read_to_eof(reader, timeout=5) == b""
            assert server.counters["http_timeouts"] >= 1

    run(main())


def test_hung_async_on_upgrade_is_cut_off(run):
    class Hang(StrEchoHandler):
        async def on_upgrade(self, conn, request, subprotocols):
            await asyncio.sleep(3600)

    async def main():
        async with serving(Hang(), handshake_timeout=0.3, tick=0.05) as server:
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/"))
            data = await read_to_eof(reader, timeout=5)
            # it used to hang forever: the deadline was disarmed once the head was read
            assert data.startswith(b"HTTP/1.1 503 ")
            assert server.counters["http_timeouts"] == 1

    run(main())


# -- on_http -----------------------------------------------------------------------------


class Web:
    def __init__(self, is_async=False):
        self.is_async = is_async
        self.seen = []

    def _respond(self, request):
        self.seen.append((request.method, request.target, request.body))
        body = f"{request.method} {request.path} {request.query} {len(request.body)}".encode()
        return Response(200, [("Content-Type", "text/plain")], body)

    def on_http(self, request):
        if not self.is_async:
            return self._respond(request)

        async def later():
            await asyncio.sleep(0.01)
            return self._respond(request)

        return later()


def get(path, extra=b"", method="GET"):
    return f"{method} {path} HTTP/1.1\r\nHost: x\r\n".encode() + extra + b"\r\n"


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_http_keep_alive(run, is_async):
    async def main():
        web = Web(is_async)
        async with serving(web) as server:
            reader, writer = await open_raw(server.port)
            for i in range(3):
                writer.write(get(f"/p{i}?a={i}"))
                status, _, headers, body = await asyncio.wait_for(read_response(reader), 5)
                assert status == 200 and body == f"GET /p{i} {{'a': '{i}'}} 0".encode()
                assert headers["content-length"] == str(len(body))
                assert headers.get("connection") != "close"
            writer.close()

    run(main())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_http_pipelined_requests_answered_in_order(run, is_async):
    async def main():
        web = Web(is_async)
        async with serving(web) as server:
            reader, writer = await open_raw(server.port)
            body = b"x" * 10
            writer.write(
                get("/one") + get("/two", b"Content-Length: 10\r\n", "POST") + body + get("/three", method="HEAD")
                + get("/four")
            )
            r1 = await asyncio.wait_for(read_response(reader), 5)
            r2 = await asyncio.wait_for(read_response(reader), 5)
            r3 = await asyncio.wait_for(read_response(reader, head_only=True), 5)
            r4 = await asyncio.wait_for(read_response(reader), 5)
            assert r1[3] == b"GET /one {} 0"
            assert r2[3] == b"POST /two {} 10"
            # HEAD: the length of the GET body, no body
            assert r3[0] == 200 and r3[2]["content-length"] == str(len(b"HEAD /three {} 0"))
            assert r4[3] == b"GET /four {} 0"  # proves no HEAD body was sent in between
            assert web.seen[1] == ("POST", "/two", body)

    run(main())


def test_http_connection_close_honoured(run):
    async def main():
        async with serving(Web()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/bye", b"Connection: close\r\n"))
            status, _, headers, _body = await read_response(reader)
            assert status == 200 and headers["connection"] == "close"
            assert await read_to_eof(reader) == b""

    run(main())


def test_http_10_closes_after_response(run):
    async def main():
        async with serving(Web()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(b"GET /old HTTP/1.0\r\n\r\n")
            status, *_ = await read_response(reader)
            assert status == 200
            assert await read_to_eof(reader) == b""

    run(main())


def test_http_keepalive_timeout(run):
    async def main():
        async with serving(Web(), keepalive_timeout=0.2, tick=0.05) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/"))
            assert (await read_response(reader))[0] == 200
            assert await read_to_eof(reader, timeout=5) == b""

    run(main())


def test_default_http_handler_is_404(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/"))
            status, _, _, body = await read_response(reader)
            assert (status, body) == (404, b"not found\n")

    run(main())


def test_http_handler_errors_are_500(run):
    class Bad:
        def on_http(self, request):
            if request.path == "/raise":
                raise RuntimeError("bug")
            if request.path == "/async-raise":
                async def f():
                    raise RuntimeError("bug")
                return f()
            return "not a response"

    async def main():
        async with serving(Bad()) as server:
            reader, writer = await open_raw(server.port)
            for path in ("/raise", "/async-raise", "/wrong-type"):
                writer.write(get(path))
                assert (await asyncio.wait_for(read_response(reader), 5))[0] == 500

    run(main())


def test_body_over_max_body_size_413_declared(run):
    async def main():
        async with serving(Web(), max_body_size=100) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/up", b"Content-Length: 100\r\n", "POST") + b"a" * 100)
            assert (await read_response(reader))[0] == 200
            writer.write(get("/up", b"Content-Length: 101\r\n", "POST"))
            status, _, headers, _body = await asyncio.wait_for(read_response(reader), 5)
            assert status == 413 and headers["connection"] == "close"
            assert await read_to_eof(reader) == b""

    run(main())


def test_body_over_max_body_size_413_chunked(run):
    async def main():
        async with serving(Web(), max_body_size=100) as server:
            reader, writer = await open_raw(server.port)
            chunks = b"".join(b"%x\r\n%s\r\n" % (40, b"c" * 40) for _ in range(3)) + b"0\r\n\r\n"
            writer.write(get("/up", b"Transfer-Encoding: chunked\r\n", "POST") + chunks)
            status, *_ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 413

    run(main())


def test_malformed_request_is_400(run):
    async def main():
        async with serving(Web()) as server:
            st, _, _, _body, _ = await refused(server.port, b"THIS IS NOT HTTP\r\n\r\n")
            assert st == 400

    run(main())


def test_websocket_after_http_request_on_same_connection(run):
    async def main():
        async with serving(EchoHandler()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/") + upgrade_request("/", KEY))
            assert (await read_response(reader))[0] == 404
            status, _, headers, _ = await asyncio.wait_for(read_response(reader), 5)
            assert status == 101 and headers["sec-websocket-accept"] == accept_key(KEY)

    run(main())


@pytest.mark.parametrize("is_async", [False, True], ids=["sync", "async"])
def test_unserialisable_response_is_500(run, is_async):
    # a header value outside latin-1 cannot go on the wire: the handler's bug
    # becomes a 500 for this request, not a dropped connection
    class Bad:
        def on_http(self, request):
            resp = Response(200, [("X-Currency", "€")], b"body") if request.path == "/bad" else \
                Response(200, [], b"fine")
            if not is_async:
                return resp

            async def later():
                return resp

            return later()

    async def main():
        async with serving(Bad()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/bad") + get("/good"))
            assert (await asyncio.wait_for(read_response(reader), 5))[0] == 500
            status, _, _, body = await asyncio.wait_for(read_response(reader), 5)
            assert (status, body) == (200, b"fine")

    run(main())


def test_async_handler_returning_non_response_is_500(run):
    class Bad:
        async def on_http(self, request):
            return "not a Response" if request.path == "/bad" else Response(200, [], b"ok")

    async def main():
        async with serving(Bad()) as server:
            reader, writer = await open_raw(server.port)
            writer.write(get("/bad"))
            assert (await asyncio.wait_for(read_response(reader), 5))[0] == 500
            writer.write(get("/good"))  # and the connection still works
            assert (await asyncio.wait_for(read_response(reader), 5))[3] == b"ok"

    run(main())
