"""Fixtures: the app booted in-process (hero_fast.testing.TestApi) on a database of its own,
and a way to get a connection logged in as one of the demo users."""

from pathlib import Path

import pytest

from hero_fast.testing import TestApi

PROJECT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def api(tmp_path):
    # config "test" (config/api.py) applies; each test gets a fresh database file
    async with TestApi(PROJECT, config={"authChat": {"database": str(tmp_path / "auth-chat.db")}}) as api:
        yield api


@pytest.fixture
def login(api):
    """`await login("alice")`: a new WebSocket-like connection logged in as a demo user
    (password "<name>-pw"); `fingerprint=` is the browser cookie it carries (else a new one)."""

    async def login(name, fingerprint=None):
        client = api.connect(fingerprint=fingerprint)
        response = await client.action("login", name=name, password=f"{name}-pw")
        assert response.get("user") == name, response
        return client

    return login
