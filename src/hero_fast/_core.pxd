# Declarations of the sans-I/O WebSocket codec, shipped so other Cython code
# (the transport, user extensions) can drive it at C speed.

from hero_fast._deflate cimport Deflater, Inflater

cdef extern from "_wskernels.h":
    ctypedef struct hf_utf8_state:
        unsigned char remaining
        unsigned char lo
        unsigned char hi
    void hf_mask(unsigned char *p, size_t n, const unsigned char *key, size_t phase) nogil
    void hf_utf8_reset(hf_utf8_state *s) nogil
    int hf_utf8_feed(hf_utf8_state *s, const unsigned char *p, size_t n) nogil
    int hf_utf8_complete(const hf_utf8_state *s) nogil

cdef enum:
    OP_CONTINUATION = 0x0
    OP_TEXT = 0x1
    OP_BINARY = 0x2
    OP_CLOSE = 0x8
    OP_PING = 0x9
    OP_PONG = 0xA

# Why parsing stopped early (Codec.throttled)
cdef enum:
    THROTTLED_MESSAGES = 1
    THROTTLED_PINGS = 2

# Codec states
cdef enum:
    STATE_OPEN = 0
    STATE_CLOSING = 1   # we sent a close frame and wait for the peer's
    STATE_CLOSED = 2    # close handshake complete: the TCP connection may go
    STATE_FAILED = 3    # protocol violation: our close frame is queued, input is ignored


cdef class Sink:
    """Receives what the codec decodes; subclasses override the callbacks."""
    # A whole message: ``p`` is valid during the call only. The default makes
    # a str (text) or bytes and calls on_message.
    cdef int on_data(self, const unsigned char *p, Py_ssize_t n, bint is_text) except -1
    cdef int on_message(self, object payload, bint is_text) except -1
    cdef int on_ping(self, bytes payload) except -1
    cdef int on_pong(self, bytes payload) except -1
    cdef int on_close(self, int code, str reason) except -1


cdef class Codec:
    cdef readonly bint is_client
    cdef public Py_ssize_t max_message_size
    cdef public Py_ssize_t max_fragments
    cdef public int allowed_rsv

    # input buffer: bytes [start, end) are received but not yet consumed
    cdef unsigned char *buf
    cdef Py_ssize_t cap
    cdef Py_ssize_t start
    cdef Py_ssize_t end
    cdef readonly Py_ssize_t read_size   # free space the next read is offered (grows under load)
    cdef Py_ssize_t offered              # free space the last write_ptr offered

    # the frame being parsed
    cdef bint have_header
    cdef bint fin
    cdef int opcode
    cdef unsigned char key[4]
    cdef bint masked
    cdef Py_ssize_t frame_len
    cdef Py_ssize_t done

    # the message being assembled (fragmented messages only)
    cdef int msg_opcode
    cdef Py_ssize_t msg_size
    cdef Py_ssize_t frag_count
    cdef bytearray frag
    cdef hf_utf8_state utf8

    # permessage-deflate (RFC 7692), once enable_deflate() ran
    cdef readonly bint deflate
    cdef Inflater inflater        # incoming messages; lazily holds zlib state
    cdef bint inflate_no_context  # the peer resets its compressor after each message
    cdef Deflater deflater        # outgoing; shared by no-context-takeover codecs, or None
    cdef public Py_ssize_t compress_min   # messages shorter than this are sent uncompressed
    cdef bint msg_compressed      # the message being received has RSV1 set
    cdef bint streaming           # the frame being parsed is inflated as it arrives
    cdef Py_ssize_t wire_size     # compressed bytes of the message being received
    cdef readonly Py_ssize_t frames_done  # frames completely received so far
    cdef public bint auto_pong    # queue a pong for every ping (the transport coalesces its own)
    # Rate limits as budgets (-1: none): a data message or ping that would go
    # over its budget is left unparsed in the buffer and ``throttled`` says why.
    cdef public Py_ssize_t msg_budget
    cdef public Py_ssize_t ping_budget
    cdef readonly int throttled   # THROTTLED_* of the last parse, 0 when it ran to the end

    cdef readonly int state
    cdef readonly int close_code
    cdef readonly str close_reason
    cdef readonly str error
    cdef list outgoing
    cdef Sink sink

    cdef unsigned char *write_ptr(self, Py_ssize_t *avail) except NULL
    cdef void read_done(self, Py_ssize_t nbytes) noexcept
    cdef int feed(self, Py_ssize_t n) except -1
    cdef int parse(self) except -1
    cdef int fail(self, int err) except -1
    cdef int frame_complete(self, unsigned char *p) except -1
    cdef int inflate_input(self, const unsigned char *p, Py_ssize_t n) except -1
    cdef int compressed_message_complete(self) except -1
    cdef bytes encode_message(self, int opcode, const unsigned char *data, Py_ssize_t n)
    cdef bytes compress_frame(self, bytes frame)
    cdef int handle_close_frame(self, unsigned char *p, Py_ssize_t n) except -1
    cdef int queue(self, bytes frame) except -1
    cdef bytes take_outgoing(self)
    cpdef bytes encode(self, int opcode, object payload, bint fin=*)
    cdef Py_ssize_t release_buffer(self)


cdef Py_ssize_t header_size(Py_ssize_t n, bint mask) noexcept nogil
cdef void write_header(unsigned char *p, int opcode, Py_ssize_t n, bint fin, bint mask, int rsv) noexcept nogil
cdef bytes build_frame(int opcode, const unsigned char *data, Py_ssize_t n,
                       bint fin, bint mask, int rsv)
cpdef bytes encode_frame(int opcode, object payload, bint fin=*, bint mask=*, int rsv=*, int compress=*)
cdef Py_ssize_t plain_payload_offset(bytes frame)
