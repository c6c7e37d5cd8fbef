"""Graceful shutdown: logged step by step, no new actions while draining, every in-flight
request answered (its reply, or an error when cut at shutdownTimeout), and a second signal
that exits at once."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from _project import write

from hero_fast.actions.registry import SHUTTING_DOWN
from hero_fast.testing import TestApi

SLOW = """
import asyncio
from hero_fast.actions import Action, Input

class Slow(Action):
    name = "slow"
    inputs = {"seconds": Input(default=0.5, formatter=float)}

    async def run(self, data):
        await asyncio.sleep(data.params["seconds"])
        return {"slept": data.params["seconds"]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    return write(tmp_path, {"actions/slow.py": SLOW})


async def test_in_flight_actions_finish_and_new_ones_are_refused_while_draining(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = await TestApi(project, config={"general.shutdownTimeout": 5}).start()
    client = t.connect()
    slow = asyncio.ensure_future(client.action("slow", seconds=0.3))
    await asyncio.sleep(0.05)
    with caplog.at_level(logging.INFO, logger="hero_fast"):
        stopping = asyncio.ensure_future(t.stop())
        await asyncio.sleep(0.05)
        late = await t.connect().action("slow", seconds=0)
        assert late["error"] == SHUTTING_DOWN
        assert (await slow)["slept"] == 0.3  # its normal reply
        await stopping
    lines = [r.getMessage() for r in caplog.records if r.name == "hero_fast"]
    assert lines[0] == (
        "shutdown: no longer accepting; waiting up to 5s for 1 action(s) in flight, then closing 1 connection(s)"
    )
    assert lines[-1].startswith("shutdown: complete in ")
    assert not any("were cut" in line for line in lines)


async def test_actions_outlasting_the_shutdown_timeout_get_an_error_reply(
    project: Path, caplog: pytest.LogCaptureFixture
) -> None:
    t = await TestApi(project, config={"general.shutdownTimeout": 0.2}).start()
    client = t.connect()
    slow = asyncio.ensure_future(client.action("slow", seconds=30))
    also = asyncio.ensure_future(t.http("GET", "/api/slow?seconds=30"))
    await asyncio.sleep(0.1)
    began = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="hero_fast"):
        await t.stop()
    assert time.monotonic() - began < 3
    assert (await slow)["error"] == "the server shut down before this action finished"
    http = await also
    assert (http.status, http.json()["error"]) == (503, "the server shut down before this action finished")
    assert [r.getMessage() for r in caplog.records if "were cut" in r.getMessage()] == [
        "shutdown: 2 action(s) still running after 0.2s were cut; their callers got an error reply"
    ]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_a_second_signal_exits_at_once(project: Path, tmp_path: Path) -> None:
    port = _free_port()
    log = tmp_path / "serve.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hero_fast.cli", "serve", "--project", str(project), "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status", timeout=1).read()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        # an action that would keep the graceful stop waiting for 6 s
        threading.Thread(
            target=lambda: _ignore(lambda: urllib.request.urlopen(
                f"http://127.0.0.1:{port}/api/slow?seconds=6", timeout=10).read()),
            daemon=True,
        ).start()
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        assert proc.poll() is None  # still draining
        began = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        status = proc.wait(timeout=5)
        assert time.monotonic() - began < 1.5
        assert status == 1
        text = log.read_text()
        assert "shutdown: SIGTERM received" in text
        assert "shutdown: second SIGTERM received: exiting now" in text
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def _ignore(fn: object) -> None:
    try:
        fn()  # type: ignore[operator]
    except OSError:
        pass
