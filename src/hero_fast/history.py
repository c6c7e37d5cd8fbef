"""Room history: the last messages of a room, numbered, so a client that was away can get
what it missed (connection state recovery, ``hero_fast.recovery``).

A room with history numbers its messages: ``offset`` 1, 2, 3, ... and an ``epoch`` that names
the numbering. In one process the numbering lives as long as the process: a ring buffer keeps
the last ``size`` messages for ``ttl`` ms. (With a Redis cluster backend the stream in Redis
holds them and the epoch changes whenever Redis lost them; see ``hero_fast.cluster``.)

:meth:`RoomHistory.since` answers "everything after offset N of epoch E": the messages, or a
:class:`HistoryGap` saying exactly what cannot be given back and why.
"""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

__all__ = ["HistoryGap", "HistorySpec", "RoomHistory", "history_spec"]

HistorySpec = tuple[int, int]
"""``(size, ttl_ms)`` of a room's history; size 0 means none."""


def history_spec(default: Mapping[str, Any], options: Mapping[str, Any] | None, where: str) -> HistorySpec:
    """The history of a room from the configured default (``general.roomHistory``) and the
    room's own ``{"history": {"size": .., "ttl": ..}}`` option. ValueError names ``where``."""
    merged = dict(default)
    own = (options or {}).get("history")
    if own is not None:
        if not isinstance(own, Mapping):
            raise ValueError(f"{where}: history must be a dict with size and ttl, got {own!r}")
        merged.update(own)
    size, ttl = merged.get("size", 0), merged.get("ttl", 0)
    for name, value in (("size", size), ("ttl", ttl)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(f"{where}: history {name} must be an integer >= 0, got {value!r}")
    if size and not ttl:
        raise ValueError(f"{where}: a history with size {size} needs a ttl > 0 (milliseconds)")
    return size, ttl


class HistoryGap:
    """What cannot be given back: ``reason`` (``no history``, ``epoch changed``, ``history too
    short``) and the missing offsets ``first``..``last`` when known."""

    __slots__ = ("first", "last", "reason")

    def __init__(self, reason: str, first: int | None = None, last: int | None = None) -> None:
        self.reason = reason
        self.first = first
        self.last = last

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "from": self.first, "to": self.last}

    def __repr__(self) -> str:
        return f"HistoryGap({self.reason!r}, {self.first}, {self.last})"


def new_epoch() -> str:
    return os.urandom(8).hex()


class RoomHistory:
    """The numbered recent messages of one room, in this process."""

    __slots__ = ("entries", "epoch", "offset", "size", "ttl_ms")

    def __init__(self, size: int, ttl_ms: int) -> None:
        self.size = size
        self.ttl_ms = ttl_ms
        self.epoch = new_epoch()
        self.offset = 0
        # (offset, sent_at ms, the message's JSON): the newest last
        self.entries: deque[tuple[int, int, bytes]] = deque(maxlen=size)

    def next_offset(self) -> int:
        """The offset the next message gets (call :meth:`append` with it)."""
        return self.offset + 1

    def append(self, offset: int, sent_at: int, body: bytes) -> None:
        self.offset = offset
        self.entries.append((offset, sent_at, body))

    def observe(self, offset: int, epoch: Any) -> None:
        """A numbered message of this room came from the shared history (a cluster backend
        numbers them): remember where the numbering is, for :meth:`ChatRooms.position`."""
        if isinstance(epoch, str) and epoch != self.epoch:
            self.epoch = epoch
            self.offset = offset
        elif offset > self.offset:
            self.offset = offset

    def since(self, offset: int, epoch: str | None) -> tuple[list[bytes], HistoryGap | None]:
        """The messages after ``offset`` of ``epoch`` still kept (oldest first), and what is
        missing before them (None: nothing). Another epoch means the numbering the client
        knew is gone: every message kept now is new to it, and what came before is unknown."""
        cutoff = int(time.time() * 1000) - self.ttl_ms
        if epoch != self.epoch:
            return [body for _, sent_at, body in self.entries if sent_at >= cutoff], HistoryGap("epoch changed")
        if offset >= self.offset:
            return [], None
        kept = [(o, body) for o, sent_at, body in self.entries if o > offset and sent_at >= cutoff]
        first_kept = kept[0][0] if kept else self.offset + 1
        gap = HistoryGap("history too short", offset + 1, first_kept - 1) if first_kept > offset + 1 else None
        return [body for _, body in kept], gap
