"""ActionRegistry.process: sync/async run, the eager path, Tasks only for what
suspends, the simultaneousActions limit, errors."""

from __future__ import annotations

import asyncio
import logging
import re
from typing import Any

import pytest
from _actions_support import TaskCounter, settle

from hero_fast.actions import Action, ActionError, ActionRegistry, ActionResult, Input
from hero_fast.testing import make_test_api, make_test_connection


class SyncEcho(Action):
    name = "syncEcho"
    inputs = {"x": Input()}

    def run(self, data: Any) -> Any:
        return {"x": data.params.get("x"), "kind": "sync"}


class FillsResponse(Action):
    name = "fills"

    def run(self, data: Any) -> None:
        data.response["filled"] = True


class AsyncNoWait(Action):
    name = "asyncNoWait"
    inputs = {"x": Input()}

    async def run(self, data: Any) -> Any:
        return {"x": data.params.get("x"), "kind": "async"}


class AsyncFills(Action):
    name = "asyncFills"

    async def run(self, data: Any) -> None:
        data.response["filled"] = "async"


class Sleeps(Action):
    name = "sleeps"
    inputs = {"t": Input(default=0.01, formatter=float)}

    async def run(self, data: Any) -> Any:
        await asyncio.sleep(data.params["t"])
        return {"slept": data.params["t"]}


@pytest.fixture
def reg(registry: ActionRegistry) -> ActionRegistry:
    for cls in (SyncEcho, FillsResponse, AsyncNoWait, AsyncFills, Sleeps):
        registry.register(cls)
    return registry


# ---------------------------------------------------------------- sync / async


def test_sync_action_returns_result_directly(reg: ActionRegistry, conn: Any) -> None:
    r = reg.process(conn, {"action": "syncEcho", "x": 1})
    assert isinstance(r, ActionResult)
    assert r.status == 200
    assert r.action == "syncEcho"
    assert r.response == {"x": 1, "kind": "sync"}
    assert "error" not in r.response
    assert r.duration >= 0
    assert r.ok and r.error is None


def test_run_may_fill_data_response(reg: ActionRegistry, conn: Any) -> None:
    assert reg.process(conn, {"action": "fills"}).response == {"filled": True}  # type: ignore[union-attr]


async def test_async_non_suspending_action_is_answered_synchronously(reg: ActionRegistry, conn: Any) -> None:
    loop = asyncio.get_running_loop()
    tasks_before = len(asyncio.all_tasks())
    with TaskCounter(loop) as counter:
        r1 = reg.process(conn, {"action": "asyncNoWait", "x": 2})
        r2 = reg.process(conn, {"action": "asyncFills"})
    assert counter.count == 0
    assert len(asyncio.all_tasks()) == tasks_before
    assert isinstance(r1, ActionResult) and isinstance(r2, ActionResult)
    assert r1.response == {"x": 2, "kind": "async"}
    assert r2.response == {"filled": "async"}
    assert conn.pending_actions == 0


def test_async_non_suspending_action_without_a_loop(reg: ActionRegistry, conn: Any) -> None:
    r = reg.process(conn, {"action": "asyncNoWait", "x": 3})
    assert isinstance(r, ActionResult)
    assert r.response["x"] == 3


async def test_suspending_action_completes_via_one_task(reg: ActionRegistry, conn: Any) -> None:
    loop = asyncio.get_running_loop()
    with TaskCounter(loop) as counter:
        r = reg.process(conn, {"action": "sleeps", "t": "0.01"})
    assert counter.count == 1
    assert isinstance(r, asyncio.Task)
    assert conn.pending_actions == 1
    assert reg.in_flight == 1
    result = await r
    assert isinstance(result, ActionResult)
    assert result.status == 200
    assert result.response == {"slept": 0.01}
    assert result.duration >= 10 * 0.9
    assert conn.pending_actions == 0
    await asyncio.sleep(0)
    assert reg.in_flight == 0


async def test_awaitable_returned_by_a_sync_run(registry: ActionRegistry, conn: Any) -> None:
    loop = asyncio.get_running_loop()

    class ReturnsFuture(Action):
        name = "fut"

        def run(self, data: Any) -> Any:
            fut = loop.create_future()
            loop.call_later(0.001, fut.set_result, {"from": "future"})
            return fut

    registry.register(ReturnsFuture)
    r = await settle(registry.process(conn, {"action": "fut"}))
    assert r.response == {"from": "future"}


async def test_exception_after_suspension_is_a_500(registry: ActionRegistry, conn: Any) -> None:
    class Late(Action):
        name = "late"

        async def run(self, data: Any) -> None:
            await asyncio.sleep(0)
            raise RuntimeError("database went away")

    registry.register(Late)
    r = await settle(registry.process(conn, {"action": "late"}))
    assert r.status == 500 and re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r.response["error"])
    assert conn.pending_actions == 0


def test_non_dict_return_values_are_ignored(registry: ActionRegistry, conn: Any) -> None:
    class Odd(Action):
        name = "odd"

        def run(self, data: Any) -> Any:
            data.response["a"] = 1
            return "a string"

    registry.register(Odd)
    r = registry.process(conn, {"action": "odd"})
    assert isinstance(r, ActionResult)
    assert r.response == {"a": 1}


# ---------------------------------------------------------------- errors


def test_unknown_action_is_404(reg: ActionRegistry, conn: Any) -> None:
    for params in ({"action": "nope"}, {}, {"action": None}, {"action": ["x"]}, {"action": {"a": 1}}):
        r = reg.process(conn, params)
        assert isinstance(r, ActionResult)
        assert (r.status, r.response) == (404, {"error": "unknown action or invalid apiVersion"})
    assert conn.pending_actions == 0


def test_exception_is_500_without_traceback(reg: ActionRegistry, conn: Any, caplog: Any) -> None:
    class Boom(Action):
        name = "boom"

        def run(self, data: Any) -> None:
            raise ValueError("something broke")

    reg.register(Boom)
    with caplog.at_level(logging.ERROR, logger="hero_fast.actions"):
        r = reg.process(conn, {"action": "boom"})
    assert isinstance(r, ActionResult)
    assert r.status == 500
    assert re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r.response["error"])
    assert "something broke" not in repr(r.response)
    ref = r.response["error"][-9:-1]  # the log line carries the same reference and the text
    assert any(
        "boom" in rec.getMessage() and ref in rec.getMessage() and "something broke" in rec.getMessage()
        and rec.exc_info
        for rec in caplog.records
    )
    assert conn.pending_actions == 0


def test_exception_without_message_names_its_type(registry: ActionRegistry, conn: Any) -> None:
    class Bare(Action):
        name = "bare"

        async def run(self, data: Any) -> None:
            raise RuntimeError()

    registry.register(Bare)
    r = registry.process(conn, {"action": "bare"})
    assert isinstance(r, ActionResult)
    assert r.status == 500 and re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r.response["error"])


@pytest.mark.parametrize("status", [400, 403, 404, 409, 422, 503])
def test_action_error_status(registry: ActionRegistry, conn: Any, status: int) -> None:
    class Refuses(Action):
        name = "refuses"

        async def run(self, data: Any) -> None:
            data.response["partial"] = True
            raise ActionError("not today", status)

    registry.register(Refuses)
    r = registry.process(conn, {"action": "refuses"})
    assert isinstance(r, ActionResult)
    assert r.status == status
    assert r.response["error"] == "not today"


def test_action_error_default_status_is_422() -> None:
    assert ActionError("x").status == 422
    assert str(ActionError("msg", 400)) == "msg"


def test_error_put_in_response_by_the_action_is_500(registry: ActionRegistry, conn: Any) -> None:
    class SelfError(Action):
        name = "selfError"

        def run(self, data: Any) -> None:
            data.response["error"] = "custom failure"

    registry.register(SelfError)
    r = registry.process(conn, {"action": "selfError"})
    assert isinstance(r, ActionResult)
    assert (r.status, r.response) == (500, {"error": "custom failure"})


def test_cancelled_error_raised_eagerly_is_an_error_response(registry: ActionRegistry, conn: Any) -> None:
    class Cancels(Action):
        name = "cancels"

        async def run(self, data: Any) -> None:
            raise asyncio.CancelledError()

    registry.register(Cancels)
    r = registry.process(conn, {"action": "cancels"})
    assert isinstance(r, ActionResult)
    assert r.status == 500
    assert conn.pending_actions == 0


def test_base_exception_propagates_but_releases_the_slot(registry: ActionRegistry, conn: Any) -> None:
    class Exits(Action):
        name = "exits"

        def run(self, data: Any) -> None:
            raise KeyboardInterrupt

    registry.register(Exits)
    with pytest.raises(KeyboardInterrupt):
        registry.process(conn, {"action": "exits"})
    assert conn.pending_actions == 0


# ---------------------------------------------------------------- counters / limit


def test_counters_on_success_and_error(reg: ActionRegistry, conn: Any) -> None:
    reg.process(conn, {"action": "syncEcho"})
    reg.process(conn, {"action": "nope"})
    assert conn.total_actions == 2
    assert conn.pending_actions == 0


async def test_simultaneous_actions_limit_then_recovery(reg: ActionRegistry, conn: Any) -> None:
    limit = reg.simultaneous_actions
    assert limit == 5
    pending = [reg.process(conn, {"action": "sleeps", "t": 0.05}) for _ in range(limit)]
    assert all(isinstance(p, asyncio.Task) for p in pending)
    assert conn.pending_actions == limit
    over = reg.process(conn, {"action": "syncEcho"})
    assert isinstance(over, ActionResult)
    assert (over.status, over.response) == (429, {"error": "you have too many pending requests"})
    assert over.action == "syncEcho"
    assert conn.total_actions == limit  # the refused one was not counted or run
    results = await asyncio.gather(*pending)
    assert all(r.status == 200 for r in results)
    assert conn.pending_actions == 0
    again = reg.process(conn, {"action": "syncEcho", "x": 1})
    assert isinstance(again, ActionResult) and again.status == 200


async def test_limit_is_per_connection(reg: ActionRegistry, api: Any, conn: Any) -> None:
    pending = [reg.process(conn, {"action": "sleeps", "t": 0.02}) for _ in range(5)]
    other = make_test_connection(api, "other")
    r = reg.process(other, {"action": "syncEcho"})
    assert isinstance(r, ActionResult) and r.status == 200
    await asyncio.gather(*pending)


async def test_limit_from_config() -> None:
    api = make_test_api(config_overrides={"general": {"simultaneousActions": 1}})
    api.actions.register(Sleeps)
    conn = make_test_connection(api)
    first = api.actions.process(conn, {"action": "sleeps"})
    second = api.actions.process(conn, {"action": "sleeps"})
    assert isinstance(second, ActionResult) and second.status == 429
    await settle(first)


async def test_pending_released_when_task_is_cancelled(reg: ActionRegistry, conn: Any) -> None:
    task = reg.process(conn, {"action": "sleeps", "t": 10})
    assert isinstance(task, asyncio.Task)
    await asyncio.sleep(0)
    assert conn.pending_actions == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert conn.pending_actions == 0


async def test_pending_released_when_cancelled_before_running(registry: ActionRegistry, conn: Any) -> None:
    seen: list[str] = []

    class Waits(Action):
        name = "waits"

        async def run(self, data: Any) -> None:
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                seen.append("cancelled")
                raise

    registry.register(Waits)
    task = registry.process(conn, {"action": "waits"})
    assert isinstance(task, asyncio.Task)
    task.cancel()  # before the task's first step
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert conn.pending_actions == 0
    assert seen == ["cancelled"]


async def test_pending_released_on_errors(registry: ActionRegistry, conn: Any) -> None:
    class Fails(Action):
        name = "fails"
        inputs = {"when": Input(required=True)}

        async def run(self, data: Any) -> None:
            if data.params["when"] == "late":
                await asyncio.sleep(0)
            raise RuntimeError("x")

    registry.register(Fails)
    for params in ({"action": "fails"}, {"action": "fails", "when": "now"}, {"action": "fails", "when": "late"}):
        await settle(registry.process(conn, params))
        assert conn.pending_actions == 0


async def test_many_concurrent_suspending_actions(reg: ActionRegistry, api: Any) -> None:
    conns = [make_test_connection(api, f"c{i}") for i in range(50)]
    results = await asyncio.gather(
        *[settle(reg.process(c, {"action": "sleeps", "t": 0.001 * (i % 5)})) for i, c in enumerate(conns)]
    )
    assert [r.status for r in results] == [200] * 50
    assert all(c.pending_actions == 0 and c.total_actions == 1 for c in conns)


async def test_drain(reg: ActionRegistry, conn: Any) -> None:
    tasks = [reg.process(conn, {"action": "sleeps", "t": 0.01}) for _ in range(3)]
    assert reg.in_flight == 3
    assert await reg.drain(timeout=2) is True
    assert all(t.done() for t in tasks)  # type: ignore[attr-defined]
    slow = reg.process(conn, {"action": "sleeps", "t": 5})
    assert await reg.drain(timeout=0.01) is False
    slow.cancel()  # type: ignore[attr-defined]
    with pytest.raises(asyncio.CancelledError):
        await slow


def test_suspension_without_a_loop_returns_a_coroutine(registry: ActionRegistry, conn: Any) -> None:
    class Yields(Action):
        name = "yields"

        async def run(self, data: Any) -> Any:
            await asyncio.sleep(0)  # bare yield: no loop needed to suspend
            return {"done": True}

    registry.register(Yields)
    r = registry.process(conn, {"action": "yields"})
    assert not isinstance(r, ActionResult)
    result = asyncio.run(r)  # type: ignore[arg-type]
    assert result.response == {"done": True}
    assert conn.pending_actions == 0


def test_data_object(registry: ActionRegistry, conn: Any) -> None:
    seen: dict[str, Any] = {}

    class Inspect(Action):
        name = "inspect"
        inputs = {"a": Input()}

        def run(self, data: Any) -> None:
            seen.update(
                action=data.action,
                template=data.action_template,
                connection=data.connection,
                params=data.params,
                api=data.api,
            )
            data.session["k"] = 1

    registry.register(Inspect)
    registry.process(conn, {"action": "inspect", "a": 1})
    assert seen["action"] == "inspect"
    assert isinstance(seen["template"], Inspect)
    assert seen["connection"] is conn
    assert seen["params"] == {"action": "inspect", "apiVersion": 1, "a": 1}
    assert seen["api"] is conn.api


async def test_an_action_may_run_other_actions_in_process(registry: ActionRegistry, api: Any, conn: Any) -> None:
    from hero_fast.testing import run_action

    class Leaf(Action):
        name = "leaf"
        inputs = {"wait": Input(default=False)}

        async def run(self, data: Any) -> Any:
            if data.params["wait"]:
                await asyncio.sleep(0.001)
            return {"leaf": True}

    class Composite(Action):
        name = "composite"

        async def run(self, data: Any) -> Any:
            fast = await run_action(api, "leaf")
            slow = await run_action(api, "leaf", {"wait": True})
            return {"fast": fast, "slow": slow}

    registry.register(Leaf)
    registry.register(Composite)
    r = await settle(registry.process(conn, {"action": "composite"}))
    assert r.response == {"fast": {"leaf": True}, "slow": {"leaf": True}}
    assert conn.pending_actions == 0
    again = registry.process(conn, {"action": "leaf"})
    assert isinstance(again, ActionResult) and again.response == {"leaf": True}


async def test_task_creation_failure_is_an_error_response(reg: ActionRegistry, conn: Any) -> None:
    loop = asyncio.get_running_loop()

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("loop is closing")

    loop.create_task = refuse  # type: ignore[method-assign]
    try:
        r = reg.process(conn, {"action": "sleeps", "t": 0.01})
    finally:
        del loop.create_task
    assert isinstance(r, ActionResult)
    assert r.status == 500 and re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r.response["error"])
    assert conn.pending_actions == 0
    import gc

    gc.collect()
    assert conn.pending_actions == 0  # not released a second time


async def test_config_changes_apply_at_once(reg: ActionRegistry, api: Any, conn: Any) -> None:
    api.config["general"]["simultaneousActions"] = 1
    first = reg.process(conn, {"action": "sleeps"})
    second = reg.process(conn, {"action": "syncEcho"})
    assert isinstance(second, ActionResult) and second.status == 429
    await settle(first)


def test_registry_made_before_the_api_has_config(conn: Any) -> None:
    class LateApi:
        pass

    late = LateApi()
    registry = ActionRegistry(late)
    registry.load_builtins()
    assert registry.simultaneous_actions == 5
    late.config = {"general": {"simultaneousActions": 0}}  # type: ignore[attr-defined]
    r = registry.process(conn, {"action": "status"})
    assert isinstance(r, ActionResult) and r.status == 429
