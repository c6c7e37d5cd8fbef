"""Tests that can fail: under CI nothing skips silently, an unimportable hero_fast.app
is an error, and the suite leaves the machine's shared Redis alone.

Each check runs pytest in a subprocess (with ``CI`` set or not, as the check needs) and
reads its outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

DEMO = '''
import pytest

def test_runs():
    pass

def test_needs_a_tool():
    pytest.skip("no frobnicator on this machine")

@pytest.mark.skipif(True, reason="eager Tasks exist from Python 3.12")
def test_version_specific():
    pass
'''

DEMO_MODULE_SKIP = '''
import pytest
pytest.importorskip("hero_fast_no_such_module")

def test_never_collected():
    pass
'''


def pytest_in(folder: Path, *args: str, ci: bool, extra_env: dict[str, str] | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if k != "CI" and not k.startswith("PYTEST_")}
    if ci:
        env["CI"] = "1"
    env.update(extra_env or {})
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", *args],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    return out.stdout + out.stderr


@pytest.fixture
def demo(tmp_path: Path) -> Path:
    shutil.copy(TESTS / "conftest.py", tmp_path / "conftest.py")
    (tmp_path / "test_demo.py").write_text(DEMO)
    (tmp_path / "test_demo_module.py").write_text(DEMO_MODULE_SKIP)
    return tmp_path


def test_without_ci_a_missing_tool_skips(demo: Path) -> None:
    out = pytest_in(demo, "test_demo.py", "test_demo_module.py", ci=False)
    assert "1 passed, 3 skipped" in out


def test_under_ci_a_skip_is_a_failure_unless_expected_on_every_ci_machine(demo: Path) -> None:
    out = pytest_in(demo, "test_demo.py", ci=True)
    assert "1 failed, 1 passed, 1 skipped" in out
    assert "skipped under CI (CI='1'), where nothing may be skipped: no frobnicator on this machine" in out
    assert "SKIPPED [1] test_demo.py:10: eager Tasks exist from Python 3.12" in out


def test_under_ci_a_module_skipped_at_import_is_an_error(demo: Path) -> None:
    out = pytest_in(demo, "test_demo_module.py", ci=True)
    assert "1 error" in out and "skipped" not in out.splitlines()[-1]
    assert "could not import 'hero_fast_no_such_module'" in out


# hero_fast.app refuses to import in the subprocess: its tests must fail, not skip.
BREAK_APP = '''
import sys

class RefuseApp:
    def find_spec(self, name, path=None, target=None):
        if name == "hero_fast.app":
            raise ImportError("hero_fast.app is broken on purpose by tests/ci")
        return None

sys.meta_path.insert(0, RefuseApp())
'''


def test_tests_of_the_app_fail_when_it_does_not_import(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(BREAK_APP)
    out = pytest_in(
        TESTS.parent,
        "--continue-on-collection-errors",
        "tests/http/test_http_real_api.py",
        "tests/client/test_integration.py",
        "tests/cli/test_cli_serve.py::test_actions_lists_the_project_actions",
        ci=False,
        extra_env={"PYTHONPATH": str(tmp_path)},
    )
    summary = out.strip().splitlines()[-1]
    assert "skipped" not in summary, out[-3000:]
    assert "2 errors" in summary and "1 failed" in summary, out[-3000:]


# Connecting to the machine's shared Redis (127.0.0.1:6379) is refused in the subprocess.
REFUSE_SHARED_REDIS = '''
import socket

_connect, _connect_ex = socket.socket.connect, socket.socket.connect_ex

def _shared(address):
    return isinstance(address, tuple) and len(address) >= 2 and address[1] == 6379

def connect(self, address):
    if _shared(address):
        raise ConnectionRefusedError("the shared Redis is off limits to this test")
    return _connect(self, address)

def connect_ex(self, address):
    return 111 if _shared(address) else _connect_ex(self, address)

socket.socket.connect, socket.socket.connect_ex = connect, connect_ex
'''


def test_the_metrics_redis_test_leaves_the_shared_redis_alone(tmp_path: Path) -> None:
    (tmp_path / "sitecustomize.py").write_text(REFUSE_SHARED_REDIS)
    out = pytest_in(
        TESTS.parent,
        "tests/ops/test_ops_metrics.py::test_cluster_metrics_with_a_live_redis_backend",
        ci=False,
        extra_env={"PYTHONPATH": str(tmp_path), "HERO_FAST_LOOP": "asyncio"},  # asyncio: Python sockets
    )
    assert out.strip().splitlines()[-1].startswith("1 passed"), out[-3000:]
