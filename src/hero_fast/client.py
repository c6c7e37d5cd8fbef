"""An asyncio client for hero-fast (and actionhero) servers.

Speaks the wire protocol of ``PROTOCOL.md`` with no WebSocket library: the HTTP/1.1
upgrade is done here, frames go through the project's own sans-I/O codec
(:class:`hero_fast._core.Codec` in client mode) on an :class:`asyncio.Protocol`.

::

    async with Client("ws://127.0.0.1:8080/primus", cookies={"sessionID": "abc"}) as client:
        print(client.welcome)                          # {"welcome": "...", "context": "api"}
        r = await client.action("status")              # the response dict (errors included)
        await client.room_add("defaultRoom")
        client.on("say", lambda m: print(m["from"], m["message"]))
        await client.say("defaultRoom", {"hello": "world"})
        async for msg in client.messages():            # every server message
            ...

Requests carry increasing integer ``messageId`` values (1, 2, ... per connection) and are
matched to their responses by that id, so responses may arrive in any order. A response
that carries ``"error"`` is returned, not raised: actionhero reports errors in the body.
What *is* raised: :class:`ConnectionClosed` (a :class:`ConnectionError`) for every pending
request when the connection ends, :class:`ClientTimeout` (an :class:`asyncio.TimeoutError`)
when a request or the connection attempt takes longer than its timeout, and
:class:`HandshakeFailed` when the server refuses the upgrade.

The client answers the Primus heartbeat (``"primus::ping::<t>"`` → ``"primus::pong::<t>"``)
as soon as it arrives and WebSocket pings through the codec. By default it never reconnects by
itself; after ``"primus::server::close"`` :attr:`Client.server_closed` tells a bot not to.

With ``reconnect=True`` (or a :class:`ReconnectPolicy`) it comes back after a lost connection,
with backoff, and uses connection state recovery when the server offers it (docs/delivery.md):
it keeps its own fingerprint cookie, sends ``recover`` as the first request of the new
connection, gets its id, rooms, missed room messages and pushes back (once each: what it
already has is dropped), rejoins the rooms that were not restored, and reports the outcome
(``"recovered"`` event, :attr:`Client.recovery`). Requests pending on the lost connection
fail with :class:`ConnectionClosed`; :meth:`Client.wait_open` waits for the next connection.

Costs per request: one ``orjson.dumps``, one masked frame, at most one ``transport.write``
(writes issued during the same loop iteration are coalesced into one), one future, and one
heap entry for its deadline unless the timeout is ``None``.
"""

from __future__ import annotations

import asyncio
import base64
import collections
import heapq
import inspect
import logging
import os
import ssl as _ssl
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, TypeVar
from urllib.parse import parse_qs, urlsplit

import orjson

from hero_fast._core import Codec, accept_key, encode_frame
from hero_fast.client_recovery import ReconnectPolicy, RecoveryState

__all__ = [
    "Client",
    "ClientError",
    "ClientTimeout",
    "ConnectionClosed",
    "HandshakeFailed",
    "MessageStream",
    "ProtocolError",
    "ReconnectPolicy",
]

log = logging.getLogger("hero_fast.client")

Callback = Callable[[Any], Any]
_CB = TypeVar("_CB", bound=Callback)

#: Events :meth:`Client.on` accepts.
EVENTS: Final = frozenset(
    {
        "welcome", "say", "alert", "api", "response", "message", "primus", "disconnected", "error",
        "reconnecting", "reconnected", "recovered",
    }
)  # fmt: skip

_OP_TEXT: Final = 1
_OP_BINARY: Final = 2
_CODEC_CLOSED: Final = 2
_CODEC_FAILED: Final = 3
_MAX_HANDSHAKE: Final = 65536  # bytes of response head (and refusal body) we read at most
_MANAGED_HEADERS: Final = frozenset(
    {"upgrade", "connection", "sec-websocket-key", "sec-websocket-version", "sec-websocket-extensions"}
)

_IDLE: Final = 0
_CONNECTING: Final = 1
_OPEN: Final = 2
_CLOSING: Final = 3
_CLOSED: Final = 4


class ClientError(Exception):
    """Base class of the client's own errors."""


class ConnectionClosed(ClientError, ConnectionError):
    """The connection is closed (or closed while a request was pending)."""

    def __init__(self, code: int = 1006, reason: str = "", server_closed: bool = False) -> None:
        text = f"connection closed (code {code}"
        text += f", {reason!r})" if reason else ")"
        if server_closed:
            text += "; the server asked not to reconnect"
        super().__init__(text)
        self.code = code
        self.reason = reason
        self.server_closed = server_closed


class HandshakeFailed(ClientError, ConnectionError):
    """The server refused the WebSocket upgrade or answered it wrongly.

    ``status`` is the HTTP status (0 when the response was not valid HTTP), ``headers`` the
    response headers (names lower-case) and ``body`` the start of the response body."""

    def __init__(
        self,
        message: str,
        status: int = 0,
        reason: str = "",
        headers: list[tuple[str, str]] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.headers = headers or []
        self.body = body


class ProtocolError(ClientError):
    """The server broke the WebSocket protocol (the client closed with ``code``) or sent
    something that is not JSON; emitted as an ``"error"`` event."""

    def __init__(self, message: str, code: int = 1002) -> None:
        super().__init__(message)
        self.code = code


class ClientTimeout(ClientError, asyncio.TimeoutError):
    """A request, ``connect()`` or ``primus_id()`` took longer than its timeout."""


class _End:
    """Sentinel ending a :class:`MessageStream`."""


_END: Final = _End()


class MessageStream:
    """Every server message (dicts, plus any other JSON value or a binary payload) from the
    moment it was created until the connection closes, in arrival order. Primus control
    strings are not included (see the ``"primus"`` event).

    Bounded: past ``maxsize`` undelivered messages the oldest is dropped and counted in
    :attr:`dropped`. Iterate with ``async for``, or ``await stream.get()``; ``close()``
    (or leaving ``async with``, or dropping the last reference) unsubscribes."""

    __slots__ = ("__weakref__", "_client", "_ended", "_items", "_maxsize", "_waiter", "dropped")

    def __init__(self, client: Client, maxsize: int) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be at least 1")
        self._client: Client | None = client
        self._items: collections.deque[Any] = collections.deque()
        self._maxsize = maxsize
        self._waiter: asyncio.Future[None] | None = None
        self._ended = False
        self.dropped = 0

    def _put(self, item: Any) -> None:
        items = self._items
        if len(items) >= self._maxsize:
            items.popleft()
            self.dropped += 1
        items.append(item)
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def _end(self) -> None:
        self._ended = True
        self._client = None
        w = self._waiter
        if w is not None:
            self._waiter = None
            if not w.done():
                w.set_result(None)

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> bool:
        """No more messages will be added (the connection closed or ``close()`` was called)."""
        return self._ended

    def close(self) -> None:
        """Unsubscribe; messages already received can still be read."""
        client = self._client
        if client is not None:
            client._subs.discard(self)
        self._end()

    async def get(self, timeout: float | None = None) -> Any:
        """The next message; :class:`ConnectionClosed` once the stream has ended and is
        empty, :class:`ClientTimeout` after ``timeout`` seconds."""
        if self._items:
            return self._items.popleft()
        if timeout is None:
            item = await self.__anext__()
        else:
            try:
                item = await asyncio.wait_for(self.__anext__(), timeout)
            except asyncio.TimeoutError:
                raise ClientTimeout(f"no message within {timeout} s") from None
        return item

    def __aiter__(self) -> MessageStream:
        return self

    async def __anext__(self) -> Any:
        items = self._items
        while not items:
            if self._ended:
                raise StopAsyncIteration
            w = self._waiter = asyncio.get_running_loop().create_future()
            try:
                await w
            finally:
                if self._waiter is w:
                    self._waiter = None
        return items.popleft()

    async def __aenter__(self) -> MessageStream:
        return self

    def __enter__(self) -> MessageStream:
        return self

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class _Protocol(asyncio.Protocol):
    """Forwards the transport's callbacks to the client."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._client._connection_made(transport)  # type: ignore[arg-type]

    def data_received(self, data: bytes) -> None:
        self._client._data_received(data)

    def eof_received(self) -> bool | None:
        return None  # let the transport close

    def connection_lost(self, exc: Exception | None) -> None:
        self._client._connection_lost(exc)

    def pause_writing(self) -> None:
        self._client._write_paused = True

    def resume_writing(self) -> None:
        self._client._resume_writing()


def _parse_url(url: str) -> tuple[bool, str, int, str]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme in ("ws", "http"):
        secure = False
    elif scheme in ("wss", "https"):
        secure = True
    else:
        raise ValueError(f"unsupported URL scheme {parts.scheme!r} (use ws:// or wss://)")
    host = parts.hostname
    if not host:
        raise ValueError(f"no host in URL {url!r}")
    port = parts.port or (443 if secure else 80)
    target = parts.path or "/primus"
    if parts.query:
        target += "?" + parts.query
    return secure, host, port, target


def _cookie_value(cookie_header: str, key: str) -> str | None:
    for pair in cookie_header.split(";"):
        name, sep, value = pair.strip().partition("=")
        if sep and name == key:
            return value
    return None


def _fingerprint(
    cookies: Mapping[str, str] | str | None,
    headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    target: str,
    key: str,
) -> str | None:
    """The fingerprint the server will see: the cookie ``key`` (from ``cookies`` or a Cookie
    header), else the query parameter ``key``, else None (the server uses the connection id)."""
    if isinstance(cookies, str):
        found = _cookie_value(cookies, key)
    else:
        found = (cookies or {}).get(key)
    if found is None and headers is not None:
        items = headers.items() if isinstance(headers, Mapping) else headers
        for name, value in items:
            if str(name).lower() == "cookie" and found is None:
                found = _cookie_value(str(value), key)
    if found is None:
        query = parse_qs(urlsplit(target).query).get(key)
        found = query[0] if query else None
    return found or None


def _check_header_text(name: str, value: str) -> None:
    for s in (name, value):
        if "\r" in s or "\n" in s or "\0" in s:
            raise ValueError(f"header {name!r} contains a line break or NUL")
    if not name or ":" in name or " " in name:
        raise ValueError(f"invalid header name {name!r}")


class Client:
    """One WebSocket connection to a hero-fast / actionhero server.

    ``url``: ``ws://host:port/path`` or ``wss://…`` (``http``/``https`` are accepted as
    aliases); with no path, ``/primus``. ``cookies`` (a mapping, or a ready ``Cookie``
    header value) are sent on the upgrade request — the server's fingerprint cookie is
    ``sessionID`` by default; ``headers`` adds request headers (``Origin``, ``Host``,
    ``User-Agent`` may be overridden; the upgrade headers themselves may not).
    ``timeout`` (seconds, ``None`` for none) bounds ``connect()`` and is every request's
    default; ``close_timeout`` bounds the closing handshake. ``ssl``: an
    :class:`ssl.SSLContext` for ``wss://`` (default: the system's default context).
    ``max_message_size`` caps one incoming message (larger: close 1009).

    ``reconnect``: ``True`` or a :class:`ReconnectPolicy` to come back after a lost
    connection, with connection state recovery when the server offers it (see the module
    docstring); the client then sends a fingerprint cookie of its own (``fingerprint_cookie``,
    ``sessionID`` by default, 40 random hex digits) unless ``cookies``, a ``Cookie`` header or
    the URL's query already carries one, so that the server can tell it is the same client.
    """

    def __init__(
        self,
        url: str = "ws://127.0.0.1:8080/primus",
        *,
        cookies: Mapping[str, str] | str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        timeout: float | None = 10.0,
        ssl: _ssl.SSLContext | bool | None = None,
        max_message_size: int = 16 << 20,
        close_timeout: float = 5.0,
        reconnect: bool | ReconnectPolicy = False,
        fingerprint_cookie: str = "sessionID",
    ) -> None:
        secure, host, port, target = _parse_url(url)
        if ssl is not None and ssl is not False and not secure:
            raise ValueError("ssl= was given for a ws:// URL; use wss://")
        if secure:
            self._ssl: _ssl.SSLContext | None = (
                ssl if isinstance(ssl, _ssl.SSLContext) else _ssl.create_default_context()
            )
        else:
            self._ssl = None
        if timeout is not None and timeout <= 0:
            raise ValueError("timeout must be positive or None")
        if max_message_size < 125:
            raise ValueError("max_message_size must be at least 125")
        self.url = url
        self.host = host
        self.port = port
        self.target = target
        self.secure = secure
        self.timeout = timeout
        self.close_timeout = close_timeout
        self.max_message_size = max_message_size
        #: when and how often to reconnect after a lost connection (None: never)
        self.reconnect_policy = ReconnectPolicy() if reconnect is True else (reconnect or None)
        #: the fingerprint cookie's value when known (always, with ``reconnect``)
        self.fingerprint = _fingerprint(cookies, headers, target, fingerprint_cookie)
        if self.reconnect_policy is not None and self.fingerprint is None:
            self.fingerprint = os.urandom(20).hex()
            if isinstance(cookies, str):
                cookies = f"{cookies}; {fingerprint_cookie}={self.fingerprint}"
            else:
                cookies = {**(cookies or {}), fingerprint_cookie: self.fingerprint}
        self._request_headers = self._build_headers(cookies, headers)
        self._resume = RecoveryState()
        #: how the reconnect that opened the current connection went: the data of the
        #: ``recover`` response (``recovered``, ``reason``, ``id``, ``rooms``, ``lost``,
        #: ``pushesLost``); None for a first connection or a server without recovery
        self.recovery: dict[str, Any] | None = None
        self._final = False  # disconnect(), quit or "primus::server::close": no reconnecting
        self._resume_token: str | None = None  # the lost connection's, while reconnecting
        self._reconnector: asyncio.Task[None] | None = None
        self._back: asyncio.Future[None] | None = None  # done when reconnected (or given up)

        self._listeners: dict[str, list[Callback]] = {}
        self._subs: weakref.WeakSet[MessageStream] = weakref.WeakSet()
        self._callback_tasks: set[asyncio.Task[Any]] = set()
        self._state = _IDLE
        self._loop: asyncio.AbstractEventLoop | None = None
        self._transport: asyncio.Transport | None = None
        self._reset()

    # -- public state ---------------------------------------------------------

    @property
    def open(self) -> bool:
        """The connection is established and not closing (and, after a reconnect, restored)."""
        return self._state == _OPEN and not self._restoring

    @property
    def reconnecting(self) -> bool:
        """The connection was lost and the client is coming back (``reconnect=``)."""
        return self._reconnector is not None

    @property
    def rooms(self) -> list[str]:
        """The rooms joined with :meth:`room_add` (and not left), in order; with
        ``reconnect=`` they are restored or rejoined after a reconnect."""
        return list(self._resume.rooms)

    @property
    def closed(self) -> bool:
        """True unless the connection is open (or still being opened)."""
        return self._state not in (_OPEN, _CONNECTING)

    @property
    def id(self) -> str | None:
        """The server's connection id, once known: from any ``details_view()`` or
        ``primus_id()`` (``await client.fetch_id()`` asks when it is not known yet)."""
        return self._id

    @property
    def pending(self) -> int:
        """Requests sent and not answered yet."""
        return len(self._pending)

    def __repr__(self) -> str:
        state = ("idle", "connecting", "open", "closing", "closed")[self._state]
        return f"<Client {self.url} {state}>"

    # -- connecting ---------------------------------------------------------------

    def _reset(self) -> None:
        self.welcome: dict[str, Any] | None = None
        self.details: dict[str, Any] | None = None
        self.server_closed = False
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.response_status: int | None = None
        self.response_headers: list[tuple[str, str]] = []
        self._codec: Codec | None = None
        self._id: str | None = None
        self._next_id = 0
        self._pending: dict[Any, asyncio.Future[Any]] = {}
        self._deadlines: list[tuple[float, int, Any, asyncio.Future[Any], Any, float]] = []
        self._seq = 0
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0
        self._primus_waiters: collections.deque[asyncio.Future[str]] = collections.deque()
        self._hs_buf = bytearray()
        self._hs_head: tuple[int, str, list[tuple[str, str]], int] | None = None
        self._key = ""
        self._connect_fut: asyncio.Future[dict[str, Any]] | None = None
        self._closed_fut: asyncio.Future[None] | None = None
        self._cork: list[bytes] | None = None
        self._write_paused = False
        self._drain_waiters: list[asyncio.Future[None]] = []
        self._tracking = False  # the server numbers messages for recovery: drop duplicates
        self._restoring = False  # a reconnect is recovering / rejoining on this connection

    def _build_headers(
        self,
        cookies: Mapping[str, str] | str | None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None,
    ) -> list[tuple[str, str]]:
        default_port = 443 if self.secure else 80
        host = f"[{self.host}]" if ":" in self.host else self.host
        out: list[tuple[str, str]] = [
            ("Host", host if self.port == default_port else f"{host}:{self.port}"),
            ("User-Agent", "hero-fast-client"),
        ]
        if headers is not None:
            items = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in items:
                name, value = str(name), str(value)
                _check_header_text(name, value)
                low = name.lower()
                if low in _MANAGED_HEADERS:
                    raise ValueError(f"header {name!r} is set by the client itself")
                if low in ("host", "user-agent"):
                    out = [(n, v) for n, v in out if n.lower() != low]
                out.append((name, value))
        if cookies:
            if isinstance(cookies, str):
                cookie = cookies
            else:
                pairs = []
                for k, v in cookies.items():
                    if any(c in f"{k}{v}" for c in ";,\r\n\0") or "=" in k or not k:
                        raise ValueError(f"cookie {k!r} has a name or value that cannot be sent")
                    pairs.append(f"{k}={v}")
                cookie = "; ".join(pairs)
            _check_header_text("Cookie", cookie)
            out.append(("Cookie", cookie))
        return out

    async def connect(self) -> dict[str, Any]:
        """Open the connection, wait for the welcome message and return it.

        Raises :class:`HandshakeFailed` (refused or invalid upgrade), :class:`ClientTimeout`,
        :class:`ConnectionClosed` or :class:`OSError` (cannot connect). May be called again
        once a previous connection has closed."""
        if self._state in (_CONNECTING, _OPEN, _CLOSING) or self._reconnector is not None:
            raise RuntimeError("the client is already connected or connecting")
        self._final = False
        self._resume = RecoveryState()
        self.recovery = None
        return await self._open_connection()

    async def _open_connection(self) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        self._reset()
        self._loop = loop
        self._state = _CONNECTING
        self._connect_fut = loop.create_future()
        self._closed_fut = loop.create_future()
        self._key = base64.b64encode(os.urandom(16)).decode("ascii")
        try:
            if self.timeout is None:
                return await self._open(loop)
            try:
                return await asyncio.wait_for(self._open(loop), self.timeout)
            except asyncio.TimeoutError:
                raise ClientTimeout(f"connecting to {self.url} took longer than {self.timeout} s") from None
        except BaseException:
            self._abort_connect()
            raise

    async def _open(self, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
        await loop.create_connection(
            lambda: _Protocol(self),
            self.host,
            self.port,
            ssl=self._ssl,
            server_hostname=self.host if self._ssl is not None else None,
        )
        assert self._connect_fut is not None
        return await self._connect_fut

    def _abort_connect(self) -> None:
        t = self._transport
        if t is not None:
            t.abort()
            self._transport = None
        if self._state != _CLOSED:
            self._finish(1006, "")

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.disconnect()

    # -- the transport's callbacks --------------------------------------------------

    def _connection_made(self, transport: asyncio.Transport) -> None:
        if self._state != _CONNECTING:  # connect() gave up meanwhile
            transport.abort()
            return
        self._transport = transport
        lines = [f"GET {self.target} HTTP/1.1"]
        lines.extend(f"{n}: {v}" for n, v in self._request_headers)
        lines.append("Upgrade: websocket")
        lines.append("Connection: Upgrade")
        lines.append(f"Sec-WebSocket-Key: {self._key}")
        lines.append("Sec-WebSocket-Version: 13")
        transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    def _data_received(self, data: bytes) -> None:
        codec = self._codec
        if codec is None:
            self._handshake_data(data)
            return
        try:
            events = codec.receive_data(data)
        except Exception as exc:  # MemoryError and the like: never let it reach the loop
            log.exception("decoding failed")
            self._fail(ProtocolError(f"decoding failed: {exc}", 1011))
            return
        out: list[bytes] | None = None
        if events:
            for ev in events:
                kind = ev[0]
                if kind == "text":
                    reply = self._on_text(ev[1])
                    if reply is not None:
                        if out is None:
                            out = [reply]
                        else:
                            out.append(reply)
                elif kind == "binary":
                    self._dispatch(ev[1], None)
                elif kind == "close":
                    self._on_close_frame(ev[1], ev[2])
                # ping: the codec queued the pong; pong: nothing to do
        ctl = codec.data_to_send()
        if ctl:
            if out is None:
                out = [ctl]
            else:
                out.append(ctl)
        if out is not None and self._transport is not None:
            self._write(out[0] if len(out) == 1 else b"".join(out))
        state = codec.state
        if state == _CODEC_CLOSED:
            # Close handshake complete (either side started it): hang up.
            self._close_transport()
        elif state == _CODEC_FAILED and self._state != _CLOSED:
            self._fail(ProtocolError(codec.close_reason or "protocol error", codec.close_code))

    def _connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        self._cork = None
        if self._state == _CLOSED:
            return
        if self._codec is None and self._state == _CONNECTING:
            if self._hs_head is not None:
                # A refusal without Content-Length ends with the connection.
                self._refuse()
            else:
                why = f": {exc}" if exc else ""
                self._handshake_failed(
                    HandshakeFailed(f"the server closed the connection during the WebSocket handshake{why}")
                )
        if self.close_code is None:
            self._finish(1006, str(exc) if exc else "")
        else:
            self._finish(self.close_code, self.close_reason or "")

    def _resume_writing(self) -> None:
        self._write_paused = False
        waiters, self._drain_waiters = self._drain_waiters, []
        for w in waiters:
            if not w.done():
                w.set_result(None)

    # -- opening handshake ----------------------------------------------------------

    def _handshake_data(self, data: bytes) -> None:
        if self._state != _CONNECTING:
            return
        buf = self._hs_buf
        buf += data
        if self._hs_head is None:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                if len(buf) > _MAX_HANDSHAKE:
                    self._handshake_failed(HandshakeFailed("handshake response headers too large"))
                return
            if end > _MAX_HANDSHAKE:
                self._handshake_failed(HandshakeFailed("handshake response headers too large"))
                return
            try:
                self._hs_head = self._parse_head(bytes(buf[:end]))
            except HandshakeFailed as exc:
                self._handshake_failed(exc)
                return
            del buf[: end + 4]
            status, _, headers, _ = self._hs_head
            self.response_status = status
            self.response_headers = headers
            if status == 101:
                self._accept(headers)
                return
        # A refusal: wait for its body when its length is known and small.
        length = self._hs_head[3]
        if 0 <= length <= _MAX_HANDSHAKE and len(buf) < length:
            return
        self._refuse()

    @staticmethod
    def _parse_head(head: bytes) -> tuple[int, str, list[tuple[str, str]], int]:
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise HandshakeFailed(f"not an HTTP response: {lines[0][:100]!r}")
        status = int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers: list[tuple[str, str]] = []
        length = -1
        for line in lines[1:]:
            name, sep, value = line.partition(":")
            if not sep:
                raise HandshakeFailed(f"malformed header line in handshake response: {line[:100]!r}")
            name = name.strip().lower()
            value = value.strip()
            headers.append((name, value))
            if name == "content-length" and value.isdigit():
                length = int(value)
        return status, reason, headers, length

    def _refuse(self) -> None:
        assert self._hs_head is not None
        status, reason, headers, length = self._hs_head
        body = bytes(self._hs_buf[: length if 0 <= length <= _MAX_HANDSHAKE else _MAX_HANDSHAKE])
        text = f"server refused the WebSocket upgrade to {self.url}: HTTP {status} {reason}".rstrip()
        snippet = body[:300].decode("utf-8", "replace").strip()
        if snippet:
            text += f": {snippet}"
        self._handshake_failed(HandshakeFailed(text, status, reason, headers, body))

    def _accept(self, headers: list[tuple[str, str]]) -> None:
        def values(name: str) -> list[str]:
            return [t.strip().lower() for n, v in headers if n == name for t in v.split(",") if t.strip()]

        problem = None
        if "websocket" not in values("upgrade"):
            problem = "missing 'Upgrade: websocket'"
        elif "upgrade" not in values("connection"):
            problem = "missing 'Connection: Upgrade'"
        else:
            accepts = [v for n, v in headers if n == "sec-websocket-accept"]
            if accepts != [accept_key(self._key)]:
                problem = f"wrong Sec-WebSocket-Accept {accepts!r}"
            elif values("sec-websocket-extensions"):
                problem = "the server chose an extension the client did not offer"
            elif values("sec-websocket-protocol"):
                problem = "the server chose a subprotocol the client did not offer"
        if problem is not None:
            self._handshake_failed(HandshakeFailed(f"invalid WebSocket handshake response: {problem}", 101))
            return
        self._codec = Codec(is_client=True, max_message_size=self.max_message_size)
        self._state = _OPEN
        rest = bytes(self._hs_buf)
        self._hs_buf = bytearray()
        if rest:
            self._data_received(rest)

    def _handshake_failed(self, exc: HandshakeFailed) -> None:
        fut = self._connect_fut
        if fut is not None and not fut.done():
            fut.set_exception(exc)
            fut.exception()  # connect() may already have given up: no "never retrieved" noise
        t = self._transport
        if t is not None:
            t.abort()
        self._finish(1006, str(exc))

    # -- receiving ------------------------------------------------------------

    def _on_text(self, text: str) -> bytes | None:
        """Handle one text message; returns a frame to send back, if any."""
        try:
            msg = orjson.loads(text)
        except orjson.JSONDecodeError:
            if text.startswith("primus::"):  # not JSON-encoded: be lenient
                return self._on_primus(text)
            self._emit("error", ProtocolError(f"server sent a message that is not JSON: {text[:100]!r}"))
            return None
        if type(msg) is dict:
            ctx = msg.get("context")
            if self._tracking and not self._resume.is_new(msg):
                return None  # a message it already has, replayed after a reconnect
            if ctx == "response":
                mid = msg.get("messageId")
                try:
                    entry = self._pending.pop(mid, None)
                except TypeError:  # an unhashable id we never sent
                    entry = None
                if entry is not None and not entry.done():
                    entry.set_result(msg)
                event = "response"
            elif ctx == "user":
                event = "say"
            elif ctx == "alert":
                event = "alert"
            elif ctx == "api" and "welcome" in msg:
                event = "welcome"
                self.welcome = msg
                fut2 = self._connect_fut
                if fut2 is not None and not fut2.done():  # the connection's own welcome
                    self._tracking = self._resume.welcomed(msg)
                    fut2.set_result(msg)
            else:
                event = "api"
            if self._listeners or self._subs:
                self._dispatch(msg, event)
            return None
        if type(msg) is str and msg.startswith("primus::"):
            return self._on_primus(msg)
        self._dispatch(msg, "api")
        return None

    def _on_primus(self, msg: str) -> bytes | None:
        reply = None
        if msg.startswith("primus::ping::"):
            if self._state != _OPEN:  # nothing may follow our close frame
                return None
            reply = encode_frame(_OP_TEXT, orjson.dumps("primus::pong::" + msg[14:]), True, True)
        elif msg == "primus::server::close":
            self.server_closed = True
        elif msg.startswith("primus::id::"):
            self._id = msg[12:]
            while self._primus_waiters:
                w = self._primus_waiters.popleft()
                if not w.done():
                    w.set_result(self._id)
                    break
        if self._listeners:
            self._emit("primus", msg)
        return reply

    def _dispatch(self, msg: Any, event: str | None) -> None:
        if self._listeners:
            self._emit("message", msg)
            if event is not None:
                self._emit(event, msg)
        if self._subs:
            for sub in self._subs:
                sub._put(msg)

    def _emit(self, event: str, arg: Any) -> None:
        callbacks = self._listeners.get(event)
        if not callbacks:
            if event == "error":
                log.warning("%s", arg)
            return
        for cb in tuple(callbacks):
            try:
                result = cb(arg)
                if inspect.isawaitable(result):
                    task: asyncio.Task[Any] = asyncio.ensure_future(result)
                    self._callback_tasks.add(task)
                    task.add_done_callback(self._callback_done)
            except Exception:
                log.exception("%r callback %r failed", event, cb)

    def _callback_done(self, task: asyncio.Task[Any]) -> None:
        self._callback_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("event callback failed", exc_info=task.exception())

    def _on_close_frame(self, code: int, reason: str) -> None:
        # The codec queued the echo (when we did not start the close); flushed by the caller.
        self.close_code = code
        self.close_reason = reason
        if self._state == _OPEN:
            self._state = _CLOSING

    # -- closing ----------------------------------------------------------------

    def _fail(self, exc: ProtocolError) -> None:
        """The server broke the protocol: the codec's close frame is sent, then we hang up."""
        codec = self._codec
        if codec is not None:
            out = codec.data_to_send()
            if out and self._transport is not None:
                self._write(out)
        self.close_code = exc.code
        self.close_reason = str(exc)
        self._state = _CLOSING
        self._emit("error", exc)
        self._close_transport()

    def _close_transport(self) -> None:
        t = self._transport
        if t is not None:
            self._uncork()
            t.close()

    def _finish(self, code: int, reason: str) -> None:
        """The connection is over: fail what waits, end the streams (unless the client
        reconnects), tell the listeners."""
        if self._state == _CLOSED:
            return
        self._state = _CLOSED
        self._restoring = False
        was_open = self._codec is not None
        retry = (
            self.reconnect_policy is not None
            and not self._final
            and not self.server_closed
            and (was_open or self._reconnector is not None)
        )
        if self.close_code is None:
            self.close_code = code
            self.close_reason = reason
        err = ConnectionClosed(self.close_code, self.close_reason or "", self.server_closed)
        fut = self._connect_fut
        if fut is not None and not fut.done():
            fut.set_exception(err)
            fut.exception()  # connect() may already have given up; no "never retrieved" noise
        pending, self._pending = self._pending, {}
        for f in pending.values():
            if not f.done():
                f.set_exception(err)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._deadlines = []
        while self._primus_waiters:
            w = self._primus_waiters.popleft()
            if not w.done():
                w.set_exception(err)
        self._resume_writing()  # wake writers; their requests fail just below
        if not retry:
            self._end_streams(err)
        if self._closed_fut is not None and not self._closed_fut.done():
            self._closed_fut.set_result(None)
        if self._listeners and was_open:
            self._emit(
                "disconnected",
                {
                    "code": self.close_code,
                    "reason": self.close_reason or "",
                    "server_closed": self.server_closed,
                },
            )
        if retry and self._reconnector is None and not self._final:
            # the lost connection was a whole one: come back with its token
            self._resume_token = self._resume.token
            if self._back is None or self._back.done():
                self._back = asyncio.get_running_loop().create_future()
            self._reconnector = asyncio.ensure_future(self._reconnect())

    def _end_streams(self, err: ConnectionClosed) -> None:
        """No more messages: end the streams, fail whoever waits for a reconnect."""
        subs = list(self._subs)
        self._subs = weakref.WeakSet()
        for sub in subs:
            sub._end()
        back, self._back = self._back, None
        if back is not None and not back.done():
            back.set_exception(err)
            back.exception()  # nobody may be waiting: no "never retrieved" noise

    # -- reconnecting (reconnect=...) ----------------------------------------------

    async def _reconnect(self) -> None:
        """Open a new connection after backoff, recover or rejoin; until it works, the
        client stops, or the policy gives up."""
        policy = self.reconnect_policy
        assert policy is not None
        attempt = 0
        while True:
            attempt += 1
            if policy.retries is not None and attempt > policy.retries:
                self._give_up(attempt - 1)
                return
            delay = policy.delay(attempt)
            self._emit("reconnecting", {"attempt": attempt, "delay": delay})
            await asyncio.sleep(delay)
            try:
                await self._open_connection()
                outcome = await self._restore()
            except (OSError, ClientError, asyncio.TimeoutError) as exc:
                log.debug("reconnect attempt %d to %s failed: %s", attempt, self.url, exc)
                continue
            if self._state != _OPEN:
                continue  # lost again before this task resumed
            break
        self._reconnector = None  # from here on a lost connection starts a new round
        self.recovery = outcome
        back, self._back = self._back, None
        if back is not None and not back.done():
            back.set_result(None)
        if outcome is not None:
            self._emit("recovered", outcome)
        self._emit("reconnected", outcome)

    async def _restore(self) -> dict[str, Any] | None:
        """On a new connection: ``recover`` (first request), then rejoin the rooms not
        restored; the outcome (None: no recovery was tried)."""
        state = self._resume
        token = self._resume_token
        outcome: dict[str, Any] | None = None
        self._restoring = True
        try:
            if token is not None and self._tracking:
                r = await self._internal("recover", **state.recover_fields(token))
                data = r.get("data")
                if r.get("error") is None and isinstance(data, dict):
                    outcome = state.recovered(data)
                    if isinstance(outcome.get("id"), str):
                        self._id = outcome["id"]
                else:
                    self._emit("error", ClientError(f"recover failed: {r.get('error')}"))
            if outcome is None:
                state.push_seq = 0  # a new connection id: its pushes are numbered from 1
                if token is not None:  # the server offered recovery before, not now
                    outcome = {"recovered": False, "reason": "expired", "id": None, "rooms": []}
            self._resume_token = state.token
            restored = outcome["rooms"] if outcome is not None else []
            rejoin = [room for room in state.rooms if room not in restored]
            answers = await asyncio.gather(*(self._internal("roomAdd", room=room) for room in rejoin))
            for room, answer in zip(rejoin, answers, strict=True):
                error = answer.get("error")
                if error and "already in this room" not in str(error):
                    state.left(room)
                    self._emit("error", ClientError(f"could not rejoin room {room!r}: {error}"))
                else:
                    state.joined(room, answer)
            if outcome is not None and outcome.get("id") is None:
                details = (await self._internal("detailsView")).get("data")
                if isinstance(details, dict) and isinstance(details.get("id"), str):
                    self._id = outcome["id"] = details["id"]
        finally:
            self._restoring = False
        return outcome

    async def _internal(self, event: str, **fields: Any) -> dict[str, Any]:
        """A request of the reconnect itself (it may go out while restoring)."""
        self._next_id = mid = self._next_id + 1
        return await self._roundtrip({"event": event, **fields, "messageId": mid}, mid, None, internal=True)

    def _give_up(self, attempts: int) -> None:
        self._reconnector = None
        self._final = True
        text = f"gave up reconnecting after {attempts} attempt{'s' if attempts != 1 else ''}"
        self._end_streams(ConnectionClosed(self.close_code or 1006, text))
        self._emit("error", ClientError(text))

    async def wait_open(self, *, timeout: float | None = None) -> dict[str, Any] | None:
        """Wait until the client is connected again after a lost connection (at once when
        it is open) and return :attr:`recovery`. Raises :class:`ConnectionClosed` when it is
        not connected and not reconnecting (or gives up meanwhile), :class:`ClientTimeout`
        after ``timeout`` seconds (default: no limit)."""
        if self.open:
            return self.recovery
        back = self._back
        if back is None:
            self._check_open()
            raise ConnectionClosed(1006, "not connected")  # connecting: await connect() instead
        try:
            await asyncio.wait_for(asyncio.shield(back), timeout)
        except asyncio.TimeoutError:
            raise ClientTimeout(f"not reconnected within {timeout} s") from None
        return self.recovery

    async def disconnect(self, code: int = 1000, reason: str = "") -> None:
        """Close the connection (closing handshake with ``code``) and wait until it is
        closed; after ``close_timeout`` seconds without the server's answer, hang up.
        Idempotent; safe to call concurrently and on a client that never connected. Stops
        reconnecting for good."""
        self._final = True
        task, self._reconnector = self._reconnector, None
        if task is not None:
            if task is not asyncio.current_task():
                task.cancel()
            self._end_streams(ConnectionClosed(self.close_code or 1006, "disconnect() was called"))
        if self._state == _IDLE or self._state == _CLOSED:
            return
        closed = self._closed_fut
        assert closed is not None
        if self._state == _CONNECTING:
            self._abort_connect()
            return
        if self._state == _OPEN:
            codec = self._codec
            assert codec is not None
            frame = codec.close(code, reason)  # ValueError for a code one may not send
            self._state = _CLOSING
            if frame and self._transport is not None:
                self._write(frame)
                self._uncork()
        if closed.done():
            return
        try:
            await asyncio.wait_for(asyncio.shield(closed), self.close_timeout)
        except asyncio.TimeoutError:
            t = self._transport
            if t is not None:
                t.abort()
            await closed

    async def wait_closed(self) -> None:
        """Wait until the connection is closed (by either side)."""
        if self._closed_fut is not None:
            await asyncio.shield(self._closed_fut)

    # -- sending ------------------------------------------------------------------

    def _write(self, data: bytes) -> None:
        """Write now; with other requests in flight, coalesce what else is written during
        this loop iteration into one more write (one request in flight: no overhead)."""
        cork = self._cork
        if cork is not None:
            cork.append(data)
            return
        t = self._transport
        assert t is not None and self._loop is not None
        t.write(data)
        if len(self._pending) > 1:
            # Requests are pipelined: more writes are likely before the loop comes back.
            self._cork = []
            self._loop.call_soon(self._uncork)

    def _uncork(self) -> None:
        cork = self._cork
        self._cork = None
        if cork and self._transport is not None:
            self._transport.write(cork[0] if len(cork) == 1 else b"".join(cork))

    def _check_open(self) -> None:
        if self._state != _OPEN or self._restoring:
            if self._restoring or self._reconnector is not None:
                raise ConnectionClosed(self.close_code or 1006, "reconnecting")
            if self._state in (_IDLE, _CONNECTING):
                raise ConnectionClosed(1006, "not connected")
            raise ConnectionClosed(self.close_code or 1006, self.close_reason or "", self.server_closed)

    async def _drain(self) -> None:
        assert self._loop is not None
        w = self._loop.create_future()
        self._drain_waiters.append(w)
        await w

    def send_raw(self, data: str | bytes | bytearray | memoryview, *, frame: bool = True) -> None:
        """Send one message as is: ``str`` as a text frame, bytes as a binary frame (for
        tests of bad input). ``frame=False`` writes the bytes to the socket unframed."""
        self._check_open()
        if frame:
            out = encode_frame(_OP_TEXT if isinstance(data, str) else _OP_BINARY, data, True, True)
        elif isinstance(data, str):
            raise TypeError("frame=False needs bytes")
        else:
            out = bytes(data)
        self._write(out)

    def send(self, message: Any) -> None:
        """Send any JSON value as one text frame, expecting no answer."""
        self._check_open()
        self._write(encode_frame(_OP_TEXT, orjson.dumps(message), True, True))

    async def request(self, event: str, /, *, timeout: float | None = None, **fields: Any) -> dict[str, Any]:
        """Send ``{"event": event, **fields, "messageId": n}`` and return the response with
        that ``messageId``. A ``messageId`` field (string or number) replaces the automatic one.
        ``timeout`` defaults to the client's."""
        mid = fields.get("messageId")
        if mid is None:
            msg = {"event": event, **fields}
            self._next_id = mid = self._next_id + 1
            msg["messageId"] = mid
        else:
            msg = {"event": event, **fields}
        return await self._roundtrip(msg, mid, timeout)

    async def action(
        self, name: str, params: Mapping[str, Any] | None = None, *, timeout: float | None = None
    ) -> dict[str, Any]:
        """Run action ``name`` with ``params`` (``apiVersion`` among them if needed); returns
        the response fields — with ``"error"`` set when the action failed."""
        p: dict[str, Any] = {"action": name}
        if params:
            p.update(params)
            p["action"] = name
        self._next_id = mid = self._next_id + 1
        return await self._roundtrip({"event": "action", "params": p, "messageId": mid}, mid, timeout)

    async def _roundtrip(
        self, msg: dict[str, Any], mid: Any, timeout: float | None, internal: bool = False
    ) -> dict[str, Any]:
        if self._state != _OPEN or (self._restoring and not internal):
            self._check_open()
        pending = self._pending
        if mid in pending:
            raise ValueError(f"messageId {mid!r} is already pending")
        loop = self._loop
        assert loop is not None
        fut: asyncio.Future[dict[str, Any]] = loop.create_future()
        if timeout is None:
            timeout = self.timeout
        if timeout is not None:
            self._add_deadline(loop, timeout, mid, fut, msg)
        pending[mid] = fut
        self._write(encode_frame(_OP_TEXT, orjson.dumps(msg), True, True))
        try:
            if self._write_paused:
                await self._drain()
            return await fut
        except asyncio.CancelledError:
            if pending.get(mid) is fut:
                del pending[mid]
            raise

    # Request timeouts: one heap of deadlines and one timer for its head, instead of a
    # timer handle per request (a uvloop timer costs about a quarter of a round trip).
    # Answered requests are not removed from the heap; they are skipped when they reach
    # its head, and the heap is compacted when they outnumber the live ones.

    def _add_deadline(
        self, loop: asyncio.AbstractEventLoop, timeout: float, mid: Any, fut: asyncio.Future[Any], msg: Any
    ) -> None:
        deadline = loop.time() + timeout
        self._seq += 1
        heap = self._deadlines
        heapq.heappush(heap, (deadline, self._seq, mid, fut, msg, timeout))
        if self._timer is None or deadline < self._timer_at:
            self._arm(loop, deadline)
        if len(heap) > 2 * len(self._pending) + 64:
            heap[:] = [e for e in heap if not e[3].done()]
            heapq.heapify(heap)

    def _arm(self, loop: asyncio.AbstractEventLoop, when: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = loop.call_at(when, self._on_timer)
        self._timer_at = when

    def _on_timer(self) -> None:
        self._timer = None
        loop = self._loop
        assert loop is not None
        heap = self._deadlines
        now = loop.time()
        while heap:
            deadline, _, mid, fut, msg, timeout = heap[0]
            if fut.done():
                heapq.heappop(heap)
            elif deadline <= now + 0.001:  # timers may fire a little early
                heapq.heappop(heap)
                self._expire(mid, fut, msg, timeout)
            else:
                self._arm(loop, deadline)
                break

    def _expire(self, mid: Any, fut: asyncio.Future[Any], msg: Any, timeout: float) -> None:
        if self._pending.get(mid) is fut:
            del self._pending[mid]
        what = str(msg.get("event")) if isinstance(msg, dict) else "primus::id::"
        params = msg.get("params") if isinstance(msg, dict) else None
        if what == "action" and isinstance(params, dict):
            what = f"action {params.get('action')!r}"
        fut.set_exception(ClientTimeout(f"no response to {what} (messageId {mid!r}) within {timeout} s"))

    # -- verbs ----------------------------------------------------------------------

    async def room_add(self, room: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Join ``room`` (``{"status": "OK", "data": true}`` on success; a room with history
        adds ``"history": {"offset", "epoch"}``). Listed in :attr:`rooms`."""
        r = await self.request("roomAdd", timeout=timeout, room=room)
        error = r.get("error")
        if not error or "already in this room" in str(error):
            self._resume.joined(room, r)
        return r

    async def room_leave(self, room: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Leave ``room`` (no longer in :attr:`rooms`, not rejoined after a reconnect)."""
        self._resume.left(room)
        return await self.request("roomLeave", timeout=timeout, room=room)

    async def room_view(self, room: str, *, timeout: float | None = None) -> dict[str, Any]:
        """Members of ``room`` (one must be a member)."""
        return await self.request("roomView", timeout=timeout, room=room)

    async def say(self, room: str, message: Any, *, timeout: float | None = None) -> dict[str, Any]:
        """Send ``message`` (any JSON value) to ``room``; returns the acknowledgement. The chat
        message itself arrives as a ``"say"`` event (before or after this returns)."""
        return await self.request("say", timeout=timeout, room=room, message=message)

    async def details_view(self, *, timeout: float | None = None) -> dict[str, Any]:
        """This connection as the server sees it; also sets :attr:`id` and :attr:`details`."""
        r = await self.request("detailsView", timeout=timeout)
        data = r.get("data")
        if isinstance(data, dict):
            self.details = data
            if isinstance(data.get("id"), str):
                self._id = data["id"]
        return r

    async def file(self, name: str, *, timeout: float | None = None) -> dict[str, Any]:
        """A file under the server's ``public/`` folder (``content``, ``mime``, ``length`` …)."""
        return await self.request("file", timeout=timeout, file=name)

    async def documentation(self, *, timeout: float | None = None) -> dict[str, Any]:
        """The actions the server offers, with their inputs."""
        return await self.request("documentation", timeout=timeout)

    async def fetch_id(self, *, timeout: float | None = None) -> str:
        """The connection id, asking the server (``detailsView``) when it is not known yet."""
        if self._id is None:
            await self.details_view(timeout=timeout)
            if self._id is None:
                raise ClientError("the server's detailsView response carries no id")
        return self._id

    async def primus_id(self, *, timeout: float | None = None) -> str:
        """Ask with ``"primus::id::"``; returns the id from ``"primus::id::<id>"``."""
        self._check_open()
        loop = self._loop
        assert loop is not None
        fut: asyncio.Future[str] = loop.create_future()
        self._primus_waiters.append(fut)
        self._write(encode_frame(_OP_TEXT, b'"primus::id::"', True, True))
        t = self.timeout if timeout is None else timeout
        if t is None:
            return await fut
        try:
            return await asyncio.wait_for(fut, t)
        except asyncio.TimeoutError:
            raise ClientTimeout(f"no answer to primus::id:: within {t} s") from None

    async def quit(self, *, timeout: float | None = None) -> None:
        """Send the ``quit`` verb and wait until the server has closed the connection."""
        self._check_open()
        self._final = True
        self.send({"event": "quit"})
        t = self.close_timeout if timeout is None else timeout
        closed = self._closed_fut
        assert closed is not None
        try:
            await asyncio.wait_for(asyncio.shield(closed), t)
        except asyncio.TimeoutError:
            await self.disconnect()

    # -- events -----------------------------------------------------------------

    def on(self, event: str, callback: _CB) -> _CB:
        """Call ``callback(message)`` for every ``event``: ``"welcome"``, ``"say"`` (chat
        messages, context ``user``), ``"alert"``, ``"api"`` (anything else), ``"response"``,
        ``"message"`` (all of them), ``"primus"`` (the Primus control string),
        ``"disconnected"`` (``{"code", "reason", "server_closed"}``), ``"error"`` (a
        :class:`ProtocolError`, or a :class:`ClientError` of a reconnect); with ``reconnect=``
        also ``"reconnecting"`` (``{"attempt", "delay"}``), ``"recovered"`` (the outcome of a
        ``recover``, see :attr:`recovery`) and ``"reconnected"`` (:attr:`recovery`, None
        when no recovery was tried). A coroutine callback runs as a task; a callback's error
        is logged. Returns ``callback``."""
        if event not in EVENTS:
            raise ValueError(f"unknown event {event!r}; one of {sorted(EVENTS)}")
        self._listeners.setdefault(event, []).append(callback)
        return callback

    def off(self, event: str, callback: Callback) -> None:
        """Remove a callback added with :meth:`on` (no error if it is not there)."""
        callbacks = self._listeners.get(event)
        if callbacks and callback in callbacks:
            callbacks.remove(callback)
            if not callbacks:
                del self._listeners[event]

    def messages(self, *, maxsize: int = 4096) -> MessageStream:
        """A stream of every server message from now until the connection closes (ended
        at once when the connection is already closed); with ``reconnect=``, across
        reconnects until the client stops for good."""
        stream = MessageStream(self, maxsize)
        if self._state == _CLOSED and self._reconnector is None:
            stream._end()
        else:
            self._subs.add(stream)
        return stream

    async def wait_for(self, predicate: Callable[[Any], bool], *, timeout: float | None = None) -> Any:
        """The first message from now on for which ``predicate(message)`` is true."""
        t = self.timeout if timeout is None else timeout
        with self.messages() as stream:

            async def find() -> Any:
                async for msg in stream:
                    if predicate(msg):
                        return msg
                self._check_open()
                raise ConnectionClosed(self.close_code or 1006, self.close_reason or "", self.server_closed)

            if t is None:
                return await find()
            try:
                return await asyncio.wait_for(find(), t)
            except asyncio.TimeoutError:
                raise ClientTimeout(f"no matching message within {t} s") from None
