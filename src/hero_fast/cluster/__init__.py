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

from typing import TYPE_CHECKING, Any

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

    def publish_broadcast(self, body: bytes) -> None:
        """``body`` (a push's JSON) was queued on every local connection; deliver it to every
        connection of the other nodes."""

    # -- server push ------------------------------------------------------------------

    async def send(self, connection_id: str, message: Any) -> bool:
        """Hand ``message`` to the node where the connection ``connection_id`` lives (it is
        not in this process: ``api.connections.send`` checked). True when a node took it
        (delivery over the bus is at-most-once); False when no node has that connection."""
        return False

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
