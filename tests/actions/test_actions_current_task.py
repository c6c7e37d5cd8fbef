"""Code in an action before its first await must be able to use asyncio's
timeouts: on Python >= 3.12 the eager part runs as a real (eager) Task."""

from __future__ import annotations

import asyncio
import sys

import pytest

from hero_fast.actions import Action
from hero_fast.testing import make_test_api, run_action


class WaitFor(Action):
    name = "waitFor"
    description = "wait_for before any other await"

    async def run(self, data):  # type: ignore[no-untyped-def]
        data.response["value"] = await asyncio.wait_for(asyncio.sleep(0.01, result=5), 1)
        data.response["inTask"] = asyncio.current_task() is not None


class Timeout(Action):
    name = "timeoutBlock"
    description = "asyncio.timeout before any other await"

    async def run(self, data):  # type: ignore[no-untyped-def]
        async with asyncio.timeout(1):
            await asyncio.sleep(0.01)
        data.response["ok"] = True


class NoWait(Action):
    name = "noWait"
    description = "finishes without suspending"

    async def run(self, data):  # type: ignore[no-untyped-def]
        data.response["inTask"] = asyncio.current_task() is not None


async def test_wait_for_works_before_the_first_await() -> None:
    api = make_test_api()
    api.actions.register(WaitFor)
    response = await run_action(api, "waitFor")
    assert response.get("error") is None and response["value"] == 5 and response["inTask"]


@pytest.mark.skipif(sys.version_info < (3, 12), reason="before 3.12 the eager part runs outside a Task (documented)")
async def test_asyncio_timeout_works_before_the_first_await() -> None:
    api = make_test_api()
    api.actions.register(Timeout)
    response = await run_action(api, "timeoutBlock")
    assert response.get("error") is None and response["ok"] is True


@pytest.mark.skipif(sys.version_info < (3, 12), reason="eager Tasks exist from Python 3.12")
async def test_a_non_suspending_action_still_completes_synchronously() -> None:
    api = make_test_api()
    api.actions.register(NoWait)
    conn = api.connections.create("testing", "127.0.0.1", 0) if hasattr(api, "connections") else None
    from hero_fast.testing import make_test_connection

    result = api.actions.process(conn or make_test_connection(api), {"action": "noWait"})
    assert not asyncio.isfuture(result) and result.response["inTask"] is True
