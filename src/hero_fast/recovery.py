"""Connection state recovery: a client that drops comes back with everything it missed.

When a WebSocket drops without the client asking for it (TCP loss, heartbeat timeout, a
server shutdown), the server keeps the connection's id, rooms, ``session`` and recent pushes
for ``recovery.maxDisconnectionDuration``; pushes sent to it meanwhile are held. A client
that reconnects sends, as its first request::

    {"event": "recover", "token": "<token from its welcome>",
     "offsets": {"<room>": {"offset": 17, "epoch": "..."}}, "pushSeq": 5, "messageId": 1}

and gets the old id, its rooms (no ``roomAdd``), the room messages after its offsets (rooms
with history), the pushes after its ``pushSeq``, in order and once each, then the response
``{"recovered": true | false, ...}`` saying exactly what could not be given back. The wire
format is in docs/protocol.md; what is kept and for how long in docs/delivery.md.

The token is 32 random bytes, given in the welcome message, used once, and bound to the
connection's fingerprint; only its SHA-256 is stored. Storage goes through the cluster
backend (this process's memory by default; Redis with ``redis_url``, so a client may come
back to another worker or node).
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast.history import HistoryGap

if TYPE_CHECKING:
    from hero_fast.app import Api
    from hero_fast.connections.connection import Connection

__all__ = ["MemoryRecoveryStore", "PushLog", "Recovery", "RecoveryError", "token_key"]

log = logging.getLogger("hero_fast.recovery")

_TEXT = 1
_TOKEN_HEX = 64


class RecoveryError(Exception):
    """A malformed recover request (answered as a verb error)."""


def token_key(token: str) -> str:
    """What is stored for a token: its SHA-256 (the token itself never is)."""
    return hashlib.sha256(token.encode()).hexdigest()


class PushLog:
    """A connection's numbered pushes: the next ``pushSeq`` and the most recent pushes, kept
    in case the connection drops with them in flight."""

    __slots__ = ("recent", "recent_bytes", "seq")

    def __init__(self, seq: int = 0) -> None:
        self.seq = seq
        self.recent: deque[tuple[int, bytes]] = deque()
        self.recent_bytes = 0

    def number(self, message: dict[str, Any], max_pushes: int, max_bytes: int) -> bytes:
        """``message`` with the next ``pushSeq``, as JSON, remembered."""
        self.seq += 1
        body = orjson.dumps({**message, "pushSeq": self.seq})
        recent = self.recent
        recent.append((self.seq, body))
        self.recent_bytes += len(body)
        while recent and (len(recent) > max_pushes or self.recent_bytes > max_bytes):
            self.recent_bytes -= len(recent.popleft()[1])
        return body


class _Saved:
    __slots__ = ("connection_id", "dropped", "expires", "held", "held_bytes", "state")

    def __init__(self, state: bytes, connection_id: str, expires: float) -> None:
        self.state = state
        self.connection_id = connection_id
        self.expires = expires
        self.held: deque[bytes] = deque()
        self.held_bytes = 0
        self.dropped = 0


class MemoryRecoveryStore:
    """Saved states in this process (the embedded default's storage), each gone at its
    deadline; pushes held for them capped by count and bytes (the oldest dropped first); all
    of it together capped at ``max_total`` bytes, the oldest states given up first (a flood
    of dropped connections costs bounded memory)."""

    def __init__(self, max_pushes: int, max_bytes: int, max_total: int) -> None:
        self.max_pushes = max_pushes
        self.max_bytes = max_bytes
        self.max_total = max_total
        self.total = 0  # bytes of every state and held push
        self.evicted = 0  # states given up to stay under max_total
        self._saved: dict[str, _Saved] = {}
        self._ids: dict[str, str] = {}  # connection id → key

    def __len__(self) -> int:
        return len(self._saved)

    def _expire(self, now: float) -> None:
        # one ttl for all: insertion order is expiry order
        expired = []
        for key, saved in self._saved.items():
            if saved.expires > now:
                break
            expired.append(key)
        for key in expired:
            self._forget(key)

    def _forget(self, key: str) -> _Saved | None:
        saved = self._saved.pop(key, None)
        if saved is not None:
            self.total -= len(saved.state) + saved.held_bytes
            if self._ids.get(saved.connection_id) == key:
                del self._ids[saved.connection_id]
        return saved

    def save(self, key: str, state: bytes, connection_id: str, ttl_ms: int) -> None:
        now = time.monotonic()
        self._expire(now)
        self._saved[key] = _Saved(state, connection_id, now + ttl_ms / 1000.0)
        self._ids[connection_id] = key
        self.total += len(state)
        self._bound()

    def _bound(self) -> None:
        while self.total > self.max_total and self._saved:
            self._forget(next(iter(self._saved)))
            self.evicted += 1

    def take(self, key: str) -> tuple[bytes, list[bytes], int] | None:
        now = time.monotonic()
        self._expire(now)
        saved = self._forget(key)
        if saved is None:
            return None
        return saved.state, list(saved.held), saved.dropped

    def hold(self, connection_id: str, push: bytes) -> bool:
        key = self._ids.get(connection_id)
        saved = None if key is None else self._saved.get(key)
        if saved is None or saved.expires <= time.monotonic():
            return False
        saved.held.append(push)
        saved.held_bytes += len(push)
        self.total += len(push)
        while saved.held and (len(saved.held) > self.max_pushes or saved.held_bytes > self.max_bytes):
            dropped = len(saved.held.popleft())
            saved.held_bytes -= dropped
            self.total -= dropped
            saved.dropped += 1
        self._bound()
        return True


async def _value(result: Any) -> Any:
    return await result if inspect.isawaitable(result) else result


class Recovery:
    """Connection state recovery for one Api: issues tokens, saves the state of connections
    that drop, and answers the ``recover`` verb."""

    def __init__(self, api: Api) -> None:
        self.api = api
        cfg = api.config["recovery"]
        self.ttl_ms: int = cfg["maxDisconnectionDuration"]
        self.max_pushes: int = cfg["maxPushes"]
        self.max_bytes: int = cfg["maxPushBytes"]
        self.enabled = self.ttl_ms > 0
        #: live connections by token key: a client that comes back before the server saw its
        #: old connection drop (a half-open TCP connection) takes it over
        self._live: dict[str, Connection] = {}
        self.counters = {"saved": 0, "recovered": 0, "partial": 0, "refused": 0}

    # -- a connection's life ---------------------------------------------------------------

    def issue(self, conn: Connection) -> str:
        """A fresh token for ``conn`` (sent to it; only its hash is kept), replacing any
        earlier one."""
        if conn.recovery_key is not None:
            self._live.pop(conn.recovery_key, None)
        token = os.urandom(32).hex()
        conn.recovery_key = key = token_key(token)
        self._live[key] = conn
        return token

    def number(self, conn: Connection, message: dict[str, Any]) -> bytes:
        """The JSON of a push to ``conn``, with its ``pushSeq``."""
        pushes = conn.pushes
        if pushes is None:
            pushes = conn.pushes = PushLog()
        return pushes.number(message, self.max_pushes, self.max_bytes)

    def dropped(self, conn: Connection) -> None:
        """``conn`` is gone; keep its state when it did not leave on purpose (before its
        rooms are left and destroy middleware runs)."""
        key = conn.recovery_key
        if key is None:
            conn.recoverable = False
            return
        self._live.pop(key, None)
        if not conn.recoverable:
            return
        try:
            session = orjson.dumps(conn.session) if conn.has_session else b"{}"
        except TypeError:
            log.warning("connection %s: its session is not JSON-serialisable; it is not kept for recovery", conn.id)
            session = b"{}"
        pushes = conn.pushes
        state = orjson.dumps(
            {
                "id": conn.id,
                "fingerprint": conn.fingerprint,
                "rooms": list(conn.rooms),
                "session": orjson.Fragment(session),
                "pushSeq": pushes.seq if pushes is not None else 0,
                "pushes": [orjson.Fragment(body) for _, body in pushes.recent] if pushes is not None else [],
            }
        )
        self.api.cluster.recovery_save(key, state, conn.id, self.ttl_ms)
        self.counters["saved"] += 1

    def hold(self, connection_id: str, message: Any) -> Any:
        """Keep a push for a connection that is away (True when one is; may be awaitable)."""
        if not self.enabled:
            return False
        return self.api.cluster.recovery_hold(connection_id, orjson.dumps(message))

    # -- the recover verb --------------------------------------------------------------------

    async def recover(self, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
        """Answer ``{"event": "recover", ...}`` on ``conn`` (replaying what it missed first)."""
        if not self.enabled:
            raise RecoveryError("connection state recovery is off on this server")
        token, offsets, last_push = self._parse(data)
        if conn.rooms or conn.total_actions or conn.pushes is not None or conn.recovered:
            raise RecoveryError("recover must be the first request of a connection")
        conn.recovered = True
        key = token_key(token)
        old = self._live.get(key)
        if old is not None and old is not conn and old.fingerprint == conn.fingerprint:
            # the old connection is still open here (half-open TCP): it is this client's
            old.recoverable = True
            old.close(1001, "taken over by a recovering client")  # saves its state (dropped) at once
        taken = await _value(self.api.cluster.recovery_take(key))
        state = self._state(taken, conn) if taken is not None else None
        if state is None:
            self.counters["refused"] += 1
            return {"recovered": False, "reason": "expired", "id": conn.id, "rooms": [], "token": self.issue(conn)}
        _, held, dropped = taken
        return await self._restore(conn, state, held, dropped, offsets, last_push)

    @staticmethod
    def _parse(data: dict[str, Any]) -> tuple[str, dict[str, tuple[int, str | None]], int]:
        token = data.get("token")
        if not isinstance(token, str) or len(token) != _TOKEN_HEX:
            raise RecoveryError("recover needs the token of the lost connection")
        raw = data.get("offsets") or {}
        if not isinstance(raw, dict):
            raise RecoveryError("offsets must be an object of room to {offset, epoch}")
        offsets: dict[str, tuple[int, str | None]] = {}
        for room, pos in raw.items():
            if not isinstance(pos, dict) or type(pos.get("offset")) is not int or pos["offset"] < 0:
                raise RecoveryError(f"offsets[{room!r}] must be {{\"offset\": <int >= 0>, \"epoch\": <string>}}")
            epoch = pos.get("epoch")
            offsets[room] = (pos["offset"], epoch if isinstance(epoch, str) else None)
        last_push = data.get("pushSeq", 0)
        if type(last_push) is not int or last_push < 0:
            raise RecoveryError("pushSeq must be an integer >= 0")
        return token, offsets, last_push

    @staticmethod
    def _state(taken: Any, conn: Connection) -> dict[str, Any] | None:
        """The saved state, when it is well-formed and this client's (same fingerprint)."""
        try:
            state = orjson.loads(taken[0])
        except (orjson.JSONDecodeError, TypeError, IndexError):
            return None
        if (
            not isinstance(state, dict)
            or state.get("fingerprint") != conn.fingerprint
            or not isinstance(state.get("id"), str)
            or not isinstance(state.get("rooms"), list)
            or not isinstance(state.get("session"), dict)
            or type(state.get("pushSeq")) is not int
            or not isinstance(state.get("pushes"), list)
        ):
            return None
        return state

    async def _restore(
        self,
        conn: Connection,
        state: dict[str, Any],
        held: list[bytes],
        dropped: int,
        offsets: dict[str, tuple[int, str | None]],
        last_push: int,
    ) -> dict[str, Any]:
        api = self.api
        if state["id"] in api.connections.by_id:
            self.counters["refused"] += 1
            return {"recovered": False, "reason": "expired", "id": conn.id, "rooms": [], "token": self.issue(conn)}
        api.connections.reopen_as(conn, state["id"], state["session"])
        chat = api.chat_room
        lost: dict[str, dict[str, Any]] = {}
        rooms = [r for r in state["rooms"] if isinstance(r, str) and chat.exists(r)]
        for room in state["rooms"]:
            if room not in rooms:
                lost[str(room)] = {"reason": "room destroyed", "from": None, "to": None}
        for room in rooms:
            await _value(chat.rejoin(conn, room))
        for room in rooms:
            gap = await self._replay_room(conn, room, offsets.get(room))
            if gap is not None:
                lost[room] = gap.as_dict()
        pushes_lost = self._replay_pushes(conn, state, held, dropped, last_push)
        response: dict[str, Any] = {
            "recovered": not lost and not pushes_lost,
            "id": conn.id,
            "rooms": list(conn.rooms),
            "token": self.issue(conn),
        }
        if lost or pushes_lost:
            response.update(reason="messages lost", lost=lost, pushesLost=pushes_lost)
            self.counters["partial"] += 1
        else:
            self.counters["recovered"] += 1
        return response

    async def _replay_room(
        self, conn: Connection, room: str, client: tuple[int, str | None] | None
    ) -> HistoryGap | None:
        """Send ``conn`` the messages of ``room`` after the client's offset, then what came
        meanwhile; what cannot be sent."""
        chat = self.api.chat_room
        r = chat.rooms.get(room)
        if r is None:
            return HistoryGap("room destroyed")
        if r.history is None:
            r.replayed(conn, None)
            return HistoryGap("no history")
        if client is None:
            # never got a message of it: it missed whatever came after it left (unknown here)
            r.replayed(conn, None)
            return HistoryGap("no offset")
        offset, epoch = client
        messages: list[bytes]
        gap: HistoryGap | None
        try:
            messages, gap = await _value(self.api.cluster.history_since(room, offset, epoch))
        except Exception as exc:  # the cluster backend is down: what is missing is unknown
            log.warning("replaying room %r for %s failed: %s: %s", room, conn.id, type(exc).__name__, exc)
            r.replayed(conn, None)
            return HistoryGap("history unavailable", offset + 1, None)
        upto: int | None = offset if gap is None or gap.reason != "epoch changed" else None
        for body in messages:
            conn.send_frame(encode_frame(_TEXT, body))
        if messages:
            last = orjson.loads(messages[-1]).get("offset")
            upto = last if type(last) is int else upto
        r.replayed(conn, upto)
        return gap

    def _replay_pushes(
        self, conn: Connection, state: dict[str, Any], held: list[bytes], dropped: int, last_push: int
    ) -> int:
        """Send the pushes after ``last_push``: the recent ones the old connection had sent
        (already numbered), then those held while it was away (numbered now); how many are
        lost."""
        pushes = conn.pushes = PushLog(state["pushSeq"])
        recent = []
        for body in state["pushes"]:
            if isinstance(body, dict) and type(body.get("pushSeq")) is int:
                recent.append(body)
        lost = 0
        first_kept = recent[0]["pushSeq"] if recent else state["pushSeq"] + 1
        if last_push < first_kept - 1:
            lost += first_kept - 1 - last_push
        for body in recent:
            if body["pushSeq"] > last_push:
                conn.send_frame(encode_frame(_TEXT, orjson.dumps(body)))
        lost += dropped
        for raw in held:
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError:
                lost += 1
                continue
            if isinstance(message, dict):
                conn.send_frame(encode_frame(_TEXT, pushes.number(message, self.max_pushes, self.max_bytes)))
            else:
                conn.send_frame(encode_frame(_TEXT, raw))
        return lost
