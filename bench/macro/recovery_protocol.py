"""What the issue-12 benches ASSUME about room history and connection-state recovery.

The wire protocol for both is not final. Everything the benches (recovery_load.py and the
history fan-out row of run_all.py) know about it is in this module, so adapting the benches
to the final protocol means editing these few functions and nothing else:

- A chat message in a room with history carries ``offset`` (an integer, +1 per message in the
  room) and ``epoch`` (any JSON value; it changes when the room's history is lost).
- The server hands a connection its recovery token in a server message: a ``recoveryToken``
  field, or ``{"recovery": {"token": ...}}`` (the welcome message is the natural place).
- After a reconnect the client's FIRST frame is ``resume_request()``: the token and, per room,
  the last offset and epoch it saw.
- The server then replays what was missed and sends a message with a boolean ``recovered``
  (and, when false, a ``reason``).
"""
from __future__ import annotations

from typing import Any


def chat_position(message: Any) -> tuple[str, int, Any] | None:
    """(room, offset, epoch) of a chat message from a room with history; None otherwise."""
    if not isinstance(message, dict) or message.get("context") != "user":
        return None
    offset = message.get("offset")
    if not isinstance(offset, int) or isinstance(offset, bool):
        return None
    return str(message.get("room")), offset, message.get("epoch")


def recovery_token(message: Any) -> str | None:
    """The recovery token a server message carries, if any."""
    if not isinstance(message, dict):
        return None
    token = message.get("recoveryToken")
    if token is None and isinstance(message.get("recovery"), dict):
        token = message["recovery"].get("token")
    return token if isinstance(token, str) and token else None


def resume_request(token: str, positions: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    """The first frame a reconnecting client sends: its token and last (offset, epoch) per room."""
    return {"event": "recover", "token": token,
            "rooms": {room: {"offset": off, "epoch": epoch} for room, (off, epoch) in positions.items()}}


def recovery_outcome(message: Any) -> tuple[bool, str] | None:
    """(recovered, reason) once the server says how the recovery went; None for other messages."""
    if not isinstance(message, dict) or not isinstance(message.get("recovered"), bool):
        return None
    return message["recovered"], str(message.get("reason") or "")
