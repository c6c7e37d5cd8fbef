"""hero_fast.client against the fake server of conftest.py (no real hero-fast server)."""

from __future__ import annotations

import asyncio
import base64
import gc
import os
import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Any

import orjson
import pytest

import hero_fast.client as client_module
from hero_fast._core import check_upgrade_request, encode_frame
from hero_fast.client import (
    Client,
    ClientTimeout,
    ConnectionClosed,
    HandshakeFailed,
    ProtocolError,
)

# -- connecting -----------------------------------------------------------------


async def test_connect_returns_welcome(fake):
    server = await fake()
    client = Client(server.url)
    assert client.closed and not client.open
    welcome = await client.connect()
    assert welcome == {"welcome": "Hello! Welcome to the fake server", "context": "api"}
    assert client.welcome == welcome
    assert client.open and not client.closed
    assert client.response_status == 101
    await client.disconnect()
    assert client.closed


async def test_handshake_request(fake):
    server = await fake()
    client = Client(
        server.url,
        cookies={"sessionID": "abc123", "other": "x"},
        headers={"Origin": "http://example.test", "X-Extra": "1"},
    )
    await client.connect()
    method, target, headers = server.requests[0]
    assert method == "GET"
    assert target == "/primus"  # the default path
    h = dict(headers)
    assert h["cookie"] == "sessionID=abc123; other=x"
    assert h["origin"] == "http://example.test"
    assert h["x-extra"] == "1"
    assert h["host"] == f"127.0.0.1:{server.port}"
    # the request passes the server-side validation, with a fresh 16-byte key
    key, _, _ = check_upgrade_request("GET", "1.1", headers)
    assert len(base64.b64decode(key)) == 16
    await client.disconnect()


async def test_path_and_query_kept_and_keys_random(fake):
    server = await fake()
    for _ in range(2):
        async with Client(server.url + "/primus/?_primuscb=123&sessionID=fp", cookies="a=b"):
            pass
    assert server.requests[0][1] == "/primus/?_primuscb=123&sessionID=fp"
    assert dict(server.requests[0][2])["cookie"] == "a=b"
    keys = [dict(r[2])["sec-websocket-key"] for r in server.requests]
    assert keys[0] != keys[1]


async def test_handshake_and_frames_split_byte_by_byte(fake):
    server = await fake(dribble=True)
    async with Client(server.url) as client:
        assert client.welcome is not None
        assert (await client.action("echo", {"a": 1}))["echo"] == {"action": "echo", "a": 1}


async def test_refused_handshake_raises_clear_error(fake):
    server = await fake(refuse=(404, [("Content-Type", "text/plain")], b"no such endpoint"))
    client = Client(server.url + "/nope")
    with pytest.raises(HandshakeFailed) as info:
        await client.connect()
    err = info.value
    assert isinstance(err, ConnectionError)
    assert err.status == 404
    assert err.body == b"no such endpoint"
    assert "404" in str(err) and "no such endpoint" in str(err)
    assert ("content-type", "text/plain") in err.headers
    assert client.closed
    await client.disconnect()  # harmless


async def test_refused_with_403(fake):
    server = await fake(refuse=(403, [], b""))
    with pytest.raises(HandshakeFailed, match="HTTP 403 Forbidden"):
        await Client(server.url).connect()


async def test_wrong_accept_key_rejected(fake):
    def bad_accept(key: str) -> bytes:
        return (
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        )

    server = await fake(accept_override=bad_accept)
    with pytest.raises(HandshakeFailed, match="Sec-WebSocket-Accept"):
        await Client(server.url).connect()


async def test_not_http_rejected(fake):
    server = await fake(accept_override=lambda key: b"SSH-2.0-OpenSSH\r\n\r\n")
    with pytest.raises(HandshakeFailed, match="not an HTTP response"):
        await Client(server.url).connect()


async def test_connect_timeout(fake):
    server = await fake(silent=True)
    client = Client(server.url, timeout=0.2)
    with pytest.raises(ClientTimeout, match="connecting"):
        await client.connect()
    assert isinstance(ClientTimeout(), asyncio.TimeoutError)
    assert client.closed


async def test_connection_refused():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(OSError):
        await Client(f"ws://127.0.0.1:{port}/primus").connect()


async def test_reconnect_after_close(fake):
    server = await fake()
    client = Client(server.url)
    await client.connect()
    await client.action("echo")
    await client.disconnect()
    await client.connect()
    # messageIds start again at 1 on a new connection
    await client.action("echo")
    assert server.conns[1].received[0]["messageId"] == 1
    with pytest.raises(RuntimeError):
        await client.connect()
    await client.disconnect()


def test_bad_arguments():
    with pytest.raises(ValueError, match="scheme"):
        Client("ftp://x/")
    with pytest.raises(ValueError, match="wss"):
        Client("ws://x/", ssl=ssl.create_default_context())
    with pytest.raises(ValueError, match="set by the client"):
        Client("ws://x/", headers={"Sec-WebSocket-Key": "x"})
    with pytest.raises(ValueError, match="line break"):
        Client("ws://x/", headers={"X": "a\r\nInjected: 1"})
    with pytest.raises(ValueError, match="cookie"):
        Client("ws://x/", cookies={"a": "b; c=d"})
    c = Client("ws://[::1]:9000")
    assert c.target == "/primus" and dict(c._request_headers)["Host"] == "[::1]:9000"
    assert Client("wss://example.test/x").port == 443


# -- requests -------------------------------------------------------------------


async def test_action_round_trip_and_message_ids(fake):
    server = await fake()
    async with Client(server.url) as client:
        r1 = await client.action("echo", {"x": 1})
        r2 = await client.action("echo")
        assert r1 == {"echo": {"action": "echo", "x": 1}, "context": "response", "messageId": 1}
        assert r2["messageId"] == 2
        sent = server.conns[0].received
        assert sent[0] == {"event": "action", "params": {"action": "echo", "x": 1}, "messageId": 1}
        assert sent[1]["messageId"] == 2
        # the action name wins over a stray "action" param
        r3 = await client.action("echo", {"action": "other"})
        assert r3["echo"]["action"] == "echo"


async def test_error_responses_are_returned(fake):
    server = await fake()
    async with Client(server.url) as client:
        r = await client.action("nope")
        assert r["error"] == "unknown action or invalid apiVersion"
        r = await client.request("bogus")
        assert r["error"] == "Error: verb not found or not allowed (bogus)"


async def test_out_of_order_responses(fake):
    server = await fake()
    async with Client(server.url) as client:
        done: list[int] = []

        async def call(ms: int) -> dict[str, Any]:
            r = await client.action("sleep", {"ms": ms})
            done.append(ms)
            return r

        results = await asyncio.gather(call(150), call(80), call(0), client.action("echo", {"n": 4}))
        assert [r["messageId"] for r in results] == [1, 2, 3, 4]
        assert [r.get("slept") for r in results[:3]] == [150, 80, 0]
        assert results[3]["echo"]["n"] == 4
        assert done == [0, 80, 150]
        assert client.pending == 0


async def test_string_and_zero_message_ids(fake):
    server = await fake()
    async with Client(server.url) as client:
        r = await client.request("action", params={"action": "echo"}, messageId="abc")
        assert r["messageId"] == "abc"
        r = await client.request("action", params={"action": "echo"}, messageId=0)
        assert r["messageId"] == 0
        # automatic ids keep counting from where they were
        assert (await client.action("echo"))["messageId"] == 1


async def test_duplicate_pending_message_id_refused(fake):
    server = await fake()
    async with Client(server.url) as client:
        t = asyncio.ensure_future(client.request("action", params={"action": "silent"}, messageId="m"))
        await asyncio.sleep(0.01)
        with pytest.raises(ValueError, match="already pending"):
            await client.request("action", params={"action": "echo"}, messageId="m")
        t.cancel()


async def test_verbs(fake):
    server = await fake()
    async with Client(server.url) as client:
        assert (await client.room_add("r"))["data"] == {"event": "roomAdd", "room": "r"}
        assert (await client.room_leave("r"))["data"]["event"] == "roomLeave"
        assert (await client.room_view("r"))["data"]["room"] == "r"
        assert (await client.file("a.txt"))["data"] == {"event": "file", "file": "a.txt"}
        assert (await client.documentation())["data"] == {"event": "documentation"}
        assert client.id is None
        details = await client.details_view()
        assert details["data"]["id"] == server.conns[0].id
        assert client.id == server.conns[0].id and client.details is not None
        assert await client.fetch_id() == server.conns[0].id


async def test_fetch_id_lazily_and_primus_id(fake):
    server = await fake()
    async with Client(server.url) as client:
        assert await client.fetch_id() == server.conns[0].id
    async with Client(server.url) as client:
        assert await client.primus_id() == server.conns[1].id
        assert client.id == server.conns[1].id
        assert server.conns[1].received == ["primus::id::"]


@pytest.mark.parametrize("message_first", [False, True])
async def test_say_ack_and_message_in_either_order(fake, message_first):
    server = await fake(say_message_first=message_first)
    async with Client(server.url) as client:
        said: list[dict[str, Any]] = []
        client.on("say", said.append)
        stream = client.messages()
        ack = await client.say("r", {"hi": [1, 2]})
        assert ack == {"status": "OK", "context": "response", "messageId": 1}
        chat = await stream.get(timeout=2)
        if chat.get("context") == "response":
            chat = await stream.get(timeout=2)
        assert chat["context"] == "user" and chat["message"] == {"hi": [1, 2]}
        assert said == [chat]
        assert server.conns[0].received[0] == {
            "event": "say",
            "room": "r",
            "message": {"hi": [1, 2]},
            "messageId": 1,
        }


# -- timeouts ------------------------------------------------------------------------


async def test_request_timeout(fake):
    server = await fake()
    async with Client(server.url, timeout=5) as client:
        with pytest.raises(ClientTimeout, match=r"action 'silent' \(messageId 1\)"):
            await client.action("silent", timeout=0.1)
        assert client.pending == 0
        # the connection is still fine
        assert (await client.action("echo"))["messageId"] == 2


async def test_client_default_timeout_and_late_response(fake):
    server = await fake()
    async with Client(server.url, timeout=0.1) as client:
        responses: list[dict[str, Any]] = []
        client.on("response", responses.append)
        with pytest.raises(ClientTimeout):
            await client.action("sleep", {"ms": 300})
        await asyncio.sleep(0.4)
        # the late answer does not break anything; listeners still see it
        assert responses[-1]["slept"] == 300
        assert client.pending == 0


async def test_no_timeout(fake):
    server = await fake()
    async with Client(server.url, timeout=None) as client:
        assert (await client.action("sleep", {"ms": 50}))["slept"] == 50


async def test_cancelled_request_is_forgotten(fake):
    server = await fake()
    async with Client(server.url) as client:
        t = asyncio.ensure_future(client.action("silent"))
        await asyncio.sleep(0.01)
        assert client.pending == 1
        t.cancel()
        with pytest.raises(asyncio.CancelledError):
            await t
        assert client.pending == 0


# -- heartbeat, Primus strings ------------------------------------------------------------


async def test_heartbeat_answered(fake, wait_until):
    server = await fake()
    async with Client(server.url) as client:
        seen: list[str] = []
        client.on("primus", seen.append)
        server.conns[0].send_json("primus::ping::1732570000000")
        await wait_until(lambda: server.pongs == ["1732570000000"])
        assert server.conns[0].received == ["primus::pong::1732570000000"]
        assert seen == ["primus::ping::1732570000000"]
        # WebSocket-level pings are answered by the codec
        server.conns[0].write(encode_frame(9, b"xyz"))
        await client.action("echo")


async def test_heartbeats_batched_with_other_traffic(fake, wait_until):
    server = await fake()
    async with Client(server.url):
        conn = server.conns[0]
        conn.write(
            b"".join(conn.codec.send_message(orjson.dumps(f"primus::ping::{i}").decode()) for i in range(50))
        )
        await wait_until(lambda: len(server.pongs) == 50)
        assert server.pongs == [str(i) for i in range(50)]


async def test_server_close(fake, wait_until):
    server = await fake()
    client = Client(server.url)
    await client.connect()
    disconnected: list[dict[str, Any]] = []
    client.on("disconnected", disconnected.append)
    pending = asyncio.ensure_future(client.action("silent"))
    await asyncio.sleep(0.01)
    await client.quit()
    assert client.server_closed
    assert client.closed and client.close_code == 1000
    with pytest.raises(ConnectionClosed) as info:
        await pending
    assert info.value.server_closed and info.value.code == 1000
    assert disconnected == [{"code": 1000, "reason": "", "server_closed": True}]
    with pytest.raises(ConnectionClosed):
        await client.action("echo")
    await client.disconnect()  # no-op


async def test_server_initiated_close_with_1001(fake, wait_until):
    server = await fake()
    async with Client(server.url) as client:
        server.conns[0].close(1001)
        await client.wait_closed()
        assert client.close_code == 1001 and not client.server_closed
        await wait_until(lambda: server.close_codes == [1001])  # the client echoed it


# -- closing --------------------------------------------------------------------------


async def test_disconnect_idempotent(fake, wait_until):
    server = await fake()
    client = Client(server.url)
    await client.disconnect()  # never connected: fine
    await client.connect()
    await asyncio.gather(client.disconnect(), client.disconnect())
    await client.disconnect()
    assert client.closed and client.close_code == 1000
    await wait_until(lambda: server.close_codes == [1000])


async def test_disconnect_when_server_does_not_answer(fake):
    server = await fake(ignore_close=True)
    client = Client(server.url, close_timeout=0.2)
    await client.connect()
    server.conns[0].codec = _Deaf(server.conns[0].codec)
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    await client.disconnect()
    assert 0.15 < loop.time() - t0 < 2
    assert client.closed


class _Deaf:
    """Wraps a server codec so it never answers a close frame."""

    def __init__(self, codec: Any) -> None:
        self.codec = codec
        self.state = 0

    def receive_data(self, data: bytes) -> list[Any]:
        return []

    def data_to_send(self) -> bytes:
        return b""

    def __getattr__(self, name: str) -> Any:
        return getattr(self.codec, name)


async def test_connection_drop_fails_pending(fake):
    server = await fake()
    client = Client(server.url)
    await client.connect()
    stream = client.messages()
    disconnected: list[dict[str, Any]] = []
    client.on("disconnected", disconnected.append)
    waiting = [asyncio.ensure_future(client.action("silent")) for _ in range(3)]
    await asyncio.sleep(0.01)
    with pytest.raises(ConnectionClosed) as info:
        await client.action("drop")
    assert isinstance(info.value, ConnectionError) and info.value.code == 1006
    for t in waiting:
        with pytest.raises(ConnectionClosed):
            await t
    assert client.closed and client.close_code == 1006 and client.pending == 0
    assert [m async for m in stream] == []  # the stream ends
    assert disconnected[0]["code"] == 1006
    with pytest.raises(ConnectionClosed):
        client.send_raw("x")


async def test_disconnect_during_pending_requests(fake):
    server = await fake()
    client = Client(server.url)
    await client.connect()
    t = asyncio.ensure_future(client.action("silent"))
    await asyncio.sleep(0.01)
    await client.disconnect()
    with pytest.raises(ConnectionClosed):
        await t


# -- frames ----------------------------------------------------------------------------


async def test_fragmented_large_message(fake):
    server = await fake()
    async with Client(server.url) as client:
        r = await client.action("big", {"size": 5 << 20, "fragments": 7})
        assert len(r["data"]) == 5 << 20
        r = await client.action("big", {"size": 1000, "fragments": 3})
        assert r["data"] == "x" * 1000


async def test_message_too_big_closes_1009(fake, wait_until):
    server = await fake()
    errors: list[Exception] = []
    client = Client(server.url, max_message_size=4096)
    client.on("error", errors.append)
    await client.connect()
    with pytest.raises(ConnectionClosed) as info:
        await client.action("big", {"size": 10_000, "fragments": 1})
    assert info.value.code == 1009
    assert client.close_code == 1009
    assert isinstance(errors[0], ProtocolError) and errors[0].code == 1009
    await wait_until(lambda: server.close_codes == [1009])


async def test_protocol_violation_closes_1002(fake, wait_until):
    server = await fake()
    client = Client(server.url)
    await client.connect()
    server.conns[0].write(encode_frame(1, b'{"a":1}', mask=True))  # servers must not mask
    await client.wait_closed()
    assert client.close_code == 1002
    await wait_until(lambda: server.close_codes == [1002])


async def test_send_raw(fake, wait_until):
    server = await fake()
    async with Client(server.url) as client:
        client.send_raw("not json")
        client.send_raw(b"\x00\x01")
        client.send({"event": "noop"})
        client.send_raw(encode_frame(1, b'"framed by hand"', mask=True), frame=False)
        await wait_until(lambda: len(server.conns[0].received) == 4)
        assert server.conns[0].received == ["not json", b"\x00\x01", {"event": "noop"}, "framed by hand"]


class CountingTransport:
    """The client's transport, wrapped: records the size of every write. uvloop's
    transports cannot be patched, so the wrapper goes in where the client gets it."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self.writes: list[int] = []

    def write(self, data: bytes) -> None:
        self.writes.append(len(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        chunks = list(chunks)
        self.writes.append(sum(map(len, chunks)))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


async def test_pipelined_writes_are_coalesced(fake, monkeypatch):
    transports: list[CountingTransport] = []
    made = client_module._Protocol.connection_made

    def connection_made(protocol: Any, transport: asyncio.Transport) -> None:
        transports.append(CountingTransport(transport))
        made(protocol, transports[-1])

    monkeypatch.setattr(client_module._Protocol, "connection_made", connection_made)
    server = await fake()
    async with Client(server.url) as client:
        (counted,) = transports
        assert len(counted.writes) == 1  # the upgrade request
        rs = await asyncio.gather(*(client.action("echo", {"i": i}) for i in range(20)))
        assert [r["echo"]["i"] for r in rs] == list(range(20))
        # the first two requests leave at once, the other 18 in one write
        assert len(counted.writes) - 1 <= 3
        assert server.conns[0].received == [
            {"event": "action", "params": {"action": "echo", "i": i}, "messageId": i + 1} for i in range(20)
        ]


# -- events and the message stream ----------------------------------------------------


async def test_events_dispatch(fake, wait_until):
    server = await fake()
    client = Client(server.url)
    got: dict[str, list[Any]] = {}
    for event in ("welcome", "alert", "api", "response", "message", "say"):
        client.on(event, got.setdefault(event, []).append)
    await client.connect()
    conn = server.conns[0]
    conn.send_json({"context": "alert", "message": "careful"})
    conn.send_json({"context": "something", "x": 1})
    conn.send_json({"no": "context"})
    await client.action("echo")
    await wait_until(lambda: len(got["message"]) == 5)
    assert got["welcome"] == [client.welcome]
    assert got["alert"] == [{"context": "alert", "message": "careful"}]
    assert got["api"] == [{"context": "something", "x": 1}, {"no": "context"}]
    assert [r["messageId"] for r in got["response"]] == [1]
    assert got["say"] == []
    with pytest.raises(ValueError, match="unknown event"):
        client.on("sya", print)
    await client.disconnect()


async def test_async_and_failing_callbacks(fake, wait_until, caplog):
    server = await fake()
    async with Client(server.url) as client:
        seen: list[Any] = []

        async def slow(msg: Any) -> None:
            await asyncio.sleep(0.01)
            seen.append(msg)

        def broken(msg: Any) -> None:
            raise RuntimeError("callback bug")

        client.on("alert", broken)
        client.on("alert", slow)
        server.conns[0].send_json({"context": "alert"})
        await wait_until(lambda: seen == [{"context": "alert"}])
        assert "callback bug" in caplog.text
        client.off("alert", broken)
        client.off("alert", broken)
        assert (await client.action("echo"))["messageId"] == 1


async def test_message_stream(fake):
    server = await fake()
    async with Client(server.url) as client:
        conn = server.conns[0]
        async with client.messages(maxsize=3) as stream:
            for i in range(5):
                conn.send_json({"context": "alert", "i": i})
            conn.send_json([1, 2])
            await client.action("echo")
            # bounded: the oldest were dropped and counted
            assert stream.dropped == 4
            got = [await stream.get(timeout=1) for _ in range(3)]
            assert got[0] == {"context": "alert", "i": 4}
            assert got[1] == [1, 2]
            assert got[2]["context"] == "response"
            with pytest.raises(ClientTimeout):
                await stream.get(timeout=0.05)
        assert stream.ended
        # an abandoned stream unsubscribes itself
        client.messages()
        gc.collect()
        assert len(client._subs) == 0


async def test_wait_for(fake):
    server = await fake()
    async with Client(server.url) as client:
        conn = server.conns[0]
        conn.later(0.02, lambda: conn.send_json({"context": "alert", "n": 1}))
        conn.later(0.04, lambda: conn.send_json({"context": "alert", "n": 2}))
        msg = await client.wait_for(lambda m: m.get("n") == 2, timeout=2)
        assert msg["n"] == 2
        with pytest.raises(ClientTimeout):
            await client.wait_for(lambda m: False, timeout=0.05)


async def test_invalid_json_from_server_is_an_error_event(fake):
    server = await fake()
    async with Client(server.url) as client:
        errors: list[Exception] = []
        client.on("error", errors.append)
        server.conns[0].write(server.conns[0].codec.send_message("{nope"))
        assert (await client.action("echo"))["messageId"] == 1
        assert isinstance(errors[0], ProtocolError) and "not JSON" in str(errors[0])
        assert client.open


# -- TLS -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.skip("openssl not installed")
    d = tmp_path_factory.mktemp("tls")
    cert, key = d / "cert.pem", d / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


async def test_wss(fake, tls_files):
    cert, key = tls_files
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)
    server = await fake()
    # Re-listen with TLS on the same fake-server logic.
    server.server.close()
    server.server = await asyncio.start_server(server._handle, "127.0.0.1", 0, ssl=server_ctx)
    port = server.server.sockets[0].getsockname()[1]
    client_ctx = ssl.create_default_context(cafile=str(cert))
    async with Client(f"wss://127.0.0.1:{port}/primus", ssl=client_ctx) as client:
        assert client.secure
        assert (await client.action("echo", {"tls": True}))["echo"]["tls"] is True
    # Without trusting the certificate the connection fails.
    with pytest.raises(ssl.SSLError):
        await Client(f"wss://127.0.0.1:{port}/primus").connect()


def test_module_surface():
    import hero_fast.client as m

    for name in m.__all__:
        assert hasattr(m, name)
    assert os.path.basename(m.__file__ or "") == "client.py"


async def test_server_hangs_up_during_handshake():
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    srv = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        with pytest.raises(HandshakeFailed, match="closed the connection during the WebSocket handshake"):
            await Client(f"ws://127.0.0.1:{port}").connect()
    finally:
        srv.close()
        await srv.wait_closed()


async def test_disconnect_with_invalid_code_leaves_connection_open(fake):
    server = await fake()
    async with Client(server.url) as client:
        with pytest.raises(ValueError):
            await client.disconnect(1005 + 1)  # 1006 may not be sent
        assert client.open
        await client.disconnect(4000, "bye")
        assert client.close_code == 4000


async def test_unquoted_primus_ping_answered(fake, wait_until):
    server = await fake()
    async with Client(server.url):
        conn = server.conns[0]
        conn.write(conn.codec.send_message("primus::ping::7"))
        await wait_until(lambda: server.pongs == ["7"])


async def test_no_disconnected_event_when_never_open(fake):
    server = await fake(refuse=(500, [], b""))
    client = Client(server.url)
    events: list[Any] = []
    client.on("disconnected", events.append)
    with pytest.raises(HandshakeFailed):
        await client.connect()
    assert events == []
