"""Connections: the registry of live clients and connection middleware."""

from __future__ import annotations

import inspect
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from hero_fast.connections.connection import Connection

if TYPE_CHECKING:
    from hero_fast._transport import Connection as WsConnection
    from hero_fast.app import Api

__all__ = ["Connection", "ConnectionMiddleware", "Connections"]

log = logging.getLogger("hero_fast.connections")


@dataclass
class ConnectionMiddleware:
    """Runs when a connection is created or destroyed (lower priority first).
    ``create``/``destroy`` take the connection; they may be sync or async, and
    an error in one is logged, never fatal to the connection or the server."""

    name: str
    priority: int = 100
    create: Callable[[Connection], Any] | None = None
    destroy: Callable[[Connection], Any] | None = None


class Connections:
    """Every live connection by id, and the connection middleware."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.by_id: dict[str, Connection] = {}
        self._middleware: list[ConnectionMiddleware] = []

    def __len__(self) -> int:
        return len(self.by_id)

    def get(self, id: str) -> Connection | None:
        return self.by_id.get(id)

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
