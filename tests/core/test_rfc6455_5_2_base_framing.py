"""RFC 6455 5.2 — Base Framing Protocol.

FIN, RSV1-3, opcode, MASK, 7/16/64-bit payload length; both directions; every
stream also fed one byte at a time and in random chunkings.
"""

from __future__ import annotations

import struct

import pytest
from _wsref import (
    CHUNKINGS,
    FAILED,
    KEY,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    OPEN,
    SIZES,
    assert_client_close,
    cframe,
    expected_close,
    frame,
    parse_frames,
    run,
    run_all_chunkings,
)

from hero_fast._core import OPCODES, PROTOCOL_ERRORS, Codec, encode_frame


def text_of_size(n: int) -> str:
    """A str whose UTF-8 encoding is exactly ``n`` bytes, mixing 1-4 byte characters."""
    chars = ["a", "é", "€", "😀"]
    out = []
    size = 0
    i = 0
    while n - size >= 4:
        c = chars[i % 4]
        out.append(c)
        size += len(c.encode())
        i += 1
    out.append("z" * (n - size))
    s = "".join(out)
    assert len(s.encode()) == n
    return s


def binary_of_size(n: int) -> bytes:
    return bytes((i * 7 + 3) & 0xFF for i in range(n))


def test_opcodes_table():
    assert OPCODES == {"continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}


# -- encoder: exact bytes -------------------------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_encode_frame_unmasked_exact_bytes(opcode, n):
    payload = binary_of_size(n)
    got = encode_frame(opcode, payload)
    assert got == frame(opcode, payload)
    # the header, spelled out, for the boundary sizes
    if n <= 125:
        assert got[:2] == bytes([0x80 | opcode, n])
    elif n <= 65535:
        assert got[:4] == bytes([0x80 | opcode, 126]) + struct.pack("!H", n)
    else:
        assert got[:10] == bytes([0x80 | opcode, 127]) + struct.pack("!Q", n)


@pytest.mark.parametrize("n", SIZES)
def test_encode_frame_str_is_utf8(n):
    s = text_of_size(n)
    assert encode_frame(OP_TEXT, s) == frame(OP_TEXT, s.encode())


@pytest.mark.parametrize("kind", [bytes, bytearray, memoryview])
def test_encode_frame_accepts_bytes_like(kind):
    data = binary_of_size(300)
    assert encode_frame(OP_BINARY, kind(data)) == frame(OP_BINARY, data)


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_encode_frame_masked_exact_bytes(opcode, n):
    payload = binary_of_size(n)
    got = encode_frame(opcode, payload, mask=True)
    (f,) = parse_frames(got)
    assert f.masked and f.payload == payload
    # exactly the reference frame masked with the key it carries
    assert got == frame(opcode, payload, key=f.key)


def test_encode_frame_fin_and_rsv_bits():
    assert encode_frame(OP_TEXT, b"ab", fin=False) == bytes([0x01, 2]) + b"ab"
    assert encode_frame(OP_CONT, b"ab", fin=True) == bytes([0x80, 2]) + b"ab"
    assert encode_frame(OP_BINARY, b"", rsv=4) == bytes([0xC2, 0])
    assert encode_frame(OP_BINARY, b"", rsv=7) == bytes([0xF2, 0])


def test_mask_keys_differ_between_frames():
    keys = {parse_frames(encode_frame(OP_BINARY, b"x", mask=True))[0].key for _ in range(64)}
    assert len(keys) > 32  # 5.3: unpredictable, fresh per frame


@pytest.mark.parametrize("is_client", [False, True])
def test_codec_encode_masks_only_for_clients(is_client):
    c = Codec(is_client=is_client)
    for produced in (c.encode(OP_TEXT, "hi"), c.send_message("hi")):
        (f,) = parse_frames(produced)
        assert f.masked is is_client and f.payload == b"hi" and f.opcode == OP_TEXT
        if not is_client:
            assert produced == frame(OP_TEXT, b"hi")
    (f,) = parse_frames(c.send_message(b"\x00\xff"))
    assert f.opcode == OP_BINARY and f.payload == b"\x00\xff"


# -- decoder: both directions, every chunking ---------------------------------------


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_server_decodes_masked_client_frames(opcode, n):
    payload = text_of_size(n) if opcode == OP_TEXT else binary_of_size(n)
    r = run_all_chunkings(cframe(opcode, payload))
    assert r.events == [("text" if opcode == OP_TEXT else "binary", payload)]
    assert (r.state, r.error, r.sent) == (OPEN, None, b"")


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_client_decodes_unmasked_server_frames(opcode, n):
    payload = text_of_size(n) if opcode == OP_TEXT else binary_of_size(n)
    r = run_all_chunkings(frame(opcode, payload), is_client=True)
    assert r.events == [("text" if opcode == OP_TEXT else "binary", payload)]
    assert (r.state, r.error, r.sent) == (OPEN, None, b"")


@pytest.mark.parametrize("chunking", CHUNKINGS)
def test_many_frames_back_to_back(chunking):
    msgs = [binary_of_size(n) for n in SIZES] + [text_of_size(n) for n in SIZES]
    stream = b"".join(cframe(OP_TEXT if isinstance(m, str) else OP_BINARY, m) for m in msgs)
    r = run(stream, chunking, seed=7)
    assert [e[1] for e in r.events] == msgs
    assert r.state == OPEN


@pytest.mark.parametrize("form,n", [("16", 0), ("16", 5), ("16", 125), ("64", 0), ("64", 300)])
def test_non_minimal_length_encoding_is_accepted(form, n):
    # 5.2 says the minimal number of bytes MUST be used; a receiver that is
    # lenient here loses nothing, and so do most implementations.
    r = run_all_chunkings(cframe(OP_BINARY, b"q" * n, form=form))
    assert r.events == [("binary", b"q" * n)]


def test_partial_header_waits():
    c = Codec()
    data = cframe(OP_BINARY, b"x" * 70000)
    # 2 + 8 + 4 header bytes: every prefix of the header produces nothing
    for i in range(1, 15):
        assert c.receive_data(data[i - 1 : i]) == []
        assert c.state == OPEN
    assert c.receive_data(data[14:]) == [("binary", b"x" * 70000)]


# -- protocol errors detected from the header -------------------------------------------


def assert_failed(r, error, *, client=False):
    code, reason = PROTOCOL_ERRORS[error]
    assert (r.state, r.error, r.close_code, r.close_reason) == (FAILED, error, code, reason)
    if client:
        assert_client_close(r.sent, code, reason)
    else:
        assert r.sent == expected_close(code, reason)


def test_unmasked_client_frame_is_rejected():
    r = run_all_chunkings(frame(OP_TEXT, b"hello"))
    assert r.events == []
    assert_failed(r, "unmasked_frame")
    assert r.sent == bytes([0x88, 2 + len(r.close_reason)]) + b"\x03\xea" + r.close_reason.encode()


def test_masked_server_frame_is_rejected_by_client():
    r = run_all_chunkings(frame(OP_TEXT, b"hello", key=KEY), is_client=True)
    assert r.events == []
    assert_failed(r, "masked_frame", client=True)


@pytest.mark.parametrize("rsv", range(1, 8))
@pytest.mark.parametrize("is_client", [False, True])
def test_rsv_bits_without_extension(rsv, is_client):
    data = frame(OP_TEXT, b"hi", rsv=rsv, key=None if is_client else KEY)
    r = run_all_chunkings(data, is_client=is_client)
    assert r.events == []
    assert_failed(r, "reserved_bits", client=is_client)


def test_rsv_bits_allowed_when_negotiated():
    c = Codec()
    c.allowed_rsv = 4  # e.g. permessage-deflate's RSV1
    # RSV1 passes the framing check (decompression is the extension's business)
    assert run(cframe(OP_BINARY, b"x", rsv=4), codec=c).state == OPEN
    c = Codec()
    c.allowed_rsv = 4
    assert run(cframe(OP_BINARY, b"x", rsv=2), codec=c).error == "reserved_bits"


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 11, 12, 13, 14, 15])
@pytest.mark.parametrize("is_client", [False, True])
def test_reserved_opcodes(opcode, is_client):
    data = frame(opcode, b"", key=None if is_client else KEY)
    r = run_all_chunkings(data, is_client=is_client)
    assert r.events == []
    assert_failed(r, "reserved_opcode", client=is_client)


def test_reserved_opcode_inside_fragmented_message():
    data = cframe(OP_TEXT, "ab", fin=False) + cframe(5, b"", fin=True)
    r = run_all_chunkings(data)
    assert_failed(r, "reserved_opcode")


@pytest.mark.parametrize("is_client", [False, True])
def test_64bit_length_with_top_bit_set(is_client):
    head = bytes([0x82, (0 if is_client else 0x80) | 127]) + struct.pack("!Q", 1 << 63)
    data = head + (b"" if is_client else KEY) + b"abc"
    r = run_all_chunkings(data, is_client=is_client)
    assert r.events == []
    assert_failed(r, "length_top_bit", client=is_client)


def test_error_is_detected_from_the_first_two_bytes():
    # No need to wait for the rest of the header (or any payload) to refuse.
    for first_two, error in [
        (bytes([0x81, 0x05]), "unmasked_frame"),
        (bytes([0xC1, 0x85]), "reserved_bits"),
        (bytes([0x83, 0x85]), "reserved_opcode"),
        (bytes([0x09, 0x80]), "fragmented_control"),
        (bytes([0x89, 0xFE]), "control_too_long"),
        (bytes([0x80, 0x80]), "nothing_to_continue"),
    ]:
        c = Codec()
        c.receive_data(first_two)
        assert (c.state, c.error) == (FAILED, error), first_two


def test_frame_after_failure_is_ignored():
    c = Codec()
    c.receive_data(frame(OP_TEXT, b"unmasked"))
    assert c.state == FAILED
    first = c.data_to_send()
    assert c.receive_data(cframe(OP_TEXT, "later") + cframe(OP_PING, b"p")) == []
    assert c.data_to_send() == b""  # no pong, no second close
    assert first == expected_close(1002, PROTOCOL_ERRORS["unmasked_frame"][1])
    assert c.buffered() == 0


def test_control_opcodes_roundtrip_through_encoder():
    for op in (OP_PING, OP_PONG, OP_CLOSE):
        assert encode_frame(op, b"\x03\xe8") == frame(op, b"\x03\xe8")


def test_str_subclasses_are_text():
    # e.g. enum.StrEnum members or markup strings: they used to raise TypeError
    class Text(str):
        pass

    assert encode_frame(OP_TEXT, Text("hé")) == frame(OP_TEXT, "hé".encode())
    (f,) = parse_frames(Codec().send_message(Text("x")))
    assert (f.opcode, f.payload) == (OP_TEXT, b"x")
