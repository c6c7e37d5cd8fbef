"""The HTTP side of the shared port: actions under ``/api``, static files, cookies.

Routes (PROTOCOL.md "HTTP"; prefixes from ``servers.web``):

- ``OPTIONS <any>`` → 204 with the configured ``httpHeaders`` (CORS) and ``Allow``.
- ``<websocket pathname>`` (``/primus``, with or without ``/``) without an Upgrade →
  426 Upgrade Required.
- ``/api/<route>`` (config ``routes``: ``/api/users/7`` with ``/users/:id``), then
  ``/api/<action>``, ``/api?action=x``, ``/api/?action=x`` (GET, HEAD, POST, PUT, PATCH,
  DELETE) → the action. Params: the query string, then the body (a JSON object, or a
  urlencoded form), then the route's path params (or the action named in the path). The
  reply is the action's response fields plus ``serverInformation`` and
  ``requesterInformation``, as JSON, with the action's status (``returnErrorCodes``) —
  404 unknown action, 422 bad param, 429 too many pending, 500 the action raised — unless
  the action set its status, headers, a redirect or a file (``data.set_status`` and
  friends).
- ``/public/<file>`` and, with ``rootEndpointType: "file"``, ``/<file>`` (``/`` →
  ``public/index.html``) → the file (GET/HEAD), with ETag, Last-Modified,
  Cache-Control, 304 and byte ranges (206/416); large files are streamed. With
  ``rootEndpointType: "api"`` every other path is an action path (``/`` → ``status``).

Every response carries ``httpHeaders`` and, when the request lacks the fingerprint
cookie (and ``fingerprint.toSetCookie``), a ``Set-Cookie`` with a fresh one. Errors
are JSON ``{"error": "..."}``; nothing raised in here reaches the client as a traceback.
Whenever possible the Response is returned synchronously; only an action that
suspends (or a large file read in a worker thread) yields an awaitable.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import os
import time
from collections.abc import Awaitable, Callable
from email.utils import formatdate, mktime_tz, parsedate_tz
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, quote, unquote

import orjson

from hero_fast._ids import uuid4_text
from hero_fast._transport import HttpRequest, Response
from hero_fast.errors import internal_error
from hero_fast.redact import redactor_for
from hero_fast.servers import static as _static
from hero_fast.servers.publish import PublishEndpoint

if TYPE_CHECKING:
    from hero_fast.actions.action import HttpReply
    from hero_fast.servers.static import FileEntry, StaticFiles

__all__ = ["WebServer"]

log = logging.getLogger("hero_fast.web")

JSON_TYPE = "application/json; charset=utf-8"
API_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
API_ALLOW = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
FILE_METHODS = frozenset({"GET", "HEAD"})
FILE_ALLOW = "GET, HEAD, OPTIONS"
UNKNOWN_ACTION = "unknown action or invalid apiVersion"
FILE_NOT_FOUND = "that file is not found"

_dumps = orjson.dumps
_OPT = orjson.OPT_NON_STR_KEYS


def _now_ms() -> int:
    return int(time.time() * 1000)


def _header_value(name: str, value: Any) -> tuple[str, str]:
    """A config header, refused if it could split the response or not encode."""
    name, text = str(name), str(value)
    for s in (name, text):
        if "\r" in s or "\n" in s or "\x00" in s:
            raise ValueError(f"servers.web.httpHeaders: {name!r} contains a line break or NUL")
        s.encode("latin-1")  # UnicodeEncodeError: headers are latin-1 on the wire
    if not name or ":" in name or " " in name:
        raise ValueError(f"servers.web.httpHeaders: {name!r} is not a valid header name")
    return name, text


def _etag_matches(header: str, etag: str) -> bool:
    """If-None-Match uses the weak comparison (RFC 9110 13.1.2)."""
    header = header.strip()
    if header == "*":
        return True
    weak_free = etag[2:] if etag.startswith("W/") else etag
    for tag in header.split(","):
        tag = tag.strip()
        if tag.startswith("W/"):
            tag = tag[2:]
        if tag == weak_free:
            return True
    return False


def _http_date_ts(value: str) -> int | None:
    try:
        parsed = parsedate_tz(value)
        return None if parsed is None else int(mktime_tz(parsed))
    except (TypeError, ValueError, OverflowError):
        return None


class _BadRequest(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class WebServer:
    """HTTP routes of the API server. ``handle`` is the engine's ``on_http``."""

    def __init__(self, api: Any) -> None:
        self.api = api
        config = api.config
        servers = config.get("servers", {})
        web = servers.get("web", {})
        general = config.get("general", {})

        self.actions_prefix = self._prefix(web.get("urlPathForActions", "api"))
        self.files_prefix = self._prefix(web.get("urlPathForFiles", "public"))
        self.root_is_api = web.get("rootEndpointType", "file") == "api"
        self.cache_control = f"max-age={int(web.get('flatFileCacheDuration', 60))}, must-revalidate, public"
        self.routes = api.routes
        self.redactor = redactor_for(config)

        fp = web.get("fingerprint", {})
        self.cookie_key = str(fp.get("cookieKey", "sessionID"))
        self.set_cookie = bool(fp.get("toSetCookie", True))
        self.cookie_expire = int(fp.get("expire", 3600))
        flags = ""
        if fp.get("httpOnly", True):
            flags += "; HttpOnly"
        if fp.get("sameSite", "Lax"):
            flags += f"; SameSite={fp.get('sameSite', 'Lax')}"
        if fp.get("secure", False):
            flags += "; Secure"
        self.cookie_flags = flags
        _header_value(self.cookie_key, flags)  # validates the cookie name and flags
        self._expires_at = -1
        self._expires_text = ""

        self.base_headers: list[tuple[str, str]] = [
            _header_value(k, v) for k, v in (web.get("httpHeaders") or {}).items()
        ]
        meta = web.get("metadataOptions", {})
        self.server_information = bool(meta.get("serverInformation", True))
        self.requester_information = bool(meta.get("requesterInformation", True))
        self.return_error_codes = bool(web.get("returnErrorCodes", True))
        self.server_name = general.get("serverName", "hero-fast")
        self.api_version = general.get("apiVersion", "0.0.1")

        pathname = servers.get("websocket", {}).get("server", {}).get("pathname", "/primus") or "/primus"
        pathname = "/" + str(pathname).strip("/")
        self.ws_paths = frozenset({pathname, pathname + "/"} if pathname != "/" else {"/"})
        self._files: StaticFiles | None = None
        metrics = config.get("metrics") or {}
        self.metrics_path: str | None = metrics.get("path", "/metrics") if metrics.get("enabled") else None
        publish = config.get("publish") or {}
        self.publish = PublishEndpoint(api.chat_room, api.connections, publish["secret"]) \
            if publish.get("secret") else None
        self.publish_path: str | None = publish.get("httpEndpoint") if self.publish is not None else None

    @staticmethod
    def _prefix(value: Any) -> str | None:
        value = str(value or "").strip("/")
        return "/" + value if value else None

    @property
    def files(self) -> StaticFiles:
        """The static file store (shared with the WebSocket ``file`` verb)."""
        files = self._files
        if files is None:
            files = self._files = _static.store(self.api)
        return files

    # -- entry point ---------------------------------------------------------------

    def handle(self, request: HttpRequest) -> Response | Awaitable[Response]:
        """Answer one HTTP request: a Response, or an awaitable of one when an
        action suspends or a large file is read off the loop."""
        cookie: list[tuple[str, str]] = []
        try:
            fingerprint = self._fingerprint(request, cookie)
            return self._route(request, fingerprint, cookie)
        except _BadRequest as e:
            return self._error(e.status, e.message, cookie)
        except Exception as e:
            return self._error(500, internal_error(log, f"HTTP request {request.method} {request.target[:200]!r}", e),
                               cookie)

    # -- helpers --------------------------------------------------------------------

    def _fingerprint(self, request: HttpRequest, cookie: list[tuple[str, str]]) -> str:
        """The request's fingerprint cookie, or a new one (appending its Set-Cookie)."""
        value = request.cookies.get(self.cookie_key) if request.header("cookie") is not None else None
        if value:
            return value
        value = os.urandom(20).hex()
        if self.set_cookie:
            cookie.append(
                (
                    "Set-Cookie",
                    f"{self.cookie_key}={value}; Path=/; Expires={self._expires()}{self.cookie_flags}",
                )
            )
        return value

    def _expires(self) -> str:
        now = int(time.time())
        if now != self._expires_at:
            self._expires_at = now
            self._expires_text = formatdate(now + self.cookie_expire, usegmt=True)
        return self._expires_text

    def _json(
        self,
        status: int,
        payload: Any,
        cookie: list[tuple[str, str]],
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        headers = [*self.base_headers, ("Content-Type", JSON_TYPE)]
        if extra:
            headers += extra
        if cookie:
            headers += cookie
        return Response(status, headers, _dumps(payload, option=_OPT))

    def _error(
        self,
        status: int,
        message: str,
        cookie: list[tuple[str, str]],
        extra: list[tuple[str, str]] | None = None,
    ) -> Response:
        return self._json(status, {"error": message}, cookie, extra)

    # -- routing -------------------------------------------------------------------

    def _route(
        self, request: HttpRequest, fingerprint: str, cookie: list[tuple[str, str]]
    ) -> Response | Awaitable[Response]:
        method = request.method
        path = request.path
        if path[:1] != "/":
            path = self._origin_form(path)
        if method == "OPTIONS":
            allow = API_ALLOW if path == "*" or self._is_api_path(path) else FILE_ALLOW
            return Response(204, [*self.base_headers, ("Allow", allow), *cookie], b"")
        if path == self.metrics_path:
            return self.api.metrics.handle(request)  # type: ignore[no-any-return]
        if path == self.publish_path:
            return self.publish.handle(request)  # type: ignore[union-attr]
        if path in self.ws_paths:
            headers = [
                *self.base_headers,
                ("Upgrade", "websocket"),
                ("Content-Type", "text/plain; charset=utf-8"),
                *cookie,
            ]
            return Response(426, headers, b"426 Upgrade Required: this endpoint speaks WebSocket only\n")

        prefix = self.actions_prefix
        if (
            prefix is not None
            and path.startswith(prefix)
            and (len(path) == len(prefix) or path[len(prefix)] == "/")
        ):
            return self._api(request, prefix, fingerprint, cookie, None)
        prefix = self.files_prefix
        if (
            prefix is not None
            and path.startswith(prefix)
            and (len(path) == len(prefix) or path[len(prefix)] == "/")
        ):
            return self._static(request, path[len(prefix) :], cookie)
        if self.root_is_api:
            return self._api(request, "", fingerprint, cookie, "status")
        return self._static(request, path, cookie)

    def _is_api_path(self, path: str) -> bool:
        prefix = self.actions_prefix
        if (
            prefix is not None
            and path.startswith(prefix)
            and (len(path) == len(prefix) or path[len(prefix)] == "/")
        ):
            return True
        if not self.root_is_api or path in self.ws_paths:
            return False
        prefix = self.files_prefix
        return prefix is None or not (
            path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/")
        )

    @staticmethod
    def _origin_form(path: str) -> str:
        """An absolute-form target (``http://host/x``) → ``/x``; anything else as is."""
        lower = path[:8].lower()
        if lower.startswith(("http://", "https://")):
            rest = path.split("//", 1)[1]
            slash = rest.find("/")
            return rest[slash:] if slash >= 0 else "/"
        return path

    # -- actions --------------------------------------------------------------------

    @staticmethod
    def _segments(request: HttpRequest, prefix: str) -> list[str]:
        """The raw (still percent-encoded) path segments after ``prefix``: a route's
        ``:param`` may then hold an encoded ``/``."""
        raw = WebServer._origin_form(request.target.partition("?")[0].partition("#")[0])
        quoted = quote(prefix, safe="/")
        if raw.startswith(quoted):
            raw = raw[len(quoted) :]
        elif unquote(raw).startswith(prefix):
            raw = quote(unquote(raw)[len(prefix) :], safe="/")
        return [part for part in raw.split("/") if part]

    def _api(
        self,
        request: HttpRequest,
        prefix: str,
        fingerprint: str,
        cookie: list[tuple[str, str]],
        default_action: str | None,
    ) -> Response | Awaitable[Response]:
        method = request.method
        if method not in API_METHODS:
            return self._error(405, f"method {method} is not allowed here", cookie, [("Allow", API_ALLOW)])
        params: dict[str, Any] = dict(request.query) if request.query_string else {}
        if request.body:
            params.update(self._body_params(request))
        segments = self._segments(request, prefix)
        routed = self.routes.match(method, segments) if segments and self.routes else None
        if routed is not None:
            route, path_params = routed
            params.update(path_params)
            params["action"] = route.action
            if route.api_version is not None and params.get("apiVersion") is None:
                params["apiVersion"] = route.api_version
        elif len(segments) == 1:
            params["action"] = unquote(segments[0])
        elif segments:
            return self._error(404, UNKNOWN_ACTION, cookie)
        elif default_action is not None and not params.get("action"):
            params["action"] = default_action

        api = self.api
        started = _now_ms()
        conn = api.connections.create(
            "web", request.remote_address, request.remote_port, fingerprint=fingerprint
        )
        action = params.get("action")
        if not action or not isinstance(action, str):
            try:
                return self._action_response(
                    request, conn, params, {"error": UNKNOWN_ACTION}, 404, params, started, cookie, None
                )
            finally:
                api.connections.destroy(conn)
        try:
            result = api.actions.process(conn, params)
        except BaseException:
            api.connections.destroy(conn)
            raise
        if inspect.isawaitable(result):
            return self._await_action(request, result, conn, params, started, cookie)
        try:
            return self._result_response(request, conn, params, result, started, cookie)
        finally:
            api.connections.destroy(conn)

    def _body_params(self, request: HttpRequest) -> dict[str, Any]:
        body = request.body
        ctype = request.header("content-type") or ""
        mime = ctype.partition(";")[0].strip().lower()
        if mime == "application/json" or mime.endswith("+json"):
            return self._json_body(body)
        if mime == "application/x-www-form-urlencoded":
            text = body.decode("utf-8", "replace")
            return dict(parse_qsl(text, keep_blank_values=True))
        if mime.startswith("multipart/"):
            raise _BadRequest(
                415,
                "multipart/form-data is not supported: send params as JSON (application/json), "
                "as a form (application/x-www-form-urlencoded) or in the query string",
            )
        if mime in ("", "text/plain") and body.lstrip()[:1] == b"{":
            return self._json_body(body)  # fetch() with a JSON string body and no Content-Type
        raise _BadRequest(
            415,
            f"unsupported Content-Type {mime or '(none)'!r}: send params as JSON (application/json) "
            "or as a form (application/x-www-form-urlencoded)",
        )

    @staticmethod
    def _json_body(body: bytes) -> dict[str, Any]:
        if not body.strip():
            return {}
        try:
            value = orjson.loads(body)
        except orjson.JSONDecodeError as e:
            raise _BadRequest(400, f"invalid JSON body: {e}") from None
        if not isinstance(value, dict):
            raise _BadRequest(400, "the JSON body must be an object of params")
        return value

    def _result_response(
        self,
        request: HttpRequest,
        conn: Any,
        params: dict[str, Any],
        result: Any,
        started: int,
        cookie: list[tuple[str, str]],
    ) -> Response:
        received = getattr(result, "params", None)
        return self._action_response(
            request,
            conn,
            params,
            result.response,
            getattr(result, "status", 200) or 200,
            received if isinstance(received, dict) else params,
            started,
            cookie,
            getattr(result, "http", None),
        )

    def _action_response(
        self,
        request: HttpRequest,
        conn: Any,
        params: dict[str, Any],
        response: Any,
        status: int,
        received: dict[str, Any],
        started: int,
        cookie: list[tuple[str, str]],
        http: HttpReply | None,
    ) -> Response:
        if http is not None and status < 400:
            if http.file is not None:
                return self._action_file(request, http, cookie)
            if http.status is not None:
                status = http.status
        body: dict[Any, Any] = dict(response) if response else {}
        if self.server_information:
            now = _now_ms()
            body["serverInformation"] = {
                "serverName": self.server_name,
                "apiVersion": self.api_version,
                "requestDuration": now - started,
                "currentTime": now,
            }
        if self.requester_information:
            message_id = params.get("messageId")
            if not isinstance(message_id, (str, int)) or isinstance(message_id, bool):
                message_id = uuid4_text()
            body["requesterInformation"] = {
                "id": conn.id,
                "fingerprint": conn.fingerprint,
                "messageId": message_id,
                "remoteIP": conn.remote_ip,
                # never echo a password or token back (logging.redact names them)
                "receivedParams": self.redactor.params(received),
            }
        if not self.return_error_codes and status >= 400:
            status = 200
        try:
            data = _dumps(body, option=_OPT)
        except TypeError as e:
            text = internal_error(log, f"encoding the response of action {params.get('action')!r} as JSON", e)
            return self._error(500, text, cookie)
        headers = [*self.base_headers, ("Content-Type", JSON_TYPE)]
        if http is not None:
            headers += http.headers
        if cookie:
            headers += cookie
        return Response(status, headers, data)

    def _action_file(self, request: HttpRequest, http: HttpReply, cookie: list[tuple[str, str]]) -> Response:
        """``data.send_file(path)``: absolute, or relative to public/ (and then inside it)."""
        path = http.file
        assert path is not None
        if os.path.isabs(path):
            entry = _static.file_entry(path)
        else:
            entry = self.files.lookup(path)
        if entry is None:
            log.warning("send_file(%r): no such file", path)
            return self._error(404, FILE_NOT_FOUND, cookie)
        extra = list(http.headers)
        if http.download_name is not None:
            name = "".join(c if c.isprintable() and c not in '\\"' else "_" for c in http.download_name)
            ascii_name = name.encode("latin-1", "replace").decode("latin-1")
            extra.append(
                ("Content-Disposition", f'attachment; filename="{ascii_name}"; filename*=UTF-8\'\'{quote(name)}')
            )
        return self._file_response(request, entry, cookie, extra, http.file_type, cache=False)

    def _await_action(
        self,
        request: HttpRequest,
        awaitable: Awaitable[Any],
        conn: Any,
        params: dict[str, Any],
        started: int,
        cookie: list[tuple[str, str]],
    ) -> asyncio.Future[Response]:
        """Chain the suspended action into a future of the Response (no extra Task
        when the action layer already returns a future); the connection is destroyed
        exactly once, however it ends."""
        destroy: Callable[[Any], Any] = self.api.connections.destroy
        done = False

        def finish() -> None:
            nonlocal done
            if not done:
                done = True
                try:
                    destroy(conn)
                except Exception:
                    log.exception("destroying web connection %r failed", conn)

        try:
            inner = asyncio.ensure_future(awaitable)
        except BaseException:
            finish()
            raise
        outer: asyncio.Future[Response] = inner.get_loop().create_future()

        def inner_done(task: asyncio.Future[Any]) -> None:
            try:
                if outer.done():
                    return
                if task.cancelled():
                    resp = self._error(503, "the request was cancelled", cookie)
                elif task.exception() is not None:
                    exc = task.exception()
                    assert exc is not None
                    resp = self._error(500, internal_error(log, f"action {params.get('action')!r}", exc), cookie)
                else:
                    resp = self._result_response(request, conn, params, task.result(), started, cookie)
            except Exception as e:
                text = internal_error(log, f"building the response of action {params.get('action')!r}", e)
                resp = self._error(500, text, cookie)
            finally:
                finish()
            if not outer.done():
                outer.set_result(resp)

        def outer_done(fut: asyncio.Future[Response]) -> None:
            if fut.cancelled():
                inner.cancel()
                finish()

        inner.add_done_callback(inner_done)
        outer.add_done_callback(outer_done)
        return outer

    # -- static files ------------------------------------------------------------------

    def _static(self, request: HttpRequest, rel: str, cookie: list[tuple[str, str]]) -> Response:
        method = request.method
        if method not in FILE_METHODS:
            return self._error(405, f"method {method} is not allowed here", cookie, [("Allow", FILE_ALLOW)])
        entry = self.files.lookup(rel)
        if entry is None:
            return self._error(404, FILE_NOT_FOUND, cookie)
        return self._file_response(request, entry, cookie, [], None, cache=True)

    def _file_response(
        self,
        request: HttpRequest,
        entry: FileEntry,
        cookie: list[tuple[str, str]],
        extra: list[tuple[str, str]],
        content_type: str | None,
        *,
        cache: bool,
    ) -> Response:
        """A file with its validators, 304 for a conditional request it satisfies, one byte
        range (206, or 416) when asked for, streamed unless it is cached in memory."""
        validators = [("ETag", entry.etag), ("Last-Modified", entry.last_modified)]
        if cache:
            validators.append(("Cache-Control", self.cache_control))
        if self._not_modified(request, entry):
            return Response(304, [*self.base_headers, *validators, *extra, *cookie], b"")
        headers = [
            *self.base_headers,
            ("Content-Type", content_type or entry.content_type),
            ("Accept-Ranges", "bytes"),
            *validators,
            *extra,
            *cookie,
        ]
        size = entry.size
        start, end, status = 0, size, 200
        wanted = request.header("range")
        if wanted is not None and request.method == "GET" and self._range_applies(request, entry):
            span = _static.byte_range(wanted, size)
            if span == (-1, -1):
                headers.append(("Content-Range", f"bytes */{size}"))
                return Response(416, headers, b"")
            if span is not None:
                start, end, status = span[0], span[1], 206
                headers.append(("Content-Range", f"bytes {start}-{end - 1}/{size}"))
        headers.append(("Content-Length", str(end - start)))
        if request.method == "HEAD":
            return Response(status, headers, b"")
        if entry.body is not None:
            return Response(status, headers, entry.body if status == 200 else entry.body[start:end])
        return Response(status, headers, stream=_static.read_chunks(entry.path, start, end - start))

    @staticmethod
    def _range_applies(request: HttpRequest, entry: FileEntry) -> bool:
        """``If-Range`` (RFC 9110 13.1.5): the range only if the validator still matches."""
        if_range = request.header("if-range")
        if if_range is None:
            return True
        if_range = if_range.strip()
        if if_range.startswith('"') or if_range.startswith("W/"):
            return if_range == entry.etag  # strong comparison
        return if_range == entry.last_modified

    @staticmethod
    def _not_modified(request: HttpRequest, entry: FileEntry) -> bool:
        inm = request.header("if-none-match")
        if inm is not None:
            return _etag_matches(inm, entry.etag)
        ims = request.header("if-modified-since")
        if ims is not None:
            ts = _http_date_ts(ims)
            return ts is not None and entry.mtime <= ts
        return False
