"""hero-fast: an actionhero-style realtime API server with a Cython WebSocket engine.

The engine (``Codec``, ``Server``, ``serve``, ...) is imported with the package; the
application layer (``Action``, ``Initializer``, middleware, ``Api``, ...) on first use, so
``import hero_fast`` stays cheap for code that only needs the engine.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from hero_fast._core import PROTOCOL_ERRORS, Codec, HandshakeError, encode_close, encode_frame
from hero_fast._transport import Connection, HttpRequest, Options, Reject, Response, Server, fanout, serve

if TYPE_CHECKING:
    from hero_fast.actions import Action, ActionError, Input
    from hero_fast.app import Api
    from hero_fast.chat import ChatError
    from hero_fast.connections import Sent
    from hero_fast.initializers import Initializer
    from hero_fast.middleware import ActionMiddleware, ChatMiddleware, ConnectionMiddleware

__version__ = "0.1.0"

#: application-layer names, imported when first used: name -> module
_LAZY = {
    "Action": "hero_fast.actions",
    "ActionError": "hero_fast.actions",
    "Input": "hero_fast.actions",
    "Api": "hero_fast.app",
    "ChatError": "hero_fast.chat",
    "Sent": "hero_fast.connections",
    "Initializer": "hero_fast.initializers",
    "ActionMiddleware": "hero_fast.middleware",
    "ChatMiddleware": "hero_fast.middleware",
    "ConnectionMiddleware": "hero_fast.middleware",
}

__all__ = [
    "PROTOCOL_ERRORS",
    "Action",
    "ActionError",
    "ActionMiddleware",
    "Api",
    "ChatError",
    "ChatMiddleware",
    "Codec",
    "Connection",
    "ConnectionMiddleware",
    "HandshakeError",
    "HttpRequest",
    "Initializer",
    "Input",
    "Options",
    "Reject",
    "Response",
    "Sent",
    "Server",
    "__version__",
    "encode_close",
    "encode_frame",
    "fanout",
    "serve",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'hero_fast' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
