"""Helpers shared by the tests in tests/actions."""

from __future__ import annotations

import asyncio
from typing import Any

from hero_fast.actions import ActionResult


async def settle(result: Any) -> ActionResult:
    """An ActionResult from what process() returned."""
    if isinstance(result, ActionResult):
        return result
    return await result  # type: ignore[no-any-return]


class TaskCounter:
    """Counts Tasks created on the running loop (through create_task)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.count = 0
        self._orig = loop.create_task

    def __enter__(self) -> TaskCounter:
        def counting(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return self._orig(*args, **kwargs)

        self.loop.create_task = counting  # type: ignore[method-assign]
        return self

    def __exit__(self, *exc: object) -> None:
        del self.loop.create_task  # back to the class attribute
