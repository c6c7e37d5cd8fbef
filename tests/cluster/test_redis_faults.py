"""Rooms with history and recovery when Redis itself fails (a private redis-server each):
killed and restarted without persistence (the numbering is lost: clients learn exactly
which rooms and why), with an append-only file (nothing is lost), or hung (SIGSTOP: noticed
within the probe interval, the outage reported as long as it was, what a node missed meanwhile
read back from the room's stream)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hero_fast import Sent

from .conftest import RedisServer, chat, eventually, notices

T = 10.0


@pytest.fixture
def aof_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path, aof=True)
    server.start()
    yield server
    server.kill()


def restart(server: RedisServer) -> None:
    server.kill()  # SIGKILL
    server.start()


async def test_redis_lost_without_persistence_the_numbering_changes_and_clients_learn_what_is_lost(
        test_nodes: Any, private_redis: RedisServer) -> None:
    a, b = await test_nodes(url=private_redis.url), await test_nodes(url=private_redis.url)
    alice, bob, carol = a.connect(), b.connect(), a.connect()
    old_epoch = (await alice.room_add("lobby"))["history"]["epoch"]
    for c in (bob, carol):
        await c.room_add("lobby")
    for i in range(3):
        await bob.say("lobby", i)
    await eventually(lambda: len(chat(alice)) == len(chat(carol)) == 3, T, what="3 messages")
    carol.drop()  # her state is in Redis, and goes with it
    restart(private_redis)
    await eventually(lambda: a.api.cluster.counters["reconnects"] and b.api.cluster.counters["reconnects"], T,
                     what="both nodes back")
    # the members still connected are told that the numbering they knew is gone
    await eventually(lambda: notices(alice), T, what="alice told")
    assert notices(alice) == [{"context": "api", "event": "missedMessages", "room": "lobby", "from": 4, "to": None,
                               "reason": "epoch changed", "epoch": old_epoch}]
    alice.drop()
    for i in range(3, 5):
        await bob.say("lobby", i)
    await eventually(lambda: len(chat(bob)) == 5, T, what="two more messages")
    new_epoch = chat(bob)[-1]["epoch"]
    assert new_epoch != old_epoch and [m["offset"] for m in chat(bob)] == [1, 2, 3, 1, 2]
    back = b.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert data == {"recovered": False, "reason": "messages lost", "id": alice.id, "rooms": ["lobby"],
                    "token": back.token, "lost": {"lobby": {"reason": "epoch changed", "from": None, "to": None}},
                    "pushesLost": 0}
    assert [(m["message"], m["offset"], m["epoch"]) for m in chat(back)] == [(3, 1, new_epoch), (4, 2, new_epoch)]
    gone = b.connect(fingerprint=carol.fingerprint)
    assert (await gone.recover(carol))["reason"] == "expired"


async def test_redis_restarted_from_its_append_only_file_loses_nothing(test_nodes: Any,
                                                                      aof_redis: RedisServer) -> None:
    a, b = await test_nodes(url=aof_redis.url), await test_nodes(url=aof_redis.url)
    alice, bob = a.connect(), b.connect()
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    await bob.say("lobby", 0)
    await eventually(lambda: chat(alice), T, what="the first message")
    alice.drop()
    await bob.say("lobby", 1)
    assert await b.connections.send(alice.id, {"context": "alert", "held": 1}) is Sent.HELD
    await eventually(lambda: len(chat(bob)) == 2, T, what="the second message")
    restart(aof_redis)
    await eventually(lambda: a.api.cluster.counters["reconnects"] and b.api.cluster.counters["reconnects"], T,
                     what="both nodes back")
    await bob.say("lobby", 2)
    back = a.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    await eventually(lambda: len(chat(back)) == 2, T, what="what alice missed")
    assert data["recovered"] is True and data["id"] == alice.id
    assert [(m["message"], m["offset"]) for m in chat(alice) + chat(back)] == [(0, 1), (1, 2), (2, 3)]
    assert [m for m in back.messages if isinstance(m, dict) and m.get("held")] == [
        {"context": "alert", "held": 1, "pushSeq": 1}]
    assert not notices(bob) and not notices(back)


async def test_a_hung_redis_is_noticed_within_the_probe_interval_and_what_was_missed_is_refilled(
        test_nodes: Any, private_redis: RedisServer) -> None:
    # a notices nothing (its probe and timeouts are long): its says wait in its connection and
    # are numbered when Redis wakes up, before b is subscribed again
    a = await test_nodes(url=private_redis.url, **{"cluster.probeInterval": 60000, "cluster.commandTimeout": 30})
    b = await test_nodes(url=private_redis.url, **{"cluster.probeInterval": 1000})
    alice, bob = a.connect(), b.connect()
    for c in (alice, bob):
        await c.room_add("lobby")
    await bob.room_add("plain")
    await alice.say("lobby", 0)
    await eventually(lambda: chat(bob), T, what="the first message")
    private_redis.pause()
    paused = time.monotonic()
    try:
        await eventually(lambda: b.api.cluster.counters["outages"], 3, interval=0.01, what="the outage noticed")
        noticed = time.monotonic() - paused
        for i in range(1, 4):
            await alice.say("lobby", i)
        await asyncio.sleep(10 - (time.monotonic() - paused))
    finally:
        private_redis.resume()
    assert noticed <= 1.0 + 0.2, noticed  # probeInterval, and a tick of the watch
    await eventually(lambda: len(chat(bob, "lobby")) == 4, T, what="the messages said during the freeze, on b")
    assert [(m["message"], m["offset"]) for m in chat(bob, "lobby")] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert [(m["message"], m["offset"]) for m in chat(alice, "lobby")] == [(0, 1), (1, 2), (2, 3), (3, 4)]
    assert not notices(bob, "lobby") and b.api.cluster.counters["history_refilled"] == 3
    # the room without history gets today's notice, with the outage as long as it was
    [notice] = notices(bob, "plain")
    assert 9_500 <= notice["outageMs"] <= 12_000, notice
