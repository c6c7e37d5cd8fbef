# Declarations of the transport, shipped so Cython code can cimport it
# (e.g. a fan-out loop that queues frames on connections at C speed).

from hero_fast._core cimport Codec, Sink

cdef class Connection
cdef class Server


cdef class Options:
    cdef public Py_ssize_t max_message_size
    cdef public Py_ssize_t max_fragments
    cdef public double handshake_timeout
    cdef public double keepalive_timeout
    cdef public Py_ssize_t max_request_line
    cdef public Py_ssize_t max_headers
    cdef public Py_ssize_t max_header_bytes
    cdef public Py_ssize_t max_body_size
    cdef public double ping_interval
    cdef public double ping_timeout
    cdef public double close_timeout
    cdef public Py_ssize_t write_buffer_high
    cdef public Py_ssize_t write_buffer_low
    cdef public Py_ssize_t max_send_buffer
    cdef public str slow_consumer
    cdef public double tick
    cdef public bint deflate
    cdef public bint deflate_server_no_context_takeover
    cdef public bint deflate_client_no_context_takeover
    cdef public int deflate_server_max_window_bits
    cdef public int deflate_client_max_window_bits
    cdef public int deflate_level
    cdef public int deflate_mem_level
    cdef public Py_ssize_t deflate_min_size
    cdef public Py_ssize_t max_connections
    cdef public Py_ssize_t max_connections_per_ip
    cdef public double max_messages_per_second
    cdef public double max_pings_per_second
    cdef public bint coalesce_pongs
    cdef public double frame_timeout
    cdef public str rate_limit_policy
    cdef public object trusted_proxies
    cdef tuple proxy_networks
    cdef bint is_trusted_proxy(self, str ip)

cdef class HttpRequest:
    cdef readonly str method
    cdef readonly str target
    cdef readonly str path
    cdef readonly str query_string
    cdef readonly str http_version
    cdef readonly list headers
    cdef readonly bytes body
    cdef readonly object peer
    cdef readonly bint keep_alive
    cdef readonly str client_address   # the peer's address, or the one a trusted proxy forwarded
    cdef readonly str scheme           # "http"/"https", or what a trusted proxy forwarded
    cdef object _query
    cdef object _cookies

cdef class Response:
    cdef public int status
    cdef public list headers
    cdef public bytes body
    cdef public object stream

cdef class _HttpSession:
    cdef Connection conn
    cdef object parser
    cdef bytearray url_parts
    cdef Py_ssize_t url_len
    cdef list headers
    cdef Py_ssize_t header_bytes
    cdef Py_ssize_t head_bytes      # bytes fed while the head is incomplete
    cdef bint in_head
    cdef bytearray body_parts
    cdef Py_ssize_t body_len
    cdef HttpRequest request
    cdef object queue               # completed requests waiting for the handler
    cdef bint busy                  # a handler is running asynchronously
    cdef int error_status           # the 4xx a limit check chose before raising
    cdef str error_reason           # and why, for the log
    cdef bint upgrade_seen          # llhttp switched protocols; no request can follow
    cdef int failed_status          # a parse error to answer once the requests before it are
    cdef str failed_reason          # answered (pipelined requests are not dropped)

cdef class Connection(Sink):
    cdef readonly Server server
    cdef readonly object transport
    cdef readonly object peer
    cdef readonly HttpRequest request
    cdef readonly object subprotocol
    cdef public object user_data
    cdef Codec codec
    cdef _HttpSession http
    cdef int phase
    cdef object _id
    cdef bint in_batch
    cdef bint dirty
    # Output queued since the last write: small frames are copied into obuf,
    # large ones are kept by reference in chunks (in order, after obuf's bytes
    # sealed before them); one write or writelines sends everything.
    cdef bytes lone               # the one frame queued, held by reference until another follows
    cdef unsigned char *obuf
    cdef Py_ssize_t olen
    cdef Py_ssize_t ocap
    cdef list chunks
    cdef Py_ssize_t queued        # bytes in obuf + chunks
    cdef readonly str client_address  # the peer's address (or a trusted proxy's forwarded one)
    cdef bint closed_called
    cdef bint close_after_flush
    cdef public bint writing_paused
    cdef int paused_by            # PAUSED_BY_* bits
    cdef double deadline      # HTTP: request head/keep-alive deadline; WS closing: abort time
    cdef double last_seen
    cdef bint awaiting_pong
    cdef double ping_sent
    cdef readonly object deflate_params   # DeflateParams when permessage-deflate was agreed
    cdef object ip                # the address counted in Server.ip_counts
    cdef readonly str peer_ip     # the TCP peer's address
    cdef bint tls
    cdef bint counted             # counted in Server.accepted
    cdef object pong_due          # payload of the last ping not answered yet (coalescing)
    cdef double msg_tokens        # token buckets: messages and pings per second
    cdef double ping_tokens
    cdef double refilled_at
    cdef object rate_timer        # resumes reading once a throttled connection has tokens again
    cdef double frame_since       # when the frame being received started arriving (0: none)
    cdef Py_ssize_t frame_mark    # codec.frames_done at that time
    cdef object drain_waiter      # a Future a streamed HTTP body waits on while writing is paused
    cdef int _refuse(self, str counter, str reason) except -1
    cdef int _emit_pong(self) except -1
    cdef int _http_data(self, Py_ssize_t nbytes) except -1
    cdef int _http_fail(self, int status, str reason) except -1
    cdef int _process_http_queue(self) except -1
    cdef bint _wants_websocket(self, HttpRequest req)
    cdef int _dispatch_http(self, HttpRequest req) except -1
    cdef int _http_respond(self, HttpRequest req, Response resp) except -1
    cdef int _after_response(self, bint close) except -1
    cdef int _handshake(self, HttpRequest req) except -1
    cdef int _reject(self, r) except -1
    cdef int _upgrade_decided(self, key, list offered, result) except -1
    cdef int on_data(self, const unsigned char *p, Py_ssize_t n, bint is_text) except -1
    cdef int _ws_input(self) except -1
    cdef int _parse(self) except -1
    cdef int _refill(self, double now) except -1
    cdef int _over_rate(self) except -1
    cdef bint _count_ip(self, str ip) except -1
    cdef int _uncount_ip(self) except -1
    cdef int _log_refusal(self, int status, str reason) except -1
    cdef int on_pong(self, bytes payload) except -1
    cdef int on_ping(self, bytes payload) except -1
    cdef int _after_feed(self) except -1
    cdef int _finish_failed(self) except -1
    cdef int _notify_closed(self, int code, str reason) except -1
    cdef int _queue(self, bytes frame) except -1
    cdef int _queue_data(self, int opcode, const unsigned char *p, Py_ssize_t n, object owner) except -1
    cdef bint _over_send_buffer(self, Py_ssize_t n) except -1
    cdef unsigned char *_reserve(self, Py_ssize_t n) except NULL
    cdef int _seal(self) except -1
    cdef int _spill(self) except -1
    cdef int _drop_output(self) except -1
    cdef int _queued_one(self) except -1
    cdef int _slow_consumer(self, Py_ssize_t nbytes) except -1
    cdef int _pause_reading(self, int reason) except -1
    cdef int _resume_reading(self, int reason) except -1
    cdef int _flush(self) except -1
    cdef int _write_now(self, bytes data) except -1
    cdef int _end_after_response(self) except -1
    cdef int _close_transport(self) except -1
    cpdef bint send(self, object data, object text=*)
    cpdef bint send_frame(self, bytes frame)
    cdef int _tick(self, double now) except -1

cdef class Server:
    cdef readonly Options options
    cdef readonly object handler
    cdef readonly set connections
    cdef dict event_counts          # Python code reads them as `counters`
    cdef readonly object loop
    cdef public object aio_server
    cdef public double now
    cdef Py_ssize_t released      # bytes of idle connections' buffers freed since the last heap trim
    cdef double trimmed_at
    cdef list dirty
    cdef readonly dict ip_counts
    cdef readonly Py_ssize_t accepted
    cdef bint flush_scheduled
    cdef readonly bint shutting_down  # shutdown() began: HTTP responses close their connection
    cdef readonly object timer     # the one housekeeping TimerHandle (re-armed every tick)
    cdef object h_upgrade, h_connect, h_message, h_data, h_close, h_http, h_pause, h_resume
    # Engine counters (WebSocket connections): cheap C increments, read-only from Python.
    cdef readonly unsigned long long messages_received  # data messages handed to the handler
    cdef readonly unsigned long long bytes_received     # their payload bytes (after inflation)
    cdef readonly unsigned long long messages_sent      # data messages queued (send, send_frame, fanout)
    cdef readonly unsigned long long bytes_sent         # bytes written: frames of every kind, the 101 too
    cdef double clock(self) except? -1
    cdef int _schedule_flush(self, Connection conn) except -1
