"""Input rules: undeclared params dropped, defaults, formatters, validators, required."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from _actions_support import settle

from hero_fast.actions import Action, ActionError, ActionResult, Input


def make(registry: Any, inputs: dict[str, Any], name: str = "a") -> type[Action]:
    def run(self: Any, data: Any) -> Any:
        return {"params": dict(data.params)}

    cls = type(name.title(), (Action,), {"name": name, "inputs": inputs, "run": run})
    registry.register(cls)
    return cls


def run(registry: Any, conn: Any, params: dict[str, Any]) -> ActionResult:
    result = registry.process(conn, params)
    assert isinstance(result, ActionResult)
    return result


def test_undeclared_params_are_dropped(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input()})
    r = run(registry, conn, {"action": "a", "x": 1, "evil": 2, "__proto__": 3})
    assert r.status == 200
    assert r.response["params"] == {"action": "a", "apiVersion": 1, "x": 1}
    assert r.params == {"action": "a", "apiVersion": 1, "x": 1}


def test_action_and_api_version_are_kept(registry: Any, conn: Any) -> None:
    make(registry, {})
    r = run(registry, conn, {"action": "a", "apiVersion": "1", "y": 1})
    assert r.response["params"] == {"action": "a", "apiVersion": "1"}


def test_caller_params_are_not_modified(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(formatter=int)})
    params = {"action": "a", "x": "5", "junk": True}
    run(registry, conn, params)
    assert params == {"action": "a", "x": "5", "junk": True}


def test_required(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(required=True), "y": {"required": True}})
    r = run(registry, conn, {"action": "a", "y": 1})
    assert r.status == 422
    assert r.response == {"error": "x is a required parameter for this action"}
    r = run(registry, conn, {"action": "a", "x": 0, "y": False})  # falsy but present
    assert r.status == 200
    assert r.response["params"]["x"] == 0
    assert r.response["params"]["y"] is False


@pytest.mark.parametrize("value", [None, ""])
def test_none_and_empty_string_count_as_missing(registry: Any, conn: Any, value: Any) -> None:
    make(registry, {"x": Input(required=True)})
    r = run(registry, conn, {"action": "a", "x": value})
    assert r.status == 422
    assert "x is a required parameter" in r.response["error"]


def test_first_missing_param_is_reported(registry: Any, conn: Any) -> None:
    make(registry, {"a1": Input(required=True), "b1": Input(required=True)})
    r = run(registry, conn, {"action": "a"})
    assert r.response["error"] == "a1 is a required parameter for this action"


def test_default_value(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(default=7), "y": {"default": "d"}, "z": Input(default=[])})
    r = run(registry, conn, {"action": "a"})
    assert r.response["params"] == {"action": "a", "apiVersion": 1, "x": 7, "y": "d", "z": []}
    r = run(registry, conn, {"action": "a", "x": 1, "y": None, "z": ""})
    assert r.response["params"] == {"action": "a", "apiVersion": 1, "x": 1, "y": "d", "z": []}


def test_mutable_default_is_not_shared(registry: Any, conn: Any) -> None:
    class A(Action):
        name = "a"
        inputs = {"items": Input(default=[])}

        def run(self, data: Any) -> Any:
            data.params["items"].append(1)
            return {"items": data.params["items"]}

    registry.register(A)
    assert run(registry, conn, {"action": "a"}).response["items"] == [1]
    assert run(registry, conn, {"action": "a"}).response["items"] == [1]


def test_default_satisfies_required(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(required=True, default=3)})
    r = run(registry, conn, {"action": "a"})
    assert r.status == 200
    assert r.response["params"]["x"] == 3


def test_callable_defaults(registry: Any, conn: Any) -> None:
    counter = iter(range(100))
    make(
        registry,
        {
            "n": Input(default=lambda: next(counter)),
            "who": Input(default=lambda connection: connection.id),
            "fresh": Input(default=dict),
        },
    )
    r1 = run(registry, conn, {"action": "a"})
    r2 = run(registry, conn, {"action": "a"})
    assert r1.response["params"]["n"] == 0
    assert r2.response["params"]["n"] == 1
    assert r1.response["params"]["who"] == "conn-1"
    assert r1.response["params"]["fresh"] == {}
    assert r1.response["params"]["fresh"] is not r2.response["params"]["fresh"]


def test_default_goes_through_formatter_and_validator(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(default="5", formatter=int, validator=lambda v: v > 10 or "too small")})
    r = run(registry, conn, {"action": "a"})
    assert r.status == 422
    assert r.response["error"] == "too small"


def test_formatter(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(formatter=int), "s": Input(formatter=str.upper)})
    r = run(registry, conn, {"action": "a", "x": "42", "s": "abc"})
    assert r.response["params"]["x"] == 42
    assert r.response["params"]["s"] == "ABC"


def test_formatter_with_data(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(formatter=lambda v, data: f"{v}@{data.connection.id}")})
    r = run(registry, conn, {"action": "a", "x": "v"})
    assert r.response["params"]["x"] == "v@conn-1"


def test_formatter_raising_is_422(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(formatter=int)})
    r = run(registry, conn, {"action": "a", "x": "abc"})
    assert r.status == 422
    assert "invalid literal" in r.response["error"]
    assert "Traceback" not in r.response["error"]


def test_formatter_raising_action_error_keeps_message(registry: Any, conn: Any) -> None:
    def fmt(v: Any) -> Any:
        raise ActionError("x must be a number")

    make(registry, {"x": Input(formatter=fmt)})
    r = run(registry, conn, {"action": "a", "x": "abc"})
    assert (r.status, r.response) == (422, {"error": "x must be a number"})


def test_validator_true_and_none_pass(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(validator=lambda v: True), "y": Input(validator=lambda v: None)})
    r = run(registry, conn, {"action": "a", "x": 1, "y": 2})
    assert r.status == 200


def test_validator_false(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(validator=lambda v: v > 0)})
    r = run(registry, conn, {"action": "a", "x": -1})
    assert r.status == 422
    assert r.response == {"error": 'Input for parameter "x" failed validation!'}
    assert run(registry, conn, {"action": "a", "x": 1}).status == 200


def test_validator_message(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(validator=lambda v: None if v in ("a", "b") else "x is not a valid value")})
    r = run(registry, conn, {"action": "a", "x": "c"})
    assert (r.status, r.response) == (422, {"error": "x is not a valid value"})


def test_validator_raising(registry: Any, conn: Any) -> None:
    def check(v: Any) -> None:
        raise ValueError(f"{v} is not a valid value")

    make(registry, {"x": Input(validator=check)})
    r = run(registry, conn, {"action": "a", "x": "q"})
    assert (r.status, r.response) == (422, {"error": "q is not a valid value"})


def test_validator_gets_formatted_value_and_data(registry: Any, conn: Any) -> None:
    seen: list[Any] = []

    def check(v: Any, data: Any) -> bool:
        seen.append((v, data.action, data.connection.id))
        return True

    make(registry, {"x": Input(formatter=int, validator=check)})
    run(registry, conn, {"action": "a", "x": "9"})
    assert seen == [(9, "a", "conn-1")]


def test_missing_required_wins_over_invalid(registry: Any, conn: Any) -> None:
    make(registry, {"v": Input(validator=lambda v: False), "r": Input(required=True)})
    r = run(registry, conn, {"action": "a", "v": 1})
    assert r.response["error"] == "r is a required parameter for this action"


def test_optional_missing_without_default_is_absent(registry: Any, conn: Any) -> None:
    make(registry, {"x": Input(formatter=int, validator=lambda v: False)})
    r = run(registry, conn, {"action": "a"})
    assert r.status == 200
    assert "x" not in r.response["params"]


def test_action_not_run_on_input_error(registry: Any, conn: Any) -> None:
    ran: list[int] = []

    class A(Action):
        name = "a"
        inputs = {"x": Input(required=True)}

        def run(self, data: Any) -> None:
            ran.append(1)

    registry.register(A)
    assert run(registry, conn, {"action": "a"}).status == 422
    assert ran == []


async def test_async_validator_and_formatter(registry: Any, conn: Any) -> None:
    async def fmt(v: Any) -> int:
        return int(v)

    async def check(v: int) -> Any:
        await asyncio.sleep(0)
        return v < 100 or "x too big"

    make(registry, {"x": Input(formatter=fmt, validator=check)})
    r = await settle(registry.process(conn, {"action": "a", "x": "7"}))
    assert r.status == 200
    assert r.response["params"]["x"] == 7
    r = await settle(registry.process(conn, {"action": "a", "x": "700"}))
    assert (r.status, r.response) == (422, {"error": "x too big"})


async def test_async_default_without_suspension_stays_eager(registry: Any, conn: Any) -> None:
    async def dflt() -> int:
        return 5

    make(registry, {"x": Input(default=dflt)})
    r = registry.process(conn, {"action": "a"})
    assert isinstance(r, ActionResult)
    assert r.response["params"]["x"] == 5


async def test_sync_callable_returning_a_coroutine(registry: Any, conn: Any) -> None:
    async def lookup(v: Any) -> str:
        await asyncio.sleep(0)
        return f"found {v}"

    make(registry, {"x": Input(formatter=lambda v: lookup(v))})
    for _ in range(2):  # the first call switches the action to async input checking
        r = await settle(registry.process(conn, {"action": "a", "x": 1}))
        assert r.status == 200
        assert r.response["params"]["x"] == "found 1"
    assert conn.pending_actions == 0


def test_bad_input_declarations(registry: Any) -> None:
    with pytest.raises(TypeError, match="unknown input option"):
        make(registry, {"x": {"requird": True}})
    with pytest.raises(TypeError, match="reserved"):
        make(registry, {"action": Input()}, name="b")
    with pytest.raises(TypeError, match="callable"):
        make(registry, {"x": Input(validator="nope")}, name="c")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        make(registry, {"x": 5}, name="d")


def test_input_repr_and_eq() -> None:
    assert Input(required=True) == Input(required=True)
    assert Input(required=True) != Input(default=1)
    assert "required=True" in repr(Input(required=True))
    assert Input.coerce(None) == Input()
