"""The Redis cluster backend: rooms, presence, ``say``, server push, room history and
connection state recovery across processes and machines.

Data in Redis (``P`` = ``cluster.prefix``, ``N`` = a node id, 16 hex digits made at start):

=========================  ======  ===========================================================
key                        type    what
=========================  ======  ===========================================================
``P rooms``                set     room names (shared: ``chat_room.add``/``destroy`` anywhere)
``P roomh``                hash    room → its history ``{"size", "ttl", "keep"}`` (size 0: none)
``P node:N``               string  node N's lease (JSON: pid, host, started), ``PX leaseTtl``
``P nodes``                zset    node → lease expiry (ms); lets survivors find dead nodes
``P rm:N:<room>``          hash    node N's members of the room: connection id → joinedAt ms,
                                   ``PX leaseTtl``, refreshed by N every ``leaseTtl / 3``
``P ri:<room>``            zset    nodes with members in the room → lease expiry (ms)
``P conns``                hash    connection id → node (for ``api.connections.send``)
``P nc:N``                 set     node N's connection ids (to sweep ``P conns`` when N dies)
``P he:<room>``            string  the room's epoch (rooms with history), ``PX keep``
``P ho:<room>``            string  the room's last offset, ``PX keep``
``P hs:<room>``            stream  the room's last ``size`` messages, ``PX ttl``
``P rec:<hash>``           hash    a dropped connection's saved state (recovery), ``PX``
                                   ``recovery.maxDisconnectionDuration``; ``P recq:<hash>``
                                   (list) the pushes held for it, ``P reci:<id>`` its hash
=========================  ======  ===========================================================

``keep`` = max(``ttl``, ``recovery.maxDisconnectionDuration``) + 60 s, refreshed while a node
has members in the room: a client that may still recover never finds its room renumbered.
The history and recovery keys change only through the Lua scripts of
:mod:`hero_fast.cluster.scripts` (shared with ``hero_fast.publish``).

Channels: ``P r:<room>`` (one per room; a node subscribes only while it has local members
there), ``P n:N`` (messages for node N: server push, liveness probe), ``P ctl`` (room
created/destroyed, broadcast). Message formats: :mod:`hero_fast.cluster.bus`; with
``cluster.secret`` each is signed (:mod:`hero_fast.cluster.signing`) and one that is
unsigned, badly signed, stale or replayed is dropped and counted (``unsigned``,
``bad_signature``, ``replayed``).

Presence: a member is visible while its node's ``rm`` hash lives; a node that dies
without cleaning up (SIGKILL, power loss) stops refreshing, so its members vanish from
``roomView`` within ``leaseTtl``. The node's entries in ``P conns`` are swept by a
surviving node soon after (``nc`` tells which). A clean stop sweeps its own entries
first and then deregisters.

Rooms with history: a ``say`` is numbered, kept and published in one script; every node,
the origin included, delivers it from the bus in offset order, and after an outage or a
jump in offsets reads what it missed from the room's stream first
(:mod:`hero_fast.cluster.numbering`); its members are told only what the stream no longer
has. While the bus is down such a ``say`` is refused (it cannot be numbered).

Rooms without history: delivery is at-most-once: a ``say`` is delivered to local members
at once, then published once (never retried); a node receives it only while its subscriber
connection is up. After Redis restarts, the subscriber is dropped, nothing is heard from
Redis for ``probeInterval`` (the node probes itself every quarter of it), or a command waits
``commandTimeout``, the node counts an outage, reconnects with back-off (reset after each
success), resubscribes, rewrites its state into Redis (a restarted Redis has lost it) and
pushes to every local member of each of these rooms::

    {"context": "api", "event": "missedMessages", "room": "<room>", "outageMs": <ms>,
     "message": "..."}

``outageMs`` runs from when Redis was last heard from to the reconnection. A node that could
not publish to a room while its connection was down (or backlogged) sends a ``missed``
message on that room's channel once it is back, and the other nodes push the same notice
to their members of that room. Such messages are not replayed.

Rooms: a node announces each room it creates or destroys on ``P ctl``, with its history
options. One created or destroyed while its bus is not up (its ``startingChatRooms``, made
at boot before it connects, or any change during an outage) is announced as soon as it is
connected; the rooms the others made meanwhile are read from ``P rooms`` and ``P roomh``
then. A room destroyed during an outage can come back if Redis lost its data and another
node still knew the room.

Connection state recovery: a dropped connection's state is saved in Redis (in this process
while the bus is down), so the client may recover on any node; pushes for it are held there.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast.cluster import ClusterBackend, ClusterError
from hero_fast.cluster import bus as _bus
from hero_fast.cluster.numbering import NumberedRooms
from hero_fast.cluster.operations import Keys, Operations, fire, run
from hero_fast.cluster.resp import (
    HAVE_HIREDIS,
    RedisAddress,
    RespConnection,
    RespError,
    describe,
    open_connection,
    parse_redis_url,
    redact_url,
    within,
)
from hero_fast.cluster.signing import HEADER_SIZE, ReplayGuard, Signer
from hero_fast.connections import Sent
from hero_fast.history import HistoryGap
from hero_fast.middleware import ConnectionMiddleware

if TYPE_CHECKING:
    from hero_fast.app import Api
    from hero_fast.connections import Connection

__all__ = ["RedisBackend"]

log = logging.getLogger("hero_fast.cluster")

_TEXT = 1
_CHUNK = 500  # members / ids per HSET, SADD or HDEL command
# A command connection with this many unanswered commands (Redis stalled or the link is
# slow) drops further publishes instead of buffering without bound; they are counted.
_MAX_BACKLOG = 100_000
_MAX_BUFFERED = 64 << 20
#: Seconds between two warnings of one kind (refused messages, handler errors, error replies).
_WARN_EVERY = 10.0
_MISSED_TEXT = "the server lost its connection to the cluster bus; you may have missed messages in this room"

# Errors that mean "Redis is not there right now".
_DOWN = (OSError, ConnectionError, asyncio.TimeoutError, RespError)


def _now_ms() -> int:
    return int(time.time() * 1000)


def _history(options: Any, counters: dict[str, int]) -> dict[str, Any] | None:
    """``{"size", "ttl"}`` of a room's history from what another node wrote (counted as
    invalid and None, the configured default, when malformed)."""
    if type(options) is dict and type(options.get("size")) is int and type(options.get("ttl")) is int:
        return {"size": options["size"], "ttl": options["ttl"]}
    counters["invalid"] += 1
    return None


def _chunks(items: list[Any], size: int = _CHUNK) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class RedisBackend(ClusterBackend):
    """Rooms, presence, say and server push shared through Redis (see the module doc)."""

    distributed = True

    def __init__(self, api: Api) -> None:
        super().__init__(api)
        cfg = api.config["cluster"]
        self.url: str = api.config["redis_url"]
        self.node_id = os.urandom(8).hex()
        self.lease_ms: int = cfg["leaseTtl"]
        self.probe_interval: float = cfg["probeInterval"] / 1000
        self.max_bus: int = cfg["maxBusMessage"]
        self.timeout: float = cfg["commandTimeout"]
        self.backoff_min: float = cfg["reconnectMin"] / 1000
        self.backoff_max: float = max(cfg["reconnectMax"] / 1000, self.backoff_min)

        self.keys = keys = Keys(cfg["prefix"])
        p = self.prefix = keys.prefix
        node = self.node_id.encode()
        self.k_rooms = keys.rooms
        self.k_node = p + b"node:" + node
        self.k_nodes = p + b"nodes"
        self.k_conns = keys.conns
        self.k_node_conns = p + b"nc:" + node
        self.ch_node = keys.node(node)
        self.ch_ctl = keys.ctl
        self._signer = Signer(cfg.get("secret"), cfg.get("previousSecret"))
        self._replay = ReplayGuard()
        self._ops = Operations(keys, self._signer, self.node_id, self.max_bus)
        # where the bus message starts in what travels (after the signature, if any)
        self._body_at = HEADER_SIZE if self._signer.enabled else 0
        self._say_prefix = _bus.say_prefix(self.node_id)
        self._broadcast_prefix = _bus.broadcast_prefix(self.node_id)
        # a numbered say carries its numbering in front
        self.max_payload = self.max_bus - self._body_at - len(self._say_prefix) - 1 - _bus.NUMBERING_SIZE
        recovery = api.config["recovery"]
        self._max_disconnection: int = recovery["maxDisconnectionDuration"]
        self._max_pushes: int = recovery["maxPushes"]
        self._max_push_bytes: int = recovery["maxPushBytes"]

        self.counters = {
            "published": 0,  # say messages published
            "publish_dropped": 0,  # not published: bus down or backlogged
            "received": 0,  # bus messages accepted
            "delivered_remote": 0,  # local deliveries of say messages from other nodes
            "invalid": 0,  # bus messages refused by the decoder
            "unsigned": 0,  # refused: not signed (cluster.secret set)
            "bad_signature": 0,  # refused: signed with another key, or tampered with
            "replayed": 0,  # refused: signed, but too old or seen before
            "handler_errors": 0,  # accepted messages whose handling raised
            "push_errors": 0,  # the subscriber's last-line guard caught an exception
            "error_replies": 0,  # error replies to commands nobody awaits (e.g. NOPERM)
            "sent_remote": 0,  # api.cluster.send handed to another node
            "send_received": 0,  # pushes from other nodes delivered here
            "send_unknown": 0,  # pushes for a connection no longer here
            "outages": 0,  # times the bus was lost
            "reconnects": 0,  # times it came back
            "reconnect_failures": 0,  # failed reconnect attempts
            "probe_failures": 0,  # liveness probes that did not come back
            "missed_notices": 0,  # missedMessages pushes sent to clients
            "resyncs": 0,  # full rewrites of this node's state into Redis
            "lease_refreshes": 0,
            "dead_nodes_swept": 0,
            "writes_dropped": 0,  # membership writes skipped while down (rewritten later)
            "missed_announced": 0,  # rooms announced to other nodes as possibly incomplete
            "send_held": 0,  # pushes held in Redis for a connection that dropped (recovery)
            "broadcasts_sent": 0,  # api.connections.broadcast published for the other nodes
            "broadcasts_received": 0,  # broadcasts of other nodes (and publishers) delivered here
            "history_syncs": 0,  # numbering of a room read when its first member here joined
            "history_catch_ups": 0,  # reads of a room's stream after an outage or a jump in offsets
            "history_refilled": 0,  # messages delivered from a room's stream by those reads
            "history_duplicates": 0,  # numbered messages dropped: delivered already (or said before the join)
        }

        self.address = RedisAddress()  # parsed from the URL at start
        self._cmd: RespConnection | None = None
        self._sub: RespConnection | None = None
        self.connected = False
        self._stopping = False
        self._started = False
        self._dirty = True
        self._outage_since: float | None = None
        self._lost: asyncio.Event | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        # room channels this node wants (has local members in) → room name
        self._channels: dict[bytes, str] = {}
        self._room_channel: dict[str, bytes] = {}
        # channel → futures resolved by its subscribe confirmations, in order
        self._sub_waiters: dict[bytes, deque[asyncio.Future[None] | None]] = {}
        # channel → the subscription in flight (later joiners wait for it too)
        self._sub_pending: dict[bytes, asyncio.Future[None]] = {}
        # rooms whose say could not be published (bus down or backlogged): announced later
        self._dropped_rooms: dict[str, float] = {}
        # rooms created (True) or destroyed (False) here while the bus was not up: announced at resync
        self._unannounced: dict[str, bool] = {}
        self._probe_seq = 0
        # when Redis was last heard from (a message or a confirmation on the subscriber)
        self._alive_at = time.monotonic()
        # a broadcast of another node is being delivered here (not to be published again)
        self._relaying = False
        self._numbered_rooms: NumberedRooms | None = None  # made on first use: chat_room comes after
        # warning key → (when last logged, how many since were not logged)
        self._warned: dict[str, tuple[float, int]] = {}
        self._handlers: dict[str, Callable[[dict[str, Any]], None]] = {
            "send": self._on_send,
            "probe": self._on_probe,
            "roomAdd": self._on_room_add,
            "roomDestroy": self._on_room_destroy,
            "broadcast": self._on_broadcast,
        }

    # -- keys ----------------------------------------------------------------------

    def _channel(self, room: str) -> bytes:
        ch = self._room_channel.get(room)
        if ch is None:
            ch = self._room_channel[room] = self.keys.room(room)
        return ch

    @property
    def _numbered(self) -> NumberedRooms:
        """In-order delivery of the numbered messages of rooms with history."""
        numbered = self._numbered_rooms
        if numbered is None:
            numbered = self._numbered_rooms = NumberedRooms(
                self.api.chat_room, self._ops, self._signer, self._live_connection, self.timeout,
                self._max_disconnection, self.counters)
        return numbered

    def _live_connection(self) -> RespConnection | None:
        """The command connection while the bus is up."""
        return self._cmd if self.connected else None

    def _members_key(self, room: str, node: bytes | None = None) -> bytes:
        return self.prefix + b"rm:" + (node or self.node_id.encode()) + b":" + room.encode()

    def _index_key(self, room: str) -> bytes:
        return self.prefix + b"ri:" + room.encode()

    # -- lifecycle -----------------------------------------------------------------

    async def start(self) -> None:
        if self._started:
            return
        if not HAVE_HIREDIS:
            raise ClusterError("redis_url is set but hiredis is not installed: pip install 'hero-fast[cluster]'")
        try:
            self.address = parse_redis_url(self.url)
        except ValueError as exc:
            raise ClusterError(f"redis_url {redact_url(self.url)!r}: {exc}") from None
        self._lost = asyncio.Event()
        try:
            await self._connect()
        except _DOWN as exc:
            self.connected = False
            self._close_connections()
            raise ClusterError(f"cannot use Redis at {redact_url(self.url)}: {describe(exc)}") from exc
        self._started = True
        self.api.connections.add_middleware(
            ConnectionMiddleware("hero_fast.cluster", priority=0, create=self._conn_created,
                                 destroy=self._conn_destroyed))
        loop = asyncio.get_running_loop()
        self._tasks = [loop.create_task(self._supervise()), loop.create_task(self._watch()),
                       loop.create_task(self._maintain())]
        log.info("cluster node %s (pid %d) joined through Redis %s", self.node_id, os.getpid(),
                 redact_url(self.url))
        if not self._signer.enabled:
            log.warning("the cluster bus is unsigned (cluster.secret is not set): whoever can PUBLISH on this "
                        "Redis can inject chat messages, pushes and room changes; see docs/deployment.md")

    async def stop(self) -> None:
        if self._stopping or not self._started:
            return
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        if self._numbered_rooms is not None:
            self._numbered_rooms.close()
        for task in self._tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
        cmd = self._cmd
        if cmd is not None and self.connected:
            try:
                await within(self._sweep_self(cmd), self.timeout, "removing this node's state")
            except _DOWN as exc:
                log.warning("cluster node %s could not clean up in Redis: %s (its leases expire in %d ms)",
                            self.node_id, describe(exc), self.lease_ms)
        self.connected = False
        self._close_connections()
        log.info("cluster node %s left", self.node_id)

    async def _sweep_self(self, cmd: RespConnection) -> None:
        """Remove this node's members and connections, then deregister it."""
        for room, r in self.api.chat_room.rooms.items():
            if r.members or self._channel(room) in self._channels:
                cmd.send(b"DEL", self._members_key(room))
                cmd.send(b"ZREM", self._index_key(room), self.node_id)
        ids = await cmd.execute(b"SMEMBERS", self.k_node_conns)
        for chunk in _chunks(list(ids or ())):
            cmd.send(b"HDEL", self.k_conns, *chunk)
        cmd.send(b"DEL", self.k_node_conns)
        cmd.send(b"ZREM", self.k_nodes, self.node_id)
        await cmd.execute(b"DEL", self.k_node)

    def _close_connections(self) -> None:
        for conn in (self._cmd, self._sub):
            if conn is not None:
                conn.abort()
        self._cmd = self._sub = None
        for waiters in self._sub_waiters.values():
            for fut in waiters:
                if fut is not None and not fut.done():
                    fut.set_exception(ConnectionError("Redis connection lost"))
        self._sub_waiters.clear()
        self._sub_pending.clear()

    async def _connect(self) -> None:
        """Open both connections, subscribe to everything wanted, rewrite this node's
        state. Raises one of _DOWN on failure (the caller closes what was opened)."""
        self._close_connections()
        name = f"hero-fast-{self.node_id}"
        cmd = self._cmd = await open_connection(self.address, timeout=self.timeout, name=name + "-cmd",
                                                on_lost=self._connection_lost, on_error_reply=self._on_error_reply)
        sub = await open_connection(self.address, timeout=self.timeout, name=name + "-sub", select_db=False,
                                    on_push=self._on_push, on_lost=self._connection_lost,
                                    on_error_reply=self._on_error_reply, on_push_error=self._on_push_error)
        if self._cmd is not cmd:  # lost meanwhile
            sub.abort()
            raise ConnectionError("Redis connection lost while connecting")
        self._sub = sub
        # From here on joins subscribe by themselves; this covers the rooms known so far.
        channels = [self.ch_node, self.ch_ctl, *self._channels]
        await within(self._subscribe(channels), self.timeout, f"subscribing to {len(channels)} channels")
        if self._cmd is not cmd or self._sub is not sub:
            raise ConnectionError("Redis connection lost while connecting")
        self._alive_at = time.monotonic()
        self.connected = True
        self._dirty = True
        await within(self._resync(), self.timeout, "writing this node's state")

    def _connection_lost(self, conn: RespConnection, exc: Exception | None) -> None:
        if conn is self._cmd or conn is self._sub:
            self._fail(f"Redis connection lost ({exc or 'closed by the server'})")

    def _fail(self, reason: str) -> None:
        """The bus is down: count it once, drop both connections, let _supervise reconnect."""
        if self._stopping:
            return
        was_connected = self.connected
        self.connected = False
        self._close_connections()
        if was_connected:
            if self._outage_since is None:
                # the outage began when Redis was last heard from, not when it was noticed
                self._outage_since = self._alive_at
            if self._numbered_rooms is not None:
                self._numbered_rooms.suspend()
            self.counters["outages"] += 1
            log.warning("cluster bus outage on node %s: %s; room messages from other nodes are lost "
                        "until it is back", self.node_id, reason)
            assert self._lost is not None
            self._lost.set()

    async def _supervise(self) -> None:
        """Reconnect after each outage with exponential back-off, reset after success."""
        assert self._lost is not None
        while not self._stopping:
            await self._lost.wait()
            self._lost.clear()
            delay = self.backoff_min
            while not self._stopping and not self.connected:
                await asyncio.sleep(delay)
                try:
                    await self._connect()
                except Exception as exc:
                    self.connected = False
                    self._close_connections()
                    self.counters["reconnect_failures"] += 1
                    if not isinstance(exc, _DOWN):
                        log.exception("cluster reconnect failed")
                    delay = min(delay * 2, self.backoff_max)
                    log.info("cluster bus still down (%s); next try in %.1f s", describe(exc), delay)
            if self.connected and not self._stopping:
                self._recovered()

    def _recovered(self) -> None:
        since = self._outage_since
        self._outage_since = None
        outage_ms = int((time.monotonic() - since) * 1000) if since is not None else 0
        self.counters["reconnects"] += 1
        self._announce_dropped()
        notified = self._notify_missed(outage_ms)
        if self._numbered_rooms is not None:
            self._numbered_rooms.resume()  # rooms with history read what they missed from their streams
        log.warning("cluster bus back on node %s after %d ms; %d local members of rooms without history told "
                    "they may have missed room messages", self.node_id, outage_ms, notified)

    def _notify_missed(self, outage_ms: int, rooms: Iterable[str] | None = None) -> int:
        """Tell the local members of ``rooms`` (default: every room) without history that
        messages may have been lost; returns how many were told. (Rooms with history catch
        up from their streams and report exactly what is lost: hero_fast.cluster.numbering.)"""
        n = 0
        chat = self.api.chat_room
        for room in chat.rooms if rooms is None else rooms:
            r = chat.rooms.get(room)
            if r is None or not r.members or r.history is not None:
                continue
            n += r.deliver(encode_frame(_TEXT, orjson.dumps({
                "context": "api", "event": "missedMessages", "room": room, "outageMs": outage_ms,
                "message": _MISSED_TEXT,
            })))
        self.counters["missed_notices"] += n
        return n

    def _announce_dropped(self) -> None:
        """Tell the other nodes which rooms this node could not publish to, and for how long."""
        cmd = self._cmd
        if not self._dropped_rooms or cmd is None or not self.connected or cmd.backlog > _MAX_BACKLOG // 2:
            return
        dropped, self._dropped_rooms = self._dropped_rooms, {}
        now = time.monotonic()
        for room, since in dropped.items():
            if room in self.api.chat_room.rooms:
                ms = int((now - since) * 1000)
                self._publish(cmd, self._channel(room), _bus.encode("missed", o=self.node_id, ms=ms))
                self.counters["missed_announced"] += 1

    # -- periodic work: probe, lease refresh, dead-node sweep -----------------------------

    async def _watch(self) -> None:
        """Liveness: a probe every quarter of ``probeInterval``; nothing heard from Redis for a
        whole ``probeInterval`` (a hung Redis, a silent subscriber) is an outage, noticed at
        that deadline whatever else is waiting for Redis."""
        interval = self.probe_interval
        every = interval / 4
        grace = min(every, 0.05)
        next_probe = judge_from = 0.0
        while not self._stopping:
            cmd = self._cmd
            now = time.monotonic()
            deadline = max(self._alive_at + interval, judge_from)
            if not self.connected or cmd is None:
                wake = every
            elif cmd.oldest_wait(now) > self.timeout:
                self._fail(f"Redis has not answered for {self.timeout} s")
                continue
            elif now > deadline:
                self.counters["probe_failures"] += 1
                self._fail(f"nothing heard from Redis for {now - self._alive_at:.2f} s (probes every {every:g} s)")
                continue
            else:
                if now >= next_probe:
                    next_probe = now + every
                    self._probe(cmd)
                wake = max(0.001, min(next_probe, deadline) - now)
            await asyncio.sleep(wake)
            if time.monotonic() - now - wake > grace:
                # woken late (the loop was blocked): what Redis sent meanwhile is read first
                judge_from = time.monotonic() + grace

    async def _maintain(self) -> None:
        refresh = self.lease_ms / 3000
        tick = max(0.05, min(refresh, self.probe_interval) / 2)
        now = time.monotonic()
        next_announce = now + self.probe_interval
        next_refresh = now + refresh
        next_sweep = now + self.lease_ms / 1000
        while not self._stopping:
            await asyncio.sleep(tick)
            cmd = self._cmd
            if not self.connected or cmd is None:
                continue
            now = time.monotonic()
            try:
                if now >= next_announce:
                    next_announce = now + self.probe_interval
                    self._announce_dropped()
                if now >= next_refresh or self._dirty:
                    next_refresh = now + refresh
                    await within(self._refresh(cmd), self.timeout, "refreshing this node's leases")
                if now >= next_sweep:
                    next_sweep = now + self.lease_ms / 1000
                    await within(self._sweep_dead_nodes(cmd), self.timeout, "sweeping dead nodes")
            except _DOWN as exc:
                if self.connected and cmd is self._cmd:
                    log.warning("cluster maintenance failed on node %s: %s", self.node_id, describe(exc))
                    self._dirty = True
            except Exception:
                log.exception("cluster maintenance failed")

    def _probe(self, cmd: RespConnection) -> None:
        """Publish to our own node channel: the subscriber hears Redis at least this often."""
        self._probe_seq += 1
        fut = cmd.execute(b"PUBLISH", self.ch_node, self._seal(self.ch_node, _bus.encode(
            "probe", o=self.node_id, s=self._probe_seq)))

        def check(f: asyncio.Future[Any]) -> None:
            if not f.cancelled() and f.exception() is None and f.result() == 0 and cmd is self._cmd:
                self.counters["probe_failures"] += 1
                self._fail("the subscriber is not registered in Redis (probe reached no one)")

        fut.add_done_callback(check)

    def _lease_commands(self, cmd: RespConnection, expiry: int) -> None:
        info = orjson.dumps({"pid": os.getpid(), "host": socket.gethostname(), "node": self.node_id})
        cmd.send(b"SET", self.k_node, info, b"PX", self.lease_ms)
        cmd.send(b"ZADD", self.k_nodes, expiry, self.node_id)

    async def _refresh(self, cmd: RespConnection) -> None:
        """Extend this node's leases; rewrite everything if a key turns out to be gone."""
        if self._dirty:
            await self._resync()
            return
        expiry = _now_ms() + self.lease_ms
        self._lease_commands(cmd, expiry)
        checks = []
        for room, r in self.api.chat_room.rooms.items():
            if r.members:
                checks.append(cmd.execute(b"PEXPIRE", self._members_key(room), self.lease_ms))
                cmd.send(b"ZADD", self._index_key(room), expiry, self.node_id)
                self._keep_numbering(cmd, room)
        cmd.send(b"PEXPIRE", self.k_node_conns, max(self.lease_ms * 20, 600_000))
        self.counters["lease_refreshes"] += 1
        if checks and 0 in await asyncio.gather(*checks):
            log.warning("cluster node %s: membership keys were missing in Redis (restarted or flushed?); "
                        "rewriting them", self.node_id)
            await self._resync()

    async def _resync(self) -> None:
        """Write this node's whole state into Redis (at connect, after an outage, or when a
        refresh found keys missing), then learn the rooms other nodes made."""
        cmd = self._cmd
        if cmd is None:
            return
        self._dirty = False
        chat = self.api.chat_room
        expiry = _now_ms() + self.lease_ms
        self._lease_commands(cmd, expiry)
        for chunk in _chunks(list(chat.rooms)):
            cmd.send(b"SADD", self.k_rooms, *chunk)
            cmd.send(b"HSET", self.keys.room_options, *[x for room in chunk for x in (room, self._room_options(room))])
        for room, r in chat.rooms.items():
            if not r.members:
                continue
            self._keep_numbering(cmd, room)
            key = self._members_key(room)
            cmd.send(b"MULTI")
            cmd.send(b"DEL", key)
            for chunk in _chunks(list(r.members.items())):
                cmd.send(b"HSET", key, *[x for cid, (_, joined) in chunk for x in (cid, joined)])
            cmd.send(b"PEXPIRE", key, self.lease_ms)
            cmd.send(b"EXEC")
            cmd.send(b"ZADD", self._index_key(room), expiry, self.node_id)
        ids = [c.id for c in self.api.connections.by_id.values() if c.ws is not None and not c.destroyed]
        cmd.send(b"DEL", self.k_node_conns)
        for chunk in _chunks(ids):
            cmd.send(b"SADD", self.k_node_conns, *chunk)
            cmd.send(b"HSET", self.k_conns, *[x for cid in chunk for x in (cid, self.node_id)])
        cmd.send(b"PEXPIRE", self.k_node_conns, max(self.lease_ms * 20, 600_000))
        unannounced, self._unannounced = self._unannounced, {}
        for room, exists in unannounced.items():
            self._announce_room(cmd, room, exists)
        self.counters["resyncs"] += 1
        try:
            names, options = await asyncio.gather(cmd.execute(b"SMEMBERS", self.k_rooms),
                                                  cmd.execute(b"HGETALL", self.keys.room_options))
        except BaseException:
            self._dirty = True
            self._unannounced = {**unannounced, **self._unannounced}
            raise
        history = dict(zip(options[::2], options[1::2], strict=False)) if isinstance(options, list) else {}
        for raw in names or ():
            try:
                name = raw.decode()
            except (UnicodeDecodeError, AttributeError):
                self.counters["invalid"] += 1
                continue
            chat.add_local(name, self._history_option(history.get(raw)))

    async def _sweep_dead_nodes(self, cmd: RespConnection) -> None:
        """Drop the connection registry entries of nodes whose lease ran out (their room
        members have already expired with their keys)."""
        cutoff = _now_ms() - self.lease_ms
        candidates = await cmd.execute(b"ZRANGEBYSCORE", self.k_nodes, b"-inf", cutoff)
        for raw in candidates or ():
            if raw == self.node_id.encode() or not isinstance(raw, bytes):
                continue
            if await cmd.execute(b"EXISTS", self.prefix + b"node:" + raw):
                continue  # alive after all (clock skew): leave it
            lock = await cmd.execute(b"SET", self.prefix + b"sweep:" + raw, self.node_id, b"NX", b"PX", 60_000)
            if lock is None:
                continue  # another node sweeps it
            ids = await cmd.execute(b"SMEMBERS", self.prefix + b"nc:" + raw)
            for chunk in _chunks(list(ids or ())):
                cmd.send(b"HDEL", self.k_conns, *chunk)
            cmd.send(b"DEL", self.prefix + b"nc:" + raw)
            await cmd.execute(b"ZREM", self.k_nodes, raw)
            self.counters["dead_nodes_swept"] += 1
            log.info("cluster node %s swept dead node %s (%d connections)", self.node_id, raw.decode(
                errors="replace"), len(ids or ()))

    # -- writes ----------------------------------------------------------------------

    def _writer(self) -> RespConnection | None:
        """The command connection when it is up; else None and the state is marked for a
        full rewrite once the bus is back."""
        cmd = self._cmd
        if cmd is None or not self.connected:
            self._dirty = True
            if self._outage_since is not None:
                self.counters["writes_dropped"] += 1
            return None
        return cmd

    def room_added(self, room: str) -> None:
        self._room_changed(room, True)

    def room_destroyed(self, room: str) -> None:
        self._unsubscribe(room)
        self._room_channel.pop(room, None)
        self._room_changed(room, False)

    def _room_changed(self, room: str, exists: bool) -> None:
        cmd = self._writer()
        if cmd is None:
            # Rooms made at boot (before the bus is up) or during an outage: the other
            # nodes are told at the next resync; the latest change of a room wins.
            self._unannounced.pop(room, None)
            self._unannounced[room] = exists
            return
        self._announce_room(cmd, room, exists)

    def _announce_room(self, cmd: RespConnection, room: str, exists: bool) -> None:
        if exists:
            r = self.api.chat_room.rooms.get(room)
            h = r.history if r is not None else None
            cmd.send(b"SADD", self.k_rooms, room)
            cmd.send(b"HSET", self.keys.room_options, room, self._room_options(room))
            self._publish(cmd, self.ch_ctl, _bus.encode(
                "roomAdd", o=self.node_id, r=room, h={"size": h.size if h else 0, "ttl": h.ttl_ms if h else 0}))
        else:
            cmd.send(b"SREM", self.k_rooms, room)
            cmd.send(b"HDEL", self.keys.room_options, room)
            cmd.send(b"DEL", self._members_key(room), *self.keys.history(room))
            cmd.send(b"ZREM", self._index_key(room), self.node_id)
            self._publish(cmd, self.ch_ctl, _bus.encode("roomDestroy", o=self.node_id, r=room))

    def _room_options(self, room: str) -> bytes:
        """What ``P roomh`` keeps of a room: its history (as publishers number its messages)."""
        r = self.api.chat_room.rooms.get(room)
        h = r.history if r is not None else None
        if h is None:
            return b'{"size":0,"ttl":0,"keep":0}'
        return orjson.dumps({"size": h.size, "ttl": h.ttl_ms, "keep": self._numbered.keep(h.ttl_ms)})

    def _history_option(self, raw: Any) -> dict[str, Any] | None:
        """A room's history options as another node announced them (untrusted: chat's checks
        refuse what is not a valid history), or None for the configured default."""
        if raw is None:
            return None
        try:
            options = orjson.loads(raw)
        except (orjson.JSONDecodeError, TypeError):
            self.counters["invalid"] += 1
            return None
        return _history(options, self.counters)

    def _keep_numbering(self, cmd: RespConnection, room: str) -> None:
        """A room with members here keeps its numbering (epoch, offset) in Redis, so a member
        that drops and recovers later finds it unchanged."""
        r = self.api.chat_room.rooms.get(room)
        if r is not None and r.history is not None:
            epoch, offset, _ = self.keys.history(room)
            keep = self._numbered.keep(r.history.ttl_ms)
            cmd.send(b"PEXPIRE", epoch, keep)
            cmd.send(b"PEXPIRE", offset, keep)

    def member_joined(self, room: str, connection_id: str, joined_at: int, first: bool) -> Any:
        ch = self._channel(room)
        wait_sub: asyncio.Future[None] | None = None
        synced: asyncio.Future[None] | None = None
        if ch not in self._channels:
            self._channels[ch] = room
            if self._sub is not None:
                wait_sub = self._sub_pending[ch] = self._subscribe([ch])
            r = self.api.chat_room.rooms.get(room)
            if r is not None and r.history is not None:
                # the first member here of a room with history: where its numbering is, once
                # its messages reach this node (the join answers with that position)
                synced = self._numbered.track(room, wait_sub)
        else:
            wait_sub = self._sub_pending.get(ch)
            if self._numbered_rooms is not None:
                synced = self._numbered_rooms.settled(room)
        cmd = self._writer()
        if cmd is None:
            return None  # the bus is down: local members work, the rest follows at reconnect
        key = self._members_key(room)
        cmd.send(b"HSET", key, connection_id, joined_at)
        cmd.send(b"PEXPIRE", key, self.lease_ms)
        written = cmd.execute(b"ZADD", self._index_key(room), _now_ms() + self.lease_ms, self.node_id)
        return self._bounded(written, wait_sub, synced)

    async def _bounded(self, *waits: asyncio.Future[Any] | None) -> None:
        """Wait (bounded) until the membership is written and the room's messages reach
        this node; a failure only logs: the join stands locally and is repaired later."""
        try:
            await within(asyncio.gather(*(asyncio.shield(w) for w in waits if w is not None)), self.timeout,
                         "confirming a join")
        except _DOWN as exc:
            self._dirty = True
            log.debug("cluster join not confirmed: %s", describe(exc))

    def member_left(self, room: str, connection_id: str, last: bool) -> None:
        if last:
            self._unsubscribe(room)
        cmd = self._writer()
        if cmd is None:
            return
        cmd.send(b"HDEL", self._members_key(room), connection_id)
        if last:
            cmd.send(b"ZREM", self._index_key(room), self.node_id)

    def _subscribe(self, channels: list[bytes]) -> asyncio.Future[None]:
        """SUBSCRIBE; the future resolves when Redis confirms the last channel."""
        sub = self._sub
        assert sub is not None and sub.loop is not None
        fut: asyncio.Future[None] = sub.loop.create_future()
        for i, ch in enumerate(channels):
            self._sub_waiters.setdefault(ch, deque()).append(fut if i == len(channels) - 1 else None)
        sub.subscribe(channels)
        return fut

    def _unsubscribe(self, room: str) -> None:
        ch = self._channel(room)
        if self._numbered_rooms is not None:
            self._numbered_rooms.untrack(room)
        if self._channels.pop(ch, None) is not None and self._sub is not None:
            self._sub.unsubscribe([ch])

    def _conn_created(self, conn: Connection) -> None:
        if conn.ws is None:
            return
        cmd = self._writer()
        if cmd is not None:
            cmd.send(b"HSET", self.k_conns, conn.id, self.node_id)
            cmd.send(b"SADD", self.k_node_conns, conn.id)

    def _conn_destroyed(self, conn: Connection) -> None:
        if conn.ws is None or self._stopping:
            return
        cmd = self._writer()
        if cmd is not None:
            cmd.send(b"HDEL", self.k_conns, conn.id)
            cmd.send(b"SREM", self.k_node_conns, conn.id)

    # -- say and server push ---------------------------------------------------------------

    def _ready(self) -> RespConnection | None:
        """The command connection when a publish can go now: the bus is up and not backlogged."""
        cmd = self._cmd
        if cmd is None or not self.connected or cmd.backlog > _MAX_BACKLOG or cmd.buffered > _MAX_BUFFERED:
            return None
        return cmd

    def publish_say(self, room: str, body: bytes) -> None:
        cmd = self._ready()
        if cmd is None:
            self.counters["publish_dropped"] += 1
            if room not in self._dropped_rooms:
                self._dropped_rooms[room] = time.monotonic()
            return
        self._publish(cmd, self._channel(room), self._say_prefix + body + b"}")
        self.counters["published"] += 1

    def publish_say_history(self, room: str, body: bytes, size: int, ttl_ms: int) -> None:
        from hero_fast.chat import ChatError

        cmd = self._ready()
        if cmd is None:
            # it cannot be numbered: refused, so that nobody sees a message the others never get
            self.counters["publish_dropped"] += 1
            raise ChatError("the server lost its connection to the cluster bus; the message was not sent")
        fire(cmd, self._ops.say_call(room, body, (size, ttl_ms, self._numbered.keep(ttl_ms))), self._script_failed)
        self.counters["published"] += 1

    def publish_broadcast(self, body: bytes) -> None:
        if self._relaying:
            return  # another node's broadcast, delivered here
        cmd = self._ready()
        if cmd is None:
            self.counters["publish_dropped"] += 1
            return
        command = next(self._ops.broadcast(body))
        assert isinstance(command, tuple)
        cmd.send(*command)
        self.counters["broadcasts_sent"] += 1

    def _script_failed(self, exc: BaseException) -> None:
        """An error reply to a script run without waiting (e.g. NOPERM from a too narrow ACL)."""
        self._on_error_reply(b"EVALSHA", exc if isinstance(exc, RespError) else RespError(describe(exc)))

    def _seal(self, channel: bytes, body: bytes) -> bytes:
        """What to PUBLISH for ``body``: signed when cluster.secret is set. Call it right
        before the message is queued, so each receiver sees this node's sequence increase."""
        return self._signer.seal(channel, body)

    def _publish(self, cmd: RespConnection, channel: bytes, body: bytes) -> None:
        cmd.send(b"PUBLISH", channel, self._seal(channel, body))

    async def send(self, connection_id: str, message: Any) -> Sent:
        cmd = self._live_connection()
        if cmd is None:
            return await super().send(connection_id, message)  # held here if it dropped here meanwhile
        try:
            sent = await run(cmd, self._ops.send(connection_id, message, self.node_id.encode()), self.timeout,
                             "pushing to a connection")
        except (*_DOWN, _bus.BusError) as exc:
            log.info("cluster send to %s not delivered: %s", connection_id[:40], describe(exc))
            return Sent.NOWHERE
        if sent is Sent.REMOTE:
            self.counters["sent_remote"] += 1
        elif sent is Sent.HELD:
            self.counters["send_held"] += 1
        return sent

    # -- connection state recovery: in Redis, so a client may come back to any node -------------

    def recovery_save(self, key: str, state: bytes, connection_id: str, ttl_ms: int) -> None:
        cmd = self._live_connection()
        if cmd is None:  # kept here until the bus is back is better than lost: a client may come back here
            super().recovery_save(key, state, connection_id, ttl_ms)
            return
        fire(cmd, self._ops.save_call(key, state, connection_id, ttl_ms, self._max_pushes, self._max_push_bytes),
             self._script_failed)

    def recovery_take(self, key: str) -> Any:
        taken = super().recovery_take(key)  # saved here while the bus was down
        return taken if taken is not None else self._redis_op(self._ops.take(key), None, "taking a saved state")

    def recovery_hold(self, connection_id: str, push: bytes) -> Any:
        if super().recovery_hold(connection_id, push):
            return True
        return self._redis_op(self._ops.hold(connection_id, push), False, "holding a push")

    async def _redis_op(self, op: Any, failed: Any, what: str) -> Any:
        """Run ``op``; ``failed`` when Redis cannot answer (logged)."""
        cmd = self._live_connection()
        if cmd is None:
            op.close()
            return failed
        try:
            return await run(cmd, op, self.timeout, what)
        except (*_DOWN, _bus.BusError) as exc:
            log.warning("cluster: %s failed on node %s: %s", what, self.node_id, describe(exc))
            return failed

    def history_since(self, room: str, offset: int, epoch: str | None) -> Any:
        r = self.api.chat_room.rooms.get(room)
        if r is None or r.history is None:
            return [], HistoryGap("no history")
        return self._numbered.since(room, offset, epoch)

    def remote_members(self, room: str) -> Any:
        return self._remote_members(room)

    async def _remote_members(self, room: str) -> dict[str, int]:
        from hero_fast.chat import ChatError

        cmd = self._cmd
        if cmd is None or not self.connected:
            raise ChatError("room membership of other nodes is unavailable right now (the cluster bus is down)")
        now = _now_ms()
        index = self._index_key(room)
        try:
            nodes = await within(cmd.execute(b"ZRANGEBYSCORE", index, now - self.lease_ms, b"+inf"), self.timeout,
                                 "listing the room's nodes")
            cmd.send(b"ZREMRANGEBYSCORE", index, b"-inf", now - 2 * self.lease_ms)
            me = self.node_id.encode()
            others = [n for n in nodes or () if isinstance(n, bytes) and n != me and n.isalnum()]
            replies = await within(
                asyncio.gather(*(cmd.execute(b"HGETALL", self._members_key(room, n)) for n in others)),
                self.timeout, "reading the room's members")
        except _DOWN as exc:
            log.info("roomView of %r on node %s: %s", room[:80], self.node_id, describe(exc))
            raise ChatError("room membership of other nodes is unavailable right now") from None
        members: dict[str, int] = {}
        for flat in replies:
            if not isinstance(flat, list):
                continue
            for i in range(0, len(flat) - 1, 2):
                cid, joined = flat[i], flat[i + 1]
                try:
                    members[cid.decode()] = int(joined)
                except (ValueError, AttributeError, UnicodeDecodeError):
                    self.counters["invalid"] += 1
        return members

    # -- the subscriber: everything read from the bus is untrusted -----------------------

    def _read(self, channel: bytes, data: Any, allowed: frozenset[str]) -> tuple[str, dict[str, Any]]:
        """Check one message from ``channel`` (size, signature, schema, freshness); raises BusError."""
        if type(data) is not bytes or len(data) > self.max_bus:
            raise _bus.BusError("not a byte string, or over maxBusMessage")
        body, t, q = self._signer.open(channel, data)
        kind, msg = _bus.decode(body, allowed, self.max_bus)
        if self._signer.enabled:
            self._replay.check(msg["o"], t, q)
        self.counters["received"] += 1
        return kind, msg

    def _on_push(self, reply: list[Any]) -> None:
        self._alive_at = time.monotonic()
        if len(reply) == 3 and reply[0] == b"message":
            ch, data = reply[1], reply[2]
            room = self._channels.get(ch)
            kind = "?"
            try:
                if room is not None:
                    if type(data) is bytes and data[:1] == b"#":  # numbered (a room with history): ours too
                        kind = "say"
                        offset, epoch, data = _bus.split_numbered(data)
                        _, msg = self._read(ch, data, _bus.SAY_KINDS)
                        self._numbered.received(room, offset, epoch, msg["p"])
                        return
                    if type(data) is bytes and data.startswith(self._say_prefix, self._body_at):
                        return  # our own say, already delivered here
                    kind, msg = self._read(ch, data, _bus.ROOM_KINDS)
                    if msg["o"] == self.node_id:
                        pass
                    elif kind == "say":
                        self.counters["delivered_remote"] += self.api.chat_room.deliver_remote(room, msg["p"])
                    else:  # "missed": the origin could not publish here for a while
                        self._notify_missed(msg["ms"], (room,))
                elif ch == self.ch_node:
                    kind, msg = self._read(ch, data, _bus.NODE_KINDS)
                    self._handlers[kind](msg)
                elif ch == self.ch_ctl:
                    kind, msg = self._read(ch, data, _bus.CTL_KINDS)
                    if msg["o"] != self.node_id:
                        self._handlers[kind](msg)
                # else: a message for a room just left; ignore it
            except _bus.BusError as exc:
                self.counters[exc.counter] += 1
                self._warn(exc.counter, "cluster bus: node %s refused a message on %r (%s): %s; %d %s so far",
                           self.node_id, ch[:80], exc.counter, exc, self.counters[exc.counter], exc.counter)
            except Exception:
                self.counters["handler_errors"] += 1
                self._warn("handler:" + kind, "cluster bus: node %s failed to handle a %r message on %r (%d so far)",
                           self.node_id, kind, ch[:80], self.counters["handler_errors"], exc_info=True)
        elif len(reply) >= 2 and reply[0] == b"subscribe":
            waiters = self._sub_waiters.get(reply[1])
            if waiters:
                fut = waiters.popleft()
                if not waiters:
                    del self._sub_waiters[reply[1]]
                if fut is not None and not fut.done():
                    fut.set_result(None)
                pending = self._sub_pending.get(reply[1])
                if pending is not None and pending.done():
                    del self._sub_pending[reply[1]]

    def _on_error_reply(self, command: bytes, error: RespError) -> None:
        self.counters["error_replies"] += 1
        name = command.decode(errors="replace")
        self._warn("reply:" + name, "cluster: Redis refused %s on node %s: %s (%d error replies so far)", name,
                   self.node_id, error, self.counters["error_replies"])

    def _on_push_error(self, exc: Exception) -> None:
        self.counters["push_errors"] += 1
        self._warn("push", "cluster bus: the subscriber failed on a message (%d so far)", self.counters["push_errors"],
                   exc_info=exc)

    def _warn(self, key: str, text: str, *args: Any, exc_info: Any = None) -> None:
        """A warning logged at most once per ``_WARN_EVERY`` seconds for each ``key``; the
        next one says how many were left out meanwhile."""
        now = time.monotonic()
        last, skipped = self._warned.get(key, (-_WARN_EVERY, 0))
        if now - last < _WARN_EVERY:
            self._warned[key] = (last, skipped + 1)
            return
        self._warned[key] = (now, 0)
        if skipped:
            text += f" [{skipped} more like this in the last {now - last:.0f} s were not logged]"
        log.warning(text, *args, exc_info=exc_info)

    def _on_probe(self, msg: dict[str, Any]) -> None:
        """A probe came back (hearing it, like anything else, is a sign of life)."""

    def _on_send(self, msg: dict[str, Any]) -> None:
        conn = self.api.connections.get(msg["c"])
        if conn is not None and conn.send(msg["m"]):
            self.counters["send_received"] += 1
            return
        # it dropped here since the sender looked it up: held if it may recover
        held = self.api.recovery.hold(msg["c"], msg["m"])
        if inspect.isawaitable(held):
            task = asyncio.ensure_future(held)
            task.add_done_callback(self._held)
        else:
            self.counters["send_held" if held else "send_unknown"] += 1

    def _held(self, task: asyncio.Future[Any]) -> None:
        held = not task.cancelled() and task.exception() is None and task.result()
        self.counters["send_held" if held else "send_unknown"] += 1

    def _on_room_add(self, msg: dict[str, Any]) -> None:
        h = msg.get("h")
        self.api.chat_room.add_local(msg["r"], None if h is None else _history(h, self.counters))

    def _on_broadcast(self, msg: dict[str, Any]) -> None:
        self._relaying = True
        try:
            self.api.connections.broadcast(msg["m"])
        finally:
            self._relaying = False
        self.counters["broadcasts_received"] += 1

    def _on_room_destroy(self, msg: dict[str, Any]) -> None:
        room = msg["r"]
        had_members = bool(self.api.chat_room.rooms.get(room) and self.api.chat_room.rooms[room].members)
        if self.api.chat_room.destroy_local(room):
            self._unsubscribe(room)
            self._room_channel.pop(room, None)
            if had_members:
                cmd = self._writer()
                if cmd is not None:
                    cmd.send(b"DEL", self._members_key(room))
                    cmd.send(b"ZREM", self._index_key(room), self.node_id)

    def stats(self) -> dict[str, Any]:
        return {
            "backend": "redis",
            "node": self.node_id,
            "connected": self.connected,
            "subscribedRooms": len(self._channels),
            **self.counters,
        }

