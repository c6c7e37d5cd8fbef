# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""permessage-deflate (RFC 7692) for the codec: zlib streams driven through zlib's C
API, so inflation is capped to the exact byte.

- :class:`Inflater` inflates a message as its compressed bytes arrive, into an output
  buffer that never grows past the caller's limit + 1 byte: a 22-byte bomb that would
  inflate to gigabytes costs at most ``max_message_size + 1`` bytes and is refused.
- :class:`Deflater` compresses one message into a reusable scratch buffer. With no
  context takeover (the default) one compressor per (level, window, memLevel) is shared
  by the whole process (:func:`shared_deflater`), so a room message is compressed once
  and a connection holds no compressor at all.
- :func:`negotiate_deflate` picks the first acceptable ``permessage-deflate`` offer of a
  ``Sec-WebSocket-Extensions`` header in one linear pass (no regex; malformed headers
  and invalid or unsupported parameters decline the offer, never fail the handshake).

Memory (64-bit zlib 1.2/1.3): an inflater is ~7.1 KiB of state plus a 2**wbits window,
allocated on the first compressed message and released by the transport when the
connection is idle (client_no_context_takeover); a compressor is
2**(wbits+2) + 2**(memLevel+9) bytes + ~5.8 KiB (256 KiB for 15/8), shared by every
no-context-takeover connection.
"""

from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memset

__all__ = [
    "DEFAULT_LEVEL", "DEFAULT_MEM_LEVEL", "DeflateParams", "Deflater", "Inflater",
    "negotiate_deflate", "parse_extensions",
]

DEFAULT_LEVEL = 6
DEFAULT_MEM_LEVEL = 8

cdef enum:
    KEEP_BUFFER = 65536   # scratch/output buffers above this are given back after use
    FIRST_OUT = 4096


cdef class DeflateParams:
    """The agreed parameters of one permessage-deflate negotiation.

    ``*_max_window_bits`` are the LZ77 window each side compresses with (8-15);
    ``*_max_window_bits_sent`` say whether the parameter appears in the response.
    """

    def __init__(self, bint server_no_context_takeover=False, bint client_no_context_takeover=False,
                 int server_max_window_bits=15, int client_max_window_bits=15,
                 bint server_max_window_bits_sent=False, bint client_max_window_bits_sent=False):
        if not (8 <= server_max_window_bits <= 15 and 8 <= client_max_window_bits <= 15):
            raise ValueError("window bits must be between 8 and 15")
        self.server_no_context_takeover = server_no_context_takeover
        self.client_no_context_takeover = client_no_context_takeover
        self.server_max_window_bits = server_max_window_bits
        self.client_max_window_bits = client_max_window_bits
        self.server_max_window_bits_sent = server_max_window_bits_sent
        self.client_max_window_bits_sent = client_max_window_bits_sent

    @property
    def response(self):
        """The ``Sec-WebSocket-Extensions`` value a server answers with."""
        parts = ["permessage-deflate"]
        if self.server_no_context_takeover:
            parts.append("server_no_context_takeover")
        if self.client_no_context_takeover:
            parts.append("client_no_context_takeover")
        if self.server_max_window_bits_sent:
            parts.append(f"server_max_window_bits={self.server_max_window_bits}")
        if self.client_max_window_bits_sent:
            parts.append(f"client_max_window_bits={self.client_max_window_bits}")
        return "; ".join(parts)

    def __repr__(self):
        return f"<DeflateParams {self.response}>"

    def __eq__(self, other):
        if not isinstance(other, DeflateParams):
            return NotImplemented
        return self.response == other.response and \
            self.server_max_window_bits == other.server_max_window_bits and \
            self.client_max_window_bits == other.client_max_window_bits

    @classmethod
    def from_response(cls, header):
        """Parse a server's answer (client side). Raises ValueError when it is not
        exactly one valid permessage-deflate response."""
        exts = parse_extensions(header)
        if len(exts) != 1 or exts[0][0] != "permessage-deflate":
            raise ValueError("not a permessage-deflate response")
        p = _check_params(exts[0][1], True)
        if p is None:
            raise ValueError("invalid permessage-deflate parameters")
        snct, cnct, swb, cwb = p
        return cls(snct, cnct, swb if swb > 0 else 15, cwb if cwb > 0 else 15, swb > 0, cwb > 0)


# ---------------------------------------------------------------------------
# Inflate
# ---------------------------------------------------------------------------

cdef class Inflater:
    """Raw-deflate decompressor for one direction of one connection."""

    def __cinit__(self, int wbits=15):
        if not (8 <= wbits <= 15):
            raise ValueError("window bits must be between 8 and 15")
        self.wbits = wbits
        self.live = False
        self.out = NULL
        self.out_len = self.out_cap = 0

    def __dealloc__(self):
        self.release()

    cdef int feed(self, const unsigned char *data, Py_ssize_t n, Py_ssize_t limit) except -2:
        """Inflate ``n`` bytes, appending to the output. 0: fine; 1: the output would
        pass ``limit`` (at most ``limit + 1`` bytes were produced); -1: invalid data."""
        cdef int r
        cdef Py_ssize_t newcap, before
        cdef unsigned char *nb
        cdef unsigned int chunk
        if not self.live:
            memset(&self.zs, 0, sizeof(z_stream))
            r = inflateInit2(&self.zs, -self.wbits)
            if r != Z_OK:
                raise MemoryError("inflateInit2 failed")
            self.live = True
        while True:
            if self.out_len >= self.out_cap:
                if self.out_cap > limit:
                    return 1
                newcap = self.out_cap * 2 if self.out_cap else FIRST_OUT
                if newcap > limit + 1:
                    newcap = limit + 1
                nb = <unsigned char *>PyMem_Realloc(self.out, newcap)
                if nb == NULL:
                    raise MemoryError()
                self.out = nb
                self.out_cap = newcap
            chunk = <unsigned int>min(n, <Py_ssize_t>0x40000000)
            self.zs.next_in = data
            self.zs.avail_in = chunk
            self.zs.next_out = self.out + self.out_len
            self.zs.avail_out = <unsigned int>min(self.out_cap - self.out_len, <Py_ssize_t>0x40000000)
            before = self.zs.avail_out
            r = inflate(&self.zs, Z_SYNC_FLUSH)
            self.out_len += before - self.zs.avail_out
            data += chunk - self.zs.avail_in
            n -= chunk - self.zs.avail_in
            if self.out_len > limit:
                return 1
            if r == Z_STREAM_END:
                # A final block (BFINAL=1): what follows starts a new stream.
                inflateReset(&self.zs)
                if n == 0:
                    return 0
                continue
            if r == Z_BUF_ERROR:
                if n == 0 and self.zs.avail_out > 0:
                    return 0
                continue  # output full: grow (or refuse) and go on
            if r != Z_OK:
                if r == Z_MEM_ERROR:
                    raise MemoryError()
                return -1  # Z_DATA_ERROR, Z_NEED_DICT, Z_STREAM_ERROR
            if n == 0 and self.zs.avail_out > 0:
                return 0

    cdef void end_message(self, bint reset_context):
        """Forget the message's output; with no context takeover also the window."""
        self.out_len = 0
        if self.out_cap > KEEP_BUFFER:
            PyMem_Free(self.out)
            self.out = NULL
            self.out_cap = 0
        if reset_context and self.live:
            inflateReset(&self.zs)

    cdef void release(self):
        """Give back the zlib state and the output buffer (idle connections)."""
        if self.live:
            inflateEnd(&self.zs)
            self.live = False
        if self.out != NULL:
            PyMem_Free(self.out)
            self.out = NULL
        self.out_len = self.out_cap = 0

    @property
    def allocated(self):
        """Whether zlib state or an output buffer is held (for tests and monitoring)."""
        return self.live or self.out != NULL

    def decompress(self, data, Py_ssize_t limit, bint end=True):
        """Inflate ``data`` (a whole message's payload when ``end``) and return the
        output; raises ValueError on invalid data and OverflowError past ``limit``.
        For tests and fuzzing; the codec calls the C methods."""
        cdef bytes b = bytes(data)
        cdef int r = 0
        if PyBytes_GET_SIZE(b):
            r = self.feed(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b), limit)
        if r == 0 and end:
            r = self.feed(<const unsigned char *>b"\x00\x00\xff\xff", 4, limit)
        if r == 1:
            self.end_message(True)
            raise OverflowError("inflated data over the limit")
        if r == -1:
            self.end_message(True)
            raise ValueError("invalid deflate data")
        out = (<char *>self.out)[:self.out_len] if self.out_len else b""
        if end:
            self.end_message(False)
        return out


# ---------------------------------------------------------------------------
# Deflate
# ---------------------------------------------------------------------------

cdef class Deflater:
    """Raw-deflate compressor. ``no_context=True`` resets after every message, which
    is what lets one instance serve every no-context-takeover connection."""

    def __cinit__(self, int level=DEFAULT_LEVEL, int wbits=15, int mem_level=DEFAULT_MEM_LEVEL,
                  bint no_context=True):
        if not (9 <= wbits <= 15):
            raise ValueError("compression window bits must be between 9 and 15 (zlib cannot deflate with 8)")
        if not (0 <= level <= 9) or not (1 <= mem_level <= 9):
            raise ValueError("level must be 0-9 and mem_level 1-9")
        self.level = level
        self.wbits = wbits
        self.mem_level = mem_level
        self.no_context = no_context
        self.live = False
        self.buf = NULL
        self.cap = 0

    def __dealloc__(self):
        if self.live:
            deflateEnd(&self.zs)
        if self.buf != NULL:
            PyMem_Free(self.buf)

    cdef Py_ssize_t compress(self, const unsigned char *data, Py_ssize_t n) except -1:
        """Compress one message into ``self.buf``; returns its length (the trailing
        00 00 ff ff of the sync flush removed, RFC 7692 7.2.1)."""
        cdef int r
        cdef Py_ssize_t want, m = 0, newcap
        cdef unsigned char *nb
        cdef unsigned int chunk
        cdef int flush
        if not self.live:
            memset(&self.zs, 0, sizeof(z_stream))
            r = deflateInit2(&self.zs, self.level, Z_DEFLATED, -self.wbits, self.mem_level, Z_DEFAULT_STRATEGY)
            if r != Z_OK:
                raise MemoryError("deflateInit2 failed")
            self.live = True
        want = <Py_ssize_t>deflateBound(&self.zs, <unsigned long>n) + 16
        if self.cap < want:
            nb = <unsigned char *>PyMem_Realloc(self.buf, want)
            if nb == NULL:
                raise MemoryError()
            self.buf = nb
            self.cap = want
        while True:
            chunk = <unsigned int>min(n, <Py_ssize_t>0x40000000)
            flush = Z_SYNC_FLUSH if chunk == n else Z_NO_FLUSH
            self.zs.next_in = data
            self.zs.avail_in = chunk
            self.zs.next_out = self.buf + m
            self.zs.avail_out = <unsigned int>min(self.cap - m, <Py_ssize_t>0x40000000)
            want = self.zs.avail_out
            r = deflate(&self.zs, flush)
            if r != Z_OK and r != Z_BUF_ERROR:
                deflateEnd(&self.zs)
                self.live = False
                raise RuntimeError(f"deflate failed ({r})")
            m += want - self.zs.avail_out
            data += chunk - self.zs.avail_in
            n -= chunk - self.zs.avail_in
            if self.zs.avail_out == 0:
                # more output may be pending: grow and go on
                newcap = self.cap * 2
                nb = <unsigned char *>PyMem_Realloc(self.buf, newcap)
                if nb == NULL:
                    raise MemoryError()
                self.buf = nb
                self.cap = newcap
                continue
            if n == 0 and flush == Z_SYNC_FLUSH:
                break
        if self.no_context:
            deflateReset(&self.zs)
        if m >= 4 and self.buf[m - 4] == 0 and self.buf[m - 3] == 0 and \
                self.buf[m - 2] == 0xFF and self.buf[m - 1] == 0xFF:
            m -= 4
        return m

    cdef void trim(self):
        if self.cap > KEEP_BUFFER:
            PyMem_Free(self.buf)
            self.buf = NULL
            self.cap = 0

    def compress_message(self, data):
        """The compressed payload of one message (for tests and tools)."""
        cdef bytes b = bytes(data)
        cdef Py_ssize_t m = self.compress(<const unsigned char *>PyBytes_AS_STRING(b), PyBytes_GET_SIZE(b))
        out = (<char *>self.buf)[:m] if m else b""
        self.trim()
        return out


cdef dict _shared = {}


cdef Deflater shared_deflater(int level, int wbits, int mem_level):
    """The process-wide no-context-takeover compressor for these settings."""
    key = (level, wbits, mem_level)
    d = _shared.get(key)
    if d is None:
        d = Deflater(level, wbits, mem_level, True)
        _shared[key] = d
    return <Deflater>d


def _shared_deflater(int level=DEFAULT_LEVEL, int wbits=15, int mem_level=DEFAULT_MEM_LEVEL):
    return shared_deflater(level, wbits, mem_level)


# ---------------------------------------------------------------------------
# Sec-WebSocket-Extensions: one linear pass, no regex
# ---------------------------------------------------------------------------

cdef inline bint _tchar(unsigned char c):
    # RFC 7230 tchar
    if c >= 128:
        return False
    if (c >= 48 and c <= 57) or (c >= 65 and c <= 90) or (c >= 97 and c <= 122):
        return True
    return c in b"!#$%&'*+-.^_`|~"


cdef inline Py_ssize_t _ows(const unsigned char *s, Py_ssize_t i, Py_ssize_t n):
    while i < n and (s[i] == 32 or s[i] == 9):
        i += 1
    return i


cdef class _Scanner:
    """Walks ``extension *( "," extension )`` one extension at a time."""
    cdef bytes data
    cdef const unsigned char *s
    cdef Py_ssize_t n
    cdef Py_ssize_t i
    cdef bint bad

    def __cinit__(self, bytes data):
        self.data = data
        self.s = <const unsigned char *>PyBytes_AS_STRING(data)
        self.n = PyBytes_GET_SIZE(data)
        self.i = 0
        self.bad = False

    cdef str token(self):
        cdef Py_ssize_t j = self.i
        while self.i < self.n and _tchar(self.s[self.i]):
            self.i += 1
        if self.i == j:
            return None
        return (<const char *>self.s)[j:self.i].decode("ascii").lower()

    cdef str quoted(self):
        # after the opening quote; qdtext / quoted-pair, result must be a token later
        cdef list out = []
        cdef unsigned char c
        cdef Py_ssize_t j
        self.i += 1
        j = self.i
        while self.i < self.n:
            c = self.s[self.i]
            if c == 34:  # closing quote
                out.append((<const char *>self.s)[j:self.i].decode("latin-1"))
                self.i += 1
                return "".join(out).lower()
            if c == 92:  # backslash: quoted-pair
                out.append((<const char *>self.s)[j:self.i].decode("latin-1"))
                self.i += 1
                if self.i >= self.n:
                    return None
                out.append(chr(self.s[self.i]))
                self.i += 1
                j = self.i
                continue
            if c < 32 and c != 9 or c == 127:
                return None
            self.i += 1
        return None

    cdef object next_extension(self):
        """(name, [(param, value or None)]) of the next extension; None at the end
        or on a syntax error (``bad`` tells which)."""
        cdef str name, key, val
        cdef list params
        while True:
            self.i = _ows(self.s, self.i, self.n)
            if self.i < self.n and self.s[self.i] == 44:  # empty list element
                self.i += 1
                continue
            break
        if self.i >= self.n:
            return None
        name = self.token()
        if name is None:
            self.bad = True
            return None
        params = []
        self.i = _ows(self.s, self.i, self.n)
        while self.i < self.n and self.s[self.i] == 59:  # ';'
            self.i = _ows(self.s, self.i + 1, self.n)
            key = self.token()
            if key is None:
                self.bad = True
                return None
            self.i = _ows(self.s, self.i, self.n)
            val = None
            if self.i < self.n and self.s[self.i] == 61:  # '='
                self.i = _ows(self.s, self.i + 1, self.n)
                if self.i < self.n and self.s[self.i] == 34:
                    val = self.quoted()
                else:
                    val = self.token()
                if val is None:
                    self.bad = True
                    return None
                self.i = _ows(self.s, self.i, self.n)
            params.append((key, val))
        if self.i < self.n:
            if self.s[self.i] != 44:
                self.bad = True
                return None
            self.i += 1
        return (name, params)


cdef bytes _joined(values):
    if isinstance(values, str):
        values = (values,)
    return ", ".join(values).encode("latin-1", "replace")


def parse_extensions(values):
    """``[(name, [(param, value or None), ...]), ...]`` of ``Sec-WebSocket-Extensions``
    header value(s), names and params lower-cased; ValueError on a syntax error.
    Linear in the header's length."""
    cdef _Scanner sc = _Scanner(_joined(values))
    out = []
    while True:
        ext = sc.next_extension()
        if ext is None:
            break
        out.append(ext)
    if sc.bad:
        raise ValueError(f"malformed Sec-WebSocket-Extensions at offset {sc.i}")
    return out


cdef int _window_value(str v):
    # 1*DIGIT without leading zeroes, 8..15 (RFC 7692 7.1.2)
    if v is None or not (1 <= len(v) <= 2) or not v.isdigit() or v[0] == "0":
        return -1
    cdef int w = int(v)
    return w if 8 <= w <= 15 else -1


cdef object _check_params(list params, bint response):
    """(server_nct, client_nct, server_wbits, client_wbits) with 0 = absent and -1 =
    present without a value, or None when the offer must be declined (RFC 7692 5.1:
    unknown, duplicate or invalid parameters)."""
    cdef bint snct = False, cnct = False
    cdef int swb = 0, cwb = 0
    seen = set()
    for key, val in params:
        if key in seen:
            return None
        seen.add(key)
        if key == "server_no_context_takeover":
            if val is not None:
                return None
            snct = True
        elif key == "client_no_context_takeover":
            if val is not None:
                return None
            cnct = True
        elif key == "server_max_window_bits":
            swb = _window_value(val)
            if swb < 0:
                return None
        elif key == "client_max_window_bits":
            if val is None:
                if response:
                    return None
                cwb = -1
            else:
                cwb = _window_value(val)
                if cwb < 0:
                    return None
        else:
            return None
    return snct, cnct, swb, cwb


def negotiate_deflate(values, bint server_no_context_takeover=True, bint client_no_context_takeover=True,
                      int server_max_window_bits=15, int client_max_window_bits=15, Py_ssize_t max_offers=32):
    """Server side: the :class:`DeflateParams` for the first acceptable
    ``permessage-deflate`` offer in ``values`` (header value or values), or None.

    Our settings only ever make the agreement *cheaper*: no context takeover is asked
    for when configured, and window bits are lowered to ours where the offer lets us
    (``client_max_window_bits`` in the offer). An offer asking us for a window of 8
    (zlib cannot compress with it) is accepted, and we then send uncompressed
    messages (RFC 7692 allows it). Offers with unknown, duplicate or invalid
    parameters are declined (RFC 7692 5.1), as is a malformed header; at most
    ``max_offers`` permessage-deflate offers are looked at. One linear pass.
    """
    cdef _Scanner sc = _Scanner(_joined(values))
    cdef Py_ssize_t seen_offers = 0
    cdef int swb, cwb
    if not (8 <= server_max_window_bits <= 15 and 8 <= client_max_window_bits <= 15):
        raise ValueError("window bits must be between 8 and 15")
    while True:
        ext = sc.next_extension()
        if ext is None:
            return None
        if ext[0] != "permessage-deflate":
            continue
        seen_offers += 1
        if seen_offers > max_offers:
            return None
        p = _check_params(ext[1], False)
        if p is None:
            continue
        snct, cnct, swb, cwb = p
        params = DeflateParams.__new__(DeflateParams)
        params.server_no_context_takeover = snct or server_no_context_takeover
        params.client_no_context_takeover = client_no_context_takeover
        if swb > 0:
            params.server_max_window_bits = min(swb, server_max_window_bits)
            params.server_max_window_bits_sent = True
        else:
            params.server_max_window_bits = server_max_window_bits
            params.server_max_window_bits_sent = False
        if cwb != 0:
            params.client_max_window_bits = min(15 if cwb < 0 else cwb, client_max_window_bits)
            params.client_max_window_bits_sent = True
        else:
            params.client_max_window_bits = 15  # the client may use the whole window
            params.client_max_window_bits_sent = False
        return params
