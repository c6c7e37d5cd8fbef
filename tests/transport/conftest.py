"""Every transport test runs twice: on uvloop and on plain asyncio.

Tests are plain functions taking the ``run`` fixture; ``run(coro)`` drives the
coroutine to completion on a fresh event loop of the parametrized kind,
bounded by a timeout, then cancels whatever is left and closes the loop.
"""

from __future__ import annotations

import asyncio
import gc

import pytest

try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is a dependency off Windows
    uvloop = None

LOOPS = ["uvloop", "asyncio"]


@pytest.fixture(params=LOOPS)
def loop_kind(request):
    if request.param == "uvloop" and uvloop is None:
        pytest.skip("uvloop not installed")
    return request.param


@pytest.fixture
def run(loop_kind):
    def runner(coro, timeout: float = 15.0):
        loop = uvloop.new_event_loop() if loop_kind == "uvloop" else asyncio.new_event_loop()
        try:
            return loop.run_until_complete(asyncio.wait_for(coro, timeout))
        finally:
            try:
                pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
                for t in pending:
                    t.cancel()
                if pending:
                    loop.run_until_complete(asyncio.wait(pending, timeout=2))
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()
                gc.collect()

    runner.kind = loop_kind
    return runner
