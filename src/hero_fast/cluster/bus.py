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
``P ctl``          ``roomAdd``, ``roomDestroy``    ``o``, ``r`` room name
=================  ==============================  ============================================
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

__all__ = [
    "CTL_KINDS",
    "NODE_KINDS",
    "ROOM_KINDS",
    "BusError",
    "decode",
    "encode",
    "say_prefix",
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


def _conn_id(v: Any) -> bool:
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
    "send": {"o": _node, "c": _conn_id, "m": _any},
    "probe": {"o": _node, "s": _seq},
    "roomAdd": {"o": _node, "r": _room},
    "roomDestroy": {"o": _node, "r": _room},
}

ROOM_KINDS = frozenset({"say", "missed"})
NODE_KINDS = frozenset({"send", "probe"})
CTL_KINDS = frozenset({"roomAdd", "roomDestroy"})


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


def say_prefix(node: str) -> bytes:
    """``say`` messages are built by concatenation: ``say_prefix(node) + payload + b"}"``,
    so the payload JSON encoded once for local delivery is reused as is."""
    if not _node(node):
        raise ValueError("bad node id")
    return b'{"k":"say","o":"' + node.encode() + b'","p":'
