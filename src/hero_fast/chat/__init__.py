"""Chat rooms: membership, say/broadcast with encode-once fan-out, chat middleware.

The embedded default keeps rooms in this process. A message for a room is
JSON-encoded once, framed once, and the same bytes are queued on every member.
Chat ``say`` middleware runs once per message (not once per receiver, as
actionhero's ``onSayReceive`` does), which is what lets the fan-out encode once.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast._transport import fanout

if TYPE_CHECKING:
    from hero_fast.app import Api
    from hero_fast.connections import Connection

__all__ = ["ChatError", "ChatMiddleware", "ChatRooms", "Room"]

log = logging.getLogger("hero_fast.chat")

_TEXT = 1


class ChatError(Exception):
    """A chat request refused; the text goes back to the client as the verb error."""


@dataclass
class ChatMiddleware:
    """Hooks around chat (lower priority first); each may be sync or async.

    ``join(connection, room)`` and ``leave(connection, room)`` may raise to
    refuse; ``say(connection, room, payload)`` gets the outgoing chat payload
    (``{"message", "room", "from", "context", "sentAt"}``) and may return a
    replacement dict, return ``None`` to keep it, or raise to refuse it.
    """

    name: str
    priority: int = 100
    join: Callable[..., Any] | None = None
    leave: Callable[..., Any] | None = None
    say: Callable[..., Any] | None = None


class Room:
    """A room and its members (connection id → (connection, joined-at ms))."""

    __slots__ = ("members", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.members: dict[str, tuple[Connection, int]] = {}


def _now_ms() -> int:
    return int(time.time() * 1000)


class ChatRooms:
    """The server-side chat API: ``add``, ``destroy``, ``exists``, ``broadcast``,
    ``add_member``, ``remove_member``, ``members``, ``view``."""

    def __init__(self, api: Api) -> None:
        self.api = api
        self.rooms: dict[str, Room] = {}
        self._middleware: list[ChatMiddleware] = []
        general = api.config["general"]
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

    def add(self, room: str) -> None:
        self.check_name(room)
        if room in self.rooms:
            raise ChatError("room exists")
        self.rooms[room] = Room(room)

    def exists(self, room: str) -> bool:
        return room in self.rooms

    def destroy(self, room: str) -> None:
        """Remove a room; its members are told with an ``alert`` push."""
        r = self.rooms.pop(room, None)
        if r is None:
            raise ChatError("room does not exist")
        if r.members:
            frame = encode_frame(_TEXT, orjson.dumps(
                {"message": "this room has been deleted", "room": room, "context": "alert"}))
            for conn, _ in r.members.values():
                if room in conn.rooms:
                    conn.rooms.remove(room)
                conn.send_frame(frame)

    # -- membership ------------------------------------------------------------

    def _room(self, room: Any) -> Room:
        r = self.rooms.get(self.check_name(room))
        if r is None:
            raise ChatError("room does not exist")
        return r

    def add_member(self, conn: Connection, room: str) -> Any:
        """Join ``room``; returns an awaitable when async join middleware runs."""
        r = self._room(room)
        if conn.id in r.members:
            raise ChatError(f"connection already in this room ({room})")
        if len(conn.rooms) >= self.max_rooms_per_connection:
            raise ChatError(f"connection is already in {self.max_rooms_per_connection} rooms, the most allowed")
        return self._then(self._hooks("join", conn, room), lambda: self._join(conn, r))

    def _join(self, conn: Connection, r: Room) -> bool:
        if conn.destroyed or r.name not in self.rooms:
            raise ChatError("room does not exist" if not conn.destroyed else "connection is gone")
        if conn.id not in r.members:
            r.members[conn.id] = (conn, _now_ms())
            conn.rooms.append(r.name)
        return True

    def remove_member(self, conn: Connection, room: str) -> Any:
        r = self._room(room)
        if conn.id not in r.members:
            raise ChatError(f"connection not in this room ({room})")
        return self._then(self._hooks("leave", conn, room), lambda: self._leave(conn, r))

    def _leave(self, conn: Connection, r: Room) -> bool:
        r.members.pop(conn.id, None)
        if r.name in conn.rooms:
            conn.rooms.remove(r.name)
        return True

    def remove_from_all(self, conn: Connection) -> None:
        """Leave every room at once (disconnect): no middleware can keep a dead
        connection in a room, so leave hooks run afterwards and only observe."""
        rooms, conn.rooms = conn.rooms, []
        for name in rooms:
            r = self.rooms.get(name)
            if r is not None:
                r.members.pop(conn.id, None)
        for name in rooms:
            try:
                result = self._hooks("leave", conn, name)
                if inspect.isawaitable(result):
                    self.api.spawn(result, "chat leave middleware")
            except Exception:
                log.exception("chat leave middleware failed on disconnect")

    def members(self, room: str) -> dict[str, dict[str, Any]]:
        r = self._room(room)
        return {cid: {"id": cid, "joinedAt": joined} for cid, (_, joined) in r.members.items()}

    def view(self, room: str) -> dict[str, Any]:
        members = self.members(room)
        return {"room": room, "members": members, "membersCount": len(members)}

    # -- messages ----------------------------------------------------------------

    def broadcast(self, room: str, message: Any, sender: Connection | None = None) -> Any:
        """Send ``message`` (any JSON value) to every member of ``room``.

        Runs ``say`` middleware once, then encodes and frames once. Returns the
        number of members it was queued for, or an awaitable of it when async
        middleware ran.
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
        """Encode once, frame once, queue the same bytes on every member."""
        if not r.members:
            return 0
        frame = encode_frame(_TEXT, orjson.dumps(payload))
        return fanout(frame, [c.ws for c, _ in r.members.values() if c.ws is not None])

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
        """Run ``step`` after ``pending`` (a value, or an awaitable of one)."""
        if not inspect.isawaitable(pending):
            return step(pending) if pass_value else step()

        async def later() -> Any:
            value = await pending
            return step(value) if pass_value else step()

        return later()
