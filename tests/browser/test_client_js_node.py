"""The generated client driven by node's own WebSocket (no browser): node 20's WebSocket
fires ``error`` without ``close`` when a connection is refused, so the client must take
either event as the end of an attempt instead of waiting out its open ``timeout``.

Needs node >= 20 with a global ``WebSocket`` (node 20 behind ``--experimental-websocket``,
node 22 by default); without one it skips, except under CI.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
from _browser_support import LiveServer, make_project

DRIVER = r"""
const Client = require(process.argv[2]);
const t0 = Date.now();
const log = (event, detail) => console.log(JSON.stringify({ event, detail, t: Date.now() - t0 }));
const client = new Client({ url: process.argv[3], reconnect: { min: 50, max: 50, retries: 2 }, timeout: 4000 });
client.on('error', (e) => log('error', e.message));
client.on('reconnecting', (r) => log('reconnecting', r.attempt));
client.on('disconnected', () => { log('disconnected'); process.exit(0); });
client.connect((err) => log('connect', err ? err.message : 'ok'));
setTimeout(() => { log('stuck'); process.exit(3); }, 30000);
"""


@cache
def node_with_websocket() -> tuple[str, ...] | None:
    """The node command line that has a global WebSocket, or None."""
    node = shutil.which("node")
    if node is None:
        return None
    for flags in ((), ("--experimental-websocket",)):
        check = [node, *flags, "-e", "process.exit(typeof WebSocket === 'function' ? 0 : 1)"]
        if subprocess.run(check, capture_output=True, timeout=30).returncode == 0:
            return (node, *flags)
    return None


async def test_a_refused_reconnect_ends_on_error_without_waiting_for_the_open_timeout(tmp_path: Path) -> None:
    node = node_with_websocket()
    if node is None:
        pytest.skip("needs node >= 20 with a WebSocket global to drive the generated client")
    server = LiveServer(make_project(tmp_path / "p"))
    await server.start()
    script = tmp_path / "driver.js"
    script.write_text(DRIVER)
    proc = await asyncio.create_subprocess_exec(
        *node, str(script), str(server.written[0]), f"http://127.0.0.1:{server.port}",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    events: list[dict[str, Any]] = []
    try:
        assert proc.stdout is not None

        async def next_event() -> dict[str, Any]:
            line = await asyncio.wait_for(proc.stdout.readline(), 40)  # type: ignore[union-attr]
            assert line, f"node ended early after {events}"
            events.append(json.loads(line))
            return events[-1]

        assert (await next_event())["detail"] == "ok"  # connected
        await server.stop()  # the port now refuses: every reconnect attempt is refused
        while (await next_event())["event"] not in ("disconnected", "stuck"):
            pass
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await server.stop()
    errors = [e["detail"] for e in events if e["event"] == "error"]
    assert not [e for e in errors if "timed out" in e], events  # no attempt waited for the open timeout
    assert [e["detail"] for e in events if e["event"] == "reconnecting"] == [1, 2]
    assert errors[-1] == "gave up reconnecting after 2 attempts"
    assert sum(e.startswith("WebSocket error on ") for e in errors) == 2, events
