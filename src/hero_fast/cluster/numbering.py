"""A node's delivery of the numbered messages of rooms with history (Redis backend).

Every message of a room with history is numbered in Redis (:data:`~hero_fast.cluster.scripts.SAY`)
and reaches every node, its origin included, from the bus. A node keeps, for each such room it
has members in, where it is in the numbering (epoch, last offset delivered), and delivers the
next message only: a message already delivered is dropped, and a jump in offsets, or the bus
coming back after an outage, makes it read what it missed from the room's stream (``XRANGE``)
and deliver that first, in order, holding the live messages back meanwhile. Only what the
stream no longer has is reported to the room's members, exactly::

    {"context": "api", "event": "missedMessages", "room": "<room>", "from": 18, "to": 25,
     "reason": "history too short", "epoch": "<the numbering from and to refer to>"}

(reason ``epoch changed``: the room's numbering was lost in Redis, ``to`` is then null; a
new numbering then starts at 1 and what its stream has is delivered).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast.cluster import bus as _bus
from hero_fast.cluster.operations import Entry, Numbered, Operations, keep_ms, new_epoch, run
from hero_fast.cluster.resp import RespConnection, RespError, describe
from hero_fast.cluster.signing import Signer
from hero_fast.history import HistoryGap, RoomHistory

if TYPE_CHECKING:
    from hero_fast.chat import ChatRooms

__all__ = ["NumberedRooms"]

log = logging.getLogger("hero_fast.cluster")

_TEXT = 1
#: Live messages of one room held back while it catches up; past this they are dropped
#: and read from the stream instead (the next one shows the jump).
MAX_PENDING = 10_000
#: Seconds before a catch-up that failed while the bus stayed up is tried again, and how
#: many times it is tried before the room's messages are delivered as they come.
RETRY_AFTER = 1.0
MAX_ATTEMPTS = 5

_DOWN = (OSError, ConnectionError, asyncio.TimeoutError, RespError)


class _Cursor:
    """Where this node is in a room's numbering."""

    __slots__ = ("epoch", "generation", "offset", "pending", "syncing", "task")

    def __init__(self) -> None:
        self.epoch: str | None = None  # None: not read from Redis yet
        self.offset = 0
        self.syncing = True  # catching up: live messages wait in pending
        self.pending: list[tuple[int, str, dict[str, Any]]] = []
        self.generation = 0  # of the catch-up that may apply its result
        self.task: asyncio.Future[None] | None = None  # that catch-up


class NumberedRooms:
    """In-order, gap-free delivery of numbered room messages on this node (module doc).

    ``connection()`` returns the command connection while the bus is up (else None);
    ``counters`` is the backend's counter dict."""

    def __init__(
        self,
        chat: ChatRooms,
        ops: Operations,
        signer: Signer,
        connection: Callable[[], RespConnection | None],
        timeout: float,
        max_disconnection_ms: int,
        counters: dict[str, int],
    ) -> None:
        self.chat = chat
        self.ops = ops
        self.signer = signer
        self.connection = connection
        self.timeout = timeout
        self.max_disconnection_ms = max_disconnection_ms
        self.counters = counters
        self._cursors: dict[str, _Cursor] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    def keep(self, ttl_ms: int) -> int:
        """How long a room's numbering outlives its last message or member."""
        return keep_ms(ttl_ms, self.max_disconnection_ms)

    # -- which rooms --------------------------------------------------------------------

    def track(self, room: str, subscribed: asyncio.Future[None] | None) -> asyncio.Future[None] | None:
        """This node now has members in ``room`` (a room with history): learn where its
        numbering is once ``subscribed`` (the room's subscription) is confirmed. Returns
        what to wait for (None while the bus is down: it is read when the bus is back)."""
        cursor = self._cursors.get(room)
        if cursor is None:
            cursor = self._cursors[room] = _Cursor()
        if self.connection() is None:
            return None
        return self._start(room, cursor, subscribed)

    def settled(self, room: str) -> asyncio.Future[None] | None:
        """What a member joining ``room`` now waits for: the room's catch-up in progress, if
        any (its join then answers with where the numbering really is)."""
        cursor = self._cursors.get(room)
        if cursor is None or not cursor.syncing or cursor.task is None or cursor.task.done():
            return None
        return cursor.task

    def untrack(self, room: str) -> None:
        """No member of ``room`` is left here."""
        self._cursors.pop(room, None)

    def tracked(self) -> list[str]:
        return list(self._cursors)

    def suspend(self) -> None:
        """The bus is down: hold live messages back until each room caught up."""
        for cursor in self._cursors.values():
            cursor.syncing = True

    def resume(self) -> None:
        """The bus is back: every room catches up from its stream."""
        for room, cursor in self._cursors.items():
            cursor.syncing = True
            self._start(room, cursor, None)

    def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()

    # -- live messages -------------------------------------------------------------------

    def received(self, room: str, offset: int, epoch: str, payload: dict[str, Any]) -> None:
        """A numbered message of ``room`` from the bus."""
        cursor = self._cursors.get(room)
        if cursor is None:  # not tracked here (no member left): nobody to keep in order for
            self._deliver(room, offset, epoch, payload)
            return
        if cursor.syncing:
            if len(cursor.pending) >= MAX_PENDING:
                cursor.pending.clear()  # read from the stream instead
            cursor.pending.append((offset, epoch, payload))
            return
        if epoch == cursor.epoch:
            if offset <= cursor.offset:
                self.counters["history_duplicates"] += 1
                return
            if offset == cursor.offset + 1:
                cursor.offset = offset
                self._deliver(room, offset, epoch, payload)
                return
        elif offset == 1 or cursor.epoch is None:
            # a new numbering begins (the old one expired or was lost), or this room could
            # not be read from Redis (see _catch_up): follow the bus as it comes
            cursor.epoch, cursor.offset = epoch, offset
            self._deliver(room, offset, epoch, payload)
            return
        # a jump: what came between is read from the stream first
        cursor.syncing = True
        cursor.pending.append((offset, epoch, payload))
        self._start(room, cursor, None)

    def _deliver(self, room: str, offset: int, epoch: str, payload: dict[str, Any]) -> None:
        payload["offset"] = offset
        payload["epoch"] = epoch
        self.counters["delivered_remote"] += self.chat.deliver_remote(room, payload)

    # -- catching up -------------------------------------------------------------------------

    def _start(self, room: str, cursor: _Cursor, subscribed: asyncio.Future[None] | None) -> asyncio.Future[None]:
        cursor.generation += 1
        task = cursor.task = asyncio.ensure_future(self._catch_up(room, cursor, cursor.generation, subscribed))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    def _current(self, room: str, cursor: _Cursor, generation: int) -> bool:
        """Whether a catch-up may still apply what it read."""
        return self._cursors.get(room) is cursor and cursor.generation == generation and cursor.syncing

    async def _catch_up(self, room: str, cursor: _Cursor, generation: int,
                        subscribed: asyncio.Future[None] | None) -> None:
        for attempt in range(1, MAX_ATTEMPTS + 1):
            try:
                if subscribed is not None:
                    await asyncio.shield(subscribed)
                    subscribed = None
                await self._read(room, cursor, generation)
                return
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not self._current(room, cursor, generation) or self.connection() is None:
                    return  # superseded, or the bus is down: resume() starts again
                if not isinstance(exc, (*_DOWN, _bus.BusError)):
                    log.error("cluster: catching up room %r failed", room[:80], exc_info=True)
                else:
                    log.info("cluster: catching up room %r failed (attempt %d): %s", room[:80], attempt,
                             describe(exc))
            await asyncio.sleep(RETRY_AFTER)
        if self._current(room, cursor, generation):
            log.warning("cluster: room %r could not be read from Redis %d times; its messages are delivered "
                        "as they come, without refill", room[:80], MAX_ATTEMPTS)
            cursor.epoch = None
            self._release(room, cursor)

    async def _read(self, room: str, cursor: _Cursor, generation: int) -> None:
        conn = self.connection()
        r = self.chat.rooms.get(room)
        if conn is None or r is None or r.history is None or not self._current(room, cursor, generation):
            return
        keep = self.keep(r.history.ttl_ms)
        what = f"reading the history of {room!r:.80}"
        entries: list[Entry] = []
        if cursor.epoch is None:  # first read: the members get what comes after it
            now = await run(conn, self.ops.position(room, keep), self.timeout, what)
            self.counters["history_syncs"] += 1
        else:
            current, entries = await run(conn, self.ops.since(room, cursor.epoch, cursor.offset), self.timeout, what)
            if current is None:  # Redis lost the room's numbering: a new one starts
                now = await run(conn, self.ops.position(room, keep), self.timeout, what)
            else:
                now = current
            self.counters["history_catch_ups"] += 1
        if self._current(room, cursor, generation):
            self._apply(room, cursor, now, entries)

    def _apply(self, room: str, cursor: _Cursor, now: Numbered, entries: list[Entry]) -> None:
        if cursor.epoch is not None:
            start = cursor.offset + 1
            if now.epoch != cursor.epoch:
                self._lost(room, cursor.epoch, start, None, "epoch changed")
                start = 1
            entries = [e for e in entries if e.offset >= start]
            first = entries[0].offset if entries else now.offset + 1
            if first > start:
                self._lost(room, now.epoch, start, first - 1, "history too short")
            channel = self.ops.keys.room(room)
            for entry in entries:
                payload = self._payload(channel, entry)
                if payload is not None:
                    self.counters["history_refilled"] += 1
                    self._deliver(room, entry.offset, now.epoch, payload)
        cursor.epoch, cursor.offset = now.epoch, now.offset
        r = self.chat.rooms.get(room)
        if r is not None and r.history is not None:
            r.history.observe(now.offset, now.epoch)
        self._release(room, cursor)

    def _release(self, room: str, cursor: _Cursor) -> None:
        """Deliver what waited, in order (what the catch-up had is dropped as delivered)."""
        cursor.syncing = False
        pending, cursor.pending = cursor.pending, []
        for offset, epoch, payload in pending:
            self.received(room, offset, epoch, payload)

    def _payload(self, channel: bytes, entry: Entry) -> dict[str, Any] | None:
        """The chat payload of a stream entry (checked as a bus message; its signature too)."""
        try:
            body, _, _ = self.signer.open(channel, entry.data)
            _, msg = _bus.decode(body, _bus.SAY_KINDS, self.ops.max_bus)
        except _bus.BusError as exc:
            self.counters[exc.counter] += 1
            return None
        payload: dict[str, Any] = msg["p"]
        return payload

    def _lost(self, room: str, epoch: str | None, first: int, last: int | None, reason: str) -> None:
        """Tell the room's members here what they cannot get back."""
        r = self.chat.rooms.get(room)
        if r is None or not r.members:
            return
        notice = {"context": "api", "event": "missedMessages", "room": room, "from": first, "to": last,
                  "reason": reason, "epoch": epoch}
        self.counters["missed_notices"] += r.deliver(encode_frame(_TEXT, orjson.dumps(notice)))
        log.warning("cluster: room %r lost messages %d..%s of epoch %s here (%s)", room[:80], first,
                    "?" if last is None else last, epoch, reason)

    # -- recovery: what a returning client missed -----------------------------------------------

    async def since(self, room: str, offset: int, epoch: str | None) -> tuple[list[bytes], HistoryGap | None]:
        """``(messages, gap)`` of ``room`` after ``offset`` of ``epoch``, from the stream, as
        :meth:`hero_fast.history.RoomHistory.since` answers in one process."""
        r = self.chat.rooms.get(room)
        if r is None or r.history is None:
            return [], HistoryGap("no history")
        conn = self.connection()
        if conn is None:
            raise ConnectionError("the cluster bus is down")
        current, entries = await run(conn, self.ops.since(room, epoch, offset), self.timeout,
                                     f"reading the history of {room!r:.80}")
        # the answer of one process: the stream's entries in a RoomHistory of their own
        kept = RoomHistory(max(1, len(entries)), r.history.ttl_ms)
        kept.epoch = current.epoch if current is not None else new_epoch()
        channel = self.ops.keys.room(room)
        for entry in entries:
            payload = self._payload(channel, entry)
            if payload is not None:
                kept.append(entry.offset, entry.sent_at,
                            orjson.dumps({**payload, "offset": entry.offset, "epoch": kept.epoch}))
        kept.offset = current.offset if current is not None else 0
        return kept.since(offset, epoch)
