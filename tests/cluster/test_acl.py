"""The Redis ACL line of docs/deployment.md, run as written against a private redis-server:
two nodes work through it without a single refused command, and the user can touch
nothing outside its prefix."""

from __future__ import annotations

import asyncio
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from hero_fast import Sent
from hero_fast.app import Api
from hero_fast.cluster.resp import RespError, open_connection, parse_redis_url
from hero_fast.cluster.scripts import SCRIPTS
from hero_fast.publish import Publisher
from hero_fast.testing import TestConnection

from .conftest import eventually, make_project, pushed
from .test_inprocess import client, crosses, overrides

DOCS = Path(__file__).resolve().parents[2] / "docs" / "deployment.md"
PASSWORD = "CHANGE-ME"
SECRET = "acl-test-secret-0123456789"
T = 5.0


def documented_acl_command() -> list[str]:
    """The ``redis-cli ACL SETUSER ...`` line of the deployment docs, as arguments."""
    lines = [line for line in DOCS.read_text().splitlines() if line.startswith("redis-cli ACL SETUSER ")]
    assert len(lines) == 1, "docs/deployment.md should hold exactly one redis-cli ACL SETUSER line"
    args = shlex.split(lines[0])
    assert args[:3] == ["redis-cli", "ACL", "SETUSER"]
    return args[1:]


def documented_commands() -> set[str]:
    return {a[1:].split("|")[0].upper() for a in documented_acl_command() if a.startswith("+")}


def test_the_acl_allows_every_command_the_backend_sends() -> None:
    # a command added to the backend, the publisher or a Lua script (Redis checks the ACL of
    # what a script calls too) must be added to the documented ACL line (and vice versa)
    src = Path(__file__).resolve().parents[2] / "src" / "hero_fast"
    files = [*(src / "cluster").glob("*.py"), src / "publish.py"]
    used = {m for f in files for m in re.findall(r'b"([A-Z]{3,})"', f.read_text())}
    used |= {command for script in SCRIPTS for command in script.commands()}
    used -= {"AUTH", "SETNAME"}  # AUTH needs no permission; SETNAME is CLIENT's subcommand
    assert used == documented_commands()


async def test_two_nodes_work_as_the_documented_acl_user(tmp_path: Path, private_redis: Any) -> None:
    admin = await open_connection(parse_redis_url(private_redis.url), timeout=T)
    try:
        assert await admin.execute(*documented_acl_command()) == b"OK"
        url = f"redis://hero-fast:{PASSWORD}@127.0.0.1:{private_redis.port}/1"  # /1: SELECT is allowed too
        project = make_project(tmp_path / "p")
        nodes = [Api(project, overrides=overrides(url, "hero-fast:", secret=SECRET)) for _ in range(2)]
        for api in nodes:
            await api.start(port=0)
        a, b = nodes
        try:
            # a dead node in the registry, for the survivors' sweep (SET NX PX, SMEMBERS, DEL, ZREM)
            await admin.execute(b"SELECT", 1)
            await admin.execute(b"ZADD", b"hero-fast:nodes", 1, b"deadbeef")
            await admin.execute(b"SADD", b"hero-fast:nc:deadbeef", b"gone")
            ca, cb = await client(a), await client(b)
            await crosses(ca, cb)
            await crosses(cb, ca)
            assert (await ca.room_view("defaultRoom"))["data"]["membersCount"] == 2
            push = {"context": "alert", "acl": 1}
            wait = asyncio.ensure_future(cb.wait_for(pushed(push), timeout=T))
            assert await a.connections.send(await cb.fetch_id(), push) is Sent.REMOTE
            await wait
            await _history_recovery_and_publisher(a, b, url)
            a.chat_room.add("aclRoom")
            await eventually(lambda: b.chat_room.exists("aclRoom"), T, what="room announced")
            b.chat_room.destroy("aclRoom")
            await eventually(lambda: not a.chat_room.exists("aclRoom"), T, what="room destroyed")
            await ca.room_leave("defaultRoom")
            await eventually(lambda: _gone(admin, b"hero-fast:nodes", b"deadbeef"), 10, what="dead node swept")
            await ca.disconnect()
            await cb.disconnect()
        finally:
            for api in nodes:
                await asyncio.wait_for(api.stop(), 10)
        for api in nodes:
            counters = api.cluster.counters
            assert counters["error_replies"] == 0 and counters["outages"] == 0, counters
            assert counters["lease_refreshes"] >= 1 and counters["resyncs"] >= 1
        # stopped nodes swept their state: the shared rooms (names, options) and the sweep's lock remain
        assert sorted(await admin.execute(b"KEYS", b"*")) == [b"hero-fast:roomh", b"hero-fast:rooms",
                                                              b"hero-fast:sweep:deadbeef"]

        # and the user can do nothing outside its prefix
        user = await open_connection(parse_redis_url(url), timeout=T)
        try:
            for command in ([b"SET", b"other", b"1"], [b"PUBLISH", b"other", b"x"], [b"GET", b"other"],
                            [b"KEYS", b"*"], [b"FLUSHALL"], [b"CONFIG", b"GET", b"*"]):
                with pytest.raises(RespError, match="NOPERM"):
                    await user.execute(*command)
        finally:
            user.abort()
    finally:
        admin.abort()


async def _history_recovery_and_publisher(a: Api, b: Api, url: str) -> None:
    """A room with history, a client recovering on the other node and a publisher: the Lua
    scripts run as the ACL user too (Redis checks what they call)."""
    a.chat_room.add("aclHistory", history={"size": 10, "ttl": 60000})
    await eventually(lambda: b.chat_room.exists("aclHistory"), T, what="room with history announced")
    alice, bob = TestConnection(a), TestConnection(b)
    for c in (alice, bob):
        await c.room_add("aclHistory")
    await bob.say("aclHistory", 1)
    await eventually(lambda: alice.received("user"), T, what="a numbered message")
    alice.drop()
    await bob.say("aclHistory", 2)
    assert await b.connections.send(alice.connection.id, {"context": "alert", "held": 1}) is Sent.HELD
    with Publisher(url, secret=SECRET) as publisher:
        assert await asyncio.to_thread(publisher.say, "aclHistory", 3) is not None
        assert await asyncio.to_thread(publisher.broadcast, {"context": "alert", "all": 1}) == 2
    back = TestConnection(b, fingerprint=alice.fingerprint)
    assert (await back.recover(alice))["recovered"] is True
    await eventually(lambda: len(back.received("user")) == 2, T, what="the messages alice missed")
    assert sorted(m["offset"] for m in back.received("user")) == [2, 3]
    assert [m for m in back.received("alert") if m.get("held")] == [{"context": "alert", "held": 1, "pushSeq": 1}]
    for c in (back, bob):
        c.close()
    b.chat_room.destroy("aclHistory")


async def _gone(conn: Any, key: bytes, member: bytes) -> bool:
    return await conn.execute(b"ZSCORE", key, member) is None
