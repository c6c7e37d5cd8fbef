"""A project folder's code: what ``initializers/`` and ``middleware/`` define.

``hero-fast serve``, each of ``--workers N`` and ``hero_fast.testing`` load a project the
same way, through :meth:`hero_fast.app.Api.load`, which uses these functions. Mistakes are
:class:`ProjectError` (one line naming the file; the CLI exits with status 2); things that
would silently do nothing are :class:`ProjectWarning`.
"""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

from hero_fast.initializers import Initializer, Initializers
from hero_fast.middleware import ActionMiddleware, ChatMiddleware, ConnectionMiddleware, Middleware
from hero_fast.project.imports import ProjectError, ProjectWarning, import_folder, where

__all__ = ["ProjectError", "ProjectWarning", "find_middleware", "load_initializers"]

_KINDS = (ActionMiddleware, ChatMiddleware, ConnectionMiddleware)


def _defined_here(obj: object, module_name: str, base: type) -> bool:
    return (
        isinstance(obj, type)
        and issubclass(obj, base)
        and obj is not base
        and obj.__module__ == module_name
        and not inspect.isabstract(obj)
    )


def load_initializers(folder: Path, initializers: Initializers, root: Path | None = None) -> int:
    """Instantiate and add every :class:`Initializer` subclass defined in ``folder``'s files
    (intermediate bases that others subclass are skipped). Returns how many were added."""
    found: list[tuple[Path, type[Initializer]]] = []
    for file, module in import_folder(folder, "initializers", root):
        found.extend((file, obj) for obj in vars(module).values() if _defined_here(obj, module.__name__, Initializer))
    added = 0
    for file, cls in found:
        if any(other is not cls and issubclass(other, cls) for _, other in found):
            continue  # a base class of other initializers
        try:
            init = cls()
        except Exception as exc:
            raise ProjectError(f"{where(file, root)}: {cls.__name__}(): {type(exc).__name__}: {exc}") from exc
        initializers.add(init, file)
        added += 1
    return added


def find_middleware(folder: Path, root: Path | None = None) -> list[tuple[Path, Middleware]]:
    """Every middleware ``folder``'s files define: module-level instances of
    :class:`~hero_fast.middleware.ActionMiddleware`, ``ConnectionMiddleware`` or
    ``ChatMiddleware``, and subclasses with a ``name`` (instantiated with no arguments).
    A subclass without a name that nothing subclasses gets a :class:`ProjectWarning`."""
    out: list[tuple[Path, Middleware]] = []
    for file, module in import_folder(folder, "middleware", root):
        classes = []
        for obj in vars(module).values():
            if isinstance(obj, Middleware):
                out.append((file, obj))
            elif _defined_here(obj, module.__name__, Middleware) and obj not in _KINDS:
                classes.append(obj)
        for cls in classes:
            if cls.name:
                try:
                    out.append((file, cls()))
                except Exception as exc:
                    raise ProjectError(f"{where(file, root)}: {cls.__name__}(): {type(exc).__name__}: {exc}") from exc
            elif not any(other is not cls and issubclass(other, cls) for other in classes):
                warnings.warn(
                    f"{where(file, root)}: {cls.__name__} is middleware without a `name`, so it is not "
                    "registered (give it name = \"...\")",
                    ProjectWarning,
                    stacklevel=2,
                )
    # one object bound to two names (or imported into a second file) is registered once
    seen: set[int] = set()
    unique = []
    for file, mw in out:
        if id(mw) not in seen:
            seen.add(id(mw))
            unique.append((file, mw))
    return unique
