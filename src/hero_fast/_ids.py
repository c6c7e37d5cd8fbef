"""Identifiers that must be unique but need not be secret (request ``messageId``s)."""

from __future__ import annotations

import itertools
import os
import uuid

__all__ = ["uuid4_text"]


def _fresh() -> None:
    """This process's random ``xxxxxxxx-xxxx-4xxx-[89ab]xxx-`` (from one ``uuid.uuid4()``, so
    the version and variant bits are right) and a counter starting anywhere: ids never repeat
    within a process, and processes differ by the prefix's 74 random bits."""
    global _prefix, _counter
    _prefix = str(uuid.uuid4())[:24]
    _counter = itertools.count(int.from_bytes(os.urandom(5), "big"))


_prefix = ""
_counter = itertools.count()
_fresh()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_fresh)


def uuid4_text() -> str:
    """An id in a version-4 UUID's text form: the process's random prefix and a counter (the
    last 12 hex digits). No system call and no 128-bit random number per request:
    ``uuid.uuid4()`` was ~20% of an action round trip, formatting 128 random bits still ~6%."""
    return f"{_prefix}{next(_counter) & 0xFFFFFFFFFFFF:012x}"
