"""Connection state recovery of actionheroClient.js / .min.js in headless Chromium against a
live Api: what a page misses while it is away comes back once, and the page is told how the
recovery went (``recovered`` event).

How a WebSocket really drops in Chromium: playwright's ``context.set_offline(True)`` does not
close an open WebSocket (its traffic just stops), but it fires the page's ``offline`` event,
on which the client closes the socket itself with 4000 ("not leaving": the server keeps the
state), then reconnects on ``online``. The other tests drop the connection from the server
side (the engine connection's ``abort()``: a TCP loss, 1006).
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from _browser_support import LiveServer, client_state, connected_client, events, js, until, wait_for

from hero_fast import Sent
from hero_fast._core import encode_frame
from hero_fast.client import Client

pytestmark = pytest.mark.asyncio(loop_scope="module")

HISTORY = {"general": {"startingChatRooms": {"defaultRoom": {"history": {"size": 500, "ttl": 60000}}}}}
SHORT_LIVED = {**HISTORY, "recovery": {"maxDisconnectionDuration": 300}}
OFF = {"recovery": {"maxDisconnectionDuration": 0}}
ONE_SECOND = {"reconnect": {"min": 1000, "max": 1000}}  # the page comes back after 1 s


async def page_in(chrome: Any, *rooms: str, options: dict[str, Any] | None = None) -> tuple[Any, str]:
    """A page whose client "a" is connected and in ``rooms``; the page and the client's id."""
    page = await chrome.page()
    me = (await connected_client(page, "a", options))["data"]["id"]
    await js(page, "(rooms) => Promise.all(rooms.map((room) => H.clients.a.roomAdd(room)))", list(rooms))
    return page, me


async def sender(server: LiveServer, *rooms: str) -> Client:
    client = Client(f"ws://127.0.0.1:{server.port}/primus")
    await client.connect()
    for room in rooms:
        await client.room_add(room)
    return client


async def say(client: Client, room: str, numbers: range) -> None:
    for n in numbers:
        assert (await client.say(room, n))["status"] == "OK"


async def heard(page: Any, bob: Client, numbers: range) -> list[dict[str, Any]]:
    """Bob says ``numbers`` in defaultRoom; what the page heard once it has heard them all."""
    await say(bob, "defaultRoom", numbers)
    return await until(  # type: ignore[no-any-return]
        page, "(n) => H.seen('a', 'say').length >= n && H.seen('a', 'say')", numbers.stop
    )


def messages(said: list[dict[str, Any]], room: str = "defaultRoom") -> list[Any]:
    return [m["message"] for m in said if m["room"] == room]


def drop(server: LiveServer, connection_id: str) -> None:
    """The TCP connection is lost (server side): 1006, the state is kept."""
    server.api.connections.get(connection_id).ws.abort()  # type: ignore[union-attr]


@pytest.mark.parametrize("server_overrides", [HISTORY], ids=["history"])
async def test_offline_then_online_gets_every_missed_message_once(chrome, server: LiveServer) -> None:
    page, me = await page_in(chrome, "defaultRoom")
    bob = await sender(server, "defaultRoom")
    try:
        assert messages(await heard(page, bob, range(5))) == list(range(5))

        await chrome.context.set_offline(True)
        await until(page, "() => H.count('a', 'offline') === 1 && H.clients.a.state === 'reconnecting'")
        await wait_for(lambda: server.api.connections.get(me) is None, what="the server to see the close")
        await say(bob, "defaultRoom", range(5, 30))  # said while the page is offline
        assert await server.api.connections.send(me, {"context": "alert", "n": 1}) is Sent.HELD
        await asyncio.sleep(0.3)
        assert len(await events(page, "a", "say")) == 5

        await chrome.context.set_offline(False)
        recovered = await until(page, "() => H.seen('a', 'recovered')[0]")
        assert recovered == {"recovered": True, "id": me, "rooms": ["defaultRoom"]}
        said = await heard(page, bob, range(30, 32))  # live again
        await asyncio.sleep(0.3)
    finally:
        await bob.disconnect()
    assert len(await events(page, "a", "say")) == 32
    assert messages(said) == list(range(32))  # every missed message, once, in order
    assert [m["offset"] for m in said] == list(range(1, 33))
    assert await events(page, "a", "alert") == [{"context": "alert", "n": 1, "pushSeq": 1}]
    st = await client_state(page)
    assert st["state"] == "connected" and st["id"] == me and st["rooms"] == ["defaultRoom"]
    names = [n for n in st["events"] if n in ("offline", "online", "reconnect", "recovered")]
    assert names == ["offline", "online", "reconnect", "recovered"]


@pytest.mark.parametrize("server_overrides", [HISTORY], ids=["history"])
async def test_a_room_without_history_is_reported_lost(chrome, server: LiveServer) -> None:
    page, me = await page_in(chrome, "defaultRoom", "anotherRoom", options=ONE_SECOND)
    bob = await sender(server, "defaultRoom", "anotherRoom")
    try:
        drop(server, me)
        await until(page, "() => H.clients.a.state === 'reconnecting'")
        await say(bob, "defaultRoom", range(3))
        await say(bob, "anotherRoom", range(3))  # no history: these are lost to the page
        recovered = await until(page, "() => H.seen('a', 'recovered')[0]", timeout=6000)
        await say(bob, "anotherRoom", range(3, 5))
        said = await until(page, "() => H.seen('a', 'say').length >= 5 && H.seen('a', 'say')")
    finally:
        await bob.disconnect()
    assert recovered == {
        "recovered": False,
        "reason": "messages lost",
        "id": me,
        "rooms": ["defaultRoom", "anotherRoom"],
        "lost": {"anotherRoom": {"reason": "no history", "from": None, "to": None}},
        "pushesLost": 0,
    }
    assert messages(said) == [0, 1, 2] and messages(said, "anotherRoom") == [3, 4]  # back in both rooms
    st = await client_state(page)
    assert st["id"] == me and st["rooms"] == ["defaultRoom", "anotherRoom"]


@pytest.mark.parametrize("server_overrides", [SHORT_LIVED], ids=["recovery-300ms"])
async def test_expired_state_rejoins_the_rooms_as_a_new_connection(chrome, server: LiveServer) -> None:
    page, me = await page_in(chrome, "defaultRoom", options=ONE_SECOND)
    drop(server, me)
    recovered = await until(page, "() => H.seen('a', 'recovered')[0]", timeout=6000)
    st = await client_state(page)
    assert recovered == {"recovered": False, "reason": "expired", "id": st["id"], "rooms": []}
    assert st["id"] != me and st["rooms"] == ["defaultRoom"]
    assert list(server.api.chat_room.members("defaultRoom")) == [st["id"]]  # joined again with roomAdd
    bob = await sender(server, "defaultRoom")
    try:
        said = await heard(page, bob, range(2))
    finally:
        await bob.disconnect()
    assert messages(said) == [0, 1]


@pytest.mark.parametrize("server_overrides", [HISTORY], ids=["history"])
async def test_what_the_page_already_has_is_dropped(chrome, server: LiveServer) -> None:
    page, me = await page_in(chrome, "defaultRoom")
    bob = await sender(server, "defaultRoom")
    try:
        said = await heard(page, bob, range(2))
    finally:
        await bob.disconnect()
    conn = server.api.connections.get(me)
    conn.send({"context": "alert", "n": 1})
    await until(page, "() => H.seen('a', 'alert').length === 1")
    # the same frames again, as a replay after a reconnect could bring them
    for again in (said[1], said[0], {"context": "alert", "n": 1, "pushSeq": 1}):
        conn.send_frame(encode_frame(1, orjson.dumps(again)))
    conn.send({"context": "alert", "n": 2})  # a new push still arrives
    await until(page, "() => H.seen('a', 'alert').length === 2")
    assert len(await events(page, "a", "say")) == 2
    assert [a["pushSeq"] for a in await events(page, "a", "alert")] == [1, 2]


@pytest.mark.parametrize("server_overrides", [OFF], ids=["recovery-off"])
async def test_without_recovery_the_client_reconnects_as_before(chrome, server: LiveServer) -> None:
    asked: list[Any] = []
    verbs = server.api.websocket.verbs
    recover = verbs["recover"]
    verbs["recover"] = lambda conn, data: (asked.append(data), recover(conn, data))[1]
    page, me = await page_in(chrome, "defaultRoom")
    welcome = (await events(page, "a", "welcome"))[0]
    assert welcome == {"welcome": "Hello! Welcome to the actionhero api", "context": "api"}
    drop(server, me)
    await until(page, "() => H.count('a', 'reconnect') === 1", timeout=6000)
    st = await client_state(page)
    assert st["id"] != me and st["rooms"] == ["defaultRoom"]
    assert list(server.api.chat_room.members("defaultRoom")) == [st["id"]]
    assert asked == [] and await events(page, "a", "recovered") == []  # no recover request, no event
