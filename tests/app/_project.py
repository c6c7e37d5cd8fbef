"""Write small project folders for the app-layer tests."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any


def write(root: Path, files: dict[str, str]) -> Path:
    """Write ``files`` (relative path → source, dedented) under ``root``; returns ``root``."""
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
    return root


def module_of(obj: Any) -> ModuleType:
    """The project module ``obj`` (an instance of a class a project file defines) comes from."""
    return sys.modules[type(obj).__module__]
