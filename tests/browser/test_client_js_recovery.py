"""The generated client under node (its own WebSocket, no cookies: the client hands its old
fingerprint over as a query parameter) recovers a dropped connection: what was said
meanwhile comes back once and in order. The same with the Python client:
tests/client/test_recovery.py; in Chromium: test_browser_recovery.py."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from _browser_support import LiveServer, make_project, wait_for
from test_client_js_node import node_with_websocket

from hero_fast import Sent
from hero_fast.client import Client

TOTAL = 1000
HISTORY = {"general": {"startingChatRooms": {"defaultRoom": {"history": {"size": 2000, "ttl": 60000}}}}}

# argv: client file, server URL, messages and recoveries to wait for. Prints one JSON line per
# event; "done" carries what arrived (300 ms after the last one expected, so a duplicate would show).
DRIVER = r"""
const Client = require(process.argv[2]);
const total = Number(process.argv[4]);
const recoveries = Number(process.argv[5]);
const out = (o) => process.stdout.write(JSON.stringify(o) + '\n');
const client = new Client({ url: process.argv[3], reconnect: { min: 1000, max: 1000, retries: 5 }, timeout: 5000 });
const said = [];
const alerts = [];
let recovered = 0;
const check = () => {
  if (said.length === total && recovered === recoveries) setTimeout(finish, 300);
};
client.on('say', (m) => { said.push([m.message, m.offset]); check(); });
client.on('recovered', () => { recovered += 1; check(); });
client.on('alert', (m) => alerts.push(m));
['reconnecting', 'recovered', 'disconnected', 'error'].forEach((e) =>
  client.on(e, (arg) => out({ event: e, arg: arg instanceof Error ? arg.message : arg })));
client.connect()
  .then(() => client.roomAdd('defaultRoom'))
  .then(() => out({ event: 'ready', id: client.id }));
function finish () {
  out({ event: 'done', said: said, alerts: alerts, id: client.id, rooms: client.rooms });
  client.disconnect();
  process.exit(0);
}
setTimeout(() => { out({ event: 'stuck', said: said.length }); process.exit(3); }, 40000);
"""


async def read_until(proc: Any, events: set[str], lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Read the driver's JSON lines into ``lines`` until one whose event is in ``events``."""
    assert proc.stdout is not None
    while True:
        raw = await asyncio.wait_for(proc.stdout.readline(), 45)
        assert raw, f"node ended early after {lines}"
        lines.append(json.loads(raw))
        if lines[-1]["event"] in events:
            return lines[-1]


async def say_numbers(sender: Client, total: int) -> None:
    """``total`` numbered messages, 50 every 0.1 s: the drop and the reconnect fall amid them."""
    for i in range(total):
        assert (await sender.say("defaultRoom", i))["status"] == "OK"
        if i % 50 == 49:
            await asyncio.sleep(0.1)


def node_or_skip() -> tuple[str, ...]:
    node = node_with_websocket()
    if node is None:
        pytest.skip("needs node >= 20 with a WebSocket global to drive the generated client")
    return node


async def drive(tmp_path: Path, server: LiveServer, total: int, recoveries: int) -> Any:
    """The generated client of ``server`` under node, waiting for ``total`` messages and
    ``recoveries`` recovered events."""
    node = node_or_skip()
    script = tmp_path / "driver.js"
    script.write_text(DRIVER)
    return await asyncio.create_subprocess_exec(
        *node, str(script), str(server.written[0]), server.url("").rstrip("/"), str(total), str(recoveries),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip


async def test_the_js_client_under_node_comes_back_with_everything_once(tmp_path: Path) -> None:
    node_or_skip()
    server = LiveServer(make_project(tmp_path / "p"), HISTORY)
    api = await server.start()
    proc = await drive(tmp_path, server, TOTAL, 1)
    sender = Client(f"ws://127.0.0.1:{server.port}/primus")
    lines: list[dict[str, Any]] = []
    sending: asyncio.Future[None] | None = None
    try:
        old_id = (await read_until(proc, {"ready"}, lines))["id"]
        await sender.connect()
        await sender.room_add("defaultRoom")
        sending = asyncio.ensure_future(say_numbers(sender, TOTAL))
        history = api.chat_room.rooms["defaultRoom"].history
        assert history is not None
        await wait_for(lambda: history.offset >= 200, what="200 messages said")
        api.connections.get(old_id).ws.abort()  # type: ignore[union-attr]
        await wait_for(lambda: api.connections.get(old_id) is None, what="the server to see the drop")
        lost_at = history.offset
        held = [await api.connections.send(old_id, {"context": "alert", "n": n}) for n in (1, 2)]
        assert held == [Sent.HELD, Sent.HELD]
        await read_until(proc, {"done", "stuck"}, lines)
        await sending
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if sending is not None:
            sending.cancel()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await sender.disconnect()
        await server.stop()
    done = lines[-1]
    assert lost_at < TOTAL - 100  # the sender was still saying while the client was away
    assert [m for m, _ in done["said"]] == list(range(TOTAL))  # 0 lost, 0 duplicated, in order
    assert [o for _, o in done["said"]] == list(range(1, TOTAL + 1))
    assert done["id"] == old_id and done["rooms"] == ["defaultRoom"]
    assert done["alerts"] == [{"context": "alert", "n": n, "pushSeq": n} for n in (1, 2)]  # once each
    events = [(e["event"], e["arg"]) for e in lines if e["event"] not in ("ready", "done")]
    assert events == [
        ("reconnecting", {"attempt": 1, "retries": 5, "delay": 1000}),
        ("recovered", {"recovered": True, "id": old_id, "rooms": ["defaultRoom"]}),
    ]


async def test_a_client_without_a_cookie_keeps_its_fingerprint_after_an_expired_recovery(tmp_path: Path) -> None:
    node_or_skip()
    server = LiveServer(make_project(tmp_path / "p"), HISTORY)
    await server.start()
    proc = await drive(tmp_path, server, 0, 2)
    lines: list[dict[str, Any]] = []
    try:
        first_id = (await read_until(proc, {"ready"}, lines))["id"]
        await server.restart()  # the state was in the stopped process: expired, a new id
        expired = (await read_until(proc, {"recovered"}, lines))["arg"]
        assert expired["reason"] == "expired" and expired["id"] != first_id
        await wait_for(lambda: len(server.connections()) == 1, what="the new connection")
        (conn,) = server.connections()
        assert conn.fingerprint == first_id  # handed over: the first id is its fingerprint for good
        conn.ws.abort()
        again = (await read_until(proc, {"recovered"}, lines))["arg"]
        await read_until(proc, {"done", "stuck"}, lines)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.stop()
    assert again == {"recovered": True, "id": expired["id"], "rooms": ["defaultRoom"]}
