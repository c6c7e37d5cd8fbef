"""Every example passes its own tests (its tests/, on hero_fast.testing), run as its README
says: ``python -m pytest`` in the project folder."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _examples import copy_example


@pytest.mark.parametrize("example", ["auth-chat", "chat"])
def test_the_example_passes_its_own_tests(example: str, tmp_path: Path) -> None:
    project = copy_example(example, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("HERO_FAST")}  # its own config only
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmp_path / 'pytest'}"],
        cwd=project, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "error" not in summary, summary
