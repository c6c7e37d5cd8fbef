"""The web server inside the real Api (config, connections, ActionRegistry), over sockets."""

from __future__ import annotations

import asyncio
import re
import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from _http_support import RawHttp

from hero_fast.app import Api

ACTIONS = textwrap.dedent(
    """
    import asyncio
    from hero_fast.actions import Action, Input

    class Echo(Action):
        name = "echo"
        description = "echoes x"
        inputs = {"x": Input(required=True), "n": Input(default=7, formatter=int)}

        def run(self, data):
            return {"x": data.params["x"], "n": data.params["n"], "type": data.connection.type}

    class Slow(Action):
        name = "slow"
        description = "waits"
        inputs = {"ms": Input(default=20, formatter=int)}

        async def run(self, data):
            await asyncio.sleep(data.params["ms"] / 1000)
            data.response["slept"] = data.params["ms"]

    class Boom(Action):
        name = "boom"
        description = "raises"

        def run(self, data):
            raise RuntimeError("secret-internal-detail")
    """
)


@pytest.fixture
async def real(tmp_path: Path) -> AsyncIterator[Any]:
    (tmp_path / "actions").mkdir()
    (tmp_path / "actions" / "echo.py").write_text(ACTIONS)
    public = tmp_path / "public"
    public.mkdir()
    (public / "index.html").write_text("<h1>real</h1>\n")
    (tmp_path / "secret.txt").write_text("outside")
    api = Api(tmp_path, overrides={"servers": {"websocket": {"server": {"pingInterval": 0}}}})
    await api.start(host="127.0.0.1", port=0)
    try:
        yield api
    finally:
        await asyncio.wait_for(api.stop(), 10)


async def get(api: Any, target: str, **kw: Any) -> Any:
    client = await RawHttp.connect(api.port)
    try:
        return await client.request(kw.pop("method", "GET"), target, close=True, **kw)
    finally:
        await client.close()


async def test_echo_over_http(real: Any) -> None:
    r = await get(real, "/api/echo?x=hi&n=3&undeclared=1")
    assert r.status == 200, r.body
    body = r.json()
    assert body["x"] == "hi" and body["n"] == 3 and body["type"] == "web"
    assert body["serverInformation"]["serverName"] == real.config["general"]["serverName"]
    assert body["serverInformation"]["apiVersion"] == real.config["general"]["apiVersion"]
    received = body["requesterInformation"]["receivedParams"]
    assert received["action"] == "echo" and received["x"] == "hi"
    assert "undeclared" not in received  # dropped before run, as in actionhero
    assert re.fullmatch(r"sessionID=[0-9a-f]{40}; Path=/; Expires=.+", r.header("set-cookie") or "")
    assert len(real.connections) == 0  # the web connection is gone


@pytest.mark.parametrize(
    ("target", "kw"),
    [
        ("/api?action=echo&x=q", {}),
        ("/api/?action=echo&x=q", {}),
        (
            "/api/echo",
            {"method": "POST", "headers": {"Content-Type": "application/json"}, "body": b'{"x": "q"}'},
        ),
        (
            "/api/echo",
            {
                "method": "POST",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
                "body": b"x=q",
            },
        ),
    ],
)
async def test_param_sources(real: Any, target: str, kw: dict[str, Any]) -> None:
    r = await get(real, target, **kw)
    assert r.status == 200, r.body
    assert r.json()["x"] == "q"


async def test_errors(real: Any) -> None:
    r = await get(real, "/api/nope")
    assert r.status == 404
    assert r.json()["error"] == "unknown action or invalid apiVersion"
    r = await get(real, "/api/echo")
    assert r.status == 422
    assert r.json()["error"] == "x is a required parameter for this action"
    r = await get(real, "/api/boom")
    assert r.status == 500
    assert "Traceback" not in r.body.decode()
    r = await get(
        real, "/api/echo", method="POST", headers={"Content-Type": "application/json"}, body=b"{oops"
    )
    assert r.status == 400
    assert len(real.connections) == 0


async def test_async_action_and_status(real: Any) -> None:
    r = await get(real, "/api/slow?ms=15")
    assert r.status == 200 and r.json()["slept"] == 15
    r = await get(real, "/api/status")
    assert r.status == 200
    assert len(real.connections) == 0


async def test_static_and_426(real: Any) -> None:
    r = await get(real, "/")
    assert r.status == 200 and r.body == b"<h1>real</h1>\n"
    assert r.header("content-type") == "text/html; charset=utf-8"
    etag = r.header("etag")
    assert (await get(real, "/public/index.html", headers={"If-None-Match": etag})).status == 304
    assert (await get(real, "/public/../secret.txt")).status == 404
    assert (await get(real, "/primus")).status == 426
    r = await get(real, "/api/status", method="OPTIONS")
    assert r.status == 204 and r.header("access-control-allow-origin") == "*"


async def test_keep_alive_with_real_api(real: Any) -> None:
    client = await RawHttp.connect(real.port)
    try:
        for i in range(3):
            r = await client.request("GET", f"/api/echo?x={i}")
            assert r.json()["x"] == str(i)
        r = await client.request("GET", "/api/slow?ms=5")
        assert r.json()["slept"] == 5
    finally:
        await client.close()


async def test_file_verb_helper_with_real_api(real: Any) -> None:
    from hero_fast.servers.static import read_public_file

    found = read_public_file(real, "index.html")
    assert found is not None and found[0] == b"<h1>real</h1>\n" and found[1] == "text/html"
    assert read_public_file(real, "../secret.txt") is None
    assert orjson.dumps(found[2])  # an int of ms
