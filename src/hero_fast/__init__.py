"""hero-fast: an actionhero-style realtime API server with a Cython WebSocket engine."""

from hero_fast._core import PROTOCOL_ERRORS, Codec, HandshakeError, encode_close, encode_frame
from hero_fast._transport import Connection, HttpRequest, Options, Reject, Response, Server, fanout, serve

__version__ = "0.1.0"

__all__ = [
    "PROTOCOL_ERRORS",
    "Codec",
    "Connection",
    "HandshakeError",
    "HttpRequest",
    "Options",
    "Reject",
    "Response",
    "Server",
    "__version__",
    "encode_close",
    "encode_frame",
    "fanout",
    "serve",
]
