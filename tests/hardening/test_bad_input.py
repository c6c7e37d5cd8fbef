"""The bad-input battery: one test per offence. Each asserts what the offender gets
(an HTTP error, a close code, an error envelope) AND, through ``battery.check()``,
that a bystander in ``defaultRoom`` keeps getting the room's messages."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import zlib
from typing import Any

import pytest

from .conftest import (
    Battery,
    Peer,
    close_raw,
    eof_within,
    frame,
    raw_open,
    raw_ws,
    read_frame,
    read_response,
    read_until_close,
    start,
    upgrade,
)

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


async def send_json(writer: asyncio.StreamWriter, obj: object) -> None:
    writer.write(frame(TEXT, json.dumps(obj)))
    await writer.drain()


async def response(reader: asyncio.StreamReader) -> dict:
    while True:
        _, op, payload = await read_frame(reader)
        assert op == TEXT, (op, payload[:100])
        m = json.loads(payload)
        if isinstance(m, dict) and m.get("context") == "response":
            return m


# -- HTTP / handshake ------------------------------------------------------------------------------


async def test_slowloris_headers(battery: Battery) -> None:
    reader, writer = await raw_open(battery.port)
    writer.write(b"GET /primus HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()

    async def trickle() -> None:
        for c in b"X-Slow: " + b"a" * 100:
            writer.write(bytes([c]))
            await asyncio.sleep(0.05)

    task = asyncio.ensure_future(trickle())
    await battery.check()  # meanwhile, everyone else is served
    status, _, body = await read_response(reader, timeout=5)
    task.cancel()
    assert status == 408 and body == b"request timeout\n"
    assert time.monotonic() - started < 3  # handshakeTimeout=1 s (+ the tick)
    assert battery.counters["http_timeouts"] >= 1
    await battery.check()


@pytest.mark.parametrize(
    "head,status",
    [
        (b"GET /primus?" + b"a" * 20_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"GET /primus HTTP/1.1\r\nX-Big: " + b"v" * 2_100_000 + b"\r\n\r\n", 431),
        (b"GET /primus HTTP/1.1\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(200)) + b"\r\n", 431),
    ],
    ids=["request-line", "header-line", "header-count"],
)
async def test_oversized_head_split_across_segments(battery: Battery, head: bytes, status: int) -> None:
    reader, writer = await raw_open(battery.port)
    for i in range(0, len(head), 1000):
        writer.write(head[i : i + 1000])
        if i < 20_000:
            await asyncio.sleep(0)
    got, headers, _ = await read_response(reader)
    assert got == status and headers["connection"] == "close"
    await battery.check()


@pytest.mark.parametrize(
    "request_bytes,status,needle",
    [
        (upgrade(omit=("Sec-WebSocket-Key",)), 400, b"Sec-WebSocket-Key"),
        (upgrade(extra=(("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),)), 400, b"Sec-WebSocket-Key"),
        (upgrade(key="not a base64 key at all!"), 400, b"Sec-WebSocket-Key"),
        (upgrade(omit=("Sec-WebSocket-Version",), extra=(("Sec-WebSocket-Version", "8"),)), 426, b"13"),
        (upgrade(method="POST"), 400, b"GET"),
        (upgrade(version="1.0"), 400, b"HTTP/1.1"),
    ],
    ids=["missing-key", "duplicate-key", "invalid-key", "wrong-version", "non-GET", "HTTP/1.0"],
)
async def test_bad_upgrade_requests(battery: Battery, request_bytes: bytes, status: int, needle: bytes) -> None:
    reader, writer = await raw_open(battery.port)
    writer.write(request_bytes)
    got, headers, body = await read_response(reader)
    assert got == status and needle in body
    if status == 426:
        assert headers["sec-websocket-version"] == "13"
    assert await eof_within(reader, 5)
    await battery.check()


@pytest.mark.parametrize(
    "name,value",
    [
        ("Sec-WebSocket-Protocol", ", ".join(f"proto{i}" for i in range(100_000))),
        ("Sec-WebSocket-Extensions", ", ".join(f"ext{i}; p={i}" for i in range(100_000))),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits=" + "9" * 1_000_000),
        ("Sec-WebSocket-Extensions", "permessage-deflate; x, " * 60_000 + "permessage-deflate"),
        ("Sec-WebSocket-Extensions", 'permessage-deflate; q="' + "\\a" * 500_000 + '"'),
    ],
    ids=["100k-protocols", "100k-extensions", "huge-param", "100k-deflate-offers", "huge-quoted"],
)
async def test_pathological_lists_are_parsed_in_linear_time(battery: Battery, name: str, value: str) -> None:
    reader, writer = await raw_open(battery.port)
    started = time.monotonic()
    writer.write(upgrade(extra=((name, value),)))
    status, headers, _ = await read_response(reader)
    assert status == 101
    assert "sec-websocket-extensions" not in headers  # nothing acceptable was offered
    assert "sec-websocket-protocol" not in headers
    assert time.monotonic() - started < 3
    _, _op, payload = await read_frame(reader)
    assert b"welcome" in payload
    await battery.check()


async def test_cross_origin_upgrade_with_a_valid_cookie(battery: Battery) -> None:
    cookie = ("Cookie", "sessionID=" + "a" * 40)
    reader, writer = await raw_open(battery.port)
    writer.write(upgrade(extra=(("Origin", "http://evil.example"), cookie)))
    status, _, body = await read_response(reader)
    assert (status, body) == (403, b"origin not allowed\n")
    # the configured origin is allowed, with the same cookie
    reader, writer = await raw_open(battery.port)
    writer.write(upgrade(extra=(("Origin", "http://good.example"), cookie)))
    assert (await read_response(reader))[0] == 101
    await battery.check()


# -- frames ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data,code",
    [
        (frame(TEXT, "unmasked", key=None), 1002),
        (frame(0x3, b"x"), 1002),
        (frame(0xB, b""), 1002),
        (frame(TEXT, "{}", rsv=2), 1002),
        (frame(TEXT, "{}", rsv=4), 1002),  # RSV1 without permessage-deflate
        (frame(PING, b"p" * 126), 1002),
        (frame(PING, b"p", fin=False), 1002),
        (bytes([0x82, 0xFF]) + (1 << 63 | 5).to_bytes(8, "big") + b"\x00" * 4, 1002),
        (frame(CLOSE, b"\x03"), 1002),
        (frame(CLOSE, (1005).to_bytes(2, "big")), 1002),
        (frame(CLOSE, (999).to_bytes(2, "big")), 1002),
        (frame(CLOSE, (5000).to_bytes(2, "big")), 1002),
        (frame(CLOSE, (1000).to_bytes(2, "big") + b"\xff"), 1007),
    ],
    ids=["unmasked", "reserved-opcode-3", "reserved-opcode-B", "rsv2", "rsv1-unnegotiated", "ping-126",
         "fragmented-ping", "length-top-bit", "close-1-byte", "close-1005", "close-999", "close-5000",
         "close-reason-utf8"],
)
async def test_protocol_violations(battery: Battery, data: bytes, code: int) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(data)
    got, _, _ = await read_until_close(reader)
    assert got == code
    assert await eof_within(reader, 5)
    await battery.check()


async def test_decompression_bomb(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port, extra=(("Sec-WebSocket-Extensions", "permessage-deflate"),))
    co = zlib.compressobj(1, zlib.DEFLATED, -15)
    bomb = (co.compress(b"\0" * (40 << 20)) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]  # 40 MiB in ~180 KiB
    f = bytearray(frame(TEXT, bomb))
    f[0] |= 0x40
    writer.write(bytes(f))
    code, reason, _ = await read_until_close(reader)
    assert (code, reason) == (1009, "message too big after decompression")
    await battery.check()


async def test_thousands_of_zero_length_fragments(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(frame(TEXT, b"", fin=False) + frame(CONT, b"", fin=False) * 5000 + frame(CONT, b"{}"))
    code, _, _ = await read_until_close(reader)
    assert code == 1009
    await battery.check()


async def test_invalid_utf8_split_across_fragments(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(frame(TEXT, b'{"a": "\xe2\x82', fin=False))
    await asyncio.sleep(0.05)
    writer.write(frame(CONT, b'("}'))
    code, _, _ = await read_until_close(reader)
    assert code == 1007
    await battery.check()


@pytest.mark.battery_config({"servers": {"websocket": {"rateLimitPolicy": "close"}}})
async def test_ping_flood(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(b"".join(frame(PING, b"%d" % i) for i in range(1000)))
    code, reason, before = await read_until_close(reader)
    assert (code, reason) == (1008, "too many pings")
    assert len(before) <= 1  # pings read together got one pong
    assert battery.counters["ping_flood"] == 1
    await battery.check()


@pytest.mark.battery_config({"servers": {"websocket": {"maxMessagesPerSecond": 20, "rateLimitPolicy": "close"}}})
async def test_message_flood_rate_limited_under_the_close_policy(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(b"".join(frame(TEXT, json.dumps({"event": "detailsView", "messageId": i})) for i in range(200)))
    code, reason, before = await read_until_close(reader)
    assert (code, reason) == (1008, "rate limit")
    assert len(before) == 40  # the bucket holds twice the rate
    assert battery.counters["rate_limited"] == 1
    await battery.check()


async def test_a_peer_that_never_answers_close(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    await send_json(writer, {"event": "quit"})
    _, _, payload = await read_frame(reader)
    assert payload == b'"primus::server::close"'
    code, reason, _ = await read_until_close(reader)
    assert (code, reason) == (1000, "quit")
    # we neither answer the close nor close TCP: the server drops us after closeTimeout
    started = time.monotonic()
    assert await eof_within(reader, 5)
    assert time.monotonic() - started < 4
    await battery.check()


async def test_a_frame_trickled_in(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    data = frame(TEXT, json.dumps({"event": "say", "room": "defaultRoom", "message": "x" * 5000}))
    writer.write(data[:100])

    async def trickle() -> None:
        for i in range(100, 400):
            writer.write(data[i : i + 1])
            await asyncio.sleep(0.02)

    task = asyncio.ensure_future(trickle())
    code, reason, _ = await read_until_close(reader, timeout=6)
    task.cancel()
    assert (code, reason) == (1008, "frame read timeout")
    await battery.check()


async def test_a_client_that_never_reads_while_its_room_is_flooded(battery: Battery) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", battery.port))
    reader, writer = await asyncio.open_connection(sock=sock)
    writer.write(upgrade())
    assert (await read_response(reader))[0] == 101
    await read_frame(reader)  # welcome
    await send_json(writer, {"event": "roomAdd", "room": "defaultRoom", "messageId": 1})
    assert (await response(reader))["status"] == "OK"
    # from now on the offender reads nothing
    blob = "y" * 60_000
    for i in range(120):  # ~7 MB for the offender; the bystander gets it compressed
        r = await battery.sayer.request("say", room="defaultRoom", message={"n": i, "blob": blob})
        assert r["status"] == "OK"
    for i in range(120):
        await battery.bystander.expect(lambda m, i=i: isinstance(m, dict) and m.get("message", {}).get("n") == i)
    assert battery.counters["messages_dropped"] > 0  # the offender's share, not everyone's
    await battery.check()
    writer.close()


# -- JSON envelopes ---------------------------------------------------------------------------------------


async def test_json_10_mb(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    body = json.dumps({"event": "say", "room": "defaultRoom", "message": "z" * (10 << 20)})
    writer.write(frame(TEXT, body))
    code, _, _ = await read_until_close(reader)
    assert code == 1009
    await battery.check()


async def test_json_10000_levels_deep(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(frame(TEXT, "[" * 10_000 + "]" * 10_000))
    r = await response(reader)
    assert r["error"] == "Error: JSON nested deeper than 64 levels"
    writer.write(frame(TEXT, '{"event":"detailsView","a":' + '{"b":' * 10_000 + "1" + "}" * 10_001))
    assert "nested deeper" in (await response(reader))["error"]
    await send_json(writer, {"event": "detailsView", "messageId": 2})
    assert (await response(reader))["status"] == "OK"  # the connection stays
    await battery.check()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # RFC 8259 accepts these; orjson refuses them: the slow parser takes them
        ('{"event": "detailsView", "messageId": 7, "n": 1e400}', {"status": "OK", "messageId": 7}),
        ('{"event": "detailsView", "messageId": 8, "n": -1e99999}', {"status": "OK", "messageId": 8}),
        ('{"event": "detailsView", "messageId": 9, "n": ' + "9" * 1000 + "}", {"status": "OK", "messageId": 9}),
        # an integer Python will not convert (> 4300 digits): refused, to its messageId
        ('{"event": "detailsView", "messageId": "m", "n": ' + "9" * 5000 + "}",
         {"error": "Error: message has a number too large to handle", "messageId": "m"}),
        ('{"event": "action", "messageId": ' + "9" * 5000 + "}",
         {"error": "Error: message has a number too large to handle", "messageId": None}),
        ("1" + "0" * 5000, {"error": "Error: message has a number too large to handle", "messageId": None}),
        ("-1e99999", {"error": "Error: a request must be a JSON object", "messageId": None}),
        ('{"event": "detailsView", "messageId": 3, "n": NaN}',
         {"error": "Error: message is not valid JSON", "messageId": None}),
    ],
    ids=["1e400", "-1e99999-field", "1000-digit-int", "5000-digit-int", "huge-messageId-number",
         "10**5000", "-1e99999", "NaN"],
)
async def test_json_huge_numbers(battery: Battery, text: str, expected: dict[str, Any]) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(frame(TEXT, text))
    r = await response(reader)
    assert {k: r.get(k) for k in expected} == expected
    await battery.check()


async def test_json_reply_that_cannot_be_encoded_reaches_the_caller(battery: Battery) -> None:
    """A 400-digit integer parses (slow path: orjson reads it as a double, which
    overflows) but orjson cannot write it back: the caller still gets an error with
    its messageId."""
    reader, writer = await raw_ws(battery.port)
    big = "1" * 400
    writer.write(frame(TEXT, '{"event": "action", "messageId": 5, "params": {"action": "echo", "x": ' + big + "}}"))
    r = await response(reader)
    assert r["messageId"] == 5 and r["error"] == "Error: the response could not be encoded as JSON"
    writer.write(frame(TEXT, '{"event": "nope", "messageId": 6, "n": ' + big + "}"))
    r = await response(reader)  # a verb error echoes the request in `data`: dropped when unencodable
    assert (r["messageId"], r["error"], r["data"]) == (6, "Error: verb not found or not allowed (nope)", None)
    await battery.check()


async def test_json_1_mb_message_id(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    await send_json(writer, {"event": "detailsView", "messageId": "m" * 1_000_000})
    r = await response(reader)
    assert r["error"] == "Error: messageId longer than 256 characters" and r["messageId"] is None
    await battery.check()


@pytest.mark.parametrize(
    "room,error",
    [
        ("bad\x00room", "Error: room name contains control characters"),
        ("line\nbreak", "Error: room name contains control characters"),
        ("\x1b[31mred", "Error: room name contains control characters"),
        ("r" * 500_000, "Error: room name longer than 256 characters"),
    ],
    ids=["nul", "newline", "escape", "500k"],
)
async def test_room_names(battery: Battery, room: str, error: str) -> None:
    reader, writer = await raw_ws(battery.port)
    for event in ("roomAdd", "say", "roomView"):
        await send_json(writer, {"event": event, "room": room, "message": "m", "messageId": 1})
        r = await response(reader)
        assert r["error"] == error, (event, r["error"][:80])
    await battery.check()


async def test_room_name_10_mb(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    writer.write(frame(TEXT, json.dumps({"event": "roomAdd", "room": "r" * (10 << 20)})))
    code, _, _ = await read_until_close(reader)
    assert code == 1009
    await battery.check()


# -- app-layer limits that already existed ---------------------------------------------------------------


async def test_rooms_per_connection(battery: Battery) -> None:
    p = await Peer.connect(battery.api)
    for i in range(20):
        assert (await p.request("roomAdd", room=f"r{i}"))["status"] == "OK"
    r = await p.request("roomAdd", room="r20")
    assert r["error"] == "Error: connection is already in 20 rooms, the most allowed"
    await p.close()
    await battery.check()


async def test_in_flight_actions(battery: Battery) -> None:
    reader, writer = await raw_ws(battery.port)
    for i in range(7):
        await send_json(writer, {"event": "action", "messageId": i, "params": {"action": "slow", "ms": 300}})
    got = {}
    for _ in range(7):
        r = await response(reader)
        got[r["messageId"]] = r
    refused = [i for i, r in got.items() if r.get("error") == "you have too many pending requests"]
    assert len(refused) == 2 and all(got[i].get("slept") == 300 for i in got if i not in refused)
    await battery.check()


async def test_idle_connection_is_closed_by_the_heartbeat(tmp_path) -> None:
    api = await start(tmp_path, {"servers": {"websocket": {"server": {"pingInterval": 200, "timeout": 400}}}})
    bystander = sayer = None
    try:
        bystander, sayer = await Peer.connect(api), await Peer.connect(api)
        for p in (bystander, sayer):
            assert (await p.request("roomAdd", room="defaultRoom"))["status"] == "OK"
        battery = Battery(api, bystander, sayer)
        reader, _writer = await raw_ws(api.port)  # never answers the Primus heartbeat
        code, reason, before = await read_until_close(reader, timeout=5)
        assert (code, reason) == (1011, "heartbeat timeout")
        assert before and before[0].startswith(b'"primus::ping::')
        await battery.check()
        await battery.check()
    finally:
        close_raw()
        for p in (bystander, sayer):
            if p is not None:
                await p.close()
        await asyncio.wait_for(api.stop(), 10)


async def test_connections_per_ip_and_total(tmp_path) -> None:
    api = await start(tmp_path, {"servers": {"websocket": {"maxConnectionsPerIp": 4}}})
    bystander = sayer = None
    try:
        bystander, sayer = await Peer.connect(api), await Peer.connect(api)
        for p in (bystander, sayer):
            assert (await p.request("roomAdd", room="defaultRoom"))["status"] == "OK"
        battery = Battery(api, bystander, sayer)
        extra = [await raw_ws(api.port) for _ in range(2)]
        reader, writer = await raw_open(api.port)
        writer.write(upgrade())
        status, _, body = await read_response(reader)
        assert (status, body) == (503, b"too many connections from your address\n")
        assert battery.counters["connections_refused_per_ip"] == 1
        await battery.check()
        for _, w in extra:
            w.close()
        await battery.check()
    finally:
        close_raw()
        for p in (bystander, sayer):
            if p is not None:
                await p.close()
        await asyncio.wait_for(api.stop(), 10)
