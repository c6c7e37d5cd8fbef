"""Room history and connection state recovery in one process (hero_fast.history,
hero_fast.recovery), through the in-process test connections."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from hero_fast import Sent
from hero_fast.actions import Action
from hero_fast.middleware import ChatMiddleware
from hero_fast.testing import TestApi

ROOMS = {
    "general.startingChatRooms": {
        "lobby": {"history": {"size": 50, "ttl": 60000}},
        "news": {"history": {"size": 3, "ttl": 60000}},
        "plain": {},
    }
}


@pytest.fixture
async def t():  # type: ignore[no-untyped-def]
    async with TestApi(config=ROOMS) as api:
        yield api


def chat(c: Any, room: str | None = None) -> list[Any]:
    return [m for m in c.received("user") if room is None or m["room"] == room]


async def test_a_room_with_history_numbers_its_messages(t: TestApi) -> None:
    alice = t.connect()
    joined = await alice.room_add("lobby")
    assert joined["history"]["offset"] == 0 and len(joined["history"]["epoch"]) == 16
    for i in range(3):
        await alice.say("lobby", i)
    assert [(m["offset"], m["epoch"]) for m in chat(alice)] == [(1, joined["history"]["epoch"])] * 1 + [
        (2, joined["history"]["epoch"]), (3, joined["history"]["epoch"])]
    plain = await alice.room_add("plain")
    assert "history" not in plain
    await alice.say("plain", "x")
    assert "offset" not in chat(alice, "plain")[0]


async def test_recovery_gives_back_id_rooms_session_missed_messages_and_pushes(t: TestApi) -> None:
    alice, bob = t.connect(), t.connect()
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    alice.connection.session["user"] = "alice"
    await bob.say("lobby", "before")
    assert (await alice.next("user"))["message"] == "before"
    assert await t.connections.send(alice.id, {"context": "alert", "n": 1}) is Sent.LOCAL
    old_id = alice.id
    alice.drop()
    for i in range(5):
        await bob.say("lobby", f"missed {i}")
    assert await t.connections.send(old_id, {"context": "alert", "n": 2}) is Sent.HELD
    back = t.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert data == {"recovered": True, "id": old_id, "rooms": ["lobby"], "token": back.token}
    assert back.token != alice.token
    assert back.id == old_id and back.connection.session == {"user": "alice"}
    replay = [m for m in back.messages[1:] if m.get("context") != "response"]
    assert [m["message"] for m in replay[:5]] == [f"missed {i}" for i in range(5)]
    assert [m["offset"] for m in replay[:5]] == [2, 3, 4, 5, 6]
    assert replay[5] == {"context": "alert", "n": 2, "pushSeq": 2}  # numbering continues
    # the rooms are back without roomAdd: live messages arrive, once
    await bob.say("lobby", "live")
    assert [m["message"] for m in chat(back)][-1] == "live"
    assert len(chat(back)) == 6
    assert (await back.details())["data"]["rooms"] == ["lobby"]
    assert [m["id"] for m in (await bob.room_view("lobby"))["data"]["members"].values()].count(old_id) == 1


async def test_messages_said_during_the_replay_come_after_it_and_only_once(t: TestApi) -> None:
    alice, bob = t.connect(), t.connect()
    await alice.room_add("lobby")
    await bob.room_add("lobby")
    alice.drop()
    for i in range(3):
        await bob.say("lobby", i)
    back = t.connect(fingerprint=alice.fingerprint)
    recovering = asyncio.ensure_future(back.recover(alice))
    # say while the recover verb is in progress (it awaits the history lookup)
    await bob.say("lobby", "during")
    await recovering
    await bob.say("lobby", "after")
    offsets = [m["offset"] for m in chat(back)]
    assert offsets == sorted(offsets) and len(offsets) == len(set(offsets)) == 5


async def test_a_room_without_history_is_reported_lost(t: TestApi) -> None:
    alice = t.connect()
    await alice.room_add("lobby")
    await alice.room_add("plain")
    alice.drop()
    data = await t.connect(fingerprint=alice.fingerprint).recover(alice)
    assert data["recovered"] is False and data["reason"] == "messages lost"
    assert data["rooms"] == ["lobby", "plain"]
    assert data["lost"] == {"plain": {"reason": "no history", "from": None, "to": None}}
    assert data["pushesLost"] == 0


async def test_a_history_too_short_says_which_offsets_are_lost(t: TestApi) -> None:
    alice, bob = t.connect(), t.connect()
    await alice.room_add("news")
    await bob.room_add("news")
    await bob.say("news", "seen")
    await alice.next("user")
    alice.drop()
    for i in range(5):  # news keeps 3
        await bob.say("news", i)
    back = t.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert data["lost"] == {"news": {"reason": "history too short", "from": 2, "to": 3}}
    assert [m["message"] for m in chat(back)] == [2, 3, 4]


async def test_a_changed_epoch_is_reported(t: TestApi) -> None:
    alice = t.connect()
    await alice.room_add("lobby")
    alice.offsets["lobby"] = {"offset": 0, "epoch": "0000000000000000"}  # from another numbering
    alice.drop()
    data = await t.connect(fingerprint=alice.fingerprint).recover(alice)
    assert data["lost"]["lobby"]["reason"] == "epoch changed"


@pytest.mark.parametrize("case", ["forged", "replayed", "other fingerprint", "expired", "left on purpose"])
async def test_no_usable_state_gives_nothing_and_a_plain_new_connection(case: str) -> None:
    config = {**ROOMS, "recovery.maxDisconnectionDuration": 100 if case == "expired" else 60000}
    async with TestApi(config=config) as t:
        alice = t.connect()
        await alice.room_add("lobby")
        alice.connection.session["secret"] = 1
        if case == "left on purpose":
            alice.close(1000)
        else:
            alice.drop()
        if case == "forged":
            alice.token = "0" * 64
        if case == "replayed":
            assert (await t.connect(fingerprint=alice.fingerprint).recover(alice))["recovered"] is True
        if case == "expired":
            await asyncio.sleep(0.2)
        back = t.connect(fingerprint="someone else" if case == "other fingerprint" else alice.fingerprint)
        data = await back.recover(alice)
        assert data == {"recovered": False, "reason": "expired", "id": back.id, "rooms": [], "token": back.token}
        assert back.id != alice.id and back.connection.rooms == [] and back.connection.session == {}
        assert back.token and back.token != alice.token


async def test_quit_is_not_kept(t: TestApi) -> None:
    alice = t.connect()
    alice.send({"event": "quit"})
    assert alice.close_code == 1000 and alice.messages[-1] == "primus::server::close"
    assert (await t.connect(fingerprint=alice.fingerprint).recover(alice))["reason"] == "expired"


async def test_recover_must_come_first_and_be_well_formed(t: TestApi) -> None:
    c = t.connect()
    assert (await c.request("recover"))["error"] == "Error: recover needs the token of the lost connection"
    bad = await c.request("recover", token="a" * 64, offsets={"lobby": 3})
    assert bad["error"].startswith("Error: offsets['lobby'] must be")
    await c.room_add("lobby")
    late = await c.request("recover", token="a" * 64)
    assert late["error"] == "Error: recover must be the first request of a connection"


async def test_rejoining_skips_join_middleware(t: TestApi) -> None:
    joins: list[str] = []
    t.chat_room.add_middleware(ChatMiddleware("count", join=lambda conn, room: joins.append(room)))
    alice = t.connect()
    await alice.room_add("lobby")
    alice.drop()
    await t.connect(fingerprint=alice.fingerprint).recover(alice)
    assert joins == ["lobby"]


async def test_pushes_in_flight_when_the_connection_dropped_are_sent_again(t: TestApi) -> None:
    alice = t.connect()
    for n in range(3):
        t.connections.by_id[alice.id].send({"context": "alert", "n": n})
    alice._track()
    alice.push_seq = 1  # as if pushes 2 and 3 were lost in flight
    alice.drop()
    back = t.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert data["recovered"] is True
    assert [m["n"] for m in back.received("alert")] == [1, 2]


async def test_held_pushes_are_capped_and_the_loss_is_counted() -> None:
    async with TestApi(config={"recovery.maxPushes": 2}) as t:
        alice = t.connect()
        alice.drop()
        for n in range(5):
            assert await t.connections.send(alice.connection.id, {"n": n}) is Sent.HELD
        back = t.connect(fingerprint=alice.fingerprint)
        data = await back.recover(alice)
        assert (data["recovered"], data["pushesLost"]) == (False, 3)
        assert [m["n"] for m in back.messages if isinstance(m, dict) and "n" in m] == [3, 4]


async def test_with_recovery_off_nothing_is_numbered_or_kept() -> None:
    async with TestApi(config={"recovery.maxDisconnectionDuration": 0}) as t:
        alice = t.connect()
        assert alice.messages[0] == {"welcome": "Hello! Welcome to the actionhero api", "context": "api"}
        t.connections.by_id[alice.id].send({"context": "alert"})
        assert alice.messages[-1] == {"context": "alert"}
        old = alice.id
        alice.drop()
        assert await t.connections.send(old, {"n": 1}) is Sent.NOWHERE
        r = await t.connect().request("recover", token="a" * 64)
        assert r["error"] == "Error: connection state recovery is off on this server"


async def test_responses_are_not_numbered(t: TestApi) -> None:
    class Hello(Action):
        name = "hello"

        def run(self, data):  # type: ignore[no-untyped-def]
            return {"hi": True}

    t.actions.register(Hello)
    r = await t.connect().action("hello")
    assert "pushSeq" not in r


async def test_a_session_that_is_not_json_is_not_kept(t: TestApi, caplog: pytest.LogCaptureFixture) -> None:
    alice = t.connect()
    alice.connection.session["handle"] = object()
    with caplog.at_level(logging.WARNING, logger="hero_fast.recovery"):
        alice.drop()
    assert any("not JSON-serialisable" in r.getMessage() for r in caplog.records)
    data = await t.connect(fingerprint=alice.fingerprint).recover(alice)
    assert data["recovered"] is True


async def test_a_client_back_before_the_server_saw_it_go_takes_its_old_connection_over(t: TestApi) -> None:
    alice = t.connect()
    await alice.room_add("lobby")
    # the old connection is still open on the server (a half-open TCP connection)
    back = t.connect(fingerprint=alice.fingerprint)
    data = await back.recover(alice)
    assert data["recovered"] is True and data["id"] == alice.connection.id
    assert alice.close_code == 1001


async def test_kept_states_are_bounded_in_memory_the_oldest_given_up() -> None:
    async with TestApi(config={"recovery.maxStoredBytes": 2000}) as t:
        dropped = []
        for _ in range(20):
            c = t.connect()
            c.connection.session["pad"] = "x" * 100
            c.drop()
            dropped.append(c)
        store = t.api.cluster._recovery
        assert store.total <= 2000 and store.evicted > 0 and len(store) < 20
        oldest, newest = dropped[0], dropped[-1]
        assert (await t.connect(fingerprint=oldest.fingerprint).recover(oldest))["reason"] == "expired"
        assert (await t.connect(fingerprint=newest.fingerprint).recover(newest))["recovered"] is True
        assert store.total == sum(len(s.state) + s.held_bytes for s in store._saved.values())


async def test_connection_middleware_sees_the_drop_and_the_return(t: TestApi) -> None:
    from hero_fast.middleware import ConnectionMiddleware

    seen: list[tuple[str, str, bool, dict[str, Any]]] = []
    t.connections.add_middleware(ConnectionMiddleware(
        "watch",
        create=lambda c: seen.append(("create", c.id, c.recoverable, dict(c.session))),
        destroy=lambda c: seen.append(("destroy", c.id, c.recoverable, dict(c.session))),
    ))
    alice = t.connect()
    old = alice.id
    alice.connection.session["user"] = "alice"
    alice.drop()
    back = t.connect(fingerprint=alice.fingerprint)
    new = back.id
    await back.recover(alice)
    assert seen == [
        ("create", old, False, {}),
        ("destroy", old, True, {"user": "alice"}),  # it may come back: keep what it is owed
        ("create", new, False, {}),
        ("destroy", new, False, {}),  # the new connection gives way to the old one ...
        ("create", old, False, {"user": "alice"}),  # ... which is back, with its session
    ]
    back.close(1000)
    assert seen[-1] == ("destroy", old, False, {"user": "alice"})  # a goodbye: not kept


async def test_a_close_4000_keeps_the_state_only_when_the_client_sent_it(t: TestApi) -> None:
    client_said_so = t.connect()
    client_said_so.close(4000, "offline, back soon")  # the client's own close frame
    back = t.connect(fingerprint=client_said_so.fingerprint)
    assert (await back.recover(client_said_so))["recovered"] is True
    kicked = t.connect()
    kicked.connection.close(4000, "the app's decision")  # the server closed it
    again = t.connect(fingerprint=kicked.fingerprint)
    assert (await again.recover(kicked))["reason"] == "expired"
