"""Property-based fuzzing of the frame parser (hypothesis).

1. Any byte stream, in any chunking, on either side: the codec yields events
   or ends FAILED with a documented close code (1002, 1007, 1009) and an
   error named in PROTOCOL_ERRORS — never another exception; and the chunking
   never changes the result.
2. Differential: streams of plausible-but-hostile frames are decoded exactly
   as a small pure-Python reference decoder written from RFC 6455 decodes them
   (same events, same error, same pongs).
3. Round trip: random messages, encoded by a client codec with random
   fragmentation and interleaved pings, are decoded exactly by a server codec.
"""

from __future__ import annotations

import os
import struct

from _wsref import (
    CLOSED,
    FAILED,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPEN,
    frame,
    parse_frames,
    py_mask,
    run,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hero_fast._core import PROTOCOL_ERRORS, Codec, is_valid_close_code

DOCUMENTED_CODES = {1002, 1007, 1009}
# HERO_FAST_FUZZ_EXAMPLES=N (make fuzz) runs longer; the deflate paths are fuzzed in
# tests/fuzz/test_fuzz_inflate.py with the same reference helpers.
FUZZ = settings(max_examples=int(os.environ.get("HERO_FAST_FUZZ_EXAMPLES", "0") or 0) or 200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])


# -- strategies ------------------------------------------------------------------------


@st.composite
def chunked(draw, data: bytes) -> list[bytes]:
    if not data:
        return []
    cuts = draw(st.lists(st.integers(1, max(1, len(data) - 1)), max_size=12, unique=True))
    cuts = sorted(c for c in cuts if 0 < c < len(data))
    out, prev = [], 0
    for c in [*cuts, len(data)]:
        out.append(data[prev:c])
        prev = c
    return out


payloads = st.one_of(
    st.binary(max_size=40),
    st.text(max_size=20).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\xed\xa0\x80", b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\xe2\x82", b"\xff", b"\x03\xe8",
                     b"\x03\xe8ok", b"\x03", b"\x00\x00", b"\x0f\xa0\xff", b"\x13\x88"]),
    st.integers(120, 300).map(lambda n: b"a" * n),
)


@st.composite
def hostile_frame(draw, masked: bool) -> bytes:
    """A frame with every header field drawn (mostly plausible values)."""
    if draw(st.integers(0, 9)):
        opcode = draw(st.sampled_from([0, 1, 1, 2, 2, 8, 9, 10]))
    else:
        opcode = draw(st.integers(0, 15))
    fin = draw(st.integers(0, 3)) > 0
    rsv = 0 if draw(st.integers(0, 9)) else draw(st.integers(1, 7))
    payload = draw(payloads)
    mask_it = masked if draw(st.integers(0, 20)) else not masked
    key = draw(st.binary(min_size=4, max_size=4)) if mask_it else None
    form = draw(st.sampled_from([None, None, None, "16", "64"]))
    if form is None and len(payload) > 125:
        form = "16"
    if form is None:
        return frame(opcode, payload, fin=fin, rsv=rsv, key=key)
    declared = len(payload)
    if form == "64" and draw(st.integers(0, 30)) == 0:
        declared |= 1 << 63  # top bit
    raw = frame(opcode, payload, fin=fin, rsv=rsv, key=key, form=form)
    if declared != len(payload):
        i = 2
        raw = raw[:i] + struct.pack("!Q", declared) + raw[i + 8 :]
    return raw


def streams(masked: bool):
    structured = st.lists(
        st.one_of(
            hostile_frame(masked),
            # well-formed fragmented messages, so deep states are reached
            st.lists(payloads, min_size=2, max_size=4).map(
                lambda ps: b"".join(
                    frame(OP_TEXT if i == 0 else OP_CONT, p, fin=i == len(ps) - 1,
                          key=b"\x01\x02\x03\x04" if masked else None)
                    for i, p in enumerate(ps)
                )
            ),
        ),
        max_size=8,
    ).map(b"".join)
    return st.one_of(st.binary(max_size=200), structured, structured.map(lambda b: b[: len(b) // 2 + 1]))


# -- reference decoder ---------------------------------------------------------------------

# RFC 3629 table: (first byte range) -> (continuation count, bounds of the 1st continuation)
def _utf8_rule(b: int):
    if b < 0x80:
        return 0, None
    if 0xC2 <= b <= 0xDF:
        return 1, (0x80, 0xBF)
    if b == 0xE0:
        return 2, (0xA0, 0xBF)
    if 0xE1 <= b <= 0xEC or b in (0xEE, 0xEF):
        return 2, (0x80, 0xBF)
    if b == 0xED:
        return 2, (0x80, 0x9F)
    if b == 0xF0:
        return 3, (0x90, 0xBF)
    if 0xF1 <= b <= 0xF3:
        return 3, (0x80, 0xBF)
    if b == 0xF4:
        return 3, (0x80, 0x8F)
    return -1, None


def utf8_prefix_ok(data: bytes) -> tuple[bool, bool]:
    """(can still become valid, is complete)."""
    i = 0
    while i < len(data):
        n, first = _utf8_rule(data[i])
        if n < 0:
            return False, False
        i += 1
        for k in range(n):
            if i >= len(data):
                return True, False
            lo, hi = first if k == 0 else (0x80, 0xBF)
            if not lo <= data[i] <= hi:
                return False, False
            i += 1
    return True, True


def reference_decode(data: bytes, is_client: bool, max_size: int, max_frags: int):
    """(events, error, pongs) for ``data`` (possibly ending mid-frame)."""
    events, pongs = [], []
    msg_op, msg = 0, b""
    frags = 0
    i = 0

    def fail(name):
        return events, name, pongs

    while True:
        if len(data) - i < 2:
            return events, None, pongs
        b0, b1 = data[i], data[i + 1]
        fin, rsv, op, masked, ln = b0 & 0x80, (b0 >> 4) & 7, b0 & 0xF, b1 & 0x80, b1 & 0x7F
        if rsv:
            return fail("reserved_bits")
        if op >= 8:
            if op > OP_PONG:
                return fail("reserved_opcode")
            if not fin:
                return fail("fragmented_control")
            if ln > 125:
                return fail("control_too_long")
        elif op > OP_BINARY:
            return fail("reserved_opcode")
        elif op == OP_CONT and not msg_op:
            return fail("nothing_to_continue")
        elif op != OP_CONT and msg_op:
            return fail("expected_continuation")
        if masked and is_client:
            return fail("masked_frame")
        if not masked and not is_client:
            return fail("unmasked_frame")
        hl = 2 + {126: 2, 127: 8}.get(ln, 0) + (4 if masked else 0)
        if len(data) - i < hl:
            return events, None, pongs
        if ln == 126:
            (ln,) = struct.unpack("!H", data[i + 2 : i + 4])
        elif ln == 127:
            (ln,) = struct.unpack("!Q", data[i + 2 : i + 10])
            if ln >> 63:
                return fail("length_top_bit")
        if op < 8:
            if ln > max_size - len(msg):
                return fail("message_too_big")
            if op == OP_CONT or not fin:
                frags += 1
                if frags > max_frags:
                    return fail("too_many_fragments")
        key = data[i + hl - 4 : i + hl] if masked else None
        body = data[i + hl : i + hl + ln]
        if key:
            body = py_mask(body, key)
        text = op == OP_TEXT or (op == OP_CONT and msg_op == OP_TEXT)
        sofar = (msg if op == OP_CONT else b"") + body
        if text and not utf8_prefix_ok(sofar)[0]:
            return fail("invalid_utf8")
        if len(body) < ln:
            return events, None, pongs  # incomplete frame
        i += hl + ln
        if op == OP_PING:
            events.append(("ping", body))
            pongs.append(body)
        elif op == OP_PONG:
            events.append(("pong", body))
        elif op == OP_CLOSE:
            if len(body) == 1:
                return fail("close_one_byte")
            code, reason = 1005, ""
            if len(body) >= 2:
                (code,) = struct.unpack("!H", body[:2])
                if not is_valid_close_code(code):
                    return fail("invalid_close_code")
                try:
                    reason = body[2:].decode("utf-8")
                except UnicodeDecodeError:
                    return fail("close_reason_utf8")
            events.append(("close", code, reason))
            return events, None, pongs  # input after the close is ignored
        else:
            if op != OP_CONT:
                msg_op, msg = op, b""
            msg += body
            if fin:
                if msg_op == OP_TEXT:
                    if not utf8_prefix_ok(msg)[1]:
                        return fail("invalid_utf8")
                    events.append(("text", msg.decode("utf-8")))
                else:
                    events.append(("binary", msg))
                msg_op, msg, frags = 0, b"", 0


def test_reference_decoder_agrees_with_python_utf8():
    for raw in [b"", b"abc", "é€😀".encode(), b"\xed\xa0\x80", b"\xc0\x80", b"\xf4\x90\x80\x80", b"\xe2\x82"]:
        try:
            raw.decode("utf-8")
            valid = True
        except UnicodeDecodeError:
            valid = False
        ok, complete = utf8_prefix_ok(raw)
        assert (ok and complete) == valid, raw


# -- properties --------------------------------------------------------------------------


def check_outcome(r, is_client):
    assert r.state in (OPEN, CLOSED, FAILED)
    if r.state == FAILED:
        assert r.close_code in DOCUMENTED_CODES
        assert r.error in PROTOCOL_ERRORS
        assert PROTOCOL_ERRORS[r.error] == (r.close_code, r.close_reason)
    else:
        assert r.error is None
    for e in r.events:
        assert e[0] in ("text", "binary", "ping", "pong", "close")
        if e[0] == "text":
            assert isinstance(e[1], str)
        elif e[0] == "close":
            assert is_valid_close_code(e[1]) or e[1] == 1005
        else:
            assert isinstance(e[1], bytes)
    # whatever the codec wants to send is a sequence of well-formed frames
    for f in parse_frames(r.sent):
        assert f.masked is is_client and f.fin and f.opcode in (OP_PONG, OP_CLOSE)
        assert len(f.payload) <= 125


def feed_chunks(codec, parts):
    events = []
    for p in parts:
        events += codec.receive_data(p)
    return events


@FUZZ
@given(data=st.data(), is_client=st.booleans())
def test_any_stream_any_chunking(data, is_client):
    stream = data.draw(streams(masked=not is_client))
    parts = data.draw(chunked(stream))
    whole = run(stream, codec=Codec(is_client=is_client, max_message_size=256, max_fragments=3))
    check_outcome(whole, is_client)
    c = Codec(is_client=is_client, max_message_size=256, max_fragments=3)
    events = feed_chunks(c, parts)
    assert events == whole.events
    assert (c.state, c.error, c.close_code, c.close_reason) == (
        whole.state, whole.error, whole.close_code, whole.close_reason)
    sent = c.data_to_send()
    assert [(f.opcode, f.payload) for f in parse_frames(sent)] == [
        (f.opcode, f.payload) for f in parse_frames(whole.sent)]


@FUZZ
@given(data=st.data(), is_client=st.booleans())
def test_matches_reference_decoder(data, is_client):
    stream = data.draw(streams(masked=not is_client))
    events, error, pongs = reference_decode(stream, is_client, 256, 3)
    parts = data.draw(chunked(stream))
    c = Codec(is_client=is_client, max_message_size=256, max_fragments=3)
    got = feed_chunks(c, parts)
    assert got == events
    assert c.error == error
    sent = parse_frames(c.data_to_send())
    assert [f.payload for f in sent if f.opcode == OP_PONG] == pongs
    if error is not None:
        assert c.state == FAILED
        assert sent[-1].opcode == OP_CLOSE
        assert sent[-1].payload[:2] == struct.pack("!H", PROTOCOL_ERRORS[error][0])


@FUZZ
@given(raw=st.binary(max_size=300), cut=st.integers(0, 300), is_client=st.booleans())
def test_raw_bytes_never_raise(raw, cut, is_client):
    c = Codec(is_client=is_client)
    c.receive_data(raw[:cut])
    c.receive_data(raw[cut:])
    check_outcome(run(raw, codec=Codec(is_client=is_client)), is_client)


messages = st.lists(
    st.one_of(st.text(max_size=300), st.binary(max_size=300), st.integers(65530, 70010).map(lambda n: b"L" * n)),
    max_size=8,
)


@FUZZ
@given(msgs=messages, data=st.data())
def test_round_trip_client_to_server(msgs, data):
    client = Codec(is_client=True)
    wire = b""
    pings = []
    for m in msgs:
        raw = m.encode() if isinstance(m, str) else m
        ncuts = data.draw(st.integers(0, 4))
        cuts = sorted(data.draw(st.lists(st.integers(0, len(raw)), min_size=ncuts, max_size=ncuts)))
        pieces = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)], strict=False)]
        for i, piece in enumerate(pieces):
            op = (OP_TEXT if isinstance(m, str) else OP_BINARY) if i == 0 else OP_CONT
            wire += client.encode(op, piece, i == len(pieces) - 1)
            if data.draw(st.integers(0, 3)) == 0:
                p = data.draw(st.binary(max_size=125))
                pings.append(p)
                wire += client.encode(OP_PING, p)
    server = Codec(max_message_size=1 << 20)
    events = feed_chunks(server, data.draw(chunked(wire)))
    assert [e for e in events if e[0] in ("text", "binary")] == [
        ("text" if isinstance(m, str) else "binary", m) for m in msgs]
    assert [e[1] for e in events if e[0] == "ping"] == pings
    assert server.state == OPEN
    assert server.data_to_send() == b"".join(frame(OP_PONG, p) for p in pings)


@FUZZ
@given(msgs=messages, data=st.data())
def test_round_trip_server_to_client(msgs, data):
    server = Codec()
    wire = b"".join(server.send_message(m) for m in msgs) + server.close(1000, "done")
    client = Codec(is_client=True, max_message_size=1 << 20)
    events = feed_chunks(client, data.draw(chunked(wire)))
    assert events == [("text" if isinstance(m, str) else "binary", m) for m in msgs] + [("close", 1000, "done")]
    assert client.state == CLOSED
