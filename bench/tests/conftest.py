"""Tests of the bench machinery (`make bench-test`): the C servers and load generator, the
load clients, the report. They start small servers on loopback ports; nothing here is timed."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

BENCH = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MACRO = os.path.join(BENCH, "macro")
sys.path[:0] = [BENCH, MACRO]


@pytest.fixture(scope="session")
def built() -> str:
    """bench/macro built (loadgen, epoll_server); the directory."""
    subprocess.run(["make", "-s", "-C", MACRO], check=True, timeout=120)
    return MACRO

