"""connection.session and the push API (api.connections.send / broadcast)."""

from __future__ import annotations

from pathlib import Path

import pytest
from _project import write

from hero_fast import Sent
from hero_fast.testing import TestApi

ACTIONS = """
from hero_fast.actions import Action, Input


class Remember(Action):
    name = "remember"
    inputs = {"value": Input(required=True)}

    def run(self, data):
        data.connection.session["value"] = data.params["value"]
        return {"session": dict(data.session)}


class Recall(Action):
    name = "recall"

    def run(self, data):
        return {"session": dict(data.connection.session)}


class Poke(Action):
    name = "poke"
    inputs = {"to": Input(required=True)}

    async def run(self, data):
        sent = await data.api.connections.send(data.params["to"], {"context": "alert", "poke": data.connection.id})
        return {"sent": sent.value}
"""


@pytest.fixture
async def t(tmp_path: Path):  # type: ignore[no-untyped-def]
    write(tmp_path, {"actions/session.py": ACTIONS})
    async with TestApi(tmp_path) as api:
        yield api


async def test_the_session_lives_as_long_as_the_websocket(t: TestApi) -> None:
    alice = t.connect()
    await alice.action("remember", value="a")
    assert (await alice.action("recall"))["session"] == {"value": "a"}
    assert (await t.connect().action("recall"))["session"] == {}


async def test_over_http_the_session_is_per_request(t: TestApi) -> None:
    assert (await t.http("GET", "/api/remember?value=x")).json()["session"] == {"value": "x"}
    assert (await t.http("GET", "/api/recall")).json()["session"] == {}


def test_an_idle_connection_has_no_session_dict_until_used() -> None:
    from hero_fast.connections.connection import Connection

    conn = Connection(None, "webSocket", "id", "127.0.0.1", 1)  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        conn._session  # noqa: B018 - nothing allocated yet
    assert conn.session == {}
    assert conn.session is conn.session
    with pytest.raises(TypeError):
        conn.session = ["not", "a", "dict"]  # type: ignore[assignment]


async def test_send_reaches_a_connection_by_id_and_says_what_happened(t: TestApi) -> None:
    alice, bob = t.connect(), t.connect()
    assert (await alice.action("poke", to=bob.id))["sent"] == "local"
    assert (await bob.next("alert"))["poke"] == alice.id
    assert (await alice.action("poke", to="no-such-id"))["sent"] == "nowhere"
    assert await t.connections.send(bob.id, {"context": "alert", "n": 1}) is Sent.LOCAL
    assert not await t.connections.send("gone", {"n": 1})
    bob.close()
    assert await t.connections.send(bob.id, {"n": 2}) is Sent.NOWHERE


async def test_broadcast_reaches_every_websocket_once(t: TestApi) -> None:
    clients = [t.connect() for _ in range(3)]
    assert t.connections.broadcast({"context": "alert", "message": "maintenance"}) == 3
    for c in clients:
        assert (await c.next("alert"))["message"] == "maintenance"
        assert len(c.received("alert")) == 1
