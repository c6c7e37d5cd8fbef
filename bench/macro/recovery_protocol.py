"""What the issue-12 benches know about room history and connection state recovery (the
protocol of docs/delivery.md and docs/protocol.md), in one place:

- A chat message in a room with history carries ``offset`` (an integer, +1 per message in the
  room) and ``epoch`` (it changes when the room's history is lost).
- The welcome message carries the recovery token: ``{"recovery": {"token": ...}}``.
- After a reconnect the client's FIRST frame is ``resume_request()``: the ``recover`` verb with
  the token and, per room, the last offset and epoch it saw.
- The server replays what was missed, then answers the verb: ``{"status": "OK", "data":
  {"recovered": true | false, "reason": ..., ...}, "context": "response"}``.
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
    token = None
    if isinstance(message.get("recovery"), dict):
        token = message["recovery"].get("token")
    return token if isinstance(token, str) and token else None


def resume_request(token: str, positions: dict[str, tuple[int, Any]]) -> dict[str, Any]:
    """The first frame a reconnecting client sends: its token and last (offset, epoch) per room."""
    return {"event": "recover", "token": token, "pushSeq": 0,
            "offsets": {room: {"offset": off, "epoch": epoch} for room, (off, epoch) in positions.items()}}


def recovery_outcome(message: Any) -> tuple[bool, str] | None:
    """(recovered, reason) once the server says how the recovery went; None for other messages."""
    data = message.get("data") if isinstance(message, dict) and message.get("context") == "response" else None
    if not isinstance(data, dict) or not isinstance(data.get("recovered"), bool):
        return None
    return data["recovered"], str(data.get("reason") or "")
