"""RFC 6455 5.5.1 — Close (and the closing handshake of 7.1).

The peer's code is echoed; an empty close is answered with an empty close
(status 1005 "no status received"); a 1-byte payload or bad reason fails the
connection; after the handshake (or a failure) input is ignored.
"""

from __future__ import annotations

import pytest
from _wsref import (
    CLOSED,
    CLOSING,
    FAILED,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    OPEN,
    assert_client_close,
    cframe,
    close_payload,
    expected_close,
    frame,
    parse_frames,
    run,
    run_all_chunkings,
)

from hero_fast._core import PROTOCOL_ERRORS, Codec, encode_close


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 4999])
def test_peer_close_is_echoed_with_its_code(code):
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(code, "bye")))
    assert r.events == [("close", code, "bye")]
    assert (r.state, r.close_code, r.close_reason, r.error) == (CLOSED, code, "bye", None)
    # the echo carries the code (no reason): 88 02 <code>
    assert r.sent == frame(OP_CLOSE, close_payload(code)) == bytes([0x88, 2]) + code.to_bytes(2, "big")


def test_client_codec_echoes_close_masked():
    r = run_all_chunkings(frame(OP_CLOSE, close_payload(1001, "away")), is_client=True)
    assert r.events == [("close", 1001, "away")]
    assert r.state == CLOSED
    assert_client_close(r.sent, 1001, "")


def test_empty_close_is_answered_with_empty_close():
    r = run_all_chunkings(cframe(OP_CLOSE, b""))
    assert r.events == [("close", 1005, "")]
    assert (r.state, r.close_code) == (CLOSED, 1005)
    assert r.sent == bytes([0x88, 0x00])


@pytest.mark.parametrize("reason", ["", "é", "x" * 123, "ünïcødé 😀"])
def test_close_reason_is_decoded(reason):
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(1000, reason)))
    assert r.events == [("close", 1000, reason)]


def test_close_with_one_byte_payload():
    r = run_all_chunkings(cframe(OP_CLOSE, b"\x03"))
    assert r.events == []
    assert (r.state, r.error, r.close_code) == (FAILED, "close_one_byte", 1002)
    assert r.sent == expected_close(*PROTOCOL_ERRORS["close_one_byte"])


@pytest.mark.parametrize(
    "reason",
    [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"ok\xe2\x82", b"\xf4\x90\x80\x80", b"\x80"],
)
def test_close_reason_invalid_utf8(reason):
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(1000, reason)))
    assert r.events == []
    assert (r.state, r.error, r.close_code) == (FAILED, "close_reason_utf8", 1007)
    assert r.sent == expected_close(*PROTOCOL_ERRORS["close_reason_utf8"])


def test_input_after_close_is_ignored():
    data = cframe(OP_CLOSE, close_payload(1000)) + cframe(OP_TEXT, "after") + cframe(OP_PING, b"x")
    r = run_all_chunkings(data)
    assert r.events == [("close", 1000, "")]
    assert r.sent == frame(OP_CLOSE, close_payload(1000))  # no pong for the late ping


def test_garbage_after_close_is_ignored():
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(1000)) + b"\xff\xff\xff\xff garbage")
    assert (r.state, r.error) == (CLOSED, None)


def test_we_initiate_then_peer_answers():
    c = Codec()
    sent = c.close(1001, "going away")
    assert sent == frame(OP_CLOSE, close_payload(1001, "going away"))
    assert (c.state, c.close_code, c.close_reason) == (CLOSING, 1001, "going away")
    # data still arriving before the peer's close is delivered
    assert c.receive_data(cframe(OP_TEXT, "in flight")) == [("text", "in flight")]
    assert c.receive_data(cframe(OP_CLOSE, close_payload(1001))) == [("close", 1001, "")]
    assert c.state == CLOSED
    assert c.data_to_send() == b""  # the handshake is complete: nothing more to send
    assert c.close() == b""


def test_client_initiates_close_masked():
    c = Codec(is_client=True)
    sent = c.close(1000, "done")
    (f,) = parse_frames(sent)
    assert f.masked and f.opcode == OP_CLOSE and f.payload == close_payload(1000, "done")


def test_close_without_status():
    c = Codec()
    assert c.close(1005) == bytes([0x88, 0x00])
    assert c.state == CLOSING


def test_close_twice_sends_once():
    c = Codec()
    assert c.close(1000) != b""
    assert c.close(1000) == b""


def test_close_rejects_invalid_code():
    c = Codec()
    for code in (0, 999, 1004, 1006, 1015, 2999, 5000):
        with pytest.raises(ValueError):
            c.close(code)
    assert c.state == OPEN


def test_close_after_failure_sends_nothing():
    c = Codec()
    c.receive_data(frame(OP_TEXT, b"unmasked"))
    assert c.state == FAILED
    assert c.close(1000) == b""


def test_encode_close_exact():
    assert encode_close() == b"\x88\x02\x03\xe8"
    assert encode_close(1001, "bye") == b"\x88\x05\x03\xe9bye"
    assert encode_close(1005) == b"\x88\x00"
    (f,) = parse_frames(encode_close(4000, "x", mask=True))
    assert f.masked and f.payload == b"\x0f\xa0x"


def test_encode_close_truncates_reason_to_fit_125_bytes():
    # never cut inside a character: 62 two-byte characters = 124 bytes > 123
    payload = parse_frames(encode_close(1000, "é" * 62))[0].payload
    assert len(payload) <= 125
    assert payload[2:].decode() == "é" * 61
    payload = parse_frames(encode_close(1000, "a" * 500))[0].payload
    assert payload == close_payload(1000, "a" * 123)


def test_codec_close_reason_truncated_to_valid_frame():
    c = Codec()
    sent = c.close(1000, "a" * 500)
    (f,) = parse_frames(sent)
    assert len(f.payload) == 125
    # a peer codec accepts it
    peer = Codec(is_client=True)
    assert peer.receive_data(sent) == [("close", 1000, "a" * 123)]


def test_close_in_the_middle_of_a_fragmented_message():
    data = cframe(OP_TEXT, "part", fin=False) + cframe(OP_CLOSE, close_payload(1000))
    r = run(data, "bytewise")
    assert r.events == [("close", 1000, "")]
    assert r.state == CLOSED
