"""examples/auth-chat under ``hero-fast serve --workers 2`` on a private Redis: both workers
share its sqlite3 database, and a poke from a user on one worker reaches a user on the other."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from _examples import copy_example

from hero_fast.client import Client

from .conftest import Node, RedisServer, eventually, redis_conn

pytestmark = pytest.mark.slow

PREFIX = "auth-chat-test:"
T = 5.0  # bound on every single wait
START = 30.0  # two workers booting on a loaded machine


@pytest.fixture
def auth_chat(tmp_path: Path) -> Path:
    project = copy_example("auth-chat", tmp_path)
    # the demo users are hashed at first boot: the production rounds would take seconds here
    (project / "config" / "zz_test_speed.py").write_text('DEFAULT = {"authChat": {"passwordIterations": 1000}}\n')
    return project


async def logged_in(url: str, name: str) -> tuple[Client, int]:
    """A client logged in as demo user ``name``, and the pid of the worker serving it."""
    client = Client(url, timeout=T)
    await client.connect()
    assert (await client.action("login", {"name": name, "password": f"{name}-pw"}))["user"] == name
    return client, (await client.action("whoami"))["worker"]


async def test_a_poke_crosses_workers(auth_chat: Path, private_redis: RedisServer, tmp_path: Path) -> None:
    parent = Node(auth_chat, private_redis.url, PREFIX, tmp_path / "serve.log", workers=2)
    redis = await redis_conn(private_redis.url)
    clients: list[Client] = []
    try:
        async def workers_up() -> bool:
            return len(await redis.execute(b"KEYS", PREFIX.encode() + b"node:*")) == 2

        await eventually(workers_up, START, what="2 workers registered")
        alice, alice_worker = await logged_in(parent.url, "alice")
        clients.append(alice)
        # the kernel spreads connections over the workers: connect until bob is on the other one
        for _ in range(40):
            bob, bob_worker = await logged_in(parent.url, "bob")
            clients.append(bob)
            if bob_worker != alice_worker:
                break
        assert bob_worker != alice_worker, "every connection went to alice's worker"

        pokes: list[Any] = []
        bob.on("alert", pokes.append)
        replies: list[dict[str, Any]] = []

        async def poke_crossed() -> bool:  # delivery over the bus is at-most-once: poke until one arrives
            replies.append(await alice.action("poke", {"to": "bob"}))
            # bob's last connection lives in the other process: handed over through Redis
            return replies[-1]["remote"] == 1 and any(p["event"] == "poke" and p["from"] == "alice" for p in pokes)

        try:
            await eventually(poke_crossed, T, interval=0.2, what="a poke from alice's worker reaching bob's")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; the last poke replies: {replies[-3:]}") from None
        # and back: carol on either worker pokes alice, wherever each of them is
        carol, _ = await logged_in(parent.url, "carol")
        clients.append(carol)
        response = await carol.action("poke", {"to": "alice"})
        assert response["local"] + response["remote"] == 1
    finally:
        for c in clients:
            await c.disconnect()
        redis.abort()
        status = parent.stop()
    assert status == 0, parent.output()
    # both workers ran the app's initializer and middleware on the one database: each forgot
    # the connections it served (destroy middleware) and neither seeded the users twice
    db = sqlite3.connect(auth_chat / "data" / "auth-chat.db")
    try:
        assert db.execute("SELECT count(*) FROM connections").fetchone()[0] == 0
        assert db.execute("SELECT count(*) FROM users").fetchone()[0] == 4
    finally:
        db.close()
