"""hero_fast.client with reconnect=: backoff, the recover request and its bookkeeping, against
the fake server (tests/client/conftest.py). The same against the real server: test_recovery.py."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hero_fast.client import Client, ClientError, ConnectionClosed, ReconnectPolicy

EPOCH = "5f0c2e9a1d3b4c77"
FAST = ReconnectPolicy(min=0.05, max=0.05)


def chat(offset: int, room: str = "lobby") -> dict[str, Any]:
    return {"message": offset, "room": room, "from": "x", "context": "user", "offset": offset, "epoch": EPOCH}


def push(seq: int) -> dict[str, Any]:
    return {"context": "alert", "n": seq, "pushSeq": seq}


def room_add_with_history(conn: Any, msg: dict[str, Any]) -> None:
    """roomAdd as hero-fast answers it: "lobby" keeps a history, other rooms do not."""
    extra = {"history": {"offset": 0, "epoch": EPOCH}} if msg["room"] == "lobby" else {}
    conn.respond(msg, status="OK", data=True, **extra)


class Recorder:
    """Every event of interest, in order."""

    def __init__(self, client: Client) -> None:
        self.events: list[tuple[str, Any]] = []
        for name in ("say", "alert", "disconnected", "reconnecting", "recovered", "reconnected", "error"):
            client.on(name, lambda arg, name=name: self.events.append((name, arg)))

    def of(self, name: str) -> list[Any]:
        return [arg for event, arg in self.events if event == name]

    def names(self) -> list[str]:
        return [event for event, _ in self.events if event not in ("say", "alert")]


async def joined(server: Any, *rooms: str) -> tuple[Client, Recorder]:
    """A reconnecting client of ``server``, connected and in ``rooms``, and its events."""
    client = Client(server.url, reconnect=FAST)
    seen = Recorder(client)
    await client.connect()
    for room in rooms:
        await client.room_add(room)
    return client, seen


def cookie(server: Any, i: int) -> str | None:
    return dict(server.requests[i][2]).get("cookie")


async def test_it_recovers_first_drops_what_it_has_and_rejoins_the_rest(fake, wait_until):
    server = await fake(recovery=True)
    server.handlers["roomAdd"] = room_add_with_history

    def recover(conn: Any, msg: dict[str, Any]) -> None:
        # the replay: what the client already has (chat 2, push 1) and what it missed
        for m in (chat(2), chat(3), push(1), push(2)):
            conn.send_json(m)
        data = {"recovered": True, "id": "the-old-id", "rooms": ["lobby"], "token": "n" * 64}
        conn.respond(msg, status="OK", data=data)

    server.handlers["recover"] = recover
    client, seen = await joined(server, "lobby", "plain")
    stream = client.messages()
    first = server.conns[0]
    for m in (chat(1), chat(2), push(1)):
        first.send_json(m)
    await wait_until(lambda: len(seen.of("alert")) == 1 and len(seen.of("say")) == 2)
    pending = asyncio.ensure_future(client.action("silent"))
    await asyncio.sleep(0.01)
    first.abort()
    with pytest.raises(ConnectionClosed):  # a request of the lost connection fails
        await pending

    outcome = await client.wait_open(timeout=5)
    assert outcome == client.recovery == {"recovered": True, "id": "the-old-id", "rooms": ["lobby"]}
    assert client.id == "the-old-id" and client.open and client.rooms == ["lobby", "plain"]
    second = server.conns[1]
    await wait_until(lambda: len(second.received) == 2)
    assert second.received == [
        {
            "event": "recover",
            "token": first.token,
            "offsets": {"lobby": {"offset": 2, "epoch": EPOCH}},
            "pushSeq": 1,
            "messageId": 1,
        },
        {"event": "roomAdd", "room": "plain", "messageId": 2},  # not restored: joined again
    ]
    assert [m["offset"] for m in seen.of("say")] == [1, 2, 3]
    assert [m["pushSeq"] for m in seen.of("alert")] == [1, 2]
    assert seen.names() == ["disconnected", "reconnecting", "recovered", "reconnected"]
    assert seen.of("reconnecting") == [{"attempt": 1, "delay": 0.05}]
    assert seen.of("reconnected") == [outcome]
    # the stream went on across the reconnect (the new welcome included), without the duplicates
    got = [stream._items.popleft() for _ in range(len(stream))]
    assert [(m.get("offset"), m.get("pushSeq"), "welcome" in m) for m in got if m["context"] != "response"] == [
        (1, None, False), (2, None, False), (None, 1, False), (None, None, True), (3, None, False), (None, 2, False),
    ]  # fmt: skip
    # the same fingerprint on both connections: a cookie of its own
    assert cookie(server, 0) == cookie(server, 1) == f"sessionID={client.fingerprint}"
    assert client.fingerprint is not None and len(client.fingerprint) == 40
    await client.disconnect()


async def test_expired_rejoins_every_room_and_numbers_pushes_anew(fake, wait_until):
    server = await fake(recovery=True)
    server.handlers["roomAdd"] = room_add_with_history

    def recover(conn: Any, msg: dict[str, Any]) -> None:
        data = {"recovered": False, "reason": "expired", "id": conn.id, "rooms": [], "token": "n" * 64}
        conn.respond(msg, status="OK", data=data)

    server.handlers["recover"] = recover
    client, seen = await joined(server, "lobby", "plain")
    server.conns[0].send_json(push(3))
    await wait_until(lambda: len(seen.of("alert")) == 1)
    server.conns[0].abort()
    await wait_until(lambda: client.reconnecting)
    outcome = await client.wait_open(timeout=5)
    second = server.conns[1]
    assert outcome == {"recovered": False, "reason": "expired", "id": second.id, "rooms": []}
    assert client.id == second.id
    assert [m["event"] for m in second.received] == ["recover", "roomAdd", "roomAdd"]
    assert sorted(m["room"] for m in second.received[1:]) == ["lobby", "plain"]
    second.send_json(push(1))  # the new connection's first push
    await wait_until(lambda: len(seen.of("alert")) == 2)
    await client.disconnect()


async def test_a_server_without_recovery_gets_no_recover_request(fake, wait_until):
    server = await fake()  # like actionhero: no recovery in the welcome
    client, seen = await joined(server, "lobby")
    server.conns[0].abort()
    await wait_until(lambda: client.reconnecting)
    assert await client.wait_open(timeout=5) is None
    await wait_until(lambda: len(server.conns[1].received) == 1)
    assert server.conns[1].received == [{"event": "roomAdd", "room": "lobby", "messageId": 1}]
    assert seen.names() == ["disconnected", "reconnecting", "reconnected"]
    assert seen.of("reconnected") == [None] and client.recovery is None
    await client.disconnect()


async def test_a_server_that_stopped_offering_recovery_is_reported_expired(fake, wait_until):
    server = await fake(recovery=True)
    client, seen = await joined(server, "lobby")
    server.recovery = False  # e.g. restarted with recovery.maxDisconnectionDuration = 0
    server.conns[0].abort()
    await wait_until(lambda: client.reconnecting)
    outcome = await client.wait_open(timeout=5)
    second = server.conns[1]
    assert outcome == {"recovered": False, "reason": "expired", "id": second.id, "rooms": []}
    assert [m["event"] for m in second.received] == ["roomAdd", "detailsView"]  # no recover
    assert seen.of("recovered") == [outcome]
    await client.disconnect()


async def test_a_connection_lost_during_the_recover_retries_with_the_same_token(fake, wait_until):
    server = await fake(recovery=True)
    answered: list[str] = []

    def recover(conn: Any, msg: dict[str, Any]) -> None:
        if len(server.conns) == 2:
            conn.abort()  # lost before the answer
            return
        answered.append(msg["token"])
        conn.respond(msg, status="OK", data={"recovered": True, "id": "old", "rooms": [], "token": "n" * 64})

    server.handlers["recover"] = recover
    client, seen = await joined(server)
    first = server.conns[0]
    first.abort()
    await wait_until(lambda: client.reconnecting)
    assert (await client.wait_open(timeout=5))["recovered"] is True
    assert server.conns[1].received[0]["token"] == answered[0] == first.token
    assert [r["attempt"] for r in seen.of("reconnecting")] == [1, 2]
    await client.disconnect()


async def test_while_reconnecting_requests_fail_at_once_and_wait_open_waits(fake, wait_until):
    server = await fake()
    client = Client(server.url, reconnect=ReconnectPolicy(min=0.3, max=0.3))
    await client.connect()
    with client.messages() as stream:
        server.conns[0].abort()
        await wait_until(lambda: client.reconnecting)
        assert not client.open and client.closed
        with pytest.raises(ConnectionClosed, match="reconnecting"):
            await client.action("echo")
        with pytest.raises(RuntimeError):
            await client.connect()
        with pytest.raises(asyncio.TimeoutError):
            await client.wait_open(timeout=0.05)
        await client.wait_open(timeout=5)
        assert not client.reconnecting
        r = await client.action("echo", {"x": 1})
        assert r["echo"]["x"] == 1
        assert not stream.ended
    await client.disconnect()


async def test_it_gives_up_after_its_retries(fake, wait_until):
    server = await fake()
    client = Client(server.url, reconnect=ReconnectPolicy(min=0.1, max=0.1, retries=2))
    seen = Recorder(client)
    await client.connect()
    stream = client.messages()
    await server.stop()  # every attempt is refused
    await wait_until(lambda: client.reconnecting)
    waiting = asyncio.ensure_future(client.wait_open())
    with pytest.raises(ConnectionClosed, match="gave up reconnecting after 2 attempts"):
        await asyncio.wait_for(waiting, 5)
    assert [r["attempt"] for r in seen.of("reconnecting")] == [1, 2]
    errors = seen.of("error")
    assert isinstance(errors[-1], ClientError) and str(errors[-1]) == "gave up reconnecting after 2 attempts"
    assert stream.ended and not client.reconnecting
    with pytest.raises(ConnectionClosed):
        await client.action("echo")


async def test_disconnect_while_reconnecting_stops_for_good(fake, wait_until):
    server = await fake()
    client = Client(server.url, reconnect=ReconnectPolicy(min=0.3, max=0.3))
    await client.connect()
    stream = client.messages()
    server.conns[0].abort()
    await wait_until(lambda: client.reconnecting)
    await client.disconnect()
    assert stream.ended and not client.reconnecting
    with pytest.raises(ConnectionClosed):
        await client.wait_open()
    await asyncio.sleep(0.5)
    assert len(server.conns) == 1  # no attempt was made


@pytest.mark.parametrize("ending", ["quit", "disconnect"])
async def test_leaving_on_purpose_does_not_reconnect(fake, ending):
    server = await fake()
    client = Client(server.url, reconnect=FAST)
    await client.connect()
    if ending == "quit":
        await client.quit()  # the server says "primus::server::close"
    else:
        await client.disconnect()
    await asyncio.sleep(0.2)
    assert len(server.conns) == 1 and not client.reconnecting and client.closed


async def test_the_fingerprint_cookie(fake):
    server = await fake()
    async with Client(server.url):  # without reconnect: nothing added
        pass
    assert cookie(server, 0) is None
    async with Client(server.url, reconnect=True, cookies={"a": "b"}) as c:
        fingerprint = c.fingerprint
    assert cookie(server, 1) == f"a=b; sessionID={fingerprint}"
    async with Client(server.url, reconnect=True, cookies="a=b", fingerprint_cookie="sid") as c:
        assert cookie(server, 2) == f"a=b; sid={c.fingerprint}"
    # one the caller gives is kept
    assert Client(server.url, reconnect=True, cookies={"sessionID": "mine"}).fingerprint == "mine"
    assert Client(server.url, reconnect=True, cookies="x=1; sessionID=mine2").fingerprint == "mine2"
    assert Client(server.url, reconnect=True, headers={"Cookie": "sessionID=mine3"}).fingerprint == "mine3"
    assert Client(server.url + "/primus?sessionID=q", reconnect=True).fingerprint == "q"
    assert Client(server.url).fingerprint is None
    assert Client(server.url, cookies={"sessionID": "given"}).fingerprint == "given"
