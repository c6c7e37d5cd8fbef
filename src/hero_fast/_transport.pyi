"""Typed surface of the uvloop/asyncio transport (see _transport.pyx)."""

import asyncio
import logging
import socket
import ssl as _ssl
from collections.abc import AsyncIterable, Awaitable, Iterable, Sequence
from typing import Any, Protocol

from hero_fast._deflate import DeflateParams

__all__ = [
    "CappedLog", "Connection", "HttpRequest", "Options", "Reject", "Response", "Server", "fanout", "peer_log",
    "serve",
]

class CappedLog:
    logger: logging.Logger
    burst: int
    window: float
    def __init__(self, logger: logging.Logger, burst: int = 10, window: float = 60.0) -> None: ...
    def note(self, level: int, reason: str, peer: str | None, fmt: str, *args: object) -> None: ...

peer_log: CappedLog

class Options:
    max_message_size: int
    max_fragments: int
    handshake_timeout: float
    keepalive_timeout: float
    max_request_line: int
    max_headers: int
    max_header_bytes: int
    max_body_size: int
    ping_interval: float
    ping_timeout: float
    close_timeout: float
    write_buffer_high: int
    write_buffer_low: int
    max_send_buffer: int
    slow_consumer: str
    tick: float
    deflate: bool
    deflate_server_no_context_takeover: bool
    deflate_client_no_context_takeover: bool
    deflate_server_max_window_bits: int
    deflate_client_max_window_bits: int
    deflate_level: int
    deflate_mem_level: int
    deflate_min_size: int
    max_connections: int
    max_connections_per_ip: int
    max_messages_per_second: float
    max_pings_per_second: float
    coalesce_pongs: bool
    frame_timeout: float
    rate_limit_policy: str
    trusted_proxies: tuple[str, ...]
    def __init__(self, **overrides: Any) -> None: ...
    def as_dict(self) -> dict[str, Any]: ...

class HttpRequest:
    method: str
    target: str
    path: str
    query_string: str
    http_version: str
    headers: list[tuple[str, str]]
    body: bytes
    peer: tuple[Any, ...] | None
    keep_alive: bool
    client_address: str | None
    scheme: str
    def header(self, name: str, default: str | None = None) -> str | None: ...
    def header_values(self, name: str) -> list[str]: ...
    @property
    def query(self) -> dict[str, str]: ...
    @property
    def cookies(self) -> dict[str, str]: ...
    @property
    def remote_address(self) -> str | None: ...
    @property
    def remote_port(self) -> int | None: ...

class Response:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    stream: AsyncIterable[bytes] | None
    def __init__(
        self,
        status: int = 200,
        headers: Sequence[tuple[str, str]] | None = None,
        body: bytes = b"",
        stream: AsyncIterable[bytes] | None = None,
    ) -> None: ...

class Reject(Exception):
    status: int
    reason: str
    headers: list[tuple[str, str]]
    def __init__(
        self, status: int = 403, reason: str = "forbidden", headers: Sequence[tuple[str, str]] = ()
    ) -> None: ...

class Connection:
    server: Server
    transport: asyncio.Transport | None
    peer: tuple[Any, ...] | None
    request: HttpRequest | None
    subprotocol: str | None
    user_data: Any
    writing_paused: bool
    deflate_params: DeflateParams | None
    client_address: str | None
    peer_ip: str | None
    id: str
    @property
    def deflate(self) -> DeflateParams | None: ...
    @property
    def open(self) -> bool: ...
    @property
    def close_code(self) -> int | None: ...
    @property
    def read_buffer_size(self) -> int: ...
    @property
    def buffered_amount(self) -> int: ...
    def send(self, data: str | bytes | bytearray | memoryview, text: bool | None = None) -> bool: ...
    def send_frame(self, frame: bytes) -> bool: ...
    def ping(self, data: bytes = b"") -> None: ...
    def close(self, code: int = 1000, reason: str = "") -> None: ...
    def abort(self) -> None: ...

class Handler(Protocol):
    """Any subset of these methods; missing ones get sensible defaults."""
    def on_upgrade(
        self, conn: Connection, request: HttpRequest, subprotocols: list[str]
    ) -> str | Reject | Awaitable[str | Reject | None] | None: ...
    def on_connect(self, conn: Connection) -> None: ...
    def on_message(self, conn: Connection, message: str | bytes) -> None: ...
    def on_data(self, conn: Connection, payload: bytes, is_text: bool) -> None:
        """Opt-in, replaces on_message: the payload as bytes (text already checked
        as UTF-8, never decoded); echo it with ``conn.send(payload, is_text)``."""
    def on_close(self, conn: Connection, code: int, reason: str) -> None: ...
    def on_http(self, request: HttpRequest) -> Response | Awaitable[Response]: ...

class Server:
    options: Options
    handler: Any
    connections: set[Connection]
    @property
    def counters(self) -> dict[str, int]: ...
    loop: asyncio.AbstractEventLoop
    aio_server: asyncio.Server | None
    now: float
    ip_counts: dict[str, int]
    accepted: int
    messages_received: int
    messages_sent: int
    bytes_received: int
    bytes_sent: int
    timer: asyncio.TimerHandle | None
    def __init__(
        self, handler: Any, options: Options | None = None, loop: asyncio.AbstractEventLoop | None = None
    ) -> None: ...
    @property
    def sockets(self) -> tuple[socket.socket, ...]: ...
    @property
    def port(self) -> int: ...
    def close(self) -> None: ...
    async def shutdown(self, code: int = 1001, reason: str = "going away", timeout: float = 5.0) -> None: ...

def fanout(
    frame: bytes, conns: Iterable[Connection], compressed: bytes | None = None, compressed_window_bits: int = 15
) -> int: ...
async def serve(
    handler: Any,
    host: str | None = "127.0.0.1",
    port: int = 8080,
    *,
    options: Options | None = None,
    ssl: _ssl.SSLContext | None = None,
    reuse_port: bool = False,
    sock: socket.socket | None = None,
    backlog: int = 1024,
) -> Server: ...
