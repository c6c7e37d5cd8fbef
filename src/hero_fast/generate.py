"""What hero-fast writes into a project: ``hero-fast new`` (a whole project) and ``hero-fast
generate action|initializer|middleware NAME`` (one file and a test of it that passes).

Templates live in the package (``scaffold/`` for a project, ``templates/`` for generated
files); ``__NAME__`` becomes the name as given, ``__CLASS__`` its CamelCase form and
``__MODULE__`` its snake_case form. Nothing is ever overwritten.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.abc import Traversable

__all__ = ["KINDS", "MIDDLEWARE_KINDS", "GenerateError", "generate", "names", "scaffold"]

KINDS = ("action", "initializer", "middleware")
MIDDLEWARE_KINDS = ("action", "connection", "chat")

_TEMPLATE_SUFFIX = ".tmpl"
_RENAMES = {"gitignore": ".gitignore"}
_PROJECT_TOKEN = "__PROJECT_NAME__"
# folders every project has, even where no template puts a file
_FOLDERS = ("actions", "config", "initializers", "middleware", "public", "tests")


class GenerateError(Exception):
    """Nothing was written; the message says why."""


def _walk(node: Traversable, rel: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Traversable]]:
    out = []
    for child in sorted(node.iterdir(), key=lambda c: c.name):
        if child.name == "__pycache__" or child.name.startswith("."):
            continue
        if child.is_dir():
            out.extend(_walk(child, (*rel, child.name)))
        else:
            name = child.name.removesuffix(_TEMPLATE_SUFFIX)
            out.append(((*rel, _RENAMES.get(name, name)), child))
    return out


def _project_name(name: str) -> str:
    """The project name as it may appear inside Python strings and HTML."""
    return re.sub(r"[^\w .-]", "-", name).strip() or "hero-fast-app"


def scaffold(target: Path) -> list[Path]:
    """Write a new project into ``target`` (created; must not exist or be empty); the files
    written."""
    if target.exists():
        if not target.is_dir():
            raise GenerateError(f"{target} exists and is not a folder")
        if any(target.iterdir()):
            raise GenerateError(f"{target} is not empty; 'hero-fast new' only writes into a new or empty folder")
    templates = _walk(resources.files("hero_fast").joinpath("scaffold"))
    if not templates:
        raise GenerateError("the project templates are missing from this hero-fast installation")
    name = _project_name(target.resolve().name)
    written = []
    target.mkdir(parents=True, exist_ok=True)
    for rel, source in templates:
        dest = target.joinpath(*rel)
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.write_text(source.read_text(encoding="utf-8").replace(_PROJECT_TOKEN, name), encoding="utf-8")
        written.append(dest)
    for folder in _FOLDERS:
        target.joinpath(folder).mkdir(exist_ok=True)
    return written


def names(name: str) -> tuple[str, str]:
    """``(ClassName, module_name)`` for ``name`` (``createUser``, ``create-user`` or
    ``create_user`` all give ``CreateUser`` and ``create_user``)."""
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z]|\d|\b|_|-)|[A-Z]?[a-z]+|[A-Z]+|\d+", name)
    if not words or not re.fullmatch(r"[A-Za-z][\w-]*", name):
        raise GenerateError(
            f"{name!r} is not a usable name: start with a letter; use letters, digits, '_' or '-'"
        )
    return "".join(w[:1].upper() + w[1:] for w in words), "_".join(w.lower() for w in words)


def generate(kind: str, name: str, project: Path, middleware_kind: str = "action") -> list[Path]:
    """Write a new ``kind`` (``action``, ``initializer`` or ``middleware`` of
    ``middleware_kind``) called ``name`` into ``project``, and a test of it in ``tests/``;
    the two files written."""
    if kind not in KINDS:
        raise GenerateError(f"cannot generate {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == "middleware" and middleware_kind not in MIDDLEWARE_KINDS:
        raise GenerateError(f"unknown middleware kind {middleware_kind!r}: choose one of {', '.join(MIDDLEWARE_KINDS)}")
    cls, module = names(name)
    folder = {"action": "actions", "initializer": "initializers", "middleware": "middleware"}[kind]
    template = f"middleware_{middleware_kind}" if kind == "middleware" else kind
    source = project / folder / f"{module}.py"
    test = project / "tests" / f"test_{folder.rstrip('s')}_{module}.py"
    for path in (source, test):
        if path.exists():
            raise GenerateError(f"{path} already exists; nothing was written")
    templates = resources.files("hero_fast").joinpath("templates")
    written = []
    for path, tmpl in ((source, f"{template}.py.tmpl"), (test, f"{template}_test.py.tmpl")):
        text = templates.joinpath(tmpl).read_text(encoding="utf-8")
        text = text.replace("__NAME__", name).replace("__CLASS__", cls).replace("__MODULE__", module)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written
