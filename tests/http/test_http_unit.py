"""The web handler, the static store and MIME table without sockets."""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import orjson
import pytest
from _http_support import FakeApi, FakeRequest, FakeResult, make_public

from hero_fast._transport import Response
from hero_fast.servers import mime, static
from hero_fast.servers.static import StaticFiles, read_public_file, safe_segments
from hero_fast.servers.web import WebServer, _etag_matches


def headers_of(resp: Response) -> dict[str, str]:
    return {k.lower(): v for k, v in resp.headers}


@pytest.fixture
def api(tmp_path: Path) -> FakeApi:
    return FakeApi(make_public(tmp_path))


@pytest.fixture
def web(api: FakeApi) -> WebServer:
    return WebServer(api)


# -- synchronous where possible ----------------------------------------------------------


def test_sync_action_returns_response_synchronously(web: WebServer, api: FakeApi) -> None:
    resp = web.handle(FakeRequest("GET", "/api/echo?x=1"))  # type: ignore[arg-type]
    assert isinstance(resp, Response)
    assert resp.status == 200
    body = orjson.loads(resp.body)
    assert body["echo"] == {"x": "1"}
    assert body["requesterInformation"]["remoteIP"] == "127.0.0.1"
    assert api.connections.created[0].destroyed == 1


def test_cached_static_file_is_synchronous(web: WebServer) -> None:
    for _ in range(3):
        resp = web.handle(FakeRequest("GET", "/public/index.html"))  # type: ignore[arg-type]
        assert isinstance(resp, Response)
        assert resp.body == b"<h1>hello</h1>\n"
    assert len(web.files) >= 1


def test_cached_body_is_the_same_object(web: WebServer) -> None:
    a = web.handle(FakeRequest("GET", "/chat.html"))  # type: ignore[arg-type]
    b = web.handle(FakeRequest("GET", "/public/chat.html"))  # type: ignore[arg-type]
    assert isinstance(a, Response) and isinstance(b, Response)
    assert a.body == b.body == b"<p>chat</p>\n"


async def test_async_action_returns_awaitable(web: WebServer, api: FakeApi) -> None:
    result = web.handle(FakeRequest("GET", "/api/slow"))  # type: ignore[arg-type]
    assert not isinstance(result, Response)
    assert api.connections.created[0].destroyed == 0  # still running
    resp = await asyncio.wait_for(result, 5)  # type: ignore[arg-type]
    assert resp.status == 200 and orjson.loads(resp.body)["slept"] is True
    assert api.connections.created[0].destroyed == 1


async def test_cancelled_request_cancels_action_and_destroys(web: WebServer, api: FakeApi) -> None:
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def hang(conn: Any, params: dict[str, Any]) -> FakeResult:
        started.set()
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return FakeResult({})

    api.actions.actions["hang"] = hang
    fut = web.handle(FakeRequest("GET", "/api/hang"))  # type: ignore[arg-type]
    assert isinstance(fut, asyncio.Future)
    await asyncio.wait_for(started.wait(), 5)
    fut.cancel()
    await asyncio.wait_for(cancelled.wait(), 5)
    await asyncio.sleep(0)
    assert api.connections.created[0].destroyed == 1


async def test_action_cancelled_from_inside_gives_503(web: WebServer, api: FakeApi) -> None:
    async def self_cancel(conn: Any, params: dict[str, Any]) -> FakeResult:
        raise asyncio.CancelledError

    api.actions.actions["selfCancel"] = self_cancel
    fut = web.handle(FakeRequest("GET", "/api/selfCancel"))  # type: ignore[arg-type]
    resp = await asyncio.wait_for(fut, 5)  # type: ignore[arg-type]
    assert resp.status == 503
    assert api.connections.created[0].destroyed == 1


def test_process_raising_is_500_and_destroys(web: WebServer, api: FakeApi, caplog: Any) -> None:
    resp = web.handle(FakeRequest("GET", "/api/raise"))  # type: ignore[arg-type]
    assert isinstance(resp, Response) and resp.status == 500
    error = orjson.loads(resp.body)["error"]
    assert re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", error)
    ref = error[-9:-1]
    assert any(ref in r.getMessage() and "secret-internal-detail" in r.getMessage() for r in caplog.records)
    assert api.connections.created[0].destroyed == 1


def test_connections_create_failing_is_500(web: WebServer, api: FakeApi) -> None:
    def broken(*a: Any, **k: Any) -> None:
        raise RuntimeError("db down")

    api.connections.create = broken  # type: ignore[method-assign]
    resp = web.handle(FakeRequest("GET", "/api/echo"))  # type: ignore[arg-type]
    assert isinstance(resp, Response) and resp.status == 500
    assert b"db down" not in resp.body


def test_result_params_used_for_received_params(web: WebServer, api: FakeApi) -> None:
    class Result:
        response = {"ok": True}
        status = 200
        duration = 1.0
        params = {"action": "clean", "kept": 1}

    api.actions.actions["clean"] = lambda c, p: Result()
    resp = web.handle(FakeRequest("GET", "/api/clean?kept=1&dropped=2"))  # type: ignore[arg-type]
    assert isinstance(resp, Response)
    assert orjson.loads(resp.body)["requesterInformation"]["receivedParams"] == {"action": "clean", "kept": 1}


def test_response_dict_not_mutated(web: WebServer, api: FakeApi) -> None:
    shared = {"constant": 1}
    api.actions.actions["const"] = lambda c, p: FakeResult(shared)
    web.handle(FakeRequest("GET", "/api/const"))  # type: ignore[arg-type]
    assert shared == {"constant": 1}


def test_non_string_action_is_unknown(web: WebServer, api: FakeApi) -> None:
    req = FakeRequest("POST", "/api", {"content-type": "application/json"}, b'{"action": 5}')
    resp = web.handle(req)  # type: ignore[arg-type]
    assert isinstance(resp, Response) and resp.status == 404
    assert api.actions.calls == []


def test_no_peer(web: WebServer) -> None:
    resp = web.handle(FakeRequest("GET", "/api/echo", peer=None))  # type: ignore[arg-type]
    assert isinstance(resp, Response) and resp.status == 200
    assert orjson.loads(resp.body)["requesterInformation"]["remoteIP"] is None


def test_absolute_form_target(web: WebServer) -> None:
    resp = web.handle(FakeRequest("GET", "http://example.com/public/chat.html"))  # type: ignore[arg-type]
    assert isinstance(resp, Response) and resp.status == 200 and resp.body == b"<p>chat</p>\n"


def test_cookie_and_cors_on_errors(web: WebServer) -> None:
    resp = web.handle(FakeRequest("POST", "/api/echo", {"content-type": "application/json"}, b"{bad"))  # type: ignore[arg-type]
    assert isinstance(resp, Response) and resp.status == 400
    h = headers_of(resp)
    assert h["access-control-allow-origin"] == "*"
    assert h["set-cookie"].startswith("sessionID=")


# -- helpers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "etag", "match"),
    [
        ('"a"', '"a"', True),
        ('W/"a"', '"a"', True),
        ('"b", "a"', '"a"', True),
        ("*", '"a"', True),
        ('"b"', '"a"', False),
        ("", '"a"', False),
        ('"a', '"a"', False),
    ],
)
def test_etag_matches(header: str, etag: str, match: bool) -> None:
    assert _etag_matches(header, etag) is match


@pytest.mark.parametrize(
    ("rel", "parts"),
    [
        ("", []),
        ("/", []),
        ("a/b.html", ["a", "b.html"]),
        ("//a//./b", ["a", "b"]),
        ("../x", None),
        ("a/../../x", None),
        ("a/..", None),
        ("a\\..\\x", None),
        ("a\x00b", None),
        (".env", None),
        ("a/.git/config", None),
        (".well-known/security.txt", [".well-known", "security.txt"]),
        ("...", None),
    ],
)
def test_safe_segments(rel: str, parts: list[str] | None) -> None:
    assert safe_segments(rel) == parts


@pytest.mark.parametrize(
    ("name", "bare", "ctype"),
    [
        ("a.html", "text/html", "text/html; charset=utf-8"),
        ("A.HTML", "text/html", "text/html; charset=utf-8"),
        ("a.js", "text/javascript", "text/javascript; charset=utf-8"),
        ("a.mjs", "text/javascript", "text/javascript; charset=utf-8"),
        ("a.css", "text/css", "text/css; charset=utf-8"),
        ("a.json", "application/json", "application/json; charset=utf-8"),
        ("a.js.map", "application/json", "application/json; charset=utf-8"),
        ("a.svg", "image/svg+xml", "image/svg+xml; charset=utf-8"),
        ("a.wasm", "application/wasm", "application/wasm"),
        ("a.woff2", "font/woff2", "font/woff2"),
        ("a.png", "image/png", "image/png"),
        ("a.gz", "application/gzip", "application/gzip"),
        ("a.tar", "application/x-tar", "application/x-tar"),
        ("a.tgz", "application/gzip", "application/gzip"),
        ("noext", "application/octet-stream", "application/octet-stream"),
        ("a.weird-ext", "application/octet-stream", "application/octet-stream"),
    ],
)
def test_mime(name: str, bare: str, ctype: str) -> None:
    assert mime.guess_type(name) == bare
    assert mime.content_type(name) == ctype


# -- read_public_file (the WebSocket file verb) --------------------------------------------


def test_read_public_file(api: FakeApi) -> None:
    found = read_public_file(api, "index.html")
    assert found is not None
    content, kind, mtime_ms = found
    assert content == b"<h1>hello</h1>\n"
    assert kind == "text/html"
    assert mtime_ms == os.stat(api.public_dir / "index.html").st_mtime_ns // 1_000_000  # type: ignore[operator]
    assert read_public_file(api, "/index.html") == found
    assert read_public_file(api, "") == found  # the folder → index.html
    assert read_public_file(api, "sub")[0] == b"<p>sub index</p>\n"  # type: ignore[index]
    assert read_public_file(api, "blob.bin")[0] == bytes(range(256))  # type: ignore[index]


@pytest.mark.parametrize(
    "rel",
    [
        "../secret.txt",
        "../pyproject.toml",
        "/../secret.txt",
        "sub/../../secret.txt",
        "nope",
        ".env",
        "a\x00",
        "empty",
    ],
)
def test_read_public_file_refuses(api: FakeApi, rel: str) -> None:
    assert read_public_file(api, rel) is None


def test_read_public_file_size_cap(api: FakeApi) -> None:
    assert read_public_file(api, "blob.bin", max_size=255) is None
    assert read_public_file(api, "blob.bin", max_size=256) is not None
    api.config["general"]["maxFileSize"] = 10
    assert read_public_file(api, "blob.bin") is None
    assert read_public_file(api, "chat.html") is None  # 12 bytes


def test_read_public_file_not_a_string(api: FakeApi) -> None:
    assert read_public_file(api, None) is None  # type: ignore[arg-type]
    assert read_public_file(api, 5) is None  # type: ignore[arg-type]


def test_read_public_file_missing_root(tmp_path: Path) -> None:
    assert read_public_file(FakeApi(tmp_path / "nope"), "index.html") is None
    assert read_public_file(FakeApi(None), "index.html") is None


def test_store_shared_between_web_and_file_verb(api: FakeApi, web: WebServer) -> None:
    assert static.store(api) is web.files
    read_public_file(api, "chat.html")
    assert len(web.files) == 1


# -- the cache ----------------------------------------------------------------------------


def test_cache_bounded_lru(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(static, "CACHE_TOTAL_MAX", 3000)
    (tmp_path / "p").mkdir()
    for i in range(10):
        (tmp_path / "p" / f"{i}.txt").write_bytes(b"x" * 1000)
    files = StaticFiles(tmp_path / "p")
    for i in range(10):
        entry = files.lookup(f"{i}.txt")
        assert entry is not None and entry.body == b"x" * 1000
    assert files.cached_bytes <= 3000
    assert len(files) == 3


def test_cache_invalidated_on_change(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    f = tmp_path / "p" / "a.txt"
    f.write_bytes(b"one")
    files = StaticFiles(tmp_path / "p")
    e1 = files.lookup("a.txt")
    f.write_bytes(b"two!")
    e2 = files.lookup("a.txt")
    assert e1 is not None and e2 is not None
    assert e2.body == b"two!" and e1.etag != e2.etag
    assert files.cached_bytes == 4
    f.unlink()
    assert files.lookup("a.txt") is None


def test_large_file_not_cached(tmp_path: Path) -> None:
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "big").write_bytes(b"\1" * (static.CACHE_FILE_MAX + 1))
    files = StaticFiles(tmp_path / "p")
    entry = files.lookup("big")
    assert entry is not None and entry.body is None
    assert entry.read(static.CACHE_FILE_MAX + 1) == b"\1" * (static.CACHE_FILE_MAX + 1)
    with pytest.raises(static.FileTooLarge):
        entry.read(100)
    assert len(files) == 0


def test_public_dir_created_later(tmp_path: Path) -> None:
    files = StaticFiles(tmp_path / "later")
    assert files.lookup("a.txt") is None
    (tmp_path / "later").mkdir()
    (tmp_path / "later" / "a.txt").write_text("hi")
    entry = files.lookup("a.txt")
    assert entry is not None and entry.body == b"hi"
