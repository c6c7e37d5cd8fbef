"""RFC 6455 5.6 — Data Frames (and 8.1 Handling Errors in UTF-8-Encoded Data).

Text must be valid UTF-8 (RFC 3629: no overlongs, no surrogates, nothing above
U+10FFFF). The check is incremental: a text message fails (1007) as soon as
its bytes can no longer become valid — inside a frame that has not fully
arrived, and across fragments.
"""

from __future__ import annotations

import random

import pytest
from _wsref import (
    FAILED,
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPEN,
    cframe,
    expected_close,
    frame,
    run,
    run_all_chunkings,
)

from hero_fast._core import PROTOCOL_ERRORS, Codec

VALID = [
    "",
    "ascii only",
    "κόσμε",
    "\u0080",  # smallest 2-byte
    "\u07ff",  # largest 2-byte
    "\u0800",  # smallest 3-byte
    "\ud7ff",  # just below the surrogates
    "\ue000",  # just above the surrogates
    "\uffff",
    "\U00010000",  # smallest 4-byte
    "\U0010ffff",  # largest code point
    "mixed é € 😀 text" * 20,
    "\x00\x7f",
]

INVALID = [
    b"\x80",  # lone continuation
    b"\xbf",
    b"\xc0\x80",  # overlong NUL
    b"\xc1\xbf",  # overlong
    b"\xe0\x80\x80",  # overlong 3-byte
    b"\xe0\x9f\xbf",
    b"\xf0\x80\x80\x80",  # overlong 4-byte
    b"\xf0\x8f\xbf\xbf",
    b"\xed\xa0\x80",  # U+D800 (surrogate)
    b"\xed\xbf\xbf",  # U+DFFF
    b"\xf4\x90\x80\x80",  # U+110000
    b"\xf5\x80\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xfe",
    b"\xff",
    b"\xc2\x41",  # continuation expected
    b"\xe2\x82\x41",
    b"valid then \xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
]

TRUNCATED = [b"\xc2", b"\xe2\x82", b"\xf0\x9f\x98", b"ok\xf0"]


@pytest.mark.parametrize("text", VALID)
def test_valid_text(text):
    r = run_all_chunkings(cframe(OP_TEXT, text.encode("utf-8", "surrogatepass")))
    assert r.events == [("text", text)]


@pytest.mark.parametrize("is_client", [False, True])
@pytest.mark.parametrize("bad", INVALID)
def test_invalid_utf8_single_frame(bad, is_client):
    data = frame(OP_TEXT, bad) if is_client else cframe(OP_TEXT, bad)
    r = run_all_chunkings(data, is_client=is_client)
    assert r.events == []
    assert (r.state, r.error, r.close_code) == (FAILED, "invalid_utf8", 1007)
    if not is_client:
        assert r.sent == expected_close(*PROTOCOL_ERRORS["invalid_utf8"])


@pytest.mark.parametrize("bad", TRUNCATED)
def test_text_ending_inside_a_character(bad):
    r = run_all_chunkings(cframe(OP_TEXT, bad))
    assert (r.state, r.error, r.close_code) == (FAILED, "invalid_utf8", 1007)


@pytest.mark.parametrize("bad", INVALID + TRUNCATED)
def test_binary_frames_are_not_checked(bad):
    r = run_all_chunkings(cframe(OP_BINARY, bad))
    assert r.events == [("binary", bad)]


def test_invalid_utf8_split_across_fragments():
    # U+D800 as ED | A0 80: each fragment alone could still become valid
    data = cframe(OP_TEXT, b"ab\xed", fin=False) + cframe(OP_CONT, b"\xa0\x80", fin=True)
    r = run_all_chunkings(data)
    assert (r.error, r.close_code) == ("invalid_utf8", 1007)
    assert r.events == []


def test_valid_utf8_split_across_fragments_with_pings_between():
    raw = "😀€é".encode()
    data = b""
    for i, b in enumerate(raw):
        data += cframe(OP_TEXT if i == 0 else OP_CONT, bytes([b]), fin=i == len(raw) - 1)
        data += cframe(OP_PING, b"%d" % i)
    r = run_all_chunkings(data)
    assert r.events[-2:] == [("text", "😀€é"), ("ping", b"%d" % (len(raw) - 1))]
    assert r.sent == b"".join(frame(OP_PONG, b"%d" % i) for i in range(len(raw)))


def test_fragmented_text_ending_inside_a_character():
    data = cframe(OP_TEXT, b"ab", fin=False) + cframe(OP_CONT, b"\xe2\x82", fin=True)
    r = run_all_chunkings(data)
    assert (r.error, r.close_code) == ("invalid_utf8", 1007)


def test_invalid_in_first_fragment_fails_before_the_next():
    c = Codec()
    c.receive_data(cframe(OP_TEXT, b"ok\xff", fin=False))
    assert (c.state, c.error) == (FAILED, "invalid_utf8")


@pytest.mark.parametrize("is_client", [False, True])
def test_fail_fast_before_the_frame_completes(is_client):
    # A 1 MB text frame whose first payload bytes are already invalid: FAILED
    # as soon as those bytes arrive, not after the megabyte.
    payload = b"\xc0\xaf" + b"a" * (1 << 20)
    data = frame(OP_TEXT, payload) if is_client else cframe(OP_TEXT, payload)
    head = len(data) - len(payload)
    c = Codec(is_client=is_client, max_message_size=2 << 20)
    c.receive_data(data[:head])
    assert c.state == OPEN  # header only
    # C0 can never start a character (RFC 3629): FAILED at that very byte
    c.receive_data(data[head : head + 1])
    assert (c.state, c.error, c.close_code) == (FAILED, "invalid_utf8", 1007)
    if not is_client:
        assert c.data_to_send() == expected_close(*PROTOCOL_ERRORS["invalid_utf8"])
    assert c.receive_data(data[head + 2 : head + 1000]) == []


def test_fail_fast_at_the_first_impossible_byte():
    # "hello" then a surrogate lead that becomes impossible at its 2nd byte
    payload = b"hello \xed\xa0" + b"z" * 5000
    data = cframe(OP_TEXT, payload)
    head = len(data) - len(payload)
    c = Codec()
    c.receive_data(data[: head + 7])
    assert c.state == OPEN  # "hello \xed" could still become valid
    c.receive_data(data[head + 7 : head + 8])
    assert (c.state, c.error) == (FAILED, "invalid_utf8")


def test_fail_fast_inside_a_continuation_fragment():
    first = cframe(OP_TEXT, b"start", fin=False)
    cont = cframe(OP_CONT, b"\xff" + b"z" * 10000, fin=True)
    c = Codec()
    c.receive_data(first + cont[:9])  # header (8) + the first payload byte
    assert (c.state, c.error) == (FAILED, "invalid_utf8")


def test_utf8_state_resets_between_messages():
    # a message ending validly, then a new one starting with a continuation byte
    r = run_all_chunkings(cframe(OP_TEXT, "é") + cframe(OP_TEXT, b"\xa9"))
    assert r.events == [("text", "é")]
    assert r.error == "invalid_utf8"


def test_utf8_check_agrees_with_python_on_random_bytes():
    rng = random.Random(1234)
    alphabet = [0x00, 0x41, 0x7F, 0x80, 0x8F, 0x90, 0x9F, 0xA0, 0xBF, 0xC0, 0xC1, 0xC2, 0xDF, 0xE0,
                0xE1, 0xEC, 0xED, 0xEE, 0xEF, 0xF0, 0xF1, 0xF3, 0xF4, 0xF5, 0xFF]
    for _ in range(3000):
        raw = bytes(rng.choice(alphabet) for _ in range(rng.randint(0, 12)))
        try:
            expected = [("text", raw.decode("utf-8"))]
        except UnicodeDecodeError:
            expected = None
        r = run(cframe(OP_TEXT, raw), "random", seed=rng.randint(0, 1 << 30))
        if expected is None:
            assert r.error == "invalid_utf8", raw
        else:
            assert r.events == expected, raw


@pytest.mark.parametrize(
    "bad", [b"\xc3\xa9", b"\xff", b"\xed\xa0\x80", b"\xe2\x82"], ids=["e-acute", "ff", "surrogate", "cut"]
)
def test_rfc6455_5_6_utf8_checked_at_every_offset_of_a_long_ascii_run(bad):
    """The ASCII fast path skips 32 and 8 bytes at a time: a non-ASCII sequence at any
    offset, before or across a block boundary, is still checked."""
    for pos in range(0, 100):
        text = b"a" * pos + bad + b"b" * (100 - pos)
        try:
            expected = [("text", text.decode())]
        except UnicodeDecodeError:
            expected = None
        c = Codec()
        events = c.receive_data(cframe(OP_TEXT, text))
        if expected is None:
            assert c.close_code == 1007, pos
        else:
            assert events == expected, pos
