# Declarations of the permessage-deflate (RFC 7692) helpers: zlib streams with an
# exact output cap, shared compressors, and offer negotiation. Shipped so the codec,
# the transport and user extensions can cimport them.

cdef extern from "zlib.h":
    ctypedef struct z_stream:
        const unsigned char *next_in
        unsigned int avail_in
        unsigned long total_in
        unsigned char *next_out
        unsigned int avail_out
        unsigned long total_out
        const char *msg
    int Z_OK
    int Z_STREAM_END
    int Z_NEED_DICT
    int Z_STREAM_ERROR
    int Z_DATA_ERROR
    int Z_MEM_ERROR
    int Z_BUF_ERROR
    int Z_NO_FLUSH
    int Z_SYNC_FLUSH
    int Z_DEFLATED
    int Z_DEFAULT_STRATEGY
    int deflateInit2(z_stream *strm, int level, int method, int windowBits, int memLevel, int strategy) nogil
    int deflate(z_stream *strm, int flush) nogil
    int deflateReset(z_stream *strm) nogil
    int deflateEnd(z_stream *strm) nogil
    unsigned long deflateBound(z_stream *strm, unsigned long sourceLen) nogil
    int inflateInit2(z_stream *strm, int windowBits) nogil
    int inflate(z_stream *strm, int flush) nogil
    int inflateReset(z_stream *strm) nogil
    int inflateEnd(z_stream *strm) nogil


cdef class DeflateParams:
    cdef public bint server_no_context_takeover
    cdef public bint client_no_context_takeover
    cdef public int server_max_window_bits
    cdef public int client_max_window_bits
    cdef public bint server_max_window_bits_sent
    cdef public bint client_max_window_bits_sent


cdef class Inflater:
    cdef z_stream zs
    cdef bint live
    cdef readonly int wbits
    cdef unsigned char *out
    cdef Py_ssize_t out_len
    cdef Py_ssize_t out_cap
    cdef int feed(self, const unsigned char *data, Py_ssize_t n, Py_ssize_t limit) except -2
    cdef void end_message(self, bint reset_context)
    cdef void release(self)


cdef class Deflater:
    cdef z_stream zs
    cdef bint live
    cdef readonly int level
    cdef readonly int wbits
    cdef readonly int mem_level
    cdef readonly bint no_context
    cdef unsigned char *buf
    cdef Py_ssize_t cap
    cdef Py_ssize_t compress(self, const unsigned char *data, Py_ssize_t n) except -1
    cdef void trim(self)


cdef Deflater shared_deflater(int level, int wbits, int mem_level)
