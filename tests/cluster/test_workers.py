"""``hero-fast serve --workers N`` with real workers: the supervisor keeps the pool serving
when workers die, however soon after their start, and stops it gracefully on SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hero_fast.client import Client

from .conftest import eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads worker pids from /proc"),
]

START = 20.0  # bound on a worker start on a loaded machine


def children(pid: int) -> set[int]:
    """The live child processes of ``pid`` (Linux)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return set()
    return {int(p) for p in text.split()}


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie is dead for our purpose
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def serves(url: str) -> bool:
    """A connection to the pool can join a room and say into it."""
    c = Client(url, timeout=5)
    try:
        await c.connect()
        if (await c.room_add("defaultRoom")).get("status") != "OK":
            return False
        return (await c.say("defaultRoom", "hi")).get("status") == "OK"
    finally:
        await c.disconnect()


async def test_killing_a_worker_and_then_its_replacement_keeps_the_pool_serving(nodes: Any) -> None:
    parent = nodes(workers=2)
    ppid = parent.proc.pid
    first = await eventually(lambda: len(children(ppid)) == 2 and children(ppid), START, what="2 workers")
    victim, healthy = sorted(first)

    os.kill(victim, signal.SIGKILL)  # right after its start
    replacement = await eventually(lambda: (children(ppid) - first) or None, START, what="a replacement")
    (replacement_pid,) = replacement
    os.kill(replacement_pid, signal.SIGKILL)  # and its replacement, quickly
    third = await eventually(lambda: (children(ppid) - first - replacement) or None, START,
                             what="a second replacement")

    # the sibling was never touched, and the pool serves on (the new worker too, once ready)
    assert alive(healthy) and healthy in children(ppid) and parent.proc.poll() is None
    deadline = time.monotonic() + START
    for _ in range(10):
        assert await serves(parent.url)
    await eventually(lambda: "ready" in parent.output().split(f"pid {next(iter(third))}", 1)[-1], START,
                     what="the second replacement ready")
    assert time.monotonic() < deadline

    # every death is logged with its pid, the signal and the delay before the restart
    out = parent.output()
    for pid in (victim, replacement_pid):
        assert f"pid {pid}" in out and "SIGKILL" in out, out
    assert "restarting in" in out, out

    # SIGTERM to the parent still stops everything gracefully
    workers = children(ppid)
    assert all(os.getpgid(pid) == pid for pid in workers)  # a terminal's Ctrl-C reaches only the parent
    assert parent.stop() == 0, parent.output()
    for pid in workers:
        assert not alive(pid)
    assert "stopped" in parent.output()


async def test_sigterm_during_a_restart_delay_stops_the_pool(nodes: Any) -> None:
    parent = nodes(workers=2)
    ppid = parent.proc.pid
    first = await eventually(lambda: len(children(ppid)) == 2 and children(ppid), START, what="2 workers")
    victim, healthy = sorted(first)
    os.kill(victim, signal.SIGKILL)
    await eventually(lambda: "restarting in" in parent.output(), START, what="the restart logged")
    await asyncio.sleep(0)
    assert parent.stop() == 0, parent.output()
    assert not alive(healthy) and children(ppid) == set()


async def test_a_worker_crash_during_a_redis_outage_does_not_take_the_pool_down(nodes: Any,
                                                                                 private_redis: Any) -> None:
    fast = {"leaseTtl": 1500, "probeInterval": 300, "reconnectMin": 50, "reconnectMax": 400, "commandTimeout": 2}
    parent = nodes(url=private_redis.url, workers=2, **fast)
    ppid = parent.proc.pid
    first = await eventually(lambda: len(children(ppid)) == 2 and children(ppid), START, what="2 workers")
    await eventually(lambda: "all 2 workers ready" in parent.output(), START, what="the pool started")
    victim, healthy = sorted(first)

    private_redis.kill()
    os.kill(victim, signal.SIGKILL)
    # the replacement cannot boot without Redis: it is retried, the sibling serves on
    await eventually(lambda: "exited with status 1" in parent.output(), START, what="a failed restart")
    assert alive(healthy) and parent.proc.poll() is None and "(not ready yet); restarting in" in parent.output()

    private_redis.start()
    await eventually(lambda: parent.output().count(" ready after ") == 3, START,
                     what="a replacement ready once Redis is back")
    assert alive(healthy) and len(children(ppid)) == 2
    for _ in range(6):
        assert await serves(parent.url)
    os.killpg(ppid, signal.SIGINT)  # Ctrl-C in a terminal
    assert parent.proc.wait(15) == 0, parent.output()
    assert "received SIGINT: stopping the workers" in parent.output() and not children(ppid)
