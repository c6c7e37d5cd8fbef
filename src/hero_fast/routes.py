"""HTTP routes to actions, in actionhero's shape (config ``routes``, e.g. ``config/routes.py``)::

    DEFAULT = {
        "routes": {
            "get": [
                {"path": "/users/:id", "action": "user"},
                {"path": "/files/:path", "action": "download", "matchTrailingPathParts": True},
                {"path": "/reports/:year(\\\\d{4})", "action": "report", "apiVersion": 2},
            ],
            "post": [{"path": "/users", "action": "createUser"}],
            "all": [{"path": "/ping", "action": "status"}],
        }
    }

Paths are matched under the actions prefix (``/api/users/7``). A part ``:name`` captures one
path segment into ``params[name]`` (percent-decoded); ``:name(regex)`` only matches when the
whole segment matches the regex (actionhero searches; hero-fast matches the whole segment:
``\\d+`` means digits only); with ``matchTrailingPathParts`` the last variable takes the
rest of the path, slashes included. Static parts compare case-insensitively. Path params
override query and body params of the same name. ``all`` routes apply to every method (after
the method's own); ``HEAD`` uses the ``get`` routes when it has none. ``/api/<action>`` (and
``/api?action=``) keep working for every action.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

__all__ = ["VERBS", "Route", "RouteTable", "RoutesError", "check_routes"]

VERBS = ("get", "post", "put", "patch", "delete", "head", "options", "all")
_KEYS = frozenset({"path", "action", "apiVersion", "matchTrailingPathParts"})


class RoutesError(ValueError):
    """The ``routes`` config is malformed; the message names the route (``get[0]``)."""


class Route:
    """One compiled route: static parts are lower-cased strings, variables ``(name, regex)``."""

    __slots__ = ("action", "api_version", "method", "parts", "path", "trailing")

    def __init__(self, method: str, spec: Mapping[str, Any], where: str) -> None:
        if not isinstance(spec, Mapping):
            raise RoutesError(f"{where} must be a dict with path and action, got {type(spec).__name__}")
        unknown = sorted(map(str, set(spec) - _KEYS))
        if unknown:
            raise RoutesError(f"{where}: unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(_KEYS))}")
        path, action = spec.get("path"), spec.get("action")
        if not isinstance(path, str) or not path.startswith("/"):
            raise RoutesError(f"{where}: path must be a string starting with '/', got {path!r}")
        if not isinstance(action, str) or not action:
            raise RoutesError(f"{where}: action must be a non-empty string, got {action!r}")
        trailing = spec.get("matchTrailingPathParts", False)
        if not isinstance(trailing, bool):
            raise RoutesError(f"{where}: matchTrailingPathParts must be true or false")
        self.method = method
        self.path = path
        self.action = action
        self.api_version = spec.get("apiVersion")
        self.trailing = trailing
        parts: list[str | tuple[str, re.Pattern[str] | None]] = []
        for part in (p for p in path.split("/") if p):
            if part.startswith(":"):
                name, paren, rest = part[1:].partition("(")
                if not name:
                    raise RoutesError(f"{where}: {part!r} names no variable")
                pattern = None
                if paren:
                    if not rest.endswith(")"):
                        raise RoutesError(f"{where}: {part!r}: the regex must end with ')'")
                    try:
                        pattern = re.compile(rest[:-1])
                    except re.error as exc:
                        raise RoutesError(f"{where}: {part!r}: invalid regex: {exc}") from None
                parts.append((name, pattern))
            else:
                parts.append(part.lower())
        if trailing and (not parts or isinstance(parts[-1], str)):
            raise RoutesError(f"{where}: matchTrailingPathParts needs a path ending in a :variable")
        self.parts = tuple(parts)

    def match(self, segments: list[str]) -> dict[str, str] | None:
        """The path params when ``segments`` (raw, still percent-encoded) match, else None."""
        parts = self.parts
        n = len(parts)
        if len(segments) != n and not (self.trailing and len(segments) > n):
            return None
        params: dict[str, str] = {}
        for i, part in enumerate(parts):
            if self.trailing and i == n - 1:
                raw = "/".join(segments[i:])
            else:
                raw = segments[i]
            if isinstance(part, str):
                if unquote(raw).lower() != part:
                    return None
                continue
            name, pattern = part
            value = unquote(raw)
            if pattern is not None and pattern.fullmatch(value) is None:
                return None
            params[name] = value
        return params

    def __repr__(self) -> str:
        return f"<Route {self.method.upper()} {self.path} -> {self.action}>"


class RouteTable:
    """Every route by method, in the order given (``all`` routes after each method's own)."""

    def __init__(self, config: Mapping[str, Any] | None) -> None:
        self.routes: list[Route] = []
        by_method: dict[str, list[Route]] = {}
        if not config:
            config = {}
        if not isinstance(config, Mapping):
            raise RoutesError(f"routes must be a dict of method to a list of routes, got {type(config).__name__}")
        for method, specs in config.items():
            if method not in VERBS:
                raise RoutesError(f"unknown method {method!r}; allowed: {', '.join(VERBS)}")
            if not isinstance(specs, (list, tuple)):
                raise RoutesError(f"{method} must be a list of routes, not {type(specs).__name__}")
            compiled = [Route(method, spec, f"{method}[{i}]") for i, spec in enumerate(specs)]
            by_method[method] = compiled
            self.routes.extend(compiled)
        every = by_method.get("all", [])
        self._by_method = {m: by_method.get(m, []) + every for m in VERBS if m != "all"}
        if "head" not in by_method:
            self._by_method["head"] = self._by_method["get"]

    def __bool__(self) -> bool:
        return bool(self.routes)

    def match(self, method: str, segments: list[str]) -> tuple[Route, dict[str, str]] | None:
        """The first route of ``method`` matching ``segments``, with its path params."""
        for route in self._by_method.get(method.lower(), ()):
            params = route.match(segments)
            if params is not None:
                return route, params
        return None


def check_routes(value: Any) -> str | bool:
    """A config check: True, or why ``value`` is not a valid ``routes`` table."""
    try:
        RouteTable(value)
    except RoutesError as exc:
        return str(exc)
    return True
