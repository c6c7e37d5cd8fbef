"""Cluster tests run against a real Redis: ``HERO_FAST_TEST_REDIS_URL``, default
``redis://127.0.0.1:6379/0``. Without one they are skipped with the reason, except when
``CI`` is set, where a missing Redis is a failure. Every test uses its own key prefix and
deletes its keys afterwards. Server processes are started on free loopback ports, every
wait is bounded, and processes are stopped (or killed) by PID.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from hero_fast.cluster.resp import RespConnection, open_connection, parse_redis_url

REDIS_URL = os.environ.get("HERO_FAST_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
START_TIMEOUT = 20.0
STOP_TIMEOUT = 15.0


def _redis_ping(url: str) -> str | None:
    """None when Redis answers PING at ``url``, else why not."""
    try:
        addr = parse_redis_url(url)
    except ValueError as exc:
        return str(exc)
    try:
        if addr.path:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(2)
            s.connect(addr.path)
        else:
            s = socket.create_connection((addr.host, addr.port), timeout=2)
        with s:
            if addr.password is not None:
                return None  # reachable; AUTH is checked by the tests themselves
            s.sendall(b"*1\r\n$4\r\nPING\r\n")
            reply = s.recv(64)
            return None if reply.startswith(b"+PONG") else f"unexpected reply {reply[:40]!r}"
    except OSError as exc:
        return f"{exc}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    why = _redis_ping(REDIS_URL)
    if why is not None:
        message = f"no Redis at {REDIS_URL} ({why}); set HERO_FAST_TEST_REDIS_URL or start redis-server"
        if os.environ.get("CI"):
            pytest.fail(f"cluster tests need Redis in CI: {message}")
        pytest.skip(message)
    return REDIS_URL


async def redis_conn(url: str) -> RespConnection:
    return await open_connection(parse_redis_url(url), timeout=5)


async def delete_prefix(url: str, prefix: str) -> None:
    conn = await redis_conn(url)
    try:
        cursor = b"0"
        while True:
            cursor, keys = await conn.execute(b"SCAN", cursor, b"MATCH", prefix.encode() + b"*", b"COUNT", 1000)
            if keys:
                await conn.execute(b"DEL", *keys)
            if cursor == b"0":
                break
    finally:
        conn.abort()


@pytest.fixture
async def prefix(redis_url: str) -> AsyncIterator[str]:
    p = f"hf-test-{uuid.uuid4().hex[:10]}:"
    yield p
    await delete_prefix(redis_url, p)


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[RespConnection]:
    """A raw connection to the test Redis (``await redis.execute(b"GET", key)``)."""
    conn = await redis_conn(redis_url)
    yield conn
    conn.abort()


def pushed(push: dict[str, Any]) -> Any:
    """A predicate: ``push`` as the receiver gets it (numbered with ``pushSeq`` for recovery)."""
    return lambda m: isinstance(m, dict) and {k: v for k, v in m.items() if k != "pushSeq"} == push


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- a project with actions that reach the cluster from server code ---------------------------

ACTIONS = textwrap.dedent(
    '''
    from hero_fast.actions import Action, Input

    class PushTo(Action):
        name = "pushTo"
        description = "api.connections.send(id, message)"
        inputs = {"id": Input(required=True), "message": Input(required=True)}

        async def run(self, data):
            return {"sent": (await data.api.connections.send(data.params["id"], data.params["message"])).value}

    class RoomCreate(Action):
        name = "roomCreate"
        description = "chat_room.add(name)"
        inputs = {"name": Input(required=True)}

        def run(self, data):
            data.api.chat_room.add(data.params["name"])
            return {"created": True}

    class Broadcast(Action):
        name = "broadcast"
        description = "chat_room.broadcast(room, message) from server code"
        inputs = {"room": Input(required=True), "message": Input(required=True)}

        def run(self, data):
            return {"local": data.api.chat_room.broadcast(data.params["room"], data.params["message"])}

    class ClusterStats(Action):
        name = "clusterStats"
        description = "api.cluster.stats()"

        def run(self, data):
            return {"stats": data.api.cluster.stats()}
    '''
)


def make_project(root: Path) -> Path:
    (root / "actions").mkdir(parents=True, exist_ok=True)
    (root / "actions" / "cluster_test.py").write_text(ACTIONS)
    (root / "public").mkdir(exist_ok=True)
    return root


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return make_project(tmp_path / "project")


def node_env(prefix: str, **cluster: Any) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}
    env["HERO_FAST__cluster__prefix"] = json.dumps(prefix)
    env["HERO_FAST__servers__websocket__server__pingInterval"] = "0"
    env["HERO_FAST__logging__accessLog"] = "false"
    for key, value in cluster.items():
        env[f"HERO_FAST__cluster__{key}"] = json.dumps(value)
    return env


def wait_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = START_TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"server exited with {proc.returncode}:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"server did not listen on {port} within {timeout} s:\n{log.read_text(errors='replace')}")


class Node:
    """``hero-fast serve`` in a subprocess (one cluster node, or a --workers parent)."""

    def __init__(self, project: Path, redis_url: str, prefix: str, log: Path, *, workers: int = 1,
                 **cluster: Any) -> None:
        self.port = free_port()
        self.log = log
        cmd = [sys.executable, "-m", "hero_fast.cli", "serve", "--project", str(project), "--port",
               str(self.port), "--redis-url", redis_url, "--log-level", "info"]
        if workers > 1:
            cmd += ["--workers", str(workers)]
        self._out = open(log, "wb")
        self.proc = subprocess.Popen(cmd, env=node_env(prefix, **cluster), stdout=self._out,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        try:
            wait_port(self.port, self.proc, log)
        except BaseException:
            self.kill()
            raise

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/primus"

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int | None:
        """SIGTERM, wait (bounded), SIGKILL the process group if it is still there."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        self._out.close()
        return self.proc.returncode

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:  # pragma: no cover
            pass


@pytest.fixture
def nodes(project: Path, redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Any]:
    """A factory of nodes that are all stopped at the end of the test."""
    started: list[Node] = []

    def start(*, url: str | None = None, workers: int = 1, **cluster: Any) -> Node:
        node = Node(project, url or redis_url, prefix, tmp_path / f"node{len(started)}.log", workers=workers,
                    **cluster)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


class RedisServer:
    """A private ``redis-server`` on a free port, for restart tests: no persistence, or with
    ``aof`` an append-only file fsynced at every write (in ``tmp``)."""

    def __init__(self, tmp: Path, aof: bool = False) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            if os.environ.get("CI"):
                pytest.fail("redis-server is not installed")
            pytest.skip("redis-server is not installed")
        self.binary = binary
        self.port = free_port()
        self.dir = tmp
        self.aof = aof
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        persistence = ["--appendonly", "yes", "--appendfsync", "always"] if self.aof else ["--appendonly", "no"]
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "", *persistence,
             "--dir", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while _redis_ping(self.url) is not None:
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise AssertionError("private redis-server did not start")
            time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # in case it was paused
            self.proc.kill()
            self.proc.wait(5)

    def pause(self) -> None:
        """SIGSTOP: Redis hangs (connections stay open, nothing is answered)."""
        assert self.proc is not None
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGCONT)


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


async def eventually(check: Any, timeout: float, interval: float = 0.05, what: str = "condition") -> Any:
    """Await ``check()`` (sync, or returning an awaitable) until it returns a truthy value; bounded."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while True:
        last = check()
        if inspect.isawaitable(last):
            last = await last
        if last:
            return last
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached within {timeout} s (last: {last!r})")
        await asyncio.sleep(interval)


# -- nodes in this process, with in-process connections (hero_fast.testing) -----------------------

#: Rooms of the in-process nodes: two with history (a long one, a short one) and one without.
HISTORY_ROOMS = {
    "lobby": {"history": {"size": 2000, "ttl": 60000}},
    "news": {"history": {"size": 3, "ttl": 60000}},
    "plain": {},
}


def node_config(redis_url: str, prefix: str, **options: Any) -> dict[str, Any]:
    """TestApi config of a cluster node (dotted keys): fast reconnects, and probes not so
    fast that a busy test machine looks like an outage."""
    return {
        "redis_url": redis_url,
        "cluster.prefix": prefix,
        "cluster.leaseTtl": 1500,
        "cluster.probeInterval": 1000,
        "cluster.reconnectMin": 20,
        "cluster.reconnectMax": 200,
        "cluster.commandTimeout": 2,
        "general.startingChatRooms": HISTORY_ROOMS,
        **options,
    }


@pytest.fixture
async def test_nodes(redis_url: str, prefix: str) -> AsyncIterator[Any]:
    """A factory of started TestApi nodes (``await test_nodes(**options)``, ``url=`` for
    another Redis), all stopped at the end of the test."""
    from hero_fast.testing import TestApi

    started: list[TestApi] = []

    async def start(url: str | None = None, **options: Any) -> TestApi:
        node = TestApi(config=node_config(url or redis_url, prefix, **options))
        await node.start()
        started.append(node)
        return node

    yield start
    for node in reversed(started):
        await asyncio.wait_for(node.stop(), 10)


def chat(c: Any, room: str | None = None) -> list[Any]:
    """The chat messages a TestConnection got (of ``room``)."""
    return [m for m in c.received("user") if room is None or m["room"] == room]


def notices(c: Any, room: str | None = None) -> list[Any]:
    """The missedMessages notices a TestConnection got (of ``room``)."""
    return [m for m in c.received("api") if m.get("event") == "missedMessages" and (room is None or m["room"] == room)]
