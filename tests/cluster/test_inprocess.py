"""Cluster behaviour with two Api nodes in this process (fast, and lets a test reach
inside a node: silence its subscriber, read its counters)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hero_fast import Sent
from hero_fast.app import Api
from hero_fast.chat import ChatError
from hero_fast.client import Client
from hero_fast.cluster import ClusterError, MemoryBackend
from hero_fast.cluster.redis_backend import RedisBackend

from .conftest import eventually, free_port, make_project, node_env, pushed

T = 5.0


def overrides(redis_url: str, prefix: str, **cluster: Any) -> dict[str, Any]:
    return {
        "redis_url": redis_url,
        "cluster": {"prefix": prefix, "leaseTtl": 1500, "probeInterval": 200, "reconnectMin": 20,
                    "reconnectMax": 200, "commandTimeout": 2, **cluster},
        "servers": {"websocket": {"server": {"pingInterval": 0}}},
        "logging": {"accessLog": False},
    }


@pytest.fixture
async def pair(tmp_path: Path, redis_url: str, prefix: str) -> AsyncIterator[tuple[Api, Api]]:
    project = make_project(tmp_path / "p")
    a = Api(project, overrides=overrides(redis_url, prefix, maxBusMessage=4096))
    b = Api(project, overrides=overrides(redis_url, prefix, maxBusMessage=4096))
    await a.start(port=0)
    await b.start(port=0)
    yield a, b
    await asyncio.wait_for(a.stop(), 10)
    await asyncio.wait_for(b.stop(), 10)


async def client(api: Api, room: str | None = "defaultRoom") -> Client:
    c = Client(f"ws://127.0.0.1:{api.port}/primus", timeout=T)
    await c.connect()
    if room:
        assert (await c.room_add(room))["status"] == "OK"
    return c


def said(room: str, message: Any = None) -> Any:
    return lambda m: (isinstance(m, dict) and m.get("context") == "user" and m.get("room") == room
                      and (message is None or m.get("message") == message))


def missed(room: str) -> Any:
    return lambda m: isinstance(m, dict) and m.get("event") == "missedMessages" and m.get("room") == room


async def crosses(sender: Client, receiver: Client, room: str = "defaultRoom") -> None:
    for n in range(40):
        wait = asyncio.ensure_future(receiver.wait_for(said(room, n), timeout=0.3))
        await asyncio.sleep(0)
        await sender.say(room, n)
        try:
            await wait
            return
        except asyncio.TimeoutError:
            continue
    raise AssertionError("say does not cross")


def test_memory_backend_is_the_default(tmp_path: Path) -> None:
    api = Api(make_project(tmp_path / "p"))
    assert isinstance(api.cluster, MemoryBackend) and not api.cluster.distributed
    assert api.chat_room._bus is None
    assert api.cluster.stats() == {"backend": "MemoryBackend", "node": "local"}


async def test_memory_backend_send_is_local(tmp_path: Path) -> None:
    api = Api(make_project(tmp_path / "p"), overrides={"servers": {"websocket": {"server": {"pingInterval": 0}}}})
    await api.start(port=0)
    try:
        c = await client(api, None)
        wait = asyncio.ensure_future(c.wait_for(pushed({"context": "alert", "x": 1}), timeout=T))
        assert await api.connections.send(await c.fetch_id(), {"context": "alert", "x": 1}) is Sent.LOCAL
        await wait
        assert await api.connections.send("nobody", {}) is Sent.NOWHERE
        await c.disconnect()
    finally:
        await api.stop()


async def test_unreachable_redis_fails_start_clearly(tmp_path: Path) -> None:
    api = Api(make_project(tmp_path / "p"),
              overrides={"redis_url": f"redis://127.0.0.1:{free_port()}/0", "cluster": {"commandTimeout": 1}})
    with pytest.raises(ClusterError, match=r"cannot use Redis at redis://127\.0\.0\.1"):
        await api.start(port=0)
    assert api.server is None
    bad = Api(make_project(tmp_path / "q"), overrides={"redis_url": "http://nope"})
    with pytest.raises(ClusterError, match="unsupported Redis URL scheme"):
        await bad.start(port=0)


@pytest.mark.parametrize("where", ["flag", "config"])
def test_cli_workers_with_unreachable_redis_exit_1(tmp_path: Path, where: str) -> None:
    project = make_project(tmp_path / "p")
    url = f"redis://127.0.0.1:{free_port()}/0"
    args = ["--redis-url", url]
    if where == "config":  # the URL may come from the project's config too
        (project / "config").mkdir()
        (project / "config" / "cluster.py").write_text(f"DEFAULT = {{'redis_url': {url!r}}}\n")
        args = []
    env = node_env("unused:", commandTimeout=1)
    result = subprocess.run(
        [sys.executable, "-m", "hero_fast.cli", "serve", "--project", str(project), "--port", "0", "--workers", "2",
         *args], env=env, capture_output=True, text=True, timeout=30)
    assert result.returncode == 1, result.stderr
    assert "cannot use Redis at redis://127.0.0.1" in result.stderr
    assert "failed at startup" in result.stderr and "needs a Redis URL" not in result.stderr


async def test_join_waits_for_the_subscription_and_the_membership(pair: tuple[Api, Api], redis: Any,
                                                                  prefix: str) -> None:
    a, b = pair
    ca, cb = await client(a), await client(b)
    # right after roomAdd returned: b's membership is in Redis and b receives the room
    key = f"{prefix}rm:{b.cluster.node_id}:defaultRoom".encode()
    assert await redis.execute(b"HGET", key, await cb.fetch_id()) is not None
    assert 0 < await redis.execute(b"PTTL", key) <= 1500
    wait = asyncio.ensure_future(cb.wait_for(said("defaultRoom", "first"), timeout=T))
    await asyncio.sleep(0)
    await ca.say("defaultRoom", "first")
    await wait
    # leaving the last local member unsubscribes the node from the room channel
    await cb.room_leave("defaultRoom")
    assert b.cluster.stats()["subscribedRooms"] == 0
    assert await redis.execute(b"EXISTS", key) == 0
    await ca.disconnect()
    await cb.disconnect()


async def test_silent_subscriber_is_detected_by_the_probe(pair: tuple[Api, Api]) -> None:
    a, b = pair
    ca, cb = await client(a), await client(b)
    sub = b.cluster._sub  # type: ignore[attr-defined]
    sub._on_push = lambda reply: None  # Redis keeps it subscribed, but nothing arrives any more
    notice = await cb.wait_for(missed("defaultRoom"), timeout=T)
    assert notice["context"] == "api" and notice["outageMs"] >= 0
    stats = b.cluster.stats()
    assert stats["probe_failures"] >= 1 and stats["outages"] >= 1 and stats["reconnects"] >= 1
    assert b.cluster._sub is not sub  # type: ignore[attr-defined]
    await crosses(ca, cb)
    await ca.disconnect()
    await cb.disconnect()


async def test_killed_subscriber_reconnects_and_members_are_told(pair: tuple[Api, Api], redis: Any) -> None:
    a, b = pair
    ca, cb = await client(a), await client(b)
    cb2 = await client(b, "anotherRoom")
    waits = [asyncio.ensure_future(cb.wait_for(missed("defaultRoom"), timeout=T)),
             asyncio.ensure_future(cb2.wait_for(missed("anotherRoom"), timeout=T))]
    # kill b's subscriber connection only (found by the name the node gives it)
    name = f"hero-fast-{b.cluster.node_id}-sub".encode()
    clients = (await redis.execute(b"CLIENT", b"LIST")).decode().splitlines()
    ids = [dict(kv.split("=", 1) for kv in line.split() if "=" in kv)["id"] for line in clients
           if f" name={name.decode()} " in f" {line} "]
    assert len(ids) == 1
    assert await redis.execute(b"CLIENT", b"KILL", b"ID", ids[0]) == 1
    await asyncio.gather(*waits)
    await crosses(ca, cb)
    await crosses(cb, ca)
    assert b.cluster.counters["outages"] == 1 and a.cluster.counters["outages"] == 0
    for c in (ca, cb, cb2):
        await c.disconnect()


async def test_payload_over_the_bus_cap_is_refused(pair: tuple[Api, Api]) -> None:
    a, _ = pair
    ca, ca2 = await client(a), await client(a)
    r = await ca.say("defaultRoom", "x" * 5000)
    assert "message too large for the cluster bus" in r["error"]
    with pytest.raises(ChatError, match="too large"):
        a.chat_room.broadcast("defaultRoom", "y" * 5000)
    with pytest.raises(ValueError, match="too large"):
        await a.cluster.send("someone-elsewhere", {"big": "z" * 5000})
    # nobody got the big one; a normal message still goes through
    wait = asyncio.ensure_future(ca2.wait_for(said("defaultRoom"), timeout=T))
    await asyncio.sleep(0)
    await ca.say("defaultRoom", "small")
    assert (await wait)["message"] == "small"
    await ca.disconnect()
    await ca2.disconnect()


async def test_junk_on_the_bus_is_counted_and_ignored(pair: tuple[Api, Api], redis: Any, prefix: str) -> None:
    a, b = pair
    ca, cb = await client(a), await client(b)
    room_ch = f"{prefix}r:defaultRoom".encode()
    node_ch = f"{prefix}n:{b.cluster.node_id}".encode()
    ctl_ch = f"{prefix}ctl".encode()
    junk = [
        (room_ch, b"not json"), (room_ch, b"[1,2]"), (room_ch, b'{"k":"stop","o":"x"}'),
        (room_ch, b'{"k":"say","o":"x","p":"not an object"}'), (room_ch, b'{"k":"send","o":"x","c":"y","m":1}'),
        (room_ch, b'{"k":"say","o":"x","p":{"m":"' + b"x" * 5000 + b'"}}'),  # over maxBusMessage
        (node_ch, b'{"k":"say","o":"x","p":{}}'), (node_ch, b'{"k":"send","o":"x","c":7,"m":1}'),
        (node_ch, b"\xff\xfe"), (ctl_ch, b'{"k":"roomAdd","o":"x","r":""}'), (ctl_ch, b'{"k":"roomAdd"}'),
        (ctl_ch, b'{"k":"__class__","o":"x","r":"y"}'),
    ]
    before = b.cluster.counters["invalid"]
    for ch, data in junk:
        await redis.execute(b"PUBLISH", ch, data)
    await eventually(lambda: b.cluster.counters["invalid"] - before == len(junk), T, what="all junk counted")
    assert b.cluster.counters["handler_errors"] == 0 and b.cluster.connected
    # a well-formed push for an unknown connection is counted, not fatal
    await redis.execute(b"PUBLISH", node_ch, b'{"k":"send","o":"x","c":"gone","m":{"a":1}}')
    await eventually(lambda: b.cluster.counters["send_unknown"] == 1, T, what="unknown push counted")
    # a room name from the bus goes through the usual name checks
    await redis.execute(b"PUBLISH", ctl_ch, b'{"k":"roomAdd","o":"x","r":"bad\\u0000name"}')
    await redis.execute(b"PUBLISH", ctl_ch, b'{"k":"roomAdd","o":"x","r":"fine"}')
    await eventually(lambda: b.chat_room.exists("fine"), T, what="room from the bus")
    assert not b.chat_room.exists("bad\x00name")
    await crosses(ca, cb)
    await ca.disconnect()
    await cb.disconnect()


async def test_destroy_reaches_every_node(pair: tuple[Api, Api]) -> None:
    a, b = pair
    cb = await client(b, "anotherRoom")
    alert = asyncio.ensure_future(cb.wait_for(lambda m: isinstance(m, dict) and m.get("context") == "alert",
                                              timeout=T))
    await asyncio.sleep(0)
    a.chat_room.destroy("anotherRoom")
    assert (await alert)["message"] == "this room has been deleted"
    assert not b.chat_room.exists("anotherRoom")
    assert (await cb.details_view())["data"]["rooms"] == []
    a.chat_room.add("anotherRoom")
    await eventually(lambda: b.chat_room.exists("anotherRoom"), T, what="room re-created on b")
    await cb.disconnect()


async def test_stop_sweeps_then_deregisters(tmp_path: Path, redis_url: str, prefix: str, redis: Any) -> None:
    api = Api(make_project(tmp_path / "p"), overrides=overrides(redis_url, prefix))
    await api.start(port=0)
    node = api.cluster.node_id
    c = await client(api)
    await c.room_add("anotherRoom")
    p = prefix.encode()
    assert await redis.execute(b"EXISTS", p + b"node:" + node.encode()) == 1
    assert await redis.execute(b"HGET", p + b"conns", await c.fetch_id()) == node.encode()
    await api.stop()
    keys = await redis.execute(b"KEYS", p + b"*")
    # the shared rooms (names, options) remain, and the client's state for it to recover elsewhere
    saved = [k for k in keys if k.startswith((p + b"rec:", p + b"reci:"))]
    assert sorted(set(keys) - set(saved)) == [p + b"roomh", p + b"rooms"], keys
    assert len(saved) == 2 and await redis.execute(b"GET", p + b"reci:" + (await c.fetch_id()).encode())
    assert sorted(await redis.execute(b"SMEMBERS", p + b"rooms")) == [b"anotherRoom", b"defaultRoom"]
    assert isinstance(api.cluster, RedisBackend) and not api.cluster.connected


async def test_rooms_a_node_could_not_publish_to_are_announced(pair: tuple[Api, Api]) -> None:
    a, b = pair
    ca, cb = await client(a), await client(b)
    # a's bus is "down" for one say: a's own member gets it, b's cannot
    a.cluster.connected = False  # type: ignore[attr-defined]
    local = asyncio.ensure_future(ca.wait_for(said("defaultRoom", "lost"), timeout=T))
    await asyncio.sleep(0)
    a.chat_room.broadcast("defaultRoom", "lost")
    await local
    assert a.cluster.counters["publish_dropped"] == 1
    a.cluster.connected = True  # type: ignore[attr-defined]
    # once a can publish again it tells the other nodes, which tell their members
    notice = await cb.wait_for(missed("defaultRoom"), timeout=T)
    assert notice["outageMs"] >= 0 and a.cluster.counters["missed_announced"] == 1
    await crosses(ca, cb)
    await ca.disconnect()
    await cb.disconnect()


async def test_rooms_a_node_creates_at_boot_are_announced_to_running_nodes(tmp_path: Path, redis_url: str,
                                                                          prefix: str) -> None:
    project = make_project(tmp_path / "p")
    a = Api(project, overrides=overrides(redis_url, prefix))
    await a.start(port=0)
    rooms = {"defaultRoom": {}, "bootRoom": {}}
    b = Api(project, overrides={**overrides(redis_url, prefix), "general": {"startingChatRooms": rooms}})
    try:
        ca = await client(a, None)
        assert "room does not exist" in (await ca.room_add("bootRoom"))["error"]  # b is not there yet
        await b.start(port=0)
        # b's boot rooms reach a without any outage or restart of a
        await eventually(lambda: a.chat_room.exists("bootRoom"), T, what="bootRoom known on a")
        assert (await ca.room_add("bootRoom"))["status"] == "OK"
        cb = await client(b, "bootRoom")
        await crosses(ca, cb, "bootRoom")
        await ca.disconnect()
        await cb.disconnect()
    finally:
        await asyncio.wait_for(a.stop(), 10)
        await asyncio.wait_for(b.stop(), 10)


async def test_rooms_created_or_destroyed_while_the_bus_was_down_are_announced_after(
        pair: tuple[Api, Api], redis: Any, prefix: str) -> None:
    a, b = pair
    a.cluster.connected = False  # type: ignore[attr-defined]
    a.chat_room.add("madeWhileDown")
    a.chat_room.destroy("anotherRoom")
    a.cluster.connected = True  # type: ignore[attr-defined]
    await eventually(lambda: b.chat_room.exists("madeWhileDown") and not b.chat_room.exists("anotherRoom"), T,
                     what="both changes announced to b")
    rooms = set(await redis.execute(b"SMEMBERS", f"{prefix}rooms".encode()))
    assert b"madeWhileDown" in rooms and b"anotherRoom" not in rooms
    assert not a.chat_room.exists("anotherRoom")  # and not brought back to a by its own resync


# -- the signed bus ---------------------------------------------------------------------------------

SECRET = "s3cret-for-the-tests-0123456789"


@pytest.fixture
async def signed_pair(tmp_path: Path, redis_url: str, prefix: str) -> AsyncIterator[tuple[Api, Api]]:
    project = make_project(tmp_path / "p")
    a = Api(project, overrides=overrides(redis_url, prefix, secret=SECRET))
    b = Api(project, overrides=overrides(redis_url, prefix, secret=SECRET))
    await a.start(port=0)
    await b.start(port=0)
    yield a, b
    await asyncio.wait_for(a.stop(), 10)
    await asyncio.wait_for(b.stop(), 10)


async def capture(redis_url: str, channel: bytes) -> tuple[Any, list[bytes]]:
    """A raw subscriber on ``channel``; returns (connection, the messages it receives)."""
    from hero_fast.cluster.resp import open_connection, parse_redis_url

    got: list[bytes] = []
    conn = await open_connection(parse_redis_url(redis_url), timeout=T, select_db=False,
                                 on_push=lambda r: got.append(r[2]) if r[0] == b"message" else None)
    conn.subscribe([channel])
    await asyncio.sleep(0.2)
    return conn, got


async def test_signed_bus_carries_everything_and_drops_forgeries(signed_pair: tuple[Api, Api], redis: Any,
                                                                 redis_url: str, prefix: str,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    from hero_fast.cluster.signing import Signer

    a, b = signed_pair
    ca, cb = await client(a), await client(b)
    received: list[Any] = []
    cb.on("message", received.append)
    await crosses(ca, cb)
    await crosses(cb, ca)
    push = {"context": "alert", "signed": True}
    wait = asyncio.ensure_future(cb.wait_for(pushed(push), timeout=T))
    assert await a.connections.send(await cb.fetch_id(), push) is Sent.REMOTE
    await wait

    room_ch = f"{prefix}r:defaultRoom".encode()
    node_ch = f"{prefix}n:{b.cluster.node_id}".encode()
    ctl_ch = f"{prefix}ctl".encode()
    destroy = b'{"k":"roomDestroy","o":"' + a.cluster.node_id.encode() + b'","r":"defaultRoom"}'
    say = b'{"k":"say","o":"x","p":{"message":"forged","room":"defaultRoom","from":0,"context":"user"}}'
    send = b'{"k":"send","o":"x","c":"' + (await cb.fetch_id()).encode() + b'","m":{"forged":1}}'
    wrong = Signer("another-secret-0123456789")
    forged = [(ctl_ch, destroy), (room_ch, say), (node_ch, send), (ctl_ch, destroy)]
    badly_signed = [(ch, wrong.seal(ch, data)) for ch, data in forged]
    moved = [(ctl_ch, b.cluster._seal(room_ch, destroy))]  # type: ignore[attr-defined]  # signed for another channel
    for ch, data in forged + badly_signed + moved:
        assert await redis.execute(b"PUBLISH", ch, data) >= 1
    counters = b.cluster.counters
    await eventually(lambda: counters["unsigned"] == 4 and counters["bad_signature"] == 5, T,
                     what="forgeries counted")

    # a replayed genuine message is dropped too
    conn, seen = await capture(redis_url, ctl_ch)
    try:
        a.chat_room.add("fresh")
        await eventually(lambda: b.chat_room.exists("fresh") and seen, T, what="a genuine roomAdd")
        b.chat_room.destroy("fresh")
        await eventually(lambda: not a.chat_room.exists("fresh"), T, what="the room destroyed everywhere")
        await redis.execute(b"PUBLISH", ctl_ch, seen[0])
        await eventually(lambda: counters["replayed"] == 1, T, what="the replay counted")
    finally:
        conn.abort()
    assert not b.chat_room.exists("fresh") and not a.chat_room.exists("fresh")

    # nothing forged got through: the room stands with both members, no forged push or say arrived
    assert a.chat_room.exists("defaultRoom") and b.chat_room.exists("defaultRoom")
    assert (await ca.room_view("defaultRoom"))["data"]["membersCount"] == 2
    await crosses(ca, cb)
    assert received and not [m for m in received if "forged" in str(m)]
    assert counters["handler_errors"] == 0 and b.cluster.connected
    # one warning per kind of refusal, however many there were (rate-limited)
    mine = f"node {b.cluster.node_id} refused a message"
    refusals = [r.getMessage() for r in caplog.records if mine in r.getMessage()]
    assert sorted(m.split("(", 1)[1].split(")")[0] for m in refusals) == ["bad_signature", "replayed", "unsigned"]
    await ca.disconnect()
    await cb.disconnect()


async def test_key_rotation_nodes_with_either_key_talk(tmp_path: Path, redis_url: str, prefix: str) -> None:
    old, new = "the-old-secret-0123456789", "the-new-secret-0123456789"
    project = make_project(tmp_path / "p")
    a = Api(project, overrides=overrides(redis_url, prefix, secret=old, previousSecret=new))  # first step
    b = Api(project, overrides=overrides(redis_url, prefix, secret=new, previousSecret=old))  # second step
    await a.start(port=0)
    await b.start(port=0)
    try:
        ca, cb = await client(a), await client(b)
        await crosses(ca, cb)
        await crosses(cb, ca)
        assert a.cluster.counters["bad_signature"] == b.cluster.counters["bad_signature"] == 0
        await ca.disconnect()
        await cb.disconnect()
    finally:
        await asyncio.wait_for(a.stop(), 10)
        await asyncio.wait_for(b.stop(), 10)


async def test_an_unsigned_bus_is_announced_at_boot(tmp_path: Path, redis_url: str, prefix: str,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    for secret, warned in ((None, True), (SECRET, False)):
        caplog.clear()
        api = Api(make_project(tmp_path / "p"), overrides=overrides(redis_url, prefix, secret=secret))
        await api.start(port=0)
        await api.stop()
        unsigned = [r for r in caplog.records if "cluster bus is unsigned" in r.getMessage()]
        assert len(unsigned) == (1 if warned else 0)
        assert all(r.levelname == "WARNING" for r in unsigned)


# -- what the operator is told ----------------------------------------------------------------------


async def test_a_silent_redis_at_start_is_reported_with_what_was_waited_for(tmp_path: Path) -> None:
    import socket

    with socket.socket() as silent:  # accepts connections (the kernel does) and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        port = silent.getsockname()[1]
        api = Api(make_project(tmp_path / "p"),
                  overrides={"redis_url": f"redis://127.0.0.1:{port}/0", "cluster": {"commandTimeout": 0.3}})
        with pytest.raises(ClusterError) as info:
            await api.start(port=0)
    assert f"cannot use Redis at redis://127.0.0.1:{port}/0: RedisTimeout: Redis did not answer within 0.3 s " \
           f"(connecting to 127.0.0.1:{port}" in str(info.value)


async def test_a_hung_redis_is_logged_with_the_error_type_and_what_was_waited_for(
        tmp_path: Path, private_redis: Any, prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hero_fast.cluster")
    api = Api(make_project(tmp_path / "p"),
              overrides=overrides(private_redis.url, prefix, commandTimeout=0.3, probeInterval=100, leaseTtl=600))
    await api.start(port=0)
    try:
        private_redis.pause()
        try:
            await eventually(lambda: api.cluster.counters["reconnect_failures"] >= 2, 10, what="reconnects failing")
        finally:
            private_redis.resume()
        await eventually(lambda: api.cluster.connected, 10, what="reconnected")
    finally:
        await asyncio.wait_for(api.stop(), 10)
    lines = [r.getMessage() for r in caplog.records if r.name == "hero_fast.cluster"]
    assert not [m for m in lines if m.rstrip().endswith(":") or "()" in m or ": ;" in m], lines
    down = [m for m in lines if m.startswith("cluster bus still down")]
    assert down and all("RedisTimeout: Redis did not answer within 0.3 s (" in m for m in down), down


async def test_error_replies_nobody_awaits_are_logged_counted_and_exported(
        tmp_path: Path, redis_url: str, prefix: str, redis: Any, caplog: pytest.LogCaptureFixture) -> None:
    api = Api(make_project(tmp_path / "p"), overrides={**overrides(redis_url, prefix), "metrics": {"enabled": True}})
    await api.start(port=0)
    try:
        await redis.execute(b"DEL", f"{prefix}rooms".encode())
        await redis.execute(b"SET", f"{prefix}rooms".encode(), b"not a set")  # every SADD now fails
        for i in range(5):
            api.chat_room.add(f"room{i}")
        await eventually(lambda: api.cluster.counters["error_replies"] == 5, T, what="error replies counted")
        assert api.cluster.connected
        warnings = [r.getMessage() for r in caplog.records if "Redis refused" in r.getMessage()]
        assert len(warnings) == 1 and "Redis refused SADD" in warnings[0] and "WRONGTYPE" in warnings[0], warnings
        assert api.metrics is not None
        body = api.metrics.render()[0].decode()
        assert 'hero_fast_cluster_events_total{event="error_replies"} 5.0' in body
        for event in ("push_errors", "handler_errors", "unsigned", "bad_signature", "replayed"):
            assert f'hero_fast_cluster_events_total{{event="{event}"}} 0.0' in body
    finally:
        await asyncio.wait_for(api.stop(), 10)


async def test_handler_errors_are_logged_with_the_message_kind(pair: tuple[Api, Api], redis: Any, prefix: str,
                                                               caplog: pytest.LogCaptureFixture,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = pair
    cb = await client(b)

    def broken(room: str, payload: Any) -> int:
        raise RuntimeError("a bug in delivery")

    monkeypatch.setattr(b.chat_room, "deliver_remote", broken)
    for n in range(3):
        a.chat_room.broadcast("defaultRoom", n)
    await eventually(lambda: b.cluster.counters["handler_errors"] == 3, T, what="handler errors counted")
    logged = [r for r in caplog.records if "failed to handle" in r.getMessage()]
    assert len(logged) == 1 and "'say' message" in logged[0].getMessage() and logged[0].exc_info is not None
    assert "a bug in delivery" in str(logged[0].exc_info[1])
    await cb.disconnect()


async def test_an_exception_in_the_push_handler_is_reported_and_the_subscriber_lives(redis_url: str, redis: Any,
                                                                                    prefix: str) -> None:
    from hero_fast.cluster.resp import open_connection, parse_redis_url

    seen: list[bytes] = []
    errors: list[Exception] = []

    def on_push(reply: list[Any]) -> None:
        if reply[0] == b"message":
            seen.append(reply[2])
            if reply[2] == b"boom":
                raise RuntimeError("handler bug")

    sub = await open_connection(parse_redis_url(redis_url), timeout=T, select_db=False, on_push=on_push,
                                on_push_error=errors.append)
    try:
        channel = f"{prefix}test".encode()
        sub.subscribe([channel])
        await eventually(lambda: redis.execute(b"PUBLISH", channel, b"boom"), T, what="subscribed")
        await redis.execute(b"PUBLISH", channel, b"after")
        await eventually(lambda: b"after" in seen, T, what="the next message")
        assert [str(e) for e in errors] == ["handler bug"] and not sub.closed
    finally:
        sub.abort()


def test_every_cluster_counter_is_documented(tmp_path: Path) -> None:
    api = Api(make_project(tmp_path / "p"), overrides={"redis_url": "redis://127.0.0.1:1/0"})
    text = (Path(__file__).resolve().parents[2] / "docs" / "operations.md").read_text()
    table = text.split("### The cluster's counters", 1)[1].split("```promql", 1)[0]
    documented = {name for row in table.splitlines() if row.startswith("| `")
                  for name in row.split("|")[1].replace("`", "").replace(",", " ").split()}
    assert documented == set(api.cluster.counters)
