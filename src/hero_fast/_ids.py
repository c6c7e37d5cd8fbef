"""Identifiers that must be unique but need not be secret (request ``messageId``s)."""

from __future__ import annotations

from random import getrandbits

__all__ = ["uuid4_text"]

# version 4, variant 10: the bits uuid.uuid4() fixes
_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_SET = (0x4000 << 64) | (0x8000 << 48)


def uuid4_text() -> str:
    """A version-4 UUID in its usual text form, from the fast PRNG: no system call,
    unlike ``uuid.uuid4()`` (``random`` reseeds itself in a forked worker)."""
    h = f"{(getrandbits(128) & _CLEAR) | _SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
