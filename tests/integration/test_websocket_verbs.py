"""Every verb of PROTOCOL.md over a real WebSocket, with an independent client."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from pathlib import Path

import pytest
import websockets

from hero_fast.app import Api

from .conftest import WsClient, start_api


async def test_welcome_message(api: Api) -> None:
    c = await WsClient.connect(api)
    token = c.welcome["recovery"]["token"]
    assert c.welcome == {
        "welcome": "Hello! Welcome to the actionhero api",
        "context": "api",
        "recovery": {"token": token, "ttl": 120000},  # extra: actionhero clients ignore it
    }
    assert len(token) == 64 and int(token, 16) >= 0
    await c.close()


async def test_action_round_trip_and_message_ids(api: Api) -> None:
    c = await WsClient.connect(api)
    r = await c.request("action", params={"action": "echo", "x": 1, "undeclared": 5})
    assert r == {"x": 1, "y": 7, "context": "response", "messageId": r["messageId"]}
    # 0 is a valid id and is echoed; strings too
    assert (await c.request("action", messageId=0, params={"action": "echo", "x": "a"}))["messageId"] == 0
    assert (await c.request("action", messageId="m-1", params={"action": "echo", "x": 2}))["x"] == 2
    # no id: the server assigns one
    await c.ws.send(json.dumps({"event": "action", "params": {"action": "echo", "x": 3}}))
    r = await c.recv()
    assert r["x"] == 3 and isinstance(r["messageId"], str) and len(r["messageId"]) == 36
    await c.close()


async def test_action_errors_keep_the_connection(api: Api) -> None:
    c = await WsClient.connect(api)
    r = await c.request("action", params={"action": "nope"})
    assert r["error"] == "unknown action or invalid apiVersion"
    r = await c.request("action", params={"action": "echo"})
    assert r["error"] == "x is a required parameter for this action"
    r = await c.request("action", params={"action": "boom"})
    assert re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r["error"]) and "kaboom" not in json.dumps(r)
    assert (await c.request("action", params={"action": "echo", "x": 9}))["x"] == 9
    await c.close()


async def test_simultaneous_actions_limit(api: Api) -> None:
    c = await WsClient.connect(api)
    for i in range(1, 7):
        await c.ws.send(json.dumps({"event": "action", "messageId": i, "params": {"action": "slow", "ms": 300}}))
    responses = [await c.response(i) for i in range(1, 7)]
    errors = [r for r in responses if r.get("error")]
    assert len(errors) == 1 and errors[0]["error"] == "you have too many pending requests"
    assert sum(1 for r in responses if r.get("slept") == 300) == 5
    # afterwards the connection works again
    assert (await c.request("action", params={"action": "echo", "x": 1}))["x"] == 1
    await c.close()


async def test_rooms_and_say(api: Api) -> None:
    a = await WsClient.connect(api)
    b = await WsClient.connect(api)
    assert await a.request("roomAdd", room="defaultRoom") == {
        "status": "OK", "data": True, "context": "response", "messageId": 1}
    assert (await b.request("roomAdd", room="defaultRoom"))["status"] == "OK"
    r = await a.request("roomAdd", room="defaultRoom")
    assert r["error"] == "Error: connection already in this room (defaultRoom)"
    assert r["status"] == r["error"] and r["data"]["room"] == "defaultRoom"
    assert (await a.request("roomAdd", room="noSuchRoom"))["error"] == "Error: room does not exist"

    view = await a.request("roomView", room="defaultRoom")
    members = view["data"]["members"]
    assert view["data"]["room"] == "defaultRoom" and view["data"]["membersCount"] == 2
    ids = {(await x.request("detailsView"))["data"]["id"] for x in (a, b)}
    assert set(members) == ids
    for m in members.values():
        assert set(m) == {"id", "joinedAt"}

    message = {"text": "hi", "n": [1, 2]}
    assert (await a.request("say", room="defaultRoom", message=message))["status"] == "OK"
    for client in (a, b):
        pushed = await client.pushed("user")
        assert pushed["message"] == message and pushed["room"] == "defaultRoom"
        assert isinstance(pushed["sentAt"], int) and pushed["from"] in members

    assert (await a.request("say", room="defaultRoom"))["error"] == "Error: both room and message are required"
    assert (await a.request("say", room="anotherRoom", message="x"))["error"] == \
        "Error: connection not in this room (anotherRoom)"
    assert (await a.request("roomView", room="anotherRoom"))["error"] == \
        "Error: connection not in this room (anotherRoom)"
    assert (await a.request("roomLeave", room="defaultRoom"))["data"] is True
    assert (await a.request("roomLeave", room="defaultRoom"))["error"] == \
        "Error: connection not in this room (defaultRoom)"
    await a.close()
    await b.close()


async def test_disconnect_leaves_all_rooms(api: Api) -> None:
    a = await WsClient.connect(api)
    b = await WsClient.connect(api)
    for room in ("defaultRoom", "anotherRoom"):
        await a.request("roomAdd", room=room)
    await b.request("roomAdd", room="defaultRoom")
    await a.close()
    for _ in range(100):
        if (await b.request("roomView", room="defaultRoom"))["data"]["membersCount"] == 1:
            break
        await asyncio.sleep(0.02)
    assert (await b.request("roomView", room="defaultRoom"))["data"]["membersCount"] == 1
    assert api.chat_room.rooms["anotherRoom"].members == {}
    await b.close()


async def test_details_view(api: Api) -> None:
    c = await WsClient.connect(api, additional_headers={"Cookie": "sessionID=abc123"})
    await c.request("roomAdd", room="defaultRoom")
    d = (await c.request("detailsView"))["data"]
    assert set(d) == {"id", "fingerprint", "remoteIP", "remotePort", "params", "connectedAt", "rooms",
                      "totalActions", "pendingActions"}
    assert d["fingerprint"] == "abc123" and d["remoteIP"] == "127.0.0.1" and d["rooms"] == ["defaultRoom"]
    await c.close()


async def test_fingerprint_from_query_then_id(api: Api) -> None:
    c = await WsClient.connect(api, path="/primus?sessionID=fromquery")
    assert (await c.request("detailsView"))["data"]["fingerprint"] == "fromquery"
    await c.close()
    c = await WsClient.connect(api)
    d = (await c.request("detailsView"))["data"]
    assert d["fingerprint"] == d["id"]
    await c.close()


async def test_file_verb(api: Api) -> None:
    c = await WsClient.connect(api)
    r = await c.request("file", file="index.html")
    assert r["content"] == "<h1>hello</h1>\n" and r["mime"].startswith("text/html") and r["error"] is None
    assert r["length"] == 15
    r = await c.request("file", file="blob.bin")
    assert base64.b64decode(r["content"]) == bytes(range(256)) and r["encoding"] == "base64"
    for bad in ("../secret.txt", "/etc/passwd", "nope.html", "..%2fsecret.txt"):
        r = await c.request("file", file=bad)
        assert r["error"] == "that file is not found" and r["content"] is None
    await c.close()


async def test_documentation_verb(api: Api) -> None:
    c = await WsClient.connect(api)
    doc = (await c.request("documentation"))["data"]
    assert "echo" in doc and "status" in doc
    await c.close()


@pytest.mark.parametrize(
    ("frame", "needle"),
    [
        ("not json", "not valid JSON"),
        ("null", "JSON object"),
        ("42", "JSON object"),
        ("[1,2]", "JSON object"),
        (b"\x00\x01", "binary"),
        ('{"event":"dance","messageId":3}', "verb not found or not allowed (dance)"),
        ("[" * 200 + "]" * 200, "deeper"),
        (json.dumps({"event": "detailsView", "messageId": "x" * 100_000}), "messageId"),
        (json.dumps({"event": "roomAdd", "room": "bad\x00room", "messageId": 1}), "control characters"),
        (json.dumps({"event": "roomAdd", "room": "r" * 100_000, "messageId": 1}), "longer than"),
        (json.dumps({"event": "action", "params": [1], "messageId": 1}), "params must be"),
    ],
)
async def test_bad_input_gets_an_error_and_the_connection_stays(api: Api, frame: str | bytes, needle: str) -> None:
    c = await WsClient.connect(api)
    await c.ws.send(frame)
    r = await c.recv()
    assert r["context"] == "response" and needle in r["error"] and r["status"] == r["error"]
    assert (await c.request("action", params={"action": "echo", "x": 1}))["x"] == 1
    await c.close()


async def test_primus_strings(api: Api) -> None:
    c = await WsClient.connect(api)
    await c.ws.send(json.dumps("primus::id::"))
    d = (await c.request("detailsView"))["data"]
    got = [m for m in c.inbox if isinstance(m, str)]
    assert got == [f"primus::id::{d['id']}"]
    await c.ws.send(json.dumps("primus::ping::123"))
    assert await c.recv() == "primus::pong::123"
    await c.close()


async def test_quit_sends_primus_close_then_closes(api: Api) -> None:
    c = await WsClient.connect(api)
    await c.ws.send(json.dumps({"event": "quit"}))
    assert await c.recv() == "primus::server::close"
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(c.ws.recv(), 5)
    assert c.ws.close_code == 1000


async def test_other_paths_are_404(api: Api) -> None:
    with pytest.raises(websockets.InvalidStatus) as e:
        await websockets.connect(f"ws://127.0.0.1:{api.port}/elsewhere")
    assert e.value.response.status_code == 404
    c = await WsClient.connect(api, path="/primus/?_primuscb=123")
    await c.close()


async def test_heartbeat_pings_and_closes_silent_clients(tmp_path: Path) -> None:
    api = await start_api(tmp_path, {"servers": {"websocket": {"server": {"pingInterval": 200, "timeout": 200}}}})
    try:
        talker = await WsClient.connect(api)
        silent = await WsClient.connect(api)
        for _ in range(3):
            ping = await talker.recv()
            assert ping.startswith("primus::ping::")
            await talker.ws.send(json.dumps("primus::pong::" + ping[len("primus::ping::"):]))
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(silent.ws.recv(), 3)
        assert silent.ws.close_code == 1011
        assert talker.ws.state is websockets.State.OPEN
        await talker.close()
    finally:
        await api.stop()


@pytest.mark.parametrize("destroy", [False, True])
async def test_shutdown_closes_clients(tmp_path: Path, destroy: bool) -> None:
    api = await start_api(tmp_path, {"servers": {"websocket": {"destroyClientsOnShutdown": destroy}}})
    c = await WsClient.connect(api)
    await api.stop()
    messages = []
    with pytest.raises(websockets.ConnectionClosed):
        while True:
            messages.append(json.loads(await asyncio.wait_for(c.ws.recv(), 5)))
    if destroy:
        assert messages == ["primus::server::close"] and c.ws.close_code == 1000
    else:
        assert messages == [] and c.ws.close_code == 1001


async def test_origin_policy_and_authorization(tmp_path: Path) -> None:
    def authorize(request):  # type: ignore[no-untyped-def]
        return request.query.get("token") == "good"

    api = await start_api(tmp_path, {"servers": {"websocket": {"server": {
        "origins": ["http://good.example"], "authorization": authorize}}}})
    try:
        url = f"ws://127.0.0.1:{api.port}/primus"
        with pytest.raises(websockets.InvalidStatus) as e:
            await websockets.connect(url + "?token=good", origin="http://evil.example",
                                     additional_headers={"Cookie": "sessionID=valid"})
        assert e.value.response.status_code == 403
        with pytest.raises(websockets.InvalidStatus) as e:
            await websockets.connect(url + "?token=bad", origin="http://good.example")
        assert e.value.response.status_code == 401
        ws = await websockets.connect(url + "?token=good", origin="http://good.example")
        assert json.loads(await ws.recv())["context"] == "api"
        await ws.close()
    finally:
        await api.stop()


async def test_room_cap(tmp_path: Path) -> None:
    api = await start_api(tmp_path, {"general": {"maxRoomsPerConnection": 1}})
    try:
        c = await WsClient.connect(api)
        await c.request("roomAdd", room="defaultRoom")
        r = await c.request("roomAdd", room="anotherRoom")
        assert "the most allowed" in r["error"]
        await c.close()
    finally:
        await api.stop()


async def test_server_push_and_broadcast(api: Api) -> None:
    c = await WsClient.connect(api)
    await c.request("roomAdd", room="anotherRoom")
    d = (await c.request("detailsView"))["data"]
    assert api.connections.get(d["id"]).send({"context": "alert", "message": "hey"})
    assert await c.pushed("alert") == {"context": "alert", "message": "hey", "pushSeq": 1}
    assert api.chat_room.broadcast("anotherRoom", {"k": 1}) == 1
    pushed = await c.pushed("user")
    assert pushed["message"] == {"k": 1} and pushed["from"] == 0
    await c.close()
