"""Logging: handler setup, a JSON formatter, the access log and secret redaction.

hero-fast logs through the standard :mod:`logging` module under the ``hero_fast``
logger tree. ``hero-fast serve`` calls :func:`configure_logging` with the ``logging``
config section (``--log-level``, ``--log-json``); an application that embeds
:class:`hero_fast.app.Api` keeps its own logging setup and may call it too.

The access log (logger ``hero_fast.access``, level info, config ``logging.accessLog``)
writes one line per WebSocket connection open and close and one per action, with its
duration and outcome. It observes through the server's hooks (connection middleware and an
action observer), registered at start only when that logger writes info lines — at level
warning it costs nothing. Every field is structured (``extra``): the JSON formatter puts
each in the object, the text formatter appends them as ``key=<json>``. Values that
may carry secrets — params, query parameters, headers, cookies — go through a
:class:`Redactor` first; the fingerprint cookie is only ever logged as a short hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import sys
import time
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any

import orjson

from hero_fast.actions import ActionResult
from hero_fast.middleware import ConnectionMiddleware
from hero_fast.redact import DEFAULT_REDACT, REDACTED, Redactor, redactor_for

if TYPE_CHECKING:
    from hero_fast.connections import Connection

__all__ = [
    "ACCESS_LOGGER",
    "REDACTED",
    "JsonFormatter",
    "Redactor",
    "TextFormatter",
    "configure_logging",
    "install_access_log",
]

ACCESS_LOGGER = "hero_fast.access"
MAX_PARAMS_BYTES = 2048
"""Redacted params longer than this (as JSON) are logged as ``{"_truncated": <bytes>}``."""


log = logging.getLogger("hero_fast")


def fingerprint_hash(fingerprint: str | None) -> str | None:
    """A short, stable stand-in for a fingerprint cookie (the cookie itself is a secret)."""
    if not fingerprint:
        return None
    return hashlib.sha256(fingerprint.encode("utf-8", "replace")).hexdigest()[:12]


# -- formatters ---------------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _extras(record: logging.LogRecord, secret: Callable[[str], bool]) -> dict[str, Any]:
    """The record's ``extra`` fields, in the order they were given, secret ones hidden."""
    fields = record.__dict__
    extra = fields.keys() - _RECORD_FIELDS
    if not extra:
        return {}
    return {key: REDACTED if secret(key) else value for key, value in fields.items() if key in extra and key[0] != "_"}


def _secret_keys(redactor: Redactor) -> Callable[[str], bool]:
    """``redactor.is_secret`` for the ``extra`` field names of records, remembered: those
    names come from code, so there are few of them (the memory is bounded anyway)."""
    known: dict[str, bool] = {}

    def secret(key: str) -> bool:
        answer = known.get(key)
        if answer is None:
            answer = redactor.is_secret(key)
            if len(known) < 4096:
                known[key] = answer
        return answer

    return secret


def _dumps(value: Any) -> str:
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # e.g. an int beyond 64 bits
        return json.dumps(value, default=str, ensure_ascii=False)


def _iso(created: float) -> str:
    t = time.gmtime(created)
    return time.strftime("%Y-%m-%dT%H:%M:%S", t) + f".{int(created % 1 * 1000):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ``ts`` (UTC, ISO 8601), ``level``, ``logger``,
    ``message``, every ``extra`` field of the record (secret-looking names hidden),
    and ``exc``/``stack`` when present. Newlines in values are escaped, so a record
    is always exactly one line."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor if redactor is not None else Redactor()
        self._secret = _secret_keys(self.redactor)

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "ts": _iso(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        out.update(_extras(record, self._secret))
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        if record.stack_info:
            out["stack"] = self.formatStack(record.stack_info)
        return _dumps(out)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger>: <message> key=<json> ...`` (extras JSON-encoded, so a
    value can never start a new line or fake another field)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")
        self.redactor = redactor if redactor is not None else Redactor()
        self._secret = _secret_keys(self.redactor)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        extras = _extras(record, self._secret)
        if extras:
            text += " " + " ".join(f"{k}={_dumps(v)}" for k, v in extras.items())
        return text


_HANDLER_MARK = "_hero_fast_handler"


def configure_logging(
    level: str = "info",
    json: bool = False,
    stream: IO[str] | None = None,
    redact: Iterable[str] = DEFAULT_REDACT,
) -> logging.Handler:
    """Log to ``stream`` (stderr) at ``level`` in text or JSON: replaces the handler a
    previous call installed on the root logger (other handlers are left alone). Python
    warnings are routed through logging too (``py.warnings``), so with ``json`` every line
    on the stream is a JSON object. Returns the handler."""
    root = logging.getLogger()
    for old in list(root.handlers):
        if getattr(old, _HANDLER_MARK, False):
            root.removeHandler(old)
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    redactor = Redactor(redact)
    handler.setFormatter(JsonFormatter(redactor) if json else TextFormatter(redactor))
    setattr(handler, _HANDLER_MARK, True)
    root.addHandler(handler)
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        raise ValueError(f"unknown log level {level!r}")
    root.setLevel(numeric)
    logging.captureWarnings(True)
    return handler


# -- action observers ---------------------------------------------------------------------------

def action_label(api: Any, result: ActionResult) -> str:
    """The action's name when the api knows it, else ``"_unknown"`` (a client-chosen
    name never becomes a label or a log field value of its own)."""
    name = result.action
    return name if name.__class__ is str and name in api.actions else "_unknown"


OUTCOMES = ("ok", "client_error", "server_error")


def outcome_index(result: ActionResult) -> int:
    """Index in `OUTCOMES`: ``ok``, ``client_error`` (4xx) or ``server_error`` (5xx, or an
    error in a 2xx response)."""
    status = result.status
    if status >= 500:
        return 2
    if status >= 400:
        return 1
    return 2 if result.response.get("error") else 0


# -- the access log -----------------------------------------------------------------------------


class AccessLog:
    """Connection middleware and an action observer writing the access log lines."""

    def __init__(self, api: Any, redactor: Redactor) -> None:
        self.api = api
        self.redactor = redactor
        self.log = logging.getLogger(ACCESS_LOGGER)

    def _conn_fields(self, conn: Connection) -> dict[str, Any]:
        return {
            "conn_id": conn.id,
            "conn_type": conn.type,
            "remote_ip": conn.remote_ip,
            "remote_port": conn.remote_port,
        }

    def opened(self, conn: Connection) -> None:
        if conn.type != "webSocket" or not self.log.isEnabledFor(logging.INFO):
            return
        fields = self._conn_fields(conn)
        request = conn.ws.request if conn.ws is not None else None
        if request is not None:
            fields["path"] = self.redactor.target(request.target)
            fields["user_agent"] = request.header("user-agent")
        fields["fingerprint"] = fingerprint_hash(conn.fingerprint)
        fields["event"] = "connection.open"
        self.log.info("connection open", extra=fields)

    def closed(self, conn: Connection) -> None:
        if conn.type != "webSocket" or not self.log.isEnabledFor(logging.INFO):
            return
        fields = self._conn_fields(conn)
        fields["close_code"] = conn.ws.close_code if conn.ws is not None else None
        fields["duration_ms"] = max(0, int(time.time() * 1000) - conn.connected_at)
        fields["message_count"] = conn.message_count
        fields["actions"] = conn.total_actions
        fields["event"] = "connection.close"
        self.log.info("connection close", extra=fields)

    def action(self, conn: Any, result: ActionResult) -> None:
        if not self.log.isEnabledFor(logging.INFO):
            return
        name = action_label(self.api, result)
        fields: dict[str, Any] = {
            "event": "action",
            "action": name,
            "status": result.status,
            "outcome": OUTCOMES[outcome_index(result)],
            "duration_ms": round(result.duration, 3),
        }
        if name == "_unknown" and isinstance(result.action, str):
            fields["requested"] = result.action[:64]
        if conn is not None:
            fields.update(self._conn_fields(conn))
        params = self.redactor.params(result.params) if result.params else {}
        text = _dumps(params)
        fields["params"] = params if len(text) <= MAX_PARAMS_BYTES else {"_truncated": len(text)}
        error = result.response.get("error")
        if error:
            fields["error"] = str(error)[:512]
        self.log.info("action %s", name, extra=fields)


def install_access_log(api: Any) -> AccessLog | None:
    """Register the access log on ``api`` when ``logging.accessLog`` is on (the default) and
    the ``hero_fast.access`` logger writes info lines now (``Api.start`` calls this after
    logging is configured; at level warning nothing is registered, so it costs nothing)."""
    cfg = api.config.get("logging") or {}
    if not cfg.get("accessLog", True) or not logging.getLogger(ACCESS_LOGGER).isEnabledFor(logging.INFO):
        return None
    access = AccessLog(api, redactor_for(api.config))
    api.connections.add_middleware(
        ConnectionMiddleware(ACCESS_LOGGER, priority=1000, create=access.opened, destroy=access.closed)
    )
    api.actions.add_observer(access.action)
    return access
