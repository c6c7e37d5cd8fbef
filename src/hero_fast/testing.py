"""Run actions in-process, without sockets (for your project's tests).

::

    from hero_fast.testing import make_test_api, run_action

    async def test_add():
        api = make_test_api(project_dir=Path("."))   # loads ./actions
        response = await run_action(api, "add", {"a": "1", "b": 2})
        assert response == {"sum": 3}
"""

from __future__ import annotations

import copy
import inspect
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from hero_fast.actions import ActionRegistry, ActionResult

__all__ = ["TestApi", "make_test_api", "make_test_connection", "run_action", "run_action_result"]


def _default_config() -> dict[str, Any]:
    return {
        "general": {
            "serverName": "hero-fast-test",
            "apiVersion": "0.0.1",
            "simultaneousActions": 5,
        }
    }


def _deep_merge(base: dict[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    for key, value in overrides.items():
        current = base.get(key)
        if isinstance(value, Mapping) and isinstance(current, dict):
            _deep_merge(current, value)
        else:
            base[key] = copy.deepcopy(value)
    return base


def _load_config(project_dir: Path | None, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Config from ``hero_fast.config.load_config`` (``(config, sources)`` or a
    dict) when the module exists, else a minimal one; ``overrides`` applied."""
    try:
        from hero_fast.config import load_config
    except ImportError:
        return _deep_merge(_default_config(), overrides or {})
    try:
        accepted = set(inspect.signature(load_config).parameters)
    except (TypeError, ValueError):
        accepted = set()
    kwargs: dict[str, Any] = {}
    if "overrides" in accepted and overrides:
        kwargs["overrides"] = dict(overrides)
    loaded: Any = load_config(project_dir, **kwargs)
    if isinstance(loaded, tuple):
        loaded = loaded[0]
    config: dict[str, Any] = dict(loaded)
    if overrides and "overrides" not in kwargs:
        _deep_merge(config, overrides)
    return config


class TestApi:
    """The smallest api-like object actions need: ``config`` (nested dict),
    ``project_dir``, ``actions`` (an :class:`ActionRegistry` with the
    built-ins, plus the project's ``actions/`` folder when there is one),
    ``boot_time`` (epoch ms)."""

    __test__ = False  # not a pytest test class

    def __init__(self, config: dict[str, Any], project_dir: Path) -> None:
        self.config = config
        self.project_dir = project_dir
        self.boot_time = time.time() * 1000
        self.actions = ActionRegistry(self)
        self.actions.load_builtins()

    def __repr__(self) -> str:
        return f"<TestApi {self.project_dir}>"


def make_test_api(project_dir: Path | str | None = None, config_overrides: Mapping[str, Any] | None = None) -> TestApi:
    """A minimal api for running actions in-process. Config comes from
    ``hero_fast.config.load_config`` when that module exists (else a minimal
    one: ``general.simultaneousActions=5``, ``general.apiVersion="0.0.1"``),
    with ``config_overrides`` deep-merged on top. With a ``project_dir``, the
    actions in its action folders (``general.paths.action``, default
    ``actions/``) are loaded."""
    pdir = Path(project_dir) if project_dir is not None else Path.cwd()
    config = _load_config(Path(project_dir) if project_dir is not None else None, config_overrides)
    general = config.setdefault("general", {})
    general.setdefault("simultaneousActions", 5)
    general.setdefault("apiVersion", "0.0.1")
    api = TestApi(config, pdir)
    if project_dir is not None:
        paths = general.get("paths")
        folders = paths.get("action") if isinstance(paths, dict) else None
        for folder in folders if isinstance(folders, list) else ["actions"]:
            if (pdir / folder).is_dir():
                api.actions.load_folder(pdir / folder)
    return api


def make_test_connection(api: Any, id: str | None = None) -> Any:
    """A ``"testing"`` :class:`hero_fast.connections.Connection` (no socket)."""
    from hero_fast.connections import Connection

    return Connection(api, "testing", id or os.urandom(16).hex(), "testServer", 0)


async def run_action_result(
    api: Any, name: str, params: Mapping[str, Any] | None = None, connection: Any = None
) -> ActionResult:
    """Like :func:`run_action` but returns the whole :class:`ActionResult`
    (status, duration, params after input processing)."""
    conn = connection if connection is not None else make_test_connection(api)
    request = dict(params) if params else {}
    request["action"] = name
    result = api.actions.process(conn, request)
    if not isinstance(result, ActionResult):
        result = await result
    assert isinstance(result, ActionResult)
    return result


async def run_action(
    api: Any, name: str, params: Mapping[str, Any] | None = None, connection: Any = None
) -> dict[str, Any]:
    """Run action ``name`` with ``params`` as a client would (inputs,
    middleware, limits) and return the response dict (``error`` on failure).
    A fresh ``"testing"`` connection is made when none is given."""
    result = await run_action_result(api, name, params, connection)
    return result.response
