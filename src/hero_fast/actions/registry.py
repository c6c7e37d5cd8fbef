"""The action registry and processor.

Registration compiles each action once: its input plan (a tuple of
``(name, required, default, default_mode, formatter, formatter_mode,
validator, validator_mode)``) and its step chain (pre-processors, input
checking, ``run``, post-processors). :meth:`ActionRegistry.process` walks that
chain synchronously; an awaitable returned by any step is run eagerly
(``coro.send(None)``) and only when it really suspends does the rest of the
chain move into an :class:`asyncio.Task`. So an action that finishes without
waiting — sync, or async without an actual wait — is answered with an
:class:`ActionResult` from the ``process()`` call itself.

Order of one request (as in actionhero): pre-processors (they see the params
as received), input checking (undeclared params dropped, defaults, formatters,
validators, required), ``run``, post-processors (only after a successful run).
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import sys
import time
import warnings
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from types import CoroutineType
from typing import TYPE_CHECKING, Any

from hero_fast._eager import DONE as _DONE
from hero_fast._eager import EAGER_TASKS as _EAGER_TASKS
from hero_fast._eager import ENGINES as _ENGINES
from hero_fast._eager import EngineResume, Resume, new_engine, run_eager
from hero_fast._eager import start_task as _start_task
from hero_fast.actions.action import (
    MISSING,
    Action,
    ActionData,
    ActionError,
    ActionMiddleware,
    ActionResult,
    Input,
)
from hero_fast.errors import internal_error
from hero_fast.project.imports import ProjectError, ProjectWarning, import_folder, where

if TYPE_CHECKING:
    from hero_fast.connections.connection import Connection

__all__ = ["SHUTTING_DOWN", "ActionLoadError", "ActionObserver", "ActionRegistry"]

log = logging.getLogger("hero_fast.actions")

TOO_MANY = "you have too many pending requests"
UNKNOWN = "unknown action or invalid apiVersion"
SHUTTING_DOWN = "the server is shutting down: retry on another server or after it restarts"

_perf = time.perf_counter
_new = object.__new__
_pop_engine = _ENGINES.pop
_push_engine = _ENGINES.append
_isawaitable = inspect.isawaitable
_Coro = CoroutineType

# step kinds
_PRE = 0
_INPUTS = 1
_RUN = 2
_POST = 3

# default modes
_D_NONE = 0
_D_CONST = 1
_D_COPY = 2
_D_CALL0 = 3
_D_CALL_CONN = 4

Step = tuple[int, Callable[[ActionData], Any]]
Plan = tuple[tuple[str, bool, Any, int, Any, int, Any, int], ...]


class ActionLoadError(ProjectError):
    """Loading an actions folder failed; the message names the file."""


ActionObserver = Callable[["Connection", ActionResult], Any]
"""``observer(connection, result)``: called after every action request (see
:meth:`ActionRegistry.add_observer`)."""


# ----------------------------------------------------------------- versions


def version_key(version: Any) -> str | None:
    """Canonical text of an API version: ``1``, ``1.0``, ``"1"`` and ``"1.0"``
    are all ``"1"``; ``1.5`` and ``"1.5"`` are ``"1.5"``; other strings stay
    as they are (stripped). ``None`` for what cannot be a version."""
    if version is None or isinstance(version, bool):
        return None
    if isinstance(version, int):
        return str(version)
    if isinstance(version, float):
        if version != version or version in (float("inf"), float("-inf")):
            return None
        return str(int(version)) if version.is_integer() else repr(version)
    if isinstance(version, str):
        s = version.strip()
        if not s:
            return None
        try:
            return str(int(s))
        except ValueError:
            pass
        try:
            f = float(s)
        except ValueError:
            return s
        return version_key(f) or s
    return None


def _version_order(key: str) -> tuple[int, float, str]:
    try:
        return (0, float(key), key)
    except ValueError:
        return (1, 0.0, key)


# ------------------------------------------------------------- compilation


def _positional_arity(fn: Callable[..., Any]) -> tuple[int, bool]:
    """(number of required positional parameters, accepts *args); (-1, False)
    when the signature cannot be read (many builtins)."""
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return -1, False
    required = 0
    varargs = False
    for p in sig.parameters.values():
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD):
            if p.default is p.empty:
                required += 1
        elif p.kind is p.VAR_POSITIONAL:
            varargs = True
    return required, varargs


def _call_mode(fn: Any, where: str) -> int:
    """1: call ``fn(value)``; 2: call ``fn(value, data)``."""
    if fn is None:
        return 0
    if not callable(fn):
        raise TypeError(f"{where} must be callable, not {type(fn).__name__}")
    required, _ = _positional_arity(fn)
    return 2 if required >= 2 else 1


def _default_mode(default: Any) -> int:
    if default is MISSING:
        return _D_NONE
    if callable(default):
        required, _ = _positional_arity(default)
        return _D_CALL_CONN if required >= 1 else _D_CALL0
    if default.__class__ in (list, dict, set):
        return _D_COPY
    return _D_CONST


def _is_async_callable(fn: Any) -> bool:
    if fn is None:
        return False
    if inspect.iscoroutinefunction(fn):
        return True
    call = getattr(fn, "__call__", None)  # noqa: B004
    return call is not None and inspect.iscoroutinefunction(call)


def _failed_validation(key: str) -> str:
    return f'Input for parameter "{key}" failed validation!'


def _exc_text(exc: BaseException) -> str:
    if isinstance(exc, ActionError):
        return str(exc.message)
    return str(exc) or type(exc).__name__


def _validation_message(key: str, ok: Any) -> str | None:
    """The error text for a validator's (non-True, non-None) return value, or
    None when it means valid."""
    if ok is False:
        return _failed_validation(key)
    if isinstance(ok, str):
        return ok or _failed_validation(key)
    if isinstance(ok, BaseException):
        return _exc_text(ok)
    return None if ok else _failed_validation(key)


class _Entry:
    """One registered (action, version), compiled."""

    __slots__ = (
        "action",
        "builtin",
        "inputs",
        "inputs_async",
        "key",
        "name",
        "plan",
        "post",
        "pre",
        "run",
        "source",
        "steps",
        "version",
    )

    def __init__(self, action: Action, plan: Plan, inputs_async: bool, builtin: bool, source: str) -> None:
        self.action = action
        self.name: str = action.name
        self.version = action.version
        key = version_key(action.version)
        assert key is not None
        self.key = key
        self.plan = plan
        self.inputs_async = inputs_async
        self.builtin = builtin
        self.source = source
        self.run: Callable[[ActionData], Any] = action.run
        # filled by ActionRegistry._build_steps:
        self.pre: tuple[Callable[[ActionData], Any], ...] = ()
        self.inputs: Callable[[ActionData], Any] = _no_step
        self.post: tuple[Callable[[ActionData], Any], ...] = ()
        self.steps: tuple[Step, ...] = ()


def _no_step(data: ActionData) -> None:
    return None


def _make_inputs_sync(entry: _Entry, registry: ActionRegistry) -> Callable[[ActionData], Any]:
    plan = entry.plan
    name = entry.name
    version = entry.version

    if not plan:

        def no_inputs(data: ActionData) -> None:
            given = data.params.get("apiVersion")
            data.params = {"action": name, "apiVersion": version if given is None else given}

        return no_inputs

    def check_inputs(data: ActionData) -> Any:
        src = data.params
        given = src.get("apiVersion")
        clean: dict[str, Any] = {"action": name, "apiVersion": version if given is None else given}
        missing: str | None = None
        invalid: tuple[str, int] | None = None
        for key, required, default, dmode, fmt, fmode, val, vmode in plan:
            value = src.get(key, MISSING)
            if value is MISSING or value is None or (value.__class__ is str and not value):
                if dmode == _D_NONE:
                    if required:
                        if missing is None:
                            missing = key
                    elif value is not MISSING:
                        clean[key] = value
                    continue
                if dmode == _D_CONST:
                    value = default
                elif dmode == _D_COPY:
                    value = default.copy()
                elif dmode == _D_CALL0:
                    value = default()
                else:
                    value = default(data.connection)
                if value.__class__ is _Coro:
                    return registry._inputs_went_async(entry, data, value)
                if value is None or (value.__class__ is str and not value):
                    if required and missing is None:
                        missing = key
                    continue
            if fmode:
                try:
                    value = fmt(value) if fmode == 1 else fmt(value, data)
                except Exception as exc:
                    if invalid is None:
                        invalid = (_exc_text(exc), exc.status if isinstance(exc, ActionError) else 422)
                    continue
                if value.__class__ is _Coro:
                    return registry._inputs_went_async(entry, data, value)
            if vmode:
                try:
                    ok = val(value) if vmode == 1 else val(value, data)
                except Exception as exc:
                    if invalid is None:
                        invalid = (_exc_text(exc), exc.status if isinstance(exc, ActionError) else 422)
                    continue
                if ok is not True and ok is not None:
                    if ok.__class__ is _Coro:
                        return registry._inputs_went_async(entry, data, ok)
                    msg = _validation_message(key, ok)
                    if msg is not None:
                        if invalid is None:
                            invalid = (msg, 422)
                        continue
            clean[key] = value
        if missing is not None:
            raise ActionError(f"{missing} is a required parameter for this action", 422)
        if invalid is not None:
            raise ActionError(invalid[0], invalid[1])
        data.params = clean
        return None

    return check_inputs


def _make_inputs_async(entry: _Entry) -> Callable[[ActionData], Any]:
    plan = entry.plan
    name = entry.name
    version = entry.version

    async def check_inputs_async(data: ActionData) -> None:
        src = data.params
        given = src.get("apiVersion")
        clean: dict[str, Any] = {"action": name, "apiVersion": version if given is None else given}
        missing: str | None = None
        invalid: tuple[str, int] | None = None
        for key, required, default, dmode, fmt, fmode, val, vmode in plan:
            value = src.get(key, MISSING)
            if value is MISSING or value is None or (value.__class__ is str and not value):
                if dmode == _D_NONE:
                    if required:
                        if missing is None:
                            missing = key
                    elif value is not MISSING:
                        clean[key] = value
                    continue
                if dmode == _D_CONST:
                    value = default
                elif dmode == _D_COPY:
                    value = default.copy()
                elif dmode == _D_CALL0:
                    value = default()
                else:
                    value = default(data.connection)
                if _isawaitable(value):
                    value = await value
                if value is None or (value.__class__ is str and not value):
                    if required and missing is None:
                        missing = key
                    continue
            if fmode:
                try:
                    value = fmt(value) if fmode == 1 else fmt(value, data)
                    if _isawaitable(value):
                        value = await value
                except Exception as exc:
                    if invalid is None:
                        invalid = (_exc_text(exc), exc.status if isinstance(exc, ActionError) else 422)
                    continue
            if vmode:
                try:
                    ok = val(value) if vmode == 1 else val(value, data)
                    if _isawaitable(ok):
                        ok = await ok
                except Exception as exc:
                    if invalid is None:
                        invalid = (_exc_text(exc), exc.status if isinstance(exc, ActionError) else 422)
                    continue
                if ok is not True and ok is not None:
                    msg = _validation_message(key, ok)
                    if msg is not None:
                        if invalid is None:
                            invalid = (msg, 422)
                        continue
            clean[key] = value
        if missing is not None:
            raise ActionError(f"{missing} is a required parameter for this action", 422)
        if invalid is not None:
            raise ActionError(invalid[0], invalid[1])
        data.params = clean

    return check_inputs_async


def _missing_middleware_step(names: list[str], action: str) -> Callable[[ActionData], Any]:
    text = ", ".join(repr(n) for n in names)

    def fail(data: ActionData) -> None:
        raise RuntimeError(f"action {action!r} uses action middleware {text} that is not registered")

    return fail


# ----------------------------------------------------------------- registry


class ActionRegistry:
    """Every action (by name and version) and every action middleware; runs
    requests through them (:meth:`process`)."""

    def __init__(self, api: Any) -> None:
        self.api = api
        self.started_at = time.time()
        self._entries: dict[str, dict[str, _Entry]] = {}
        self._lookup: dict[str, dict[Any, _Entry]] = {}
        self._latest: dict[str, _Entry] = {}
        self._middleware: dict[str, ActionMiddleware] = {}
        self._global: list[ActionMiddleware] = []
        self._doc: dict[str, Any] | None = None
        self._tasks: set[asyncio.Future[ActionResult]] = set()
        self._general: dict[str, Any] | None = None
        self._observers: tuple[ActionObserver, ...] = ()
        self._odd_returns: set[str] = set()
        #: True while the server drains at shutdown: new requests are refused (503).
        self.refusing = False
        #: Set when the drain ran out of time: cancelled actions answer 503 instead.
        self._cut_at_shutdown = False
        self._resolve_config()

    # ------------------------------------------------------------ config

    def _resolve_config(self) -> dict[str, Any]:
        """``api.config["general"]`` (kept, and read on every request, so
        changes to it apply at once); a default while the api has no config
        yet."""
        config = getattr(self.api, "config", None)
        general = config.get("general") if isinstance(config, dict) else None
        if not isinstance(general, dict):
            return {"simultaneousActions": 5}
        self._general = general
        return general

    @property
    def simultaneous_actions(self) -> int:
        general = self._general if self._general is not None else self._resolve_config()
        return int(general.get("simultaneousActions", 5))

    # ------------------------------------------------------ registration

    def register(self, action: type[Action] | Action, *, _builtin: bool = False, _source: str = "") -> Any:
        """Register an :class:`Action` subclass (instantiated with no
        arguments) or instance. Returns its argument, so it also works as a
        class decorator. Raises ``TypeError``/``ValueError`` for an invalid
        action or a second registration of the same name and version."""
        if isinstance(action, type):
            if not issubclass(action, Action):
                raise TypeError(f"{action.__qualname__} is not an Action subclass")
            instance = action()
        elif isinstance(action, Action):
            instance = action
        else:
            raise TypeError(f"cannot register {action!r}: not an Action subclass or instance")
        entry = self._compile(instance, _builtin, _source or _where(instance))
        versions = self._entries.setdefault(entry.name, {})
        existing = versions.get(entry.key)
        if existing is not None and not existing.builtin:
            if not _builtin:
                raise ValueError(
                    f"action {entry.name!r} version {entry.version!r} is already registered (by {existing.source})"
                )
            return action  # a user action overrides the built-in one
        versions[entry.key] = entry
        self._reindex(entry.name)
        return action

    def unregister(self, name: str, version: Any = None) -> bool:
        """Remove one version (or, with ``version=None``, every version)."""
        versions = self._entries.get(name)
        if not versions:
            return False
        if version is None:
            del self._entries[name]
        else:
            key = version_key(version)
            if key not in versions:
                return False
            del versions[key]
            if not versions:
                del self._entries[name]
        self._reindex(name)
        return True

    def _reindex(self, name: str) -> None:
        self._doc = None
        versions = self._entries.get(name)
        if not versions:
            self._lookup.pop(name, None)
            self._latest.pop(name, None)
            return
        lookup: dict[Any, _Entry] = {}
        for key, entry in versions.items():
            lookup[key] = entry
            raw = entry.version
            if not isinstance(raw, bool):
                lookup.setdefault(raw, entry)
        self._lookup[name] = lookup
        self._latest[name] = versions[max(versions, key=_version_order)]

    def _compile(self, action: Action, builtin: bool, source: str) -> _Entry:
        where = f"action {getattr(action, 'name', type(action).__qualname__)!r} ({source})"
        name = getattr(action, "name", None)
        if not isinstance(name, str) or not name:
            raise TypeError(f"{where}: an action needs a non-empty str `name`")
        version = getattr(action, "version", 1)
        if isinstance(version, bool) or version_key(version) is None:
            raise TypeError(f"{where}: `version` must be an int, float or non-empty str, not {version!r}")
        run = getattr(action, "run", None)
        if not callable(run) or getattr(type(action), "run", None) is Action.run:
            raise TypeError(f"{where}: an action needs a run(self, data) method")
        inputs = getattr(action, "inputs", None) or {}
        if not hasattr(inputs, "items"):
            raise TypeError(f"{where}: `inputs` must be a dict of name -> Input or dict")
        mw = getattr(action, "middleware", None) or []
        if isinstance(mw, str) or not all(isinstance(m, str) for m in mw):
            raise TypeError(f"{where}: `middleware` must be a list of middleware names")
        plan = []
        inputs_async = False
        for key, spec in inputs.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"{where}: input names must be non-empty strings, not {key!r}")
            if key in ("action", "apiVersion"):
                raise TypeError(f"{where}: {key!r} is reserved and cannot be declared as an input")
            inp = Input.coerce(spec, f"{where}, input {key!r}")
            plan.append(
                (
                    key,
                    bool(inp.required),
                    inp.default,
                    _default_mode(inp.default),
                    inp.formatter,
                    _call_mode(inp.formatter, f"{where}, input {key!r}: formatter"),
                    inp.validator,
                    _call_mode(inp.validator, f"{where}, input {key!r}: validator"),
                )
            )
            if (
                _is_async_callable(inp.formatter)
                or _is_async_callable(inp.validator)
                or (callable(inp.default) and _is_async_callable(inp.default))
            ):
                inputs_async = True
        entry = _Entry(action, tuple(plan), inputs_async, builtin, source)
        self._build_steps(entry)
        return entry

    def _build_steps(self, entry: _Entry) -> None:
        action = entry.action
        chain: list[ActionMiddleware] = list(self._global)
        missing: list[str] = []
        for mw_name in getattr(action, "middleware", None) or ():
            mw = self._middleware.get(mw_name)
            if mw is None:
                missing.append(mw_name)
            elif mw not in chain:
                chain.append(mw)
        chain.sort(key=lambda m: m.priority)  # stable: global first on ties
        pre: list[Callable[[ActionData], Any]] = []
        if missing:
            pre.append(_missing_middleware_step(missing, entry.name))
        pre.extend(mw.pre_processor for mw in chain if mw.pre_processor is not None)
        post = [mw.post_processor for mw in chain if mw.post_processor is not None]
        entry.pre = tuple(pre)
        entry.post = tuple(post)
        entry.inputs = _make_inputs_async(entry) if entry.inputs_async else _make_inputs_sync(entry, self)
        entry.steps = (
            *((_PRE, f) for f in pre),
            (_INPUTS, entry.inputs),
            (_RUN, entry.run),
            *((_POST, f) for f in post),
        )

    def _inputs_went_async(self, entry: _Entry, data: ActionData, aw: Any) -> Any:
        """A formatter/validator/default declared sync returned a coroutine:
        compile the async input checker for this action from now on and
        redo this request's input checking with it."""
        aw.close()
        if not entry.inputs_async:
            entry.inputs_async = True
            self._build_steps(entry)
        return _make_inputs_async(entry)(data)

    def add_middleware(self, mw: ActionMiddleware) -> None:
        """Add action middleware; global middleware applies to every action
        (also ones registered earlier), named middleware to actions that list
        it."""
        if not isinstance(mw, ActionMiddleware):
            raise TypeError(f"expected an ActionMiddleware, got {type(mw).__name__}")
        if mw.name in self._middleware:
            raise ValueError(f"action middleware {mw.name!r} already exists")
        for hook in ("pre_processor", "post_processor"):
            fn = getattr(mw, hook)
            if fn is not None and not callable(fn):
                raise TypeError(f"action middleware {mw.name!r}: {hook} must be callable")
        self._middleware[mw.name] = mw
        if mw.global_:
            self._global.append(mw)
            self._global.sort(key=lambda m: m.priority)
        for versions in self._entries.values():
            for entry in versions.values():
                self._build_steps(entry)

    def remove_middleware(self, name: str) -> bool:
        mw = self._middleware.pop(name, None)
        if mw is None:
            return False
        if mw in self._global:
            self._global.remove(mw)
        for versions in self._entries.values():
            for entry in versions.values():
                self._build_steps(entry)
        return True

    @property
    def middleware(self) -> dict[str, ActionMiddleware]:
        return dict(self._middleware)

    def unresolved_middleware(self) -> list[tuple[str, str, list[str]]]:
        """``(source, action, missing names)`` for every action that lists action
        middleware nobody registered (such an action would fail every request)."""
        out = []
        for versions in self._entries.values():
            for entry in versions.values():
                names = [n for n in getattr(entry.action, "middleware", None) or () if n not in self._middleware]
                if names:
                    out.append((entry.source, entry.name, names))
        return out

    # ------------------------------------------------------------ loading

    def load_folder(self, path: Path | str, root: Path | None = None) -> int:
        """Import every ``*.py`` under ``path`` (recursively, in sorted order)
        and register each :class:`Action` subclass defined in it. Returns how
        many actions were registered. Nothing is registered when a file fails
        to import or an action in it is invalid: :class:`ActionLoadError`,
        whose one-line message names the file (relative to ``root``, the
        project folder, when given).

        A class without a ``name`` is not registered: an intermediate base
        (one the folder's actions subclass) silently, any other with a
        :class:`ProjectWarning`, since it is most likely an action whose
        ``name`` was forgotten.

        The folder is imported as a package (under a private name), so its
        files can share code with relative imports (``from .util import x``);
        a subfolder is a subpackage. Every call imports the files afresh."""
        folder = Path(path)
        if not folder.is_dir():
            raise ActionLoadError(f"{folder}: not a directory")
        try:
            modules = import_folder(folder, "actions", root)
        except ProjectError as exc:
            raise ActionLoadError(str(exc)) from exc.__cause__
        found: list[tuple[Path, type[Action]]] = []
        nameless: list[tuple[Path, type[Action]]] = []
        for file, module in modules:
            for obj in list(vars(module).values()):
                if (
                    isinstance(obj, type)
                    and issubclass(obj, Action)
                    and obj is not Action
                    and obj.__module__ == module.__name__
                    and not inspect.isabstract(obj)
                ):
                    (found if _declares_name(obj) else nameless).append((file, obj))
        for file, cls in nameless:
            if not any(issubclass(other, cls) for _, other in found):
                warnings.warn(
                    f"{where(file, root)}: {cls.__name__} is an Action without a `name`, so it is not "
                    "registered (give it name = \"...\"; a base class is skipped only when an action "
                    "subclasses it)",
                    ProjectWarning,
                    stacklevel=2,
                )
        done: list[tuple[str, Any]] = []
        try:
            for file, cls in found:
                try:
                    self.register(cls, _source=where(file, root))
                except Exception as exc:
                    raise ActionLoadError(f"{where(file, root)}: {cls.__name__}: {exc}") from exc
                done.append((cls.name, cls.version))
        except ActionLoadError:
            for name, version in done:
                self.unregister(name, version)
            raise
        return len(done)

    def load_builtins(self) -> None:
        """Register the built-in ``status`` and ``documentation`` actions
        (a project action of the same name and version wins)."""
        from hero_fast.actions.builtins import DocumentationAction, StatusAction

        for action in (StatusAction(self), DocumentationAction(self)):
            versions = self._entries.get(action.name, {})
            if version_key(action.version) in versions:
                continue
            self.register(action, _builtin=True, _source="hero_fast built-in")

    # ------------------------------------------------------------ queries

    def get(self, name: str, version: Any = None) -> Action | None:
        """The action ``name`` at ``version`` (latest when None), or None."""
        entry = self._find(name, version)
        return None if entry is None else entry.action

    def _find(self, name: Any, version: Any) -> _Entry | None:
        if name.__class__ is not str:
            return None
        if version is None:
            return self._latest.get(name)
        lookup = self._lookup.get(name)
        if lookup is None:
            return None
        cls = version.__class__
        if cls is str or cls is int:
            entry = lookup.get(version)
            if entry is not None:
                return entry
        key = version_key(version)
        return None if key is None else lookup.get(key)

    def versions(self, name: str) -> list[Any]:
        """The registered versions of ``name``, oldest first."""
        versions = self._entries.get(name, {})
        return [versions[k].version for k in sorted(versions, key=_version_order)]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __len__(self) -> int:
        return sum(len(v) for v in self._entries.values())

    def __iter__(self) -> Iterator[Action]:
        for name in sorted(self._entries):
            versions = self._entries[name]
            for key in sorted(versions, key=_version_order):
                yield versions[key].action

    def documentation(self) -> dict[str, Any]:
        """``{name: {str(version): {name, version, description, inputs,
        outputExample}}}``; each input ``{"required": bool, "default": value}``
        (a callable default shows as None) plus ``description`` when set."""
        doc = self._doc
        if doc is None:
            doc = {}
            for name in sorted(self._entries):
                versions = self._entries[name]
                out: dict[str, Any] = {}
                for key in sorted(versions, key=_version_order):
                    entry = versions[key]
                    action = entry.action
                    inputs: dict[str, Any] = {}
                    for spec in (getattr(action, "inputs", None) or {}).items():
                        inputs[spec[0]] = _input_doc(Input.coerce(spec[1]))
                    out[str(action.version)] = {
                        "name": name,
                        "version": action.version,
                        "description": getattr(action, "description", "") or "",
                        "inputs": inputs,
                        "outputExample": _json_safe(getattr(action, "output_example", {})),
                    }
                doc[name] = out
            self._doc = doc
        return _copy_doc(doc)

    # ---------------------------------------------------------- processing

    def add_observer(self, observer: ActionObserver) -> None:
        """Call ``observer(connection, result)`` after every action request — success,
        error, unknown action, refusal — once its :class:`ActionResult` is known (status,
        duration, params). The access log and metrics use this; so can project code (from an
        initializer). An observer's exception is logged, never raised."""
        self._observers = (*self._observers, observer)

    def remove_observer(self, observer: ActionObserver) -> bool:
        if observer not in self._observers:
            return False
        self._observers = tuple(o for o in self._observers if o is not observer)
        return True

    def process(self, connection: Connection, params: dict[str, Any]) -> ActionResult | Awaitable[ActionResult]:
        """Run the action ``params["action"]`` (version ``params["apiVersion"]``,
        latest when absent) for ``connection``.

        Returns an :class:`ActionResult` directly when everything finished
        without waiting, else an awaitable (an :class:`asyncio.Task`) that
        resolves to one. Never raises for a failing action, input or
        middleware: those are error results (``response["error"]``)."""
        result = self._process(connection, params)
        if self._observers:
            if isinstance(result, ActionResult):
                self._notify(connection, result)
            elif isinstance(result, asyncio.Future):
                result.add_done_callback(lambda task: self._notify_done(connection, task))
        return result

    def _notify(self, connection: Connection, result: ActionResult) -> None:
        for observer in self._observers:
            try:
                observer(connection, result)
            except Exception:
                log.exception("action observer %r failed", observer)

    def _notify_done(self, connection: Connection, task: asyncio.Future[ActionResult]) -> None:
        if not task.cancelled() and task.exception() is None:
            self._notify(connection, task.result())

    def _process(self, connection: Connection, params: dict[str, Any]) -> ActionResult | Awaitable[ActionResult]:
        t0 = _perf()
        general = self._general
        if general is None:
            general = self._resolve_config()
        if connection.pending_actions >= general.get("simultaneousActions", 5):
            return self._early(params, TOO_MANY, 429, t0)
        if self.refusing:
            return self._early(params, SHUTTING_DOWN, 503, t0)
        connection.total_actions += 1
        name = params.get("action")
        version = params.get("apiVersion")
        if version is None and name.__class__ is str:
            entry = self._latest.get(name)
        else:
            entry = self._find(name, version)
        if entry is None:
            return self._early(params, UNKNOWN, 404, t0)

        connection.pending_actions += 1
        pre = entry.pre
        data = _new(ActionData)  # what ActionData.__init__ does, minus a call
        data.connection = connection
        data.action_template = entry.action
        data.action = entry.name
        data.params = dict(params) if pre else params
        data.response = {}
        data.status = 200
        data.to_process = True
        # The steps, run now; an awaitable a step returns is run eagerly and
        # only when it suspends does the rest go to a Task (_schedule), at
        # step index ``i`` of entry.steps (pre..., inputs, run, post...).
        try:
            i = 0
            if pre:
                for fn in pre:
                    i += 1
                    r = fn(data)
                    if r is not None:
                        if r.__class__ is _Coro:
                            r = _start_task(r)
                            if r.__class__ is not tuple:
                                return self._schedule(data, entry, i, r, t0)
                        elif _isawaitable(r):
                            done, r = run_eager(r)
                            if not done:
                                return self._schedule(data, entry, i, r, t0)
            i += 1
            if entry.plan:
                r = entry.inputs(data)
                if r is not None:  # async inputs (a coroutine)
                    done, r = run_eager(r)
                    if not done:
                        return self._schedule(data, entry, i, r, t0)
            else:  # no inputs: only action and apiVersion are kept
                given = data.params.get("apiVersion")
                data.params = {"action": entry.name, "apiVersion": entry.version if given is None else given}
            if data.to_process:
                i += 1
                r = entry.run(data)
                if r is not None:
                    if r.__class__ is dict:
                        data.response.update(r)
                    elif r.__class__ is _Coro and _EAGER_TASKS:
                        r = _start_task(r)  # an eager Task (Python >= 3.12)
                        if r.__class__ is not tuple:
                            return self._schedule(data, entry, i, r, t0)
                        r = r[1]
                        if r is not None:
                            if r.__class__ is dict or isinstance(r, dict):
                                data.response.update(r)
                            else:
                                self._ignored_return(entry.name, r)
                    elif r.__class__ is _Coro:
                        # _eager.start() inlined (engines: see hero_fast._eager)
                        try:
                            engine = _pop_engine()
                        except IndexError:
                            engine = new_engine()
                        y = engine.send(r)
                        if y.__class__ is tuple and y and y[0] is _DONE:
                            _push_engine(engine)
                            r = y[1]
                            if r is not None:
                                if r.__class__ is dict or isinstance(r, dict):
                                    data.response.update(r)
                                else:
                                    self._ignored_return(entry.name, r)
                        else:
                            return self._schedule(data, entry, i, EngineResume(engine, y), t0)
                    elif _isawaitable(r):
                        done, r = run_eager(r)
                        if not done:
                            return self._schedule(data, entry, i, r, t0)
                        if isinstance(r, dict):
                            data.response.update(r)
                        elif r is not None:
                            self._ignored_return(entry.name, r)
                    elif isinstance(r, dict):
                        data.response.update(r)
                    else:
                        self._ignored_return(entry.name, r)
                post = entry.post
                if post:
                    for fn in post:
                        i += 1
                        r = fn(data)
                        if r is not None:
                            if r.__class__ is _Coro:
                                r = _start_task(r)
                                if r.__class__ is not tuple:
                                    return self._schedule(data, entry, i, r, t0)
                            elif _isawaitable(r):
                                done, r = run_eager(r)
                                if not done:
                                    return self._schedule(data, entry, i, r, t0)
        except Exception as exc:
            self._fail(data, exc)
        except asyncio.CancelledError as exc:  # raised with no Task being cancelled
            self._fail(data, exc)
        except BaseException:
            connection.pending_actions -= 1
            raise
        connection.pending_actions -= 1
        response = data.response
        if data.status == 200 and "error" in response and response["error"]:
            data.status = 500  # the action put an error in its response itself
        data.duration = (_perf() - t0) * 1000.0
        return data

    def _schedule(self, data: ActionData, entry: _Entry, i: int, aw: Any, t0: float) -> Awaitable[ActionResult]:
        """Step ``i - 1`` suspended in ``aw``: continue in a Task."""
        data._released = False
        # Start _finish now: it runs up to ``await aw``, where it yields what
        # the action is blocked on. Wrapped in a Resume, the Task waits on that
        # directly, and a cancellation arriving even before the Task's first
        # step travels through _finish (releasing the slot) into the action.
        fin = self._finish(data, entry.steps, i, aw, t0)
        coro: Any = Resume(fin, fin.send(None))
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return coro  # type: ignore[no-any-return]  # no loop (a sync caller): the caller drives it
        try:
            task = loop.create_task(coro)
        except BaseException:  # e.g. a closed loop: process() reports it and releases the slot
            data._released = True
            fin.close()
            raise
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _finish(self, data: ActionData, steps: tuple[Step, ...], i: int, aw: Any, t0: float) -> ActionResult:
        try:
            try:
                r = await aw
                if steps[i - 1][0] == _RUN and r is not None:
                    self._merge_late(data, r)
                n = len(steps)
                while i < n:
                    kind, fn = steps[i]
                    i += 1
                    if kind == _RUN and not data.to_process:
                        break
                    r = fn(data)
                    if r is not None:
                        if r.__class__ is _Coro or _isawaitable(r):
                            r = await r
                        if kind == _RUN:
                            self._merge_late(data, r)
            except Exception as exc:
                self._fail(data, exc)
            except asyncio.CancelledError:
                if not self._cut_at_shutdown:
                    raise
                data.status = 503
                data.response["error"] = "the server shut down before this action finished"
        finally:
            self._release(data)
        response = data.response
        if data.status == 200 and "error" in response and response["error"]:
            data.status = 500
        data.duration = (_perf() - t0) * 1000.0
        return data

    def _merge_late(self, data: ActionData, r: Any) -> None:
        """``run``'s return value, once it finished in a Task."""
        if isinstance(r, dict):
            data.response.update(r)
        elif r is not None:
            self._ignored_return(data.action, r)

    def _ignored_return(self, action: str, value: Any) -> None:
        if action not in self._odd_returns:
            self._odd_returns.add(action)
            log.warning(
                "action %r: run() returned %s, which is ignored; return a dict (merged into the response) "
                "or None (warned once per action)",
                action,
                type(value).__name__,
            )

    @staticmethod
    def _release(data: ActionData) -> None:
        if not data._released:
            data._released = True
            data.connection.pending_actions -= 1

    @staticmethod
    def _fail(data: ActionData, exc: BaseException) -> None:
        if isinstance(exc, ActionError):
            data.status = exc.status
            data.response["error"] = str(exc.message)
        else:
            data.status = 500
            data.response["error"] = internal_error(log, f"action {data.action!r}", exc)

    @staticmethod
    def _early(params: dict[str, Any], text: str, status: int, t0: float) -> ActionResult:
        name = params.get("action")
        return ActionResult(
            {"error": text},
            status,
            name if isinstance(name, str) else None,
            (_perf() - t0) * 1000.0,
            params,
        )

    # ------------------------------------------------------------- shutdown

    @property
    def in_flight(self) -> int:
        """Actions currently running in a Task (suspended ones)."""
        return len(self._tasks)

    async def drain(self, timeout: float | None = None) -> bool:
        """Wait until no action Task is running (at most ``timeout`` s).
        True when none is left."""
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        while self._tasks:
            remaining = None
            if deadline is not None:
                remaining = deadline - asyncio.get_running_loop().time()
                if remaining <= 0:
                    return False
            await asyncio.wait(list(self._tasks), timeout=remaining)
        return True

    async def cut(self, grace: float = 1.0) -> int:
        """Cancel every action still running (shutdown ran out of time). Each one answers
        its caller with a 503 error (``the server shut down before this action finished``)
        instead of vanishing; waits up to ``grace`` s for those replies. Returns how many
        were cut."""
        tasks = list(self._tasks)
        if not tasks:
            return 0
        self._cut_at_shutdown = True
        for task in tasks:
            task.cancel()
        await asyncio.wait(tasks, timeout=grace)
        return len(tasks)


# ----------------------------------------------------------------- helpers


def _where(action: Action) -> str:
    cls = type(action)
    module = sys.modules.get(cls.__module__)
    file = getattr(module, "__file__", None)
    return f"{file or cls.__module__}:{cls.__qualname__}"


def _declares_name(cls: type) -> bool:
    for klass in cls.__mro__:
        if klass is Action:
            return False
        if "name" in vars(klass):
            return True
    return False


def _json_safe(value: Any) -> Any:
    try:
        import orjson

        orjson.dumps(value)
        return value
    except Exception:
        return repr(value)


def _input_doc(inp: Input) -> dict[str, Any]:
    default = inp.default
    if default is MISSING or callable(default):
        default = None
    out: dict[str, Any] = {"required": bool(inp.required), "default": _json_safe(default)}
    if inp.description:
        out["description"] = inp.description
    return out


def _copy_doc(doc: dict[str, Any]) -> dict[str, Any]:
    # two levels of dicts so callers can't corrupt the cache by mutating it
    return {
        name: {v: {**info, "inputs": {k: dict(i) for k, i in info["inputs"].items()}} for v, info in versions.items()}
        for name, versions in doc.items()
    }
