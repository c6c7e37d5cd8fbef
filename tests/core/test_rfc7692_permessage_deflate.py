"""RFC 7692 — permessage-deflate: negotiation (5, 7.1), compression of messages
(6, 7.2), and the limits: inflation capped to the byte at max_message_size (a bomb
closes 1009), RSV1 only where allowed, compressed bytes never buffered whole.

Compressed data is made and checked with Python's zlib, independent of the codec.
"""

from __future__ import annotations

import gc
import os
import random
import time
import zlib

import pytest
from _wsref import (
    FAILED,
    KEY,
    OP_BINARY,
    OP_CONT,
    OP_PING,
    OP_TEXT,
    OPEN,
    cframe,
    deflate_raw,
    frame,
    parse_frames,
    run,
    run_all_chunkings,
)

from hero_fast._core import Codec, DeflateParams, encode_frame, negotiate_deflate
from hero_fast._deflate import Deflater, Inflater, parse_extensions

NCT = DeflateParams(True, True)  # no context takeover both ways, 15-bit windows


def inflate_raw(data: bytes, wbits: int = 15) -> bytes:
    d = zlib.decompressobj(-wbits)
    return d.decompress(data + b"\x00\x00\xff\xff")


def stream_parts(*chunks: bytes) -> list[bytes]:
    """One deflate stream for one message, sync-flushed after each chunk (a sender that
    flushes per fragment); only the last flush's 00 00 ff ff is removed (RFC 7692 7.2.1)."""
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    out = [co.compress(c) + co.flush(zlib.Z_SYNC_FLUSH) for c in chunks]
    out[-1] = out[-1][:-4]
    return out


def server(**kw) -> Codec:
    params = kw.pop("params", NCT)
    c = Codec(**kw)
    c.enable_deflate(params)
    return c


# -- 5 / 7.1 negotiation -------------------------------------------------------------------


@pytest.mark.parametrize(
    "offer,response,swb,cwb",
    [
        ("permessage-deflate", "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
         15, 15),
        ("permessage-deflate; client_max_window_bits",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12",
         15, 12),
        ("permessage-deflate; client_max_window_bits=10",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=10",
         15, 10),
        ("permessage-deflate; server_max_window_bits=9",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9",
         9, 15),
        ('permessage-deflate; client_max_window_bits="11"; server_no_context_takeover',
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=11",
         15, 11),
        # the first acceptable offer wins; invalid ones are declined, not fatal
        ("x-webkit-deflate-frame, permessage-deflate; foo=1, permessage-deflate; client_no_context_takeover",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover", 15, 15),
        ("PerMessage-Deflate ;  Client_Max_Window_Bits = 13 ,",
         "permessage-deflate; server_no_context_takeover; client_no_context_takeover; client_max_window_bits=12",
         15, 12),
    ],
)
def test_negotiation(offer, response, swb, cwb):
    p = negotiate_deflate([offer], client_max_window_bits=12)
    assert p.response == response
    assert (p.server_max_window_bits, p.client_max_window_bits) == (swb, cwb)


@pytest.mark.parametrize(
    "offer",
    [
        "permessage-deflate; server_max_window_bits",  # needs a value
        "permessage-deflate; server_max_window_bits=16",
        "permessage-deflate; server_max_window_bits=7",
        "permessage-deflate; server_max_window_bits=010",  # leading zero
        "permessage-deflate; client_max_window_bits=99999999999999999999",
        "permessage-deflate; client_max_window_bits=-1",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; client_no_context_takeover; client_no_context_takeover",  # duplicate
        "permessage-deflate; mystery",
        "permessage-deflate; ; client_max_window_bits",  # syntax error
        'permessage-deflate; client_max_window_bits="12',  # unterminated quote
        "permessage-deflate; client_max_window_bits=1\x002",
        "deflate-frame",
        "",
        ",,, ,",
    ],
)
def test_offers_declined(offer):
    assert negotiate_deflate([offer]) is None


def test_window_8_for_our_compressor_is_accepted_but_we_send_plain():
    # zlib cannot deflate with a 256-byte window: agree, then never compress (allowed)
    p = negotiate_deflate(["permessage-deflate; server_max_window_bits=8"])
    assert p.server_max_window_bits == 8 and "server_max_window_bits=8" in p.response
    c = server(params=p)
    assert c.compressor_shared is None
    assert c.send_message("x" * 5000) == encode_frame(OP_TEXT, "x" * 5000)


def test_our_settings_only_make_it_cheaper():
    p = negotiate_deflate(["permessage-deflate"], server_no_context_takeover=False,
                          client_no_context_takeover=False)
    assert p.response == "permessage-deflate"
    # the client asking for server_no_context_takeover gets it
    p = negotiate_deflate(["permessage-deflate; server_no_context_takeover"], server_no_context_takeover=False,
                          client_no_context_takeover=False)
    assert p.response == "permessage-deflate; server_no_context_takeover"
    p = negotiate_deflate(["permessage-deflate; server_max_window_bits=14"], server_max_window_bits=10)
    assert p.server_max_window_bits == 10 and "server_max_window_bits=10" in p.response


def test_several_header_lines_are_one_list():
    p = negotiate_deflate(["foo", "permessage-deflate; client_max_window_bits"])
    assert p is not None and p.client_max_window_bits == 15


PATHOLOGICAL = {
    "100k-extensions": lambda n: "a, " * n + "permessage-deflate",
    "100k-params": lambda n: "permessage-deflate; " + "; ".join(f"p{i}" for i in range(n)) + ", permessage-deflate",
    "1MB-value": lambda n: "permessage-deflate; client_max_window_bits=" + "1" * (10 * n),
    "escapes": lambda n: 'permessage-deflate; x="' + "\\a" * (3 * n) + '"',
    "100k-bad-params": lambda n: "x; " * n,
    "semicolons": lambda n: ";" * (5 * n),
    "100k-deflate-offers": lambda n: "permessage-deflate; bad, " * n,
}


def _cost(header: str) -> float:
    # (the GC is off while timing: the cyclic GC's passes over the many small lists
    # parse_extensions builds would make any builder of a 100k-item list look superlinear)
    gc.collect()
    gc.disable()
    try:
        t = time.perf_counter()
        negotiate_deflate([header])
        try:
            parse_extensions(header)
        except ValueError:
            pass
        return time.perf_counter() - t
    finally:
        gc.enable()


@pytest.mark.parametrize("name", sorted(PATHOLOGICAL))
def test_pathological_headers_are_linear(name):
    make = PATHOLOGICAL[name]
    small = min(_cost(make(25_000)) for _ in range(2))
    big = min(_cost(make(100_000)) for _ in range(2))
    # 4x the input: linear costs ~4x, quadratic ~16x (and 100k items stay cheap)
    assert big < 10 * small + 0.05, (small, big)
    assert big < 5.0


def test_at_most_max_offers_are_examined():
    bad = "permessage-deflate; nope, " * 40
    assert negotiate_deflate([bad + "permessage-deflate"]) is None
    assert negotiate_deflate(["permessage-deflate; nope, " * 3 + "permessage-deflate"]) is not None


def test_parse_extensions():
    assert parse_extensions('a; b=1; c="x,y", d ,e;f') == [
        ("a", [("b", "1"), ("c", "x,y")]), ("d", []), ("e", [("f", None)])]
    with pytest.raises(ValueError):
        parse_extensions("a; =1")


def test_client_reads_the_response():
    p = DeflateParams.from_response("permessage-deflate; server_no_context_takeover; client_max_window_bits=10")
    assert (p.server_no_context_takeover, p.client_no_context_takeover) == (True, False)
    assert (p.server_max_window_bits, p.client_max_window_bits) == (15, 10)
    for bad in ("permessage-deflate; client_max_window_bits", "foo", "permessage-deflate, permessage-deflate"):
        with pytest.raises(ValueError):
            DeflateParams.from_response(bad)


# -- 6 / 7.2 compressed messages ------------------------------------------------------------


@pytest.mark.parametrize("size", [0, 1, 100, 5000, 70000])
def test_compressed_message_round_trip_all_chunkings(size):
    text = "".join(random.Random(size).choice("abcdé€𝄞 ") for _ in range(size))
    data = cframe(OP_TEXT, deflate_raw(text.encode()), rsv=4)
    r = run_all_chunkings(data, deflate=NCT)
    assert r.state == OPEN and r.events == [("text", text)]


def test_fragmented_compressed_message_with_interleaved_ping():
    body = deflate_raw(b"hello compressed world" * 50)
    parts = [body[:10], body[10:11], b"", body[11:]]
    data = (cframe(OP_BINARY, parts[0], fin=False, rsv=4) + cframe(OP_CONT, parts[1], fin=False)
            + cframe(OP_PING, b"p") + cframe(OP_CONT, parts[2], fin=False) + cframe(OP_CONT, parts[3]))
    r = run_all_chunkings(data, deflate=NCT)
    assert r.events == [("ping", b"p"), ("binary", b"hello compressed world" * 50)]


def test_uncompressed_messages_still_work_on_a_deflate_connection():
    r = run_all_chunkings(cframe(OP_TEXT, "plain") + cframe(OP_TEXT, deflate_raw(b"zip"), rsv=4), deflate=NCT)
    assert r.events == [("text", "plain"), ("text", "zip")]


def test_bfinal_block_then_more_messages():
    # a sender may end the stream with a final block; the next message starts anew
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    final = co.compress(b"first") + co.flush(zlib.Z_FINISH)
    r = run_all_chunkings(cframe(OP_TEXT, final, rsv=4) + cframe(OP_TEXT, deflate_raw(b"second"), rsv=4),
                          deflate=NCT)
    assert r.events == [("text", "first"), ("text", "second")]


def test_context_takeover_messages_reference_earlier_ones():
    params = DeflateParams(False, False)
    co = zlib.compressobj(6, zlib.DEFLATED, -15)
    msgs = [b"the same sentence again and again " * 3] * 4
    wire = b""
    for m in msgs:
        out = co.compress(m) + co.flush(zlib.Z_SYNC_FLUSH)
        wire += cframe(OP_BINARY, out[:-4], rsv=4)
    r = run(wire, deflate=params)
    assert r.events == [("binary", m) for m in msgs]
    # later messages were tiny on the wire: they really referenced the first one
    assert len(parse_frames(wire)[-1].payload) < 20
    # ... and a no-context codec must not keep the window
    c = server(params=params)
    assert c.compressor_shared is False


@pytest.mark.parametrize(
    "frames,error",
    [
        (cframe(OP_TEXT, deflate_raw(b"a"), fin=False, rsv=4) + cframe(OP_CONT, deflate_raw(b"b"), rsv=4),
         "compressed_control_or_continuation"),
        (cframe(OP_PING, b"", rsv=4), "compressed_control_or_continuation"),
        (cframe(OP_TEXT, b"x", rsv=2), "reserved_bits"),
        (cframe(OP_TEXT, b"x", rsv=6), "reserved_bits"),
        (cframe(OP_TEXT, deflate_raw(b"\xff\xfe"), rsv=4), "invalid_utf8"),
        (cframe(OP_TEXT, b"\x07\x00", rsv=4), "invalid_compressed_data"),
    ],
    ids=["rsv1-on-continuation", "rsv1-on-ping", "rsv2", "rsv1+rsv2", "utf8-after-inflate", "garbage"],
)
def test_rsv_rules_and_errors(frames, error):
    r = run_all_chunkings(frames, deflate=NCT)
    assert (r.state, r.error) == (FAILED, error)


def test_rsv1_without_negotiation_is_a_protocol_error():
    r = run(cframe(OP_TEXT, deflate_raw(b"x"), rsv=4))
    assert (r.state, r.error, r.close_code) == (FAILED, "reserved_bits", 1002)


def test_invalid_utf8_split_across_compressed_fragments():
    # the first two bytes of a 3-byte sequence, then "(" (not a continuation byte);
    # one deflate stream cut across two fragments
    body = deflate_raw(b"ok \xe2\x82" + b"(" + b"z" * 50)
    data = cframe(OP_TEXT, body[:3], fin=False, rsv=4) + cframe(OP_CONT, body[3:])
    r = run_all_chunkings(data, deflate=NCT)
    assert (r.state, r.error, r.close_code) == (FAILED, "invalid_utf8", 1007)


# -- the limits ---------------------------------------------------------------------------------


def bomb(n: int) -> bytes:
    return deflate_raw(b"\0" * n)


def test_a_bomb_closes_1009_after_at_most_the_limit():
    payload = bomb(50 << 20)  # 50 MiB of zeros in ~50 KiB
    assert len(payload) < 60_000
    c = server(max_message_size=1 << 20)
    events = c.receive_data(cframe(OP_BINARY, payload, rsv=4))
    assert events == []
    assert (c.state, c.error, c.close_code) == (FAILED, "inflated_too_big", 1009)
    assert not c.inflater_allocated  # the output buffer (<= limit + 1) is given back


def test_a_tiny_frame_that_would_inflate_past_the_limit():
    # repeated-match deflate data: a few dozen bytes for 64 KiB
    tiny = bomb(70000)
    assert len(tiny) < 100
    c = server(max_message_size=65536)
    c.receive_data(cframe(OP_BINARY, tiny, rsv=4))
    assert (c.state, c.close_code) == (FAILED, 1009)
    # exactly at the limit is fine
    c = server(max_message_size=65536)
    assert c.receive_data(cframe(OP_BINARY, bomb(65536), rsv=4)) == [("binary", b"\0" * 65536)]


def test_inflater_output_never_exceeds_limit_plus_one():
    inf = Inflater(15)
    with pytest.raises(OverflowError):
        inf.decompress(bomb(10_000_000), 1000)
    assert inf.decompress(bomb(1000), 1000) == b"\0" * 1000


def test_bomb_across_fragments_counts_the_whole_message():
    c = server(max_message_size=10000)
    a, b = stream_parts(b"\0" * 6000, b"\0" * 6000)
    data = cframe(OP_BINARY, a, fin=False, rsv=4) + cframe(OP_CONT, b)
    c.receive_data(data)
    assert (c.state, c.error) == (FAILED, "inflated_too_big")


def test_compressed_bytes_are_not_buffered_whole():
    payload = os.urandom(400_000)  # incompressible: the compressed stream is ~400 KB
    body = deflate_raw(payload)
    c = server(max_message_size=1 << 20)
    data = cframe(OP_BINARY, body, rsv=4)
    events = []
    peak = 0
    for i in range(0, len(data), 16384):
        events += c.receive_data(data[i : i + 16384])
        peak = max(peak, c.buffer_capacity)
    assert events == [("binary", payload)]
    assert peak <= 65536  # the read buffer held ~one chunk, not the frame


def test_declared_compressed_length_over_the_budget_fails_at_the_header():
    c = server(max_message_size=1000)
    head = bytes([0xC2, 0x80 | 127]) + (10**9).to_bytes(8, "big") + KEY
    c.receive_data(head)
    assert (c.state, c.error) == (FAILED, "message_too_big")


def test_thousands_of_empty_compressed_fragments_hit_the_fragment_cap():
    c = server(max_fragments=1000)
    data = cframe(OP_TEXT, b"", fin=False, rsv=4) + cframe(OP_CONT, b"", fin=False) * 5000
    c.receive_data(data)
    assert (c.state, c.error) == (FAILED, "too_many_fragments")


def test_inflater_released_on_idle_with_no_context_takeover():
    c = server()
    assert not c.inflater_allocated
    c.receive_data(cframe(OP_TEXT, deflate_raw(b"x" * 1000), rsv=4))
    assert c.inflater_allocated
    assert c.trim() is True
    assert not c.inflater_allocated
    # still works afterwards
    assert c.receive_data(cframe(OP_TEXT, deflate_raw(b"again"), rsv=4)) == [("text", "again")]


def test_inflater_kept_mid_message():
    c = server()
    a, b = stream_parts(b"abc" * 100, b"def")
    c.receive_data(cframe(OP_TEXT, a, fin=False, rsv=4))
    c.trim()
    assert c.inflater_allocated
    assert c.receive_data(cframe(OP_CONT, b)) == [("text", "abc" * 100 + "def")]


# -- outgoing -------------------------------------------------------------------------------------


def test_outgoing_messages_are_compressed_above_the_threshold():
    c = server()
    small = c.send_message("tiny")
    assert small == encode_frame(OP_TEXT, "tiny")
    big = c.send_message("compress me " * 100)
    (f,) = parse_frames(big)
    assert (f.fin, f.rsv, f.opcode, f.masked) == (True, 4, OP_TEXT, False)
    assert inflate_raw(f.payload) == b"compress me " * 100
    assert len(f.payload) < 100


def test_client_codec_masks_and_compresses_and_a_server_decodes():
    cl = Codec(is_client=True)
    cl.enable_deflate(DeflateParams(True, True, 15, 10))
    sv = server(params=DeflateParams(True, True, 15, 10))
    msgs = ["x" * 1000, "short", "é" * 3000, b"\x00\x01" * 2000]
    wire = b"".join(cl.send_message(m) for m in msgs)
    assert all(f.masked for f in parse_frames(wire))
    assert [e[1] for e in sv.receive_data(wire)] == msgs


def test_encode_frame_compress_is_shared_no_context_data():
    f1 = encode_frame(OP_TEXT, "room message " * 40, compress=True)
    f2 = encode_frame(OP_TEXT, "room message " * 40, compress=True)
    assert f1 == f2  # no context carried from one message to the next
    (p,) = parse_frames(f1)
    assert p.rsv == 4 and inflate_raw(p.payload) == b"room message " * 40
    f9 = encode_frame(OP_BINARY, b"abc" * 1000, compress=9)
    assert inflate_raw(parse_frames(f9)[0].payload, 9) == b"abc" * 1000
    with pytest.raises(ValueError):
        encode_frame(OP_TEXT, "x", fin=False, compress=True)
    with pytest.raises(ValueError):
        encode_frame(OP_PING, b"x", compress=True)


def test_deflater_window_respected():
    d = Deflater(6, 9, 8, True)
    data = os.urandom(300) * 20  # repeats at distance 300 (< 512)
    assert inflate_raw(d.compress_message(data), 9) == data
    with pytest.raises(ValueError):
        Deflater(6, 8, 8, True)


def test_empty_message_compressed():
    c = server(params=NCT)
    c.compress_min = 0
    (f,) = parse_frames(c.send_message(""))
    assert f.rsv == 4 and f.payload == b"\x00"
    assert run(cframe(OP_TEXT, b"\x00", rsv=4), deflate=NCT).events == [("text", "")]
    assert run(cframe(OP_TEXT, b"", rsv=4), deflate=NCT).events == [("text", "")]


def test_frame_helpers_agree_with_the_reference():
    assert parse_frames(frame(OP_TEXT, b"x", rsv=4))[0].rsv == 4
