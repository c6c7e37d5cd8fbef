"""Suite-wide: which event loop the asyncio tests run on.

``HERO_FAST_LOOP=uvloop`` or ``asyncio`` (the default) — CI runs the suite once
with each. tests/transport and tests/client run every test on both loops
through their own fixtures and hooks, whatever this says.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from typing import Any

import pytest

LOOP = os.environ.get("HERO_FAST_LOOP", "asyncio")
if LOOP not in ("uvloop", "asyncio"):
    raise pytest.UsageError(f"HERO_FAST_LOOP must be uvloop or asyncio, not {LOOP!r}")


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    if LOOP == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}
