"""What a node and a publisher do in Redis, written once.

:class:`Keys` names the keys and channels under ``cluster.prefix`` that nodes and
publishers share. :class:`Operations` holds each operation as a generator that yields
commands (a tuple of arguments, or a :class:`ScriptCall`) and is sent their replies: it
does no I/O itself, so the one implementation runs on a node's or an AsyncPublisher's
asyncio connection (:func:`run`) and on a blocking Publisher's socket (:func:`run_sync`).

Everything read back from Redis is checked (types, sizes, the epoch's form); a signed
message read from a stream is verified as one read from the bus is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Generator
from typing import Any, NamedTuple, TypeVar

import orjson

from hero_fast.cluster import bus as _bus
from hero_fast.cluster.resp import RespConnection, RespError, SyncRespConnection, within
from hero_fast.cluster.scripts import HOLD, POSITION, SAVE, SAY, SINCE, TAKE, Script
from hero_fast.cluster.signing import HEADER_SIZE, Signer
from hero_fast.connections import Sent

__all__ = [
    "KEEP_MARGIN_MS",
    "Entry",
    "Keys",
    "Numbered",
    "Op",
    "Operations",
    "ScriptCall",
    "fire",
    "keep_ms",
    "new_epoch",
    "run",
    "run_sync",
]

T = TypeVar("T")

#: How much longer than ``max(ttl, recovery.maxDisconnectionDuration)`` a room's numbering
#: (epoch and offset) outlives its last message or member, so that a client that may still
#: recover never finds its room renumbered.
KEEP_MARGIN_MS = 60_000


def keep_ms(ttl_ms: int, max_disconnection_ms: int) -> int:
    """How long a room's numbering is kept after its last message or member."""
    return max(ttl_ms, max_disconnection_ms) + KEEP_MARGIN_MS


def new_epoch() -> str:
    return os.urandom(8).hex()


def _now_ms() -> int:
    return int(time.time() * 1000)


class ScriptCall:
    """One run of a Lua script: ``EVALSHA`` (or ``EVAL``) with these keys and arguments."""

    __slots__ = ("args", "keys", "script")

    def __init__(self, script: Script, keys: tuple[bytes, ...], args: tuple[Any, ...]) -> None:
        self.script = script
        self.keys = keys
        self.args = args

    def command(self, loaded: set[bytes]) -> tuple[Any, ...]:
        """The command for a connection that already ran the scripts in ``loaded``: the
        first run on a connection sends the source (``EVAL``), later ones its SHA-1."""
        script = self.script
        if script.sha in loaded:
            head: tuple[bytes, bytes] = (b"EVALSHA", script.sha)
        else:
            loaded.add(script.sha)
            head = (b"EVAL", script.source)
        return (*head, len(self.keys), *self.keys, *self.args)


Command = tuple[Any, ...] | ScriptCall
Op = Generator[Command, Any, T]


class Numbered(NamedTuple):
    """Where a message of a room with history went: its ``offset`` in ``epoch``."""

    offset: int
    epoch: str


class Entry(NamedTuple):
    """One message of a room's stream: its ``offset``, when it was said (``sent_at`` ms) and
    the signed bus message (``data``, without its numbering)."""

    offset: int
    sent_at: int
    data: bytes


class Keys:
    """The keys and channels shared by every node and publisher of one ``cluster.prefix``."""

    def __init__(self, prefix: str | bytes) -> None:
        p = prefix.encode() if isinstance(prefix, str) else prefix
        self.prefix = p
        self.rooms = p + b"rooms"  # set: room names
        self.room_options = p + b"roomh"  # hash: room → {"size", "ttl", "keep"} of its history
        self.conns = p + b"conns"  # hash: connection id → node
        self.ctl = p + b"ctl"  # channel: rooms created and destroyed, broadcasts

    def room(self, room: str) -> bytes:
        """The room's channel."""
        return self.prefix + b"r:" + room.encode()

    def node(self, node: str | bytes) -> bytes:
        """The node's channel."""
        return self.prefix + b"n:" + (node.encode() if isinstance(node, str) else node)

    def history(self, room: str) -> tuple[bytes, bytes, bytes]:
        """The room's epoch, last offset and stream."""
        name = room.encode()
        p = self.prefix
        return p + b"he:" + name, p + b"ho:" + name, p + b"hs:" + name

    def saved(self, key: str) -> tuple[bytes, bytes]:
        """A dropped connection's saved state and held pushes, by its token's hash."""
        return self.prefix + b"rec:" + key.encode(), self.prefix + b"recq:" + key.encode()

    def saved_id(self, connection_id: str) -> bytes:
        """Connection id → the hash its state is saved under."""
        return self.prefix + b"reci:" + connection_id.encode()


def _epoch(value: Any) -> str:
    if type(value) is not bytes or len(value) != _bus.EPOCH_SIZE or not all(c in b"0123456789abcdef" for c in value):
        raise _bus.BusError(f"malformed epoch in Redis: {value!r:.40}")
    return value.decode()


class Operations:
    """The cluster's operations in Redis for one origin (a node, or a publisher), signing
    with ``signer``; each method returns a generator for :func:`run` or :func:`run_sync`
    (``*_call`` methods: a ScriptCall for :func:`fire`)."""

    def __init__(self, keys: Keys, signer: Signer, origin: str, max_bus: int) -> None:
        self.keys = keys
        self.signer = signer
        self.origin = origin
        self.max_bus = max_bus
        self._say_head = _bus.say_prefix(origin)
        self._broadcast_head = _bus.broadcast_prefix(origin)
        self._signature = HEADER_SIZE if signer.enabled else 0

    def _sized(self, data: bytes, extra: int = 0) -> bytes:
        size = len(data) + extra
        if size > self.max_bus:
            raise ValueError(f"message too large for the cluster bus ({size} bytes; the most is {self.max_bus})")
        return data

    # -- chat ----------------------------------------------------------------------------

    def say_call(self, room: str, payload: bytes, history: tuple[int, int, int] | None) -> ScriptCall:
        """Say ``payload`` (a chat payload's JSON, without offset and epoch) in ``room``:
        numbered when ``history`` (size, ttl ms, keep ms) has a size, published as is when
        not; None: as the room's options in Redis say."""
        channel = self.keys.room(room)
        sealed = self._sized(self.signer.seal(channel, self._say_head + payload + b"}"), _bus.NUMBERING_SIZE)
        size, ttl, keep = history if history is not None else ("", "", "")
        return ScriptCall(SAY, (self.keys.room_options, *self.keys.history(room)),
                          (room, channel, sealed, new_epoch(), _now_ms(), size, ttl, keep))

    def say(self, room: str, payload: bytes, history: tuple[int, int, int] | None) -> Op[Numbered | None]:
        reply = yield self.say_call(room, payload, history)
        if type(reply) is not list or len(reply) != 3 or type(reply[0]) is not int:
            raise _bus.BusError(f"unexpected reply to the say script: {reply!r:.80}")
        return Numbered(reply[0], _epoch(reply[1])) if reply[0] else None

    def position(self, room: str, keep: int) -> Op[Numbered]:
        """The room's numbering now (a new epoch at offset 0 if it has none), kept ``keep`` ms."""
        reply = yield ScriptCall(POSITION, self.keys.history(room), (new_epoch(), keep))
        if type(reply) is not list or len(reply) != 2 or type(reply[1]) is not int or reply[1] < 0:
            raise _bus.BusError(f"unexpected reply to the position script: {reply!r:.80}")
        return Numbered(reply[1], _epoch(reply[0]))

    def since(self, room: str, epoch: str | None, offset: int) -> Op[tuple[Numbered | None, list[Entry]]]:
        """The room's numbering now (None: it has none) and its stream's entries after
        ``offset`` — every entry when ``epoch`` is not the current one."""
        reply = yield ScriptCall(SINCE, self.keys.history(room), (epoch or "", f"{offset + 1}-0"))
        if type(reply) is not list or len(reply) != 3 or type(reply[1]) is not int or type(reply[2]) is not list:
            raise _bus.BusError(f"unexpected reply to the since script: {reply!r:.80}")
        if reply[0] is None:
            return None, []
        entries = []
        for item in reply[2]:
            try:
                entry_id, fields = item
                number, _, _ = entry_id.partition(b"-")
                values = dict(zip(fields[::2], fields[1::2], strict=True))
                entries.append(Entry(int(number), int(values[b"t"]), values[b"d"]))
            except (ValueError, TypeError, KeyError, AttributeError):
                raise _bus.BusError(f"malformed stream entry of room {room!r:.80}: {item!r:.80}") from None
        return Numbered(reply[1], _epoch(reply[0])), entries

    def broadcast(self, push: bytes) -> Op[int]:
        """Publish ``push`` (JSON) for every connection of every node; how many nodes got it."""
        ch = self.keys.ctl
        receivers = yield (b"PUBLISH", ch, self._sized(self.signer.seal(ch, self._broadcast_head + push + b"}")))
        return int(receivers or 0)

    # -- pushes and connection state recovery ------------------------------------------------

    def send(self, connection_id: str, message: Any, here: bytes | None = None) -> Op[Sent]:
        """Push ``message`` to the connection ``connection_id``: to its node (``REMOTE``),
        held for it when it dropped and may recover (``HELD``), else ``NOWHERE``. ``here``:
        the calling node, whose own connections are not looked for over the bus."""
        if not _bus.is_connection_id(connection_id):
            return Sent.NOWHERE
        data = self._sized(_bus.encode("send", o=self.origin, c=connection_id, m=message), self._signature)
        node = yield (b"HGET", self.keys.conns, connection_id)
        if type(node) is bytes and node.isalnum() and node != here:
            channel = self.keys.node(node)
            if (yield (b"PUBLISH", channel, self.signer.seal(channel, data))):
                return Sent.REMOTE
        held = yield from self.hold(connection_id, orjson.dumps(message))
        return Sent.HELD if held else Sent.NOWHERE

    def hold(self, connection_id: str, push: bytes) -> Op[bool]:
        """Keep ``push`` for the dropped connection ``connection_id``: True when its state is kept."""
        held = yield ScriptCall(HOLD, (self.keys.saved_id(connection_id),), (self.keys.prefix, push))
        return bool(held == 1)

    def save_call(self, key: str, state: bytes, connection_id: str, ttl_ms: int, max_pushes: int,
                  max_bytes: int) -> ScriptCall:
        return ScriptCall(SAVE, (*self.keys.saved(key), self.keys.saved_id(connection_id)),
                          (state, connection_id, ttl_ms, max_pushes, max_bytes, key))

    def take(self, key: str) -> Op[tuple[bytes, list[bytes], int] | None]:
        """Remove and return what was saved under ``key``: (state, held pushes, how many
        held pushes were dropped), or None."""
        reply = yield ScriptCall(TAKE, self.keys.saved(key), (self.keys.prefix, key))
        if reply is None:
            return None
        if (type(reply) is not list or len(reply) != 3 or type(reply[0]) is not bytes or type(reply[1]) is not int
                or type(reply[2]) is not list or not all(type(p) is bytes for p in reply[2])):
            raise _bus.BusError(f"unexpected reply to the take script: {reply!r:.80}")
        return reply[0], reply[2], reply[1]


# -- drivers ---------------------------------------------------------------------------------


def _noscript(exc: BaseException) -> bool:
    return isinstance(exc, RespError) and str(exc).startswith("NOSCRIPT")


def _args(conn: RespConnection | SyncRespConnection, command: Command) -> tuple[Any, ...]:
    return command.command(conn.scripts) if isinstance(command, ScriptCall) else command


def _retry(conn: RespConnection | SyncRespConnection, command: Command, exc: RespError) -> tuple[Any, ...]:
    """The command again after a NOSCRIPT (Redis's script cache was flushed): with EVAL."""
    if not isinstance(command, ScriptCall) or not _noscript(exc):
        raise exc
    conn.scripts.discard(command.script.sha)
    return command.command(conn.scripts)


async def run(conn: RespConnection, op: Op[T], timeout: float, what: str) -> T:
    """Run ``op`` on an asyncio connection, each reply awaited at most ``timeout`` s (a
    timeout raises RedisTimeout naming ``what``). Each command is queued as soon as the
    operation yields it, so signed messages leave in the order they were signed."""
    try:
        command = next(op)
        while True:
            try:
                reply = await within(conn.execute(*_args(conn, command)), timeout, what)
            except RespError as exc:
                reply = await within(conn.execute(*_retry(conn, command, exc)), timeout, what)
            command = op.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def run_sync(conn: SyncRespConnection, op: Op[T]) -> T:
    """Run ``op`` on a blocking connection."""
    try:
        command = next(op)
        while True:
            try:
                reply = conn.execute(*_args(conn, command))
            except RespError as exc:
                reply = conn.execute(*_retry(conn, command, exc))
            command = op.send(reply)
    except StopIteration as stop:
        return stop.value  # type: ignore[no-any-return]


def fire(conn: RespConnection, call: ScriptCall, failed: Callable[[BaseException], None]) -> None:
    """Run ``call`` without waiting for its reply (ordered with the connection's other
    commands); an error reply goes to ``failed`` (a lost connection does not: the backend
    sees it anyway). Raises ConnectionError when the connection is closed."""

    def done(fut: Any) -> None:
        if fut.cancelled() or fut.exception() is None:
            return
        exc = fut.exception()
        if _noscript(exc) and not conn.closed:
            conn.scripts.discard(call.script.sha)
            conn.execute(*call.command(conn.scripts)).add_done_callback(done)  # EVAL: no NOSCRIPT again
        elif not isinstance(exc, ConnectionError):
            failed(exc)

    conn.execute(*call.command(conn.scripts)).add_done_callback(done)
