# cython: language_level=3, boundscheck=False, wraparound=False
"""The uvloop (or asyncio) protocol: owns the read buffer, parses HTTP/1.1 with
httptools, hands upgrades to the codec, coalesces writes, runs the timers.

It is the only code that touches the event loop's transport for WebSocket I/O.
Everything a connection must send during one read batch or one loop iteration
leaves in a single ``transport.write``.
"""

import asyncio
import inspect
import logging
import os
from collections import deque
from functools import partial
from urllib.parse import parse_qsl, unquote

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_GET_SIZE
from libc.string cimport memmove

from httptools import HttpParserError, HttpParserUpgrade, HttpRequestParser

from hero_fast._core cimport (
    OP_BINARY, OP_PING, OP_PONG, OP_TEXT, STATE_CLOSED, STATE_CLOSING, STATE_FAILED,
    STATE_OPEN, Codec, Sink, encode_frame, plain_payload_offset,
)
from hero_fast._deflate cimport Deflater
from hero_fast._core import (
    DEFAULT_COMPRESS_MIN, DEFAULT_MAX_FRAGMENTS, DEFAULT_MAX_MESSAGE_SIZE, HandshakeError,
    build_accept_response, build_http_response, check_upgrade_request, negotiate_deflate,
)
from hero_fast._deflate import DEFAULT_LEVEL, DEFAULT_MEM_LEVEL

cdef extern from "Python.h":
    object PyMemoryView_FromMemory(char *mem, Py_ssize_t size, int flags)
    int PyBUF_READ
    int PyBUF_WRITE

__all__ = ["Connection", "HttpRequest", "Options", "Reject", "Response", "Server", "fanout", "serve"]

log = logging.getLogger("hero_fast.transport")

# Why reading is paused (a bit each; reading resumes when none is left)
cdef enum:
    PAUSED_BY_FLOW = 1      # our transport's write buffer is over the high-water mark
    PAUSED_BY_HANDLER = 2   # an async on_http / on_upgrade is running

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
                       twice this size refilled every tick (0 = no limit) → close 1008
                       "rate limit", rate_limited
    max_pings_per_second  pings per connection, same bucket (10) → close 1008
                       "too many pings", ping_flood
    coalesce_pongs     pings read in one batch are answered by one pong with the
                       last payload, as RFC 6455 5.5.3 allows (True; Autobahn 2.10
                       and 2.11 check for a pong per ping: the echo server turns it off)
    frame_timeout      seconds a frame may take to arrive once its first byte did
                       (30; 0 = none) → close 1008 "frame read timeout", frame_timeouts
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

    def as_dict(self):
        return {name: getattr(self, name) for name in (
            "max_message_size", "max_fragments", "handshake_timeout", "keepalive_timeout",
            "max_request_line", "max_headers", "max_header_bytes", "max_body_size",
            "ping_interval", "ping_timeout", "close_timeout", "write_buffer_high",
            "write_buffer_low", "max_send_buffer", "slow_consumer", "tick",
            "deflate", "deflate_server_no_context_takeover", "deflate_client_no_context_takeover",
            "deflate_server_max_window_bits", "deflate_client_max_window_bits", "deflate_level",
            "deflate_mem_level", "deflate_min_size", "max_connections", "max_connections_per_ip",
            "max_messages_per_second", "max_pings_per_second", "coalesce_pongs", "frame_timeout")}


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
        return self.peer[0] if self.peer else None

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
        self.request = r
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
        transport.set_write_buffer_limits(self.server.options.write_buffer_high,
                                          self.server.options.write_buffer_low)
        self.server.connections.add(self)
        self.deadline = self.server.clock() + self.server.options.handshake_timeout
        cdef Options o = self.server.options
        cdef Server srv = self.server
        peer = self.peer
        ip = peer[0] if isinstance(peer, tuple) and peer else None
        if o.max_connections and srv.accepted >= o.max_connections:
            return self._refuse("connections_refused", "too many connections")
        if ip is not None and o.max_connections_per_ip and \
                srv.ip_counts.get(ip, 0) >= o.max_connections_per_ip:
            return self._refuse("connections_refused_per_ip", "too many connections from your address")
        srv.accepted += 1
        self.counted = True
        if ip is not None:
            self.ip = ip
            srv.ip_counts[ip] = srv.ip_counts.get(ip, 0) + 1
        self.http = _HttpSession(self)

    cdef int _refuse(self, str counter, str reason) except -1:
        """Over a connection limit: 503 with a short reason, then close (the request,
        if any, is read and dropped so the answer is not lost to a reset)."""
        self.server.counters[counter] += 1
        self._write_now(_plain_response(503, reason, [("Retry-After", "1")], True))
        self._end_after_response()
        return 0

    def get_buffer(self, Py_ssize_t sizehint):
        cdef Py_ssize_t avail
        cdef unsigned char *p = self.codec.write_ptr(&avail)
        return PyMemoryView_FromMemory(<char *>p, avail, PyBUF_WRITE)

    def buffer_updated(self, Py_ssize_t nbytes):
        cdef Codec c
        self.last_seen = self.server.now
        self.awaiting_pong = False
        if self.phase == PHASE_WS:
            self.in_batch = True
            c = self.codec
            try:
                c.feed(nbytes)
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
            if self.pending is not None or self.close_after_flush:
                self._flush()
        elif self.phase == PHASE_HTTP:
            self._http_data(nbytes)
        # PHASE_UPGRADING keeps bytes in the codec buffer; PHASE_DONE ignores them.
        elif self.phase == PHASE_UPGRADING:
            self.codec.end += nbytes
        else:
            self.codec.start = self.codec.end = 0

    def eof_received(self):
        # The peer finished sending: nothing more can arrive, so close our side too.
        return False

    def connection_lost(self, exc):
        cdef Server srv = self.server
        srv.connections.discard(self)
        if self.counted:
            self.counted = False
            srv.accepted -= 1
            if self.ip is not None:
                left = srv.ip_counts.get(self.ip, 1) - 1
                if left > 0:
                    srv.ip_counts[self.ip] = left
                else:
                    srv.ip_counts.pop(self.ip, None)
        self.pong_due = None
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)  # the streamer sees transport None and stops
        if self.phase == PHASE_WS:
            # The TCP connection ended without a completed close handshake.
            self._notify_closed(1006, "")
        self.phase = PHASE_DONE
        self.pending = None
        self.http = None
        self.codec.release_buffer()
        self.transport = None

    def pause_writing(self):
        self.writing_paused = True
        # Backpressure: stop reading from a peer that does not read our replies;
        # what we still have to send waits in `pending`, capped by max_send_buffer.
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
        if self.pending is not None and not self.in_batch:
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
            h.failed_reason = str(e) or "bad request"
            self._process_http_queue()
            return 0
        self._process_http_queue()
        return 0

    cdef int _http_fail(self, int status, str reason) except -1:
        messages = {413: "request body too large", 414: "request line too long",
                    431: "request header fields too large", 408: "request timeout"}
        self._write_now(_plain_response(status, messages.get(status, "bad request"), [], True))
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
            self.server.counters["deflate_connections"] += 1
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
            # Frames that arrived with (or after) the upgrade request.
            if self.phase == PHASE_WS and self.codec.end > self.codec.start:
                self.codec.parse()
                self._after_feed()
                if self.pong_due is not None:
                    self._emit_pong()
        finally:
            self.in_batch = False
        if self.pending is not None or self.close_after_flush:
            self._flush()
        return 0

    # -- WebSocket phase -----------------------------------------------------

    cdef int on_message(self, object payload, bint is_text) except -1:
        if self.codec.state != STATE_OPEN:
            return 0
        cdef double rate = self.server.options.max_messages_per_second
        if rate > 0:
            self.msg_tokens -= 1.0
            if self.msg_tokens < 0:
                self.server.counters["rate_limited"] += 1
                self.close(1008, "rate limit")
                return 0
        try:
            self.server.h_message(self, payload)
        except Exception:
            log.exception("on_message handler failed")
            self.close(1011, "internal error")
        return 0

    cdef int on_pong(self, bytes payload) except -1:
        self.awaiting_pong = False
        return 0

    cdef int on_ping(self, bytes payload) except -1:
        cdef double rate = self.server.options.max_pings_per_second
        if self.codec.state != STATE_OPEN:
            return 0
        if rate > 0:
            self.ping_tokens -= 1.0
            if self.ping_tokens < 0:
                self.server.counters["ping_flood"] += 1
                self.pong_due = None
                self.close(1008, "too many pings")
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
            self.server.counters["protocol_errors"] += 1
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

    cdef int _queue(self, bytes frame) except -1:
        if self.pong_due is not None:
            self._emit_pong()
        cdef object pending = self.pending
        if self.writing_paused and pending is not None and \
                len(pending) + len(frame) > self.server.options.max_send_buffer:
            return self._slow_consumer(frame)
        if pending is None:
            self.pending = frame
        elif type(pending) is bytes:
            buf = bytearray(pending)
            buf += frame
            self.pending = buf
        else:
            pending += frame
        if not self.in_batch and not self.dirty:
            self.dirty = True
            self.server._schedule_flush(self)
        return 0

    cdef int _slow_consumer(self, bytes frame) except -1:
        """The peer reads slower than we send and its buffer is full: drop this
        message for it, or close it (1008), so it can neither stall the sender
        and the other receivers nor grow our memory."""
        if self.server.options.slow_consumer == "close" and self.codec.state == STATE_OPEN:
            self.server.counters["slow_consumer_closes"] += 1
            frame = self.codec.close(1008, "send buffer full: slow consumer")
            self.pending += frame  # the close frame is the one thing allowed past the cap
            self.deadline = self.server.clock() + self.server.options.close_timeout
            self._notify_closed(1008, "send buffer full: slow consumer")
        else:
            self.server.counters["messages_dropped"] += 1
            self.server.counters["bytes_dropped"] += len(frame)
        return 0

    cdef int _flush(self) except -1:
        pending = self.pending
        self.dirty = False
        if self.writing_paused and self.transport is not None and not self.close_after_flush:
            return 0  # the transport is full; resume_writing flushes
        self.pending = None
        if self.transport is None:
            return 0
        if pending is not None:
            if type(pending) is bytearray:
                pending = bytes(pending)
            self.transport.write(pending)
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
    def buffered_amount(self):
        """Bytes queued for this connection and not yet taken by the kernel."""
        cdef Py_ssize_t n = 0
        if self.pending is not None:
            n = len(self.pending)
        if self.transport is not None:
            n += self.transport.get_write_buffer_size()
        return n

    cpdef bint send(self, object data):
        """Queue a message: ``str`` as a text frame, bytes-like as binary.
        Returns False (and sends nothing) once the connection is closing."""
        if self.phase != PHASE_WS or self.codec.state != STATE_OPEN:
            return False
        if self.codec.deflater is not None:
            self._queue(self.codec.send_message(data))
        else:
            self._queue(encode_frame(OP_TEXT if isinstance(data, str) else OP_BINARY, data, True, False, 0, 0))
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

    def abort(self):
        if self.transport is not None:
            self.transport.abort()

    # -- housekeeping ----------------------------------------------------------

    cdef int _tick(self, double now) except -1:
        cdef Options o = self.server.options
        if self.phase == PHASE_HTTP or self.phase == PHASE_UPGRADING:
            if self.deadline and now >= self.deadline:
                self.server.counters["http_timeouts"] += 1
                if self.http is not None and self.http.in_head:
                    self._http_fail(408, "request timeout")
                elif self.phase == PHASE_UPGRADING:
                    self._reject(Reject(503, "upgrade timed out"))
                else:
                    self._close_transport()
            return 0
        if self.phase == PHASE_DONE or self.codec.state != STATE_OPEN:
            if self.deadline and now >= self.deadline and self.transport is not None:
                self.server.counters["close_timeouts"] += 1
                self.transport.abort()
            return 0
        if self.last_seen < now - o.tick:
            self.codec.release_buffer()
        cdef double elapsed = now - self.refilled_at
        self.refilled_at = now
        if o.max_messages_per_second > 0:
            self.msg_tokens = min(2 * o.max_messages_per_second,
                                  self.msg_tokens + o.max_messages_per_second * elapsed)
        if o.max_pings_per_second > 0:
            self.ping_tokens = min(2 * o.max_pings_per_second,
                                   self.ping_tokens + o.max_pings_per_second * elapsed)
        if self.frame_since:
            if self.paused_by:
                self.frame_since = now  # we stopped reading, not the peer sending
            elif o.frame_timeout > 0 and now - self.frame_since >= o.frame_timeout:
                self.server.counters["frame_timeouts"] += 1
                self.frame_since = 0
                self.close(1008, "frame read timeout")
                return 0
        if o.ping_interval <= 0:
            return 0
        if self.awaiting_pong:
            if now - self.ping_sent >= o.ping_timeout:
                self.server.counters["ping_timeouts"] += 1
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
        self.counters = {"protocol_errors": 0, "http_timeouts": 0, "close_timeouts": 0,
                         "ping_timeouts": 0, "messages_dropped": 0, "bytes_dropped": 0,
                         "slow_consumer_closes": 0, "connections_refused": 0,
                         "connections_refused_per_ip": 0, "rate_limited": 0, "ping_flood": 0,
                         "frame_timeouts": 0, "deflate_connections": 0}
        self.ip_counts = {}
        self.accepted = 0
        self.loop = loop if loop is not None else asyncio.get_event_loop()
        self.dirty = []
        self.flush_scheduled = False
        self.now = self.loop.time()
        self.h_upgrade = getattr(handler, "on_upgrade", _accept)
        self.h_connect = getattr(handler, "on_connect", _ignore)
        self.h_message = getattr(handler, "on_message", _ignore)
        self.h_close = getattr(handler, "on_close", _ignore)
        self.h_http = getattr(handler, "on_http", _no_http)
        self.h_pause = getattr(handler, "on_pause_writing", None)
        self.h_resume = getattr(handler, "on_resume_writing", None)
        self.timer = self.loop.call_later(self.options.tick, self._housekeeping)

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
    on_message, on_close, on_http, on_pause_writing, on_resume_writing."""
    loop = asyncio.get_running_loop()
    server = Server(handler, options, loop)
    if sock is not None:
        server.aio_server = await loop.create_server(server.protocol_factory, sock=sock, ssl=ssl,
                                                     backlog=backlog)
    else:
        server.aio_server = await loop.create_server(server.protocol_factory, host, port, ssl=ssl,
                                                     reuse_port=reuse_port or None, backlog=backlog)
    return server
