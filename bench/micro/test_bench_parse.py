"""Parse a stream of masked client frames (64 B, 1 KiB, 64 KiB): hero-fast's
Codec against the websockets package's sans-I/O parser, in the same run.

Both sides do the same work: find frame boundaries, check the header, unmask,
and hand over one object per frame (binary frames, so no text decoding on
either side). ``websockets.protocol.Protocol.receive_data`` is what its
asyncio/threading servers run; ``Frame.parse`` over a ``StreamReader`` is the
bare frame parser underneath it.
"""

from __future__ import annotations

import pytest
from _benchutil import record
from websockets.frames import Frame, Opcode
from websockets.protocol import Protocol, Side
from websockets.streams import StreamReader

from hero_fast._core import Codec, encode_frame

SIZES = {"64B": 64, "1KiB": 1024, "64KiB": 65536}
# enough frames per round that per-call overhead is amortised (~256 KiB+ per round)
COUNTS = {"64B": 4096, "1KiB": 512, "64KiB": 8}


def stream(size: int, count: int) -> bytes:
    payload = bytes(i & 0xFF for i in range(size))
    return b"".join(encode_frame(2, payload, mask=True) for _ in range(count))


@pytest.mark.parametrize("label", list(SIZES))
def test_parse_hero_fast(benchmark, label):
    size, count = SIZES[label], COUNTS[label]
    data = stream(size, count)

    def parse():
        return Codec(max_message_size=1 << 20).receive_data(data)

    events = benchmark(parse)
    assert len(events) == count and events[-1][1][:3] == b"\x00\x01\x02"
    benchmark.group = f"parse {label}"
    record(benchmark, f"parse {label} hero-fast", count, "ns/frame")


@pytest.mark.parametrize("label", list(SIZES))
def test_parse_websockets_protocol(benchmark, label):
    size, count = SIZES[label], COUNTS[label]
    data = stream(size, count)

    def parse():
        p = Protocol(Side.SERVER, max_size=1 << 20)
        p.receive_data(data)
        return p.events_received()

    events = benchmark(parse)
    assert len(events) == count and events[-1].data[:3] == b"\x00\x01\x02"
    benchmark.group = f"parse {label}"
    record(benchmark, f"parse {label} websockets Protocol", count, "ns/frame")


@pytest.mark.parametrize("label", list(SIZES))
def test_parse_websockets_frame_parse(benchmark, label):
    size, count = SIZES[label], COUNTS[label]
    data = stream(size, count)

    def parse():
        reader = StreamReader()
        reader.feed_data(data)
        frames = []
        for _ in range(count):
            gen = Frame.parse(reader.read_exact, mask=True, max_size=1 << 20)
            try:
                next(gen)
            except StopIteration as stop:
                frames.append(stop.value)
            else:  # pragma: no cover - the whole stream is buffered
                raise AssertionError("parser wanted more data")
        return frames

    frames = benchmark(parse)
    assert len(frames) == count and frames[0].opcode is Opcode.BINARY
    benchmark.group = f"parse {label}"
    record(benchmark, f"parse {label} websockets Frame.parse", count, "ns/frame")
