"""Per-request cost of ActionRegistry.process (no sockets, no JSON).

    pytest bench/micro/test_bench_action_dispatch.py --benchmark-only

The sync and the async (non-suspending) trivial actions must both be answered
synchronously — an ActionResult, no Task — which the benchmarks assert.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from hero_fast.actions import Action, ActionMiddleware, ActionResult, Input
from hero_fast.testing import make_test_api, make_test_connection


class SyncTrivial(Action):
    name = "syncTrivial"

    def run(self, data: Any) -> Any:
        return {"ok": True}


class AsyncTrivial(Action):
    name = "asyncTrivial"

    async def run(self, data: Any) -> Any:
        return {"ok": True}


class SyncWithInputs(Action):
    name = "syncInputs"
    middleware = ["mw"]
    inputs = {
        "a": Input(required=True, formatter=int),
        "b": Input(default=1),
        "c": Input(validator=lambda v: v != "bad"),
    }

    def run(self, data: Any) -> Any:
        return {"sum": data.params["a"] + data.params["b"]}


@pytest.fixture(scope="module")
def setup() -> tuple[Any, Any]:
    api = make_test_api()
    api.actions.add_middleware(
        ActionMiddleware("mw", pre_processor=lambda data: None, post_processor=lambda data: None)
    )
    for cls in (SyncTrivial, AsyncTrivial, SyncWithInputs):
        api.actions.register(cls)
    return api.actions, make_test_connection(api, "bench")


def _bench(benchmark: Any, setup: tuple[Any, Any], params: dict[str, Any]) -> None:
    registry, conn = setup
    process = registry.process
    first = process(conn, params)
    assert isinstance(first, ActionResult) and first.status == 200, first
    benchmark(process, conn, params)
    assert conn.pending_actions == 0


def test_process_sync_trivial(benchmark: Any, setup: tuple[Any, Any]) -> None:
    _bench(benchmark, setup, {"action": "syncTrivial"})


def test_process_async_trivial_no_suspension(benchmark: Any, setup: tuple[Any, Any]) -> None:
    _bench(benchmark, setup, {"action": "asyncTrivial"})


def test_process_async_trivial_inside_a_loop(benchmark: Any, setup: tuple[Any, Any]) -> None:
    """The same, called while an event loop runs (as the servers do)."""
    registry, conn = setup
    params = {"action": "asyncTrivial"}

    async def inside() -> None:
        loop = asyncio.get_running_loop()
        tasks = len(asyncio.all_tasks(loop))
        benchmark(registry.process, conn, params)
        assert len(asyncio.all_tasks(loop)) == tasks  # no Task was created

    asyncio.run(inside())


def test_process_sync_inputs_and_middleware(benchmark: Any, setup: tuple[Any, Any]) -> None:
    _bench(benchmark, setup, {"action": "syncInputs", "a": "2", "c": "ok", "junk": 1})


def test_process_unknown_action(benchmark: Any, setup: tuple[Any, Any]) -> None:
    registry, conn = setup
    benchmark(registry.process, conn, {"action": "nope"})


def _noop(conn: Any, params: dict[str, Any]) -> None:
    return None


def test_harness_floor(benchmark: Any, setup: tuple[Any, Any]) -> None:
    """The benchmark loop calling a no-op with the same arguments: subtract it."""
    _, conn = setup
    benchmark(_noop, conn, {"action": "syncTrivial"})
