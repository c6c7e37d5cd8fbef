"""RFC 6455 5.4 — Fragmentation.

Reassembly, control frames interleaved inside a fragmented message, and the
fragmentation errors (continuation with nothing to continue, new data frame
inside a fragmented message, too many fragments, too many bytes).
"""

from __future__ import annotations

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


def fragments(opcode, pieces, **kw):
    out = []
    for i, p in enumerate(pieces):
        out.append(cframe(opcode if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1, **kw))
    return b"".join(out)


@pytest.mark.parametrize(
    "pieces",
    [
        [b"a", b"b"],
        [b"", b"", b"abc"],
        [b"abc", b"", b""],
        [b"x" * 125, b"y" * 126, b"z" * 65536],
        [b"\x00"] * 50,
    ],
)
def test_binary_reassembly(pieces):
    r = run_all_chunkings(fragments(OP_BINARY, pieces))
    assert r.events == [("binary", b"".join(pieces))]
    assert (r.state, r.sent) == (OPEN, b"")


def test_text_reassembly_with_characters_split_between_fragments():
    text = "héllo €uro 😀 done"
    raw = text.encode()
    # split at every byte offset, including inside multi-byte characters
    for i in range(len(raw) + 1):
        r = run(fragments(OP_TEXT, [raw[:i], raw[i:]]))
        assert r.events == [("text", text)], i
    r = run_all_chunkings(fragments(OP_TEXT, [raw[i : i + 1] for i in range(len(raw))]))
    assert r.events == [("text", text)]


def test_client_codec_reassembles_unmasked_fragments():
    data = frame(OP_TEXT, b"ab", fin=False) + frame(OP_CONT, b"cd", fin=False) + frame(OP_CONT, b"e")
    r = run_all_chunkings(data, is_client=True)
    assert r.events == [("text", "abcde")]


@pytest.mark.parametrize("ping_payload", [b"", b"p", b"P" * 125])
def test_ping_inside_fragmented_message_is_answered_at_once(ping_payload):
    data = (
        cframe(OP_TEXT, "frag", fin=False)
        + cframe(OP_PING, ping_payload)
        + cframe(OP_CONT, "ment", fin=False)
        + cframe(OP_PONG, b"unsolicited")
        + cframe(OP_CONT, "ed")
    )
    r = run_all_chunkings(data)
    assert r.events == [("ping", ping_payload), ("pong", b"unsolicited"), ("text", "fragmented")]
    assert r.sent == frame(OP_PONG, ping_payload)


def test_pong_leaves_before_the_message_completes():
    c = Codec()
    c.receive_data(cframe(OP_BINARY, b"a", fin=False) + cframe(OP_PING, b"now"))
    assert c.data_to_send() == frame(OP_PONG, b"now")
    assert c.receive_data(cframe(OP_CONT, b"b")) == [("binary", b"ab")]


def test_messages_after_a_fragmented_one():
    data = fragments(OP_TEXT, [b"a", b"b"]) + cframe(OP_BINARY, b"c") + fragments(OP_BINARY, [b"d", b"e"])
    r = run_all_chunkings(data)
    assert r.events == [("text", "ab"), ("binary", b"c"), ("binary", b"de")]


def assert_failed(r, error):
    code, reason = PROTOCOL_ERRORS[error]
    assert (r.state, r.error, r.close_code) == (FAILED, error, code)
    assert r.sent == expected_close(code, reason)


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_with_nothing_to_continue(fin):
    r = run_all_chunkings(cframe(OP_CONT, b"orphan", fin=fin))
    assert r.events == []
    assert_failed(r, "nothing_to_continue")


def test_continuation_after_a_completed_message():
    r = run_all_chunkings(fragments(OP_TEXT, [b"a", b"b"]) + cframe(OP_CONT, b"c"))
    assert r.events == [("text", "ab")]
    assert_failed(r, "nothing_to_continue")


@pytest.mark.parametrize("second", [OP_TEXT, OP_BINARY])
@pytest.mark.parametrize("fin", [True, False])
def test_new_data_frame_inside_fragmented_message(second, fin):
    r = run_all_chunkings(cframe(OP_BINARY, b"a", fin=False) + cframe(second, b"b", fin=fin))
    assert r.events == []
    assert_failed(r, "expected_continuation")


@pytest.mark.parametrize("max_fragments", [1, 2, 5])
def test_max_fragments_exactly_allowed(max_fragments):
    pieces = [b"x"] * max_fragments
    r = run_all_chunkings(fragments(OP_BINARY, pieces), max_fragments=max_fragments)
    assert r.events == [("binary", b"x" * max_fragments)]


@pytest.mark.parametrize("max_fragments", [1, 2, 5])
def test_too_many_fragments(max_fragments):
    pieces = [b"x"] * (max_fragments + 1)
    r = run_all_chunkings(fragments(OP_BINARY, pieces), max_fragments=max_fragments)
    assert r.events == []
    assert_failed(r, "too_many_fragments")
    assert r.close_code == 1009


def test_fragment_count_resets_per_message():
    one = fragments(OP_BINARY, [b"a", b"b", b"c"])
    r = run_all_chunkings(one * 5, max_fragments=3)
    assert r.events == [("binary", b"abc")] * 5 and r.state == OPEN


def test_unfragmented_messages_do_not_count_as_fragments():
    r = run_all_chunkings(cframe(OP_BINARY, b"a") * 10, max_fragments=1)
    assert len(r.events) == 10 and r.state == OPEN


def test_message_too_big_by_accumulated_fragments():
    # each fragment fits, together they do not
    r = run_all_chunkings(fragments(OP_BINARY, [b"a" * 100, b"b" * 100, b"c" * 100]), max_message_size=250)
    assert r.events == []
    assert_failed(r, "message_too_big")
    assert r.close_code == 1009


def test_message_exactly_at_limit_across_fragments():
    r = run_all_chunkings(fragments(OP_BINARY, [b"a" * 100, b"b" * 100, b"c" * 50]), max_message_size=250)
    assert r.events == [("binary", b"a" * 100 + b"b" * 100 + b"c" * 50)]


def test_too_big_is_detected_from_the_header_of_the_offending_fragment():
    c = Codec(max_message_size=200)
    c.receive_data(cframe(OP_BINARY, b"a" * 150, fin=False))
    assert c.state == OPEN
    # only the header of the second fragment: declared 51 > 200 - 150
    second = cframe(OP_CONT, b"b" * 51)
    c.receive_data(second[:6])
    assert (c.state, c.error) == (FAILED, "message_too_big")


def test_limit_applies_again_to_the_next_message():
    data = fragments(OP_BINARY, [b"a" * 100, b"b" * 100]) + fragments(OP_BINARY, [b"c" * 150, b"d" * 50])
    r = run_all_chunkings(data, max_message_size=200)
    assert [len(e[1]) for e in r.events] == [200, 200]
