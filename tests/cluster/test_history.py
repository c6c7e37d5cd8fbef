"""Rooms with history on Redis: one numbering for every node (offsets and epoch from one Lua
script), in-order delivery from the bus on every node, refill from the room's stream after a
jump in offsets, exact reports of what the stream no longer has, room options on the bus,
broadcast across nodes, and the signed numbered message."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hero_fast.testing import TestApi

from .conftest import chat, eventually, notices

T = 5.0
SECRET = "history-test-secret-0123456789"


def offsets(c: Any, room: str = "lobby") -> list[int]:
    return [m["offset"] for m in chat(c, room)]


def lose_numbered(node: TestApi, room: str, count: int) -> None:
    """Make ``node``'s subscriber lose the next ``count`` numbered messages of ``room``."""
    sub = node.api.cluster._sub  # type: ignore[attr-defined]
    deliver = sub._on_push
    channel = node.api.cluster.keys.room(room)  # type: ignore[attr-defined]
    left = [count]

    def lossy(reply: list[Any]) -> None:
        if left[0] and reply[0] == b"message" and reply[1] == channel and reply[2][:1] == b"#":
            left[0] -= 1
            return
        deliver(reply)

    sub._on_push = lossy


async def test_every_node_delivers_the_same_numbering_in_order(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, bob = a.connect(), b.connect()
    joined = [await alice.room_add("lobby"), await bob.room_add("lobby")]
    assert joined[0]["history"] == joined[1]["history"] == {"offset": 0, "epoch": joined[0]["history"]["epoch"]}
    epoch = joined[0]["history"]["epoch"]

    async def say_from(c: Any, who: str) -> None:
        for i in range(50):
            assert (await c.say("lobby", f"{who}{i}"))["status"] == "OK"

    await asyncio.gather(say_from(alice, "a"), say_from(bob, "b"))
    await eventually(lambda: len(chat(alice)) == len(chat(bob)) == 100, T, what="100 messages on both nodes")
    # the origin delivers its own from the bus too: one order, the same on both nodes
    assert offsets(alice) == offsets(bob) == list(range(1, 101))
    assert [m["message"] for m in chat(alice)] == [m["message"] for m in chat(bob)]
    assert {m["epoch"] for m in chat(alice) + chat(bob)} == {epoch}
    assert [m["message"] for m in chat(alice) if m["message"][0] == "a"] == [f"a{i}" for i in range(50)]


async def test_a_node_whose_first_member_joins_knows_where_the_numbering_is(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice = a.connect()
    epoch = (await alice.room_add("lobby"))["history"]["epoch"]
    for i in range(5):
        await alice.say("lobby", i)
    await eventually(lambda: len(chat(alice)) == 5, T, what="5 messages")
    bob = b.connect()  # b has no member in the room yet, and never saw its messages
    assert (await bob.room_add("lobby"))["history"] == {"offset": 5, "epoch": epoch}
    await alice.say("lobby", "next")
    await eventually(lambda: chat(bob), T, what="the next message on b")
    assert offsets(bob) == [6] and b.api.cluster.counters["history_syncs"] == 1


async def test_members_joining_while_a_node_reads_the_numbering_get_it_too(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice = a.connect()
    epoch = (await alice.room_add("lobby"))["history"]["epoch"]
    for i in range(3):
        await alice.say("lobby", i)
    await eventually(lambda: len(chat(alice)) == 3, T, what="3 messages")
    joins = [b.connect().room_add("lobby") for _ in range(5)]  # all before the first is answered
    assert [j["history"] for j in await asyncio.gather(*joins)] == [{"offset": 3, "epoch": epoch}] * 5


async def test_a_jump_in_offsets_is_refilled_from_the_stream(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, bob = a.connect(), b.connect()
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    await alice.say("lobby", 0)
    await eventually(lambda: chat(bob), T, what="the first message")
    lose_numbered(b, "lobby", 5)
    for i in range(1, 7):
        await alice.say("lobby", i)
    await eventually(lambda: len(chat(bob)) == 7, T, what="all 7 on b")
    assert offsets(bob) == list(range(1, 8)) and [m["message"] for m in chat(bob)] == list(range(7))
    assert not notices(bob)
    # the stream read after 7 came in has 2..7; the live 7, held back meanwhile, is then dropped
    counters = b.api.cluster.counters
    assert counters["history_catch_ups"] >= 1 and counters["history_refilled"] == 6
    assert counters["history_duplicates"] == 1


async def test_only_what_the_stream_no_longer_has_is_reported_exactly(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, bob = a.connect(), b.connect()
    epoch = (await alice.room_add("news"))["history"]["epoch"]  # news keeps 3 messages
    await bob.room_add("news")
    await alice.say("news", 0)
    await eventually(lambda: chat(bob), T, what="the first message")
    lose_numbered(b, "news", 6)  # offsets 2..7 lost on the way to b; the stream keeps 6, 7, 8
    for i in range(1, 8):
        await alice.say("news", i)
    await eventually(lambda: len(chat(bob)) == 4, T, what="what the stream had, on b")
    assert offsets(bob, "news") == [1, 6, 7, 8]
    assert notices(bob) == [{"context": "api", "event": "missedMessages", "room": "news", "from": 2, "to": 5,
                             "reason": "history too short", "epoch": epoch}]
    assert offsets(alice, "news") == list(range(1, 9)) and not notices(alice)


async def test_room_options_reach_running_and_later_nodes(test_nodes: Any, redis: Any, prefix: str) -> None:
    a, b = await test_nodes(), await test_nodes()
    a.chat_room.add("made", history={"size": 7, "ttl": 1234})
    await eventually(lambda: b.chat_room.exists("made"), T, what="the room on b")
    c = await test_nodes()  # learns it from Redis when it connects
    for node in (b, c):
        h = node.chat_room.rooms["made"].history
        assert (h.size, h.ttl_ms) == (7, 1234)
    assert c.chat_room.rooms["plain"].history is None
    bob = c.connect()
    await bob.room_add("made")
    a.chat_room.broadcast("made", "x")
    await eventually(lambda: chat(bob), T, what="a numbered message on c")
    assert offsets(bob, "made") == [1]
    a.chat_room.destroy("made")
    await eventually(lambda: not c.chat_room.exists("made"), T, what="the room destroyed on c")
    assert await redis.execute(b"HGET", f"{prefix}roomh".encode(), b"made") is None
    assert await redis.execute(b"EXISTS", *(f"{prefix}{k}:made".encode() for k in ("he", "ho", "hs"))) == 0


async def test_the_numbering_outlives_the_stream(test_nodes: Any, redis: Any, prefix: str) -> None:
    rooms = {"general.startingChatRooms": {"brief": {"history": {"size": 10, "ttl": 300}}},
             "recovery.maxDisconnectionDuration": 5000}
    a, b = await test_nodes(**rooms), await test_nodes(**rooms)
    alice, bob = a.connect(), b.connect()
    epoch = (await alice.room_add("brief"))["history"]["epoch"]
    await bob.room_add("brief")
    await alice.say("brief", 1)
    await alice.say("brief", 2)
    await eventually(lambda: len(chat(bob)) == 2, T, what="two messages")
    keys = [f"{prefix}{k}:brief".encode() for k in ("he", "ho", "hs")]
    kept = [await redis.execute(b"PTTL", k) for k in keys]
    assert 60_000 < kept[0] <= 65_000 and 60_000 < kept[1] <= 65_000 and 0 < kept[2] <= 300, kept
    bob.drop()
    await asyncio.sleep(0.5)  # the stream expired (ttl 300 ms); epoch and offset did not
    assert await redis.execute(b"EXISTS", keys[2]) == 0 and await redis.execute(b"GET", keys[0]) == epoch.encode()
    await alice.say("brief", 3)
    await eventually(lambda: len(chat(alice)) == 3, T, what="the third message")
    assert [(m["offset"], m["epoch"]) for m in chat(alice)] == [(1, epoch), (2, epoch), (3, epoch)]
    # a client that got 1 and 2 recovers fully: the numbering it knows is still the room's
    back = b.connect(fingerprint=bob.fingerprint)
    assert (await back.recover(bob))["recovered"] is True and offsets(back, "brief") == [3]
    # one that got only 1 learns exactly that 2 is gone with the stream
    back.drop()
    back.offsets["brief"] = {"offset": 1, "epoch": epoch}
    again = b.connect(fingerprint=bob.fingerprint)
    data = await again.recover(back)
    assert data["lost"] == {"brief": {"reason": "history too short", "from": 2, "to": 2}}
    assert offsets(again, "brief") == [3]


async def test_a_broadcast_reaches_every_connection_of_every_node_once(test_nodes: Any) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, bob = a.connect(), b.connect()
    a.connections.broadcast({"context": "alert", "from": "a"})
    b.connections.broadcast({"context": "alert", "from": "b"})
    for c in (alice, bob):
        await eventually(lambda c=c: len(c.received("alert")) == 2, T, what="both broadcasts")
    await asyncio.sleep(0.2)
    for c in (alice, bob):
        assert sorted(m["from"] for m in c.received("alert")) == ["a", "b"]
        assert all("pushSeq" not in m for m in c.received("alert"))
    assert a.api.cluster.counters["broadcasts_received"] == b.api.cluster.counters["broadcasts_received"] == 1


async def test_a_say_that_cannot_be_numbered_is_refused(test_nodes: Any) -> None:
    a = await test_nodes()
    alice = a.connect()
    await alice.room_add("lobby")
    a.api.cluster.connected = False  # type: ignore[attr-defined]  # the bus is down
    try:
        r = await alice.say("lobby", "lost")
    finally:
        a.api.cluster.connected = True  # type: ignore[attr-defined]
    assert r["error"] == "Error: the server lost its connection to the cluster bus; the message was not sent"
    await alice.say("lobby", "fine")
    await eventually(lambda: chat(alice), T, what="the next message")
    assert [m["message"] for m in chat(alice)] == ["fine"]


@pytest.mark.parametrize("forgery", ["unsigned", "bad signature", "renumbered replay"])
async def test_numbered_messages_are_signed_outside_their_numbering(test_nodes: Any, redis: Any, redis_url: str,
                                                                    prefix: str, forgery: str) -> None:
    from hero_fast.cluster.signing import Signer

    from .test_inprocess import capture

    a, b = await test_nodes(**{"cluster.secret": SECRET}), await test_nodes(**{"cluster.secret": SECRET})
    alice, bob = a.connect(), b.connect()
    epoch = (await alice.room_add("lobby"))["history"]["epoch"]
    await bob.room_add("lobby")
    channel = f"{prefix}r:lobby".encode()
    conn, seen = await capture(redis_url, channel)
    try:
        await alice.say("lobby", "genuine")
        await eventually(lambda: chat(bob) and seen, T, what="the genuine message")
    finally:
        conn.abort()
    assert seen[0].startswith(b"#1:" + epoch.encode() + b":HF1.")
    say = b'{"k":"say","o":"x","p":{"message":"forged","room":"lobby","from":0,"context":"user"}}'
    data = {"unsigned": b"#2:" + epoch.encode() + b":" + say,
            "bad signature": b"#2:" + epoch.encode() + b":" + Signer("another-secret-0123456789").seal(channel, say),
            "renumbered replay": b"#2:" + epoch.encode() + b":" + seen[0].split(b":", 2)[2]}[forgery]
    counter = {"unsigned": "unsigned", "bad signature": "bad_signature", "renumbered replay": "replayed"}[forgery]
    assert await redis.execute(b"PUBLISH", channel, data) == 2
    await eventually(lambda: b.api.cluster.counters[counter] == 1, T, what=f"the {forgery} message refused")
    await alice.say("lobby", "next")
    await eventually(lambda: len(chat(bob)) == 2, T, what="the next genuine message")
    assert [(m["message"], m["offset"]) for m in chat(bob)] == [("genuine", 1), ("next", 2)]
