"""Helpers of the operations tests: a live Api on a free loopback port, HTTP and
WebSocket clients. Every network wait is bounded (``TIMEOUT``); every Api is stopped in
a ``finally``."""

from __future__ import annotations

import asyncio
import json
import textwrap
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import websockets

from hero_fast.app import Api

TIMEOUT = 5.0

ACTIONS = textwrap.dedent(
    """
    import asyncio
    from hero_fast.actions import Action, Input

    class Login(Action):
        name = "login"
        inputs = {"user": Input(required=True), "password": Input(required=True)}

        def run(self, data):
            return {"user": data.params["user"]}

    class Slow(Action):
        name = "slow"
        inputs = {"ms": Input(default=20, formatter=int)}

        async def run(self, data):
            await asyncio.sleep(data.params["ms"] / 1000)
            return {"slept": data.params["ms"]}

    class Boom(Action):
        name = "boom"

        def run(self, data):
            raise RuntimeError("kaboom")
    """
)


def make_project(root: Path) -> Path:
    (root / "actions").mkdir(parents=True)
    (root / "actions" / "ops_actions.py").write_text(ACTIONS)
    (root / "public").mkdir()
    (root / "public" / "index.html").write_text("<h1>ops</h1>\n")
    return root


@asynccontextmanager
async def running(root: Path, overrides: dict[str, Any] | None = None) -> AsyncIterator[Api]:
    """An Api for a project in ``root`` (made if missing), started on a free port."""
    if not (root / "actions").exists():
        make_project(root)
    base: dict[str, Any] = {"servers.websocket.server.pingInterval": 0}
    api = Api(root, overrides={**base, **(overrides or {})})
    await asyncio.wait_for(api.start(host="127.0.0.1", port=0), TIMEOUT)
    try:
        yield api
    finally:
        await asyncio.wait_for(api.stop(), 15)


async def http(
    api: Api, path: str, method: str = "GET", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    """A request from a worker thread (urllib), so the server's loop keeps running."""

    def call() -> tuple[int, dict[str, str], bytes]:
        req = urllib.request.Request(f"http://127.0.0.1:{api.port}{path}", method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=TIMEOUT) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, err.read()

    return await asyncio.wait_for(asyncio.get_running_loop().run_in_executor(None, call), TIMEOUT + 1)


class Ws:
    """A WebSocket client (the independent ``websockets`` package) speaking the verbs."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.next_id = 0
        self.welcome: Any = None

    @classmethod
    @asynccontextmanager
    async def connect(cls, api: Api, path: str = "/primus", **kw: Any) -> AsyncIterator[Ws]:
        ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{api.port}{path}", **kw), TIMEOUT)
        client = cls(ws)
        try:
            client.welcome = await client.recv()
            yield client
        finally:
            await asyncio.wait_for(ws.close(), TIMEOUT)

    async def recv(self) -> Any:
        return json.loads(await asyncio.wait_for(self.ws.recv(), TIMEOUT))

    async def request(self, event: str, **fields: Any) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        await self.ws.send(json.dumps({"event": event, "messageId": mid, **fields}))
        while True:
            msg = await self.recv()
            if isinstance(msg, dict) and msg.get("context") == "response" and msg.get("messageId") == mid:
                return msg

    async def action(self, name: str, **params: Any) -> dict[str, Any]:
        return await self.request("action", params={"action": name, **params})


async def eventually(check: Callable[[], Any], timeout: float = TIMEOUT) -> Any:
    """Poll ``check`` (sync or async) until it returns something truthy."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)
