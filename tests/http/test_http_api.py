"""Actions over HTTP through a real socket: routes, params, metadata, status codes."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import orjson
import pytest
from _http_support import Live, start_live, stop_live

JSON = "application/json; charset=utf-8"


async def test_get_action_in_path(live: Live) -> None:
    r = await live.get("/api/echo?x=1&y=two")
    assert r.status == 200
    assert r.header("content-type") == JSON
    body = r.json()
    assert body["echo"] == {"x": "1", "y": "two"}
    info = body["serverInformation"]
    assert info["serverName"] == "test-server"
    assert info["apiVersion"] == "1.2.3"
    assert isinstance(info["requestDuration"], int) and 0 <= info["requestDuration"] < 5000
    assert isinstance(info["currentTime"], int) and info["currentTime"] > 1_600_000_000_000
    req = body["requesterInformation"]
    assert set(req) == {"id", "fingerprint", "messageId", "remoteIP", "receivedParams"}
    assert req["remoteIP"] == "127.0.0.1"
    assert req["receivedParams"] == {"action": "echo", "x": "1", "y": "two"}
    assert re.fullmatch(r"[0-9a-f]{40}", req["fingerprint"])
    conn = live.api.connections.created[-1]
    assert conn.type == "web"
    assert req["id"] == conn.id
    assert conn.remote_ip == "127.0.0.1" and isinstance(conn.remote_port, int)


@pytest.mark.parametrize("target", ["/api?action=echo&x=1", "/api/?action=echo&x=1", "/api/echo/?x=1"])
async def test_action_in_query(live: Live, target: str) -> None:
    r = await live.get(target)
    assert r.status == 200
    assert r.json()["echo"] == {"x": "1"}


async def test_percent_encoded_params(live: Live) -> None:
    r = await live.get("/api/echo?msg=hello%20w%C3%B6rld&plus=a+b&empty=")
    assert r.json()["echo"] == {"msg": "hello w\u00f6rld", "plus": "a b", "empty": ""}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_json_body(live: Live, method: str) -> None:
    body = orjson.dumps({"n": 5, "nested": {"a": [1, 2]}, "flag": True})
    r = await live.request(method, "/api/echo?q=1", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 200
    assert r.json()["echo"] == {"q": "1", "n": 5, "nested": {"a": [1, 2]}, "flag": True}


async def test_json_body_charset_and_action_in_body(live: Live) -> None:
    body = orjson.dumps({"action": "echo", "x": "\u00e9"})
    r = await live.request(
        "POST", "/api", headers={"Content-Type": "application/json; charset=utf-8"}, body=body
    )
    assert r.status == 200
    assert r.json()["echo"] == {"x": "\u00e9"}


async def test_form_body(live: Live) -> None:
    body = b"x=1&name=J%C3%BCrgen&sp=a+b"
    r = await live.request(
        "POST", "/api/echo", headers={"Content-Type": "application/x-www-form-urlencoded"}, body=body
    )
    assert r.status == 200
    assert r.json()["echo"] == {"x": "1", "name": "J\u00fcrgen", "sp": "a b"}


async def test_body_overrides_query_and_path_names_the_action(live: Live) -> None:
    body = orjson.dumps({"x": "body", "action": "status"})
    r = await live.request(
        "POST", "/api/echo?x=query", headers={"Content-Type": "application/json"}, body=body
    )
    assert r.json()["echo"] == {"x": "body"}


async def test_json_without_content_type(live: Live) -> None:
    r = await live.request("POST", "/api/echo", body=b' {"x": 3}')
    assert r.status == 200
    assert r.json()["echo"] == {"x": 3}


@pytest.mark.parametrize("body", [b"{not json", b'{"a": 1,}', b"\xff\xfe", b'{"a": "\xff"}'])
async def test_invalid_json_is_400(live: Live, body: bytes) -> None:
    r = await live.request("POST", "/api/echo", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 400
    assert r.header("content-type") == JSON
    assert "invalid JSON" in r.json()["error"]
    assert live.api.actions.calls == []  # never reached the action
    assert live.api.connections.live == {}


@pytest.mark.parametrize("body", [b"[1, 2]", b"42", b"null", b'"s"'])
async def test_json_body_must_be_an_object(live: Live, body: bytes) -> None:
    r = await live.request("POST", "/api/echo", headers={"Content-Type": "application/json"}, body=body)
    assert r.status == 400
    assert "object" in r.json()["error"]


async def test_multipart_is_refused_clearly(live: Live) -> None:
    body = b'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n1\r\n--b--\r\n'
    r = await live.request(
        "POST", "/api/echo", headers={"Content-Type": "multipart/form-data; boundary=b"}, body=body
    )
    assert r.status == 415
    assert "multipart/form-data is not supported" in r.json()["error"]


async def test_unsupported_content_type(live: Live) -> None:
    r = await live.request(
        "POST", "/api/echo", headers={"Content-Type": "application/octet-stream"}, body=b"\x00"
    )
    assert r.status == 415
    assert "Content-Type" in r.json()["error"]


async def test_empty_json_body_is_no_params(live: Live) -> None:
    r = await live.request("POST", "/api/echo?x=1", headers={"Content-Type": "application/json"}, body=b"   ")
    assert r.status == 200
    assert r.json()["echo"] == {"x": "1"}


async def test_unknown_action_404(live: Live) -> None:
    r = await live.get("/api/nope")
    assert r.status == 404
    body = r.json()
    assert body["error"] == "unknown action or invalid apiVersion"
    assert "serverInformation" in body and "requesterInformation" in body


@pytest.mark.parametrize("target", ["/api", "/api/", "/api?x=1", "/api/a/b"])
async def test_no_action_or_nested_path_404(live: Live, target: str) -> None:
    r = await live.get(target)
    assert r.status == 404
    assert r.json()["error"] == "unknown action or invalid apiVersion"
    assert live.api.connections.live == {}


@pytest.mark.parametrize(("action", "status"), [("missing", 422), ("fail", 500)])
async def test_action_status_codes(live: Live, action: str, status: int) -> None:
    r = await live.get(f"/api/{action}")
    assert r.status == status
    assert "error" in r.json()


async def test_too_many_pending_is_429(public: Path) -> None:
    from _http_support import FakeResult

    srv = await start_live(public)
    srv.api.actions.actions["busy"] = lambda c, p: FakeResult(
        {"error": "you have too many pending requests"}, 429
    )
    try:
        r = await srv.get("/api/busy")
        assert r.status == 429
        assert r.json()["error"] == "you have too many pending requests"
    finally:
        await stop_live(srv)


async def test_return_error_codes_false(public: Path) -> None:
    srv = await start_live(public, {"servers": {"web": {"returnErrorCodes": False}}})
    try:
        r = await srv.get("/api/missing")
        assert r.status == 200
        assert r.json()["error"] == "x is a required parameter for this action"
        r = await srv.get("/api/nope")
        assert r.status == 200
        assert "error" in r.json()
    finally:
        await stop_live(srv)


async def test_metadata_options_off(public: Path) -> None:
    meta = {"serverInformation": False, "requesterInformation": False}
    srv = await start_live(public, {"servers": {"web": {"metadataOptions": meta}}})
    try:
        r = await srv.get("/api/echo?x=1")
        assert r.json() == {"echo": {"x": "1"}}
    finally:
        await stop_live(srv)


async def test_message_id_echoed_from_params(live: Live) -> None:
    r = await live.get("/api/echo?messageId=abc")
    assert r.json()["requesterInformation"]["messageId"] == "abc"
    r = await live.get("/api/echo")
    assert re.fullmatch(r"[0-9a-f-]{36}", r.json()["requesterInformation"]["messageId"])


async def test_async_action_and_future(live: Live) -> None:
    r = await live.get("/api/slow")
    assert r.status == 200 and r.json()["slept"] is True
    assert r.json()["serverInformation"]["requestDuration"] >= 10
    r = await live.get("/api/future")
    assert r.status == 200 and r.json()["from"] == "future"
    assert all(c.destroyed == 1 for c in live.api.connections.created)


@pytest.mark.parametrize("action", ["raise", "raiseLater", "unencodable"])
async def test_internal_errors_are_500_json_without_traceback(live: Live, action: str) -> None:
    r = await live.get(f"/api/{action}")
    assert r.status == 500
    assert r.header("content-type") == JSON
    text = r.body.decode()
    assert "error" in r.json()
    assert "secret-internal-detail" not in text and "Traceback" not in text
    assert live.api.connections.live == {}
    assert all(c.destroyed == 1 for c in live.api.connections.created)


async def test_connection_destroyed_after_each_request(live: Live) -> None:
    for target in ["/api/echo", "/api/nope", "/api/missing", "/api/slow", "/api/raise", "/api/raiseLater"]:
        await live.get(target)
    created = live.api.connections.created
    assert len(created) == 6
    assert all(c.destroyed == 1 for c in created)
    assert live.api.connections.live == {}


async def test_many_concurrent_async_requests(live: Live) -> None:
    results = await asyncio.gather(*(live.get(f"/api/slow?i={i}") for i in range(30)))
    assert all(r.status == 200 for r in results)
    assert live.api.connections.live == {}


async def test_method_not_allowed_on_api(live: Live) -> None:
    r = await live.request("TRACE", "/api/echo")
    assert r.status == 405
    assert "OPTIONS" in (r.header("allow") or "")


async def test_root_endpoint_api_mode(public: Path) -> None:
    srv = await start_live(public, {"servers": {"web": {"rootEndpointType": "api"}}})
    try:
        r = await srv.get("/")
        assert r.status == 200 and r.json()["status"] == "ok"
        r = await srv.get("/echo?x=1")
        assert r.json()["echo"] == {"x": "1"}
        r = await srv.get("/public/chat.html")  # files still under /public
        assert r.status == 200 and r.body == b"<p>chat</p>\n"
        r = await srv.request("OPTIONS", "/echo")
        assert r.header("allow") == "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        r = await srv.request("OPTIONS", "/public/chat.html")
        assert r.header("allow") == "GET, HEAD, OPTIONS"
    finally:
        await stop_live(srv)


async def test_custom_prefixes(public: Path) -> None:
    srv = await start_live(
        public, {"servers": {"web": {"urlPathForActions": "/v1/", "urlPathForFiles": "static"}}}
    )
    try:
        assert (await srv.get("/v1/echo?x=1")).json()["echo"] == {"x": "1"}
        assert (await srv.get("/static/chat.html")).status == 200
        assert (await srv.get("/api/echo")).status == 404  # now a file path
    finally:
        await stop_live(srv)
