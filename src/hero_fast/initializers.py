"""Initializers: a project's code that runs at boot and at stop.

::

    # initializers/database.py
    import sqlite3
    from hero_fast import Initializer

    class Database(Initializer):
        priority = 100          # lower runs first (default 1000)

        def initialize(self, api):
            api.state.db = sqlite3.connect(api.project_dir / "app.db")

        async def stop(self, api):
            api.state.db.close()

Every ``Initializer`` subclass in the project's ``initializers/`` folder (config
``general.paths.initializer``) is instantiated once per process — under ``hero-fast
serve``, in each of ``--workers N``, and in ``hero_fast.testing``. Boot runs every
``initialize`` in priority order, then (once actions, middleware, routes and the browser
client are in place) every ``start`` in the same order, before the port opens. Stop runs
``stop`` in the reverse order, after the clients are closed. Each method may be sync or
``async``; any it does not define is skipped.

A failure at boot stops the boot: every initializer whose ``initialize`` succeeded gets its
``stop`` (reverse order), and the error is one line naming the file, line and exception
(:class:`hero_fast.project.ProjectError`; ``hero-fast serve`` exits with status 2). So
``stop`` may run without ``start`` having run: release what ``initialize`` took. A failure
at stop is logged and the other initializers still stop.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from hero_fast.project.imports import ProjectError, describe_failure, where

if TYPE_CHECKING:
    from hero_fast.app import Api

__all__ = ["Initializer", "Initializers"]

log = logging.getLogger("hero_fast.initializers")

class Initializer:
    """Base class of a project's boot/stop hooks; override any of the three methods.
    ``name`` defaults to the class name; ``priority`` orders them (lower first)."""

    name: str = ""
    priority: int | float = 1000

    def initialize(self, api: Api) -> Any:
        """At boot, before the project's actions are served: open pools, read files."""

    def start(self, api: Api) -> Any:
        """At boot, after everything is loaded and before the port opens: start background work."""

    def stop(self, api: Api) -> Any:
        """At shutdown, after the clients are closed: stop background work, close pools."""

    def __repr__(self) -> str:
        return f"<Initializer {self.name!r} priority={self.priority}>"


def _overrides(init: Initializer, step: str) -> bool:
    return getattr(type(init), step) is not getattr(Initializer, step)


class Initializers:
    """A process's initializers, in priority order, and where each came from."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root
        self._items: list[tuple[Initializer, Path | None]] = []
        self._initialized: list[tuple[Initializer, Path | None]] = []

    def __iter__(self) -> Any:
        return (init for init, _ in self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, name: str) -> Initializer:
        for init, _ in self._items:
            if init.name == name:
                return init
        raise KeyError(name)

    def add(self, init: Initializer, source: Path | None = None) -> None:
        """Register ``init`` (an instance); the name must be unique."""
        if not isinstance(init, Initializer):
            raise TypeError(f"expected an Initializer, got {type(init).__name__}")
        if not init.name:
            init.name = type(init).__name__
        if not isinstance(init.priority, (int, float)) or isinstance(init.priority, bool):
            raise ProjectError(f"{self._where(source)}: initializer {init.name!r}: priority must be a number")
        for other, other_source in self._items:
            if other.name == init.name:
                raise ProjectError(
                    f"{self._where(source)}: initializer {init.name!r} is already defined in "
                    f"{self._where(other_source)}"
                )
        self._items.append((init, source))
        self._items.sort(key=lambda item: item[0].priority)  # stable: file order on ties

    def _where(self, source: Path | None) -> str:
        return "initializer" if source is None else where(source, self.root)

    async def _call(self, init: Initializer, source: Path | None, step: str, api: Api) -> None:
        try:
            result = getattr(init, step)(api)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            if source is None:
                text = f"initializer {init.name!r}: {type(exc).__name__}: {exc}"
            else:
                text = describe_failure(source, exc, self.root)
            raise ProjectError(f"{text} (in {type(init).__name__}.{step})") from exc

    async def initialize(self, api: Api) -> None:
        """Run every ``initialize`` in priority order. On a failure the ones initialized
        before are stopped (reverse order) and ProjectError is raised."""
        await self._boot_step("initialize", api)

    async def start(self, api: Api) -> None:
        """Run every ``start`` in priority order. On a failure every initialized one is
        stopped (reverse order) and ProjectError is raised."""
        await self._boot_step("start", api)

    async def _boot_step(self, step: str, api: Api) -> None:
        for init, source in self._items:
            if _overrides(init, step):
                log.debug("%s %s", step, init.name)
                try:
                    await self._call(init, source, step, api)
                except ProjectError:
                    await self.stop(api)
                    raise
            if step == "initialize":
                self._initialized.append((init, source))

    async def stop(self, api: Api) -> None:
        """Run ``stop`` of every initialized initializer in reverse order; failures are logged."""
        while self._initialized:
            init, source = self._initialized.pop()
            if _overrides(init, "stop"):
                log.debug("stopping %s", init.name)
                try:
                    await self._call(init, source, "stop", api)
                except ProjectError as exc:
                    log.error("stopping initializer %r failed: %s", init.name, exc, exc_info=exc.__cause__)
