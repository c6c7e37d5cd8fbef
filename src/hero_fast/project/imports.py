"""Import a project folder (``actions/``, ``initializers/``, ``middleware/``) as a private package.

Each folder becomes a package under a name derived from its absolute path, so its files can
share code with relative imports (``from .util import x``) and a subfolder is a subpackage.
Every call imports the files afresh. A file that fails to import raises :class:`ProjectError`
whose message is one line naming the file and line (``actions/echo.py:12: SyntaxError: ...``).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType

__all__ = ["ProjectError", "ProjectWarning", "describe_failure", "import_folder", "python_files", "where"]


class ProjectError(Exception):
    """The project's code or files cannot be loaded; the message (one line) names the file, the
    line or option, and what is wrong. The CLI prints it and exits with status 2."""


class ProjectWarning(UserWarning):
    """Something in the project is probably a mistake that would otherwise do nothing (a class
    without a name, a misspelled config section); shown once at boot."""


def where(file: Path | str, root: Path | None = None) -> str:
    """``file`` relative to the project folder ``root`` when it lies inside it."""
    path = Path(file)
    if root is not None:
        try:
            return path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            pass
    return str(path)


def describe_failure(file: Path, exc: BaseException, root: Path | None) -> str:
    """One line for an exception raised by code in ``file``: the file, the line it happened
    on, the error."""
    name = where(file, root)
    if isinstance(exc, SyntaxError):
        line = f":{exc.lineno}" if exc.lineno else ""
        return f"{name}{line}: {type(exc).__name__}: {exc.msg}"
    line = ""
    resolved = str(file.resolve())
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if frame.filename == resolved or frame.filename == str(file):
            line = f":{frame.lineno}"
            break
    return f"{name}{line}: {type(exc).__name__}: {exc}" if str(exc) else f"{name}{line}: {type(exc).__name__}"


def python_files(folder: Path) -> list[Path]:
    """Every ``*.py`` under ``folder`` in sorted order, skipping hidden and ``__pycache__`` folders."""
    return sorted(
        p
        for p in folder.rglob("*.py")
        if p.is_file()
        and not any(part.startswith(".") or part == "__pycache__" for part in p.relative_to(folder).parts[:-1])
    )


def _ident(name: str) -> str:
    if name.isidentifier():
        return name
    return "_" + "".join(c if c.isalnum() else "_" for c in name)


def _exec_module(name: str, file: Path, root: Path | None, package_dir: Path | None = None) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        name, file, submodule_search_locations=None if package_dir is None else [str(package_dir)]
    )
    if spec is None or spec.loader is None:
        raise ProjectError(f"{where(file, root)}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(name, None)
        if not isinstance(exc, Exception):
            raise
        raise ProjectError(describe_failure(file, exc, root)) from exc
    return module


def _package(name: str, directory: Path, root: Path | None) -> ModuleType:
    """The package module ``name`` for ``directory`` (its ``__init__.py`` when it has one),
    created (and attached to its parent) if not imported yet."""
    module = sys.modules.get(name)
    if module is not None:
        return module
    init = directory / "__init__.py"
    if init.is_file():
        module = _exec_module(name, init, root, directory)
    else:
        module = ModuleType(name)
        module.__path__ = [str(directory)]
        module.__package__ = name
        sys.modules[name] = module
    parent, _, child = name.rpartition(".")
    if parent and parent in sys.modules:
        setattr(sys.modules[parent], child, module)
    return module


def import_folder(folder: Path, kind: str, root: Path | None = None) -> list[tuple[Path, ModuleType]]:
    """Import every Python file of ``folder`` (see :func:`python_files`) as a module of a
    private package (``kind`` names it: ``actions``, ``initializers``, ...); returns
    ``(file, module)`` pairs in file order. ``root`` (the project folder) shortens file names
    in error messages."""
    digest = hashlib.sha1(str(folder.resolve()).encode()).hexdigest()[:12]
    package_root = f"_hero_fast_{_ident(kind)}_{digest}"
    for name in [n for n in sys.modules if n == package_root or n.startswith(package_root + ".")]:
        del sys.modules[name]
    importlib.invalidate_caches()
    _package(package_root, folder, root)
    out: list[tuple[Path, ModuleType]] = []
    for file in python_files(folder):
        rel = file.relative_to(folder)
        package = package_root
        directory = folder
        for part in rel.parts[:-1]:
            package = f"{package}.{_ident(part)}"
            directory = directory / part
            _package(package, directory, root)
        if file.name == "__init__.py":
            module = sys.modules[package]
        else:
            name = f"{package}.{_ident(file.stem)}"
            seen = sys.modules.get(name)  # already imported by a sibling's relative import?
            mfile = getattr(seen, "__file__", None)
            if seen is not None and mfile and Path(mfile).resolve() == file.resolve():
                module = seen
            else:
                module = _exec_module(name, file, root)
                setattr(sys.modules[package], name.rpartition(".")[2], module)
        out.append((file, module))
    return out
