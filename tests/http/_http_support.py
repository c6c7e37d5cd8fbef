"""Helpers for tests/http: fakes of the Api (config, connections, actions) and a raw HTTP/1.1 client.

The web server only needs ``api.config``, ``api.public_dir``,
``api.connections.create/destroy`` and ``api.actions.process``; the fakes below
provide exactly that, so these tests do not depend on the action engine. The
client speaks HTTP over a real socket byte for byte (no path normalisation), so
traversal attempts reach the server exactly as written.
"""

from __future__ import annotations

import asyncio
import copy
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson

from hero_fast._transport import Server, serve
from hero_fast.routes import RouteTable
from hero_fast.servers.web import WebServer

TIMEOUT = 5.0

DEFAULT_CONFIG: dict[str, Any] = {
    "general": {"serverName": "test-server", "apiVersion": "1.2.3", "maxFileSize": 1 << 20},
    "servers": {
        "web": {
            "urlPathForActions": "api",
            "urlPathForFiles": "public",
            "rootEndpointType": "file",
            "flatFileCacheDuration": 60,
            "fingerprint": {
                "cookieKey": "sessionID",
                "toSetCookie": True,
                "expire": 3600,
                "httpOnly": True,
                "sameSite": "Lax",
                "secure": False,
            },
            "httpHeaders": {
                "X-Powered-By": "hero-fast",
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Methods": "HEAD, GET, POST, PUT, PATCH, DELETE, OPTIONS, TRACE",
                "Access-Control-Allow-Headers": "Content-Type",
            },
            "metadataOptions": {"serverInformation": True, "requesterInformation": True},
            "returnErrorCodes": True,
        },
        "websocket": {"server": {"pathname": "/primus"}},
    },
}


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# -- fakes -------------------------------------------------------------------------------


class FakeConnection:
    def __init__(
        self, type: str, remote_ip: str | None, remote_port: int | None, fingerprint: str | None
    ) -> None:
        self.id = os.urandom(8).hex()
        self.type = type
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.fingerprint = fingerprint or self.id
        self.destroyed = 0


class FakeConnections:
    def __init__(self) -> None:
        self.created: list[FakeConnection] = []
        self.live: dict[str, FakeConnection] = {}

    def create(
        self, type: str, remote_ip: str | None, remote_port: int | None, fingerprint: str | None = None
    ) -> FakeConnection:
        conn = FakeConnection(type, remote_ip, remote_port, fingerprint)
        self.created.append(conn)
        self.live[conn.id] = conn
        return conn

    def destroy(self, conn: FakeConnection) -> None:
        conn.destroyed += 1
        self.live.pop(conn.id, None)


@dataclass
class FakeResult:
    response: dict[str, Any]
    status: int = 200
    duration: float = 0.0


@dataclass
class FakeActions:
    """``process`` like the real one: 404 for an unknown action, sync or async runs."""

    actions: dict[str, Callable[..., Any]] = field(default_factory=dict)
    calls: list[tuple[Any, dict[str, Any]]] = field(default_factory=list)

    def process(self, conn: Any, params: dict[str, Any]) -> Any:
        self.calls.append((conn, dict(params)))
        fn = self.actions.get(params.get("action"))  # type: ignore[arg-type]
        if fn is None:
            return FakeResult({"error": "unknown action or invalid apiVersion"}, 404)
        return fn(conn, params)


def _echo(conn: Any, params: dict[str, Any]) -> FakeResult:
    return FakeResult({"echo": {k: v for k, v in params.items() if k != "action"}})


async def _slow(conn: Any, params: dict[str, Any]) -> FakeResult:
    await asyncio.sleep(0.02)
    return FakeResult({"slept": True})


def _fail(conn: Any, params: dict[str, Any]) -> FakeResult:
    return FakeResult({"error": "Error: kaboom"}, 500)


def _missing(conn: Any, params: dict[str, Any]) -> FakeResult:
    return FakeResult({"error": "x is a required parameter for this action"}, 422)


def _raise(conn: Any, params: dict[str, Any]) -> FakeResult:
    raise RuntimeError("secret-internal-detail")


async def _raise_later(conn: Any, params: dict[str, Any]) -> FakeResult:
    await asyncio.sleep(0)
    raise RuntimeError("secret-internal-detail")


def _future(conn: Any, params: dict[str, Any]) -> asyncio.Future[FakeResult]:
    fut: asyncio.Future[FakeResult] = asyncio.get_running_loop().create_future()
    asyncio.get_running_loop().call_later(0.01, fut.set_result, FakeResult({"from": "future"}))
    return fut


def _unencodable(conn: Any, params: dict[str, Any]) -> FakeResult:
    return FakeResult({"obj": object()})


class FakeApi:
    def __init__(self, public_dir: Path | None, config: dict[str, Any] | None = None) -> None:
        self.config = merge(DEFAULT_CONFIG, config or {})
        self.public_dir = public_dir
        self.routes = RouteTable(self.config.get("routes"))
        self.connections = FakeConnections()
        self.actions = FakeActions(
            {
                "echo": _echo,
                "slow": _slow,
                "fail": _fail,
                "missing": _missing,
                "raise": _raise,
                "raiseLater": _raise_later,
                "future": _future,
                "unencodable": _unencodable,
                "status": lambda c, p: FakeResult({"status": "ok"}),
            }
        )


def make_public(root: Path) -> Path:
    """A project folder with public/ and a secret beside it."""
    public = root / "public"
    (public / "sub").mkdir(parents=True)
    (public / "empty").mkdir()
    (public / "css").mkdir()
    (public / "index.html").write_text("<h1>hello</h1>\n")
    (public / "chat.html").write_text("<p>chat</p>\n")
    (public / "sub" / "index.html").write_text("<p>sub index</p>\n")
    (public / "sub" / "page.txt").write_text("plain text\n")
    (public / "css" / "site.css").write_text("body{}\n")
    for name, data in {
        "app.js": b"console.log(1)\n",
        "app.js.map": b"{}",
        "data.json": b'{"a":1}',
        "logo.svg": b"<svg/>",
        "mod.wasm": b"\x00asm\x01\x00\x00\x00",
        "font.woff2": b"wOF2",
        "pic.png": b"\x89PNG\r\n\x1a\n",
        "blob.unknownext": b"\x00\x01\x02",
        "blob.bin": bytes(range(256)),
        ".env": b"SECRET=1",
        "unicode-\u00e9.txt": "caf\u00e9\n".encode(),
    }.items():
        (public / name).write_bytes(data)
    (root / "secret.txt").write_text("outside public")
    (root / "pyproject.toml").write_text("[project]\nname='secret'\n")
    return public


# -- raw HTTP client ---------------------------------------------------------------------


@dataclass
class HttpResponse:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k.lower() == name.lower()]

    def json(self) -> Any:
        return orjson.loads(self.body)


class RawHttp:
    """One TCP connection; sends raw requests and reads responses (Content-Length framed)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int) -> RawHttp:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT)
        return cls(reader, writer)

    async def send(
        self,
        method: str,
        target: str,
        headers: dict[str, str] | list[tuple[str, str]] | None = None,
        body: bytes = b"",
        close: bool = False,
    ) -> None:
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        names = {k.lower() for k, _ in items}
        if "host" not in names:
            items.insert(0, ("Host", "127.0.0.1"))
        if body and "content-length" not in names:
            items.append(("Content-Length", str(len(body))))
        if close:
            items.append(("Connection", "close"))
        head = f"{method} {target} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in items) + "\r\n"
        self.writer.write(head.encode("latin-1") + body)
        await self.writer.drain()

    async def read(self, head_only: bool = False) -> HttpResponse:
        raw = await asyncio.wait_for(self.reader.readuntil(b"\r\n\r\n"), TIMEOUT)
        lines = raw.decode("latin-1").split("\r\n")
        _, status, reason = lines[0].split(" ", 2)
        headers = []
        for line in lines[1:]:
            if line:
                k, _, v = line.partition(":")
                headers.append((k.strip(), v.strip()))
        resp = HttpResponse(int(status), reason, headers, b"")
        length = resp.header("content-length")
        if not head_only and length is not None and resp.status not in (204, 304):
            resp.body = await asyncio.wait_for(self.reader.readexactly(int(length)), TIMEOUT)
        return resp

    async def request(self, method: str, target: str, **kw: Any) -> HttpResponse:
        await self.send(method, target, **kw)
        return await self.read(head_only=method == "HEAD")

    async def at_eof(self) -> bool:
        data = await asyncio.wait_for(self.reader.read(1), TIMEOUT)
        return data == b""

    async def close(self) -> None:
        self.writer.close()
        try:
            await asyncio.wait_for(self.writer.wait_closed(), TIMEOUT)
        except (ConnectionError, asyncio.TimeoutError):
            pass


class Handler:
    def __init__(self, web: WebServer) -> None:
        self.on_http = web.handle


class Live:
    """A FakeApi served by the real engine on a free port."""

    def __init__(self, api: FakeApi, web: WebServer, server: Server) -> None:
        self.api = api
        self.web = web
        self.server = server
        self.port = server.port

    async def request(self, method: str, target: str, **kw: Any) -> HttpResponse:
        client = await RawHttp.connect(self.port)
        try:
            return await client.request(method, target, close=True, **kw)
        finally:
            await client.close()

    async def get(self, target: str, **kw: Any) -> HttpResponse:
        return await self.request("GET", target, **kw)


async def start_live(public: Path | None, config: dict[str, Any] | None = None) -> Live:
    api = FakeApi(public, config)
    web = WebServer(api)
    server = await serve(Handler(web), "127.0.0.1", 0)
    return Live(api, web, server)


async def stop_live(live: Live) -> None:
    await asyncio.wait_for(live.server.shutdown(timeout=2), TIMEOUT)


# -- a request object for unit tests (no sockets) ---------------------------------------------


class FakeRequest:
    """Duck-typed like hero_fast._transport.HttpRequest (which Python cannot build)."""

    def __init__(
        self,
        method: str,
        target: str,
        headers: list[tuple[str, str]] | dict[str, str] | None = None,
        body: bytes = b"",
        peer: tuple[str, int] | None = ("127.0.0.1", 5555),
    ) -> None:
        self.method = method
        self.target = target
        path, _, query = target.partition("?")
        self.path = unquote(path.partition("#")[0])
        self.query_string = query.partition("#")[0]
        items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
        self.headers = [(k.lower(), v) for k, v in items]
        self.body = body
        self.peer = peer
        self.keep_alive = True
        self.http_version = "1.1"

    def header(self, name: str, default: str | None = None) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_values(self, name: str) -> list[str]:
        return [v for k, v in self.headers if k == name.lower()]

    @property
    def query(self) -> dict[str, str]:
        return dict(parse_qsl(self.query_string, keep_blank_values=True))

    @property
    def cookies(self) -> dict[str, str]:
        jar: dict[str, str] = {}
        for value in self.header_values("cookie"):
            for part in value.split(";"):
                name, sep, val = part.strip().partition("=")
                if sep and name and name not in jar:
                    jar[name] = val.strip().strip('"')
        return jar

    @property
    def remote_address(self) -> str | None:
        return self.peer[0] if self.peer else None

    @property
    def remote_port(self) -> int | None:
        return self.peer[1] if self.peer else None
