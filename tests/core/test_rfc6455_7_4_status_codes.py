"""RFC 6455 7.4 — Status Codes (and 7.4.1 / 7.4.2 ranges).

0-999 unused; 1004, 1005, 1006, 1015 reserved (never on the wire); 1016-2999
for future RFCs; 3000-4999 registered / private. A close frame carrying a code
that may not be on the wire fails the connection with 1002.
"""

from __future__ import annotations

import pytest
from _wsref import (
    CLOSED,
    FAILED,
    OP_CLOSE,
    assert_client_close,
    cframe,
    close_payload,
    expected_close,
    frame,
    run_all_chunkings,
)

from hero_fast._core import PROTOCOL_ERRORS, is_valid_close_code

INVALID = [0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535]
VALID = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999]


def test_valid_code_table_exhaustive():
    for code in range(0, 65536):
        expected = 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999
        assert is_valid_close_code(code) is expected, code


@pytest.mark.parametrize("code", INVALID)
def test_invalid_close_code_fails_with_1002(code):
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(code, "r")))
    assert r.events == []
    assert (r.state, r.error, r.close_code) == (FAILED, "invalid_close_code", 1002)
    assert r.sent == expected_close(*PROTOCOL_ERRORS["invalid_close_code"])


@pytest.mark.parametrize("code", [0, 999, 1005, 1006, 5000])
def test_invalid_close_code_client_side(code):
    r = run_all_chunkings(frame(OP_CLOSE, close_payload(code)), is_client=True)
    assert (r.state, r.error, r.close_code) == (FAILED, "invalid_close_code", 1002)
    assert_client_close(r.sent, 1002, PROTOCOL_ERRORS["invalid_close_code"][1])


@pytest.mark.parametrize("code", VALID)
def test_valid_close_code_is_echoed(code):
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(code)))
    assert r.events == [("close", code, "")]
    assert r.state == CLOSED
    assert r.sent == bytes([0x88, 0x02]) + code.to_bytes(2, "big")


def test_invalid_code_checked_before_reason():
    # both wrong: the code is what 7.4 is about → 1002 (not 1007)
    r = run_all_chunkings(cframe(OP_CLOSE, close_payload(999, b"\xff")))
    assert (r.error, r.close_code) == ("invalid_close_code", 1002)
