"""Unmask 64 KiB in place: hero-fast's kernel (the one the parser uses) and the
websockets package's C speedup (``websockets.frames.apply_mask``)."""

from __future__ import annotations

from _benchutil import record
from websockets.frames import apply_mask

from hero_fast._core import _apply_mask

N = 65536
KEY = b"\x37\xfa\x21\x3d"


def test_unmask_64k_hero_fast(benchmark):
    buf = bytearray(bytes(i & 0xFF for i in range(N)))
    benchmark.group = "unmask 64KiB"
    benchmark(_apply_mask, buf, KEY, 1)  # phase 1: the unaligned case
    record(benchmark, "unmask 64KiB hero-fast", N, "GB/s")


def test_unmask_64k_websockets(benchmark):
    data = bytes(i & 0xFF for i in range(N))
    benchmark.group = "unmask 64KiB"
    out = benchmark(apply_mask, data, KEY)  # returns a new bytes object
    assert len(out) == N
    record(benchmark, "unmask 64KiB websockets", N, "GB/s")
