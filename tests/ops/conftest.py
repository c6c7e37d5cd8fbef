"""Fixtures of the operations tests (helpers: _ops_support.py)."""

from __future__ import annotations

import logging
import os
from typing import Any

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HERO_FAST"):
            monkeypatch.delenv(name)


@pytest.fixture
def restore_logging() -> Any:
    """Undo what hero_fast.logs.configure_logging does to the root logger."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for h in list(root.handlers):
        if h not in handlers:
            root.removeHandler(h)
    root.setLevel(level)
    logging.captureWarnings(False)
