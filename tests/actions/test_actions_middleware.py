"""Action middleware: order by priority, global vs per-action, rejection, sync/async."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import pytest
from _actions_support import TaskCounter, settle

from hero_fast.actions import Action, ActionError, ActionMiddleware, ActionRegistry, ActionResult, Input


def recorder(trace: list[str], label: str, *, is_async: bool = False, wait: bool = False) -> Any:
    if is_async:

        async def hook(data: Any) -> None:
            if wait:
                await asyncio.sleep(0.001)
            trace.append(label)

        return hook

    def sync_hook(data: Any) -> None:
        trace.append(label)

    return sync_hook


def mw(trace: list[str], name: str, priority: int = 100, global_: bool = False, **kw: Any) -> ActionMiddleware:
    return ActionMiddleware(
        name=name,
        priority=priority,
        global_=global_,
        pre_processor=recorder(trace, f"{name}.pre", **kw),
        post_processor=recorder(trace, f"{name}.post", **kw),
    )


def action(trace: list[str], middleware: list[str] = [], name: str = "act", is_async: bool = False) -> type[Action]:  # noqa: B006
    attrs: dict[str, Any] = {"name": name, "middleware": middleware}
    if is_async:

        async def run(self: Any, data: Any) -> Any:
            trace.append("run")
            return {"ran": True}

    else:

        def run(self: Any, data: Any) -> Any:
            trace.append("run")
            return {"ran": True}

    attrs["run"] = run
    return type(name, (Action,), attrs)


def test_global_middleware_order_by_priority(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []
    registry.add_middleware(mw(trace, "late", 200, global_=True))
    registry.add_middleware(mw(trace, "early", 10, global_=True))
    registry.add_middleware(mw(trace, "mid", 100, global_=True))
    registry.register(action(trace))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult) and r.status == 200
    assert trace == ["early.pre", "mid.pre", "late.pre", "run", "early.post", "mid.post", "late.post"]


def test_global_applies_to_every_action_named_only_where_listed(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []
    registry.register(action(trace, ["auth"], name="protected"))
    registry.register(action(trace, [], name="open"))
    registry.add_middleware(mw(trace, "auth", 50))
    registry.add_middleware(mw(trace, "log", 100, global_=True))  # added after the actions: still applies
    registry.process(conn, {"action": "protected"})
    assert trace == ["auth.pre", "log.pre", "run", "auth.post", "log.post"]
    trace.clear()
    registry.process(conn, {"action": "open"})
    assert trace == ["log.pre", "run", "log.post"]


def test_global_listed_by_name_runs_once(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []
    registry.add_middleware(mw(trace, "g", global_=True))
    registry.register(action(trace, ["g"]))
    registry.process(conn, {"action": "act"})
    assert trace == ["g.pre", "run", "g.post"]


def test_equal_priorities_keep_global_then_listed_order(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []
    registry.add_middleware(mw(trace, "b"))
    registry.add_middleware(mw(trace, "a"))
    registry.add_middleware(mw(trace, "g", global_=True))
    registry.register(action(trace, ["b", "a"]))
    registry.process(conn, {"action": "act"})
    assert trace == ["g.pre", "b.pre", "a.pre", "run", "g.post", "b.post", "a.post"]


def test_global_keyword_spelling() -> None:
    m = ActionMiddleware(name="x", **{"global": True})
    assert m.global_ is True
    assert ActionMiddleware(name="y").global_ is False
    with pytest.raises(TypeError):
        ActionMiddleware(name="z", bogus=1)
    with pytest.raises(TypeError):
        ActionMiddleware()


def test_subclass_style_middleware(registry: ActionRegistry, conn: Any) -> None:
    class Stamp(ActionMiddleware):
        name = "stamp"
        priority = 5
        global_ = True

        def post_processor(self, data: Any) -> None:
            data.response["stamped"] = data.action

    registry.add_middleware(Stamp())
    registry.register(action([]))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult)
    assert r.response == {"ran": True, "stamped": "act"}


@pytest.mark.parametrize("is_async", [False, True])
def test_pre_processor_rejects_with_action_error(registry: ActionRegistry, conn: Any, is_async: bool) -> None:
    trace: list[str] = []

    def deny(data: Any) -> None:
        raise ActionError("not authorized", 401)

    async def adeny(data: Any) -> None:
        raise ActionError("not authorized", 401)

    registry.add_middleware(ActionMiddleware("auth", pre_processor=adeny if is_async else deny))
    registry.register(action(trace, ["auth"]))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult)
    assert (r.status, r.response) == (401, {"error": "not authorized"})
    assert trace == []  # the action did not run
    assert conn.pending_actions == 0


def test_middleware_exception_is_a_500_response(registry: ActionRegistry, conn: Any) -> None:
    def broken(data: Any) -> None:
        raise KeyError("session")

    registry.add_middleware(ActionMiddleware("broken", global_=True, post_processor=broken))
    registry.register(action([]))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult)
    assert r.status == 500
    # the KeyError's text stays in the log
    assert re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r.response["error"])


def test_post_processor_not_run_after_failed_action(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []

    class Fails(Action):
        name = "fails"
        middleware = ["m"]

        def run(self, data: Any) -> None:
            raise ActionError("nope", 409)

    registry.add_middleware(mw(trace, "m"))
    registry.register(Fails)
    r = registry.process(conn, {"action": "fails"})
    assert isinstance(r, ActionResult) and r.status == 409
    assert trace == ["m.pre"]


def test_pre_processor_sees_raw_params_and_can_add_some(registry: ActionRegistry, conn: Any) -> None:
    seen: list[Any] = []

    def pre(data: Any) -> None:
        seen.append(dict(data.params))
        data.params["user"] = "alice" if data.params.get("token") == "t0k" else None
        data.session["authed"] = True

    class Whoami(Action):
        name = "whoami"
        middleware = ["auth"]
        inputs = {"user": Input(required=True)}

        def run(self, data: Any) -> Any:
            return {"user": data.params["user"], "params": sorted(data.params), "authed": data.session["authed"]}

    registry.add_middleware(ActionMiddleware("auth", pre_processor=pre))
    registry.register(Whoami)
    params = {"action": "whoami", "token": "t0k"}
    r = registry.process(conn, params)
    assert isinstance(r, ActionResult)
    assert seen == [{"action": "whoami", "token": "t0k"}]
    assert r.response == {"user": "alice", "params": ["action", "apiVersion", "user"], "authed": True}
    assert params == {"action": "whoami", "token": "t0k"}  # the caller's dict is untouched
    r = registry.process(conn, {"action": "whoami", "token": "bad"})
    assert isinstance(r, ActionResult) and r.status == 422


def test_pre_processor_can_skip_the_action(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []

    def cached(data: Any) -> None:
        data.response["cached"] = True
        data.to_process = False

    registry.add_middleware(ActionMiddleware("cache", pre_processor=cached, post_processor=recorder(trace, "post")))
    registry.register(action(trace, ["cache"]))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult)
    assert r.response == {"cached": True}
    assert trace == []


def test_post_processor_can_change_the_response(registry: ActionRegistry, conn: Any) -> None:
    def wrap(data: Any) -> None:
        data.response["count"] = len(data.response)

    registry.add_middleware(ActionMiddleware("count", global_=True, post_processor=wrap))
    registry.register(action([]))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult)
    assert r.response == {"ran": True, "count": 1}


async def test_sync_and_non_suspending_async_middleware_need_no_task(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []
    registry.add_middleware(mw(trace, "s", 1, global_=True))
    registry.add_middleware(mw(trace, "a", 2, global_=True, is_async=True))
    registry.register(action(trace, is_async=True))
    with TaskCounter(asyncio.get_running_loop()) as counter:
        r = registry.process(conn, {"action": "act"})
    assert counter.count == 0
    assert isinstance(r, ActionResult)
    assert trace == ["s.pre", "a.pre", "run", "s.post", "a.post"]


@pytest.mark.parametrize("where", ["pre", "post"])
async def test_suspending_middleware_continues_in_a_task(registry: ActionRegistry, conn: Any, where: str) -> None:
    trace: list[str] = []
    registry.add_middleware(mw(trace, "first", 1, global_=True))
    waiting = ActionMiddleware(
        "waits",
        priority=2,
        global_=True,
        pre_processor=recorder(trace, "waits.pre", is_async=True, wait=where == "pre"),
        post_processor=recorder(trace, "waits.post", is_async=True, wait=where == "post"),
    )
    registry.add_middleware(waiting)
    registry.add_middleware(mw(trace, "last", 3, global_=True))
    registry.register(action(trace))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, asyncio.Task)
    result = await r
    assert result.response == {"ran": True}
    assert trace == ["first.pre", "waits.pre", "last.pre", "run", "first.post", "waits.post", "last.post"]
    assert conn.pending_actions == 0


async def test_error_in_middleware_after_suspension(registry: ActionRegistry, conn: Any) -> None:
    async def slow_deny(data: Any) -> None:
        await asyncio.sleep(0.001)
        raise ActionError("rate limited", 429)

    registry.add_middleware(ActionMiddleware("rl", global_=True, pre_processor=slow_deny))
    registry.register(action([]))
    r = await settle(registry.process(conn, {"action": "act"}))
    assert (r.status, r.response) == (429, {"error": "rate limited"})


def test_unknown_middleware_name_is_an_error_response(registry: ActionRegistry, conn: Any) -> None:
    registry.register(action([], ["ghost"]))
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult)
    assert r.status == 500
    assert re.fullmatch(r"internal error \(ref [0-9a-f]{8}\)", r.response["error"])  # "ghost" is named in the log
    registry.add_middleware(ActionMiddleware("ghost"))  # registered later: fixed
    r = registry.process(conn, {"action": "act"})
    assert isinstance(r, ActionResult) and r.status == 200


def test_duplicate_and_removal(registry: ActionRegistry, conn: Any) -> None:
    trace: list[str] = []
    registry.add_middleware(mw(trace, "x", global_=True))
    with pytest.raises(ValueError, match="already exists"):
        registry.add_middleware(mw(trace, "x"))
    registry.register(action(trace))
    assert registry.remove_middleware("x") is True
    assert registry.remove_middleware("x") is False
    registry.process(conn, {"action": "act"})
    assert trace == ["run"]
    assert "x" not in registry.middleware
