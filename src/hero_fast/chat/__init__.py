"""Chat rooms: membership, say/broadcast with encode-once fan-out, chat middleware.

The embedded default keeps rooms in this process. A message for a room is
JSON-encoded once, framed once, and the same bytes are queued on every member.
Chat ``say`` middleware runs once per message (not once per receiver, as
actionhero's ``onSayReceive`` does), which is what lets the fan-out encode once.

With a distributed cluster backend (``redis_url``, see ``hero_fast.cluster``) this
module still holds the local truth — which of this process's connections are in which
room — and tells ``api.cluster`` after every change: a ``say`` is delivered to the local
members first and then published once for the other nodes, each of which encodes and
frames it once for its own members (``deliver_remote``); say middleware runs only on the
node the message came from. ``members()``/``view()`` then count every node's members and
return an awaitable. Room names are shared: ``add``/``destroy`` on one node reach the
others within milliseconds.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast._transport import Connection as WsConnection
from hero_fast._transport import fanout
from hero_fast.history import RoomHistory, history_spec
from hero_fast.middleware import ChatMiddleware

if TYPE_CHECKING:
    from hero_fast.app import Api
    from hero_fast.connections import Connection

__all__ = ["ChatError", "ChatMiddleware", "ChatRooms", "Room"]

log = logging.getLogger("hero_fast.chat")

_TEXT = 1


class ChatError(Exception):
    """A chat request refused; the text goes back to the client as the verb error."""


class Room:
    """A room and its local members (connection id → (connection, joined-at ms))."""

    __slots__ = ("_others", "_sockets", "history", "members", "name", "replaying")

    def __init__(self, name: str, history: RoomHistory | None = None) -> None:
        self.name = name
        self.members: dict[str, tuple[Connection, int]] = {}
        self.history = history
        #: members catching up after a reconnect (hero_fast.recovery): connection id → the
        #: (offset, frame) pairs that arrived meanwhile, sent once their replay is done
        self.replaying: dict[str, list[tuple[int | None, bytes]]] = {}
        self._sockets: list[WsConnection] | None = None
        self._others: list[Connection] = []

    def sockets(self) -> list[WsConnection]:
        """The members' engine WebSockets (cached until membership changes)."""
        socks = self._sockets
        if socks is None:
            socks = []
            others: list[Connection] = []
            for cid, (c, _) in self.members.items():
                if cid in self.replaying:
                    continue
                if isinstance(c.ws, WsConnection):  # the engine's (a subclass for asyncio)
                    socks.append(c.ws)
                elif c.ws is not None:
                    others.append(c)  # e.g. hero_fast.testing's in-process connections
            self._sockets = socks
            self._others = others
        return socks

    def deliver(self, frame: bytes, offset: int | None = None) -> int:
        """Queue ``frame`` on every member: one fan-out over the engine sockets, then any
        member with another kind of socket; a member still replaying what it missed gets it
        after the replay (``offset`` tells whether the replay already had it)."""
        n = fanout(frame, self.sockets())
        for conn in self._others:
            n += conn.send_frame(frame)
        if self.replaying:
            for pending in self.replaying.values():
                pending.append((offset, frame))
        return n

    def replayed(self, connection: Connection, upto: int | None) -> None:
        """``connection`` got the replay up to offset ``upto``: send what arrived meanwhile
        (but what the replay had) and put it back in the fan-out."""
        pending = self.replaying.pop(connection.id, None)
        self._sockets = None
        for offset, frame in pending or ():
            if upto is None or offset is None or offset > upto:
                connection.send_frame(frame)


def _now_ms() -> int:
    return int(time.time() * 1000)


class ChatRooms:
    """The server-side chat API: ``add``, ``destroy``, ``exists``, ``broadcast``,
    ``add_member``, ``remove_member``, ``members``, ``view``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.rooms: dict[str, Room] = {}
        self._middleware: list[ChatMiddleware] = []
        self.cluster = cluster = api.cluster
        # The distributed backend, or None: the one check the fan-out path makes.
        self._bus = cluster if cluster.distributed else None
        general = api.config["general"]
        self.default_history: dict[str, Any] = general["roomHistory"]
        #: chat messages queued on members of this process so far, and those a member could
        #: not take (it was closing): for metrics
        self.delivered = 0
        self.undeliverable = 0
        self.max_rooms_per_connection: int = general["maxRoomsPerConnection"]
        self.max_room_name_length: int = general["maxRoomNameLength"]

    # -- rooms ---------------------------------------------------------------

    def check_name(self, room: Any) -> str:
        if not isinstance(room, str) or not room:
            raise ChatError("room name must be a non-empty string")
        if len(room) > self.max_room_name_length:
            raise ChatError(f"room name longer than {self.max_room_name_length} characters")
        if not room.isprintable():
            raise ChatError("room name contains control characters")
        return room

    def _new_room(self, room: str, options: dict[str, Any] | None) -> Room:
        try:
            size, ttl = history_spec(self.default_history, options, f"room {room!r}")
        except ValueError as exc:
            raise ChatError(str(exc)) from None
        return Room(room, RoomHistory(size, ttl) if size else None)

    def add(self, room: str, history: dict[str, Any] | None = None) -> None:
        """Create ``room`` (on every node, with a cluster backend). ``history``
        (``{"size": n, "ttl": ms}``) overrides ``general.roomHistory`` for it."""
        self.check_name(room)
        if room in self.rooms:
            raise ChatError("room exists")
        self.rooms[room] = self._new_room(room, None if history is None else {"history": history})
        self.cluster.room_added(room)

    def exists(self, room: str) -> bool:
        return room in self.rooms

    def destroy(self, room: str) -> None:
        """Remove a room (on every node); its members are told with an ``alert`` push."""
        if room not in self.rooms:
            raise ChatError("room does not exist")
        self.destroy_local(room)
        self.cluster.room_destroyed(room)

    def destroy_local(self, room: str) -> bool:
        """Forget ``room`` here and alert its local members (the cluster backend calls
        this when another node destroyed it). False when it did not exist here."""
        r = self.rooms.pop(room, None)
        if r is None:
            return False
        if r.members:
            frame = encode_frame(_TEXT, orjson.dumps(
                {"message": "this room has been deleted", "room": room, "context": "alert"}))
            for conn, _ in r.members.values():
                if room in conn.rooms:
                    conn.rooms.remove(room)
                conn.send_frame(frame)
            r.members.clear()
            r._sockets = None
        return True

    def add_local(self, room: str, history: dict[str, Any] | None = None) -> bool:
        """Know ``room`` here without telling other nodes (the cluster backend calls this
        for rooms made elsewhere, with their history options when the bus carried them).
        False when the name or the options are refused or the room is already known."""
        try:
            self.check_name(room)
            if room in self.rooms:
                return False
            self.rooms[room] = self._new_room(room, None if history is None else {"history": history})
        except ChatError:
            return False
        return True

    # -- membership ------------------------------------------------------------

    def _room(self, room: Any) -> Room:
        r = self.rooms.get(self.check_name(room))
        if r is None:
            raise ChatError("room does not exist")
        return r

    def add_member(self, conn: Connection, room: str) -> Any:
        """Join ``room``; returns an awaitable when async join middleware runs, and with a
        distributed backend (the join then completes once the room's messages from other
        nodes reach this one and the membership is visible to them)."""
        r = self._room(room)
        if conn.id in r.members:
            raise ChatError(f"connection already in this room ({room})")
        if len(conn.rooms) >= self.max_rooms_per_connection:
            raise ChatError(f"connection is already in {self.max_rooms_per_connection} rooms, the most allowed")
        return self._then(self._hooks("join", conn, room), lambda: self._join(conn, r))

    def _join(self, conn: Connection, r: Room) -> Any:
        if conn.destroyed or self.rooms.get(r.name) is not r:
            raise ChatError("room does not exist" if not conn.destroyed else "connection is gone")
        if conn.id in r.members:
            return True
        joined = _now_ms()
        first = not r.members
        r.members[conn.id] = (conn, joined)
        r._sockets = None
        conn.rooms.append(r.name)
        pending = self.cluster.member_joined(r.name, conn.id, joined, first)
        if pending is None:
            return True

        async def joined_everywhere() -> bool:
            await pending
            return True

        return joined_everywhere()

    def rejoin(self, conn: Connection, room: str) -> Any:
        """Put a recovering connection back in ``room`` (hero_fast.recovery): no join
        middleware (it allowed the join before the connection dropped), and what the room
        says meanwhile waits until the connection's replay is done (``Room.replayed``).
        May return an awaitable, as :meth:`add_member`."""
        r = self._room(room)
        if conn.id in r.members:
            return True
        r.replaying[conn.id] = []
        return self._join(conn, r)

    def remove_member(self, conn: Connection, room: str) -> Any:
        r = self._room(room)
        if conn.id not in r.members:
            raise ChatError(f"connection not in this room ({room})")
        return self._then(self._hooks("leave", conn, room), lambda: self._leave(conn, r))

    def _leave(self, conn: Connection, r: Room) -> bool:
        self._drop(conn.id, r)
        if r.name in conn.rooms:
            conn.rooms.remove(r.name)
        return True

    def _drop(self, connection_id: str, r: Room) -> None:
        if r.members.pop(connection_id, None) is not None:
            r.replaying.pop(connection_id, None)
            r._sockets = None
            self.cluster.member_left(r.name, connection_id, not r.members)

    def remove_from_all(self, conn: Connection) -> None:
        """Leave every room at once (disconnect): no middleware can keep a dead
        connection in a room, so leave hooks run afterwards and only observe."""
        rooms, conn.rooms = conn.rooms, []
        for name in rooms:
            r = self.rooms.get(name)
            if r is not None:
                self._drop(conn.id, r)
        for name in rooms:
            try:
                result = self._hooks("leave", conn, name)
                if inspect.isawaitable(result):
                    self.api.spawn(result, "chat leave middleware")
            except Exception:
                log.exception("chat leave middleware failed on disconnect")

    def members(self, room: str) -> Any:
        """``{connection id: {"id", "joinedAt"}}`` of every member. With a distributed
        backend the members of every node are counted and this returns an awaitable
        of the dict (``inspect.isawaitable`` tells)."""
        r = self._room(room)
        local = {cid: {"id": cid, "joinedAt": joined} for cid, (_, joined) in r.members.items()}
        remote = self.cluster.remote_members(room)
        if remote is None:
            return local

        async def everywhere() -> dict[str, dict[str, Any]]:
            for cid, joined in (await remote).items():
                if cid not in local:
                    local[cid] = {"id": cid, "joinedAt": joined}
            return local

        return everywhere()

    def view(self, room: str) -> Any:
        """The ``roomView`` data: ``{"room", "members", "membersCount"}`` (an awaitable
        of it with a distributed backend, as for ``members``)."""
        members = self.members(room)
        if not inspect.isawaitable(members):
            return {"room": room, "members": members, "membersCount": len(members)}

        async def everywhere() -> dict[str, Any]:
            m = await members
            return {"room": room, "members": m, "membersCount": len(m)}

        return everywhere()

    # -- messages ----------------------------------------------------------------

    def broadcast(self, room: str, message: Any, sender: Connection | None = None) -> Any:
        """Send ``message`` (any JSON value) to every member of ``room``.

        Runs ``say`` middleware once, then encodes and frames once. Returns the
        number of local members it was queued for, or an awaitable of it when async
        middleware ran. With a distributed backend the message is then published once
        for the other nodes (at-most-once; a payload over the bus cap is refused with
        ChatError before anyone gets it).
        """
        r = self._room(room)
        payload: dict[str, Any] = {
            "message": message,
            "room": room,
            "from": sender.id if sender is not None else 0,
            "context": "user",
            "sentAt": _now_ms(),
        }
        if not self._middleware:
            return self.deliver(r, payload)
        return self._then(self._say_hooks(sender, room, payload), lambda p: self.deliver(r, p), pass_value=True)

    def deliver(self, r: Room, payload: dict[str, Any]) -> int:
        """Encode once, frame once, queue the same bytes on every local member; then,
        with a distributed backend, publish the same JSON once for the other nodes.

        A room with history numbers the message first (``offset``, ``epoch``) and keeps it.
        With a distributed backend the shared history numbers it, in Redis, and every node
        (this one included) delivers it from the bus, so members everywhere see the same
        offsets in the same order."""
        bus = self._bus
        h = r.history
        if bus is None:
            if h is None:
                if not r.members:
                    return 0
                n = r.deliver(encode_frame(_TEXT, orjson.dumps(payload)))
            else:
                offset = h.next_offset()
                payload["offset"] = offset
                payload["epoch"] = h.epoch
                body = orjson.dumps(payload)
                h.append(offset, payload.get("sentAt") or _now_ms(), body)
                if not r.members:
                    return 0
                n = r.deliver(encode_frame(_TEXT, body), offset)
            self._count(r, n)
            return n
        body = orjson.dumps(payload)
        if len(body) > bus.max_payload:  # type: ignore[operator]
            raise ChatError(f"message too large for the cluster bus ({len(body)} bytes; the most is "
                            f"{bus.max_payload})")
        if h is not None:
            bus.publish_say_history(r.name, body, h.size, h.ttl_ms)
            return 0  # delivered here too when it comes back from the bus, numbered
        n = r.deliver(encode_frame(_TEXT, body)) if r.members else 0
        self._count(r, n)
        bus.publish_say(r.name, body)
        return n

    def _count(self, r: Room, queued: int) -> None:
        self.delivered += queued
        self.undeliverable += len(r.members) - queued

    def deliver_remote(self, room: str, payload: dict[str, Any]) -> int:
        """A chat payload from the bus (another node's, or a numbered one of a room with
        history, this node's own included): encode once, frame once, queue on every local
        member of ``room`` (no middleware: it ran on the node it came from)."""
        r = self.rooms.get(room)
        if r is None:
            return 0
        offset = payload.get("offset")
        h = r.history
        if h is not None and type(offset) is int:
            h.observe(offset, payload.get("epoch"))
        if not r.members:
            return 0
        n = r.deliver(encode_frame(_TEXT, orjson.dumps(payload)), offset if type(offset) is int else None)
        self._count(r, n)
        return n

    def position(self, room: str) -> dict[str, Any] | None:
        """``{"offset", "epoch"}`` of the last message of ``room`` this node knows, for a room
        with history (None without): a member that joins now gets what comes after it."""
        r = self.rooms.get(room)
        if r is None or r.history is None:
            return None
        return {"offset": r.history.offset, "epoch": r.history.epoch}

    # -- middleware ----------------------------------------------------------------

    def add_middleware(self, middleware: ChatMiddleware) -> None:
        if any(m.name == middleware.name for m in self._middleware):
            raise ValueError(f"chat middleware {middleware.name!r} already exists")
        self._middleware.append(middleware)
        self._middleware.sort(key=lambda m: m.priority)

    def _hooks(self, kind: str, conn: Connection, room: str) -> Any:
        """Run ``kind`` hooks in order; returns None, or an awaitable once one is async."""
        hooks = [getattr(m, kind) for m in self._middleware if getattr(m, kind) is not None]
        for i, hook in enumerate(hooks):
            result = hook(conn, room)
            if inspect.isawaitable(result):
                return self._hooks_async(result, hooks[i + 1:], conn, room)
        return None

    async def _hooks_async(self, first: Any, rest: list[Callable[..., Any]], conn: Connection, room: str) -> None:
        await first
        for hook in rest:
            result = hook(conn, room)
            if inspect.isawaitable(result):
                await result

    def _say_hooks(self, sender: Connection | None, room: str, payload: dict[str, Any]) -> Any:
        hooks = [m.say for m in self._middleware if m.say is not None]
        for i, hook in enumerate(hooks):
            result = hook(sender, room, payload)
            if inspect.isawaitable(result):
                return self._say_async(result, hooks[i + 1:], sender, room, payload)
            if result is not None:
                payload = result
        return payload

    async def _say_async(
        self, first: Any, rest: list[Callable[..., Any]], sender: Connection | None, room: str,
        payload: dict[str, Any],
    ) -> dict[str, Any]:
        result = await first
        if result is not None:
            payload = result
        for hook in rest:
            result = hook(sender, room, payload)
            if inspect.isawaitable(result):
                result = await result
            if result is not None:
                payload = result
        return payload

    @staticmethod
    def _then(pending: Any, step: Callable[..., Any], pass_value: bool = False) -> Any:
        """Run ``step`` after ``pending`` (a value, or an awaitable of one); ``step`` may
        itself return an awaitable, which the result then waits for."""
        if not inspect.isawaitable(pending):
            return step(pending) if pass_value else step()

        async def later() -> Any:
            value = await pending
            result = step(value) if pass_value else step()
            if inspect.isawaitable(result):
                result = await result
            return result

        return later()
