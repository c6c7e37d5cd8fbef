# cython: language_level=3, boundscheck=False, wraparound=False
"""The uvloop (or asyncio) protocol: owns the read buffer, parses HTTP/1.1 with
httptools, hands upgrades to the codec, coalesces writes, runs the timers.

It is the only code that touches the event loop's transport for WebSocket I/O.
Everything a connection must send during one read batch or one loop iteration
leaves in a single ``transport.write`` (or ``writelines`` when large frames are
queued by reference: one writev on uvloop; Python's asyncio < 3.12 joins them).
"""

import asyncio
import inspect
import ipaddress
import logging
import os
import time
from collections import deque
from functools import partial
from urllib.parse import parse_qsl, unquote

from cpython.buffer cimport PyBUF_SIMPLE, PyBuffer_Release, PyObject_GetBuffer
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.mem cimport PyMem_Free, PyMem_Realloc
from cpython.unicode cimport PyUnicode_DecodeUTF8
from libc.string cimport memcpy, memmove

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from hero_fast._core cimport (
    OP_BINARY, OP_PING, OP_PONG, OP_TEXT, STATE_CLOSED, STATE_CLOSING, STATE_FAILED,
    STATE_OPEN, THROTTLED_MESSAGES, Codec, Sink, encode_frame, header_size,
    plain_payload_offset, write_header,
)
from hero_fast._deflate cimport Deflater
from hero_fast._core import (
    DEFAULT_COMPRESS_MIN, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, HandshakeError,
    build_accept_response, build_http_response, check_upgrade_request, negotiate_deflate,
)
from hero_fast._deflate import DEFAULT_LEVEL, DEFAULT_MEM_LEVEL

cdef extern from *:
    """
    #if defined(__GLIBC__)
    #include <malloc.h>
    static int hf_malloc_trim(void) { return malloc_trim(0); }
    #else
    static int hf_malloc_trim(void) { return 0; }
    #endif
    """
    int hf_malloc_trim()


cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char *mem, Py_ssize_t size, int flags)
    const char *PyUnicode_AsUTF8AndSize(object s, Py_ssize_t *size) except NULL
    int PyBUF_READ
    int PyBUF_WRITE

__all__ = [
    "CappedLog", "Connection", "HttpRequest", "Options", "Reject", "Response", "Server", "fanout", "peer_log",
    "serve",
]

log = logging.getLogger("hero_fast.transport")


class CappedLog:
    """Log lines a peer can cause (refusals, limit and error closes), capped per
    reason: at most ``burst`` lines of one reason per ``window`` seconds; the
    rest are counted and the count is told with the next line of that reason."""

    def __init__(self, logger, burst=10, window=60.0):
        self.logger = logger
        self.burst = burst
        self.window = window
        self._reasons = {}   # reason -> [window start, lines in it, suppressed]

    def note(self, level, reason, peer, fmt, *args):
        """Log ``fmt % (*args, peer)`` unless ``reason`` is over its cap."""
        if not self.logger.isEnabledFor(level):
            return
        now = time.monotonic()
        st = self._reasons.get(reason)
        if st is None:
            if len(self._reasons) >= 256:
                self._reasons.clear()  # reasons are a small fixed set; bound it anyway
            st = self._reasons[reason] = [now, 0, 0]
        elif now - st[0] >= self.window:
            st[0] = now
            st[1] = 0
        if st[1] >= self.burst:
            st[2] += 1
            return
        st[1] += 1
        if st[2]:
            fmt += " (%d more suppressed)"
            args = args + (peer or "unknown", st[2])
            st[2] = 0
        else:
            args = args + (peer or "unknown",)
        self.logger.log(level, fmt, *args, extra={"reason": reason, "peer": peer})


#: the engine's capped log of peer-caused events (logger hero_fast.transport)
peer_log = CappedLog(log)

# Why reading is paused (a bit each; reading resumes when none is left)
cdef enum:
    PAUSED_BY_FLOW = 1      # our transport's write buffer is over the high-water mark
    PAUSED_BY_HANDLER = 2   # an async on_http / on_upgrade is running
    PAUSED_BY_RATE = 4      # over max_messages/pings_per_second: frames wait unparsed

cdef enum:
    # Frames of at least this many bytes are queued by reference and leave through
    # writelines (one writev on uvloop) instead of being copied into the output
    # buffer; below it a memcpy is cheaper than another object and iovec.
    LARGE_FRAME = 2048
    # Output buffer: first allocation, and the size above which it is freed after
    # each write (smaller ones are kept while busy, freed by the idle tick).
    OBUF_MIN = 2048
    OBUF_KEEP = 65536
    # Bytes of idle connections' buffers freed before the heap is trimmed (at most once
    # every TRIM_EVERY seconds).
    TRIM_AFTER = 1048576

cdef double TRIM_EVERY = 1.0

# Connection phases
cdef enum:
    PHASE_HTTP = 0
    PHASE_UPGRADING = 1   # waiting for an asynchronous on_upgrade
    PHASE_WS = 2
    PHASE_DONE = 3        # the transport is closing or closed


cdef class Options:
    """Engine limits and timers, every one with a documented default.

    max_message_size   largest WebSocket message, declared or accumulated (1 MiB) → 1009
    max_fragments      frames in one fragmented message (1024) → 1009
    handshake_timeout  seconds for a whole HTTP request head (10) → 408 and close
    keepalive_timeout  seconds an idle HTTP keep-alive connection is kept (15)
    max_request_line   bytes of the request target (8192) → 414
    max_headers        header fields per request (100) → 431
    max_header_bytes   bytes of all header names and values (16384) → 431
    max_body_size      bytes of an HTTP request body (1 MiB) → 413
    ping_interval      seconds of silence before a WebSocket ping; 0 disables (20)
    ping_timeout       seconds to wait for anything after that ping (20) → close 1011
    close_timeout      seconds to wait for the peer's close frame or EOF (5) → abort
    write_buffer_high  bytes buffered by the transport before writing pauses (256 KiB)
    write_buffer_low   bytes at which writing resumes (64 KiB)
    max_send_buffer    bytes queued for one connection while its transport is
                       over write_buffer_high (1 MiB); past it, slow_consumer
                       policy applies to each further message
    slow_consumer      "drop": the message is not queued for that connection
                       (counted in messages_dropped); "close": close it with 1008
    tick               housekeeping granularity in seconds (1)

    permessage-deflate (RFC 7692):
    deflate            negotiate it when the client offers it (True)
    deflate_server_no_context_takeover  reset our compressor after every message, so
                       one process-wide compressor serves every connection and a
                       room message is compressed once (True; False costs each
                       connection its own compressor: 2**(wbits+2) + 2**(mem_level+9)
                       bytes + ~6 KiB, 262 KiB at 15/8)
    deflate_client_no_context_takeover  ask the client to reset its compressor after
                       every message, so our inflater can be freed while the
                       connection is idle (True)
    deflate_server_max_window_bits  LZ77 window of our compressor, 9-15 (15); lower if
                       the client asks
    deflate_client_max_window_bits  window we ask the client to use when it offers
                       client_max_window_bits, 9-15 (12: our inflater then holds a
                       4 KiB window + ~7 KiB state while a message arrives; a client
                       that does not offer it uses 15: 32 KiB + ~7 KiB)
    deflate_level      zlib level for outgoing messages, 0-9 (6)
    deflate_mem_level  zlib memLevel of the compressor, 1-9 (8)
    deflate_min_size   messages shorter than this are sent uncompressed (128)

    abuse limits (each counted in Server.counters):
    max_connections    TCP connections at once; one more is answered 503 and closed
                       (0 = no limit) → connections_refused
    max_connections_per_ip  the same per peer address (0 = no limit: behind a reverse
                       proxy every client has the proxy's address) → connections_refused_per_ip
    max_messages_per_second  WebSocket messages per connection, a token bucket of
                       twice this size refilled continuously (0 = no limit); past it
                       see rate_limit_policy → throttled, or rate_limited (close)
    max_pings_per_second  pings per connection, same bucket (10) → throttled, or
                       ping_flood (close)
    rate_limit_policy  "throttle": a connection over a rate stops being read (its
                       frames wait unparsed in the buffer, TCP backpressure slows the
                       peer; nothing is lost, nobody else notices) until its bucket
                       refills; "close": close 1008 "rate limit" / "too many pings"
                       ("throttle")
    coalesce_pongs     pings read in one batch are answered by one pong with the
                       last payload, as RFC 6455 5.5.3 allows (True; Autobahn 2.10
                       and 2.11 check for a pong per ping: the echo server turns it off)
    frame_timeout      seconds a frame may take to arrive once its first byte did
                       (30; 0 = none) → close 1008 "frame read timeout", frame_timeouts

    trusted_proxies    addresses or CIDR networks of reverse proxies (empty): only a
                       request whose TCP peer is one of them has its X-Forwarded-For
                       (the right-most address that is not a trusted proxy) and
                       X-Forwarded-Proto taken as the client's address and scheme;
                       per-address limits and logs then use that address
    """

    def __init__(self, **overrides):
        self.max_message_size = DEFAULT_MAX_MESSAGE_SIZE
        self.max_fragments = DEFAULT_MAX_FRAGMENTS
        self.handshake_timeout = 10.0
        self.keepalive_timeout = 15.0
        self.max_request_line = 8192
        self.max_headers = 100
        self.max_header_bytes = 16384
        self.max_body_size = 1 << 20
        self.ping_interval = 20.0
        self.ping_timeout = 20.0
        self.close_timeout = 5.0
        self.write_buffer_high = 256 * 1024
        self.write_buffer_low = 64 * 1024
        self.max_send_buffer = 1 << 20
        self.slow_consumer = "drop"
        self.tick = 1.0
        self.deflate = True
        self.deflate_server_no_context_takeover = True
        self.deflate_client_no_context_takeover = True
        self.deflate_server_max_window_bits = 15
        self.deflate_client_max_window_bits = 12
        self.deflate_level = DEFAULT_LEVEL
        self.deflate_mem_level = DEFAULT_MEM_LEVEL
        self.deflate_min_size = DEFAULT_COMPRESS_MIN
        self.max_connections = 0
        self.max_connections_per_ip = 0
        self.max_messages_per_second = 0
        self.max_pings_per_second = 10
        self.coalesce_pongs = True
        self.frame_timeout = 30.0
        self.rate_limit_policy = "throttle"
        self.trusted_proxies = ()
        for name, value in overrides.items():
            if not hasattr(self, name):
                raise TypeError(f"unknown option {name!r}")
            setattr(self, name, value)
        if self.slow_consumer not in ("drop", "close"):
            raise ValueError(f"slow_consumer must be 'drop' or 'close', not {self.slow_consumer!r}")
        if not (9 <= self.deflate_server_max_window_bits <= 15 and 9 <= self.deflate_client_max_window_bits <= 15):
            raise ValueError("deflate window bits must be between 9 and 15")
        if not (0 <= self.deflate_level <= 9 and 1 <= self.deflate_mem_level <= 9):
            raise ValueError("deflate_level must be 0-9 and deflate_mem_level 1-9")
        if self.rate_limit_policy not in ("throttle", "close"):
            raise ValueError(f"rate_limit_policy must be 'throttle' or 'close', not {self.rate_limit_policy!r}")
        if isinstance(self.trusted_proxies, str):
            raise ValueError("trusted_proxies must be a list of addresses or networks, not a string")
        self.trusted_proxies = tuple(self.trusted_proxies)
        self.proxy_networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.trusted_proxies)

    cdef bint is_trusted_proxy(self, str ip):
        if not self.proxy_networks or ip is None:
            return False
        try:
            addr = ipaddress.ip_address(ip.partition("%")[0])
        except ValueError:
            return False
        if addr.version == 6 and addr.ipv4_mapped is not None:
            addr = addr.ipv4_mapped
        for net in self.proxy_networks:
            if addr.version == net.version and addr in net:
                return True
        return False

    def as_dict(self):
        return {name: getattr(self, name) for name in (
            "max_message_size", "max_fragments", "handshake_timeout", "keepalive_timeout",
            "max_request_line", "max_headers", "max_header_bytes", "max_body_size",
            "ping_interval", "ping_timeout", "close_timeout", "write_buffer_high",
            "write_buffer_low", "max_send_buffer", "slow_consumer", "tick",
            "deflate", "deflate_server_no_context_takeover", "deflate_client_no_context_takeover",
            "deflate_server_max_window_bits", "deflate_client_max_window_bits", "deflate_level",
            "deflate_mem_level", "deflate_min_size", "max_connections", "max_connections_per_ip",
            "max_messages_per_second", "max_pings_per_second", "coalesce_pongs", "frame_timeout",
            "rate_limit_policy", "trusted_proxies")}


cdef class HttpRequest:
    """One HTTP request (also the WebSocket upgrade request)."""

    def header(self, str name, default=None):
        """The first value of header ``name`` (case-insensitive)."""
        name = name.lower()
        for k, v in self.headers:
            if k == name:
                return v
        return default

    def header_values(self, str name):
        name = name.lower()
        return [v for k, v in self.headers if k == name]

    @property
    def query(self):
        """Query parameters; the last value wins for a repeated name."""
        if self._query is None:
            self._query = dict(parse_qsl(self.query_string, keep_blank_values=True))
        return self._query

    @property
    def cookies(self):
        if self._cookies is None:
            jar = {}
            for value in self.header_values("cookie"):
                for part in value.split(";"):
                    name, sep, val = part.strip().partition("=")
                    if sep and name and name not in jar:
                        jar[name] = val.strip().strip('"')
            self._cookies = jar
        return self._cookies

    @property
    def remote_address(self):
        """The client's address: the TCP peer's, or the one a trusted proxy forwarded."""
        return self.client_address

    @property
    def remote_port(self):
        return self.peer[1] if self.peer else None

    def __repr__(self):
        return f"<HttpRequest {self.method} {self.target}>"


cdef class Response:
    """What an HTTP handler returns. Content-Length and Connection are added for you.

    ``stream``, instead of ``body``: an async iterable of bytes chunks written one after
    the other, each waiting until the peer has taken enough of the previous ones (flow
    control), so a large file never sits in memory. Give its ``Content-Length`` in
    ``headers``; without one the connection closes after the body. An error while
    streaming aborts the connection (the status line is already sent)."""

    def __init__(self, int status=200, headers=None, body=b"", stream=None):
        self.status = status
        self.headers = list(headers) if headers else []
        self.body = bytes(body)
        self.stream = stream


class Reject(Exception):
    """Raise (or return) from ``on_upgrade`` to refuse a WebSocket upgrade."""

    def __init__(self, status=403, reason="forbidden", headers=()):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = list(headers)


cdef bytes _plain_response(int status, str text, list extra, bint close):
    body = (text + "\n").encode("utf-8")
    headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(body)))]
    headers.extend(extra)
    if close:
        headers.append(("Connection", "close"))
    return build_http_response(status, headers, body)


cdef bint _has_length(list headers):
    for name, _ in headers:
        if name.lower() == "content-length":
            return True
    return False


cdef bytes _serialize(Response resp, bint head_only, bint close):
    cdef list headers = resp.headers
    if resp.stream is not None:  # the body follows in chunks (_stream_body)
        return build_http_response(resp.status, headers + [("Connection", "close")] if close else headers, b"")
    if not _has_length(headers) and resp.status >= 200 and resp.status not in (204, 304):
        headers = headers + [("Content-Length", str(len(resp.body)))]
    if close:
        headers = headers + [("Connection", "close")]
    return build_http_response(resp.status, headers,
                               b"" if head_only or resp.status in (204, 304) else resp.body)


cdef str _forwarded_ip(str token):
    """The address in one X-Forwarded-For entry ("1.2.3.4", "1.2.3.4:80",
    "[::1]:80", "::1"), or None when it is not an IP address."""
    token = token.strip()
    if token.startswith("["):
        token = token[1:].partition("]")[0]
    elif token.count(":") == 1:
        token = token.partition(":")[0]
    try:
        return str(ipaddress.ip_address(token))
    except ValueError:
        return None


cdef int _apply_forwarded(HttpRequest r, Options o) except -1:
    """``r`` came from a trusted proxy: its client is the right-most X-Forwarded-For
    address that is not itself a trusted proxy (each proxy appends the peer it saw,
    so everything left of that is the client's own claim), its scheme the last
    X-Forwarded-Proto value."""
    entries = [e for v in r.header_values("x-forwarded-for") for e in v.split(",") if e.strip()]
    cdef str ip
    cdef str found = None
    for entry in reversed(entries):
        ip = _forwarded_ip(entry)
        if ip is None:
            break  # garbage from the client's side: keep the last good address
        found = ip
        if not o.is_trusted_proxy(ip):
            break
    if found is not None:
        r.client_address = found
    protos = [e.strip().lower() for v in r.header_values("x-forwarded-proto") for e in v.split(",")]
    if protos and protos[len(protos) - 1] in ("http", "https"):  # (no negative index: wraparound=False)
        r.scheme = protos[len(protos) - 1]
    return 0


cdef class _HttpSession:
    """httptools callbacks and the request being read; dropped after an upgrade."""

    def __cinit__(self, Connection conn):
        self.conn = conn
        self.parser = HttpRequestParser(self)
        self.queue = deque()
        self.busy = False
        self.in_head = False
        self.error_status = 0

    def on_message_begin(self):
        # bytearrays, not lists of chunks: a request trickled in 1-byte segments
        # costs its bytes, not an object per segment
        self.url_parts = bytearray()
        self.url_len = 0
        self.headers = []
        self.header_bytes = 0
        self.body_parts = None
        self.body_len = 0
        self.in_head = True
        self.head_bytes = 0
        self.request = None
        self.conn.deadline = self.conn.server.clock() + self.conn.server.options.handshake_timeout

    def on_url(self, bytes url):
        self.url_len += len(url)
        if self.url_len > self.conn.server.options.max_request_line:
            self.error_status = 414
            raise HttpParserError("request line too long")
        self.url_parts += url

    def on_header(self, bytes name, bytes value):
        cdef Options o = self.conn.server.options
        self.header_bytes += len(name) + len(value)
        if len(self.headers) >= o.max_headers or self.header_bytes > o.max_header_bytes:
            self.error_status = 431
            raise HttpParserError("request header fields too large")
        self.headers.append((name.decode("latin-1").lower(), value.decode("latin-1")))

    def on_headers_complete(self):
        cdef HttpRequest r = HttpRequest.__new__(HttpRequest)
        self.in_head = False
        r.method = self.parser.get_method().decode("ascii", "replace")
        r.http_version = self.parser.get_http_version()
        r.keep_alive = self.parser.should_keep_alive()
        r.target = self.url_parts.decode("latin-1")
        path, _, query = r.target.partition("?")
        r.path = unquote(path.partition("#")[0])
        r.query_string = query.partition("#")[0]
        r.headers = self.headers
        r.peer = self.conn.peer
        r.body = b""
        r.scheme = "https" if self.conn.tls else "http"
        r.client_address = self.conn.peer_ip
        self.request = r
        cdef int hosts = 0
        for name, _ in self.headers:
            if name == "host":
                hosts += 1
        if hosts > 1:
            # RFC 9112 3.2: a request with more than one Host field is refused with 400.
            self.error_status = 400
            self.error_reason = "duplicate Host header"
            raise HttpParserError("duplicate Host header")
        if self.conn.server.options.is_trusted_proxy(r.client_address):
            _apply_forwarded(r, self.conn.server.options)
            if not self.conn._count_ip(r.client_address):
                self.error_status = 503
                self.error_reason = "too many connections from your address"
                raise HttpParserError("too many connections from your address")
        self.conn.client_address = r.client_address
        length = r.header("content-length")
        if length is not None and length.strip().isdigit() and \
                int(length) > self.conn.server.options.max_body_size:
            self.error_status = 413
            raise HttpParserError("request body too large")

    def on_body(self, bytes body):
        self.body_len += len(body)
        if self.body_len > self.conn.server.options.max_body_size:
            self.error_status = 413
            raise HttpParserError("request body too large")
        if self.body_parts is None:
            self.body_parts = bytearray(body)
        else:
            self.body_parts += body

    def on_message_complete(self):
        if self.body_parts:
            self.request.body = bytes(self.body_parts)
            self.body_parts = None
        self.conn.deadline = 0
        self.queue.append(self.request)
        self.request = None


cdef class Connection(Sink):
    """One client connection: HTTP first, WebSocket after an accepted upgrade.

    The object the application sees for a WebSocket: ``send``, ``close``,
    ``id``, ``request`` (the upgrade request: path, query, headers, cookies,
    peer), ``subprotocol``, ``buffered_amount`` and ``user_data`` for the layer
    above.
    """

    def __cinit__(self, Server server):
        self.server = server
        self.codec = Codec(False, server.options.max_message_size, server.options.max_fragments, self)
        self.codec.auto_pong = False  # pongs are coalesced here (pong_due)
        self.phase = PHASE_HTTP

    # -- asyncio protocol ----------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        self.peer = transport.get_extra_info("peername")
        self.tls = transport.get_extra_info("sslcontext") is not None
        transport.set_write_buffer_limits(self.server.options.write_buffer_high,
                                          self.server.options.write_buffer_low)
        self.server.connections.add(self)
        self.deadline = self.server.clock() + self.server.options.handshake_timeout
        cdef Options o = self.server.options
        cdef Server srv = self.server
        peer = self.peer
        self.peer_ip = peer[0] if isinstance(peer, tuple) and peer and isinstance(peer[0], str) else None
        self.client_address = self.peer_ip
        if o.max_connections and srv.accepted >= o.max_connections:
            return self._refuse("connections_refused", "too many connections")
        # A trusted proxy's connections are counted per client once a request head
        # names the client (X-Forwarded-For), not as the proxy's own address.
        if self.peer_ip is not None and not o.is_trusted_proxy(self.peer_ip) and \
                not self._count_ip(self.peer_ip):
            return self._refuse("connections_refused_per_ip", "too many connections from your address")
        srv.accepted += 1
        self.counted = True
        self.http = _HttpSession(self)

    cdef bint _count_ip(self, str ip) except -1:
        """Count this connection under ``ip`` (moving it from the address it was
        counted under); False, counting nothing, when ``ip`` is at its limit."""
        cdef Server srv = self.server
        cdef Py_ssize_t limit = srv.options.max_connections_per_ip
        if ip is None or ip == self.ip:
            return True
        if limit and srv.ip_counts.get(ip, 0) >= limit:
            return False
        self._uncount_ip()
        self.ip = ip
        srv.ip_counts[ip] = srv.ip_counts.get(ip, 0) + 1
        return True

    cdef int _uncount_ip(self) except -1:
        cdef dict counts = self.server.ip_counts
        if self.ip is not None:
            left = counts.get(self.ip, 1) - 1
            if left > 0:
                counts[self.ip] = left
            else:
                counts.pop(self.ip, None)
            self.ip = None
        return 0

    cdef int _refuse(self, str counter, str reason) except -1:
        """Over a connection limit: 503 with a short reason, then close (the request,
        if any, is read and dropped so the answer is not lost to a reset)."""
        self.server.event_counts[counter] += 1
        self._log_refusal(503, reason)
        self._write_now(_plain_response(503, reason, [("Retry-After", "1")], True))
        self._end_after_response()
        return 0

    cdef int _log_refusal(self, int status, str reason) except -1:
        """One capped log line per refused request or connection."""
        peer_log.note(logging.WARNING if status == 503 else logging.INFO,
                      f"http {status} {reason}", self.client_address,
                      "refused %s: %s (peer %s)", status, reason)
        return 0

    def get_buffer(self, Py_ssize_t sizehint):
        cdef Py_ssize_t avail
        cdef unsigned char *p = self.codec.write_ptr(&avail)
        self.codec.offered = avail
        return PyMemoryView_FromMemory(<char *>p, avail, PyBUF_WRITE)

    def buffer_updated(self, Py_ssize_t nbytes):
        self.last_seen = self.server.now
        self.awaiting_pong = False
        if self.phase == PHASE_WS:
            self.codec.read_done(nbytes)
            self.codec.end += nbytes
            self._ws_input()
        elif self.phase == PHASE_HTTP:
            self._http_data(nbytes)
        # PHASE_UPGRADING keeps bytes in the codec buffer; PHASE_DONE ignores them.
        elif self.phase == PHASE_UPGRADING:
            self.codec.end += nbytes
        else:
            self.codec.start = self.codec.end = 0

    cdef int _ws_input(self) except -1:
        """Decode what is buffered as one batch: replies queued meanwhile leave in one write."""
        cdef Codec c = self.codec
        self.in_batch = True
        try:
            self._parse()
            self._after_feed()
            if self.pong_due is not None:
                self._emit_pong()
        finally:
            self.in_batch = False
        # the per-frame read deadline runs while a frame is incomplete
        if c.have_header or c.end > c.start:
            if self.frame_since == 0 or self.frame_mark != c.frames_done:
                # the loop's clock, not server.now (up to a tick old): a frame
                # that starts just before a tick must get its whole frame_timeout
                self.frame_since = self.server.loop.time()
                self.frame_mark = c.frames_done
        else:
            self.frame_since = 0
        if self.queued or self.close_after_flush:
            self._flush()
        return 0

    cdef int _parse(self) except -1:
        """Parse the buffered frames within the rate budgets (whole tokens of the
        message and ping buckets); what would go over them waits unparsed."""
        cdef Codec c = self.codec
        cdef Options o = self.server.options
        cdef Py_ssize_t mb, pb
        cdef bint limited = c.state == STATE_OPEN
        mb = <Py_ssize_t>self.msg_tokens if limited and o.max_messages_per_second > 0 else -1
        pb = <Py_ssize_t>self.ping_tokens if limited and o.max_pings_per_second > 0 else -1
        c.msg_budget = mb
        c.ping_budget = pb
        c.parse()
        if mb >= 0:
            self.msg_tokens -= mb - c.msg_budget
        if pb >= 0:
            self.ping_tokens -= pb - c.ping_budget
        if c.throttled:
            return self._over_rate()
        if self.paused_by & PAUSED_BY_RATE:
            self._resume_reading(PAUSED_BY_RATE)
        return 0

    cdef int _over_rate(self) except -1:
        """A frame would exceed its bucket: wait for tokens with reading paused
        (throttle), or close 1008 (the "close" policy)."""
        cdef Options o = self.server.options
        cdef bint messages = self.codec.throttled == THROTTLED_MESSAGES
        cdef double rate = o.max_messages_per_second if messages else o.max_pings_per_second
        cdef double tokens
        # Buckets refill continuously; only here, when one looks empty, is the clock read.
        self._refill(self.server.clock())
        tokens = self.msg_tokens if messages else self.ping_tokens
        if tokens >= 1.0:
            return self._parse()
        cdef str reason = "rate limit" if messages else "too many pings"
        if o.rate_limit_policy == "close":
            self.server.event_counts["rate_limited" if messages else "ping_flood"] += 1
            peer_log.note(logging.INFO, reason, self.client_address,
                        "websocket closed 1008: %s (peer %s)", reason)
            self.pong_due = None
            self.close(1008, reason)
            # closing: the rest is read (and not delivered) to find the peer's close frame
            return self._parse()
        if not (self.paused_by & PAUSED_BY_RATE):
            self.server.event_counts["throttled"] += 1
            peer_log.note(logging.INFO, "throttled " + reason, self.client_address,
                        "websocket throttled: %s, reading paused (peer %s)", reason)
            self._pause_reading(PAUSED_BY_RATE)
        # Resume once the bucket holds a twentieth of a second's worth (at least
        # one token): the peer is slowed smoothly to the rate, not in tick-sized bursts.
        want = max(1.0, rate / 20.0)
        if self.rate_timer is None:
            self.rate_timer = self.server.loop.call_later((want - tokens) / rate, self._rate_refilled)
        return 0

    def _rate_refilled(self):
        self.rate_timer = None
        if self.phase != PHASE_WS or not (self.paused_by & PAUSED_BY_RATE):
            return
        self._refill(self.server.clock())
        self._ws_input()

    cdef int _refill(self, double now) except -1:
        cdef Options o = self.server.options
        cdef double elapsed = now - self.refilled_at
        if elapsed <= 0:
            return 0
        self.refilled_at = now
        if o.max_messages_per_second > 0:
            self.msg_tokens = min(2 * o.max_messages_per_second,
                                  self.msg_tokens + o.max_messages_per_second * elapsed)
        if o.max_pings_per_second > 0:
            self.ping_tokens = min(2 * o.max_pings_per_second,
                                   self.ping_tokens + o.max_pings_per_second * elapsed)
        return 0

    def eof_received(self):
        # The peer finished sending: nothing more can arrive, so close our side too.
        return False

    def connection_lost(self, exc):
        cdef Server srv = self.server
        srv.connections.discard(self)
        if self.counted:
            self.counted = False
            srv.accepted -= 1
        self._uncount_ip()
        if self.rate_timer is not None:
            self.rate_timer.cancel()
            self.rate_timer = None
        self.pong_due = None
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)  # the streamer sees transport None and stops
        if self.phase == PHASE_WS:
            # The TCP connection ended without a completed close handshake.
            self._notify_closed(1006, "")
        self.phase = PHASE_DONE
        self._drop_output()
        self.http = None
        self.codec.release_buffer()
        self.transport = None

    def __dealloc__(self):
        PyMem_Free(self.obuf)

    def pause_writing(self):
        self.writing_paused = True
        # Backpressure: stop reading from a peer that does not read our replies;
        # what we still have to send stays queued, capped by max_send_buffer.
        self._pause_reading(PAUSED_BY_FLOW)
        if self.server.h_pause is not None:
            try:
                self.server.h_pause(self)
            except Exception:
                log.exception("on_pause_writing handler failed")

    def resume_writing(self):
        self.writing_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)
        if self.phase != PHASE_DONE:
            self._resume_reading(PAUSED_BY_FLOW)
        if self.queued and not self.in_batch:
            self._flush()
        if self.server.h_resume is not None:
            try:
                self.server.h_resume(self)
            except Exception:
                log.exception("on_resume_writing handler failed")

    cdef int _pause_reading(self, int reason) except -1:
        """Reading stops while any reason holds (flow control, a handler running)."""
        if self.paused_by == 0 and self.transport is not None:
            self.transport.pause_reading()
        self.paused_by |= reason
        return 0

    cdef int _resume_reading(self, int reason) except -1:
        if self.paused_by & reason:
            self.paused_by &= ~reason
            if self.paused_by == 0 and self.transport is not None:
                self.transport.resume_reading()
        return 0

    # -- HTTP phase ----------------------------------------------------------

    cdef int _http_data(self, Py_ssize_t nbytes) except -1:
        cdef Codec c = self.codec
        cdef _HttpSession h = self.http
        cdef unsigned char *p = c.buf + c.end
        cdef Py_ssize_t offset
        c.start = c.end = 0  # httptools keeps what it needs of partial data
        if h.failed_status:
            return 0  # after a parse error nothing more is parsed
        if h.in_head:
            h.head_bytes += nbytes
        try:
            h.parser.feed_data(PyMemoryView_FromMemory(<char *>p, nbytes, PyBUF_READ))
            if h.in_head and h.head_bytes > self.server.options.max_request_line + \
                    self.server.options.max_header_bytes + 1024:
                # httptools buffers a partial line; bound it before it grows.
                h.error_status = 414 if not h.url_parts else 431
                raise HttpParserError("request head too large")
        except HttpParserUpgrade as e:
            offset = e.args[0] if e.args else nbytes
            if offset < nbytes:
                memmove(c.buf, p + offset, nbytes - offset)
                c.end = nbytes - offset
            h.upgrade_seen = True
            self._process_http_queue()
            return 0
        except HttpParserError as e:
            # Requests completed before the bad bytes are answered first, in order.
            h.failed_status = h.error_status or 400
            h.failed_reason = h.error_reason or str(e) or "bad request"
            self._process_http_queue()
            return 0
        self._process_http_queue()
        return 0

    cdef int _http_fail(self, int status, str reason) except -1:
        messages = {413: "request body too large", 414: "request line too long",
                    431: "request header fields too large", 408: "request timeout",
                    503: "too many connections from your address"}
        text = messages.get(status, "bad request")
        extra = []
        if status == 503:
            self.server.event_counts["connections_refused_per_ip"] += 1
            extra = [("Retry-After", "1")]
        self._log_refusal(status, reason or text)
        self._write_now(_plain_response(status, text, extra, True))
        self._end_after_response()
        return 0

    cdef int _process_http_queue(self) except -1:
        cdef _HttpSession h = self.http
        cdef HttpRequest req
        while h is not None and h.queue and not h.busy and self.phase == PHASE_HTTP:
            req = h.queue.popleft()
            if self._wants_websocket(req):
                self._handshake(req)
                return 0
            self._dispatch_http(req)
            h = self.http
        if h is not None and h.failed_status and not h.queue and not h.busy and self.phase == PHASE_HTTP:
            self._http_fail(h.failed_status, h.failed_reason)
        return 0

    cdef bint _wants_websocket(self, HttpRequest req):
        for name, value in req.headers:
            if name == "upgrade" and "websocket" in value.lower():
                return True
        return False

    cdef int _dispatch_http(self, HttpRequest req) except -1:
        try:
            result = self.server.h_http(req)
        except Exception:
            log.exception("HTTP handler failed")
            result = Response(500, [("Content-Type", "text/plain")], b"internal server error\n")
        if isinstance(result, Response):
            self._http_respond(req, result)
            return 0
        if not inspect.isawaitable(result):
            log.error("HTTP handler returned %r, not a Response", type(result))
            self._http_respond(req, Response(500, [("Content-Type", "text/plain")],
                                             b"internal server error\n"))
            return 0
        self.http.busy = True
        self._pause_reading(PAUSED_BY_HANDLER)
        asyncio.ensure_future(result).add_done_callback(partial(self._http_async_done, req))
        return 0

    def _http_async_done(self, HttpRequest req, task):
        if self.phase != PHASE_HTTP or self.http is None:
            return
        self.http.busy = False
        if task.cancelled():
            result = Response(503, [("Content-Type", "text/plain")], b"service unavailable\n")
        elif task.exception() is not None:
            log.error("HTTP handler failed", exc_info=task.exception())
            result = Response(500, [("Content-Type", "text/plain")], b"internal server error\n")
        else:
            result = task.result()
            if not isinstance(result, Response):
                # Checked here: a TypeError in this callback would leave the
                # connection paused with no response, forever.
                log.error("HTTP handler returned %r, not a Response", type(result))
                result = Response(500, [("Content-Type", "text/plain")], b"internal server error\n")
        self._http_respond(req, result)
        if self.phase == PHASE_HTTP:
            self._resume_reading(PAUSED_BY_HANDLER)
            self._process_http_queue()

    cdef int _http_respond(self, HttpRequest req, Response resp) except -1:
        # After a protocol switch we do not speak (e.g. h2c) no HTTP request can
        # follow. The switching request is the last one parsed: requests queued
        # before it (pipelined ahead of a WebSocket upgrade) keep the connection.
        cdef bint close = not req.keep_alive or (self.http.upgrade_seen and not self.http.queue) \
            or self.server.shutting_down
        cdef bint head_only = req.method == "HEAD" or resp.status in (204, 304)
        if resp.stream is not None and (head_only or not _has_length(resp.headers)):
            if head_only:
                _close_stream(resp.stream)
                resp = Response(resp.status, resp.headers, b"")
            else:
                close = True  # no length: the end of the connection ends the body
        try:
            data = _serialize(resp, head_only, close)
        except Exception:
            # e.g. a header value outside latin-1: the handler's bug costs this
            # request a 500, not the connection (and not an error in the loop).
            log.exception("HTTP response could not be serialised")
            data = _serialize(Response(500, [("Content-Type", "text/plain")], b"internal server error\n"),
                              req.method == "HEAD", close)
        self._write_now(data)
        if resp.stream is not None:
            self.http.busy = True
            self._pause_reading(PAUSED_BY_HANDLER)
            asyncio.ensure_future(self._stream_body(resp.stream, close))
            return 0
        self._after_response(close)
        return 0

    cdef int _after_response(self, bint close) except -1:
        if close:
            self._end_after_response()
        elif not self.http.queue:
            self.deadline = self.server.clock() + self.server.options.keepalive_timeout
        return 0

    async def _stream_body(self, stream, bint close):
        """Write a streamed response body, waiting for the peer whenever the transport's
        buffer is over its high-water mark."""
        self.deadline = 0  # a long download is not an idle keep-alive connection
        try:
            async for chunk in stream:
                if self.transport is None:
                    return
                if chunk:
                    self._write_now(bytes(chunk))
                if self.writing_paused and self.transport is not None:
                    self.drain_waiter = self.server.loop.create_future()
                    await self.drain_waiter
        except Exception:
            log.exception("streaming an HTTP response body failed; aborting the connection")
            if self.transport is not None:
                self.transport.abort()
            return
        finally:
            self.drain_waiter = None
            await _aclose(stream)
        if self.phase != PHASE_HTTP or self.http is None:
            return
        self.http.busy = False
        self._after_response(close)
        if self.phase == PHASE_HTTP:
            self._resume_reading(PAUSED_BY_HANDLER)
            self._process_http_queue()

    cdef int _handshake(self, HttpRequest req) except -1:
        try:
            key, offered, _extensions = check_upgrade_request(req.method, req.http_version, req.headers)
        except HandshakeError as e:
            self._log_refusal(e.status, e.reason)
            self._write_now(_plain_response(e.status, e.reason, e.headers, True))
            self._end_after_response()
            return 0
        cdef Options o = self.server.options
        if o.deflate:
            values = req.header_values("sec-websocket-extensions")
            if values:
                self.deflate_params = negotiate_deflate(
                    values, o.deflate_server_no_context_takeover, o.deflate_client_no_context_takeover,
                    o.deflate_server_max_window_bits, o.deflate_client_max_window_bits)
        self.request = req
        self.phase = PHASE_UPGRADING
        # The handshake deadline also bounds an on_upgrade that never decides.
        self.deadline = self.server.clock() + self.server.options.handshake_timeout
        self.http = None
        try:
            result = self.server.h_upgrade(self, req, offered)
        except Reject as r:
            self._reject(r)
            return 0
        except Exception:
            log.exception("on_upgrade handler failed")
            self._reject(Reject(500, "internal server error"))
            return 0
        if result is None or isinstance(result, (str, Reject)):
            self._upgrade_decided(key, offered, result)
            return 0
        if not inspect.isawaitable(result):
            log.error("on_upgrade returned %r", type(result))
            return self._reject(Reject(500, "internal server error"))
        self._pause_reading(PAUSED_BY_HANDLER)
        asyncio.ensure_future(result).add_done_callback(partial(self._upgrade_async_done, key, offered))
        return 0

    def _upgrade_async_done(self, key, offered, task):
        if self.phase != PHASE_UPGRADING:
            return
        exc = None if task.cancelled() else task.exception()
        if task.cancelled():
            self._reject(Reject(503, "service unavailable"))
        elif isinstance(exc, Reject):
            self._reject(exc)
        elif exc is not None:
            log.error("on_upgrade handler failed", exc_info=exc)
            self._reject(Reject(500, "internal server error"))
        else:
            self._resume_reading(PAUSED_BY_HANDLER)
            self._upgrade_decided(key, offered, task.result())

    cdef int _reject(self, r) except -1:
        self._log_refusal(r.status, r.reason)
        self._write_now(_plain_response(r.status, r.reason, r.headers, True))
        self._end_after_response()
        return 0

    cdef int _upgrade_decided(self, key, list offered, result) except -1:
        if isinstance(result, Reject):
            return self._reject(result)
        if result is not None and result not in offered:
            log.error("on_upgrade chose subprotocol %r, which the client did not offer", result)
            return self._reject(Reject(500, "internal server error"))
        cdef Options o = self.server.options
        extra = ()
        if self.deflate_params is not None:
            self.codec.enable_deflate(self.deflate_params, o.deflate_level, o.deflate_mem_level,
                                      o.deflate_min_size)
            self.server.event_counts["deflate_connections"] += 1
            extra = [("Sec-WebSocket-Extensions", self.deflate_params.response)]
        self.subprotocol = result
        self.phase = PHASE_WS
        self.deadline = 0
        self.last_seen = self.server.now
        self.msg_tokens = 2 * o.max_messages_per_second
        self.ping_tokens = 2 * o.max_pings_per_second
        self.refilled_at = self.server.now
        self.in_batch = True
        try:
            self._queue(build_accept_response(key, result, extra))
            try:
                self.server.h_connect(self)
            except Exception:
                # Like on_message: a handler bug closes this connection (1011)
                # instead of escaping into the event loop before the 101 is sent.
                log.exception("on_connect handler failed")
                self.close(1011, "internal error")
        finally:
            self.in_batch = False
        # Frames that arrived with (or after) the upgrade request.
        if self.phase == PHASE_WS and self.codec.end > self.codec.start:
            self._ws_input()
        elif self.queued or self.close_after_flush:
            self._flush()
        return 0

    # -- WebSocket phase -----------------------------------------------------

    cdef int on_data(self, const unsigned char *p, Py_ssize_t n, bint is_text) except -1:
        cdef Server srv = self.server
        if self.codec.state != STATE_OPEN:
            return 0
        srv.messages_received += 1
        srv.bytes_received += <unsigned long long>n
        try:
            if srv.h_data is not None:
                srv.h_data(self, PyBytes_FromStringAndSize(<const char *>p, n), is_text)
            elif is_text:
                srv.h_message(self, PyUnicode_DecodeUTF8(<const char *>p, n, NULL))
            else:
                srv.h_message(self, PyBytes_FromStringAndSize(<const char *>p, n))
        except Exception:
            log.exception("on_message handler failed")
            self.close(1011, "internal error")
        return 0

    cdef int on_pong(self, bytes payload) except -1:
        self.awaiting_pong = False
        return 0

    cdef int on_ping(self, bytes payload) except -1:
        if self.codec.state != STATE_OPEN:
            return 0
        # Answered when the next frame is queued (so the pong leaves before replies
        # to later messages) or at the end of the read batch; a later ping in the
        # same batch replaces it: one pong, with the last payload (RFC 6455 5.5.3).
        if self.pong_due is not None and not self.server.options.coalesce_pongs:
            self._emit_pong()
        self.pong_due = payload
        return 0

    cdef int _emit_pong(self) except -1:
        cdef bytes payload = self.pong_due
        self.pong_due = None
        if self.codec.state == STATE_OPEN:
            self._queue(encode_frame(OP_PONG, payload, True, False, 0, 0))
        return 0

    cdef int _after_feed(self) except -1:
        cdef Codec c = self.codec
        cdef bytes out
        if c.outgoing is not None:
            out = c.take_outgoing()
            self._queue(out)
        if c.state == STATE_CLOSED:
            # Close handshake complete: the server closes TCP first (RFC 6455 7.1.1).
            self.close_after_flush = True
            self._notify_closed(c.close_code, c.close_reason)
        elif c.state == STATE_FAILED and self.phase == PHASE_WS:
            self.server.event_counts["protocol_errors"] += 1
            peer_log.note(logging.INFO, c.error, self.client_address,
                        "websocket closed %s: %s (peer %s)", c.close_code, c.close_reason)
            self._finish_failed()
        return 0

    cdef int _finish_failed(self) except -1:
        # Our close frame goes out followed by FIN; we keep reading (and dropping)
        # until the peer closes, so unread input never turns our FIN into a RST.
        self._flush()
        self.phase = PHASE_DONE
        self._notify_closed(self.codec.close_code, self.codec.close_reason)
        if self.transport is not None:
            if self.transport.can_write_eof():
                self.transport.write_eof()
            self.deadline = self.server.clock() + self.server.options.close_timeout
        return 0

    cdef int _notify_closed(self, int code, str reason) except -1:
        """Tell the handler once that this WebSocket is done, with the code that ended it."""
        if self.closed_called:
            return 0
        self.closed_called = True
        try:
            self.server.h_close(self, code, reason or "")
        except Exception:
            log.exception("on_close handler failed")
        return 0

    # -- output ----------------------------------------------------------------

    cdef unsigned char *_reserve(self, Py_ssize_t n) except NULL:
        """Room for ``n`` more bytes at the end of the output buffer."""
        cdef Py_ssize_t cap = self.ocap or OBUF_MIN
        cdef unsigned char *nb
        if self.lone is not None:
            self._spill()
        if self.olen + n > self.ocap:
            while cap < self.olen + n:
                cap *= 2
            nb = <unsigned char *>PyMem_Realloc(self.obuf, cap)
            if nb == NULL:
                raise MemoryError()
            self.obuf = nb
            self.ocap = cap
        return self.obuf + self.olen

    cdef int _spill(self) except -1:
        """Something follows the lone frame: it joins the buffer (or ``chunks``)."""
        cdef bytes lone = self.lone
        cdef Py_ssize_t n = PyBytes_GET_SIZE(lone)
        self.lone = None
        if n >= LARGE_FRAME:
            self.chunks = [lone]  # it was queued first: nothing else is queued yet
        else:
            memcpy(self._reserve(n), PyBytes_AS_STRING(lone), n)
            self.olen += n
        return 0

    cdef int _seal(self) except -1:
        """Move the output buffer's bytes into ``chunks`` (a large frame follows)."""
        if self.lone is not None:
            self._spill()
        if self.chunks is None:
            self.chunks = []
        if self.olen:
            self.chunks.append(PyBytes_FromStringAndSize(<const char *>self.obuf, self.olen))
            self.olen = 0
        return 0

    cdef int _drop_output(self) except -1:
        self.lone = None
        self.olen = 0
        self.chunks = None
        self.queued = 0
        if self.ocap > OBUF_KEEP or self.transport is None:
            PyMem_Free(self.obuf)
            self.obuf = NULL
            self.ocap = 0
        return 0

    cdef bint _over_send_buffer(self, Py_ssize_t n) except -1:
        """Whether ``n`` more bytes would pass max_send_buffer while the transport is full."""
        return self.writing_paused and self.queued and \
            self.queued + n > self.server.options.max_send_buffer

    cdef int _queued_one(self) except -1:
        if not self.in_batch and not self.dirty:
            self.dirty = True
            self.server._schedule_flush(self)
        return 0

    cdef int _queue(self, bytes frame) except -1:
        """Queue an encoded frame (control frames, pre-framed messages)."""
        cdef Py_ssize_t n = PyBytes_GET_SIZE(frame)
        if self.pong_due is not None:
            self._emit_pong()
        if self._over_send_buffer(n):
            return self._slow_consumer(n)
        if not self.queued:
            # Often the only frame of this write (a response, a room message): kept
            # by reference, it is written without a copy or a new object.
            self.lone = frame
        elif n >= LARGE_FRAME:
            self._seal()
            self.chunks.append(frame)
        else:
            memcpy(self._reserve(n), PyBytes_AS_STRING(frame), n)
            self.olen += n
        self.queued += n
        return self._queued_one()

    cdef int _queue_data(self, int opcode, const unsigned char *p, Py_ssize_t n, object owner) except -1:
        """Queue one whole message framed here: the header and a small payload are
        copied into the output buffer; a large payload that is a bytes object
        (``owner``) is sent by reference, without any copy."""
        cdef Py_ssize_t hl = header_size(n, False)
        cdef unsigned char *dst
        cdef bytes frame
        if self.codec.deflater is not None and n >= self.codec.compress_min:
            return self._queue(self.codec.encode_message(opcode, p, n))
        if self.pong_due is not None:
            self._emit_pong()
        if self._over_send_buffer(hl + n):
            return self._slow_consumer(hl + n)
        if n < LARGE_FRAME and not self.queued:
            # The only frame so far (the welcome, one reply at a time): a bytes object of its
            # own, written by reference, rather than copied into the output buffer and out
            # of it again into the bytes the transport writes.
            frame = PyBytes_FromStringAndSize(NULL, hl + n)
            dst = <unsigned char *>PyBytes_AS_STRING(frame)
            write_header(dst, opcode, n, True, False, 0)
            memcpy(dst + hl, p, n)
            self.lone = frame
        elif n < LARGE_FRAME:
            dst = self._reserve(hl + n)
            write_header(dst, opcode, n, True, False, 0)
            memcpy(dst + hl, p, n)
            self.olen += hl + n
        elif owner is not None:
            write_header(self._reserve(hl), opcode, n, True, False, 0)
            self.olen += hl
            self._seal()
            self.chunks.append(owner)
        else:
            self._seal()
            frame = PyBytes_FromStringAndSize(NULL, hl + n)
            dst = <unsigned char *>PyBytes_AS_STRING(frame)
            write_header(dst, opcode, n, True, False, 0)
            memcpy(dst + hl, p, n)
            self.chunks.append(frame)
        self.queued += hl + n
        return self._queued_one()

    cdef int _slow_consumer(self, Py_ssize_t nbytes) except -1:
        """The peer reads slower than we send and its buffer is full: drop this
        message for it, or close it (1008), so it can neither stall the sender
        and the other receivers nor grow our memory."""
        cdef bytes frame
        if self.server.options.slow_consumer == "close" and self.codec.state == STATE_OPEN:
            self.server.event_counts["slow_consumer_closes"] += 1
            peer_log.note(logging.INFO, "slow consumer", self.client_address,
                        "websocket closed 1008: send buffer full, slow consumer (peer %s)")
            frame = self.codec.close(1008, "send buffer full: slow consumer")
            # the close frame is the one thing allowed past the cap
            self._seal()
            self.chunks.append(frame)
            self.queued += PyBytes_GET_SIZE(frame)
            self.deadline = self.server.clock() + self.server.options.close_timeout
            self._notify_closed(1008, "send buffer full: slow consumer")
        else:
            self.server.event_counts["messages_dropped"] += 1
            self.server.event_counts["bytes_dropped"] += nbytes
        return 0

    cdef int _flush(self) except -1:
        cdef list chunks = self.chunks
        cdef Py_ssize_t queued = self.queued
        self.dirty = False
        if self.writing_paused and self.transport is not None and not self.close_after_flush:
            return 0  # the transport is full; resume_writing flushes
        if self.transport is None:
            return self._drop_output()
        if queued:
            self.server.bytes_sent += <unsigned long long>queued
            if self.lone is not None:
                data = self.lone
                self._drop_output()
                self.transport.write(data)
            elif chunks is None:
                data = PyBytes_FromStringAndSize(<const char *>self.obuf, self.olen)
                self._drop_output()
                self.transport.write(data)
            else:
                self._seal()
                self._drop_output()
                self.transport.writelines(chunks)
        if self.close_after_flush:
            # Checked even with nothing pending: when we started the closing
            # handshake, the peer's answer queues nothing, and TCP must still
            # be closed now rather than aborted after close_timeout.
            self.close_after_flush = False
            self._close_transport()
        return 0

    cdef int _write_now(self, bytes data) except -1:
        self._flush()
        if self.transport is not None:
            self.transport.write(data)
        return 0

    cdef int _end_after_response(self) except -1:
        """End the connection after a final HTTP response (a refusal, a 4xx, or
        ``Connection: close``): send FIN and keep reading — and dropping — until
        the peer closes, or abort after ``close_timeout``. Closing with unread
        input makes the kernel answer with RST, and a client still sending (a
        too-long request line, a body) would then lose the response."""
        self.phase = PHASE_DONE
        self.http = None
        self.deadline = self.server.clock() + self.server.options.close_timeout
        if self.transport is not None:
            if self.transport.can_write_eof():
                self.transport.write_eof()
                self._resume_reading(PAUSED_BY_HANDLER | PAUSED_BY_FLOW)  # keep draining input
            else:
                self.transport.close()
        return 0

    cdef int _close_transport(self) except -1:
        if self.phase == PHASE_WS:
            self._notify_closed(1006, "")
        self.phase = PHASE_DONE
        self.http = None
        # A peer that never reads cannot keep us flushing forever.
        self.deadline = self.server.clock() + self.server.options.close_timeout
        if self.transport is not None:
            self.transport.close()
        return 0

    # -- public API ------------------------------------------------------------

    @property
    def id(self):
        """A random identifier, made on first use."""
        if self._id is None:
            self._id = os.urandom(16).hex()
        return self._id

    @id.setter
    def id(self, value):
        self._id = value

    @property
    def open(self):
        return self.phase == PHASE_WS and self.codec.state == STATE_OPEN

    @property
    def close_code(self):
        return self.codec.close_code or None

    @property
    def read_buffer_size(self):
        """Bytes allocated for reading (monitoring, tests): grows while reads fill it
        (up to 256 KiB of free space), released when the connection is idle."""
        return self.codec.cap

    @property
    def buffered_amount(self):
        """Bytes queued for this connection and not yet taken by the kernel."""
        cdef Py_ssize_t n = self.queued
        if self.transport is not None:
            n += self.transport.get_write_buffer_size()
        return n

    cpdef bint send(self, object data, object text=None):
        """Queue a message: ``str`` as a text frame; bytes-like as binary, or as text
        with ``text=True`` (the bytes must then be UTF-8, e.g. ``orjson.dumps`` output
        or a text payload from ``on_data``: they are not checked again). A large
        ``bytes`` payload is written as it is, never copied. Returns False (and
        sends nothing) once the connection is closing."""
        cdef Py_ssize_t n
        cdef const char *s
        cdef Py_buffer view
        if self.phase != PHASE_WS or self.codec.state != STATE_OPEN:
            return False
        self.server.messages_sent += 1
        if type(data) is bytes:
            self._queue_data(OP_TEXT if text else OP_BINARY, <const unsigned char *>PyBytes_AS_STRING(data),
                             PyBytes_GET_SIZE(data), data)
        elif isinstance(data, str):
            s = PyUnicode_AsUTF8AndSize(data, &n)
            self._queue_data(OP_TEXT, <const unsigned char *>s, n, None)
        else:
            PyObject_GetBuffer(data, &view, PyBUF_SIMPLE)
            try:
                self._queue_data(OP_TEXT if text else OP_BINARY, <const unsigned char *>view.buf, view.len, None)
            finally:
                PyBuffer_Release(&view)
        return True

    cpdef bint send_frame(self, bytes frame):
        """Queue an already encoded frame (encode once, send to many). On a
        permessage-deflate connection a plain whole message of ``deflate_min_size``
        bytes or more is compressed for it; a frame with RSV1 set (from
        ``encode_frame(..., compress=True)``) is sent as it is, and refused with
        ValueError on a connection that did not negotiate compression."""
        if self.phase != PHASE_WS or self.codec.state != STATE_OPEN:
            return False
        if self.codec.deflater is not None:
            frame = self.codec.compress_frame(frame)
        elif PyBytes_GET_SIZE(frame) and (PyBytes_AS_STRING(frame)[0] & 0x40) and not self.codec.deflate:
            raise ValueError("a compressed (RSV1) frame for a connection without permessage-deflate")
        self.server.messages_sent += 1
        self._queue(frame)
        return True

    @property
    def deflate(self):
        """The agreed permessage-deflate parameters (DeflateParams), or None."""
        return self.deflate_params

    def ping(self, data=b""):
        cdef bytes frame = encode_frame(OP_PING, data, True, False, 0)
        if len(frame) > 127:
            # A control frame carries at most 125 bytes (RFC 6455 5.5); a longer
            # ping would make the peer fail the connection with 1002.
            raise ValueError("ping payload over 125 bytes")
        if self.phase == PHASE_WS and self.codec.state == STATE_OPEN:
            self._queue(frame)

    def close(self, int code=1000, str reason=""):
        """Start the closing handshake; the TCP connection ends when the peer
        answers, or after ``close_timeout``."""
        if self.phase != PHASE_WS or self.codec.state != STATE_OPEN:
            if self.phase == PHASE_HTTP or self.phase == PHASE_UPGRADING:
                self._close_transport()
            return
        frame = self.codec.close(code, reason)
        self._queue(frame)
        self.deadline = self.server.clock() + self.server.options.close_timeout
        self._notify_closed(code, reason)
        if not self.in_batch:
            self._flush()
        if self.paused_by & PAUSED_BY_RATE:
            # closing lifts the rate limit: the peer's close frame must be read
            self._resume_reading(PAUSED_BY_RATE)
            if not self.in_batch:
                self._ws_input()

    def abort(self):
        if self.transport is not None:
            self.transport.abort()

    # -- housekeeping ----------------------------------------------------------

    cdef int _tick(self, double now) except -1:
        cdef Options o = self.server.options
        if self.phase == PHASE_HTTP or self.phase == PHASE_UPGRADING:
            if self.deadline and now >= self.deadline:
                self.server.event_counts["http_timeouts"] += 1
                if self.http is not None and self.http.in_head:
                    self._http_fail(408, "request timeout")
                elif self.phase == PHASE_UPGRADING:
                    self._reject(Reject(503, "upgrade timed out"))
                else:
                    self._close_transport()
            return 0
        if self.phase == PHASE_DONE or self.codec.state != STATE_OPEN:
            if self.deadline and now >= self.deadline and self.transport is not None:
                self.server.event_counts["close_timeouts"] += 1
                self.transport.abort()
            return 0
        if self.last_seen < now - o.tick:
            self.server.released += self.codec.release_buffer()
            if not self.queued and self.obuf != NULL:
                PyMem_Free(self.obuf)
                self.server.released += self.ocap
                self.obuf = NULL
                self.ocap = 0
        self._refill(now)
        if self.frame_since:
            if self.paused_by:
                self.frame_since = now  # we stopped reading, not the peer sending
            elif o.frame_timeout > 0 and now - self.frame_since >= o.frame_timeout:
                self.server.event_counts["frame_timeouts"] += 1
                peer_log.note(logging.INFO, "frame read timeout", self.client_address,
                              "websocket closed 1008: frame read timeout (peer %s)")
                self.frame_since = 0
                self.close(1008, "frame read timeout")
                return 0
        if o.ping_interval <= 0:
            return 0
        if self.awaiting_pong:
            if now - self.ping_sent >= o.ping_timeout:
                self.server.event_counts["ping_timeouts"] += 1
                peer_log.note(logging.INFO, "keepalive ping timeout", self.client_address,
                              "websocket closed 1011: keepalive ping timeout (peer %s)")
                self.close(1011, "keepalive ping timeout")
        elif now - self.last_seen >= o.ping_interval:
            self.awaiting_pong = True
            self.ping_sent = now
            self._queue(encode_frame(OP_PING, b"", True, False, 0))
        return 0


def fanout(bytes frame, conns, bytes compressed=None, int compressed_window_bits=15):
    """Queue one already encoded frame on every open connection in ``conns``
    (encode once, send to many); returns how many connections took it. Each
    connection's queued bytes leave in one write per loop iteration.

    permessage-deflate: ``frame`` is the plain message. Connections that agreed on
    compression with no server context takeover (the default) share one compressed
    frame per compressor (one per window size in use, usually exactly one): the
    message is compressed once, lazily, and only if such a receiver exists.
    ``compressed`` (``encode_frame(..., compress=True)``, made with
    ``compressed_window_bits``) is used instead for those whose window allows it. A
    connection with its own compression context gets its own compressed frame.
    """
    cdef Connection c
    cdef Codec codec
    cdef Deflater d
    cdef object last_d = None
    cdef bytes last_frame = None
    cdef dict cache = None
    cdef Py_ssize_t n = 0, hl = -2
    for c in conns:
        if c.phase != PHASE_WS or c.codec.state != STATE_OPEN:
            continue
        n += 1
        c.server.messages_sent += 1
        codec = c.codec
        d = codec.deflater
        if d is None:
            c._queue(frame)
            continue
        if hl == -2:
            hl = plain_payload_offset(frame)
        if hl < 0 or PyBytes_GET_SIZE(frame) - hl < codec.compress_min:
            c._queue(frame)
        elif not d.no_context:
            c._queue(codec.compress_frame(frame))
        elif d is last_d:
            c._queue(last_frame)
        else:
            if compressed is not None and d.wbits >= compressed_window_bits:
                last_frame = compressed
            else:
                if cache is None:
                    cache = {}
                last_frame = cache.get(d)
                if last_frame is None:
                    last_frame = codec.compress_frame(frame)
                    cache[d] = last_frame
            last_d = d
            c._queue(last_frame)
    return n


class WebSocketProtocol(Connection, asyncio.BufferedProtocol):
    """``Connection`` made an ``asyncio.BufferedProtocol`` for the event loop."""
    __slots__ = ()


def _close_stream(stream):
    """A stream that will not be read (a HEAD request): let it release what it holds."""
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        asyncio.ensure_future(aclose())


async def _aclose(stream):
    aclose = getattr(stream, "aclose", None)
    if aclose is not None:
        await aclose()


def _no_http(request):
    return Response(404, [("Content-Type", "text/plain; charset=utf-8")], b"not found\n")


def _accept(conn, request, offered):
    return None


def _ignore(*args):
    return None


cdef class Server:
    """A listening server: connections, the flush queue and the housekeeping timer."""

    def __init__(self, handler, Options options=None, loop=None):
        self.options = options if options is not None else Options()
        self.handler = handler
        self.connections = set()
        self.event_counts = {"protocol_errors": 0, "http_timeouts": 0, "close_timeouts": 0,
                         "ping_timeouts": 0, "messages_dropped": 0, "bytes_dropped": 0,
                         "slow_consumer_closes": 0, "connections_refused": 0,
                         "connections_refused_per_ip": 0, "rate_limited": 0, "ping_flood": 0,
                         "frame_timeouts": 0, "deflate_connections": 0, "throttled": 0}
        self.ip_counts = {}
        self.accepted = 0
        self.loop = loop if loop is not None else asyncio.get_event_loop()
        self.dirty = []
        self.flush_scheduled = False
        self.now = self.loop.time()
        self.h_upgrade = getattr(handler, "on_upgrade", _accept)
        self.h_connect = getattr(handler, "on_connect", _ignore)
        self.h_message = getattr(handler, "on_message", _ignore)
        # opt-in: on_data(conn, payload: bytes, is_text) instead of on_message, no str made
        self.h_data = getattr(handler, "on_data", None)
        self.h_close = getattr(handler, "on_close", _ignore)
        self.h_http = getattr(handler, "on_http", _no_http)
        self.h_pause = getattr(handler, "on_pause_writing", None)
        self.h_resume = getattr(handler, "on_resume_writing", None)
        self.timer = self.loop.call_later(self.options.tick, self._housekeeping)

    @property
    def counters(self):
        """Event counters by name (refusals, limits, timeouts, ...), with the message
        and byte counters as ``messages_in``, ``bytes_in``, ``messages_out``, ``bytes_out``."""
        cdef dict d = self.event_counts
        d["messages_in"] = self.messages_received
        d["bytes_in"] = self.bytes_received
        d["messages_out"] = self.messages_sent
        d["bytes_out"] = self.bytes_sent
        return d

    def protocol_factory(self):
        return WebSocketProtocol(self)

    cdef double clock(self) except? -1:
        """The loop's time now, also refreshing ``now``: deadlines start from it,
        not from the last tick (which may be up to ``tick`` seconds old)."""
        self.now = self.loop.time()
        return self.now

    cdef int _schedule_flush(self, Connection conn) except -1:
        self.dirty.append(conn)
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.loop.call_soon(self._flush_dirty)
        return 0

    def _flush_dirty(self):
        cdef list dirty = self.dirty
        cdef Connection c
        self.dirty = []
        self.flush_scheduled = False
        for c in dirty:
            c._flush()

    def _housekeeping(self):
        cdef Connection c
        self.now = self.loop.time()
        for c in list(self.connections):
            try:
                c._tick(self.now)
            except Exception:
                log.exception("housekeeping failed for a connection")
        if self.released >= TRIM_AFTER and self.now - self.trimmed_at >= TRIM_EVERY:
            # Buffers of connections gone idle were freed, but the holes they leave between
            # live allocations stay resident: hand those pages back to the OS (glibc). At
            # 10,000 idle connections: 9.9 -> 4.4 KiB RSS each (bench/macro/idle_conns.py).
            hf_malloc_trim()
            self.released = 0
            self.trimmed_at = self.now
        self.timer = self.loop.call_later(self.options.tick, self._housekeeping)

    @property
    def sockets(self):
        return self.aio_server.sockets if self.aio_server is not None else ()

    @property
    def port(self):
        return self.sockets[0].getsockname()[1]

    def close(self):
        """Stop accepting new connections."""
        if self.aio_server is not None:
            self.aio_server.close()

    async def shutdown(self, int code=1001, str reason="going away", double timeout=5.0):
        """Stop accepting, close every WebSocket with ``code`` and wait (bounded). An HTTP
        request being answered gets its response first (with ``Connection: close``)."""
        cdef Connection c
        self.close()
        self.shutting_down = True
        for c in list(self.connections):
            if c.phase == PHASE_WS:
                c.close(code, reason)
            elif c.phase == PHASE_HTTP and c.http is not None and c.http.busy:
                pass  # closes after its response (shutting_down)
            elif c.phase != PHASE_DONE:
                c._close_transport()
        deadline = self.loop.time() + timeout
        while self.connections and self.loop.time() < deadline:
            await asyncio.sleep(0.02)
        for c in list(self.connections):
            c.abort()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.aio_server is not None:
            await self.aio_server.wait_closed()


async def serve(handler, host="127.0.0.1", port=8080, *, Options options=None, ssl=None,
                reuse_port=False, sock=None, backlog=1024):
    """Start a server; ``handler`` provides any of on_upgrade, on_connect,
    on_message, on_close, on_http, on_pause_writing, on_resume_writing.

    ``on_message(conn, message)`` gets a text message as ``str`` and a binary one as
    ``bytes``. A handler that defines ``on_data(conn, payload, is_text)`` gets every
    message as ``bytes`` instead (text already checked as UTF-8, never decoded) and
    its on_message is not called: parse JSON straight from it, or echo it with
    ``conn.send(payload, is_text)`` (a large bytes payload is then written without a copy)."""
    loop = asyncio.get_running_loop()
    server = Server(handler, options, loop)
    if sock is not None:
        server.aio_server = await loop.create_server(server.protocol_factory, sock=sock, ssl=ssl,
                                                     backlog=backlog)
    else:
        server.aio_server = await loop.create_server(server.protocol_factory, host, port, ssl=ssl,
                                                     reuse_port=reuse_port or None, backlog=backlog)
    return server
