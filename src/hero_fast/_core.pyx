# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Sans-I/O WebSocket codec (RFC 6455): bytes in, events and bytes out.

Never imports asyncio. The transport (or a test) writes received bytes into the
codec's own buffer (``get_buffer``/``buffer_updated``, zero-copy) or hands them
over (``receive_data``); decoded messages go to a :class:`Sink`; control frames
the protocol requires (pong, close) are queued and read back with
``data_to_send``.
"""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.bytearray cimport PyByteArray_AS_STRING, PyByteArray_GET_SIZE, PyByteArray_Resize
from cpython.buffer cimport PyBUF_SIMPLE, PyBUF_WRITABLE, PyObject_GetBuffer, PyBuffer_Release
from cpython.mem cimport PyMem_Free, PyMem_Malloc, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.stdint cimport uint16_t, uint64_t
from libc.string cimport memcpy, memmove

import base64
import hashlib
import os

from hero_fast._deflate cimport DeflateParams, Deflater, Inflater, shared_deflater
from hero_fast._deflate import DEFAULT_LEVEL, DEFAULT_MEM_LEVEL, negotiate_deflate

globals()["DeflateParams"] = DeflateParams  # re-exported: the agreed permessage-deflate parameters

cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char *mem, Py_ssize_t size, int flags)
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    int PyBUF_WRITE

__all__ = [
    "Codec", "Sink", "encode_frame", "encode_close", "PROTOCOL_ERRORS",
    "HandshakeError", "accept_key", "check_upgrade_request", "build_accept_response",
    "build_http_response", "OPCODES", "DEFAULT_MAX_MESSAGE_SIZE", "DEFAULT_MAX_FRAGMENTS",
    "is_valid_close_code", "DeflateParams", "negotiate_deflate", "DEFAULT_COMPRESS_MIN",
]

DEFAULT_MAX_MESSAGE_SIZE = 1 << 20
DEFAULT_MAX_FRAGMENTS = 1024
#: messages shorter than this many bytes are sent uncompressed on a deflate connection
DEFAULT_COMPRESS_MIN = 128
OPCODES = {"continuation": 0, "text": 1, "binary": 2, "close": 8, "ping": 9, "pong": 10}

cdef enum:
    # Smallest read buffer; a codec grows it only as bytes actually arrive.
    MIN_BUFFER = 4096
    # Largest free space asked for a read: a read that fills what was offered
    # doubles the next offer up to this (fewer, larger reads under load).
    MAX_READ = 256 * 1024
    # Above this the buffer is given back as soon as it is empty again; smaller
    # ones are kept while the connection is busy (freeing and re-growing one per
    # read costs an mmap/munmap pair past glibc's threshold) and released by the
    # transport's idle tick.
    SHRINK_ABOVE = 1 << 20

# ---------------------------------------------------------------------------
# The one place that maps each protocol error to its close code and reason.
# ---------------------------------------------------------------------------
cdef enum:
    E_UNMASKED = 0
    E_MASKED = 1
    E_RSV = 2
    E_OPCODE = 3
    E_CONTROL_FRAGMENTED = 4
    E_CONTROL_TOO_LONG = 5
    E_NOTHING_TO_CONTINUE = 6
    E_EXPECTED_CONTINUATION = 7
    E_LENGTH_TOP_BIT = 8
    E_TOO_BIG = 9
    E_TOO_MANY_FRAGMENTS = 10
    E_INVALID_UTF8 = 11
    E_CLOSE_ONE_BYTE = 12
    E_CLOSE_CODE = 13
    E_CLOSE_REASON_UTF8 = 14
    E_RSV1_MISPLACED = 15
    E_INFLATE = 16
    E_INFLATED_TOO_BIG = 17

cdef tuple _ERROR_TABLE = (
    ("unmasked_frame", 1002, "client frames must be masked"),
    ("masked_frame", 1002, "server frames must not be masked"),
    ("reserved_bits", 1002, "reserved bits set without a negotiated extension"),
    ("reserved_opcode", 1002, "reserved opcode"),
    ("fragmented_control", 1002, "fragmented control frame"),
    ("control_too_long", 1002, "control frame payload over 125 bytes"),
    ("nothing_to_continue", 1002, "continuation frame without a message to continue"),
    ("expected_continuation", 1002, "new data frame inside a fragmented message"),
    ("length_top_bit", 1002, "64-bit payload length with the most significant bit set"),
    ("message_too_big", 1009, "message too big"),
    ("too_many_fragments", 1009, "too many fragments in one message"),
    ("invalid_utf8", 1007, "invalid UTF-8 in text message"),
    ("close_one_byte", 1002, "close frame with a 1-byte payload"),
    ("invalid_close_code", 1002, "invalid close code"),
    ("close_reason_utf8", 1007, "invalid UTF-8 in close reason"),
    ("compressed_control_or_continuation", 1002, "RSV1 set on a control or continuation frame"),
    ("invalid_compressed_data", 1007, "invalid compressed data"),
    ("inflated_too_big", 1009, "message too big after decompression"),
)

#: name -> (close code, reason) for every protocol error the codec can detect.
PROTOCOL_ERRORS = {name: (code, reason) for name, code, reason in _ERROR_TABLE}


cpdef bint is_valid_close_code(int code):
    """Whether ``code`` may appear in a close frame on the wire (RFC 6455 7.4)."""
    return (1000 <= code <= 1003) or (1007 <= code <= 1014) or (3000 <= code <= 4999)


# ---------------------------------------------------------------------------
# Mask keys: RFC 6455 5.3 wants them unpredictable; take them from os.urandom
# in blocks so a client does not pay a system call per frame.
# ---------------------------------------------------------------------------
cdef bytes _mask_pool = b""
cdef Py_ssize_t _mask_pos = 0

cdef inline void _next_mask_key(unsigned char *out):
    global _mask_pool, _mask_pos
    if _mask_pos + 4 > PyBytes_GET_SIZE(_mask_pool):
        _mask_pool = os.urandom(4096)
        _mask_pos = 0
    memcpy(out, PyBytes_AS_STRING(_mask_pool) + _mask_pos, 4)
    _mask_pos += 4


cdef Py_ssize_t header_size(Py_ssize_t n, bint mask) noexcept nogil:
    """Bytes of a frame header for an ``n``-byte payload."""
    cdef Py_ssize_t hl = 2
    if n > 65535:
        hl += 8
    elif n > 125:
        hl += 2
    return hl + 4 if mask else hl


cdef void write_header(unsigned char *p, int opcode, Py_ssize_t n, bint fin, bint mask, int rsv) noexcept nogil:
    """The header of a frame (``header_size`` bytes) at ``p``; with ``mask`` a fresh
    key is NOT written: the caller fills the last 4 bytes."""
    cdef uint64_t ln = <uint64_t>n
    cdef int i
    cdef unsigned char mbit = 0x80 if mask else 0
    p[0] = (0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)
    if n > 65535:
        p[1] = mbit | 127
        for i in range(8):
            p[2 + i] = (ln >> (56 - 8 * i)) & 0xFF
    elif n > 125:
        p[1] = mbit | 126
        p[2] = (n >> 8) & 0xFF
        p[3] = n & 0xFF
    else:
        p[1] = mbit | <unsigned char>n


cdef bytes build_frame(int opcode, const unsigned char *data, Py_ssize_t n,
                       bint fin, bint mask, int rsv):
    cdef Py_ssize_t hl = header_size(n, mask)
    cdef bytes frame = PyBytes_FromStringAndSize(NULL, hl + n)
    cdef unsigned char *p = <unsigned char *>PyBytes_AS_STRING(frame)
    write_header(p, opcode, n, fin, mask, rsv)
    if n:
        memcpy(p + hl, data, n)
    if mask:
        _next_mask_key(p + hl - 4)
        hf_mask(p + hl, n, p + hl - 4, 0)
    return frame


def _apply_mask(data, key, Py_ssize_t phase=0):
    """XOR a writable buffer in place with a 4-byte mask ``key`` starting at
    mask offset ``phase`` — the kernel the parser unmasks with. Private: for
    tests and micro-benchmarks."""
    cdef Py_buffer view
    cdef Py_buffer kview
    PyObject_GetBuffer(key, &kview, PyBUF_SIMPLE)
    try:
        if kview.len != 4:
            raise ValueError("mask key must be 4 bytes")
        PyObject_GetBuffer(data, &view, PyBUF_WRITABLE)
        try:
            hf_mask(<unsigned char *>view.buf, <size_t>view.len,
                    <const unsigned char *>kview.buf, <size_t>(phase & 3))
        finally:
            PyBuffer_Release(&view)
    finally:
        PyBuffer_Release(&kview)


cdef bytes _compressed_frame(int opcode, const unsigned char *data, Py_ssize_t n, bint mask, int wbits):
    cdef Deflater d = shared_deflater(DEFAULT_LEVEL, wbits, DEFAULT_MEM_LEVEL)
    cdef Py_ssize_t m = d.compress(data, n)
    cdef bytes frame = build_frame(opcode, d.buf, m, True, mask, 4)
    d.trim()
    return frame


cpdef bytes encode_frame(int opcode, object payload, bint fin=True, bint mask=False, int rsv=0, int compress=0):
    """One complete frame. ``payload`` is ``str`` (sent as UTF-8) or bytes-like.

    ``compress`` (True, or window bits 9-15; True means 15) makes one permessage-deflate
    message (RSV1, no context takeover) that every connection which negotiated no
    server context takeover with at least that window can be sent (see ``fanout``).
    """
    cdef Py_ssize_t n
    cdef const char *s
    cdef Py_buffer view
    cdef bytes frame
    if compress:
        if compress == 1:
            compress = 15
        if not (9 <= compress <= 15) or not fin or opcode not in (OP_TEXT, OP_BINARY) or rsv:
            raise ValueError("compress needs a whole text or binary message and window bits 9-15")
        if isinstance(payload, str):
            s = PyUnicode_AsUTF8AndSize(payload, &n)
            return _compressed_frame(opcode, <const unsigned char *>s, n, mask, compress)
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            frame = _compressed_frame(opcode, <const unsigned char *>view.buf, view.len, mask, compress)
        finally:
            PyBuffer_Release(&view)
        return frame
    if type(payload) is str or isinstance(payload, str):  # str subclasses are text too
        s = PyUnicode_AsUTF8AndSize(payload, &n)
        return build_frame(opcode, <const unsigned char *>s, n, fin, mask, rsv)
    if type(payload) is bytes:
        return build_frame(opcode, <const unsigned char *>PyBytes_AS_STRING(payload),
                           PyBytes_GET_SIZE(payload), fin, mask, rsv)
    PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
    try:
        frame = build_frame(opcode, <const unsigned char *>view.buf, view.len, fin, mask, rsv)
    finally:
        PyBuffer_Release(&view)
    return frame


cdef Py_ssize_t plain_payload_offset(bytes frame):
    """Header length of ``frame`` when it is one whole unmasked text/binary message
    without RSV bits (one we may compress), else -1."""
    cdef Py_ssize_t n = PyBytes_GET_SIZE(frame)
    cdef const unsigned char *p = <const unsigned char *>PyBytes_AS_STRING(frame)
    cdef Py_ssize_t hl
    if n < 2 or (p[0] != 0x81 and p[0] != 0x82) or (p[1] & 0x80):
        return -1
    hl = 2
    if (p[1] & 0x7F) == 126:
        hl = 4
    elif (p[1] & 0x7F) == 127:
        hl = 10
    return hl if n >= hl else -1


def encode_close(int code=1000, str reason="", bint mask=False):
    """A close frame; ``code`` 1005 means "no status code" and sends an empty payload."""
    if code == 1005:
        return build_frame(OP_CLOSE, NULL, 0, True, mask, 0)
    cdef bytes r = reason.encode("utf-8")
    if len(r) > 123:
        r = r[:123].decode("utf-8", "ignore").encode("utf-8")
    cdef bytes body = bytes(((code >> 8) & 0xFF, code & 0xFF)) + r
    return build_frame(OP_CLOSE, <const unsigned char *>PyBytes_AS_STRING(body),
                       PyBytes_GET_SIZE(body), True, mask, 0)


cdef class Sink:
    """Receives decoded events; the base class ignores them."""

    cdef int on_data(self, const unsigned char *p, Py_ssize_t n, bint is_text) except -1:
        if is_text:
            return self.on_message(PyUnicode_DecodeUTF8(<const char *>p, n, NULL), True)
        return self.on_message(PyBytes_FromStringAndSize(<const char *>p, n), False)

    cdef int on_message(self, object payload, bint is_text) except -1:
        return 0

    cdef int on_ping(self, bytes payload) except -1:
        return 0

    cdef int on_pong(self, bytes payload) except -1:
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        return 0


cdef class _EventList(Sink):
    cdef list events

    def __cinit__(self):
        self.events = []

    cdef int on_message(self, object payload, bint is_text) except -1:
        self.events.append(("text" if is_text else "binary", payload))
        return 0

    cdef int on_ping(self, bytes payload) except -1:
        self.events.append(("ping", payload))
        return 0

    cdef int on_pong(self, bytes payload) except -1:
        self.events.append(("pong", payload))
        return 0

    cdef int on_close(self, int code, str reason) except -1:
        self.events.append(("close", code, reason))
        return 0


cdef class Codec:
    """One side of one WebSocket connection.

    Server side by default (expects masked frames, sends unmasked ones); with
    ``is_client=True`` the reverse. Limits are checked before memory is spent:
    a frame's declared length and the bytes accumulated across fragments
    against ``max_message_size`` (close 1009), the fragment count against
    ``max_fragments`` (1009).
    """

    def __cinit__(self, bint is_client=False, Py_ssize_t max_message_size=DEFAULT_MAX_MESSAGE_SIZE,
                  Py_ssize_t max_fragments=DEFAULT_MAX_FRAGMENTS, Sink sink=None):
        if max_message_size < 125:
            raise ValueError("max_message_size must be at least 125")
        if max_fragments < 1:
            raise ValueError("max_fragments must be at least 1")
        self.is_client = is_client
        self.max_message_size = max_message_size
        self.max_fragments = max_fragments
        self.allowed_rsv = 0
        self.buf = NULL
        self.cap = self.start = self.end = 0
        self.have_header = False
        self.msg_opcode = 0
        self.msg_size = 0
        self.frag_count = 0
        self.frag = None
        self.state = STATE_OPEN
        self.close_code = 0
        self.close_reason = None
        self.error = None
        self.outgoing = None
        self.sink = sink
        self.deflate = False
        self.inflater = None
        self.deflater = None
        self.compress_min = DEFAULT_COMPRESS_MIN
        self.msg_compressed = False
        self.streaming = False
        self.wire_size = 0
        self.frames_done = 0
        self.auto_pong = True
        self.msg_budget = -1
        self.ping_budget = -1
        self.throttled = 0
        self.read_size = MIN_BUFFER

    def enable_deflate(self, DeflateParams params not None, int level=DEFAULT_LEVEL,
                       int mem_level=DEFAULT_MEM_LEVEL, Py_ssize_t min_size=DEFAULT_COMPRESS_MIN):
        """Use permessage-deflate with the agreed ``params`` (from
        :func:`negotiate_deflate` on a server, ``DeflateParams.from_response`` on a
        client). Incoming RSV1 messages are inflated with an output cap of
        ``max_message_size``; outgoing messages of ``min_size`` bytes or more are
        compressed (``min_size < 0``: never). With no context takeover on our side
        the compressor is the process-wide shared one."""
        cdef int out_wbits, in_wbits
        cdef bint out_nct, in_nct
        if self.is_client:
            out_wbits, out_nct = params.client_max_window_bits, params.client_no_context_takeover
            in_wbits, in_nct = params.server_max_window_bits, params.server_no_context_takeover
        else:
            out_wbits, out_nct = params.server_max_window_bits, params.server_no_context_takeover
            in_wbits, in_nct = params.client_max_window_bits, params.client_no_context_takeover
        self.deflate = True
        self.allowed_rsv |= 4
        self.inflater = Inflater(in_wbits)
        self.inflate_no_context = in_nct
        self.compress_min = min_size
        if out_wbits < 9 or min_size < 0:
            self.deflater = None  # zlib cannot compress with a 256-byte window: send plain
            self.compress_min = -1
        elif out_nct:
            self.deflater = shared_deflater(level, out_wbits, mem_level)
        else:
            self.deflater = Deflater(level, out_wbits, mem_level, False)

    @property
    def inflater_allocated(self):
        """Whether this codec holds zlib inflate state or output (tests, monitoring)."""
        return self.inflater is not None and self.inflater.allocated

    @property
    def compressor_shared(self):
        """True when outgoing compression uses the process-wide shared compressor,
        False for a per-connection one (context takeover), None without compression."""
        if self.deflater is None:
            return None
        return self.deflater.no_context

    def __dealloc__(self):
        if self.buf != NULL:
            PyMem_Free(self.buf)

    # -- input -------------------------------------------------------------

    cdef unsigned char *write_ptr(self, Py_ssize_t *avail) except NULL:
        """Room for the next read, compacting or growing the buffer as needed."""
        cdef Py_ssize_t pending = self.end - self.start
        cdef Py_ssize_t want = self.read_size
        cdef Py_ssize_t newcap
        cdef unsigned char *nb
        if self.have_header:
            # An incomplete frame: make room for the rest of it, bounded by
            # what a read can bring (the declared length was already checked
            # against the limits, and growth is by doubling as bytes arrive).
            want = min(self.frame_len - self.done, pending + self.read_size)
            if want < self.read_size:
                want = self.read_size
        if self.cap - self.end >= want:
            avail[0] = self.cap - self.end
            return self.buf + self.end
        if self.start > 0:
            if pending:
                memmove(self.buf, self.buf + self.start, pending)
            self.start = 0
            self.end = pending
            if self.cap - self.end >= want:
                avail[0] = self.cap - self.end
                return self.buf + self.end
        newcap = self.cap * 2 if self.cap else MIN_BUFFER
        while newcap - pending < want:
            newcap *= 2
        nb = <unsigned char *>PyMem_Realloc(self.buf, newcap)
        if nb == NULL:
            raise MemoryError()
        self.buf = nb
        self.cap = newcap
        avail[0] = self.cap - self.end
        return self.buf + self.end

    def get_buffer(self, Py_ssize_t sizehint=-1):
        """A writable view of free buffer space (``BufferedProtocol.get_buffer``)."""
        cdef Py_ssize_t avail
        cdef unsigned char *p = self.write_ptr(&avail)
        self.offered = avail
        return PyMemoryView_FromMemory(<char *>p, avail, PyBUF_WRITE)

    cdef void read_done(self, Py_ssize_t nbytes) noexcept:
        """A read filled the whole offer: the socket holds more, offer twice as much
        next time (up to MAX_READ); the idle release goes back to the minimum."""
        if nbytes >= self.offered and self.read_size < MAX_READ:
            self.read_size = min(MAX_READ, self.read_size * 2)

    def buffer_updated(self, Py_ssize_t nbytes):
        """``nbytes`` were written into the view from ``get_buffer``; decode them.
        Without a sink, return the events as ``receive_data`` does."""
        cdef _EventList collector = None
        if nbytes < 0 or nbytes > self.cap - self.end:
            # More than the view offered would mean reading past the buffer.
            raise ValueError("nbytes exceeds the buffer returned by get_buffer")
        if self.sink is None:
            # A codec made without a sink has nothing to call back: collect the
            # events (calling a Sink method on None would crash the process).
            collector = _EventList()
            self.sink = collector
        try:
            self.feed(nbytes)
        finally:
            if collector is not None:
                self.sink = None
        return collector.events if collector is not None else None

    def resume(self):
        """Parse what a budget left in the buffer (after raising ``msg_budget`` or
        ``ping_budget``); without a sink, return the events as ``receive_data`` does."""
        cdef _EventList collector = None
        if self.sink is None:
            collector = _EventList()
            self.sink = collector
        try:
            self.parse()
        finally:
            if collector is not None:
                self.sink = None
        return collector.events if collector is not None else None

    cdef int feed(self, Py_ssize_t n) except -1:
        self.end += n
        self.parse()
        return 0

    def receive_data(self, data):
        """Decode ``data``; without a sink, return the events as tuples:
        ``("text", str)``, ``("binary", bytes)``, ``("ping", bytes)``,
        ``("pong", bytes)``, ``("close", code, reason)``. A protocol error ends
        decoding: see ``state``, ``error``, ``close_code`` and ``data_to_send``."""
        cdef Py_buffer view
        cdef Py_ssize_t off = 0, avail, take
        cdef unsigned char *p
        cdef _EventList collector = None
        if self.sink is None:
            collector = _EventList()
            self.sink = collector
        PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
        try:
            while off < view.len:
                p = self.write_ptr(&avail)
                take = min(avail, view.len - off)
                memcpy(p, <unsigned char *>view.buf + off, take)
                off += take
                self.feed(take)
        finally:
            PyBuffer_Release(&view)
            if collector is not None:
                self.sink = None
        return collector.events if collector is not None else None

    def buffered(self):
        """Bytes received but not yet part of a complete frame."""
        return self.end - self.start

    @property
    def buffer_capacity(self):
        """Bytes currently allocated for the read buffer (read-only; for tests
        and monitoring: it grows with bytes received, never with a declared length)."""
        return self.cap

    cdef Py_ssize_t release_buffer(self):
        """Give the read buffer back when it holds nothing (idle connections), and
        the inflater's zlib state when no compressed message is half-received and
        the peer does not take context over. Returns the bytes of read buffer freed."""
        cdef Py_ssize_t freed = 0
        if self.start == self.end and self.buf != NULL:
            PyMem_Free(self.buf)
            freed = self.cap
            self.buf = NULL
            self.cap = self.start = self.end = 0
            self.read_size = MIN_BUFFER
        if self.inflater is not None and not self.msg_compressed and \
                (self.inflate_no_context or self.state != STATE_OPEN):
            self.inflater.release()
        if self.deflater is not None and not self.deflater.no_context:
            self.deflater.trim()
        return freed

    def trim(self):
        """Release the read buffer if it is empty; returns whether it was released."""
        if self.start == self.end and self.buf != NULL:
            self.release_buffer()
            return True
        return False

    def take_unparsed(self):
        """Remove and return the bytes not consumed yet (used before the codec
        starts parsing, e.g. bytes that followed an HTTP upgrade request)."""
        cdef bytes b = PyBytes_FromStringAndSize(<char *>self.buf + self.start, self.end - self.start)
        self.start = self.end = 0
        return b

    cdef int parse(self) except -1:
        cdef unsigned char *buf
        cdef unsigned char *p
        cdef Py_ssize_t avail, hl, take
        cdef unsigned char b0, b1
        cdef int op, ln7
        cdef uint64_t ln
        cdef bint is_text
        cdef int i
        self.throttled = 0
        while True:
            if self.state >= STATE_CLOSED:
                # Nothing after a completed or failed close is meaningful.
                self.start = self.end = 0
                break
            buf = self.buf
            avail = self.end - self.start
            if not self.have_header:
                if avail < 2:
                    break
                p = buf + self.start
                b0 = p[0]
                b1 = p[1]
                op = b0 & 0x0F
                # Validate what the first two bytes tell before waiting for more.
                if b0 & 0x70:
                    if self.deflate and (b0 & 0x70) == 0x40:
                        # RSV1: only on the first frame of a data message (RFC 7692 6)
                        if op != OP_TEXT and op != OP_BINARY:
                            return self.fail(E_RSV1_MISPLACED)
                    elif (b0 & 0x70) & ~(self.allowed_rsv << 4):
                        return self.fail(E_RSV)
                if op >= 8:
                    if op > OP_PONG:
                        return self.fail(E_OPCODE)
                    if not (b0 & 0x80):
                        return self.fail(E_CONTROL_FRAGMENTED)
                    if (b1 & 0x7F) > 125:
                        return self.fail(E_CONTROL_TOO_LONG)
                elif op > OP_BINARY:
                    return self.fail(E_OPCODE)
                elif op == OP_CONTINUATION:
                    if self.msg_opcode == 0:
                        return self.fail(E_NOTHING_TO_CONTINUE)
                elif self.msg_opcode != 0:
                    return self.fail(E_EXPECTED_CONTINUATION)
                if b1 & 0x80:
                    if self.is_client:
                        return self.fail(E_MASKED)
                elif not self.is_client:
                    return self.fail(E_UNMASKED)
                # Over a rate budget: the frame stays unparsed until the owner
                # grants more (TCP backpressure instead of a disconnect).
                if op == OP_TEXT or op == OP_BINARY:
                    if self.msg_budget == 0:
                        self.throttled = THROTTLED_MESSAGES
                        break
                elif op == OP_PING and self.ping_budget == 0:
                    self.throttled = THROTTLED_PINGS
                    break
                ln7 = b1 & 0x7F
                hl = 2
                if ln7 == 126:
                    hl = 4
                elif ln7 == 127:
                    hl = 10
                if b1 & 0x80:
                    hl += 4
                if avail < hl:
                    break
                if ln7 == 126:
                    ln = (<uint64_t>p[2] << 8) | p[3]
                elif ln7 == 127:
                    if p[2] & 0x80:
                        return self.fail(E_LENGTH_TOP_BIT)
                    ln = 0
                    for i in range(8):
                        ln = (ln << 8) | p[2 + i]
                else:
                    ln = ln7
                self.streaming = False
                if op < 8:
                    if op != OP_CONTINUATION:
                        self.msg_compressed = self.deflate and (b0 & 0x40) != 0
                    if self.msg_compressed:
                        # Compressed bytes are inflated as they arrive, never buffered
                        # whole; the output cap is checked during inflation. Their own
                        # count is bounded too (deflate adds ~0.01% to incompressible data).
                        if ln > <uint64_t>(self.max_message_size + (self.max_message_size >> 10) + 64
                                           - self.wire_size):
                            return self.fail(E_TOO_BIG)
                        self.wire_size += <Py_ssize_t>ln
                        self.streaming = True
                    elif ln > <uint64_t>(self.max_message_size - self.msg_size):
                        return self.fail(E_TOO_BIG)
                    if op == OP_CONTINUATION or not (b0 & 0x80):
                        self.frag_count += 1
                        if self.frag_count > self.max_fragments:
                            return self.fail(E_TOO_MANY_FRAGMENTS)
                    if op != OP_CONTINUATION:
                        hf_utf8_reset(&self.utf8)
                if op == OP_TEXT or op == OP_BINARY:
                    if self.msg_budget > 0:
                        self.msg_budget -= 1
                elif op == OP_PING and self.ping_budget > 0:
                    self.ping_budget -= 1
                self.masked = (b1 & 0x80) != 0
                if self.masked:
                    memcpy(self.key, p + hl - 4, 4)
                self.fin = (b0 & 0x80) != 0
                self.opcode = op
                self.frame_len = <Py_ssize_t>ln
                self.done = 0
                self.have_header = True
                self.start += hl
                avail -= hl
            # Payload: unmask and check the newly arrived bytes in place.
            # (A compressed frame's bytes are consumed as they are inflated, so
            # its unprocessed payload starts at `start`.)
            take = avail if self.streaming else avail - self.done
            if take > self.frame_len - self.done:
                take = self.frame_len - self.done
            if take > 0 and self.streaming:
                p = buf + self.start
                if self.masked:
                    hf_mask(p, <size_t>take, self.key, <size_t>(self.done & 3))
                self.inflate_input(p, take)
                if self.state == STATE_FAILED:
                    return 0
                # the compressed bytes are consumed: the buffer keeps nothing of them
                self.start += take
                self.done += take
                avail -= take
            elif take > 0:
                p = buf + self.start + self.done
                if self.masked:
                    hf_mask(p, <size_t>take, self.key, <size_t>(self.done & 3))
                is_text = self.opcode == OP_TEXT or (
                    self.opcode == OP_CONTINUATION and self.msg_opcode == OP_TEXT)
                if is_text and not hf_utf8_feed(&self.utf8, p, <size_t>take):
                    return self.fail(E_INVALID_UTF8)
                self.done += take
            if self.done < self.frame_len:
                break
            self.have_header = False
            self.frames_done += 1
            if self.streaming:
                self.frame_complete(NULL)
                continue
            p = buf + self.start
            self.start += self.frame_len
            self.frame_complete(p)
        if self.start == self.end:
            self.start = self.end = 0
            if self.cap > SHRINK_ABOVE:
                self.release_buffer()
        return 0

    cdef int frame_complete(self, unsigned char *p) except -1:
        cdef int op = self.opcode
        cdef Py_ssize_t n = self.frame_len
        cdef object payload
        if op >= 8:
            if op == OP_PING:
                payload = PyBytes_FromStringAndSize(<char *>p, n)
                if self.state == STATE_OPEN and self.auto_pong:
                    self.queue(build_frame(OP_PONG, p, n, True, self.is_client, 0))
                self.sink.on_ping(payload)
            elif op == OP_PONG:
                self.sink.on_pong(PyBytes_FromStringAndSize(<char *>p, n))
            else:
                self.handle_close_frame(p, n)
            return 0
        if self.streaming:
            # a compressed frame: its bytes went through the inflater already
            self.streaming = False
            if op != OP_CONTINUATION:
                self.msg_opcode = op
            if self.fin:
                return self.compressed_message_complete()
            return 0
        if op != OP_CONTINUATION and self.fin:
            # The common case: a whole message in one frame, no copy but the final one.
            if op == OP_TEXT and not hf_utf8_complete(&self.utf8):
                return self.fail(E_INVALID_UTF8)
            return self.sink.on_data(p, n, op == OP_TEXT)
        if op != OP_CONTINUATION:
            self.msg_opcode = op
            self.msg_size = 0
            if self.frag is None:
                self.frag = bytearray()
        cdef Py_ssize_t old = PyByteArray_GET_SIZE(self.frag)
        if n:
            PyByteArray_Resize(self.frag, old + n)
            memcpy(PyByteArray_AS_STRING(self.frag) + old, p, n)
        self.msg_size += n
        if not self.fin:
            return 0
        op = self.msg_opcode
        self.msg_opcode = 0
        self.msg_size = 0
        self.frag_count = 0
        cdef bytearray data = self.frag
        self.frag = None
        if op == OP_TEXT and not hf_utf8_complete(&self.utf8):
            return self.fail(E_INVALID_UTF8)
        return self.sink.on_data(<const unsigned char *>PyByteArray_AS_STRING(data),
                                 PyByteArray_GET_SIZE(data), op == OP_TEXT)

    cdef int inflate_input(self, const unsigned char *p, Py_ssize_t n) except -1:
        """Inflate ``n`` compressed bytes of the current message: the output may not
        pass ``max_message_size`` (checked during inflation, to the byte), and a
        text message's output is UTF-8-checked as it appears."""
        cdef Inflater inf = self.inflater
        cdef Py_ssize_t before = inf.out_len
        cdef int r = inf.feed(p, n, self.max_message_size)
        cdef Py_ssize_t upto = min(inf.out_len, self.max_message_size)
        # What was inflated before an error is checked first, so the outcome does
        # not depend on how the compressed bytes were split into reads.
        if (self.opcode == OP_TEXT or (self.opcode == OP_CONTINUATION and self.msg_opcode == OP_TEXT)) \
                and upto > before:
            if not hf_utf8_feed(&self.utf8, inf.out + before, <size_t>(upto - before)):
                return self.fail(E_INVALID_UTF8)
        if r == 1:
            return self.fail(E_INFLATED_TOO_BIG)
        if r < 0:
            return self.fail(E_INFLATE)
        return 0

    cdef int compressed_message_complete(self) except -1:
        cdef Inflater inf = self.inflater
        cdef int op = self.msg_opcode
        cdef object payload
        # RFC 7692 7.2.2: the sender removed 00 00 ff ff from the end; put it back.
        self.inflate_input(<const unsigned char *>b"\x00\x00\xff\xff", 4)
        if self.state == STATE_FAILED:
            return 0
        if op == OP_TEXT and not hf_utf8_complete(&self.utf8):
            return self.fail(E_INVALID_UTF8)
        self.msg_opcode = 0
        self.msg_size = 0
        self.frag_count = 0
        self.wire_size = 0
        self.msg_compressed = False
        try:
            # the inflated bytes stay in the inflater until the sink returns
            self.sink.on_data(inf.out, inf.out_len, op == OP_TEXT)
        finally:
            inf.end_message(self.inflate_no_context)
        return 0

    cdef int handle_close_frame(self, unsigned char *p, Py_ssize_t n) except -1:
        cdef int code = 1005
        cdef str reason = ""
        cdef hf_utf8_state st
        if n == 1:
            return self.fail(E_CLOSE_ONE_BYTE)
        if n >= 2:
            code = (p[0] << 8) | p[1]
            if not is_valid_close_code(code):
                return self.fail(E_CLOSE_CODE)
            hf_utf8_reset(&st)
            if not hf_utf8_feed(&st, p + 2, <size_t>(n - 2)) or not hf_utf8_complete(&st):
                return self.fail(E_CLOSE_REASON_UTF8)
            reason = PyUnicode_DecodeUTF8(<char *>p + 2, n - 2, NULL)
        if self.state == STATE_OPEN:
            # Echo the peer's code (RFC 6455 5.5.1), then the connection may close.
            self.queue(encode_close(code, "", self.is_client))
        self.state = STATE_CLOSED
        self.close_code = code
        self.close_reason = reason
        self.sink.on_close(code, reason)
        return 0

    cdef int fail(self, int err) except -1:
        name, code, reason = _ERROR_TABLE[err]
        if self.state == STATE_OPEN:
            self.queue(encode_close(code, reason, self.is_client))
        self.state = STATE_FAILED
        self.error = name
        self.close_code = code
        self.close_reason = reason
        self.start = self.end = 0
        self.have_header = False
        self.frag = None
        self.streaming = False
        self.msg_compressed = False
        self.wire_size = 0
        if self.inflater is not None:
            self.inflater.release()
        return 0

    # -- output ------------------------------------------------------------

    cdef int queue(self, bytes frame) except -1:
        if self.outgoing is None:
            self.outgoing = [frame]
        else:
            self.outgoing.append(frame)
        return 0

    cdef bytes take_outgoing(self):
        cdef list out = self.outgoing
        if out is None:
            return None
        self.outgoing = None
        if len(out) == 1:
            return out[0]
        return b"".join(out)

    def data_to_send(self):
        """Control frames the protocol made us queue (pongs, close), as one bytes."""
        cdef bytes b = self.take_outgoing()
        return b if b is not None else b""

    cpdef bytes encode(self, int opcode, object payload, bint fin=True):
        """A data or control frame, masked when this codec is a client (never compressed)."""
        return encode_frame(opcode, payload, fin, self.is_client, 0, 0)

    cdef bytes encode_message(self, int opcode, const unsigned char *data, Py_ssize_t n):
        """One whole message: compressed (RSV1) when deflate is on and it is long enough."""
        cdef Deflater d = self.deflater
        cdef Py_ssize_t m
        cdef bytes frame
        if d is None or n < self.compress_min:
            return build_frame(opcode, data, n, True, self.is_client, 0)
        m = d.compress(data, n)
        frame = build_frame(opcode, d.buf, m, True, self.is_client, 4)
        d.trim()
        return frame

    cdef bytes compress_frame(self, bytes frame):
        """``frame`` compressed for this connection when it is a plain whole data
        message long enough to be worth it; otherwise ``frame`` itself."""
        cdef Py_ssize_t hl
        if self.deflater is None:
            return frame
        hl = plain_payload_offset(frame)
        if hl < 0 or PyBytes_GET_SIZE(frame) - hl < self.compress_min:
            return frame
        return self.encode_message(PyBytes_AS_STRING(frame)[0] & 0x0F,
                                   <const unsigned char *>PyBytes_AS_STRING(frame) + hl,
                                   PyBytes_GET_SIZE(frame) - hl)

    def send_message(self, payload):
        """Frame ``payload``: ``str`` as text, bytes-like as binary; compressed when
        deflate is enabled and it is at least ``compress_min`` bytes."""
        cdef Py_ssize_t n
        cdef const char *s
        cdef Py_buffer view
        cdef bytes frame
        if isinstance(payload, str):
            s = PyUnicode_AsUTF8AndSize(payload, &n)
            return self.encode_message(OP_TEXT, <const unsigned char *>s, n)
        PyObject_GetBuffer(payload, &view, PyBUF_SIMPLE)
        try:
            frame = self.encode_message(OP_BINARY, <const unsigned char *>view.buf, view.len)
        finally:
            PyBuffer_Release(&view)
        return frame

    def close(self, int code=1000, str reason=""):
        """Start the closing handshake; returns the close frame to send (or b"")."""
        if self.state != STATE_OPEN:
            return b""
        if code != 1005 and not is_valid_close_code(code):
            raise ValueError(f"invalid close code {code}")
        self.state = STATE_CLOSING
        self.close_code = code
        self.close_reason = reason
        return encode_close(code, reason, self.is_client)


# ---------------------------------------------------------------------------
# Opening handshake (RFC 6455 4.2)
# ---------------------------------------------------------------------------
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_B64 = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")

_REASONS = {
    101: "Switching Protocols", 200: "OK", 204: "No Content", 206: "Partial Content",
    301: "Moved Permanently", 302: "Found", 304: "Not Modified", 400: "Bad Request",
    401: "Unauthorized", 403: "Forbidden", 404: "Not Found", 405: "Method Not Allowed",
    408: "Request Timeout", 411: "Length Required", 413: "Content Too Large",
    414: "URI Too Long", 415: "Unsupported Media Type", 422: "Unprocessable Content",
    426: "Upgrade Required", 429: "Too Many Requests", 431: "Request Header Fields Too Large",
    500: "Internal Server Error", 501: "Not Implemented", 503: "Service Unavailable",
}


class HandshakeError(Exception):
    """An upgrade request we refuse: HTTP ``status``, a short ``reason`` and extra headers."""

    def __init__(self, int status, str reason, headers=()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


def accept_key(key):
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key``."""
    if isinstance(key, str):
        key = key.encode("ascii")
    return base64.b64encode(hashlib.sha1(key + _GUID).digest()).decode("ascii")


cdef bint _is_key(str key):
    # base64 of exactly 16 bytes: 22 alphabet characters then "=="
    if len(key) != 24 or not key.endswith("=="):
        return False
    cdef bytes raw = key.encode("ascii", "replace")
    cdef int i
    for i in range(22):
        if raw[i] not in _B64:
            return False
    # The last significant character carries 2 bits; the unused 4 must be zero.
    return (b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".index(raw[21]) & 0x0F) == 0


def _tokens(values):
    """Comma-separated header tokens from one or more header values, lower-cased."""
    out = []
    for v in values:
        for t in v.split(","):
            t = t.strip()
            if t:
                out.append(t.lower())
    return out


def check_upgrade_request(str method, str http_version, headers):
    """Validate a WebSocket upgrade request.

    ``headers`` is a sequence of ``(name, value)`` pairs, names lower-case.
    Returns ``(key, subprotocols, extensions)``; raises :class:`HandshakeError`
    (400, or 426 with ``Sec-WebSocket-Version: 13``) with a short reason.
    """
    if method != "GET":
        raise HandshakeError(400, "WebSocket upgrade requires GET")
    if http_version != "1.1":
        raise HandshakeError(400, "WebSocket upgrade requires HTTP/1.1")
    upgrade = []
    connection = []
    keys = []
    versions = []
    protocols = []
    extensions = []
    for name, value in headers:
        if name == "upgrade":
            upgrade.append(value)
        elif name == "connection":
            connection.append(value)
        elif name == "sec-websocket-key":
            keys.append(value)
        elif name == "sec-websocket-version":
            versions.append(value)
        elif name == "sec-websocket-protocol":
            protocols.append(value)
        elif name == "sec-websocket-extensions":
            extensions.append(value)
    if "websocket" not in _tokens(upgrade):
        raise HandshakeError(426, "Upgrade: websocket required",
                             [("Upgrade", "websocket"), ("Connection", "Upgrade"),
                              ("Sec-WebSocket-Version", "13")])
    if "upgrade" not in _tokens(connection):
        raise HandshakeError(400, "Connection header must contain upgrade")
    if len(versions) != 1 or versions[0].strip() != "13":
        raise HandshakeError(426, "Sec-WebSocket-Version 13 required",
                             [("Sec-WebSocket-Version", "13")])
    if len(keys) != 1 or not _is_key(keys[0].strip()):
        raise HandshakeError(400, "Sec-WebSocket-Key must be one base64-encoded 16-byte value")
    # Keep the original case of subprotocol names; they are case-sensitive.
    offered = [t.strip() for v in protocols for t in v.split(",") if t.strip()]
    return keys[0].strip(), offered, _tokens(extensions)


def build_http_response(int status, headers=(), body=b"", str reason=None):
    """Serialise an HTTP/1.1 response head and body."""
    if reason is None:
        reason = _REASONS.get(status, "Unknown")
    parts = [f"HTTP/1.1 {status} {reason}\r\n"]
    for name, value in headers:
        parts.append(f"{name}: {value}\r\n")
    parts.append("\r\n")
    head = "".join(parts).encode("latin-1")
    return head + body if body else head


def build_accept_response(key, subprotocol=None, extra_headers=()):
    """The ``101 Switching Protocols`` response for an accepted upgrade."""
    headers = [("Upgrade", "websocket"), ("Connection", "Upgrade"),
               ("Sec-WebSocket-Accept", accept_key(key))]
    if subprotocol is not None:
        headers.append(("Sec-WebSocket-Protocol", subprotocol))
    headers.extend(extra_headers)
    return build_http_response(101, headers)
