"""Cookie, CORS/default headers, OPTIONS, HEAD, 426 on the WebSocket path, keep-alive."""

from __future__ import annotations

import asyncio
import http.client
import re
import time
from email.utils import parsedate_to_datetime
from pathlib import Path

import pytest
from _http_support import Live, RawHttp, start_live, stop_live

COOKIE_RE = re.compile(r"sessionID=([0-9a-f]{40}); Path=/; Expires=([^;]+ GMT); HttpOnly; SameSite=Lax")
CORS = {
    "x-powered-by": "hero-fast",
    "access-control-allow-origin": "*",
    "access-control-allow-methods": "HEAD, GET, POST, PUT, PATCH, DELETE, OPTIONS, TRACE",
    "access-control-allow-headers": "Content-Type",
}
EVERY_KIND = ["/api/echo", "/api/nope", "/public/index.html", "/", "/public/missing", "/primus", "/api/slow"]


@pytest.mark.parametrize("target", EVERY_KIND)
async def test_cookie_set_when_absent(live: Live, target: str) -> None:
    r = await live.get(target)
    cookies = r.header_values("set-cookie")
    assert len(cookies) == 1, r.headers
    m = COOKIE_RE.fullmatch(cookies[0])
    assert m, cookies[0]
    expires = parsedate_to_datetime(m.group(2)).timestamp()
    assert abs(expires - (time.time() + 3600)) < 60


@pytest.mark.parametrize("target", EVERY_KIND)
async def test_cookie_not_set_when_present(live: Live, target: str) -> None:
    r = await live.get(target, headers={"Cookie": "other=1; sessionID=abc123; x=y"})
    assert r.header("set-cookie") is None


async def test_fingerprint_from_cookie_and_new_one_used(live: Live) -> None:
    r = await live.get("/api/echo", headers={"Cookie": "sessionID=myfingerprint"})
    assert r.json()["requesterInformation"]["fingerprint"] == "myfingerprint"
    assert live.api.connections.created[-1].fingerprint == "myfingerprint"
    r = await live.get("/api/echo")
    m = COOKIE_RE.fullmatch(r.header("set-cookie") or "")
    assert m and r.json()["requesterInformation"]["fingerprint"] == m.group(1)


async def test_empty_cookie_value_counts_as_absent(live: Live) -> None:
    r = await live.get("/api/echo", headers={"Cookie": "sessionID="})
    assert COOKIE_RE.fullmatch(r.header("set-cookie") or "")


async def test_cookie_flags_from_config(public: Path) -> None:
    fp = {"cookieKey": "sid", "httpOnly": False, "sameSite": "Strict", "secure": True, "expire": 60}
    srv = await start_live(public, {"servers": {"web": {"fingerprint": fp}}})
    try:
        r = await srv.get("/api/echo")
        cookie = r.header("set-cookie") or ""
        assert re.fullmatch(r"sid=[0-9a-f]{40}; Path=/; Expires=[^;]+; SameSite=Strict; Secure", cookie), (
            cookie
        )
        r = await srv.get("/api/echo", headers={"Cookie": "sid=x"})
        assert r.header("set-cookie") is None
        assert r.json()["requesterInformation"]["fingerprint"] == "x"
    finally:
        await stop_live(srv)


async def test_same_site_none_left_out(public: Path) -> None:
    srv = await start_live(public, {"servers": {"web": {"fingerprint": {"sameSite": None}}}})
    try:
        cookie = (await srv.get("/")).header("set-cookie") or ""
        assert "SameSite" not in cookie and cookie.endswith("; HttpOnly")
    finally:
        await stop_live(srv)


async def test_to_set_cookie_false(public: Path) -> None:
    srv = await start_live(public, {"servers": {"web": {"fingerprint": {"toSetCookie": False}}}})
    try:
        r = await srv.get("/api/echo")
        assert r.header("set-cookie") is None
        assert re.fullmatch(r"[0-9a-f]{40}", r.json()["requesterInformation"]["fingerprint"])
    finally:
        await stop_live(srv)


@pytest.mark.parametrize("target", EVERY_KIND)
async def test_default_headers_on_every_response(live: Live, target: str) -> None:
    r = await live.get(target)
    for k, v in CORS.items():
        assert r.header(k) == v, (target, k)


async def test_custom_http_headers(public: Path) -> None:
    headers = {"Access-Control-Allow-Origin": "https://example.com", "X-Frame-Options": "DENY"}
    srv = await start_live(public, {"servers": {"web": {"httpHeaders": headers}}})
    try:
        for target in ["/api/echo", "/", "/nope"]:
            r = await srv.get(target)
            assert r.header("access-control-allow-origin") == "https://example.com"
            assert r.header("x-frame-options") == "DENY"
    finally:
        await stop_live(srv)


def test_header_injection_in_config_is_refused(public: Path) -> None:
    from _http_support import FakeApi

    from hero_fast.servers.web import WebServer

    with pytest.raises(ValueError, match="line break"):
        WebServer(FakeApi(public, {"servers": {"web": {"httpHeaders": {"X-A": "a\r\nSet-Cookie: x=1"}}}}))


API_ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
FILE_ALLOW = "GET, HEAD, OPTIONS"


@pytest.mark.parametrize(
    ("target", "allow"),
    [
        ("/api/echo", API_ALLOW),
        ("/api", API_ALLOW),
        ("*", API_ALLOW),
        ("/public/index.html", FILE_ALLOW),
        ("/", FILE_ALLOW),
        ("/anything/at/all", FILE_ALLOW),
        ("/primus", FILE_ALLOW),
    ],
)
async def test_options(live: Live, target: str, allow: str) -> None:
    r = await live.request(
        "OPTIONS", target, headers={"Origin": "https://a.example", "Access-Control-Request-Method": "POST"}
    )
    assert r.status in (200, 204)
    assert r.body == b""
    for k, v in CORS.items():
        assert r.header(k) == v
    assert r.header("allow") == allow
    assert live.api.actions.calls == []


async def test_head_api(live: Live) -> None:
    client = await RawHttp.connect(live.port)
    try:
        r = await client.request("HEAD", "/api/echo?x=1")
        assert r.status == 200
        assert int(r.header("content-length") or 0) > 0
        r2 = await client.request("GET", "/api/echo?x=2")
        assert r2.json()["echo"] == {"x": "2"}
    finally:
        await client.close()


@pytest.mark.parametrize("target", ["/primus", "/primus/", "/primus?_primuscb=abc-123", "/primus/?x=1"])
async def test_websocket_path_without_upgrade_is_426(live: Live, target: str) -> None:
    r = await live.get(target)
    assert r.status == 426
    assert r.header("upgrade") == "websocket"
    assert (r.header("content-type") or "").startswith("text/plain")
    assert b"WebSocket" in r.body


async def test_websocket_pathname_from_config(public: Path) -> None:
    srv = await start_live(public, {"servers": {"websocket": {"server": {"pathname": "/ws/"}}}})
    try:
        assert (await srv.get("/ws")).status == 426
        assert (await srv.get("/primus")).status == 404
    finally:
        await stop_live(srv)


async def test_keep_alive_two_requests_one_connection(live: Live) -> None:
    client = await RawHttp.connect(live.port)
    try:
        r1 = await client.request("GET", "/api/echo?n=1")
        assert r1.status == 200 and r1.header("connection") is None
        r2 = await client.request("GET", "/public/chat.html")
        assert r2.status == 200 and r2.body == b"<p>chat</p>\n"
        r3 = await client.request("GET", "/api/slow")
        assert r3.status == 200
        r4 = await client.request("GET", "/api/echo?n=4", close=True)
        assert r4.json()["echo"] == {"n": "4"}
        assert r4.header("connection") == "close"
        assert await client.at_eof()
    finally:
        await client.close()


async def test_pipelined_requests_answered_in_order(live: Live) -> None:
    client = await RawHttp.connect(live.port)
    try:
        await client.send("GET", "/api/slow?i=1")
        await client.send("GET", "/api/echo?i=2")
        await client.send("GET", "/missing")
        await client.send("POST", "/api/echo", headers={"Content-Type": "application/json"}, body=b'{"i": 4}')
        r = [await client.read() for _ in range(4)]
        assert [x.status for x in r] == [200, 200, 404, 200]
        assert r[0].json()["slept"] is True
        assert r[1].json()["echo"] == {"i": "2"}
        assert r[3].json()["echo"] == {"i": 4}
    finally:
        await client.close()


async def test_http_client_in_thread_keep_alive(live: Live) -> None:
    def run() -> list[tuple[int, bytes, str | None]]:
        conn = http.client.HTTPConnection("127.0.0.1", live.port, timeout=5)
        out = []
        try:
            for method, path, body, headers in [
                ("GET", "/api/echo?a=1", None, {}),
                ("POST", "/api/echo", b"b=2", {"Content-Type": "application/x-www-form-urlencoded"}),
                ("GET", "/", None, {}),
            ]:
                conn.request(method, path, body=body, headers=headers)
                resp = conn.getresponse()
                out.append((resp.status, resp.read(), resp.getheader("Content-Type")))
        finally:
            conn.close()
        return out

    results = await asyncio.wait_for(asyncio.to_thread(run), 10)
    assert [s for s, _, _ in results] == [200, 200, 200]
    assert b'"a":"1"' in results[0][1]
    assert b'"b":"2"' in results[1][1]
    assert results[2][1] == b"<h1>hello</h1>\n" and results[2][2] == "text/html; charset=utf-8"
    # one TCP connection served all three: the engine saw one peer port
    ports = {c.remote_port for c in live.api.connections.created}
    assert len(ports) == 1


async def test_body_limit_413_from_engine(live: Live) -> None:
    client = await RawHttp.connect(live.port)
    try:
        # the declared length is refused before any body is read
        headers = {"Content-Type": "application/json", "Content-Length": str(2 << 20)}
        await client.send("POST", "/api/echo", headers=headers)
        r = await client.read()
        assert r.status == 413
    finally:
        await client.close()
    assert live.api.actions.calls == []
