"""Publishing from processes that are not servers: hero_fast.publish (Publisher,
AsyncPublisher) through Redis, and the HTTP publish endpoint (publish.secret)."""

from __future__ import annotations

import asyncio
import os
import textwrap
from pathlib import Path
from typing import Any

import pytest

from hero_fast import Sent
from hero_fast.publish import AsyncPublisher, Numbered, Publisher, PublishError
from hero_fast.testing import TestApi

from .conftest import chat, eventually, free_port

T = 5.0
SECRET = "publish-test-bus-secret-0123456789"
TOKEN = "publish-endpoint-token-0123456789"


async def say(publisher: Publisher | AsyncPublisher, room: str, message: Any, **kw: Any) -> Any:
    if isinstance(publisher, AsyncPublisher):
        return await publisher.say(room, message, **kw)
    return await asyncio.to_thread(publisher.say, room, message, **kw)


async def send(publisher: Publisher | AsyncPublisher, connection_id: str, message: Any) -> Sent:
    if isinstance(publisher, AsyncPublisher):
        return await publisher.send(connection_id, message)
    return await asyncio.to_thread(publisher.send, connection_id, message)


@pytest.fixture(params=["sync", "async"])
async def publisher(request: Any, redis_url: str, prefix: str) -> Any:
    kind = Publisher if request.param == "sync" else AsyncPublisher
    p = kind(redis_url, prefix=prefix, secret=SECRET)
    yield p
    if isinstance(p, AsyncPublisher):
        await p.close()
    else:
        p.close()


async def test_a_publisher_says_to_members_on_every_node_with_the_same_offsets(test_nodes: Any,
                                                                              publisher: Any) -> None:
    a, b = await test_nodes(**{"cluster.secret": SECRET}), await test_nodes(**{"cluster.secret": SECRET})
    alice, bob = a.connect(), b.connect()
    epoch = (await alice.room_add("lobby"))["history"]["epoch"]
    await bob.room_add("lobby")
    for c in (alice, bob):
        await c.room_add("plain")
    assert await say(publisher, "lobby", {"from": "celery"}) == Numbered(1, epoch)
    await alice.say("lobby", "from a node")
    await eventually(lambda: len(chat(alice)) == 2, T, what="the node's message numbered")
    assert await say(publisher, "lobby", "third") == Numbered(3, epoch)
    assert await say(publisher, "plain", "no history") is None
    for c in (alice, bob):
        await eventually(lambda c=c: len(chat(c)) == 4, T, what="every message")
        assert [(m["message"], m.get("offset")) for m in chat(c)] == [
            ({"from": "celery"}, 1), ("from a node", 2), ("third", 3), ("no history", None)]
        assert chat(c)[0]["from"] == 0 and chat(c)[0]["epoch"] == epoch
    assert a.api.cluster.counters["unsigned"] == b.api.cluster.counters["unsigned"] == 0


async def test_a_publisher_sends_to_a_connection_on_either_node_and_holds_for_a_dropped_one(
        test_nodes: Any, publisher: Any, redis: Any, prefix: str) -> None:
    a, b = await test_nodes(**{"cluster.secret": SECRET}), await test_nodes(**{"cluster.secret": SECRET})
    alice, bob = a.connect(), b.connect()
    assert await send(publisher, alice.id, {"context": "alert", "to": "alice"}) is Sent.REMOTE
    assert await send(publisher, bob.id, {"context": "alert", "to": "bob"}) is Sent.REMOTE
    for c, who in ((alice, "alice"), (bob, "bob")):
        await eventually(lambda c=c: c.received("alert"), T, what=f"the push to {who}")
        assert c.received("alert") == [{"context": "alert", "to": who, "pushSeq": 1}]
    bob.drop()
    # (sent before b's unregistering reached Redis, it goes to b, which holds it the same way)
    async def unregistered() -> bool:
        return await redis.execute(b"HGET", f"{prefix}conns".encode(), bob.id.encode()) is None

    await eventually(unregistered, T, what="b has unregistered bob")
    assert await send(publisher, bob.id, {"context": "alert", "to": "bob", "n": 2}) is Sent.HELD
    assert await send(publisher, "nobody", {"context": "alert"}) is Sent.NOWHERE
    back = a.connect(fingerprint=bob.fingerprint)
    assert (await back.recover(bob))["recovered"] is True
    assert back.received("alert") == [{"context": "alert", "to": "bob", "n": 2, "pushSeq": 2}]


async def test_a_publisher_broadcasts_to_every_node(test_nodes: Any, redis_url: str, prefix: str) -> None:
    a, b = await test_nodes(), await test_nodes()
    alice, bob = a.connect(), b.connect()
    async with AsyncPublisher(redis_url, prefix=prefix) as p:
        assert await p.broadcast({"context": "alert", "all": True}) == 2
    for c in (alice, bob):
        await eventually(lambda c=c: c.received("alert") == [{"context": "alert", "all": True}], T,
                         what="the broadcast")


async def test_from_project_publishes_as_the_project_s_servers_do(test_nodes: Any, redis_url: str, prefix: str,
                                                                   tmp_path: Path) -> None:
    project = tmp_path / "project"
    (project / "config").mkdir(parents=True)
    (project / "config" / "cluster.py").write_text(textwrap.dedent(f"""
        DEFAULT = {{"redis_url": {redis_url!r}, "cluster": {{"prefix": {prefix!r}, "secret": {SECRET!r}}}}}
    """))
    a = await test_nodes(**{"cluster.secret": SECRET})
    alice = a.connect()
    await alice.room_add("lobby")
    with Publisher.from_project(project) as p:
        numbered = await asyncio.to_thread(p.say, "lobby", "signed")
    await eventually(lambda: chat(alice), T, what="the signed message")
    assert numbered is not None and (chat(alice)[0]["offset"], chat(alice)[0]["epoch"]) == numbered
    # a publisher without the secret is refused by the nodes
    with Publisher(redis_url, prefix=prefix) as unsigned:
        await asyncio.to_thread(unsigned.say, "lobby", "unsigned")
    await eventually(lambda: a.api.cluster.counters["unsigned"] == 1, T, what="the unsigned message refused")
    with pytest.raises(PublishError, match="no redis_url"):
        Publisher.from_project(tmp_path / "empty")


async def test_a_forked_child_publishes_under_its_own_id(test_nodes: Any, redis_url: str, prefix: str) -> None:
    a = await test_nodes(**{"cluster.secret": SECRET})
    alice = a.connect()
    await alice.room_add("lobby")
    with Publisher(redis_url, prefix=prefix, secret=SECRET) as p:  # made before the fork, as in a Celery app
        p.say("lobby", "parent 1")
        pid = os.fork()
        if pid == 0:  # the child: publish, and leave without running anything of the parent's
            try:
                p.say("lobby", "child")
            finally:
                os._exit(0)
        assert os.waitpid(pid, 0)[1] == 0
        p.say("lobby", "parent 2")
    await eventually(lambda: len(chat(alice)) == 3, T, what="all three messages")
    assert sorted(m["message"] for m in chat(alice)) == ["child", "parent 1", "parent 2"]
    assert a.api.cluster.counters["replayed"] == 0


async def test_publish_errors_say_what_went_wrong(test_nodes: Any, redis_url: str, prefix: str) -> None:
    await test_nodes()
    with Publisher(redis_url, prefix=prefix) as p:
        with pytest.raises(PublishError, match=r"^room does not exist$"):
            p.say("nowhere", 1)
        with pytest.raises(ValueError, match="history size must be an integer"):
            p.say("lobby", 1, history={"size": -1, "ttl": 10})
        assert p.say("lobby", 1, history={"size": 5, "ttl": 1000}).offset == 1  # numbered as asked
    with pytest.raises(PublishError, match=r"cannot publish through Redis at redis://127\.0\.0\.1:\d+/0: "
                                           r"ConnectionRefusedError"):
        Publisher(f"redis://127.0.0.1:{free_port()}/0", timeout=1).say("lobby", 1)
    p2 = AsyncPublisher(f"redis://127.0.0.1:{free_port()}/0", timeout=1)
    with pytest.raises(PublishError, match="cannot publish through Redis"):
        await p2.broadcast(1)


# -- the HTTP publish endpoint ----------------------------------------------------------------------


@pytest.fixture
async def one() -> Any:
    async with TestApi(config={"publish.secret": TOKEN,
                               "general.startingChatRooms": {"lobby": {"history": {"size": 5, "ttl": 60000}}}}) as t:
        yield t


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_http_endpoint_is_off_by_default() -> None:
    async with TestApi() as t:
        r = await t.http("POST", "/api/_publish", json={"op": "broadcast", "message": 1}, headers=bearer(TOKEN))
        assert (r.status, r.json()["error"]) == (404, "unknown action or invalid apiVersion")  # an action path


@pytest.mark.parametrize("headers", [{}, bearer("wrong"), bearer(TOKEN[:-1]), bearer(TOKEN + "x"),
                                     {"Authorization": f"Basic {TOKEN}"}, {"Authorization": TOKEN}])
async def test_the_http_endpoint_refuses_a_wrong_or_missing_secret(one: TestApi, headers: dict[str, str],
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    import hmac

    from hero_fast.servers import publish as endpoint

    compared: list[Any] = []
    original = hmac.compare_digest

    def compare_digest(x: Any, y: Any) -> bool:
        compared.append((x, y))
        return original(x, y)

    monkeypatch.setattr(endpoint.hmac, "compare_digest", compare_digest)
    alice = one.connect()
    r = await one.http("POST", "/api/_publish", json={"op": "broadcast", "message": {"context": "alert"}},
                       headers=headers)
    assert (r.status, r.json()) == (401, {"error": "unauthorized"})
    assert r.header("www-authenticate") == 'Bearer realm="hero-fast publish"'
    assert not alice.received("alert")
    assert len(compared) == 1 and all(len(x) == 32 for x in compared[0])  # SHA-256s, compared in constant time


async def test_the_http_endpoint_says_sends_and_broadcasts_in_one_process(one: TestApi) -> None:
    alice = one.connect()
    await alice.room_add("lobby")

    async def post(body: Any) -> Any:
        r = await one.http("POST", "/api/_publish", json=body, headers=bearer(TOKEN))
        return r.status, r.json()

    assert await post({"op": "say", "room": "lobby", "message": "hi"}) == (200, {"status": "OK"})
    assert await post({"op": "send", "id": alice.id, "message": {"context": "alert", "n": 1}}) == (
        200, {"status": "OK", "sent": "local"})
    assert await post({"op": "send", "id": "nobody", "message": 1}) == (200, {"status": "OK", "sent": "nowhere"})
    assert await post({"op": "broadcast", "message": {"context": "alert", "all": 1}}) == (200, {"status": "OK"})
    assert [(m["message"], m["offset"]) for m in chat(alice)] == [("hi", 1)]
    assert alice.received("alert") == [{"context": "alert", "n": 1, "pushSeq": 1}, {"context": "alert", "all": 1}]
    assert await post({"op": "say", "room": "nope", "message": 1}) == (404, {"error": "room does not exist"})
    assert (await post({"op": "shout", "message": 1}))[0] == 400
    assert (await post({"op": "say", "message": 1}))[0] == 400
    assert (await post([1]))[0] == 400
    r = await one.http("GET", "/api/_publish", headers=bearer(TOKEN))
    assert (r.status, r.header("allow")) == (405, "POST")


async def test_the_http_endpoint_reaches_every_node(test_nodes: Any) -> None:
    a, b = await test_nodes(**{"publish.secret": TOKEN}), await test_nodes()
    alice, bob = a.connect(), b.connect()
    for c in (alice, bob):
        await c.room_add("lobby")
    r = await a.http("POST", "/api/_publish", json={"op": "say", "room": "lobby", "message": "everyone"},
                     headers=bearer(TOKEN))
    assert r.status == 200
    r = await a.http("POST", "/api/_publish", json={"op": "send", "id": bob.id, "message": {"context": "alert"}},
                     headers=bearer(TOKEN))
    assert r.json() == {"status": "OK", "sent": "remote"}
    await eventually(lambda: chat(bob) and bob.received("alert"), T, what="the say and the push on b")
    assert [(m["message"], m["offset"]) for m in chat(bob)] == [("everyone", 1)]
