"""Suite-wide: which event loop the asyncio tests run on, and no silent skips under CI.

``HERO_FAST_LOOP=uvloop`` or ``asyncio`` (the default) — CI runs the suite once
with each. tests/transport and tests/client run every test on both loops
through their own fixtures and hooks, whatever this says.

Under CI (env ``CI`` set and not empty, as ``.ci/run`` does) a skipped test is a
failure: a test that needs Redis, Chromium, node, openssl, Python 2.7 or an extra
skips on a developer's machine that lacks it, but CI must have it. The only skips
CI accepts are those of ``CI_EXPECTED_SKIPS``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

LOOP = os.environ.get("HERO_FAST_LOOP", "asyncio")
if LOOP not in ("uvloop", "asyncio"):
    raise pytest.UsageError(f"HERO_FAST_LOOP must be uvloop or asyncio, not {LOOP!r}")

CI = bool(os.environ.get("CI"))

# Skip reasons (their beginnings) that are right on a complete CI machine too.
CI_EXPECTED_SKIPS = (
    # behaviour that differs by Python version (the 3.10 and 3.11 legs)
    "eager Tasks exist from Python 3.12",
    "before 3.12 the eager part runs outside a Task",
    # the suite run against an installed wheel from a copy of tests/ (make wheel-check)
    "needs the source checkout",
    "the conformance/ harness is not beside these tests",
)


def pytest_asyncio_loop_factories(config: pytest.Config, item: pytest.Item) -> dict[str, Callable[[], Any]]:
    if LOOP == "uvloop":
        import uvloop

        return {"uvloop": uvloop.new_event_loop}
    return {"asyncio": asyncio.new_event_loop}


def skip_reason(report: pytest.TestReport | pytest.CollectReport) -> str:
    longrepr = report.longrepr
    text = longrepr[2] if isinstance(longrepr, tuple) else str(longrepr)
    return text.removeprefix("Skipped: ")


def fail_if_skipped_under_ci(report: pytest.TestReport | pytest.CollectReport) -> None:
    if not (CI and report.skipped) or hasattr(report, "wasxfail"):
        return
    reason = skip_reason(report)
    if reason.startswith(CI_EXPECTED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI (CI={os.environ['CI']!r}), where nothing may be skipped: {reason}\n"
        "Install what it needs in CI (Makefile system-deps, .github/workflows/ci.yml), or, when the skip "
        "is right on every CI machine, add its reason to CI_EXPECTED_SKIPS in tests/conftest.py."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    outcome = yield
    fail_if_skipped_under_ci(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector: pytest.Collector) -> Generator[None, Any, None]:
    outcome = yield
    fail_if_skipped_under_ci(outcome.get_result())


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Every test leaves logging as it found it: ``hero-fast serve`` run in-process (and
    ``hero_fast.logs.configure_logging``) sets up the root logger, and a later test would
    otherwise log — and capture — at its level."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(False)
