"""Pure-Python reference helpers for the codec tests.

Everything here is written from RFC 6455 directly and shares no code with
``hero_fast._core``: frames are built and parsed byte by byte, masking is a
plain XOR loop. The tests compare the codec's output with these.
"""

from __future__ import annotations

import random
import struct
from dataclasses import dataclass, field

from hero_fast._core import Codec

# Codec.state values (see _core.pxd)
OPEN, CLOSING, CLOSED, FAILED = 0, 1, 2, 3

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA

# A fixed, "awkward" mask key: every byte different, high bits set in some.
KEY = b"\x37\xfa\x21\x3d"

# Payload sizes around the 7-bit / 16-bit / 64-bit length boundaries.
SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]

CHUNKINGS = ["whole", "bytewise", "random"]


def py_mask(data: bytes, key: bytes, phase: int = 0) -> bytes:
    """XOR ``data`` with ``key`` starting at mask offset ``phase`` (RFC 6455 5.3)."""
    return bytes(b ^ key[(i + phase) & 3] for i, b in enumerate(data))


def length_bytes(n: int, form: str | None = None) -> tuple[int, bytes]:
    """(7-bit length field, extended length bytes); minimal form unless ``form`` given."""
    if form is None:
        form = "7" if n <= 125 else "16" if n <= 0xFFFF else "64"
    if form == "7":
        assert n <= 125
        return n, b""
    if form == "16":
        return 126, struct.pack("!H", n)
    return 127, struct.pack("!Q", n)


def frame(
    opcode: int,
    payload: bytes | str = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    key: bytes | None = None,
    form: str | None = None,
    declared: int | None = None,
) -> bytes:
    """A frame built by hand. ``key`` masks it (client → server frames);
    ``declared`` overrides the length field (to lie about the length)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    n = len(payload) if declared is None else declared
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    ln7, ext = length_bytes(n, form)
    b1 = (0x80 if key is not None else 0) | ln7
    head = bytes([b0, b1]) + ext
    if key is not None:
        return head + key + py_mask(payload, key)
    return head + payload


def cframe(opcode: int, payload: bytes | str = b"", **kw) -> bytes:
    """A client frame (masked with KEY) for a server codec."""
    kw.setdefault("key", KEY)
    return frame(opcode, payload, **kw)


def close_payload(code: int, reason: bytes | str = b"") -> bytes:
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


@dataclass
class Parsed:
    fin: bool
    rsv: int
    opcode: int
    masked: bool
    key: bytes | None
    payload: bytes  # unmasked


def parse_frames(data: bytes) -> list[Parsed]:
    """Parse a stream of complete frames (reference parser, no limits)."""
    out = []
    i = 0
    while i < len(data):
        b0, b1 = data[i], data[i + 1]
        i += 2
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", data[i : i + 2])
            i += 2
        elif n == 127:
            (n,) = struct.unpack("!Q", data[i : i + 8])
            i += 8
        key = None
        if b1 & 0x80:
            key = data[i : i + 4]
            i += 4
        body = data[i : i + n]
        assert len(body) == n, "truncated frame"
        i += n
        out.append(
            Parsed(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, key is not None, key,
                   py_mask(body, key) if key else body)
        )
    return out


def deflate_raw(data: bytes, wbits: int = 15) -> bytes:
    """permessage-deflate payload of ``data`` made with Python's zlib (independent of
    the codec's compressor): raw deflate, sync flush, trailing 00 00 ff ff removed."""
    import zlib

    co = zlib.compressobj(6, zlib.DEFLATED, -wbits)
    out = co.compress(data) + co.flush(zlib.Z_SYNC_FLUSH)
    assert out.endswith(b"\x00\x00\xff\xff")
    return out[:-4]


def chunk(data: bytes, chunking: str, seed: int = 0) -> list[bytes]:
    """Split ``data`` the way a network might."""
    if chunking == "whole":
        return [data] if data else []
    if chunking == "bytewise":
        return [data[i : i + 1] for i in range(len(data))]
    rng = random.Random(seed)
    parts = []
    i = 0
    while i < len(data):
        # mostly small pieces, sometimes big ones, so splits land everywhere
        n = rng.choice([1, 2, 3, 5, 7, 13, rng.randint(1, 300), rng.randint(1, 70000)])
        parts.append(data[i : i + n])
        i += n
    return parts


@dataclass
class Result:
    events: list = field(default_factory=list)
    state: int = OPEN
    error: str | None = None
    close_code: int = 0
    close_reason: str | None = None
    sent: bytes = b""

    def key(self) -> tuple:
        # a client codec masks what it sends with fresh random keys: compare
        # the frames it sent, unmasked, rather than the raw bytes
        sent = [(f.fin, f.rsv, f.opcode, f.masked, f.payload) for f in parse_frames(self.sent)]
        return (self.events, self.state, self.error, self.close_code, self.close_reason, sent)


def run(data: bytes, chunking: str = "whole", *, seed: int = 0, codec: Codec | None = None, **kw) -> Result:
    """Feed ``data`` to a codec (new unless given) in the given chunking."""
    deflate = kw.pop("deflate", None)
    c = codec if codec is not None else Codec(**kw)
    if deflate is not None:
        c.enable_deflate(deflate)
    r = Result()
    for part in chunk(data, chunking, seed):
        r.events.extend(c.receive_data(part))
    r.state, r.error, r.close_code, r.close_reason = c.state, c.error, c.close_code, c.close_reason
    r.sent = c.data_to_send()
    return r


def run_all_chunkings(data: bytes, seeds: tuple[int, ...] = (1, 2), **kw) -> Result:
    """Feed ``data`` whole, one byte at a time and in random chunkings; assert the
    results are identical and return one of them."""
    ref = run(data, "whole", **kw)
    for chunking in ("bytewise",):
        got = run(data, chunking, **kw)
        assert got.key() == ref.key(), f"{chunking} differs from whole"
    for seed in seeds:
        got = run(data, "random", seed=seed, **kw)
        assert got.key() == ref.key(), f"random chunking seed={seed} differs from whole"
    return ref


def expected_close(code: int, reason: str = "") -> bytes:
    """The exact unmasked close frame a server codec sends."""
    return frame(OP_CLOSE, close_payload(code, reason) if code != 1005 else b"")


def assert_client_close(sent: bytes, code: int, reason: str | None = None) -> None:
    """A client codec's close frame is masked with a random key: check it whole."""
    (f,) = parse_frames(sent)
    assert (f.fin, f.rsv, f.opcode, f.masked) == (True, 0, OP_CLOSE, True)
    assert f.payload[:2] == struct.pack("!H", code)
    if reason is not None:
        assert f.payload[2:] == reason.encode()
    # and the bytes are exactly that frame masked with the key it carries
    assert sent == frame(OP_CLOSE, f.payload, key=f.key)
