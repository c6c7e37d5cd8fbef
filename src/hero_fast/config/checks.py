"""Small value checks used by the option table (`hero_fast.config.defaults`).

A check is a callable ``value -> error text | None`` with a ``text`` attribute that
describes what it accepts; the text is also printed in the generated reference.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

__all__ = [
    "Check",
    "any_of",
    "boolean",
    "callable_or_ref",
    "constant",
    "integer",
    "list_of_str",
    "mapping",
    "networks",
    "nothing",
    "number",
    "one_of",
    "path",
    "string",
]


class Check:
    """``check(value)`` returns None when ``value`` is acceptable, else what was expected.
    ``explains``: its messages say what is wrong in the value itself (e.g. which route), so
    the whole value is not repeated after them."""

    __slots__ = ("explains", "fn", "text")

    def __init__(self, fn: Callable[[Any], bool | str], text: str, explains: bool = False) -> None:
        self.fn = fn
        self.text = text
        self.explains = explains

    def __call__(self, value: Any) -> str | None:
        ok = self.fn(value)
        if ok is True:
            return None
        if isinstance(ok, str):
            return ok
        return f"must be {self.text}"

    def __repr__(self) -> str:
        return f"Check({self.text})"


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def integer(lo: int | None = None, hi: int | None = None) -> Check:
    if lo is not None and hi is not None:
        text = f"an integer from {lo} to {hi}"
    elif lo is not None:
        text = f"an integer >= {lo}"
    else:
        text = "an integer"

    def fn(v: Any) -> bool:
        return _is_int(v) and (lo is None or v >= lo) and (hi is None or v <= hi)

    return Check(fn, text)


def number(lo: float | None = 0) -> Check:
    text = "a number" if lo is None else f"a number >= {lo}"
    return Check(lambda v: _is_num(v) and (lo is None or v >= lo), text)


boolean = Check(lambda v: isinstance(v, bool), "true or false")


def string(nonempty: bool = False, prefix: str | None = None) -> Check:
    text = "a non-empty string" if nonempty else "a string"
    if prefix:
        text = f'a string starting with "{prefix}"'

    def fn(v: Any) -> bool:
        if not isinstance(v, str):
            return False
        if nonempty and not v:
            return False
        return prefix is None or v.startswith(prefix)

    return Check(fn, text)


nothing = Check(lambda v: v is None, "None")


def constant(value: Any, why: str = "") -> Check:
    """Exactly ``value``; ``why`` explains the refusal of anything else."""
    text = repr(value)

    def fn(v: Any) -> bool | str:
        if v == value and type(v) is type(value):
            return True
        return f"must be {text}" + (f" ({why})" if why else "")

    return Check(fn, text)


def one_of(*values: Any) -> Check:
    text = "one of " + ", ".join(repr(v) for v in values)
    return Check(lambda v: any(v == x and type(v) is type(x) for x in values), text)


def any_of(*checks: Check) -> Check:
    text = " or ".join(c.text for c in checks)
    return Check(lambda v: any(c(v) is None for c in checks), text)


list_of_str = Check(
    lambda v: isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v), "a list of strings"
)


def mapping(values: Check | None = None, text: str | None = None) -> Check:
    def fn(v: Any) -> bool:
        if not isinstance(v, Mapping) or not all(isinstance(k, str) for k in v):
            return False
        return values is None or all(values(x) is None for x in v.values())

    if text is None:
        text = "a dict with string keys" if values is None else f"a dict of string to {values.text}"
    return Check(fn, text)


path = Check(lambda v: isinstance(v, (str, os.PathLike)), "a file path")


def _networks(v: Any) -> bool | str:
    if not isinstance(v, (list, tuple)) or not all(isinstance(x, str) for x in v):
        return False
    for x in v:
        try:
            ipaddress.ip_network(x, strict=False)
        except ValueError:
            return f"must be a list of IP addresses or CIDR networks: {x!r} is neither"
    return True


networks = Check(_networks, 'a list of IP addresses or CIDR networks ("10.0.0.0/8", "::1")')

_REF = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")

callable_or_ref = Check(
    lambda v: callable(v) or (isinstance(v, str) and _REF.match(v) is not None),
    'a callable or a "package.module:function" string',
)
