"""Connection state recovery over real sockets: hero_fast.app.Api on a free port and
hero_fast.client with reconnect= (the generated JS client: tests/browser/test_client_js_recovery.py)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hero_fast import Sent
from hero_fast.app import Api
from hero_fast.client import Client, ReconnectPolicy

ROOMS = {"general.startingChatRooms": {"lobby": {"history": {"size": 2000, "ttl": 60000}}, "plain": {}}}
TOTAL = 1000


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    api = Api(project_dir=tmp_path, overrides=ROOMS)
    await api.start(host="127.0.0.1", port=0)
    try:
        yield api
    finally:
        await api.stop()


def url(api: Api) -> str:
    return f"ws://127.0.0.1:{api.port}/primus"


async def eventually(predicate: Any, timeout: float = 10.0, what: str = "a condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.005)


async def say_numbers(sender: Client, room: str, total: int) -> None:
    """``total`` numbered messages, 50 every 0.1 s: the drop and the reconnect fall amid them."""
    for i in range(total):
        assert (await sender.say(room, i))["status"] == "OK"
        if i % 50 == 49:
            await asyncio.sleep(0.1)


@pytest.mark.parametrize("side", ["server", "client"])
async def test_a_dropped_client_comes_back_with_everything_once_and_in_order(api: Api, side: str) -> None:
    sender = Client(url(api))
    await sender.connect()
    await sender.room_add("lobby")
    receiver = Client(url(api), reconnect=ReconnectPolicy(min=1.0, max=1.0, retries=5))
    await receiver.connect()
    await receiver.room_add("lobby")
    old_id = await receiver.fetch_id()
    said: list[dict[str, Any]] = []
    alerts: list[dict[str, Any]] = []
    outcomes: list[Any] = []
    receiver.on("say", said.append)
    receiver.on("alert", alerts.append)
    receiver.on("recovered", outcomes.append)
    delays: list[float] = []
    receiver.on("reconnecting", lambda info: delays.append(info["delay"]))

    sending = asyncio.ensure_future(say_numbers(sender, "lobby", TOTAL))
    try:
        await eventually(lambda: len(said) >= 200, what="the first 200 messages")
        if side == "server":
            api.connections.by_id[old_id].ws.abort()  # type: ignore[union-attr]
        else:
            receiver._transport.abort()  # type: ignore[union-attr]
        await eventually(lambda: old_id not in api.connections.by_id, what="the server to see the drop")
        held = [await api.connections.send(old_id, {"context": "alert", "n": n}) for n in (1, 2)]
        assert held == [Sent.HELD, Sent.HELD]
        lost_at = len(said)
        outcome = await receiver.wait_open(timeout=10)
        await sending
        await eventually(lambda: len(said) >= TOTAL, what=f"{TOTAL} messages")
        await asyncio.sleep(0.2)  # anything extra (a duplicate) would arrive by now
    finally:
        sending.cancel()
        await receiver.disconnect()
        await sender.disconnect()

    assert lost_at < TOTAL - 100  # the sender was still saying while the receiver was away
    assert [m["message"] for m in said] == list(range(TOTAL))  # 0 lost, 0 duplicated, in order
    first = said[0]["offset"]
    assert [m["offset"] for m in said] == list(range(first, first + TOTAL))
    assert outcome == outcomes[0] == {"recovered": True, "id": old_id, "rooms": ["lobby"]}
    assert len(outcomes) == 1 and delays == [1.0]
    assert receiver.id == old_id and receiver.rooms == ["lobby"]
    assert [a["n"] for a in alerts] == [1, 2]  # the pushes held meanwhile, once each
    assert [a["pushSeq"] for a in alerts] == [1, 2]


@pytest.mark.parametrize(("code", "kept"), [(4000, True), (1000, False)])
async def test_a_client_that_closes_with_4000_keeps_its_state(api: Api, code: int, kept: bool) -> None:
    """4000: the client gave the connection up (its heartbeat timed out, the browser went
    offline) and will be back; 1000: it left."""
    cookies = {"sessionID": "fingerprint-4000"}
    first = Client(url(api), cookies=cookies)
    await first.connect()
    await first.room_add("lobby")
    token = first.welcome["recovery"]["token"]  # type: ignore[index]
    old_id = await first.fetch_id()
    await first.disconnect(code, "gave up")
    async with Client(url(api), cookies=cookies) as second:
        data = (await second.request("recover", token=token, offsets={}, pushSeq=0))["data"]
    assert data["recovered"] is False  # no offset for lobby: what it missed is unknown
    if kept:
        assert data["id"] == old_id and data["rooms"] == ["lobby"]
        assert data["lost"] == {"lobby": {"reason": "no offset", "from": None, "to": None}}
    else:
        assert data["reason"] == "expired" and data["id"] != old_id and data["rooms"] == []
