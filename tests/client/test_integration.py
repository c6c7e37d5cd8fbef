"""hero_fast.client against the real server (hero_fast.app), every verb over real sockets."""

from __future__ import annotations

import asyncio
import textwrap
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from hero_fast.app import Api
from hero_fast.client import Client, ConnectionClosed, HandshakeFailed

ACTIONS = textwrap.dedent(
    """
    import asyncio

    from hero_fast.actions import Action, Input


    class Echo(Action):
        name = "echo"
        description = "sends the message back"
        inputs = {"message": Input(required=True)}

        def run(self, data):
            return {"message": data.params["message"]}


    class Sleep(Action):
        name = "sleep"
        description = "answers after ms milliseconds"
        inputs = {"ms": Input(default=0, formatter=int)}

        async def run(self, data):
            await asyncio.sleep(data.params["ms"] / 1000)
            return {"slept": data.params["ms"]}


    class Boom(Action):
        name = "boom"
        description = "always fails"

        def run(self, data):
            raise RuntimeError("kaboom")
    """
)


def make_project(root: Path) -> Path:
    (root / "actions").mkdir()
    (root / "actions" / "test_actions.py").write_text(ACTIONS)
    (root / "public").mkdir()
    (root / "public" / "hello.txt").write_text("hello world\n")
    (root / "public" / "index.html").write_text("<h1>hi</h1>\n")
    (root / "secret.txt").write_text("do not serve\n")
    return root


Starter = Callable[..., Awaitable[Any]]


@pytest.fixture
async def start_api(tmp_path: Path) -> AsyncIterator[Starter]:
    apis: list[Any] = []
    project = make_project(tmp_path)

    async def start(**overrides: Any) -> Any:
        api = Api(project_dir=project, overrides=overrides or None)
        await api.start(host="127.0.0.1", port=0)
        apis.append(api)
        return api

    yield start
    for api in apis:
        await api.stop()


@pytest.fixture
async def api(start_api: Starter) -> Any:
    return await start_api()


def url(api: Any, path: str = "/primus") -> str:
    return f"ws://127.0.0.1:{api.port}{path}"


async def test_welcome_and_status(api):
    async with Client(url(api)) as client:
        assert client.welcome is not None
        assert client.welcome["context"] == "api" and isinstance(client.welcome["welcome"], str)
        r = await client.action("status")
        assert r["context"] == "response" and r["messageId"] == 1
        assert "error" not in r or r["error"] is None
        assert r["nodeStatus"] == "Node Healthy"


async def test_trailing_slash_and_query(api):
    async with Client(url(api, "/primus/?_primuscb=1700000000000-0")) as client:
        assert (await client.action("status"))["messageId"] == 1


async def test_actions_and_action_errors(api):
    async with Client(url(api)) as client:
        r = await client.action("echo", {"message": {"nested": [1, 2]}, "undeclared": 1})
        assert r["message"] == {"nested": [1, 2]}
        r = await client.action("echo")
        assert r["error"] == "message is a required parameter for this action"
        r = await client.action("nope")
        assert r["error"] == "unknown action or invalid apiVersion"
        r = await client.action("boom")
        assert r["error"].startswith("internal error (ref ") and "kaboom" not in r["error"]
        assert client.open


async def test_pipelined_responses_matched_out_of_order(api):
    async with Client(url(api)) as client:
        done: list[int] = []

        async def call(ms: int) -> dict[str, Any]:
            r = await client.action("sleep", {"ms": ms})
            done.append(ms)
            return r

        rs = await asyncio.gather(call(200), call(100), call(0))
        assert [r["slept"] for r in rs] == [200, 100, 0]
        assert [r["messageId"] for r in rs] == [1, 2, 3]
        assert done == [0, 100, 200]


async def test_too_many_pending_requests(api):
    async with Client(url(api)) as client:
        rs = await asyncio.gather(*(client.action("sleep", {"ms": 200}) for _ in range(8)))
        errors = [r.get("error") for r in rs]
        assert errors.count("you have too many pending requests") == 3
        assert sum(1 for r in rs if r.get("slept") == 200) == 5


async def test_message_ids_string_and_zero(api):
    async with Client(url(api)) as client:
        r = await client.request("action", params={"action": "status"}, messageId="abc")
        assert r["messageId"] == "abc"
        r = await client.request("action", params={"action": "status"}, messageId=0)
        assert r["messageId"] == 0


async def test_rooms(api):
    async with Client(url(api)) as client:
        assert (await client.room_add("defaultRoom"))["status"] == "OK"
        r = await client.room_add("defaultRoom")
        assert r["error"] == "Error: connection already in this room (defaultRoom)"
        view = await client.room_view("defaultRoom")
        me = await client.fetch_id()
        assert view["data"]["room"] == "defaultRoom"
        assert me in view["data"]["members"] and view["data"]["membersCount"] == 1
        assert (await client.room_leave("defaultRoom"))["data"] is True
        r = await client.room_leave("defaultRoom")
        assert r["error"] == "Error: connection not in this room (defaultRoom)"
        r = await client.room_add("noSuchRoom")
        assert r["error"] == "Error: room does not exist"
        r = await client.room_view("anotherRoom")
        assert r.get("error")


async def next_chat(stream: Any, timeout: float = 2.0) -> dict[str, Any]:
    while True:
        msg = await stream.get(timeout=timeout)
        if isinstance(msg, dict) and msg.get("context") == "user":
            return msg


async def test_say_between_clients(api):
    async with Client(url(api)) as a, Client(url(api)) as b:
        await a.room_add("defaultRoom")
        await b.room_add("defaultRoom")
        a_stream, b_stream = a.messages(), b.messages()
        b_heard: list[dict[str, Any]] = []
        b.on("say", b_heard.append)
        ack = await a.say("defaultRoom", {"text": "hi", "n": [1, 2]})
        assert ack["status"] == "OK" and ack["messageId"] == 2
        own = await next_chat(a_stream)
        heard = await next_chat(b_stream)
        for msg in (own, heard):
            assert msg["message"] == {"text": "hi", "n": [1, 2]}
            assert msg["room"] == "defaultRoom" and isinstance(msg["sentAt"], int)
            assert msg["from"] == await a.fetch_id()
        assert b_heard == [heard]
        r = await a.say("anotherRoom", "not a member")
        assert r.get("error")
        r = await a.request("say", room="defaultRoom")
        assert r["error"] == "Error: both room and message are required"


async def test_details_fingerprint_and_ids(api):
    async with Client(url(api), cookies={"sessionID": "fingerprint-1"}) as client:
        r = await client.details_view()
        data = r["data"]
        assert data["fingerprint"] == "fingerprint-1"
        assert data["remoteIP"] == "127.0.0.1"
        assert client.id == data["id"]
        assert await client.primus_id() == data["id"]


async def test_file(api):
    async with Client(url(api)) as client:
        r = await client.file("hello.txt")
        assert r["content"] == "hello world\n" and r["mime"].startswith("text/plain")
        assert r["length"] == 12 and not r.get("error")
        r = await client.file("missing.txt")
        assert r["error"] == "that file is not found" and r["content"] is None
        r = await client.file("../secret.txt")
        assert r["error"] == "that file is not found"


async def test_documentation(api):
    async with Client(url(api)) as client:
        r = await client.documentation()
        assert r["status"] == "OK"
        assert {"status", "echo", "sleep"} <= set(r["data"])
        echo = next(iter(r["data"]["echo"].values()))
        assert "message" in echo["inputs"]


async def test_unknown_verb(api):
    async with Client(url(api)) as client:
        r = await client.request("nope")
        assert r["error"] == "Error: verb not found or not allowed (nope)"
        assert r["data"]["event"] == "nope"


@pytest.mark.parametrize("bad", ["not json", "null", "42", "[1,2]", b"\x00binary"])
async def test_bad_input_gets_an_error_and_keeps_the_connection(api, bad):
    async with Client(url(api)) as client:
        stream = client.messages()
        client.send_raw(bad)
        msg = await stream.get(timeout=2)
        assert msg["context"] == "response" and msg.get("error")
        assert (await client.action("status"))["nodeStatus"] == "Node Healthy"


async def test_heartbeat_keeps_an_idle_client_alive(start_api):
    api = await start_api(
        **{"servers.websocket.server.pingInterval": 100, "servers.websocket.server.timeout": 350}
    )
    async with Client(url(api)) as client:
        pings: list[str] = []
        client.on("primus", pings.append)
        await asyncio.sleep(1.0)
        assert len(pings) >= 4 and all(p.startswith("primus::ping::") for p in pings)
        assert client.open
        assert (await client.action("status"))["messageId"] == 1


async def test_quit(api):
    client = Client(url(api))
    await client.connect()
    await client.quit()
    assert client.server_closed and client.close_code == 1000 and client.closed
    with pytest.raises(ConnectionClosed):
        await client.action("status")


async def test_shutdown_closes_clients_1001(start_api):
    api = await start_api()
    client = Client(url(api))
    await client.connect()
    await api.stop()
    await asyncio.wait_for(client.wait_closed(), 5)
    assert client.close_code == 1001 and not client.server_closed


async def test_other_paths_refused(api):
    with pytest.raises(HandshakeFailed) as info:
        await Client(url(api, "/nope")).connect()
    assert info.value.status == 404
