"""Fuzzing the inflater and the deflate path of the frame parser.

1. Any bytes, any limit: ``Inflater`` returns at most ``limit`` bytes or refuses
   (ValueError for invalid data, OverflowError past the limit) — and agrees with
   Python's zlib on every input, refusals included; a refusal resets it.
   A bomb never makes it hold more than ``limit + 1`` bytes (its output buffer,
   measured with tracemalloc), a 64 MiB one against a 16 MiB limit included.
2. Streams of compressed, corrupted and plain frames into a deflate codec, in any
   chunking: events, or FAILED with a documented error and close code (1002, 1007,
   1009); the chunking never changes the outcome.
"""

from __future__ import annotations

import sys
import tracemalloc
import zlib
from pathlib import Path

import pytest
from _fuzzsupport import fuzz_settings
from hypothesis import example, given
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "core"))
from _wsref import KEY, OP_BINARY, OP_CONT, OP_PING, OP_TEXT, frame, run

from hero_fast._core import PROTOCOL_ERRORS, DeflateParams
from hero_fast._deflate import Inflater


def compress(data: bytes, wbits: int = 15, level: int = 6) -> bytes:
    co = zlib.compressobj(level, zlib.DEFLATED, -wbits)
    return (co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]


plain = st.one_of(st.binary(max_size=300), st.integers(0, 5000).map(lambda n: b"a" * n),
                  st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")))


@st.composite
def deflate_input(draw) -> bytes:  # type: ignore[no-untyped-def]
    kind = draw(st.integers(0, 3))
    if kind == 0:
        return draw(st.binary(max_size=200))
    data = compress(draw(plain), draw(st.integers(9, 15)), draw(st.integers(0, 9)))
    if kind == 1:
        return data
    # corrupt: flip, cut or splice bytes
    b = bytearray(data)
    for pos, val in draw(st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4)):
        if b:
            b[pos % len(b)] = val
    if kind == 3 and b:
        del b[draw(st.integers(0, len(b) - 1)) :]
    return bytes(b)


PROBE = compress(b"probe")


def zlib_reference(data: bytes, cap: int) -> bytes:
    """What the inflater must produce, by Python's zlib: after a final (BFINAL)
    block the rest of the message starts a new stream (RFC 7692 7.2.3.4), where
    a single decompressobj would stop and leave it in ``unused_data``."""
    out = b""
    rest = data
    while rest and len(out) <= cap:
        d = zlib.decompressobj(-15)
        out += d.decompress(rest, cap + 1 - len(out))
        rest = d.unused_data if d.eof else b""
    return out


@fuzz_settings(400)
@given(deflate_input(), st.integers(0, 20000))
@example(b"\x03\xb0\x12\x00", 1)  # a final block, then a second stream (found by this test)
def test_inflater_output_is_capped_and_agrees_with_zlib(data: bytes, limit: int) -> None:
    try:
        reference = zlib_reference(data + b"\x00\x00\xff\xff", limit)
        ref_ok = True
    except zlib.error:
        ref_ok = False
    inf = Inflater(15)
    try:
        out = inf.decompress(data, limit)
    except OverflowError:
        # zlib, capped at limit + 1 bytes, got past the limit too (or met invalid data later)
        assert not ref_ok or len(reference) > limit
    except ValueError:
        assert not ref_ok  # only data zlib refuses is refused as invalid
    else:
        assert ref_ok and len(out) <= limit and out == reference
        return
    # a refusal resets the inflater: the next message inflates as if it were the first
    assert inf.decompress(PROBE, 100) == b"probe"


# What a refused bomb may allocate besides the inflater's output buffer: the OverflowError
# and its traceback (measured: 496 bytes on CPython 3.11 once warmed up).
SLACK = 1024


def zero_bomb(size: int) -> bytes:
    """``size`` zero bytes, deflated at level 9 without ever holding them all."""
    co = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = bytes(min(size, 1 << 20))
    parts = [co.compress(block[: min(len(block), size - done)]) for done in range(0, size, len(block))]
    return (b"".join(parts) + co.flush(zlib.Z_SYNC_FLUSH))[:-4]


def peak_while_refusing(bomb: bytes, limit: int) -> int:
    """Bytes traced at the peak of a fresh inflater's refusal of ``bomb`` (the output
    buffer comes from PyMem, which tracemalloc sees)."""
    with pytest.raises(OverflowError):  # warm-up: first-use allocations are not the inflater's
        Inflater(15).decompress(zero_bomb(1 << 16), 0)
    inf = Inflater(15)
    refused = False
    tracemalloc.start()
    try:
        inf.decompress(bomb, limit)
    except OverflowError:
        refused = True
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert refused
    assert inf.decompress(PROBE, 100) == b"probe"  # the refusal reset it
    return peak


def test_a_64_mib_bomb_against_a_16_mib_limit_never_holds_more_than_the_limit() -> None:
    limit = 16 << 20
    bomb = zero_bomb(64 << 20)
    assert len(bomb) < 70_000
    assert peak_while_refusing(bomb, limit) <= limit + 1 + SLACK


@fuzz_settings(200)
@given(st.integers(1, 30), st.integers(0, 2000))
def test_bombs_never_allocate_past_the_limit(mib: int, limit: int) -> None:
    # (mib << 16) zero bytes: always past the limit
    assert peak_while_refusing(zero_bomb(mib << 16), limit) <= limit + 1 + SLACK


@st.composite
def deflate_stream(draw) -> bytes:  # type: ignore[no-untyped-def]
    parts = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.integers(0, 5))
        if kind == 0:  # a whole compressed message
            parts.append(frame(draw(st.sampled_from([OP_TEXT, OP_BINARY])), compress(draw(plain)), rsv=4, key=KEY))
        elif kind == 1:  # fragmented compressed message
            body = compress(draw(plain))
            cut = draw(st.integers(0, len(body)))
            parts.append(frame(OP_BINARY, body[:cut], fin=False, rsv=4, key=KEY)
                         + frame(OP_PING, b"p", key=KEY)
                         + frame(OP_CONT, body[cut:], rsv=draw(st.sampled_from([0, 0, 0, 4])), key=KEY))
        elif kind == 2:  # corrupted compressed data
            parts.append(frame(OP_TEXT, draw(deflate_input()), rsv=4, key=KEY))
        elif kind == 3:  # plain message
            parts.append(frame(OP_TEXT, draw(st.text(max_size=20)), key=KEY))
        elif kind == 4:  # bomb
            parts.append(frame(OP_BINARY, compress(b"\0" * draw(st.integers(100, 5000))), rsv=4, key=KEY))
        else:  # random rsv on anything
            parts.append(frame(draw(st.sampled_from([0, 1, 2, 8, 9, 10])), draw(st.binary(max_size=30)),
                               rsv=draw(st.integers(0, 7)), key=KEY))
    return b"".join(parts)


@fuzz_settings(300)
@given(deflate_stream(), st.integers(0, 3))
def test_deflate_codec_outcomes_are_documented_and_chunking_free(data: bytes, seed: int) -> None:
    kw = dict(deflate=DeflateParams(True, True), max_message_size=2000, max_fragments=8)
    whole = run(data, "whole", **kw)
    for chunking, s in (("bytewise", 0), ("random", seed)):
        other = run(data, chunking, seed=s, **kw)
        assert other.key() == whole.key()
    if whole.error is not None:
        assert whole.error in PROTOCOL_ERRORS
        assert whole.close_code == PROTOCOL_ERRORS[whole.error][0] in (1002, 1007, 1009)
    for ev in whole.events:
        if ev[0] in ("text", "binary"):
            assert len(ev[1].encode() if isinstance(ev[1], str) else ev[1]) <= 2000
