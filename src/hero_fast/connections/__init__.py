"""Connections: the registry of live clients and connection middleware."""

from __future__ import annotations

import enum
import inspect
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast._transport import Connection as WsConnection
from hero_fast._transport import fanout
from hero_fast.connections.connection import Connection
from hero_fast.middleware import ConnectionMiddleware

if TYPE_CHECKING:
    from hero_fast.app import Api

__all__ = ["Connection", "ConnectionMiddleware", "Connections", "Sent"]

_TEXT = 1

log = logging.getLogger("hero_fast.connections")


class Sent(enum.Enum):
    """What :meth:`Connections.send` did with a message; true unless ``NOWHERE``."""

    LOCAL = "local"  #: queued on the connection, which lives in this process
    REMOTE = "remote"  #: handed to the node the connection lives on (through the cluster bus)
    HELD = "held"  #: the connection dropped and may come back (recovery): kept for it
    NOWHERE = "nowhere"  #: no such connection (gone, never existed, or its node is unreachable)

    def __bool__(self) -> bool:
        return self is not Sent.NOWHERE


class Connections:
    """Every live connection of this process by id, the connection middleware, and the one
    push API: :meth:`send` (one connection, wherever it lives) and :meth:`broadcast` (every
    connection of every node)."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.by_id: dict[str, Connection] = {}
        self._middleware: list[ConnectionMiddleware] = []

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, id: str) -> Connection | None:
        return self.by_id.get(id)

    async def send(self, connection_id: str, message: Any) -> Sent:
        """Push ``message`` (any JSON value; by convention a dict with a ``context``) to the
        connection ``connection_id`` wherever it is connected: queued directly when it lives
        in this process, else handed to its node through the cluster backend (delivery over
        the bus is at-most-once), or held for it when it dropped and may still recover.
        Returns :class:`Sent` (false when nobody has it).
        ``connection.send(message)`` is the synchronous fast path for a local connection."""
        conn = self.by_id.get(connection_id)
        if conn is not None:
            return Sent.LOCAL if conn.send(message) else Sent.NOWHERE
        return await self.api.cluster.send(connection_id, message)

    def reopen_as(self, conn: Connection, old_id: str, session: dict[str, Any]) -> None:
        """``conn`` (just connected) takes over the dropped connection ``old_id``: its id and
        ``session`` (hero_fast.recovery). Connection middleware sees what happened: ``destroy``
        for the connection that goes away, then ``create`` for the one that comes back (with
        its restored session), so what middleware keeps per connection id stays right."""
        for m in self._middleware:
            if m.destroy is not None:
                self._run_hook(m, m.destroy, conn)
        new_id = conn.id
        if self.by_id.get(new_id) is conn:
            del self.by_id[new_id]
        conn.id = old_id
        if conn.ws is not None:
            conn.ws.id = old_id
        conn.session = session
        self.by_id[old_id] = conn
        for m in self._middleware:
            if m.create is not None:
                self._run_hook(m, m.create, conn)

    def broadcast(self, message: Any) -> int:
        """Push ``message`` to every WebSocket connection of every node; encoded and framed
        once. Returns how many local connections it was queued for (other nodes deliver to
        theirs, at most once)."""
        body = orjson.dumps(message)
        frame = encode_frame(_TEXT, body)
        sockets = []
        n = 0
        for conn in self.by_id.values():
            ws = conn.ws
            if ws is None or conn.destroyed:
                continue
            if isinstance(ws, WsConnection):
                sockets.append(ws)
            elif conn.send_frame(frame):
                n += 1
        n += fanout(frame, sockets) if sockets else 0
        self.api.cluster.publish_broadcast(body)
        return n

    def add_middleware(self, middleware: ConnectionMiddleware) -> None:
        if any(m.name == middleware.name for m in self._middleware):
            raise ValueError(f"connection middleware {middleware.name!r} already exists")
        self._middleware.append(middleware)
        self._middleware.sort(key=lambda m: m.priority)

    def create(
        self,
        type: str,
        remote_ip: str | None,
        remote_port: int | None,
        fingerprint: str | None = None,
        ws: WsConnection | None = None,
        id: str | None = None,
    ) -> Connection:
        conn = Connection(self.api, type, id or os.urandom(16).hex(), remote_ip, remote_port, fingerprint, ws)
        self.by_id[conn.id] = conn
        for m in self._middleware:
            if m.create is not None:
                self._run_hook(m, m.create, conn)
        return conn

    def destroy(self, conn: Connection) -> None:
        """Leave every room at once, run destroy middleware, forget the connection."""
        if conn.destroyed:
            return
        conn.destroyed = True
        if conn.rooms:
            self.api.chat_room.remove_from_all(conn)
        for m in self._middleware:
            if m.destroy is not None:
                self._run_hook(m, m.destroy, conn)
        self.by_id.pop(conn.id, None)

    def _run_hook(self, m: ConnectionMiddleware, hook: Callable[[Connection], Any], conn: Connection) -> None:
        try:
            result = hook(conn)
            if inspect.isawaitable(result):
                self.api.spawn(result, f"connection middleware {m.name}")
        except Exception:
            log.exception("connection middleware %r failed", m.name)
