"""Every entry of PROTOCOL_ERRORS — the one table mapping protocol errors to
close codes — is reachable, on both sides, with the documented code and the
exact close frame."""

from __future__ import annotations

import struct

import pytest
from _wsref import (
    FAILED,
    KEY,
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    assert_client_close,
    close_payload,
    deflate_raw,
    expected_close,
    frame,
    run_all_chunkings,
)

from hero_fast._core import PROTOCOL_ERRORS, DeflateParams

LIMITS = {"max_message_size": 200, "max_fragments": 3}


def triggers(key):
    """name -> a stream that must fail with that error; ``key`` masks (server side)."""
    f = lambda *a, **kw: frame(*a, key=key, **kw)  # noqa: E731
    return {
        "reserved_bits": f(OP_TEXT, b"x", rsv=1),
        "reserved_opcode": f(0xB, b""),
        "fragmented_control": f(OP_PING, b"", fin=False),
        "control_too_long": f(OP_PING, b"p" * 126),
        "nothing_to_continue": f(OP_CONT, b"x"),
        "expected_continuation": f(OP_TEXT, b"a", fin=False) + f(OP_BINARY, b"b"),
        "length_top_bit": bytes([0x82, (0x80 if key else 0) | 127]) + struct.pack("!Q", 1 << 63) + (key or b""),
        "message_too_big": f(OP_BINARY, b"x" * 201),
        "too_many_fragments": b"".join(f(OP_BINARY if i == 0 else OP_CONT, b"x", fin=i == 3) for i in range(4)),
        "invalid_utf8": f(OP_TEXT, b"\xff"),
        "close_one_byte": f(OP_CLOSE, b"\x03"),
        "invalid_close_code": f(OP_CLOSE, close_payload(1005)),
        "close_reason_utf8": f(OP_CLOSE, close_payload(1000, b"\xc0")),
    }


SERVER = {**triggers(KEY), "unmasked_frame": frame(OP_TEXT, b"x")}
CLIENT = {**triggers(None), "masked_frame": frame(OP_TEXT, b"x", key=KEY)}

# permessage-deflate errors: need a codec that negotiated it
DEFLATE = DeflateParams(True, True)


def deflate_triggers(key):
    f = lambda *a, **kw: frame(*a, key=key, **kw)  # noqa: E731
    return {
        "compressed_control_or_continuation": f(OP_PING, b"", rsv=4),
        "invalid_compressed_data": f(OP_TEXT, b"\xff\xff\xff", rsv=4),  # BTYPE 11 (reserved)
        "inflated_too_big": f(OP_BINARY, deflate_raw(b"\0" * 1000), rsv=4),
    }


DEFLATE_SERVER = deflate_triggers(KEY)
DEFLATE_CLIENT = deflate_triggers(None)


def test_table_shape():
    assert {code for code, _ in PROTOCOL_ERRORS.values()} == {1002, 1007, 1009}
    for name, (_code, reason) in PROTOCOL_ERRORS.items():
        assert isinstance(name, str) and isinstance(reason, str)
        assert 0 < len(reason.encode()) <= 123


def test_every_error_has_a_trigger_here():
    # a new entry in PROTOCOL_ERRORS needs a test
    assert set(SERVER) | set(CLIENT) | set(DEFLATE_SERVER) == set(PROTOCOL_ERRORS)


def test_documented_codes():
    expected = {
        "unmasked_frame": 1002, "masked_frame": 1002, "reserved_bits": 1002, "reserved_opcode": 1002,
        "fragmented_control": 1002, "control_too_long": 1002, "nothing_to_continue": 1002,
        "expected_continuation": 1002, "length_top_bit": 1002, "message_too_big": 1009,
        "too_many_fragments": 1009, "invalid_utf8": 1007, "close_one_byte": 1002,
        "invalid_close_code": 1002, "close_reason_utf8": 1007,
        "compressed_control_or_continuation": 1002, "invalid_compressed_data": 1007,
        "inflated_too_big": 1009,
    }
    assert {k: v[0] for k, v in PROTOCOL_ERRORS.items()} == expected


@pytest.mark.parametrize("name", sorted(SERVER))
def test_server_side(name):
    code, reason = PROTOCOL_ERRORS[name]
    r = run_all_chunkings(SERVER[name], **LIMITS)
    assert (r.state, r.error, r.close_code, r.close_reason) == (FAILED, name, code, reason)
    assert r.sent == expected_close(code, reason)
    assert [e for e in r.events if e[0] in ("text", "binary", "close")] == []


@pytest.mark.parametrize("name", sorted(CLIENT))
def test_client_side(name):
    code, reason = PROTOCOL_ERRORS[name]
    r = run_all_chunkings(CLIENT[name], is_client=True, **LIMITS)
    assert (r.state, r.error, r.close_code, r.close_reason) == (FAILED, name, code, reason)
    assert_client_close(r.sent, code, reason)


@pytest.mark.parametrize("name", sorted(DEFLATE_SERVER))
def test_deflate_server_side(name):
    code, reason = PROTOCOL_ERRORS[name]
    r = run_all_chunkings(DEFLATE_SERVER[name], deflate=DEFLATE, **LIMITS)
    assert (r.state, r.error, r.close_code, r.close_reason) == (FAILED, name, code, reason)
    assert r.sent == expected_close(code, reason)
    assert [e for e in r.events if e[0] in ("text", "binary", "close")] == []


@pytest.mark.parametrize("name", sorted(DEFLATE_CLIENT))
def test_deflate_client_side(name):
    code, reason = PROTOCOL_ERRORS[name]
    r = run_all_chunkings(DEFLATE_CLIENT[name], is_client=True, deflate=DEFLATE, **LIMITS)
    assert (r.state, r.error, r.close_code, r.close_reason) == (FAILED, name, code, reason)
    assert_client_close(r.sent, code, reason)
