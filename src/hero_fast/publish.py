"""Publish to a hero-fast cluster from a process that is not a server: a Django view, a
Celery task, a cron script.

::

    from hero_fast.publish import Publisher

    publisher = Publisher.from_project("/srv/app")    # its redis_url, cluster.prefix, cluster.secret
    publisher.say("lobby", {"text": "deploy finished"})           # every member, on every node
    publisher.send(connection_id, {"context": "alert", "n": 1})  # Sent.REMOTE, HELD or NOWHERE
    publisher.broadcast({"context": "alert", "message": "maintenance at 22:00"})

:class:`Publisher` blocks (one connection, safe to share between threads);
:class:`AsyncPublisher` has the same methods as coroutines. Both go through the same Redis
keys and Lua scripts as the servers (:mod:`hero_fast.cluster.operations`): a message said
in a room with history is numbered (``offset``, ``epoch``) and kept exactly as one said on
a node, a push to a connection that dropped is held for its recovery, and with
``cluster.secret`` every message is signed with it. What is published arrives as if server
code had sent it (``"from": 0`` for a chat message), without chat middleware.

Delivery is that of the cluster bus: at most once live, recoverable where rooms keep history
and connections are within their recovery window (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path
from typing import Any, TypeVar

import orjson

from hero_fast.cluster.operations import Keys, Numbered, Op, Operations, keep_ms, run, run_sync
from hero_fast.cluster.resp import (
    RedisAddress,
    RespConnection,
    RespError,
    SyncRespConnection,
    describe,
    open_connection,
    parse_redis_url,
    redact_url,
)
from hero_fast.cluster.signing import Signer
from hero_fast.connections import Sent
from hero_fast.history import history_spec

__all__ = ["AsyncPublisher", "Numbered", "PublishError", "Publisher", "Sent"]

T = TypeVar("T")
_P = TypeVar("_P", bound="_PublisherBase")

#: ``recovery.maxDisconnectionDuration``'s default: how long the numbering of a room said
#: into with an explicit ``history`` is kept at least (plus a margin).
_RECOVERY_DEFAULT_MS = 120_000


class PublishError(Exception):
    """Publishing failed: Redis unreachable or refusing (the text says what and why), or the
    room does not exist."""


class _PublisherBase:
    """What both publishers share: where Redis is, and the operations."""

    def __init__(
        self,
        redis_url: str,
        *,
        prefix: str = "hero-fast:",
        secret: str | None = None,
        timeout: float = 5.0,
        max_bus_message: int = 2_097_152,
    ) -> None:
        self.url = redis_url
        self.address: RedisAddress = parse_redis_url(redis_url)
        self.timeout = timeout
        self._keys = Keys(prefix)
        self._secret = secret
        self._max_bus = max_bus_message
        self._begin()

    def _begin(self) -> None:
        """A new id on the bus, with its own sequence of signed messages (again in a forked
        child: two processes with one id would have each other's messages refused as replays)."""
        self._pid = os.getpid()
        #: this publisher's id on the bus (what receivers tell its messages apart by)
        self.origin = os.urandom(8).hex()
        self._ops = Operations(self._keys, Signer(self._secret), self.origin, self._max_bus)
        self._name = f"hero-fast-publisher-{self.origin}"

    @classmethod
    def from_project(cls: type[_P], project_dir: str | Path, env: str | None = None, **options: Any) -> _P:
        """A publisher with a project's ``redis_url``, ``cluster.prefix``, ``cluster.secret``,
        ``cluster.commandTimeout`` and ``cluster.maxBusMessage`` (its ``config/`` files and
        ``HERO_FAST_*`` env vars, for ``env`` or ``HERO_FAST_ENV``); ``options`` override them."""
        from hero_fast.config import load_config

        config, _ = load_config(Path(project_dir), env=env)
        url = config.get("redis_url")
        if not url:
            raise PublishError(f"{project_dir}: the project has no redis_url (config or HERO_FAST_REDIS_URL)")
        cluster = config["cluster"]
        settings: dict[str, Any] = {"prefix": cluster["prefix"], "secret": cluster.get("secret"),
                                    "timeout": cluster["commandTimeout"], "max_bus_message": cluster["maxBusMessage"]}
        settings.update(options)
        return cls(url, **settings)

    def _operations(self) -> Operations:
        if os.getpid() != self._pid:  # a forked child (a Celery or gunicorn worker)
            self._begin()
        return self._ops

    def _say(self, room: str, message: Any, history: dict[str, Any] | None) -> Op[Numbered | None]:
        if not isinstance(room, str) or not room:
            raise ValueError("room must be a non-empty string")
        payload = orjson.dumps({"message": message, "room": room, "from": 0, "context": "user",
                                "sentAt": int(time.time() * 1000)})
        spec = None
        if history is not None:
            size, ttl = history_spec({"size": 0, "ttl": 0}, {"history": history}, "history")
            spec = (size, ttl, keep_ms(ttl, _RECOVERY_DEFAULT_MS))
        return self._operations().say(room, payload, spec)

    def _failed(self, exc: BaseException) -> PublishError:
        if isinstance(exc, RespError):
            text = str(exc)
            return PublishError(text[4:] if text.startswith("ERR ") else f"Redis refused it: {text}")
        return PublishError(f"cannot publish through Redis at {redact_url(self.url)}: {describe(exc)}")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {redact_url(self.url)} {self._keys.prefix.decode()!r}>"


class Publisher(_PublisherBase):
    """Publishes from blocking code (see the module doc). ``redis_url``, ``prefix`` and
    ``secret`` are the servers' ``redis_url``, ``cluster.prefix`` and ``cluster.secret``;
    ``timeout`` bounds connecting and each reply (seconds). Connects on first use and again
    after a failure; :meth:`close` (or ``with``) closes the connection."""

    _conn: SyncRespConnection | None = None

    def __init__(self, redis_url: str, **options: Any) -> None:
        super().__init__(redis_url, **options)
        self._lock = threading.Lock()

    def _begin(self) -> None:
        if self._conn is not None:  # in a forked child: its copy of the parent's socket
            self._conn.close()
            self._conn = None
        super()._begin()

    def _run(self, op: Op[T]) -> T:
        with self._lock:
            try:
                conn = self._conn
                if conn is None or conn.closed:
                    conn = self._conn = SyncRespConnection.open(self.address, timeout=self.timeout, name=self._name)
                return run_sync(conn, op)
            except (OSError, ConnectionError, RespError) as exc:
                raise self._failed(exc) from exc

    def say(self, room: str, message: Any, *, history: dict[str, Any] | None = None) -> Numbered | None:
        """Say ``message`` (any JSON value) in ``room`` to its members on every node. In a
        room with history it is numbered and kept: returns its ``Numbered(offset, epoch)``
        (None for a room without history). ``history`` (``{"size", "ttl"}``) numbers it so
        even when the servers did not give the room those options; by default the room's
        own, as the servers wrote them in Redis (PublishError: the room does not exist)."""
        return self._run(self._say(room, message, history))

    def send(self, connection_id: str, message: Any) -> Sent:
        """Push ``message`` to one connection, on whichever node it is: ``Sent.REMOTE``
        (handed to its node), ``Sent.HELD`` (it dropped and may recover: kept for it) or
        ``Sent.NOWHERE``."""
        return self._run(self._operations().send(connection_id, message))

    def broadcast(self, message: Any) -> int:
        """Push ``message`` to every connection of every node; returns how many nodes got it."""
        return self._run(self._operations().broadcast(orjson.dumps(message)))

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Publisher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class AsyncPublisher(_PublisherBase):
    """:class:`Publisher` for asyncio code: the same methods, as coroutines (``async with``,
    or ``await close()``)."""

    _conn: RespConnection | None = None

    def __init__(self, redis_url: str, **options: Any) -> None:
        super().__init__(redis_url, **options)
        self._connecting = asyncio.Lock()

    def _begin(self) -> None:
        self._conn = None  # in a forked child, the parent's connection belongs to the parent's loop
        super()._begin()

    async def _run(self, op: Op[T]) -> T:
        try:
            conn = self._conn
            if conn is None or conn.closed:
                async with self._connecting:
                    conn = self._conn
                    if conn is None or conn.closed:
                        conn = self._conn = await open_connection(self.address, timeout=self.timeout,
                                                                  name=self._name)
            return await run(conn, op, self.timeout, "publishing")
        except (OSError, ConnectionError, asyncio.TimeoutError, RespError) as exc:
            op.close()
            raise self._failed(exc) from exc

    async def say(self, room: str, message: Any, *, history: dict[str, Any] | None = None) -> Numbered | None:
        """As :meth:`Publisher.say`."""
        return await self._run(self._say(room, message, history))

    async def send(self, connection_id: str, message: Any) -> Sent:
        """As :meth:`Publisher.send`."""
        return await self._run(self._operations().send(connection_id, message))

    async def broadcast(self, message: Any) -> int:
        """As :meth:`Publisher.broadcast`."""
        return await self._run(self._operations().broadcast(orjson.dumps(message)))

    async def close(self) -> None:
        if self._conn is not None:
            self._conn.abort()
            self._conn = None

    async def __aenter__(self) -> AsyncPublisher:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
