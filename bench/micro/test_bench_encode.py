"""Encode one frame at 64 B, 1 KiB, 64 KiB: server (unmasked) and client
(masked) frames; websockets' Frame.serialize measured alongside."""

from __future__ import annotations

import pytest
from _benchutil import record
from websockets.frames import Frame, Opcode

from hero_fast._core import encode_frame

SIZES = {"64B": 64, "1KiB": 1024, "64KiB": 65536}


@pytest.mark.parametrize("mask", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("label", list(SIZES))
def test_encode_hero_fast(benchmark, label, mask):
    payload = b"e" * SIZES[label]
    benchmark.group = f"encode {label} {'client' if mask else 'server'}"
    frame = benchmark(encode_frame, 2, payload, True, mask)
    assert len(frame) >= SIZES[label] + 2
    record(benchmark, f"encode {label} {'client' if mask else 'server'} hero-fast", 1, "ns/frame")


@pytest.mark.parametrize("mask", [False, True], ids=["server", "client"])
@pytest.mark.parametrize("label", list(SIZES))
def test_encode_websockets(benchmark, label, mask):
    frame = Frame(Opcode.BINARY, b"e" * SIZES[label])
    benchmark.group = f"encode {label} {'client' if mask else 'server'}"
    out = benchmark(frame.serialize, mask=mask)
    assert len(out) >= SIZES[label] + 2
    record(benchmark, f"encode {label} {'client' if mask else 'server'} websockets", 1, "ns/frame")
