from __future__ import annotations

from typing import Any

import pytest

from hero_fast.app import Api
from hero_fast.testing import make_test_api, make_test_connection


@pytest.fixture
def api() -> Api:
    return make_test_api()


@pytest.fixture
def registry(api: Api) -> Any:
    return api.actions


@pytest.fixture
def conn(api: Api) -> Any:
    return make_test_connection(api, "conn-1")
