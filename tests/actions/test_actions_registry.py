"""Registration, versions, load_folder, documentation, built-in actions."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import orjson
import pytest

import hero_fast
from hero_fast.actions import Action, ActionLoadError, ActionRegistry, ActionResult, Input, version_key


def versioned(v: Any, name: str = "thing") -> type[Action]:
    def run(self: Any, data: Any) -> Any:
        return {"version": self.version}

    return type(f"Thing{v}", (Action,), {"name": name, "version": v, "run": run})


# ---------------------------------------------------------------- registration


def test_register_class_instance_and_decorator(registry: ActionRegistry, conn: Any) -> None:
    @registry.register
    class Decorated(Action):
        name = "decorated"

        def run(self, data: Any) -> Any:
            return {"ok": 1}

    assert isinstance(Decorated, type)  # the decorator returns the class
    registry.register(versioned(1, "byInstance")())
    assert isinstance(registry.get("decorated"), Decorated)
    assert registry.get("byInstance") is not None
    assert "decorated" in registry and "nope" not in registry


def test_invalid_actions_are_refused(registry: ActionRegistry) -> None:
    class NoName(Action):
        def run(self, data: Any) -> None: ...

    class NoRun(Action):
        name = "noRun"

    class BadVersion(Action):
        name = "bad"
        version = True  # type: ignore[assignment]

        def run(self, data: Any) -> None: ...

    class BadMiddleware(Action):
        name = "badMw"
        middleware = "auth"  # type: ignore[assignment]

        def run(self, data: Any) -> None: ...

    for cls in (NoName, NoRun, BadVersion, BadMiddleware):
        with pytest.raises(TypeError):
            registry.register(cls)
    with pytest.raises(TypeError):
        registry.register(object)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        registry.register("status")  # type: ignore[arg-type]


def test_duplicate_is_refused_but_builtins_can_be_overridden(registry: ActionRegistry, conn: Any) -> None:
    registry.register(versioned(1))
    with pytest.raises(ValueError, match="already registered"):
        registry.register(versioned(1))

    class MyStatus(Action):
        name = "status"

        def run(self, data: Any) -> Any:
            return {"mine": True}

    registry.register(MyStatus)
    r = registry.process(conn, {"action": "status"})
    assert isinstance(r, ActionResult) and r.response == {"mine": True}
    registry.load_builtins()  # does not put the built-in back
    assert isinstance(registry.get("status"), MyStatus)


def test_unregister(registry: ActionRegistry) -> None:
    registry.register(versioned(1))
    registry.register(versioned(2))
    assert registry.unregister("thing", 2) is True
    assert registry.versions("thing") == [1]
    assert registry.unregister("thing") is True
    assert registry.get("thing") is None
    assert registry.unregister("thing") is False


# ---------------------------------------------------------------- versions


def test_latest_version_by_default(registry: ActionRegistry, conn: Any) -> None:
    for v in (2, 1, 10):
        registry.register(versioned(v))
    assert registry.versions("thing") == [1, 2, 10]
    assert registry.get("thing").version == 10  # type: ignore[union-attr]
    r = registry.process(conn, {"action": "thing"})
    assert isinstance(r, ActionResult) and r.response == {"version": 10}
    assert r.params == {"action": "thing", "apiVersion": 10}


@pytest.mark.parametrize("asked", [1, "1", 1.0, "1.0", " 1 "])
def test_version_spellings(registry: ActionRegistry, conn: Any, asked: Any) -> None:
    registry.register(versioned(1))
    registry.register(versioned(2))
    r = registry.process(conn, {"action": "thing", "apiVersion": asked})
    assert isinstance(r, ActionResult)
    assert r.response == {"version": 1}
    assert registry.get("thing", asked).version == 1  # type: ignore[union-attr]


def test_float_and_string_versions(registry: ActionRegistry, conn: Any) -> None:
    registry.register(versioned(1.5))
    registry.register(versioned("beta"))
    registry.register(versioned(1))
    assert registry.versions("thing") == [1, 1.5, "beta"]
    for asked, expect in ((1.5, 1.5), ("1.5", 1.5), ("beta", "beta"), (None, "beta")):
        params = {"action": "thing"} if asked is None else {"action": "thing", "apiVersion": asked}
        r = registry.process(conn, params)
        assert isinstance(r, ActionResult) and r.response == {"version": expect}


@pytest.mark.parametrize("asked", [3, "3", "x", True, [1], {"a": 1}, 1.25])
def test_unknown_version_is_404(registry: ActionRegistry, conn: Any, asked: Any) -> None:
    registry.register(versioned(1))
    r = registry.process(conn, {"action": "thing", "apiVersion": asked})
    assert isinstance(r, ActionResult)
    assert (r.status, r.response) == (404, {"error": "unknown action or invalid apiVersion"})


def test_version_key() -> None:
    assert version_key(1) == version_key("1") == version_key(1.0) == version_key("1.0") == "1"
    assert version_key(2.5) == version_key("2.5") == "2.5"
    assert version_key("v2") == "v2"
    assert version_key(None) is None and version_key(True) is None and version_key("") is None
    assert version_key(float("nan")) is None


# ---------------------------------------------------------------- load_folder


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def test_load_folder(registry: ActionRegistry, conn: Any, tmp_path: Path) -> None:
    write(
        tmp_path / "actions" / "math.py",
        """
        from hero_fast.actions import Action, Input

        class Base(Action):          # no name: an intermediate base, skipped
            description = "math"

        class Add(Base):
            name = "add"
            inputs = {"a": Input(required=True, formatter=int), "b": Input(default=0, formatter=int)}
            def run(self, data):
                return {"sum": data.params["a"] + data.params["b"]}

        class AddV2(Add):
            version = 2
            async def run(self, data):
                return {"sum": data.params["a"] + data.params["b"], "v": 2}
        """,
    )
    write(
        tmp_path / "actions" / "nested" / "deeper" / "hello.py",
        """
        from hero_fast.actions import Action
        from hero_fast.actions import Action as Imported   # imported names are not re-registered

        class Hello(Action):
            name = "hello"
            def run(self, data):
                return {"hello": "world"}
        """,
    )
    write(tmp_path / "actions" / "helpers.py", "X = 1\n")
    write(tmp_path / "actions" / "__pycache__" / "junk.py", "raise SystemExit('never imported')\n")
    assert registry.load_folder(tmp_path / "actions") == 3
    assert registry.versions("add") == [1, 2]
    r = registry.process(conn, {"action": "add", "a": "2", "b": "3", "apiVersion": 1})
    assert isinstance(r, ActionResult) and r.response == {"sum": 5}
    r = registry.process(conn, {"action": "add", "a": "2"})
    assert isinstance(r, ActionResult) and r.response == {"sum": 2, "v": 2}
    r = registry.process(conn, {"action": "hello"})
    assert isinstance(r, ActionResult) and r.response == {"hello": "world"}


def test_load_folder_error_names_the_file(registry: ActionRegistry, tmp_path: Path) -> None:
    write(
        tmp_path / "a_good.py",
        """
        from hero_fast.actions import Action
        class Good(Action):
            name = "good"
            def run(self, data): pass
        """,
    )
    bad = write(tmp_path / "b_bad.py", "def broken(:\n")
    with pytest.raises(ActionLoadError) as info:
        registry.load_folder(tmp_path)
    assert str(bad) in str(info.value)
    assert registry.get("good") is None  # nothing half-loaded

    bad.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(ActionLoadError, match="boom at import") as info:
        registry.load_folder(tmp_path)
    assert str(bad) in str(info.value)


def test_load_folder_invalid_action_names_the_file(registry: ActionRegistry, tmp_path: Path) -> None:
    write(
        tmp_path / "one.py",
        """
        from hero_fast.actions import Action
        class One(Action):
            name = "one"
            def run(self, data): pass
        """,
    )
    bad = write(
        tmp_path / "two.py",
        """
        from hero_fast.actions import Action
        class Two(Action):
            name = "two"
            inputs = {"x": {"requierd": True}}
            def run(self, data): pass
        """,
    )
    with pytest.raises(ActionLoadError) as info:
        registry.load_folder(tmp_path)
    assert str(bad) in str(info.value) and "requierd" in str(info.value)
    assert registry.get("one") is None  # rolled back


def test_load_folder_duplicate_across_files(registry: ActionRegistry, tmp_path: Path) -> None:
    for fname in ("x1.py", "x2.py"):
        write(
            tmp_path / fname,
            """
            from hero_fast.actions import Action
            class Same(Action):
                name = "same"
                def run(self, data): pass
            """,
        )
    with pytest.raises(ActionLoadError, match="already registered") as info:
        registry.load_folder(tmp_path)
    assert "x2.py" in str(info.value)


def test_load_folder_not_a_directory(registry: ActionRegistry, tmp_path: Path) -> None:
    with pytest.raises(ActionLoadError, match="not a directory"):
        registry.load_folder(tmp_path / "missing")


# ---------------------------------------------------------------- documentation / built-ins


def test_documentation(registry: ActionRegistry) -> None:
    class Doc(Action):
        name = "doc"
        description = "documented"
        version = 2
        inputs = {
            "a": Input(required=True, description="the a"),
            "b": {"default": 5},
            "c": Input(default=lambda: 1),
        }
        output_example = {"out": 1}

        def run(self, data: Any) -> None: ...

    registry.register(Doc)
    registry.register(versioned(1, "doc"))
    doc = registry.documentation()
    assert set(doc) >= {"doc", "status", "documentation"}
    assert doc["doc"]["2"] == {
        "name": "doc",
        "version": 2,
        "description": "documented",
        "inputs": {
            "a": {"required": True, "default": None, "description": "the a"},
            "b": {"required": False, "default": 5},
            "c": {"required": False, "default": None},
        },
        "outputExample": {"out": 1},
    }
    assert list(doc["doc"]) == ["1", "2"]
    orjson.dumps(doc)  # JSON-encodable
    doc["doc"]["2"]["inputs"]["a"]["required"] = False  # a copy: the cache is untouched
    assert registry.documentation()["doc"]["2"]["inputs"]["a"]["required"] is True


def test_documentation_action(registry: ActionRegistry, conn: Any) -> None:
    r = registry.process(conn, {"action": "documentation"})
    assert isinstance(r, ActionResult) and r.status == 200
    assert r.response == {"documentation": registry.documentation()}
    assert "status" in r.response["documentation"]


def test_status_action(registry: ActionRegistry, conn: Any, api: Any) -> None:
    r = registry.process(conn, {"action": "status"})
    assert isinstance(r, ActionResult) and r.status == 200
    resp = r.response
    assert resp["nodeStatus"] == "Node Healthy"
    assert resp["problems"] == []
    assert resp["heroFastVersion"] == hero_fast.__version__
    assert resp["actionheroVersion"] == "29.3.5"  # the actionhero protocol hero-fast speaks, not its own version
    assert isinstance(resp["uptime"], int) and resp["uptime"] >= 0
    assert isinstance(resp["id"], str) and resp["id"]
    assert resp["connections"] == 1  # the testing connection itself


def test_status_reports_connections_when_the_api_has_them(conn: Any) -> None:
    class FakeApi:
        config = {"general": {"simultaneousActions": 5, "id": "node-7"}}
        connections = {"a": 1, "b": 2}
        started_at = 1.0  # epoch seconds

    registry = ActionRegistry(FakeApi())
    registry.load_builtins()
    r = registry.process(conn, {"action": "status"})
    assert isinstance(r, ActionResult)
    assert r.response["connections"] == 2
    assert r.response["id"] == "node-7"
    assert r.response["uptime"] > 1_000_000


def test_registry_without_config_defaults_to_five(conn: Any) -> None:
    registry = ActionRegistry(object())
    assert registry.simultaneous_actions == 5
    registry.load_builtins()
    assert len(registry) == 2
    assert [a.name for a in registry] == ["documentation", "status"]
    assert registry.names() == ["documentation", "status"]


def test_load_folder_relative_imports_and_packages(registry: ActionRegistry, conn: Any, tmp_path: Path) -> None:
    write(tmp_path / "_shared.py", "GREETING = 'hi'\nCOUNT = [0]\nCOUNT[0] += 1\n")
    write(
        tmp_path / "greet.py",
        """
        from hero_fast.actions import Action
        from ._shared import GREETING, COUNT

        class Greet(Action):
            name = "greet"
            def run(self, data):
                return {"greeting": GREETING, "imports": COUNT[0]}
        """,
    )
    write(tmp_path / "admin" / "__init__.py", "PREFIX = 'admin:'\n")
    write(
        tmp_path / "admin" / "tools.py",
        """
        from hero_fast.actions import Action
        from . import PREFIX
        from .._shared import GREETING

        class Tool(Action):
            name = "adminTool"
            def run(self, data):
                return {"x": PREFIX + GREETING}
        """,
    )
    assert registry.load_folder(tmp_path) == 2
    r = registry.process(conn, {"action": "greet"})
    assert isinstance(r, ActionResult)
    assert r.response == {"greeting": "hi", "imports": 1}  # _shared.py ran once
    r = registry.process(conn, {"action": "adminTool"})
    assert isinstance(r, ActionResult) and r.response == {"x": "admin:hi"}


def test_load_folder_imports_afresh(api: Any, tmp_path: Path) -> None:
    path = write(
        tmp_path / "v.py",
        """
        from hero_fast.actions import Action
        class V(Action):
            name = "v"
            def run(self, data):
                return {"v": 1}
        """,
    )
    first = ActionRegistry(api)
    assert first.load_folder(tmp_path) == 1
    path.write_text(path.read_text().replace('{"v": 1}', '{"v": 22}'))
    import os

    os.utime(path, (1, 1))  # make sure no stale bytecode is used
    second = ActionRegistry(api)
    assert second.load_folder(tmp_path) == 1
    assert type(first.get("v")).run(None, None) == {"v": 1}  # type: ignore[arg-type]
    assert type(second.get("v")).run(None, None) == {"v": 22}  # type: ignore[arg-type]
