"""loadgen's action mode with and without a messageId (issue 14 compares both): a reply is the
response that carries the request's id, or, without ids, any frame with "context":"response"
(never a push, never the welcome)."""
from __future__ import annotations

import json
import os
import subprocess
import uuid
from typing import Any

import pytest
from fakes import ThreadedServer
from websockets.asyncio.server import ServerConnection


class FakeActionServer:
    """Speaks enough of the actionhero protocol: a welcome, then for every action request a push
    followed by the response (with the request's messageId, or a server-assigned uuid). Records
    whether a connection ever had more than one request outstanding."""

    def __init__(self) -> None:
        self.responses = 0
        self.overlapping = 0

    async def handler(self, ws: ServerConnection) -> None:
        await ws.send(json.dumps({"welcome": "hi", "context": "api"}))
        outstanding = 0
        async for raw in ws:
            req = json.loads(raw)
            outstanding += 1
            if outstanding > 1:
                self.overlapping += 1
            await ws.send(json.dumps({"message": "push", "room": "r", "context": "user"}))
            mid: Any = req.get("messageId", str(uuid.uuid4()))
            await ws.send(json.dumps({"x": req["params"]["x"], "context": "response", "messageId": mid}))
            outstanding -= 1
            self.responses += 1


def loadgen(built: str, port: int, *extra: str) -> dict[str, Any]:
    r = subprocess.run([os.path.join(built, "loadgen"), "action", "-P", str(port), "-c", "4", "-p", "1", "-W", "1",
                        "-d", "0.5", "-w", "0.1", *extra], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return dict(json.loads(r.stdout.strip().splitlines()[-1]))


@pytest.mark.parametrize("noid", [False, True])
def test_action_round_trips_count_responses_only(built: str, noid: bool) -> None:
    fake = FakeActionServer()
    with ThreadedServer(fake.handler) as srv:
        res = loadgen(built, srv.port, *(["-I"] if noid else []))
    assert res["message_id"] is (not noid)
    assert res["errors"] == 0
    assert 0 < res["messages"] <= fake.responses
    assert fake.overlapping == 0  # a push taken for a reply would put a second request in flight
