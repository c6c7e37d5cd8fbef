"""Fixtures for tests/http (helpers live in _http_support)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from _http_support import Live, make_public, start_live, stop_live


@pytest.fixture
def public(tmp_path: Path) -> Path:
    return make_public(tmp_path)


@pytest.fixture
async def live(public: Path) -> AsyncIterator[Live]:
    srv = await start_live(public)
    try:
        yield srv
    finally:
        await stop_live(srv)
