"""The cluster backend: where rooms, membership and cross-process messages live.

``api.cluster`` is one of:

- :class:`MemoryBackend` (the default, ``redis_url`` unset): one process, rooms in memory.
  Every hook is a no-op and the chat layer's fan-out path is exactly the single-process
  one (encode once, frame once, ``hero_fast._transport.fanout``).
- :class:`hero_fast.cluster.redis_backend.RedisBackend` (``redis_url`` set): several
  processes or machines share rooms, membership, ``say`` and server push through Redis.
  See that module for the data layout and the delivery guarantees (at-most-once).

The chat layer (``hero_fast.chat``) keeps the local truth — which of *this* process's
connections are in which room — and calls the hooks below after each local change; the
backend makes it visible to the other nodes and feeds their messages back into
``api.chat_room``. Server code pushes through ``api.connections.send``/``broadcast`` and
``api.chat_room.broadcast``, which use the backend when the receiver is elsewhere;
``api.cluster.counters`` holds bus and outage counters (none for the memory backend).
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from hero_fast.connections import Sent
from hero_fast.history import HistoryGap
from hero_fast.recovery import MemoryRecoveryStore

if TYPE_CHECKING:
    from hero_fast.app import Api

__all__ = ["ClusterBackend", "ClusterError", "MemoryBackend", "create_backend"]


class ClusterError(RuntimeError):
    """The cluster backend cannot work (e.g. Redis unreachable at start); the message says why."""


class ClusterBackend:
    """The interface between the chat layer and a backend. The defaults are the
    single-process behaviour, so :class:`MemoryBackend` needs nothing more."""

    #: True when membership and messages are shared with other processes.
    distributed: bool = False
    #: This process's id in the cluster.
    node_id: str = "local"

    def __init__(self, api: Api) -> None:
        self.api = api
        self.counters: dict[str, int] = {}
        cfg = api.config["recovery"]
        self._recovery = MemoryRecoveryStore(cfg["maxPushes"], cfg["maxPushBytes"], cfg["maxStoredBytes"])

    async def start(self) -> None:
        """Connect and register (called by ``Api.start`` after boot, before listening)."""

    async def stop(self) -> None:
        """Sweep this node's members and connections, deregister, disconnect (called by
        ``Api.stop`` after every connection is closed)."""

    # -- hooks the chat layer calls after a local change -------------------------------

    def room_added(self, room: str) -> None:
        """``room`` was created here."""

    def room_destroyed(self, room: str) -> None:
        """``room`` was destroyed here (its local members are already removed)."""

    def member_joined(self, room: str, connection_id: str, joined_at: int, first: bool) -> Any:
        """A local connection joined; ``first``: no other local member. May return an
        awaitable the join waits for (e.g. until messages of the room reach this node)."""
        return None

    def member_left(self, room: str, connection_id: str, last: bool) -> None:
        """A local connection left; ``last``: no local member remains."""

    def remote_members(self, room: str) -> Any:
        """Members of ``room`` on other nodes: None (there are none), or an awaitable of
        ``{connection id: joinedAt ms}``."""
        return None

    #: Most bytes of one chat payload (JSON) the bus carries; None = no limit.
    max_payload: int | None = None

    def publish_say(self, room: str, body: bytes) -> None:
        """``body`` (the chat payload's JSON) was delivered locally; deliver it elsewhere."""

    def publish_say_history(self, room: str, body: bytes, size: int, ttl_ms: int) -> None:
        """(distributed backends) ``body`` (a chat payload's JSON, without ``offset`` and
        ``epoch``) goes into the room's shared history — numbered there, keeping the last
        ``size`` for ``ttl_ms`` — and is then delivered from the bus on every node, this one
        included (``api.chat_room.deliver_remote``), so the numbering is the same everywhere."""
        raise NotImplementedError(f"{type(self).__name__} does not keep room history")

    def publish_broadcast(self, body: bytes) -> None:
        """``body`` (a push's JSON) was queued on every local connection; deliver it to every
        connection of the other nodes."""

    # -- server push ------------------------------------------------------------------

    async def send(self, connection_id: str, message: Any) -> Sent:
        """Hand ``message`` to the node where the connection ``connection_id`` lives (it is
        not in this process: ``api.connections.send`` checked): ``Sent.REMOTE`` when a node
        took it (delivery over the bus is at-most-once), ``Sent.HELD`` when the connection
        dropped and may recover (:meth:`recovery_hold`), else ``Sent.NOWHERE``."""
        held = self.api.recovery.hold(connection_id, message)
        if inspect.isawaitable(held):
            held = await held
        return Sent.HELD if held else Sent.NOWHERE

    # -- connection state recovery (hero_fast.recovery); in this process by default --------

    def recovery_save(self, key: str, state: bytes, connection_id: str, ttl_ms: int) -> None:
        """Keep ``state`` (JSON) of the dropped connection ``connection_id`` under ``key``
        (its token's hash) for ``ttl_ms``."""
        self._recovery.save(key, state, connection_id, ttl_ms)

    def recovery_take(self, key: str) -> Any:
        """Remove and return what was kept under ``key``: ``(state, held pushes, how many
        held pushes were dropped)``, or None (unknown or expired); may return an awaitable."""
        return self._recovery.take(key)

    def recovery_hold(self, connection_id: str, push: bytes) -> Any:
        """Keep ``push`` (JSON) for the dropped connection ``connection_id``: True when its
        state is kept; may return an awaitable."""
        return self._recovery.hold(connection_id, push)

    def history_since(self, room: str, offset: int, epoch: str | None) -> Any:
        """``(messages, gap)``: the messages of ``room`` after ``offset`` of ``epoch`` still
        kept (JSON bytes, oldest first) and a :class:`~hero_fast.history.HistoryGap` for
        what is missing before them, or None; may return an awaitable of it."""
        r = self.api.chat_room.rooms.get(room)
        if r is None or r.history is None:
            return [], HistoryGap("no history")
        return r.history.since(offset, epoch)

    def stats(self) -> dict[str, Any]:
        """Counters and state, for status pages and metrics."""
        return {"backend": type(self).__name__, "node": self.node_id, **self.counters}


class MemoryBackend(ClusterBackend):
    """One process, rooms in memory (the embedded default)."""


def create_backend(api: Api) -> ClusterBackend:
    """The backend ``api.config`` asks for (the Redis one is imported only when used)."""
    if api.config.get("redis_url"):
        from hero_fast.cluster.redis_backend import RedisBackend

        return RedisBackend(api)
    return MemoryBackend(api)
