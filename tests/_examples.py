"""The example projects of examples/, copied for a test: they write their database and the
browser client inside themselves, and the tests leave the checkout as it was."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def copy_example(name: str, parent: Path) -> Path:
    """``examples/<name>`` copied into ``parent`` (without what its runs wrote); skips the test
    outside a source checkout (the wheel check runs a copy of tests/ alone)."""
    source = EXAMPLES / name
    if not source.is_dir():
        pytest.skip(f"{source} is not here (the tests run outside a source checkout)")
    ignore = shutil.ignore_patterns("data", "javascript", "__pycache__", ".pytest_cache")
    return Path(shutil.copytree(source, parent / name, ignore=ignore))
