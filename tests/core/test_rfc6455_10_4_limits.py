"""RFC 6455 10.4 — Implementation-Specific Limits.

max_message_size is enforced against a frame's declared length (before any
payload arrives) and against bytes accumulated across fragments → 1009; the
read buffer grows with bytes actually received, never from a declared length.
"""

from __future__ import annotations

import struct

import pytest
from _wsref import (
    FAILED,
    KEY,
    OP_BINARY,
    OP_CONT,
    OP_TEXT,
    OPEN,
    cframe,
    expected_close,
    frame,
    run_all_chunkings,
)

from hero_fast._core import DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, PROTOCOL_ERRORS, Codec

MiB = 1 << 20


def test_documented_defaults():
    assert DEFAULT_MAX_MESSAGE_SIZE == MiB
    assert DEFAULT_MAX_FRAGMENTS == 1024
    c = Codec()
    assert (c.max_message_size, c.max_fragments, c.is_client, c.allowed_rsv) == (MiB, 1024, False, 0)


def test_constructor_rejects_nonsense_limits():
    with pytest.raises(ValueError):
        Codec(max_message_size=124)
    with pytest.raises(ValueError):
        Codec(max_fragments=0)


@pytest.mark.parametrize("limit", [125, 126, 65535, 65536, 70000])
def test_message_exactly_at_limit_is_accepted(limit):
    r = run_all_chunkings(cframe(OP_BINARY, b"a" * limit), max_message_size=limit)
    assert r.events == [("binary", b"a" * limit)]


@pytest.mark.parametrize("limit", [125, 126, 65535, 65536, 70000])
@pytest.mark.parametrize("is_client", [False, True])
def test_declared_length_over_limit(limit, is_client):
    payload = b"a" * (limit + 1)
    data = frame(OP_BINARY, payload) if is_client else cframe(OP_BINARY, payload)
    r = run_all_chunkings(data, max_message_size=limit, is_client=is_client)
    assert r.events == []
    assert (r.state, r.error, r.close_code) == (FAILED, "message_too_big", 1009)
    if not is_client:
        assert r.sent == expected_close(*PROTOCOL_ERRORS["message_too_big"])


@pytest.mark.parametrize("declared", [MiB + 1, 1 << 32, (1 << 63) - 1])
def test_too_big_detected_from_header_alone(declared):
    # only the header is sent: the codec must not wait for (or allocate) the payload
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", declared) + KEY
    c = Codec()
    c.receive_data(head)
    assert (c.state, c.error, c.close_code) == (FAILED, "message_too_big", 1009)
    assert c.buffer_capacity <= 8192


def test_declared_length_does_not_grow_the_buffer():
    c = Codec(max_message_size=16 * MiB)
    head = bytes([0x82, 0x80 | 127]) + struct.pack("!Q", MiB) + KEY
    c.receive_data(head + b"0123456789")
    assert c.state == OPEN
    assert c.buffered() == 10
    assert c.buffer_capacity <= 16384, c.buffer_capacity
    # through the zero-copy path too: the view offered for the next read is small
    view = c.get_buffer(-1)
    assert len(view) <= 16384
    view.release()


def test_buffer_grows_with_bytes_received_and_is_given_back():
    c = Codec(max_message_size=16 * MiB)
    payload = bytes(range(256)) * 4096  # 1 MiB
    data = cframe(OP_BINARY, payload)
    caps = []
    for i in range(0, len(data), 65536):
        c.receive_data(data[i : i + 65536])
        caps.append(c.buffer_capacity)
    assert c.state == OPEN
    # proportional to what has arrived (doubling, rounded to a power of two),
    # and never more than twice the frame
    for k, cap in enumerate(caps[:-1]):
        assert cap <= 4 * (k + 1) * 65536 + 8192
        assert cap <= 2 * len(data)
    # a big buffer is released once the frame is consumed
    assert c.buffered() == 0
    assert c.buffer_capacity <= 65536


@pytest.mark.parametrize("step", [1, 7, 3001, 1 << 20])
def test_zero_copy_feed_matches_receive_data(step):
    # get_buffer/buffer_updated, as a BufferedProtocol transport drives it; a
    # codec without a sink returns the events (it used to crash: the codec
    # called the sink's callbacks on None)
    msgs = [("text", "zero copy " * 1000), ("binary", b"\x00" * 70000), ("binary", b"")]
    data = b"".join(cframe(OP_TEXT if k == "text" else OP_BINARY, m) for k, m in msgs)
    c = Codec()
    events = []
    off = 0
    while off < len(data):
        view = c.get_buffer(-1)
        n = min(len(view), len(data) - off, step)
        view[:n] = data[off : off + n]
        view.release()
        off += n
        events += c.buffer_updated(n)
    assert events == msgs
    assert c.state == OPEN and c.buffered() == 0


def test_buffer_updated_refuses_more_than_offered():
    c = Codec()
    view = c.get_buffer(-1)
    n = len(view)
    view.release()
    with pytest.raises(ValueError):
        c.buffer_updated(n + 1)
    with pytest.raises(ValueError):
        c.buffer_updated(-1)
    assert c.buffer_updated(0) == []


def test_trim_releases_an_idle_buffer():
    c = Codec()
    c.receive_data(cframe(OP_BINARY, b"abc"))
    assert c.buffer_capacity > 0
    assert c.trim() is True
    assert c.buffer_capacity == 0
    assert c.trim() is False
    # still works afterwards
    assert c.receive_data(cframe(OP_BINARY, b"def")) == [("binary", b"def")]


def test_trim_keeps_a_partial_frame():
    c = Codec()
    data = cframe(OP_BINARY, b"abcdef")
    c.receive_data(data[:5])
    assert c.trim() is False
    assert c.receive_data(data[5:]) == [("binary", b"abcdef")]


def test_take_unparsed():
    c = Codec()
    assert c.take_unparsed() == b""
    data = cframe(OP_BINARY, b"abc")
    c.receive_data(data[:1])  # not even a header yet
    assert c.take_unparsed() == data[:1]
    assert c.buffered() == 0
    assert c.receive_data(data) == [("binary", b"abc")]


def test_accumulated_fragments_checked_at_each_header():
    data = cframe(OP_TEXT, "a" * 100, fin=False) + cframe(OP_CONT, "b" * 100, fin=False)
    third = cframe(OP_CONT, "c" * 100)
    c = Codec(max_message_size=250)
    c.receive_data(data)
    assert c.state == OPEN
    c.receive_data(third[:2])  # 7-bit length: the whole header is 2 + 4 bytes
    assert c.state == OPEN
    c.receive_data(third[2:6])
    assert (c.state, c.error) == (FAILED, "message_too_big")


def test_rfc6455_10_4_message_budget_leaves_frames_unparsed():
    """A budget of data messages (the transport's rate limit): the frame that would go
    over it stays in the buffer, byte for byte, until the budget is raised."""
    c = Codec()
    frames = [cframe(0x1, b"one"), cframe(0x9, b"p"), cframe(0x1, b"two"), cframe(0x2, b"three")]
    c.msg_budget = 2
    assert c.receive_data(b"".join(frames)) == [("text", "one"), ("ping", b"p"), ("text", "two")]
    assert (c.throttled, c.msg_budget, c.buffered()) == (1, 0, len(frames[3]))
    c.msg_budget = -1
    assert c.resume() == [("binary", b"three")]
    assert (c.throttled, c.buffered()) == (0, 0)


def test_rfc6455_10_4_ping_budget_leaves_pings_unparsed():
    c = Codec()
    c.ping_budget = 1
    assert c.receive_data(cframe(0x9, b"a") + cframe(0x9, b"b") + cframe(0x1, b"t")) == [("ping", b"a")]
    assert c.throttled == 2
    c.ping_budget = 5
    assert c.resume() == [("ping", b"b"), ("text", "t")]
    assert c.ping_budget == 4
