"""A live hero-fast Api on a free loopback port, and a small WebSocket client
built on the independent ``websockets`` package."""

from __future__ import annotations

import asyncio
import itertools
import json
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import websockets

from hero_fast.app import Api

ECHO_ACTION = textwrap.dedent(
    '''
    import asyncio
    from hero_fast.actions import Action, Input

    class Echo(Action):
        name = "echo"
        description = "echoes x"
        inputs = {"x": Input(required=True), "y": Input(default=7)}

        def run(self, data):
            return {"x": data.params["x"], "y": data.params["y"]}

    class Slow(Action):
        name = "slow"
        description = "waits"
        inputs = {"ms": Input(default=200, formatter=int)}

        async def run(self, data):
            await asyncio.sleep(data.params["ms"] / 1000)
            data.response["slept"] = data.params["ms"]

    class Boom(Action):
        name = "boom"
        description = "raises"
        def run(self, data):
            raise RuntimeError("kaboom")
    '''
)


def make_project(root: Path) -> Path:
    (root / "actions").mkdir()
    (root / "actions" / "echo.py").write_text(ECHO_ACTION)
    public = root / "public"
    public.mkdir()
    (public / "index.html").write_text("<h1>hello</h1>\n")
    (public / "blob.bin").write_bytes(bytes(range(256)))
    (root / "secret.txt").write_text("outside public")
    return root


def merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


async def start_api(tmp_path: Path, overrides: dict[str, Any] | None = None) -> Api:
    base = {"servers": {"websocket": {"server": {"pingInterval": 0}}}}
    api = Api(make_project(tmp_path), overrides=merge(base, overrides or {}))
    await api.start(host="127.0.0.1", port=0)
    return api


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    api = await start_api(tmp_path)
    try:
        yield api
    finally:
        await asyncio.wait_for(api.stop(), 10)


class WsClient:
    """Sends verbs with increasing messageIds and keeps every pushed message."""

    def __init__(self, ws: Any) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.inbox: list[Any] = []

    @classmethod
    async def connect(cls, api: Api, path: str = "/primus", **kw: Any) -> WsClient:
        ws = await asyncio.wait_for(websockets.connect(f"ws://127.0.0.1:{api.port}{path}", **kw), 5)
        client = cls(ws)
        client.welcome = await client.recv()
        return client

    async def recv(self, timeout: float = 5) -> Any:
        return json.loads(await asyncio.wait_for(self.ws.recv(), timeout))

    async def request(self, event: str, **fields: Any) -> dict[str, Any]:
        mid = fields.pop("messageId", None)
        if mid is None:
            mid = next(self.ids)
        await self.ws.send(json.dumps({"event": event, "messageId": mid, **fields}))
        return await self.response(mid)

    async def response(self, mid: Any) -> dict[str, Any]:
        for i, m in enumerate(self.inbox):
            if isinstance(m, dict) and m.get("context") == "response" and m.get("messageId") == mid:
                return self.inbox.pop(i)  # type: ignore[no-any-return]
        while True:
            m = await self.recv()
            if isinstance(m, dict) and m.get("context") == "response" and m.get("messageId") == mid:
                return m  # type: ignore[no-any-return]
            self.inbox.append(m)

    async def pushed(self, context: str) -> dict[str, Any]:
        for i, m in enumerate(self.inbox):
            if isinstance(m, dict) and m.get("context") == context:
                return self.inbox.pop(i)  # type: ignore[no-any-return]
        while True:
            m = await self.recv()
            if isinstance(m, dict) and m.get("context") == context:
                return m  # type: ignore[no-any-return]
            self.inbox.append(m)

    async def close(self) -> None:
        await self.ws.close()
