"""RFC 6455 5.3 — Client-to-Server Masking.

The codec unmasks in place a word / SSE vector at a time, resuming at the
mask phase where the previous read stopped. Checked against a plain XOR loop
for lengths around the vector widths, every phase and odd split points.
"""

from __future__ import annotations

import os
import random

import pytest
from _wsref import OP_BINARY, OPEN, cframe, frame, parse_frames, py_mask

from hero_fast._core import Codec, encode_frame

# around 8-byte words, 16-byte vectors and the 64-byte unrolled loop
LENGTHS = [1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 63, 64, 65, 66, 127, 128, 129, 200, 1000, 4099]
KEYS = [b"\x00\x00\x00\x00", b"\xff\xff\xff\xff", b"\x01\x02\x03\x04", b"\x37\xfa\x21\x3d"]


def test_reference_mask_is_an_involution():
    data = os.urandom(100)
    assert py_mask(py_mask(data, b"abcd"), b"abcd") == data
    assert py_mask(b"\x00" * 6, b"abcd", phase=3) == b"dabcda"


@pytest.mark.parametrize("key", KEYS)
@pytest.mark.parametrize("n", LENGTHS)
def test_unmask_whole_frame(n, key):
    payload = os.urandom(n)
    c = Codec()
    assert c.receive_data(cframe(OP_BINARY, payload, key=key)) == [("binary", payload)]


@pytest.mark.parametrize("n", LENGTHS)
def test_unmask_resumes_at_every_phase(n):
    """Split the payload at every offset 0..min(n, 20) and at a few big ones:
    the second read starts at mask phase split % 4 (unaligned)."""
    payload = os.urandom(n)
    key = b"\x9a\x4b\x0c\xe7"
    data = cframe(OP_BINARY, payload, key=key)
    head = len(data) - n
    splits = sorted(set([*list(range(min(n, 20) + 1)), n // 2, n - 1, max(n - 17, 0)]))
    for split in splits:
        c = Codec()
        ev = c.receive_data(data[: head + split]) + c.receive_data(data[head + split :])
        assert ev == [("binary", payload)], split


def test_unmask_many_random_splits_big_frame():
    rng = random.Random(5)
    payload = os.urandom(70000)
    data = cframe(OP_BINARY, payload, key=b"\xde\xad\xbe\xef")
    for _ in range(30):
        cuts = sorted(rng.sample(range(1, len(data)), rng.randint(1, 12)))
        c = Codec()
        events = []
        prev = 0
        for cut in [*cuts, len(data)]:
            events += c.receive_data(data[prev:cut])
            prev = cut
        assert events == [("binary", payload)]


@pytest.mark.parametrize("n", [*LENGTHS, 65535, 65536, 70000])
def test_encoder_masks_like_the_reference(n):
    payload = os.urandom(n)
    produced = encode_frame(OP_BINARY, payload, mask=True)
    (f,) = parse_frames(produced)
    assert produced[-n:] == py_mask(payload, f.key)
    # and the server codec reads it back
    assert Codec().receive_data(produced) == [("binary", payload)]


def test_client_codec_frames_are_read_by_server_codec():
    client, server = Codec(is_client=True), Codec()
    for n in LENGTHS:
        payload = os.urandom(n)
        assert server.receive_data(client.send_message(payload)) == [("binary", payload)]
    assert server.state == OPEN


def test_zero_key_is_the_identity():
    payload = b"plain"
    data = frame(OP_BINARY, payload, key=b"\x00\x00\x00\x00")
    assert data.endswith(payload)
    assert Codec().receive_data(data) == [("binary", payload)]


@pytest.mark.parametrize("phase", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("offset", [0, 1, 3, 7])  # unaligned start addresses too
def test_mask_kernel_matches_reference(phase, offset):
    from hero_fast._core import _apply_mask

    key = b"\x9a\x4b\x0c\xe7"
    for n in [*LENGTHS, 65536, 65537]:
        data = os.urandom(n + offset)
        buf = bytearray(data)
        view = memoryview(buf)[offset:]
        _apply_mask(view, key, phase)
        view.release()
        assert bytes(buf) == data[:offset] + py_mask(data[offset:], key, phase), (n, phase, offset)


def test_mask_kernel_rejects_bad_arguments():
    from hero_fast._core import _apply_mask

    with pytest.raises(ValueError):
        _apply_mask(bytearray(4), b"abc")
    with pytest.raises((TypeError, BufferError)):
        _apply_mask(b"read-only", b"abcd")
