from __future__ import annotations

from typing import Any

import pytest

from hero_fast.testing import TestApi, make_test_api, make_test_connection


@pytest.fixture
def api() -> TestApi:
    return make_test_api()


@pytest.fixture
def registry(api: TestApi) -> Any:
    return api.actions


@pytest.fixture
def conn(api: TestApi) -> Any:
    return make_test_connection(api, "conn-1")
