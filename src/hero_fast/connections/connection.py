"""The application-level connection: what actions, verbs and chat see.

One per WebSocket (type ``"webSocket"``) and one per HTTP action request
(type ``"web"``, destroyed when the response is sent). The WebSocket flavour
wraps the engine's :class:`hero_fast._transport.Connection` (``.ws``).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from hero_fast._transport import Connection as WsConnection
    from hero_fast.app import Api
    from hero_fast.recovery import PushLog

__all__ = ["Connection"]

_TEXT = 1


def now_ms() -> int:
    return int(time.time() * 1000)


class Connection:
    """A client as the application sees it.

    Attributes follow actionhero's names (snake_case here): ``id``, ``type``,
    ``remote_ip``, ``remote_port``, ``fingerprint``, ``connected_at`` (epoch
    ms), ``rooms`` (in join order), ``total_actions``, ``pending_actions``,
    ``params`` (kept across requests of one WebSocket), ``message_count``, and
    ``session``: a dict of the application's own, made on first use, alive as
    long as the connection (one request over HTTP). Keep its values
    JSON-serialisable: a connection that recovers after a reconnect (possibly
    on another node) gets its session back through the cluster backend.

    With connection state recovery on (``recovery.maxDisconnectionDuration``), a
    dict pushed with :meth:`send` carries ``pushSeq`` (1, 2, ... per connection
    id) and the recent pushes are kept (``pushes``) until the client has them.
    """

    __slots__ = (
        "__weakref__",
        "_session",
        "api",
        "close_code",
        "closed_by_server",
        "connected_at",
        "destroyed",
        "fingerprint",
        "id",
        "message_count",
        "params",
        "pending_actions",
        "pushes",
        "recoverable",
        "recovered",
        "recovery_key",
        "remote_ip",
        "remote_port",
        "rooms",
        "silent_beats",
        "total_actions",
        "type",
        "ws",
    )

    _session: dict[str, Any]

    def __init__(
        self,
        api: Api,
        type: str,
        id: str,
        remote_ip: str | None,
        remote_port: int | None,
        fingerprint: str | None = None,
        ws: WsConnection | None = None,
    ) -> None:
        self.api = api
        self.type = type
        self.id = id
        self.remote_ip = remote_ip
        self.remote_port = remote_port
        self.fingerprint = fingerprint or id
        self.ws = ws
        self.connected_at = now_ms()
        self.rooms: list[str] = []
        self.total_actions = 0
        self.pending_actions = 0
        self.message_count = 0
        self.params: dict[str, Any] = {}
        self.destroyed = False
        # how a WebSocket ended (1006: the TCP connection dropped), set before destroy middleware runs
        self.close_code: int | None = None
        # heartbeats sent since this client last said anything (reset on every message)
        self.silent_beats = 0
        # connection state recovery (hero_fast.recovery): the SHA-256 of its token, its
        # numbered pushes, whether it already recovered an old connection
        self.recovery_key: str | None = None
        self.pushes: PushLog | None = None
        #: whether its state is kept when it drops (the server decides: a TCP loss is, a
        #: client's goodbye is not); in destroy middleware: whether it was kept, so the client
        #: may come back with this id within recovery.maxDisconnectionDuration
        self.recoverable = False
        self.recovered = False
        self.closed_by_server = False

    @property
    def session(self) -> dict[str, Any]:
        try:
            return self._session
        except AttributeError:
            # made on first use: most connections never need one (idle memory)
            session: dict[str, Any] = {}
            self._session = session
            return session

    @session.setter
    def session(self, value: dict[str, Any]) -> None:
        if not isinstance(value, dict):
            raise TypeError(f"connection.session must be a dict, not {type(value).__name__}")
        self._session = value

    @property
    def has_session(self) -> bool:
        """Whether ``session`` was ever used (reading it makes one)."""
        return hasattr(self, "_session")

    def send(self, message: Any) -> bool:
        """Push ``message`` (JSON-encodable; by convention a dict with a
        ``context``) to this client. False when it cannot be delivered (an HTTP
        connection, or a WebSocket that is closing)."""
        ws = self.ws
        if ws is None or self.destroyed:
            return False
        self.message_count += 1
        if self.recovery_key is not None and type(message) is dict:
            return ws.send(self.api.recovery.number(self, message), True)
        return ws.send(orjson.dumps(message), True)

    def reply(self, message: Any) -> bool:
        """Send a response to one of this client's requests (never numbered, never kept:
        only pushes are recovered)."""
        ws = self.ws
        if ws is None or self.destroyed:
            return False
        self.message_count += 1
        # the JSON bytes go to the engine as a text message: framed there, never copied when large
        return ws.send(orjson.dumps(message), True)

    def send_frame(self, frame: bytes) -> bool:
        """Queue an already framed message (the encode-once fan-out path)."""
        ws = self.ws
        if ws is None or self.destroyed:
            return False
        self.message_count += 1
        return ws.send_frame(frame)

    def details(self) -> dict[str, Any]:
        """The ``detailsView`` payload."""
        return {
            "id": self.id,
            "fingerprint": self.fingerprint,
            "remoteIP": self.remote_ip,
            "remotePort": self.remote_port,
            "params": self.params,
            "connectedAt": self.connected_at,
            "rooms": list(self.rooms),
            "totalActions": self.total_actions,
            "pendingActions": self.pending_actions,
        }

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close the WebSocket (the server's decision: its state is not kept for recovery,
        whatever the code; the server's own recoverable closes set ``recoverable`` after)."""
        self.closed_by_server = True
        if self.ws is not None:
            self.ws.close(code, reason)

    def __repr__(self) -> str:
        return f"<Connection {self.type} {self.id} {self.remote_ip}:{self.remote_port}>"
