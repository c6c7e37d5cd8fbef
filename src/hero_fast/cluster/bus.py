"""Messages on the cluster bus (Redis pub/sub): the fixed set of kinds, encoding, and a
decoder that treats every message as untrusted input.

Anyone who can ``PUBLISH`` on the Redis server can put bytes on these channels, so a
message is accepted only if it is small enough (checked before parsing), is JSON (orjson)
holding an object, names one of the kinds allowed on the channel it came from, and each
field has the expected type and size. The kind selects a handler from a fixed dict; no
name from the bus is ever looked up as an attribute or method. With ``cluster.secret``
set, what travels is the message behind a signature (:mod:`hero_fast.cluster.signing`),
checked before any of this.

Channels (``P`` = ``cluster.prefix``):

=================  ==============================  ============================================
channel            kinds                           fields (besides ``k`` = kind)
=================  ==============================  ============================================
``P r:<room>``     ``say``, ``missed``             say: ``o`` origin node, ``p`` the chat payload (object);
                                                   missed: ``o``, ``ms`` outage length (the origin
                                                   could not publish to the room for that long)
``P n:<node>``     ``send``, ``probe``             send: ``o``, ``c`` connection id, ``m`` any JSON;
                                                   probe: ``o``, ``s`` sequence number
``P ctl``          ``roomAdd``, ``roomDestroy``,   ``o``, ``r`` room name; roomAdd may carry ``h``,
                   ``broadcast``                   the room's history ``{"size", "ttl"}``;
                                                   broadcast: ``o``, ``m`` any JSON (for every
                                                   connection of every node)
=================  ==============================  ============================================

A ``say`` of a room with history is numbered in Redis (:mod:`hero_fast.cluster.scripts`),
which cannot sign: it travels as ``#<offset>:<epoch>:`` followed by the (signed) message,
and :func:`split_numbered` takes the numbering off before the rest is checked as usual.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "CTL_KINDS",
    "NODE_KINDS",
    "NUMBERING_SIZE",
    "ROOM_KINDS",
    "SAY_KINDS",
    "BusError",
    "broadcast_prefix",
    "decode",
    "encode",
    "is_connection_id",
    "say_prefix",
    "split_numbered",
]

MAX_NODE_ID = 64
MAX_CONNECTION_ID = 128
MAX_ROOM_NAME = 1024


class BusError(ValueError):
    """A bus message that is refused; the text says why (for logs), ``counter`` names the
    backend counter it is counted in."""

    counter = "invalid"


def _node(v: Any) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_NODE_ID and v.isascii() and v.isalnum()


def is_connection_id(v: Any) -> bool:
    """Whether ``v`` may name a connection on the bus."""
    return type(v) is str and 0 < len(v) <= MAX_CONNECTION_ID and v.isprintable()


def _room(v: Any) -> bool:
    return type(v) is str and 0 < len(v) <= MAX_ROOM_NAME


def _seq(v: Any) -> bool:
    return type(v) is int and v >= 0


def _obj(v: Any) -> bool:
    return type(v) is dict


def _any(v: Any) -> bool:
    return True


# kind -> required fields and their checks
_SCHEMAS: dict[str, dict[str, Callable[[Any], bool]]] = {
    "say": {"o": _node, "p": _obj},
    "missed": {"o": _node, "ms": _seq},
    "send": {"o": _node, "c": is_connection_id, "m": _any},
    "probe": {"o": _node, "s": _seq},
    "roomAdd": {"o": _node, "r": _room},
    "roomDestroy": {"o": _node, "r": _room},
    "broadcast": {"o": _node, "m": _any},
}

ROOM_KINDS = frozenset({"say", "missed"})
NODE_KINDS = frozenset({"send", "probe"})
CTL_KINDS = frozenset({"roomAdd", "roomDestroy", "broadcast"})
SAY_KINDS = frozenset({"say"})


def decode(data: Any, allowed: frozenset[str], max_size: int) -> tuple[str, dict[str, Any]]:
    """Validate one bus message; returns ``(kind, message)`` or raises BusError."""
    if type(data) is not bytes:
        raise BusError("not a byte string")
    if len(data) > max_size:
        raise BusError(f"{len(data)} bytes, over the {max_size}-byte cap")
    try:
        msg = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise BusError("not JSON") from None
    if type(msg) is not dict:
        raise BusError("not a JSON object")
    kind = msg.get("k")
    if type(kind) is not str:
        raise BusError("no kind")
    if kind not in allowed:
        raise BusError(f"kind {kind[:40]!r} is not allowed on this channel")
    for field, check in _SCHEMAS[kind].items():
        if field not in msg or not check(msg[field]):
            raise BusError(f"{kind}: field {field!r} missing or malformed")
    return kind, msg


def encode(kind: str, **fields: Any) -> bytes:
    """A bus message (validated against the schema, so a bug cannot emit junk)."""
    schema = _SCHEMAS[kind]
    for field, check in schema.items():
        if not check(fields.get(field)):
            raise ValueError(f"{kind}: field {field!r} missing or malformed")
    return orjson.dumps({"k": kind, **fields})


def _head(kind: str, node: str, field: str) -> bytes:
    if not _node(node):
        raise ValueError("bad node id")
    return b'{"k":"' + kind.encode() + b'","o":"' + node.encode() + b'","' + field.encode() + b'":'


def say_prefix(node: str) -> bytes:
    """``say`` messages are built by concatenation: ``say_prefix(node) + payload + b"}"``,
    so the payload JSON encoded once for local delivery is reused as is."""
    return _head("say", node, "p")


def broadcast_prefix(node: str) -> bytes:
    """``broadcast`` messages, as ``say``: ``broadcast_prefix(node) + push + b"}"``."""
    return _head("broadcast", node, "m")


EPOCH_SIZE = 16
_MAX_OFFSET_DIGITS = 19
#: The most bytes the numbering puts in front of a numbered message.
NUMBERING_SIZE = 1 + _MAX_OFFSET_DIGITS + 1 + EPOCH_SIZE + 1
_HEX = frozenset(b"0123456789abcdef")


def split_numbered(data: bytes) -> tuple[int, str, bytes]:
    """``(offset, epoch, message)`` of a numbered message (``#<offset>:<epoch>:<message>``);
    raises BusError when the numbering is malformed."""
    parts = data[1:NUMBERING_SIZE].split(b":", 2)
    if data[:1] != b"#" or len(parts) != 3:
        raise BusError("malformed numbering")
    digits, epoch, _ = parts
    if not digits.isdigit() or digits[:1] == b"0" or len(digits) > _MAX_OFFSET_DIGITS:
        raise BusError("malformed offset in the numbering")
    if len(epoch) != EPOCH_SIZE or not _HEX.issuperset(epoch):
        raise BusError("malformed epoch in the numbering")
    return int(digits), epoch.decode(), data[len(digits) + EPOCH_SIZE + 3:]
