"""Hiding secrets: what the logs and HTTP replies never show (passwords, tokens, cookies).

A name is secret when, lower-cased and without ``-``/``_``, it contains one of the configured
names (``logging.redact``; ``token`` also covers ``access_token`` and ``X-Auth-Token``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote

__all__ = ["DEFAULT_REDACT", "REDACTED", "Redactor", "redactor_for"]

REDACTED = "[REDACTED]"
DEFAULT_REDACT = ("password", "passwd", "secret", "token", "authorization", "cookie", "apikey", "api_key")


def _norm(name: str) -> str:
    return name.lower().replace("-", "").replace("_", "")


class Redactor:
    """Hides the values of secret-looking names: a name matches when, lower-cased and
    without ``-``/``_``, it contains one of ``names`` (so ``token`` also covers
    ``access_token`` and ``X-Auth-Token``, and ``apikey`` covers ``X-Api-Key``)."""

    __slots__ = ("_search", "names")

    def __init__(self, names: Iterable[str] = DEFAULT_REDACT) -> None:
        self.names = tuple(sorted({_norm(n) for n in names if n}))
        pattern = re.compile("|".join(map(re.escape, self.names))) if self.names else None
        self._search = pattern.search if pattern is not None else None

    def is_secret(self, name: Any) -> bool:
        if not isinstance(name, str) or self._search is None:
            return False
        return self._search(_norm(name)) is not None

    def params(self, value: Any, depth: int = 0) -> Any:
        """A copy of ``value`` (params: dicts and lists, nested) with secret keys' values hidden."""
        if depth > 32:
            return "..."
        if isinstance(value, Mapping):
            return {k: REDACTED if self.is_secret(k) else self.params(v, depth + 1) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [self.params(v, depth + 1) for v in value]
        return value

    def query(self, query: str) -> str:
        """A query string with the values of secret parameters hidden."""
        if not query:
            return query
        parts = []
        for key, value in parse_qsl(query, keep_blank_values=True):
            shown = REDACTED if self.is_secret(key) else value
            parts.append(f"{quote(key, safe='')}={quote(shown, safe='[]')}")
        return "&".join(parts)

    def target(self, target: str) -> str:
        """A request target (``/path?query``) with secret query values hidden."""
        path, sep, query = target.partition("?")
        return path + sep + self.query(query) if sep else path

    def cookies(self, header: str) -> str:
        """A ``Cookie`` header with every value hidden (names kept)."""
        names = [part.split("=", 1)[0].strip() for part in header.split(";") if part.strip()]
        return "; ".join(f"{n}={REDACTED}" for n in names)

    def headers(self, headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
        """Headers with cookies and secret-looking values (``Authorization``, ...) hidden."""
        out = []
        for name, value in headers:
            low = name.lower()
            if low == "cookie":
                out.append((name, self.cookies(value)))
            elif low == "set-cookie" or self.is_secret(name):
                out.append((name, REDACTED))
            else:
                out.append((name, value))
        return out


def redactor_for(config: Mapping[str, Any]) -> Redactor:
    """The redactor of an app: ``logging.redact`` and the fingerprint cookie's name."""
    names = list((config.get("logging") or {}).get("redact", DEFAULT_REDACT))
    cookie_key = config.get("servers", {}).get("web", {}).get("fingerprint", {}).get("cookieKey")
    if cookie_key:
        names.append(cookie_key)
    return Redactor(names)
