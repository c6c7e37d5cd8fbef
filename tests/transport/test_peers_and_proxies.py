"""Who the peer is and what the log says about it: a request with two ``Host`` fields
is refused (RFC 9112 3.2); ``trusted_proxies`` makes X-Forwarded-For/-Proto count, and
only from those proxies (client address, scheme, per-address limit); refusals and
engine-decided closes are logged with distinct reasons and the client's address, capped
per reason."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
from _nethelpers import (
    StrEchoHandler,
    close_code,
    mask_frame,
    open_raw,
    read_frame,
    read_response,
    read_to_eof,
    serving,
    upgrade_request,
    ws_raw,
)

from hero_fast._transport import CappedLog, Reject, Response, peer_log

TEXT, CLOSE, PING = 0x1, 0x8, 0x9


@pytest.fixture(autouse=True)
def fresh_log_caps():
    peer_log._reasons.clear()  # caps are per process; each test starts with none used
    yield
    peer_log._reasons.clear()


class Who(StrEchoHandler):
    """Answers HTTP with the client address and scheme it sees; WebSocket echoes."""

    def __init__(self):
        self.conns = []

    def on_http(self, request):
        return Response(200, [], f"{request.remote_address} {request.scheme}".encode())

    def on_connect(self, conn):
        self.conns.append(conn)


async def http_get(port, headers=()):
    reader, writer = await open_raw(port)
    lines = ["GET / HTTP/1.1", "Host: x", *(f"{k}: {v}" for k, v in headers), "Connection: close"]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    status, _, _, body = await asyncio.wait_for(read_response(reader), 5)
    return status, body.decode()


# -- RFC 9112 3.2: exactly one Host ------------------------------------------------------------


@pytest.mark.parametrize("upgrade", [False, True], ids=["http", "upgrade"])
def test_rfc9112_3_2_two_host_fields_get_400(run, upgrade):
    async def main():
        async with serving(Who()) as server:
            reader, writer = await open_raw(server.port)
            if upgrade:
                writer.write(upgrade_request("/", extra=[("Host", "other.example")]))
            else:
                writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            status, _, headers, body = await asyncio.wait_for(read_response(reader), 5)
            assert (status, headers["connection"], body) == (400, "close", b"bad request\n")
            assert await read_to_eof(reader) == b""
            # one Host is fine
            assert await http_get(server.port) == (200, "127.0.0.1 http")

    run(main())


# -- trusted proxies ---------------------------------------------------------------------------


def test_forwarded_headers_count_only_from_a_trusted_proxy(run):
    fwd = [("X-Forwarded-For", "198.51.100.9, 203.0.113.7, 10.1.2.3"), ("X-Forwarded-Proto", "https")]

    async def main():
        async with serving(Who(), trusted_proxies=["127.0.0.1", "10.0.0.0/8"]) as server:
            # the right-most address that is not a trusted proxy; the left part is the client's claim
            assert await http_get(server.port, fwd) == (200, "203.0.113.7 https")
            assert await http_get(server.port, [("X-Forwarded-For", "10.0.0.5")]) == (200, "10.0.0.5 http")
            assert await http_get(server.port, [("X-Forwarded-For", "[2001:db8::1]:443")]) == (
                200, "2001:db8::1 http")
            assert await http_get(server.port, [("X-Forwarded-For", "junk")]) == (200, "127.0.0.1 http")
            assert await http_get(server.port) == (200, "127.0.0.1 http")
        async with serving(Who(), trusted_proxies=["10.0.0.1"]) as server:
            # our peer (127.0.0.1) is not trusted: the headers are anyone's words
            assert await http_get(server.port, fwd) == (200, "127.0.0.1 http")
        async with serving(Who()) as server:
            assert await http_get(server.port, fwd) == (200, "127.0.0.1 http")

    run(main())


def test_websocket_client_address_and_per_address_limit_behind_a_proxy(run):
    async def main():
        who = Who()
        async with serving(who, trusted_proxies=["127.0.0.0/8"], max_connections_per_ip=1) as server:
            await ws_raw(server.port, extra=[("X-Forwarded-For", "198.51.100.1")])
            await ws_raw(server.port, extra=[("X-Forwarded-For", "198.51.100.2")])
            assert [c.client_address for c in who.conns] == ["198.51.100.1", "198.51.100.2"]
            assert [c.request.remote_address for c in who.conns] == ["198.51.100.1", "198.51.100.2"]
            assert server.ip_counts == {"198.51.100.1": 1, "198.51.100.2": 1}
            # the proxy's own address is not what is limited: a second client behind it
            # connects, a second connection of the same client is refused once its head is read
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/", extra=[("X-Forwarded-For", "198.51.100.1")]))
            status, _, headers, body = await asyncio.wait_for(read_response(reader), 5)
            assert (status, body, headers["retry-after"]) == (503, b"too many connections from your address\n", "1")
            assert server.counters["connections_refused_per_ip"] == 1

    run(main())


# -- the capped log of peer events -------------------------------------------------------------


def records(caplog):
    return [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "hero_fast.transport"]


def test_refusals_are_logged_with_reason_and_client_address(run, caplog):
    class Picky(Who):
        def on_upgrade(self, conn, request, offered):
            if request.header("origin") == "http://evil.example":
                raise Reject(403, "origin not allowed")

    async def main():
        async with serving(Picky(), trusted_proxies=["127.0.0.1"]) as server:
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/", omit=["Sec-WebSocket-Key"]))
            assert (await read_response(reader))[0] == 400
            reader, writer = await open_raw(server.port)
            writer.write(upgrade_request("/", extra=[("Origin", "http://evil.example"),
                                                     ("X-Forwarded-For", "203.0.113.5")]))
            assert (await read_response(reader))[0] == 403
            reader, writer = await open_raw(server.port)
            writer.write(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
            assert (await read_response(reader))[0] == 400
        async with serving(Picky(), max_connections=1) as server:
            await ws_raw(server.port)
            reader, writer = await open_raw(server.port)
            assert (await read_response(reader))[0] == 503

    caplog.set_level(logging.INFO, logger="hero_fast.transport")
    run(main())
    assert records(caplog) == [
        (logging.INFO, "refused 400: Sec-WebSocket-Key must be one base64-encoded 16-byte value (peer 127.0.0.1)"),
        (logging.INFO, "refused 403: origin not allowed (peer 203.0.113.5)"),
        (logging.INFO, "refused 400: duplicate Host header (peer 127.0.0.1)"),
        (logging.WARNING, "refused 503: too many connections (peer 127.0.0.1)"),
    ]


def test_limit_and_protocol_closes_are_logged_with_distinct_reasons(run, caplog):
    async def main():
        async with serving(StrEchoHandler(), max_messages_per_second=1, max_pings_per_second=1,
                           rate_limit_policy="close") as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(TEXT, "m") for _ in range(5)))
            while (frame := await read_frame(reader))[1] != CLOSE:
                pass
            assert close_code(frame[2]) == 1008
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(PING, b"p") for _ in range(5)))
            while (frame := await read_frame(reader))[1] != CLOSE:
                pass
            reader, writer = await ws_raw(server.port)
            writer.write(mask_frame(TEXT, "unmasked", masked=False))
            while (frame := await read_frame(reader))[1] != CLOSE:
                pass
            assert close_code(frame[2]) == 1002
        async with serving(StrEchoHandler(), max_messages_per_second=1) as server:
            reader, writer = await ws_raw(server.port)
            writer.write(b"".join(mask_frame(TEXT, "m") for _ in range(3)))
            await read_frame(reader)
            await read_frame(reader)
            while server.counters["throttled"] == 0:
                await asyncio.sleep(0.01)

    caplog.set_level(logging.INFO, logger="hero_fast.transport")
    run(main())
    assert records(caplog) == [
        (logging.INFO, "websocket closed 1008: rate limit (peer 127.0.0.1)"),
        (logging.INFO, "websocket closed 1008: too many pings (peer 127.0.0.1)"),
        (logging.INFO, "websocket closed 1002: client frames must be masked (peer 127.0.0.1)"),
        (logging.INFO, "websocket throttled: rate limit, reading paused (peer 127.0.0.1)"),
    ]


def test_capped_log_suppresses_a_flood_and_says_how_much(caplog):
    log = logging.getLogger("hero_fast.test_capped")
    capped = CappedLog(log, burst=2, window=0.2)
    caplog.set_level(logging.INFO, logger="hero_fast.test_capped")
    for i in range(50):
        capped.note(logging.INFO, "flood", f"10.0.0.{i}", "refused: flood (peer %s)")
        capped.note(logging.INFO, "other", "10.9.9.9", "refused: other (peer %s)")
    time.sleep(0.25)
    capped.note(logging.INFO, "flood", "10.0.0.99", "refused: flood (peer %s)")
    assert [r.getMessage() for r in caplog.records] == [
        "refused: flood (peer 10.0.0.0)", "refused: other (peer 10.9.9.9)",
        "refused: flood (peer 10.0.0.1)", "refused: other (peer 10.9.9.9)",
        "refused: flood (peer 10.0.0.99) (48 more suppressed)",
    ]
    assert caplog.records[-1].peer == "10.0.0.99" and caplog.records[-1].reason == "flood"
