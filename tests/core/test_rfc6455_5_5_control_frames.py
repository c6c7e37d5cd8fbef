"""RFC 6455 5.5 — Control Frames (5.5.2 Ping, 5.5.3 Pong).

Control frames are at most 125 bytes and never fragmented; a ping is answered
by a pong carrying the same payload; an unsolicited pong is only reported.
"""

from __future__ import annotations

import pytest
from _wsref import (
    CLOSING,
    FAILED,
    KEY,
    OP_CLOSE,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPEN,
    assert_client_close,
    cframe,
    expected_close,
    frame,
    parse_frames,
    run,
    run_all_chunkings,
)

from hero_fast._core import PROTOCOL_ERRORS, Codec

CONTROL_SIZES = [0, 1, 2, 124, 125]


@pytest.mark.parametrize("n", CONTROL_SIZES)
def test_ping_answered_with_pong_of_same_payload(n):
    payload = bytes(range(256))[:n]
    r = run_all_chunkings(cframe(OP_PING, payload))
    assert r.events == [("ping", payload)]
    assert r.sent == frame(OP_PONG, payload)  # unmasked, FIN, exactly these bytes


@pytest.mark.parametrize("n", CONTROL_SIZES)
def test_client_codec_answers_ping_with_masked_pong(n):
    payload = bytes(range(100, 256))[:n]
    r = run_all_chunkings(frame(OP_PING, payload), is_client=True)
    assert r.events == [("ping", payload)]
    (f,) = parse_frames(r.sent)
    assert (f.fin, f.rsv, f.opcode, f.masked, f.payload) == (True, 0, OP_PONG, True, payload)
    assert r.sent == frame(OP_PONG, payload, key=f.key)


def test_several_pings_give_several_pongs_in_order():
    data = cframe(OP_PING, b"1") + cframe(OP_TEXT, "m") + cframe(OP_PING, b"22") + cframe(OP_PING, b"")
    r = run_all_chunkings(data)
    assert r.events == [("ping", b"1"), ("text", "m"), ("ping", b"22"), ("ping", b"")]
    assert r.sent == frame(OP_PONG, b"1") + frame(OP_PONG, b"22") + frame(OP_PONG, b"")


@pytest.mark.parametrize("n", CONTROL_SIZES)
def test_unsolicited_pong_is_an_event_only(n):
    r = run_all_chunkings(cframe(OP_PONG, b"u" * n))
    assert r.events == [("pong", b"u" * n)]
    assert (r.state, r.sent) == (OPEN, b"")


def test_ping_after_we_started_closing_gets_no_pong():
    c = Codec()
    c.close(1000)
    assert c.receive_data(cframe(OP_PING, b"late")) == [("ping", b"late")]
    assert c.data_to_send() == b""
    assert c.state == CLOSING


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
@pytest.mark.parametrize("is_client", [False, True])
def test_fragmented_control_frame(opcode, is_client):
    data = frame(opcode, b"", fin=False, key=None if is_client else KEY)
    r = run_all_chunkings(data, is_client=is_client)
    assert r.events == []
    code, reason = PROTOCOL_ERRORS["fragmented_control"]
    assert (r.state, r.error, r.close_code) == (FAILED, "fragmented_control", 1002)
    if is_client:
        assert_client_close(r.sent, code, reason)
    else:
        assert r.sent == expected_close(code, reason)


@pytest.mark.parametrize("n", [126, 127, 65535, 65536])
@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG, OP_CLOSE])
def test_control_frame_over_125_bytes(opcode, n):
    payload = b"\x03\xe8" + b"r" * (n - 2)
    r = run_all_chunkings(cframe(opcode, payload))
    assert r.events == []
    assert (r.state, r.error, r.close_code) == (FAILED, "control_too_long", 1002)
    assert r.sent == expected_close(*PROTOCOL_ERRORS["control_too_long"])


@pytest.mark.parametrize("form", ["16", "64"])
def test_control_frame_with_extended_length_form_is_too_long(form):
    # even when the value would fit, a control frame may not use 126/127
    r = run_all_chunkings(cframe(OP_PING, b"x", form=form))
    assert (r.state, r.error) == (FAILED, "control_too_long")


def test_control_too_long_fails_before_the_payload_arrives():
    c = Codec()
    c.receive_data(cframe(OP_PING, b"x" * 200)[:2])
    assert (c.state, c.error) == (FAILED, "control_too_long")


def test_ping_is_answered_once_even_when_read_in_pieces():
    data = cframe(OP_PING, b"abc")
    c = Codec()
    for i in range(len(data)):
        c.receive_data(data[i : i + 1])
        if i < len(data) - 1:
            assert c.data_to_send() == b""
    assert c.data_to_send() == frame(OP_PONG, b"abc")
    assert c.data_to_send() == b""


def test_pong_payload_is_independent_of_later_buffer_reuse():
    c = Codec()
    events = c.receive_data(cframe(OP_PING, b"keep") + cframe(OP_TEXT, "overwrite?" * 50))
    assert events[0] == ("ping", b"keep")
    assert c.data_to_send() == frame(OP_PONG, b"keep")
    assert run(cframe(OP_PING, b"k"), "bytewise").sent == frame(OP_PONG, b"k")
