"""``python -m hero_fast.echo``: the process the conformance and benchmark runs use."""

from __future__ import annotations

import asyncio
import re
import signal
import sys

from websockets.asyncio.client import connect


def test_echo_module_serves_and_stops_on_sigterm(run):
    async def main():
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "hero_fast.echo", "--host", "127.0.0.1", "--port", "0", "--loop", run.kind,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )
        try:
            line = (await asyncio.wait_for(proc.stdout.readline(), 10)).decode()
            m = re.search(r"ws://127\.0\.0\.1:(\d+)/", line)
            assert m, line
            uri = f"ws://127.0.0.1:{m.group(1)}/any/path?q=1"
            async with connect(uri, proxy=None, compression=None, max_size=None) as ws:
                for msg in ("text é", b"\x00binary", "x" * 70000, b"y" * (2 << 20)):
                    await ws.send(msg)
                    assert await ws.recv() == msg
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 10) == 0
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    run(main(), timeout=30)
