"""Several server processes sharing rooms, presence, say and server push through Redis."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from typing import Any

import orjson
import pytest

from hero_fast.client import Client

from .conftest import eventually, pushed, redis_conn

pytestmark = pytest.mark.slow

T = 5.0  # bound on every single wait
START = 20.0  # bound on a process start on a loaded machine


def is_say(room: str, message: Any = None) -> Any:
    def match(m: Any) -> bool:
        return (isinstance(m, dict) and m.get("context") == "user" and m.get("room") == room
                and (message is None or m.get("message") == message))
    return match


def is_missed(room: str) -> Any:
    return lambda m: isinstance(m, dict) and m.get("event") == "missedMessages" and m.get("room") == room


async def connect(url: str) -> Client:
    c = Client(url, timeout=T)
    await c.connect()
    return c


async def say_until_received(sender: Client, room: str, receivers: list[Client], timeout: float) -> None:
    """Say (repeatedly, at-most-once delivery) until every receiver got one of the messages."""
    deadline = time.monotonic() + timeout
    n = 0
    while True:
        n += 1
        waits = [asyncio.ensure_future(r.wait_for(is_say(room), timeout=0.5)) for r in receivers]
        await asyncio.sleep(0)
        assert (await sender.say(room, {"try": n}))["status"] == "OK"
        results = await asyncio.gather(*waits, return_exceptions=True)
        if not any(isinstance(r, BaseException) for r in results):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"say did not cross nodes within {timeout} s ({n} tries)")


async def test_say_roomview_send_and_rooms_cross_nodes(nodes: Any) -> None:
    a, b = nodes(), nodes()
    ca1, ca2, cb = await connect(a.url), await connect(a.url), await connect(b.url)
    try:
        for c in (ca1, ca2, cb):
            assert (await c.room_add("defaultRoom"))["status"] == "OK"

        # say crosses, both ways; everyone (the sayer included) gets it exactly once
        for sender in (ca1, cb):
            message = {"from": sender.port, "n": [1, "two", None]}
            waits = [asyncio.ensure_future(c.wait_for(is_say("defaultRoom", message), timeout=T))
                     for c in (ca1, ca2, cb)]
            await asyncio.sleep(0)
            assert (await sender.say("defaultRoom", message))["status"] == "OK"
            got = await asyncio.gather(*waits)
            assert {g["from"] for g in got} == {await sender.fetch_id()}

        # roomView counts members of both nodes, from either node
        ids = {await c.fetch_id() for c in (ca1, ca2, cb)}
        for c in (ca1, cb):
            view = (await c.room_view("defaultRoom"))["data"]
            assert view["membersCount"] == 3 and set(view["members"]) == ids
            assert all(isinstance(m["joinedAt"], int) for m in view["members"].values())
        await ca2.room_leave("defaultRoom")
        assert (await cb.room_view("defaultRoom"))["data"]["membersCount"] == 2
        await ca2.disconnect()  # leave-on-disconnect is cluster-wide too
        await ca1.room_leave("defaultRoom")
        await eventually(lambda: cb.room_view("defaultRoom"), T, what="view")
        view = (await cb.room_view("defaultRoom"))["data"]
        assert set(view["members"]) == {await cb.fetch_id()}

        # server push to a connection on the other node
        push = {"context": "alert", "hello": "from A"}
        wait = asyncio.ensure_future(cb.wait_for(pushed(push), timeout=T))
        r = await ca1.action("pushTo", {"id": await cb.fetch_id(), "message": push})
        assert r.get("sent") == "remote", r
        assert pushed(push)(await wait)
        assert (await ca1.action("pushTo", {"id": "no-such-connection", "message": push}))["sent"] == "nowhere"
        assert (await cb.action("pushTo", {"id": await cb.fetch_id(), "message": {"context": "alert", "local": 1}}))[
            "sent"] == "local"

        # a room made on B is joinable on A; a broadcast from A's server code (no local
        # member there) reaches B's members
        assert (await cb.action("roomCreate", {"name": "made-on-b"}))["created"] is True
        await eventually(lambda: _joined(ca1, "made-on-b"), T, what="room known on A")
        await cb.room_add("made-on-b")
        wait = asyncio.ensure_future(cb.wait_for(is_say("made-on-b", "server says"), timeout=T))
        await ca1.room_leave("made-on-b")
        r = await ca1.action("broadcast", {"room": "made-on-b", "message": "server says"})
        assert r["local"] == 0, r
        got = await wait
        assert got["from"] == 0
    finally:
        for c in (ca1, ca2, cb):
            await c.disconnect()


async def _joined(client: Client, room: str) -> bool:
    return (await client.room_add(room)).get("status") == "OK"


async def test_sigkill_expires_members_within_the_lease(nodes: Any, redis_url: str, prefix: str) -> None:
    lease_ms = 1500
    a, b = nodes(leaseTtl=lease_ms), nodes(leaseTtl=lease_ms)
    ca, cb1, cb2 = await connect(a.url), await connect(b.url), await connect(b.url)
    try:
        for c in (ca, cb1, cb2):
            await c.room_add("anotherRoom")
        assert (await ca.room_view("anotherRoom"))["data"]["membersCount"] == 3
        os.killpg(b.proc.pid, signal.SIGKILL)
        killed = time.monotonic()
        b.proc.wait(5)

        async def count() -> int:
            return int((await ca.room_view("anotherRoom"))["data"]["membersCount"])

        # gone within the lease (plus slack for a loaded machine: the keys expire in Redis)
        await eventually(lambda: _is(count(), 1), lease_ms / 1000 + 2.5, what="B's members gone")
        elapsed = time.monotonic() - killed
        assert elapsed <= lease_ms / 1000 + 2.5
        # and B's connection registry entries are swept by the survivor
        redis = await redis_conn(redis_url)
        try:
            async def registry_size() -> int:
                return int(await redis.execute(b"HLEN", prefix.encode() + b"conns"))
            await eventually(lambda: _is(registry_size(), 1), 3 * lease_ms / 1000 + 3, what="registry swept")
        finally:
            redis.abort()
        # the survivor still works
        wait = asyncio.ensure_future(ca.wait_for(is_say("anotherRoom", "still here"), timeout=T))
        await ca.say("anotherRoom", "still here")
        await wait
    finally:
        for c in (ca, cb1, cb2):
            await c.disconnect()


async def _is(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def test_redis_restart_resumes_delivery_and_tells_clients(private_redis: Any, nodes: Any) -> None:
    fast = {"leaseTtl": 1500, "probeInterval": 300, "reconnectMin": 50, "reconnectMax": 400,
            "commandTimeout": 2}
    a, b = nodes(url=private_redis.url, **fast), nodes(url=private_redis.url, **fast)
    ca, cb = await connect(a.url), await connect(b.url)
    try:
        for c in (ca, cb):
            await c.room_add("defaultRoom")
        await say_until_received(ca, "defaultRoom", [cb], T)

        missed = [asyncio.ensure_future(c.wait_for(is_missed("defaultRoom"), timeout=20)) for c in (ca, cb)]
        private_redis.kill()
        await asyncio.sleep(0.7)  # an outage the nodes notice (probe and connection loss)
        # a say during the outage still reaches local members, and is lost for the others
        wait_local = asyncio.ensure_future(ca.wait_for(is_say("defaultRoom", "during"), timeout=T))
        await ca.say("defaultRoom", "during")
        await wait_local
        private_redis.start()  # empty: membership, rooms and registry are gone

        notices = await asyncio.gather(*missed)
        for notice in notices:
            assert notice["context"] == "api" and notice["outageMs"] > 0 and "missed" in notice["message"]
        await say_until_received(ca, "defaultRoom", [cb], T)
        await say_until_received(cb, "defaultRoom", [ca], T)
        # the nodes rewrote their state into the new Redis: cluster-wide counts again
        assert (await ca.room_view("defaultRoom"))["data"]["membersCount"] == 2
        # and the outage is counted
        stats = (await ca.action("clusterStats"))["stats"]
        assert stats["outages"] >= 1 and stats["reconnects"] >= 1 and stats["missed_notices"] >= 1
        assert stats["connected"] is True
    finally:
        for c in (ca, cb):
            await c.disconnect()


async def test_workers_share_one_port_and_rooms(nodes: Any, redis_url: str, prefix: str) -> None:
    parent = nodes(workers=2)
    redis = await redis_conn(redis_url)
    clients: list[Client] = []
    try:
        index = prefix.encode() + b"ri:defaultRoom"
        # both workers up (each registers its node lease before it listens)
        async def workers_up() -> bool:
            return len(await redis.execute(b"KEYS", prefix.encode() + b"node:*")) == 2
        await eventually(workers_up, START, what="2 workers registered")
        # connect until both workers have members (the kernel spreads connections)
        for _ in range(40):
            c = await connect(parent.url)
            clients.append(c)
            await c.room_add("defaultRoom")
            if len(clients) >= 4 and await redis.execute(b"ZCARD", index) == 2:
                break
        assert await redis.execute(b"ZCARD", index) == 2, "all connections went to one worker"
        leases = await redis.execute(b"KEYS", prefix.encode() + b"node:*")
        pids = {orjson.loads(await redis.execute(b"GET", k))["pid"] for k in leases}
        assert len(pids) == 2 and parent.proc.pid not in pids

        view = (await clients[0].room_view("defaultRoom"))["data"]
        assert view["membersCount"] == len(clients)
        waits = [asyncio.ensure_future(c.wait_for(is_say("defaultRoom", "to all"), timeout=T)) for c in clients]
        await asyncio.sleep(0)
        await clients[-1].say("defaultRoom", "to all")
        await asyncio.gather(*waits)
    finally:
        for c in clients:
            await c.disconnect()
    assert parent.stop() == 0
    # both workers stopped cleanly: they swept their state and deregistered
    assert await redis.execute(b"KEYS", prefix.encode() + b"node:*") == []
    assert await redis.execute(b"HLEN", prefix.encode() + b"conns") == 0
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    redis.abort()


async def test_workers_stop_when_their_supervisor_is_killed(nodes: Any, redis_url: str, prefix: str) -> None:
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux-only")
    parent = nodes(workers=2)
    redis = await redis_conn(redis_url)
    try:
        async def worker_pids() -> set[int]:
            leases = await redis.execute(b"KEYS", prefix.encode() + b"node:*")
            return {orjson.loads(await redis.execute(b"GET", k))["pid"] for k in leases}

        pids = await eventually(lambda: _when(worker_pids(), lambda p: len(p) == 2), START, what="2 workers")
        os.kill(parent.proc.pid, signal.SIGKILL)  # the supervisor only, not its process group
        parent.proc.wait(5)

        def gone() -> bool:
            for pid in pids:
                try:
                    os.kill(pid, 0)
                    return False
                except ProcessLookupError:
                    pass
            return True

        await eventually(gone, 15, interval=0.1, what="workers gone")
        assert await worker_pids() == set()  # they stopped gracefully: deregistered
    finally:
        redis.abort()


async def _when(value: Any, predicate: Any) -> Any:
    v = await value
    return v if predicate(v) else None
