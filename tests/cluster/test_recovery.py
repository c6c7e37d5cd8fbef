"""Connection state recovery across nodes (the recovery store in Redis): a client that drops
on one node comes back on another with its id, rooms, session, the room messages and the
pushes it missed; tokens that are forged, expired, replayed or another browser's get nothing."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hero_fast import Sent

from .conftest import chat, eventually

T = 5.0
N = 1000


def pushes(c: Any) -> list[Any]:
    return [m for m in c.messages if isinstance(m, dict) and "pushSeq" in m]


async def test_a_client_that_drops_recovers_on_the_other_node_with_nothing_lost(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, sender = a.connect(), b.connect()
    await alice.room_add("lobby")
    await sender.room_add("lobby")
    alice.connection.session["user"] = "alice"
    assert await b.connections.send(alice.id, {"context": "alert", "n": 0}) is Sent.REMOTE
    old_id = alice.id

    async def say_all() -> None:
        for i in range(N):
            assert (await sender.say("lobby", i))["status"] == "OK"
            await asyncio.sleep(0.002)

    saying = asyncio.ensure_future(say_all())
    try:
        await eventually(lambda: len(chat(alice)) >= 200, 10, what="200 messages before the drop")
        alice.drop()
        for n in (1, 2, 3):  # pushed from both nodes while it is away
            node = a if n % 2 else b
            assert await node.connections.send(old_id, {"context": "alert", "n": n}) is Sent.HELD
        await asyncio.sleep(1.0)
        assert not saying.done()  # the sender is still saying: the replay meets live messages
        back = b.connect(fingerprint=alice.fingerprint)  # on the other node
        data = await back.recover(alice)
        await saying
    finally:
        saying.cancel()
    await eventually(lambda: chat(back) and chat(back)[-1]["message"] == N - 1, 10, what="the last message")
    assert data == {"recovered": True, "id": old_id, "rooms": ["lobby"], "token": back.token}
    assert back.id == old_id and back.connection.session == {"user": "alice"}
    got = chat(alice) + chat(back)
    assert [m["message"] for m in got] == list(range(N))  # 0 lost, 0 duplicated, in order
    assert [m["offset"] for m in got] == list(range(1, N + 1)) and len({m["epoch"] for m in got}) == 1
    assert [(m["n"], m["pushSeq"]) for m in pushes(alice) + pushes(back)] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    # the id is this node's now: pushes from the old node reach it, its rooms are the same everywhere
    assert await a.connections.send(old_id, {"context": "alert", "n": 4}) is Sent.REMOTE
    await eventually(lambda: pushes(back)[-1]["n"] == 4, T, what="a push from the old node")
    members = (await sender.room_view("lobby"))["data"]["members"]
    assert sorted(members) == sorted([old_id, sender.id])


@pytest.mark.parametrize("case", ["forged", "replayed", "other fingerprint", "expired"])
async def test_no_usable_state_gives_nothing_on_any_node(test_nodes: Any, case: str) -> None:
    options = {"recovery.maxDisconnectionDuration": 1000 if case == "expired" else 60000}
    a, b = await test_nodes(**options), await test_nodes(**options)
    alice, carol = a.connect(), a.connect()
    for c in (alice, carol):
        await c.room_add("lobby")
    alice.connection.session["secret"] = 1
    alice.drop()
    carol.drop()
    # a genuine token is good on the other node...
    assert (await b.connect(fingerprint=carol.fingerprint).recover(carol))["recovered"] is True
    if case == "forged":
        alice.token = "0" * 64
    if case == "replayed":  # used once on b: the second use, on a, gets nothing
        assert (await b.connect(fingerprint=alice.fingerprint).recover(alice))["recovered"] is True
    if case == "expired":
        await asyncio.sleep(1.3)
    # ...these get nothing, on either node, and a plain new connection
    back = (a if case == "replayed" else b).connect(
        fingerprint="someone else" if case == "other fingerprint" else alice.fingerprint)
    data = await back.recover(alice)
    assert data == {"recovered": False, "reason": "expired", "id": back.id, "rooms": [], "token": back.token}
    assert back.id != alice.id and back.connection.rooms == [] and back.connection.session == {}


async def test_held_pushes_are_capped_and_counted_across_nodes(test_nodes: Any) -> None:
    options = {"recovery.maxPushes": 2}
    a, b = await test_nodes(**options), await test_nodes(**options)
    alice = a.connect()
    old_id = alice.id
    alice.drop()
    for n in range(5):
        assert await b.connections.send(old_id, {"context": "alert", "n": n}) is Sent.HELD
    back = b.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert (data["recovered"], data["pushesLost"]) == (False, 3)
    assert [m["n"] for m in pushes(back)] == [3, 4]


async def test_a_push_that_reaches_a_node_just_after_its_connection_dropped_is_held(test_nodes: Any, redis: Any,
                                                                                     prefix: str) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice = a.connect()
    old_id = alice.id
    alice.drop()
    # as sent by a node that looked the connection up just before it dropped
    message = b'{"k":"send","o":"elsewhere","c":"' + old_id.encode() + b'","m":{"context":"alert","late":1}}'
    assert await redis.execute(b"PUBLISH", f"{prefix}n:{a.api.cluster.node_id}".encode(), message) == 1
    await eventually(lambda: a.api.cluster.counters["send_held"] == 1, T, what="the push held")
    back = b.connect(fingerprint=alice.fingerprint)
    assert (await back.recover(alice))["recovered"] is True
    assert pushes(back) == [{"context": "alert", "late": 1, "pushSeq": 1}]


async def test_clients_of_a_node_that_shuts_down_recover_on_another(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, bob = a.connect(), b.connect()
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    await bob.say("lobby", "before")
    await eventually(lambda: chat(alice), T, what="the first message")
    await a.stop()  # closes alice with 1001: her state stays in Redis
    assert alice.close_code == 1001
    await bob.say("lobby", "after")
    back = b.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert data["recovered"] is True and data["id"] == alice.id
    assert [m["message"] for m in chat(alice) + chat(back)] == ["before", "after"]
