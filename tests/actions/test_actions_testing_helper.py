"""hero_fast.testing: run actions in-process without sockets."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hero_fast.actions import Action, ActionRegistry, Input
from hero_fast.connections import Connection
from hero_fast.testing import make_test_api, make_test_connection, run_action, run_action_result


class Greet(Action):
    name = "greet"
    inputs = {"who": Input(required=True)}

    async def run(self, data: Any) -> Any:
        await asyncio.sleep(0)
        return {"greeting": f"hello {data.params['who']}", "conn": data.connection.type}


async def test_run_action_returns_the_response() -> None:
    api = make_test_api()
    api.actions.register(Greet)
    assert await run_action(api, "greet", {"who": "bob"}) == {"greeting": "hello bob", "conn": "testing"}
    assert await run_action(api, "greet") == {"error": "who is a required parameter for this action"}
    assert await run_action(api, "nope") == {"error": "unknown action or invalid apiVersion"}
    status = await run_action(api, "status")
    assert status["nodeStatus"] == "Node Healthy"


async def test_run_action_with_a_given_connection() -> None:
    api = make_test_api()
    api.actions.register(Greet)
    conn = make_test_connection(api, "my-id")
    assert isinstance(conn, Connection)
    assert (conn.type, conn.id, conn.remote_ip, conn.remote_port) == ("testing", "my-id", "testServer", 0)
    await run_action(api, "greet", {"who": "x"}, connection=conn)
    await run_action(api, "greet", {"who": "y"}, connection=conn)
    assert conn.total_actions == 2 and conn.pending_actions == 0


async def test_run_action_result_has_status_and_params() -> None:
    api = make_test_api()
    api.actions.register(Greet)
    r = await run_action_result(api, "greet", {"who": "z", "extra": 1})
    assert r.status == 200
    assert r.params == {"action": "greet", "apiVersion": 1, "who": "z"}
    r = await run_action_result(api, "greet")
    assert r.status == 422


async def test_params_are_not_modified() -> None:
    api = make_test_api()
    api.actions.register(Greet)
    params = {"who": "q"}
    await run_action(api, "greet", params)
    assert params == {"who": "q"}


def test_make_test_api_defaults() -> None:
    api = make_test_api()
    assert api.config["general"]["simultaneousActions"] == 5
    assert api.config["general"]["apiVersion"]
    assert isinstance(api.actions, ActionRegistry)
    assert api.actions.get("status") is not None and api.actions.get("documentation") is not None
    assert isinstance(api.project_dir, Path)


def test_make_test_api_overrides() -> None:
    api = make_test_api(config_overrides={"general": {"simultaneousActions": 2}})
    assert api.config["general"]["simultaneousActions"] == 2
    assert api.actions.simultaneous_actions == 2


async def test_make_test_api_loads_the_project_actions(tmp_path: Path) -> None:
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "ping.py").write_text(
        textwrap.dedent(
            """
            from hero_fast.actions import Action

            class Ping(Action):
                name = "ping"
                def run(self, data):
                    return {"pong": True}
            """
        )
    )
    api = make_test_api(project_dir=tmp_path)
    assert api.project_dir == tmp_path
    assert await run_action(api, "ping") == {"pong": True}


async def test_make_test_api_uses_the_configured_action_folders(tmp_path: Path) -> None:
    (tmp_path / "acts").mkdir()
    (tmp_path / "acts" / "p.py").write_text(
        "from hero_fast.actions import Action\n"
        "class P(Action):\n"
        "    name = 'p'\n"
        "    def run(self, data):\n"
        "        return {'p': 1}\n"
    )
    api = make_test_api(project_dir=tmp_path, config_overrides={"general": {"paths": {"action": ["acts"]}}})
    assert await run_action(api, "p") == {"p": 1}


async def test_test_connections_keep_what_they_are_sent() -> None:
    api = make_test_api()
    conn = make_test_connection(api, "c-1")
    assert await api.connections.send("c-1", {"context": "alert", "n": 1})
    assert conn.ws.messages == [{"context": "alert", "n": 1}]  # type: ignore[union-attr]


async def test_test_api_has_rooms_chat_and_verbs() -> None:
    from hero_fast.testing import TestApi

    async with TestApi() as t:
        alice, bob = t.connect(), t.connect()
        welcome = alice.messages[0]
        assert (welcome["welcome"], welcome["context"]) == ("Hello! Welcome to the actionhero api", "api")
        assert welcome["recovery"] == {"token": alice.token, "ttl": 120000}
        assert (await alice.room_add("defaultRoom")) == {"status": "OK", "data": True, "context": "response",
                                                         "messageId": "test-1"}
        await bob.room_add("defaultRoom")
        assert (await alice.say("defaultRoom", {"text": "hi"}))["status"] == "OK"
        chat = await bob.next("user")
        assert (chat["message"], chat["from"], chat["room"]) == ({"text": "hi"}, alice.id, "defaultRoom")
        view = (await bob.room_view("defaultRoom"))["data"]
        assert view["membersCount"] == 2
        assert (await alice.details())["data"]["rooms"] == ["defaultRoom"]
        assert (await t.run_action("status", connection=alice))["connections"] == 2
        bob.close()
        assert (await alice.room_view("defaultRoom"))["data"]["membersCount"] == 1
        with pytest.raises(TimeoutError):
            await alice.next("alert", timeout=0.05)
