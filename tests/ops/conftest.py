"""Fixtures of the operations tests (helpers: _ops_support.py)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("HERO_FAST"):
            monkeypatch.delenv(name)
