"""Initializers from the project's initializers/ folder: order, sync and async hooks, failures."""

from __future__ import annotations

from pathlib import Path

import pytest
from _project import module_of, write

from hero_fast.app import Api
from hero_fast.project import ProjectError
from hero_fast.testing import TestApi

TRACE = """
from hero_fast import Initializer

TRACE = []

class Second(Initializer):
    priority = 20
    async def initialize(self, api):
        TRACE.append("init second")
    def start(self, api):
        TRACE.append("start second")
    async def stop(self, api):
        TRACE.append("stop second")

class First(Initializer):
    priority = 10
    def initialize(self, api):
        TRACE.append("init first")
        api.state.db = {"open": True}
    async def start(self, api):
        TRACE.append("start first")
    def stop(self, api):
        api.state.db["open"] = False
        TRACE.append("stop first")
"""


async def test_initializers_run_in_priority_order_and_stop_in_reverse(tmp_path: Path) -> None:
    write(tmp_path, {"initializers/trace.py": TRACE})
    async with TestApi(tmp_path) as t:
        trace = module_of(t.api.initializers["First"]).TRACE
        assert trace == ["init first", "init second", "start first", "start second"]
        assert t.state.db == {"open": True}
        assert [i.name for i in t.api.initializers] == ["First", "Second"]
    assert trace[4:] == ["stop second", "stop first"]
    assert t.state.db == {"open": False}


async def test_initialize_runs_before_actions_are_served_and_start_after_rooms_exist(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "initializers/seen.py": """
                from hero_fast import Initializer

                class Seen(Initializer):
                    def initialize(self, api):
                        api.state.rooms_at_initialize = sorted(api.chat_room.rooms)
                        api.state.actions_loaded = api.actions.get("hello") is not None
                    def start(self, api):
                        api.state.rooms_at_start = sorted(api.chat_room.rooms)
            """,
            "actions/hello.py": """
                from hero_fast.actions import Action

                class Hello(Action):
                    name = "hello"
                    def run(self, data):
                        return {"db": data.api.state.actions_loaded}
            """,
        },
    )
    async with TestApi(tmp_path) as t:
        assert t.state.rooms_at_initialize == []
        assert t.state.rooms_at_start == ["anotherRoom", "defaultRoom"]
        assert t.state.actions_loaded  # the code is loaded (and checked) before anything runs
        assert (await t.connect().action("hello"))["db"] is True


async def test_a_failing_start_stops_what_was_initialized_and_names_the_file(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "initializers/a_ok.py": """
                from hero_fast import Initializer
                STOPPED = []
                class Ok(Initializer):
                    priority = 1
                    def stop(self, api):
                        STOPPED.append("ok")
            """,
            "initializers/b_bad.py": """
                from hero_fast import Initializer

                class Bad(Initializer):
                    priority = 2
                    def start(self, api):
                        raise ConnectionError("database unreachable")
            """,
        },
    )
    api = Api(tmp_path, overrides={"logging.accessLog": False})
    with pytest.raises(ProjectError) as info:
        await api.start(listen=False)
    text = str(info.value)
    assert "\n" not in text
    assert text.startswith("initializers/b_bad.py:6: ConnectionError: database unreachable")
    assert "Bad.start" in text
    ok = api.initializers["Ok"]
    assert module_of(ok).STOPPED == ["ok"]
    assert api.server is None


async def test_a_failing_initialize_stops_the_ones_before_it(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "initializers/all.py": """
                from hero_fast import Initializer
                LOG = []
                class A(Initializer):
                    priority = 1
                    def initialize(self, api):
                        LOG.append("init A")
                    def stop(self, api):
                        LOG.append("stop A")
                class B(Initializer):
                    priority = 2
                    def initialize(self, api):
                        raise KeyError("DATABASE_URL")
                    def stop(self, api):
                        LOG.append("stop B")
            """
        },
    )
    api = Api(tmp_path, overrides={"logging.accessLog": False})
    with pytest.raises(ProjectError, match=r"^initializers/all.py:\d+: KeyError: 'DATABASE_URL'"):
        await api.start(listen=False)
    log = module_of(api.initializers["A"]).LOG
    assert log == ["init A", "stop A"]  # B never initialized, so it is not stopped


async def test_a_failing_stop_is_logged_and_the_others_still_stop(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write(
        tmp_path,
        {
            "initializers/all.py": """
                from hero_fast import Initializer
                LOG = []
                class A(Initializer):
                    priority = 1
                    def stop(self, api):
                        LOG.append("stop A")
                class B(Initializer):
                    priority = 2
                    async def stop(self, api):
                        raise RuntimeError("flush failed")
            """
        },
    )
    t = await TestApi(tmp_path).start()
    await t.stop()
    log = module_of(t.api.initializers["A"]).LOG
    assert log == ["stop A"]
    assert any("stopping initializer 'B' failed" in r.getMessage() for r in caplog.records)


def test_duplicate_initializer_names_are_an_error(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "initializers/one.py": """
                from hero_fast import Initializer
                class Cache(Initializer):
                    pass
            """,
            "initializers/two.py": """
                from hero_fast import Initializer
                class Other(Initializer):
                    name = "Cache"
            """,
        },
    )
    with pytest.raises(ProjectError) as info:
        Api(tmp_path).load()
    assert str(info.value) == "initializers/two.py: initializer 'Cache' is already defined in initializers/one.py"


def test_a_base_class_shared_by_initializers_is_not_instantiated(tmp_path: Path) -> None:
    write(
        tmp_path,
        {
            "initializers/pools.py": """
                from hero_fast import Initializer
                class Pool(Initializer):
                    size = 1
                class SmallPool(Pool):
                    pass
                class BigPool(Pool):
                    size = 10
            """
        },
    )
    api = Api(tmp_path)
    api.load()
    assert sorted(i.name for i in api.initializers) == ["BigPool", "SmallPool"]


def test_a_syntax_error_in_an_initializer_is_one_line(tmp_path: Path) -> None:
    write(tmp_path, {"initializers/broken.py": "from hero_fast import Initializer\nclass X(Initializer:\n    pass\n"})
    with pytest.raises(ProjectError) as info:
        Api(tmp_path).load()
    assert str(info.value).startswith("initializers/broken.py:2: SyntaxError:")
