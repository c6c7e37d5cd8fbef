"""The actionhero WebSocket server: upgrade policy, verbs, heartbeat (PROTOCOL.md).

Plugs into the engine as its handler: ``on_upgrade`` (path, Origin,
authorization), ``on_connect`` (welcome), ``on_message`` (JSON → verb),
``on_close`` (leave rooms, destroy). Every bad request gets an error envelope
and the connection stays open; only protocol violations close it.
"""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

from hero_fast._core import encode_frame
from hero_fast._ids import uuid4_text
from hero_fast._transport import Connection as WsConnection
from hero_fast._transport import HttpRequest, Reject, fanout, peer_log
from hero_fast.actions import ActionError, ActionResult
from hero_fast.chat import ChatError
from hero_fast.config import resolve_callable
from hero_fast.errors import internal_error
from hero_fast.recovery import RecoveryError
from hero_fast.servers.static import FileTooLarge
from hero_fast.servers.static import store as static_files

if TYPE_CHECKING:
    from hero_fast.app import Api
    from hero_fast.connections import Connection

__all__ = ["VerbError", "WebSocketServer"]

log = logging.getLogger("hero_fast.websocket")

_TEXT = 1
_PRIMUS_CLOSE = encode_frame(_TEXT, b'"primus::server::close"')
# The close code of a client that gives up a connection it cannot use (no answer to its
# heartbeat, the browser went offline) and will come back: like a TCP loss (1006), its state
# is kept for recovery. The generated client sends it; a close frame of 1000 means "leaving".
_CLIENT_WILL_RETURN = 4000


class VerbError(Exception):
    """A verb refused: becomes ``{"status": "Error: <text>", "error": ..., "data": ...}``."""


class _NotJson(Exception):
    """The payload is not JSON; ``message_id`` is the request's id when it could still be read."""

    def __init__(self, text: str, message_id: Any = None) -> None:
        super().__init__(text)
        self.message_id = message_id


def _no_constant(name: str) -> Any:
    # NaN, Infinity: Python's json accepts them, RFC 8259 does not
    raise json.JSONDecodeError(f"{name} is not JSON", name, 0)


_HUGE = object()  # stands for an integer Python will not convert


def _int_or_huge(text: str) -> Any:
    try:
        return int(text)
    except ValueError:
        return _HUGE


def _loads_rfc8259(message: str | bytes) -> Any:
    """What orjson refuses but RFC 8259 accepts: numbers beyond a double (``1e309``
    becomes inf) or a 64-bit integer (kept exact). The slow path, only for those."""
    try:
        # bytes are UTF-8 (RFC 8259 8.1); json.loads would also guess UTF-16/32
        payload = message.decode() if type(message) is bytes else message
        return json.loads(payload, parse_constant=_no_constant)
    except (UnicodeDecodeError, RecursionError):
        raise _NotJson("message is not valid JSON") from None
    except ValueError as e:
        if not isinstance(e, json.JSONDecodeError):
            # valid JSON Python will not hold (an integer of over 4300 digits): refuse
            # it, but to the request's messageId when that can still be read
            try:
                data = json.loads(payload, parse_int=_int_or_huge, parse_constant=_no_constant)
            except (ValueError, RecursionError):
                data = None
            mid = data.get("messageId") if type(data) is dict else None
            raise _NotJson("message has a number too large to handle", mid) from None
        raise _NotJson("message is not valid JSON") from None


def _encodable_id(mid: Any) -> bool:
    """A messageId orjson can write back: a string, a 64-bit integer, a finite float."""
    if type(mid) is int:
        return -(1 << 63) <= mid < (1 << 64)
    if type(mid) is float:
        return mid - mid == 0
    return type(mid) is str


def _json_too_deep(text: str | bytes, limit: int) -> bool:
    """Whether the JSON nests deeper than ``limit``. Counting brackets is a
    cheap upper bound; only a message that could be too deep is walked."""
    if isinstance(text, str):
        if text.count("{") + text.count("[") <= limit:
            return False
    elif text.count(b"{") + text.count(b"[") <= limit:
        return False
    depth = deepest = 0
    in_string = escaped = False
    for ch in text if isinstance(text, str) else text.decode("utf-8", "replace"):
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "{[":
            depth += 1
            if depth > deepest:
                deepest = depth
                if deepest > limit:
                    return True
        elif ch in "}]":
            depth -= 1
    return False


class WebSocketServer:
    """The engine handler for actionhero WebSocket clients."""

    def __init__(self, api: Api) -> None:
        self.api = api
        ws_config = api.config["servers"]["websocket"]
        server = ws_config["server"]
        general = api.config["general"]
        self.pathname = server["pathname"].rstrip("/") or "/"
        origins = server["origins"]
        if isinstance(origins, str):
            origins = [o.strip() for o in origins.split(",") if o.strip()]
        self.any_origin = "*" in origins
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self.authorization = resolve_callable(server.get("authorization"), "servers.websocket.server.authorization")
        self.heartbeat_interval = server["pingInterval"] / 1000.0
        # Beats a client may stay silent through: server.timeout as whole intervals, at least one.
        self.silent_beats_allowed = max(1, int(server["timeout"] // server["pingInterval"])) \
            if server["pingInterval"] else 1
        self.cookie_key = api.config["servers"]["web"]["fingerprint"]["cookieKey"]
        self.max_message_id = general["maxMessageIdLength"]
        self.max_json_depth = general["maxJsonDepth"]
        self.max_json_twice = 2 * self.max_json_depth
        self.max_file_size = general["maxFileSize"]
        self.welcome_message = general["welcomeMessage"]
        self.welcome_frame = encode_frame(_TEXT, orjson.dumps({"welcome": self.welcome_message, "context": "api"}))
        self.sockets: set[WsConnection] = set()
        self._heartbeat: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.verbs: dict[str, Callable[[Connection, dict[str, Any]], Any]] = {
            "action": self.verb_action,
            "roomAdd": self.verb_room_add,
            "roomLeave": self.verb_room_leave,
            "roomView": self.verb_room_view,
            "say": self.verb_say,
            "detailsView": self.verb_details_view,
            "file": self.verb_file,
            "documentation": self.verb_documentation,
            "quit": self.verb_quit,
            "exit": self.verb_quit,
            "recover": self.verb_recover,
        }
        self.recovery = api.recovery

    # -- lifecycle -------------------------------------------------------------

    def start_heartbeat(self) -> None:
        if self.heartbeat_interval > 0:
            self._loop = asyncio.get_running_loop()
            self._heartbeat = self._loop.call_later(self.heartbeat_interval, self._beat)

    def stop_heartbeat(self) -> None:
        if self._heartbeat is not None:
            self._heartbeat.cancel()
            self._heartbeat = None

    def _beat(self) -> None:
        """Close sockets silent since the previous beat, then ping the rest."""
        assert self._loop is not None
        alive = []
        for ws in list(self.sockets):
            conn = ws.user_data
            if conn.silent_beats >= self.silent_beats_allowed:
                conn.recoverable = True  # the network, not the client, went away: recoverable
                peer_log.note(logging.INFO, "heartbeat timeout", ws.client_address,
                              "websocket closed 1011: heartbeat timeout (peer %s)")
                ws.close(1011, "heartbeat timeout")
            elif ws.open:
                conn.silent_beats += 1
                alive.append(ws)
        fanout(encode_frame(_TEXT, orjson.dumps(f"primus::ping::{int(time.time() * 1000)}")), alive)
        self._heartbeat = self._loop.call_later(self.heartbeat_interval, self._beat)

    # -- engine hooks ----------------------------------------------------------

    def on_upgrade(self, ws: WsConnection, request: HttpRequest, subprotocols: list[str]) -> Any:
        if (request.path.rstrip("/") or "/") != self.pathname:
            raise Reject(404, "not found")
        origin = request.header("origin")
        if origin is not None and not self.any_origin and origin.rstrip("/") not in self.origins:
            raise Reject(403, "origin not allowed")
        if self.authorization is None:
            return None
        return self._authorize(request)

    def _authorize(self, request: HttpRequest) -> Any:
        """The ``server.authorization`` hook: return/raise Reject, return False
        (→ 401), or anything else to allow; may be async."""
        assert self.authorization is not None
        result = self.authorization(request)
        if inspect.isawaitable(result):
            async def wait() -> None:
                self._authorization_verdict(await result)
            return wait()
        self._authorization_verdict(result)
        return None

    @staticmethod
    def _authorization_verdict(result: Any) -> None:
        if isinstance(result, Reject):
            raise result
        if result is False:
            raise Reject(401, "unauthorized")

    def on_connect(self, ws: WsConnection) -> None:
        request = ws.request
        fingerprint = None
        if request is not None:
            fingerprint = request.cookies.get(self.cookie_key) or request.query.get(self.cookie_key) or None
        # the client's address: forwarded by a trusted proxy (servers.web.trustedProxies) or the peer's
        peer = ws.peer or (None, None)
        conn = self.api.connections.create("webSocket", ws.client_address, peer[1], fingerprint, ws=ws, id=ws.id)
        ws.user_data = conn
        self.sockets.add(ws)
        if self.recovery.enabled:
            token = self.recovery.issue(conn)
            conn.reply({"welcome": self.welcome_message, "context": "api",
                        "recovery": {"token": token, "ttl": self.recovery.ttl_ms}})
        else:
            conn.send_frame(self.welcome_frame)

    def on_close(self, ws: WsConnection, code: int, reason: str) -> None:
        self.sockets.discard(ws)
        conn = ws.user_data
        if conn is not None:
            conn.close_code = code
            # the client did not ask to leave: its TCP connection dropped, or it closed saying it
            # will be back (4000: offline, a silent server); an app's close(4000) does not count
            if code == 1006 or (code == _CLIENT_WILL_RETURN and not conn.closed_by_server):
                conn.recoverable = True
            self.recovery.dropped(conn)  # keeps its state when conn.recoverable
            self.api.connections.destroy(conn)

    def on_data(self, ws: WsConnection, payload: bytes, is_text: bool) -> None:
        """The engine hook: the message's bytes (text already UTF-8-checked), parsed
        as JSON without ever being decoded to ``str``."""
        conn: Connection = ws.user_data
        conn.silent_beats = 0
        if is_text:
            self._request(conn, payload)
        else:
            self.error(conn, None, "binary frames are not supported; send JSON text", None)

    def on_message(self, ws: WsConnection, message: str | bytes) -> None:
        """The same for a message as ``str`` (text) or ``bytes`` (a binary frame)."""
        if type(message) is bytes:
            self.on_data(ws, message, False)
            return
        conn: Connection = ws.user_data
        conn.silent_beats = 0
        self._request(conn, message)

    def _request(self, conn: Connection, message: str | bytes) -> None:
        """One request: JSON text, as ``str`` or UTF-8 ``bytes``."""
        # a message shorter than twice the limit cannot open that many brackets (and close
        # them): most requests skip the bracket count
        if len(message) > self.max_json_twice and _json_too_deep(message, self.max_json_depth):
            self.error(conn, None, f"JSON nested deeper than {self.max_json_depth} levels", None)
            return
        try:
            data = orjson.loads(message)
        except orjson.JSONDecodeError:
            try:
                data = _loads_rfc8259(message)
            except _NotJson as e:
                self.error(conn, e.message_id if _encodable_id(e.message_id) else None, str(e), None)
                return
        if type(data) is not dict:
            if type(data) is str and data.startswith("primus::"):
                self.primus(conn, data)
                return
            self.error(conn, None, "a request must be a JSON object", data)
            return
        mid = data.get("messageId")
        if mid is None:
            mid = uuid4_text()
        elif type(mid) is str:
            if len(mid) > self.max_message_id:
                self.error(conn, None, f"messageId longer than {self.max_message_id} characters", None)
                return
        elif not _encodable_id(mid):
            self.error(conn, None, "messageId must be a string or a number", None)
            return
        verb = self.verbs.get(data.get("event"))  # type: ignore[arg-type]
        if verb is None:
            self.error(conn, mid, f"verb not found or not allowed ({data.get('event')})", data)
            return
        try:
            result = verb(conn, data)
        except (VerbError, ChatError, ActionError) as e:
            self.error(conn, mid, str(e), data)
            return
        except Exception as e:
            self.error(conn, mid, internal_error(log, f"verb {data.get('event')!r}", e), data)
            return
        if type(result) is dict:  # the common, synchronous case: skip the awaitable probe
            self.respond(conn, mid, result)
        elif result is not None:
            self.api.spawn(self._finish(conn, mid, data, result), "verb")

    async def _finish(self, conn: Connection, mid: Any, data: dict[str, Any], pending: Any) -> None:
        try:
            result = await pending
        except (VerbError, ChatError, ActionError) as e:
            self.error(conn, mid, str(e), data)
            return
        except Exception as e:
            self.error(conn, mid, internal_error(log, f"verb {data.get('event')!r}", e), data)
            return
        if result is not None:
            self.respond(conn, mid, result)

    # -- responses -------------------------------------------------------------

    def respond(self, conn: Connection, mid: Any, response: dict[str, Any]) -> None:
        response["context"] = "response"
        response["messageId"] = mid
        try:
            conn.reply(response)
        except orjson.JSONEncodeError:
            # e.g. an integer beyond 64 bits that the slow parser accepted, echoed back
            self.error(conn, mid, "the response could not be encoded as JSON", None)

    def error(self, conn: Connection, mid: Any, text: str, data: Any) -> None:
        text = "Error: " + text
        envelope = {"status": text, "error": text, "context": "response", "data": data, "messageId": mid}
        try:
            conn.reply(envelope)
        except orjson.JSONEncodeError:  # the request fields echoed in `data` hold such a number
            envelope["data"] = None
            conn.reply(envelope)

    def primus(self, conn: Connection, text: str) -> None:
        if text.startswith("primus::pong::"):
            return
        if text.startswith("primus::ping::"):
            conn.reply("primus::pong::" + text[14:])
        elif text == "primus::id::":
            conn.reply("primus::id::" + conn.id)
        else:
            self.error(conn, None, "unknown primus message", text)

    # -- verbs -------------------------------------------------------------------

    def verb_action(self, conn: Connection, data: dict[str, Any]) -> Any:
        params = data.get("params")
        if params is None:
            params = {}
        elif type(params) is not dict:
            raise VerbError("params must be a JSON object")
        result = self.api.actions.process(conn, params)
        if isinstance(result, ActionResult):  # finished without suspending
            return result.response

        async def later() -> dict[str, Any]:
            return (await result).response

        return later()

    def verb_room_add(self, conn: Connection, data: dict[str, Any]) -> Any:
        chat = self.api.chat_room
        room = data.get("room")
        joined = chat.add_member(conn, room)  # type: ignore[arg-type]
        if chat.rooms[room].history is None:  # type: ignore[index]
            return self._ok(joined)

        # a room with history: where the numbering is now (the member gets what follows)
        def ok(position: Any) -> dict[str, Any]:
            return {"status": "OK", "data": True, "history": position}

        if inspect.isawaitable(joined):
            async def later() -> dict[str, Any]:
                await joined
                return ok(chat.position(room))  # type: ignore[arg-type]
            return later()
        return ok(chat.position(room))  # type: ignore[arg-type]

    def verb_room_leave(self, conn: Connection, data: dict[str, Any]) -> Any:
        return self._ok(self.api.chat_room.remove_member(conn, data.get("room")))  # type: ignore[arg-type]

    @staticmethod
    def _ok(pending: Any) -> Any:
        if inspect.isawaitable(pending):
            async def later() -> dict[str, Any]:
                await pending
                return {"status": "OK", "data": True}
            return later()
        return {"status": "OK", "data": True}

    def _joined_room(self, conn: Connection, room: Any) -> str:
        """``room`` checked as a name, existing, and joined by ``conn`` (roomView and say
        are for members only)."""
        chat = self.api.chat_room
        if not chat.exists(chat.check_name(room)):
            raise VerbError("room does not exist")
        if room not in conn.rooms:
            raise VerbError(f"connection not in this room ({room})")
        return room  # type: ignore[no-any-return]

    def verb_room_view(self, conn: Connection, data: dict[str, Any]) -> Any:
        room = self._joined_room(conn, data.get("room"))
        view = self.api.chat_room.view(room)
        if inspect.isawaitable(view):  # a cluster backend counts every node's members
            async def later() -> dict[str, Any]:
                return {"status": "OK", "data": await view}
            return later()
        return {"status": "OK", "data": view}

    def verb_say(self, conn: Connection, data: dict[str, Any]) -> Any:
        room = data.get("room")
        if not room or "message" not in data:
            raise VerbError("both room and message are required")
        sent = self.api.chat_room.broadcast(self._joined_room(conn, room), data["message"], conn)
        if inspect.isawaitable(sent):
            async def later() -> dict[str, Any]:
                await sent
                return {"status": "OK"}
            return later()
        return {"status": "OK"}

    def verb_details_view(self, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
        return {"status": "OK", "data": conn.details()}

    def verb_documentation(self, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
        return {"status": "OK", "data": self.api.actions.documentation()}

    def verb_file(self, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
        name = data.get("file")
        entry = static_files(self.api).lookup(name) if isinstance(name, str) and name else None
        if entry is None:
            return {"error": "that file is not found", "content": None, "mime": "text/html",
                    "length": 22, "lastModified": None, "messageCount": conn.message_count}
        response: dict[str, Any] = {"mime": entry.mime, "length": entry.size, "lastModified": entry.mtime_ms,
                                    "messageCount": conn.message_count}
        try:
            content = entry.read(self.max_file_size)
        except FileTooLarge:
            response.update(error=f"that file is larger than {self.max_file_size} bytes", content=None)
            return response
        except OSError:
            response.update(error="that file is not found", content=None)
            return response
        response["error"] = None
        try:
            response["content"] = content.decode("utf-8")
        except UnicodeDecodeError:
            # Binary content would be corrupted as text: send it base64, and say so.
            response["content"] = base64.b64encode(content).decode("ascii")
            response["encoding"] = "base64"
        return response

    async def verb_recover(self, conn: Connection, data: dict[str, Any]) -> dict[str, Any]:
        try:
            return {"status": "OK", "data": await self.recovery.recover(conn, data)}
        except RecoveryError as exc:
            raise VerbError(str(exc)) from None

    def verb_quit(self, conn: Connection, data: dict[str, Any]) -> None:
        conn.recoverable = False
        if conn.ws is not None:
            conn.ws.send_frame(_PRIMUS_CLOSE)
            conn.ws.close(1000, "quit")

    # -- shutdown ----------------------------------------------------------------

    def close_all(self, destroy_clients: bool) -> None:
        """``destroyClientsOnShutdown``: tell clients not to reconnect, close 1000;
        otherwise close 1001 (going away) so they reconnect elsewhere."""
        for ws in list(self.sockets):
            if destroy_clients:
                ws.send_frame(_PRIMUS_CLOSE)
                ws.close(1000, "server shutdown")
            else:
                ws.user_data.recoverable = True  # they reconnect elsewhere, or here after a restart
                ws.close(1001, "going away")
