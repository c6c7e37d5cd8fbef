"""Every hero-fast option: its default, what it accepts and what it does.

This table is the single source of truth: `DEFAULTS` is built from it, values are checked
against it, and the reference printed by ``python -m hero_fast.config --markdown`` is
generated from it, so the docs cannot drift from the code.

Key names follow actionhero's (``servers.web.port``, ``general.welcomeMessage``, ...).
A nested plain dict is a section; an `Option` is a leaf.  A leaf whose value is a dict
(``httpHeaders``, ``startingChatRooms``, ...) is a *map*: a value set for it in a config
file, an env var or on the command line replaces the whole map.
"""

from __future__ import annotations

import copy
from typing import Any

from hero_fast.config import checks as c
from hero_fast.routes import check_routes

__all__ = ["DEFAULTS", "SECTION_DOCS", "SPEC", "Option", "build_defaults"]


class Option:
    """One leaf of the configuration tree."""

    __slots__ = ("check", "default", "doc")

    def __init__(self, default: Any, doc: str, check: c.Check) -> None:
        self.default = default
        self.doc = " ".join(doc.split())
        self.check = check

    def __repr__(self) -> str:
        return f"Option({self.default!r})"


O = Option  # noqa: E741 - keeps the table below readable

_port = c.integer(0, 65535)
_size = c.integer(1)
_count = c.integer(0)
_secs = c.number(0)
_ms = c.integer(0)
_secret = c.Check(lambda v: isinstance(v, str) and len(v) >= 16, "a string of at least 16 characters")
_str_list = c.list_of_str
_false_or_list = c.any_of(c.constant(False), c.string(), c.list_of_str)

SPEC: dict[str, Any] = {
    "env": O(
        "development",
        """The environment name. It selects the per-environment sections of config files
        (a module-level dict named after it, e.g. ``production = {...}``). Set it with
        ``HERO_FAST_ENV`` or ``--env``; a config file cannot change it.""",
        c.string(nonempty=True),
    ),
    "redis_url": O(
        None,
        """Redis URL (``redis://host:6379/0``, ``rediss://...``, ``unix://...``) of the cluster
        backend. None runs one process with in-memory rooms; Redis is needed for
        ``--workers N`` and for several nodes (rooms, say and ``connection.send`` then work
        across all of them). Env ``HERO_FAST_REDIS_URL``, CLI ``--redis-url``.""",
        c.any_of(c.nothing, c.string(nonempty=True)),
    ),
    "routes": O(
        {},
        """HTTP routes to actions, per method (``get``, ``post``, ``put``, ``patch``, ``delete``,
        ``head``, ``options``, ``all``): lists of ``{"path": "/users/:id", "action": "user"}``
        with optional ``apiVersion`` and ``matchTrailingPathParts``, matched under the actions
        prefix (``/api/users/7``); path params merge into the params. ``/api/<action>`` works
        for every action regardless. Usually set in ``config/routes.py``. A map.""",
        c.Check(check_routes, "a dict of HTTP method to a list of routes", explains=True),
    ),
    "cluster": {
        "prefix": O(
            "hero-fast:",
            """Prefix of every Redis key and pub/sub channel the cluster uses, so several
            hero-fast apps can share one Redis. Pub/sub channels ignore the database number
            of ``redis_url``, so apps on one Redis need different prefixes even on different
            databases.""",
            c.string(),
        ),
        "leaseTtl": O(
            15000,
            """Milliseconds a node's presence lives in Redis without a refresh (it refreshes
            every third of it). A node that dies without cleaning up (SIGKILL) has its room
            members gone from ``roomView`` within this time.""",
            c.integer(300),
        ),
        "probeInterval": O(
            5000,
            """Milliseconds between liveness probes: a node publishes to itself through Redis
            and must receive it before the next probe, else its subscriber is deemed dead and
            reconnected (members are then told they may have missed messages).""",
            c.integer(50),
        ),
        "maxBusMessage": O(
            2097152,
            """Largest message on the cluster bus (bytes). A ``say`` whose payload would be
            larger is refused; a larger message read from Redis is dropped and counted. Keep
            it well below Redis's ``client-output-buffer-limit pubsub`` (8 MB soft, 32 MB
            hard by default), which disconnects a subscriber that falls that far behind.""",
            c.integer(1024),
        ),
        "commandTimeout": O(
            5, "Seconds to wait for Redis to connect or answer before counting an outage.", c.number(0.1)
        ),
        "reconnectMin": O(
            100, "Milliseconds before the first reconnect attempt after an outage (doubling each time).", _ms
        ),
        "reconnectMax": O(5000, "Longest wait between reconnect attempts (milliseconds).", _ms),
        "secret": O(
            None,
            """Key that signs every cluster bus message (HMAC-SHA256), the same on every node;
            at least 16 characters (``python -c "import secrets; print(secrets.token_urlsafe(32))"``).
            When set, a message that is unsigned, signed with another key, older than 60 s
            or seen before is dropped and counted (``unsigned``, ``bad_signature``,
            ``replayed`` in ``api.cluster.stats()`` and the metrics). None: the bus is unsigned,
            as in 0.1 (a warning at boot), and whoever can PUBLISH on the Redis can inject
            chat messages, pushes and room changes. Env ``HERO_FAST__cluster__secret``.""",
            c.any_of(c.nothing, _secret),
        ),
        "previousSecret": O(
            None,
            """A second key whose signatures are accepted too (it never signs): set it to the
            old ``secret`` while rotating keys, see the deployment docs.""",
            c.any_of(c.nothing, _secret),
        ),
    },
    "general": {
        "serverName": O(
            "hero-fast",
            "Name reported in ``serverInformation`` of HTTP responses and by the ``status`` action.",
            c.string(),
        ),
        "apiVersion": O(
            "0.0.1", "Version of your API, reported in ``serverInformation`` and by ``status``.", c.string()
        ),
        "welcomeMessage": O(
            "Hello! Welcome to the actionhero api",
            """Sent to every WebSocket client on connect as
            ``{"welcome": <this>, "context": "api"}``.""",
            c.string(),
        ),
        "simultaneousActions": O(
            5,
            """Actions one connection may have in flight; one more is refused with
            ``you have too many pending requests`` (HTTP 429).""",
            c.integer(1),
        ),
        "startingChatRooms": O(
            {"defaultRoom": {}, "anotherRoom": {}},
            """Chat rooms created at boot (name → options dict). Joining a room that does not
            exist is an error. A map: setting it replaces the default rooms.""",
            c.mapping(c.mapping(), "a dict of room name to a dict of options"),
        ),
        "roomHistory": O(
            {"size": 0, "ttl": 300000},
            """The history every room keeps unless its own options say otherwise: the last
            ``size`` messages for ``ttl`` milliseconds. A room with history numbers its messages
            (``offset``, ``epoch`` in each chat message), and a client that reconnects within
            ``recovery.maxDisconnectionDuration`` gets what it missed. Size 0: no history (no
            cost). A room's own: ``startingChatRooms: {"lobby": {"history": {"size": 200, "ttl":
            600000}}}``. A map.""",
            c.mapping(c.integer(0), "a dict with size and ttl (integers >= 0)"),
        ),
        "maxRoomsPerConnection": O(
            20, "Rooms one connection may be in at once; ``roomAdd`` beyond it is refused.", _count
        ),
        "maxRoomNameLength": O(256, "Longest room name accepted (characters).", _size),
        "maxMessageIdLength": O(
            256, "Longest string ``messageId`` accepted from a client (characters).", _size
        ),
        "maxJsonDepth": O(64, "Deepest nesting of a JSON message from a client; deeper is refused.", _size),
        "maxFileSize": O(
            1048576,
            "Largest file the WebSocket ``file`` verb sends (bytes); larger files are refused.",
            _count,
        ),
        "paths": {
            "action": O(
                ["actions"], "Folders the actions are loaded from (relative to the project dir).", _str_list
            ),
            "initializer": O(
                ["initializers"],
                """Folders of initializers: ``Initializer`` subclasses whose ``initialize``/``start``
                run at boot and ``stop`` at shutdown (relative to the project dir).""",
                _str_list,
            ),
            "middleware": O(
                ["middleware"],
                """Folders of action, connection and chat middleware, registered at boot (relative
                to the project dir).""",
                _str_list,
            ),
            "public": O(
                ["public"],
                "Folders of static files, also read by the ``file`` verb (relative to the project dir).",
                _str_list,
            ),
            "config": O(
                ["config"],
                """Folders of config modules (relative to the project dir). Only a value from
                the env or the CLI can move it (config files are read from there).""",
                _str_list,
            ),
        },
        "shutdownTimeout": O(
            10, "Seconds in-flight actions get to finish on SIGINT/SIGTERM before connections close.", _secs
        ),
        "developmentMode": O(
            False,
            "Development conveniences (e.g. more detailed error logs). Never enable in production.",
            c.boolean,
        ),
    },
    "servers": {
        "web": {
            "enabled": O(
                True, "Run the HTTP server (which the WebSocket server shares its port with).", c.boolean
            ),
            "host": O(
                "127.0.0.1",
                """Address to listen on (``0.0.0.0`` or ``::`` for every interface). Env
                ``HERO_FAST_HOST``, CLI ``--host``.""",
                c.string(nonempty=True),
            ),
            "port": O(8080, "TCP port (0 picks a free one). Env ``HERO_FAST_PORT``, CLI ``--port``.", _port),
            "urlPathForActions": O(
                "api", "URL prefix of actions: ``/api/<action>`` and ``/api?action=``.", c.string()
            ),
            "urlPathForFiles": O("public", "URL prefix of static files: ``/public/<file>``.", c.string()),
            "rootEndpointType": O(
                "file",
                """What ``/`` serves: ``"file"`` → ``public/index.html``; ``"api"`` → the
                ``status`` action.""",
                c.one_of("file", "api"),
            ),
            "flatFileCacheDuration": O(60, "``Cache-Control: max-age`` of static files (seconds).", _count),
            "fingerprint": {
                "cookieKey": O(
                    "sessionID",
                    """Name of the fingerprint cookie (also accepted as a query parameter on the
                    WebSocket upgrade).""",
                    c.string(nonempty=True),
                ),
                "toSetCookie": O(
                    True, "Set the fingerprint cookie on HTTP responses when the request lacks it.", c.boolean
                ),
                "expire": O(3600, "Lifetime of the fingerprint cookie (seconds).", _count),
                "httpOnly": O(True, "Mark the fingerprint cookie ``HttpOnly``.", c.boolean),
                "sameSite": O(
                    "Lax",
                    "``SameSite`` attribute of the fingerprint cookie; None leaves it out.",
                    c.any_of(c.one_of("Strict", "Lax", "None"), c.nothing),
                ),
                "secure": O(False, "Mark the fingerprint cookie ``Secure`` (HTTPS only).", c.boolean),
            },
            "httpHeaders": O(
                {
                    "X-Powered-By": "hero-fast",
                    "Access-Control-Allow-Origin": "*",
                    "Access-Control-Allow-Methods": "HEAD, GET, POST, PUT, PATCH, DELETE, OPTIONS, TRACE",
                    "Access-Control-Allow-Headers": "Content-Type",
                },
                """Headers added to every HTTP response (CORS by default). A map: setting it
                replaces these headers.""",
                c.mapping(c.string()),
            ),
            "maxBodySize": O(1048576, "Largest HTTP request body (bytes) → 413.", _size),
            "keepAliveTimeout": O(15, "Seconds an idle HTTP keep-alive connection is kept open.", _secs),
            "trustedProxies": O(
                [],
                """Addresses or CIDR networks of your reverse proxies / load balancers. Only a
                request whose TCP peer is one of them has ``X-Forwarded-For`` (its right-most
                address that is not itself a trusted proxy) and ``X-Forwarded-Proto`` believed:
                ``remoteIP`` (HTTP and WebSocket), ``maxConnectionsPerIp`` and the engine's log
                lines then use the forwarded address. Empty: the headers are ignored.""",
                c.networks,
            ),
            "metadataOptions": {
                "serverInformation": O(
                    True,
                    "Add ``serverInformation`` (serverName, apiVersion, timing) to HTTP action responses.",
                    c.boolean,
                ),
                "requesterInformation": O(
                    True,
                    "Add ``requesterInformation`` (id, fingerprint, remoteIP, params) to HTTP replies.",
                    c.boolean,
                ),
            },
            "returnErrorCodes": O(
                True,
                """Answer failed HTTP actions with a matching status (404, 422, 429, 500);
                false answers 200 with the ``error`` field.""",
                c.boolean,
            ),
            "certfile": O(
                None,
                """TLS certificate chain (PEM). Set it to serve HTTPS and ``wss://`` on the same
                port. CLI ``--certfile``.""",
                c.any_of(c.nothing, c.path),
            ),
            "keyfile": O(
                None,
                "TLS private key (PEM); None when the certfile holds the key. CLI ``--keyfile``.",
                c.any_of(c.nothing, c.path),
            ),
        },
        "websocket": {
            "enabled": O(True, "Accept WebSocket connections (on the web server's port).", c.boolean),
            "clientUrl": O(
                "window.location.origin",
                """Where the generated browser client connects: a JavaScript expression
                (default) or a quoted URL such as ``"'https://api.example.com'"``.""",
                c.string(nonempty=True),
            ),
            "clientJsPath": O(
                "javascript/",
                "Folder under ``public/`` the browser client is written to at boot; empty to not write it.",
                c.string(),
            ),
            "clientJsName": O(
                "actionheroClient",
                "File name of the browser client (``.js`` and ``.min.js`` are written).",
                c.string(nonempty=True),
            ),
            "destroyClientsOnShutdown": O(
                False,
                """On shutdown send ``"primus::server::close"`` (clients do not reconnect) and
                close with 1000; false closes with 1001 so clients reconnect elsewhere.""",
                c.boolean,
            ),
            "server": {
                "authorization": O(
                    None,
                    """Hook run on each upgrade request to refuse it: a callable or a
                    ``"package.module:function"`` string. It gets the request and may be async;
                    it raises ``hero_fast.Reject(401|403, ...)`` or returns false (→ 401) to
                    refuse. None accepts everyone.""",
                    c.any_of(c.nothing, c.callable_or_ref),
                ),
                "pathname": O(
                    "/primus",
                    "URL path of the WebSocket endpoint (with or without a trailing slash, any query).",
                    c.string(prefix="/"),
                ),
                "parser": O(
                    "JSON",
                    'Message encoding. Only ``"JSON"`` (what the actionhero client speaks).',
                    c.constant("JSON", "hero-fast speaks JSON text frames only"),
                ),
                "transformer": O(
                    "websockets",
                    """Primus transformer. Only ``"websockets"``: hero-fast runs its own Cython
                    WebSocket engine (no engine.io/sockjs long-polling).""",
                    c.constant(
                        "websockets",
                        "hero-fast runs its own WebSocket engine; other Primus transformers "
                        "are not available",
                    ),
                ),
                "plugin": O(
                    {},
                    "Primus plugins. Must stay empty: Primus plugins are Node.js code.",
                    c.Check(
                        lambda v: (
                            v == {}
                            or "must be empty (Primus plugins are Node.js code and cannot run in hero-fast)"
                        ),
                        "an empty dict",
                    ),
                ),
                "timeout": O(
                    35000,
                    """Milliseconds of silence (no pong, no message) after which a connection is
                    considered dead and closed.""",
                    _ms,
                ),
                "pingInterval": O(
                    30000,
                    """Milliseconds between heartbeats ``"primus::ping::<ms>"``; 0 disables them.
                    The heartbeat replaces WebSocket-level pings.""",
                    _ms,
                ),
                "origins": O(
                    "*",
                    """Origins allowed to open a WebSocket: ``"*"``, a comma-separated string or a
                    list of origins (``https://app.example.com``). A foreign ``Origin`` → 403.""",
                    c.any_of(c.string(nonempty=True), c.list_of_str),
                ),
                "methods": O(
                    ["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS"],
                    "``Access-Control-Allow-Methods`` for the WebSocket endpoint's CORS preflight.",
                    _str_list,
                ),
                "credentials": O(
                    True, "``Access-Control-Allow-Credentials`` on the WebSocket endpoint.", c.boolean
                ),
                "maxAge": O(
                    "30 days",
                    """``Access-Control-Max-Age`` of the preflight: seconds, or a duration string
                    such as ``"30 days"``.""",
                    c.any_of(c.string(nonempty=True), c.integer(0)),
                ),
                "headers": O(
                    False,
                    "``Access-Control-Allow-Headers`` on the WebSocket endpoint; false omits it.",
                    _false_or_list,
                ),
                "exposed": O(
                    False,
                    "``Access-Control-Expose-Headers`` on the WebSocket endpoint; false omits it.",
                    _false_or_list,
                ),
            },
            "client": {
                "apiPath": O(
                    "/api",
                    "HTTP path the browser client uses for ``action`` calls made over HTTP.",
                    c.string(),
                ),
                "reconnect": {
                    "max": O(
                        None,
                        "Longest wait between reconnect attempts (ms); None = Infinity.",
                        c.any_of(c.nothing, c.number(0)),
                    ),
                    "min": O(500, "Shortest wait between reconnect attempts (ms).", c.number(0)),
                    "retries": O(10, "Reconnect attempts before the client gives up.", _count),
                    "factor": O(2, "Back-off multiplier between reconnect attempts.", c.number(1)),
                },
                "timeout": O(10000, "Milliseconds the browser client waits for a connection to open.", _ms),
                "ping": O(
                    25000,
                    "Milliseconds the browser client waits for a server heartbeat before it reconnects.",
                    _ms,
                ),
                "pong": O(10000, "Milliseconds the browser client allows for an answer to its ping.", _ms),
                "strategy": O(
                    ["online", "timeout", "disconnect"],
                    """Events on which the browser client reconnects: ``online``, ``timeout``,
                    ``disconnect``; false: never.""",
                    c.any_of(c.constant(False), c.list_of_str),
                ),
                "manual": O(
                    False, "The browser client connects only when ``client.connect()`` is called.", c.boolean
                ),
                "websockets": O(
                    True, "The browser client uses WebSockets (always true for hero-fast).", c.boolean
                ),
                "network": O(
                    True, "The browser client listens to the browser's online/offline events.", c.boolean
                ),
                "transport": O({}, "Extra options for the browser WebSocket transport (a map).", c.mapping()),
                "queueSize": O(
                    None,
                    "Messages the browser client queues while offline; None = Infinity.",
                    c.any_of(c.nothing, c.integer(0)),
                ),
            },
            "maxMessageSize": O(
                1048576, "Largest WebSocket message (bytes, all fragments) → close 1009.", _size
            ),
            "maxFragments": O(1024, "Frames in one fragmented WebSocket message → close 1009.", _size),
            "handshakeTimeout": O(
                10, "Seconds a client has to send a whole HTTP request head → 408.", c.number(0)
            ),
            "closeTimeout": O(
                5, "Seconds to wait for the peer's close frame before dropping the TCP connection.", _secs
            ),
            "maxRequestLine": O(8192, "Longest HTTP request target (bytes) → 414.", _size),
            "maxHeaders": O(100, "Most header fields in one HTTP request → 431.", _size),
            "maxHeaderBytes": O(
                16384, "Most bytes of all header names and values of one request → 431.", _size
            ),
            "writeBufferHigh": O(
                262144, "Bytes buffered for one connection before its writes pause (back-pressure).", _size
            ),
            "writeBufferLow": O(65536, "Bytes at which a paused connection's writes resume.", _count),
            "maxSendBuffer": O(
                1048576,
                """Bytes queued for one connection while its writes are paused (a client that reads
                slower than it is sent to). Past it, ``slowConsumer`` applies to each further message,
                so one slow client never stalls the sender or the others and memory stays bounded.""",
                _size,
            ),
            "slowConsumer": O(
                "drop",
                """What happens to a message for a connection whose send buffer is full: ``"drop"``
                (not queued for that connection; counted) or ``"close"`` (the connection is closed
                with 1008).""",
                c.one_of("drop", "close"),
            ),
            "perMessageDeflate": {
                "enabled": O(
                    True,
                    """Negotiate permessage-deflate (RFC 7692) with clients that offer it. Incoming
                    compressed messages are inflated with an output cap of ``maxMessageSize`` (a
                    decompression bomb closes 1009 after at most that many bytes).""",
                    c.boolean,
                ),
                "serverNoContextTakeover": O(
                    True,
                    """Reset the compressor after every message: one process-wide compressor then
                    serves every connection (a room message is compressed once) and a connection
                    holds no compressor. False gives each connection that allows it its own
                    compressor: about 2**(serverMaxWindowBits+2) + 2**(memLevel+9) bytes + 6 KiB
                    (262 KiB at 15/8).""",
                    c.boolean,
                ),
                "clientNoContextTakeover": O(
                    True,
                    """Ask clients to reset their compressor after every message, so a connection's
                    inflater (about 7 KiB + 2**clientMaxWindowBits bytes) is freed while it is idle.""",
                    c.boolean,
                ),
                "serverMaxWindowBits": O(
                    15, "LZ77 window (bits) of the compressor, 9-15; lower when a client asks.", c.integer(9, 15)
                ),
                "clientMaxWindowBits": O(
                    12,
                    """Window (bits, 9-15) asked of clients that offer ``client_max_window_bits``;
                    bounds the inflater's window (4 KiB at 12). Other clients use 15 (32 KiB).""",
                    c.integer(9, 15),
                ),
                "level": O(6, "zlib compression level of outgoing messages (0-9).", c.integer(0, 9)),
                "memLevel": O(8, "zlib memLevel of the compressor (1-9): memory against speed.", c.integer(1, 9)),
                "threshold": O(
                    128, "Messages shorter than this many bytes are sent uncompressed.", _count
                ),
            },
            "maxConnections": O(
                10000,
                """TCP connections (HTTP and WebSocket) at once; one more is answered
                ``503 too many connections`` and closed. 0: no limit.""",
                _count,
            ),
            "maxConnectionsPerIp": O(
                0,
                """Connections at once from one address (→ 503). 0: no limit — the default, because
                behind a reverse proxy every client has the proxy's address; set it when clients
                connect directly.""",
                _count,
            ),
            "maxMessagesPerSecond": O(
                500,
                """WebSocket messages one connection may send per second (a token bucket holding
                twice this many, refilled continuously); past it ``rateLimitPolicy`` applies.
                0: no limit.""",
                c.number(0),
            ),
            "maxPingsPerSecond": O(
                10,
                """WebSocket pings one connection may send per second (bucket of twice this);
                past it ``rateLimitPolicy`` applies. Pings read together get one pong.
                0: no limit.""",
                c.number(0),
            ),
            "rateLimitPolicy": O(
                "throttle",
                """What a connection over ``maxMessagesPerSecond`` or ``maxPingsPerSecond`` gets.
                ``throttle``: its socket is not read until its bucket refills, so TCP
                backpressure slows the client to the rate: no message lost, no disconnect,
                other connections unaffected. ``close``: close 1008 ``rate limit`` /
                ``too many pings``.""",
                c.one_of("throttle", "close"),
            ),
            "frameTimeout": O(
                30,
                """Seconds a WebSocket frame may take to arrive once its first byte did (a large
                frame trickled in) → close 1008 ``frame read timeout``. 0: no limit.""",
                _secs,
            ),
        },
    },
    "recovery": {
        "maxDisconnectionDuration": O(
            120000,
            """Milliseconds a WebSocket that dropped without saying goodbye (TCP loss, heartbeat
            timeout, server shutdown) is kept: its id, rooms, session and the pushes it could not
            get. A client that comes back in time with its recovery token gets them all, and the
            room messages it missed where the rooms keep history. 0 turns recovery off.""",
            _ms,
        ),
        "maxPushes": O(
            100,
            """Pushes kept per connection for recovery: the most recent ones while it is
            connected (in case the connection drops with them in flight) and those sent while it
            is away. Older ones are dropped (the client learns how many).""",
            _count,
        ),
        "maxPushBytes": O(
            1048576, "Bytes of pushes kept per connection for recovery (as ``maxPushes``).", _count
        ),
        "maxStoredBytes": O(
            67108864,
            """Bytes one process keeps for every dropped connection together (states and held
            pushes, without a cluster backend); beyond it the oldest are given up (those clients
            then get ``recovered: false``), so a flood of dropped connections costs bounded
            memory. With Redis the states live there, under its own memory limits.""",
            _count,
        ),
    },
    "publish": {
        "secret": O(
            None,
            """Bearer token of the HTTP publish endpoint (``publish.httpEndpoint``): set, the
            endpoint is on and a request must carry ``Authorization: Bearer <this>`` (compared
            in constant time); None, it is off. At least 16 characters, unlike
            ``cluster.secret`` (which signs the bus). Env ``HERO_FAST__publish__secret``.""",
            c.any_of(c.nothing, _secret),
        ),
        "httpEndpoint": O(
            "/api/_publish",
            """Path of the HTTP publish endpoint: ``POST`` a JSON ``{"op": "say", "room", "message"}``,
            ``{"op": "send", "id", "message"}`` or ``{"op": "broadcast", "message"}`` to say,
            push or broadcast from another process (docs/deployment.md). Off unless
            ``publish.secret`` is set.""",
            c.string(prefix="/"),
        ),
    },
    "logging": {
        "level": O(
            "info",
            """Level of the ``hero_fast`` loggers and of the log handler ``hero-fast serve``
            installs. CLI ``--log-level``.""",
            c.one_of("debug", "info", "warning", "error"),
        ),
        "json": O(
            False,
            """Log one JSON object per line (``ts``, ``level``, ``logger``, ``message`` and the
            record's fields) instead of text. CLI ``--log-json``.""",
            c.boolean,
        ),
        "accessLog": O(
            True,
            """One line per WebSocket connection open and close, and one per action with its
            duration and outcome (logger ``hero_fast.access``, level info).""",
            c.boolean,
        ),
        "redact": O(
            ["password", "passwd", "secret", "token", "authorization", "cookie", "apikey", "api_key"],
            """Names of params, query parameters and headers whose values are logged as
            ``[REDACTED]`` (case-insensitive; a name containing one of these matches). The
            fingerprint cookie name is always added.""",
            _str_list,
        ),
    },
    "metrics": {
        "enabled": O(
            False,
            """Serve Prometheus metrics at ``metrics.path`` on the web server's port. Needs
            ``prometheus_client`` (``pip install 'hero-fast[metrics]'``).""",
            c.boolean,
        ),
        "path": O("/metrics", "URL path of the metrics endpoint.", c.string(prefix="/")),
        "roomLabelLimit": O(
            100,
            """Rooms reported one by one (``hero_fast_chat_room_members{room=...}``); with more
            rooms only the totals are reported, so the label set stays bounded.""",
            _count,
        ),
    },
}

SECTION_DOCS: dict[str, str] = {
    "": "Top-level keys.",
    "cluster": "Multi-process / multi-node mode through Redis (used only when ``redis_url`` is set).",
    "general": "Names, limits and paths of the API as a whole.",
    "general.paths": "Project folders, relative to the project dir.",
    "servers.web": "The HTTP server: actions under ``/api``, static files, the fingerprint cookie.",
    "servers.web.fingerprint": "The cookie that identifies a browser across connections.",
    "servers.web.metadataOptions": "Metadata added to HTTP action responses.",
    "servers.websocket": (
        "The WebSocket server (actionhero/Primus protocol, same port as the web server) and the "
        "engine limits it enforces."
    ),
    "servers.websocket.server": "Options of the server side of the Primus protocol.",
    "servers.websocket.client": "Options baked into the generated browser client.",
    "servers.websocket.client.reconnect": "Reconnect back-off of the browser client.",
    "servers.websocket.perMessageDeflate": "WebSocket compression (RFC 7692) and what it costs per connection.",
    "recovery": "Connection state recovery: what a client that reconnects gets back (docs/delivery.md).",
    "publish": "Publishing from other processes over HTTP (``hero_fast.publish`` is the Python way through Redis).",
    "logging": "Log level and format, the access log, and what it never shows.",
    "metrics": "The Prometheus endpoint (off by default).",
}


def build_defaults(spec: dict[str, Any] = SPEC) -> dict[str, Any]:
    """A fresh nested dict of the default values."""
    out: dict[str, Any] = {}
    for key, node in spec.items():
        out[key] = build_defaults(node) if isinstance(node, dict) else copy.deepcopy(node.default)
    return out


#: The built-in defaults (a nested dict). Do not mutate: `load_config` copies it.
DEFAULTS: dict[str, Any] = build_defaults()
