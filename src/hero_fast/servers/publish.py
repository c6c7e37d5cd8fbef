"""The HTTP publish endpoint: say, push and broadcast from any process that can make an HTTP
request. Off unless ``publish.secret`` is set; served at ``publish.httpEndpoint``::

    POST /api/_publish
    Authorization: Bearer <publish.secret>
    Content-Type: application/json

    {"op": "say", "room": "lobby", "message": <any JSON>}
    {"op": "send", "id": "<connection id>", "message": <any JSON>}
    {"op": "broadcast", "message": <any JSON>}

It does what server code does (``api.chat_room.broadcast``, ``api.connections.send``,
``api.connections.broadcast``), on this node and, with Redis, across the cluster. Replies are
JSON: 200 ``{"status": "OK"}`` (``send`` adds ``"sent": "local" | "remote" | "held" |
"nowhere"``); 401 without the right secret, 405 for another method, 400 for a malformed
request, 404 for an unknown room, 413 for a message the cluster bus cannot carry, 503 when
a room with history cannot number it (the cluster bus is down), 500 ``internal error (ref
..)`` for anything unexpected (its text stays in the log).
"""

from __future__ import annotations

import hashlib
import hmac
import inspect
import logging
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._transport import HttpRequest, Response
from hero_fast.chat import ChatError
from hero_fast.errors import internal_error

if TYPE_CHECKING:
    from collections.abc import Awaitable

    from hero_fast.chat import ChatRooms
    from hero_fast.connections import Connections

__all__ = ["PublishEndpoint"]

log = logging.getLogger("hero_fast.web")

_HEADERS = [("Content-Type", "application/json; charset=utf-8"), ("Cache-Control", "no-store")]
_UNAUTHORIZED = [*_HEADERS, ("WWW-Authenticate", 'Bearer realm="hero-fast publish"')]


def _digest(text: str) -> bytes:
    # compared as digests: the comparison takes as long whatever the length of the guess
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()


def _reply(status: int, payload: dict[str, Any], headers: list[tuple[str, str]] = _HEADERS) -> Response:
    return Response(status, headers, orjson.dumps(payload))


class _Refused(Exception):
    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class PublishEndpoint:
    """``POST publish.httpEndpoint`` (module doc), for requests bearing ``secret``."""

    def __init__(self, chat: ChatRooms, connections: Connections, secret: str) -> None:
        self.chat = chat
        self.connections = connections
        self._secret = _digest(secret)

    def handle(self, request: HttpRequest) -> Response | Awaitable[Response]:
        if request.method != "POST":
            return Response(405, [*_HEADERS, ("Allow", "POST")], b'{"error":"use POST"}')
        if not self._authorized(request.header("authorization")):
            return _reply(401, {"error": "unauthorized"}, _UNAUTHORIZED)
        try:
            op, body = self._parse(request.body)
            if op == "send":
                return self._send(body)
            if op == "say":
                said = self.chat.broadcast(body["room"], body["message"])
                if inspect.isawaitable(said):
                    return self._later(said, {"status": "OK"})
            else:
                self.connections.broadcast(body["message"])
        except _Refused as exc:
            return _reply(exc.status, {"error": str(exc)})
        except Exception as exc:
            return self._failed(exc)
        return _reply(200, {"status": "OK"})

    def _authorized(self, header: str | None) -> bool:
        scheme, _, token = (header or "").partition(" ")
        return hmac.compare_digest(_digest(token.strip()), self._secret) and scheme.lower() == "bearer"

    @staticmethod
    def _parse(raw: bytes) -> tuple[str, dict[str, Any]]:
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _Refused(400, "the body must be JSON") from None
        if type(body) is not dict:
            raise _Refused(400, "the body must be a JSON object")
        op = body.get("op")
        if op not in ("say", "send", "broadcast"):
            raise _Refused(400, 'op must be "say", "send" or "broadcast"')
        if "message" not in body:
            raise _Refused(400, f"{op} needs a message")
        if op == "say" and type(body.get("room")) is not str:
            raise _Refused(400, "say needs a room (a string)")
        if op == "send" and type(body.get("id")) is not str:
            raise _Refused(400, "send needs an id (a connection id, a string)")
        return op, body

    def _send(self, body: dict[str, Any]) -> Awaitable[Response]:
        async def sending() -> dict[str, Any]:
            sent = await self.connections.send(body["id"], body["message"])
            return {"status": "OK", "sent": sent.value}

        return self._later(sending(), None)

    async def _later(self, pending: Awaitable[Any], reply: dict[str, Any] | None) -> Response:
        try:
            result = await pending
        except Exception as exc:
            return self._failed(exc)
        return _reply(200, reply if reply is not None else result)

    @staticmethod
    def _failed(exc: Exception) -> Response:
        text = str(exc)
        if isinstance(exc, (ChatError, ValueError)) and "too large" in text:
            return _reply(413, {"error": text})
        if isinstance(exc, ChatError):
            status = 404 if text == "room does not exist" else 503 if "cluster bus" in text else 400
            return _reply(status, {"error": text})
        if isinstance(exc, orjson.JSONEncodeError):
            return _reply(400, {"error": "the message must be JSON"})
        return _reply(500, {"error": internal_error(log, "publish request", exc)})
