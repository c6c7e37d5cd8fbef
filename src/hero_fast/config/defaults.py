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
        },
    },
}

SECTION_DOCS: dict[str, str] = {
    "": "Top-level keys.",
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
}


def build_defaults(spec: dict[str, Any] = SPEC) -> dict[str, Any]:
    """A fresh nested dict of the default values."""
    out: dict[str, Any] = {}
    for key, node in spec.items():
        out[key] = build_defaults(node) if isinstance(node, dict) else copy.deepcopy(node.default)
    return out


#: The built-in defaults (a nested dict). Do not mutate: `load_config` copies it.
DEFAULTS: dict[str, Any] = build_defaults()
