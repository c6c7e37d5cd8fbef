"""What :class:`hero_fast.client.Client` keeps to come back after a lost connection.

:class:`ReconnectPolicy` says when to try again (exponential backoff with jitter, a bound on
attempts). :class:`RecoveryState` does the bookkeeping of connection state recovery
(docs/delivery.md): the recovery token of the connection, the last ``offset`` and ``epoch``
per room with history, the last ``pushSeq``, and the rooms the client joined. From it the
client builds the ``recover`` request of a new connection, and with it drops what it already
has (a chat message whose offset it has seen in the same epoch, a push whose ``pushSeq`` it
has seen).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

__all__ = ["ReconnectPolicy", "RecoveryState"]


@dataclass(frozen=True)
class ReconnectPolicy:
    """When a client with ``reconnect=`` tries again after a lost connection.

    Attempt ``n`` (1, 2, ...) waits ``min * factor ** (n - 1)`` seconds, ±``jitter`` of it,
    kept within ``[min, max]``; after ``retries`` failed attempts in a row the client gives
    up (``None``: never)."""

    min: float = 0.5
    max: float = 30.0
    factor: float = 2.0
    retries: int | None = 10
    jitter: float = 0.25

    def __post_init__(self) -> None:
        if self.min < 0 or self.max < self.min:
            raise ValueError("ReconnectPolicy needs 0 <= min <= max")
        if self.factor < 1:
            raise ValueError("ReconnectPolicy.factor must be >= 1")
        if self.retries is not None and self.retries < 1:
            raise ValueError("ReconnectPolicy.retries must be >= 1 or None")
        if not 0 <= self.jitter < 1:
            raise ValueError("ReconnectPolicy.jitter must be in [0, 1)")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before attempt ``attempt`` (1, 2, ...)."""
        base = self.min * self.factor ** min(attempt - 1, 64)
        jittered = base * (1 + self.jitter * (2 * random.random() - 1))
        return min(max(jittered, self.min), self.max)


class RecoveryState:
    """A client's recovery bookkeeping, across its connections."""

    __slots__ = ("offsets", "push_seq", "rooms", "token")

    def __init__(self) -> None:
        #: the token of the current connection (its welcome's, then each recover response's)
        self.token: str | None = None
        #: room → ``{"offset": n, "epoch": e}``: the last message (or roomAdd position) of it
        self.offsets: dict[str, dict[str, Any]] = {}
        #: the last push number received on the current connection id
        self.push_seq = 0
        #: the rooms joined, in order (rejoined after a reconnect unless recovered)
        self.rooms: list[str] = []

    def welcomed(self, welcome: dict[str, Any]) -> bool:
        """A connection's welcome: keep its token; whether the server offers recovery."""
        recovery = welcome.get("recovery")
        token = recovery.get("token") if isinstance(recovery, dict) else None
        self.token = token if isinstance(token, str) else None
        return self.token is not None

    def _advance(self, room: str, offset: int, epoch: Any) -> bool:
        known = self.offsets.get(room)
        if known is not None and known["epoch"] == epoch and offset <= known["offset"]:
            return False
        self.offsets[room] = {"offset": offset, "epoch": epoch}
        return True

    def is_new(self, message: dict[str, Any]) -> bool:
        """False for a push or a chat message the client already has (a replay after a
        reconnect); notes the others' numbers. Responses are never numbered."""
        if message.get("context") == "response":
            return True
        seq = message.get("pushSeq")
        if type(seq) is int:
            if seq <= self.push_seq:
                return False
            self.push_seq = seq
        offset = message.get("offset")
        if type(offset) is int and message.get("context") == "user":
            room = message.get("room")
            if isinstance(room, str):
                return self._advance(room, offset, message.get("epoch"))
        return True

    def joined(self, room: str, response: dict[str, Any]) -> None:
        """``room`` was joined; a room with history answered where its numbering is."""
        if room not in self.rooms:
            self.rooms.append(room)
        history = response.get("history")
        if isinstance(history, dict) and type(history.get("offset")) is int:
            self._advance(room, history["offset"], history.get("epoch"))

    def left(self, room: str) -> None:
        if room in self.rooms:
            self.rooms.remove(room)
        self.offsets.pop(room, None)

    def recover_fields(self, token: str) -> dict[str, Any]:
        """The fields of the ``recover`` request for the lost connection of ``token``."""
        offsets = {room: self.offsets[room] for room in self.rooms if room in self.offsets}
        return {"token": token, "offsets": offsets, "pushSeq": self.push_seq}

    def recovered(self, data: dict[str, Any]) -> dict[str, Any]:
        """Take the ``recover`` response's data; returns the outcome to report (the data
        without its token). A refusal (``expired``) means a new connection id."""
        token = data.get("token")
        if isinstance(token, str):
            self.token = token
        outcome = {k: v for k, v in data.items() if k != "token"}
        if outcome.get("reason") == "expired":
            self.push_seq = 0
        for room in outcome.get("rooms") or []:
            if isinstance(room, str) and room not in self.rooms:
                self.rooms.append(room)
        return outcome
