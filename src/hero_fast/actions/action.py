"""The pieces users write: actions, their inputs, action middleware; and what
the processor hands back (:class:`ActionResult`) and passes around
(:class:`ActionData`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from hero_fast.middleware import ActionMiddleware

if TYPE_CHECKING:
    from hero_fast.connections.connection import Connection

__all__ = [
    "MISSING",
    "Action",
    "ActionData",
    "ActionError",
    "ActionMiddleware",
    "ActionResult",
    "HttpReply",
    "Input",
]


class _Missing:
    """Sentinel: no default declared."""

    __slots__ = ()
    _instance: ClassVar[_Missing | None] = None

    def __new__(cls) -> _Missing:
        if cls._instance is None:
            cls._instance = object.__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False

    def __reduce__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()

_INPUT_KEYS = frozenset({"required", "default", "validator", "formatter", "description"})


class Input:
    """One declared parameter of an action.

    ``default`` is a value, or a callable returning one: called with the
    connection when it takes a required positional argument, else with none
    (so ``default=list`` gives a fresh list). ``formatter(value)`` (or
    ``formatter(value, data)``) converts the value; ``validator(value)`` (or
    ``validator(value, data)``) then checks it: returning ``True``/``None`` means
    valid, ``False`` or a string (the message) or raising means invalid. Either
    may be ``async``. A value that is absent, ``None`` or ``""`` counts as
    missing: the default applies, and a required input without one is an
    error.
    """

    __slots__ = ("default", "description", "formatter", "required", "validator")

    def __init__(
        self,
        required: bool = False,
        default: Any = MISSING,
        validator: Callable[..., Any] | None = None,
        formatter: Callable[..., Any] | None = None,
        description: str = "",
    ) -> None:
        self.required = required
        self.default = default
        self.validator = validator
        self.formatter = formatter
        self.description = description

    @classmethod
    def coerce(cls, spec: Input | Mapping[str, Any] | None, where: str = "input") -> Input:
        """An :class:`Input` from an ``Input``, a plain dict, or ``None`` (optional)."""
        if isinstance(spec, Input):
            return spec
        if spec is None:
            return cls()
        if isinstance(spec, Mapping):
            unknown = set(spec) - _INPUT_KEYS
            if unknown:
                raise TypeError(
                    f"{where}: unknown input option(s) {sorted(map(str, unknown))}; allowed: {sorted(_INPUT_KEYS)}"
                )
            return cls(**spec)
        raise TypeError(f"{where}: an input must be an Input or a dict, not {type(spec).__name__}")

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Input):
            return NotImplemented
        return all(getattr(self, k) == getattr(other, k) for k in self.__slots__)

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        parts = [f"required={self.required!r}"]
        if self.default is not MISSING:
            parts.append(f"default={self.default!r}")
        if self.validator is not None:
            parts.append(f"validator={self.validator!r}")
        if self.formatter is not None:
            parts.append(f"formatter={self.formatter!r}")
        if self.description:
            parts.append(f"description={self.description!r}")
        return f"Input({', '.join(parts)})"


class ActionError(Exception):
    """Raise from an action, a middleware, a formatter or a validator for a
    clean error response: ``message`` becomes the response's ``error`` and
    ``status`` the HTTP status (default 422)."""

    def __init__(self, message: str, status: int = 422) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __str__(self) -> str:
        return str(self.message)


class Action:
    """Base class of actions. Subclass it and set the class attributes::

        class Greet(Action):
            name = "greet"
            description = "says hello"
            inputs = {"who": Input(required=True)}

            async def run(self, data):
                return {"greeting": f"hello {data.params['who']}"}

    ``run`` may be sync or async. It gets an :class:`ActionData`; a dict it
    returns is merged into ``data.response`` (it can also fill
    ``data.response`` directly); any other return value is ignored, with a
    warning logged once per action. Raise :class:`ActionError` for an error the
    client sees as written, with an HTTP status; any other exception is a 500
    answered ``internal error (ref <id>)`` while its text goes to the log line
    carrying the same reference. One instance serves every request.
    """

    name: ClassVar[str]
    description: ClassVar[str] = ""
    version: ClassVar[int | float | str] = 1
    inputs: ClassVar[Mapping[str, Input | Mapping[str, Any]]] = {}
    middleware: ClassVar[list[str] | tuple[str, ...]] = []
    output_example: ClassVar[Any] = {}

    def run(self, data: ActionData) -> Any:
        raise NotImplementedError(f"action {getattr(self, 'name', type(self).__name__)!r} has no run()")

    def __repr__(self) -> str:
        return f"<Action {getattr(self, 'name', '?')!r} v{getattr(self, 'version', '?')}>"


class ActionResult:
    """The outcome of :meth:`ActionRegistry.process`: ``response`` (the dict the
    transports send; it holds ``error`` on failure), ``status`` (HTTP status:
    200, 404, 422, 429, 500, or an :class:`ActionError`'s), ``action`` (the name
    asked for, or None), ``duration`` (ms), ``params`` (the params after input
    processing, or as received when processing stopped before that).

    An action that ran hands back its :class:`ActionData` itself (a subclass),
    which saves an object per request; only these fields are part of the
    result's contract."""

    __slots__ = ("action", "duration", "params", "response", "status")

    def __init__(
        self,
        response: dict[str, Any],
        status: int = 200,
        action: str | None = None,
        duration: float = 0.0,
        params: dict[str, Any] | None = None,
    ) -> None:
        self.response = response
        self.status = status
        self.action = action
        self.duration = duration
        self.params = params

    @property
    def ok(self) -> bool:
        return self.status < 400

    @property
    def error(self) -> Any:
        return self.response.get("error")

    def __repr__(self) -> str:
        return (
            f"ActionResult(status={self.status}, action={self.action!r}, "
            f"response={self.response!r}, duration={self.duration:.3f})"
        )


class HttpReply:
    """What an action asked of its HTTP response (see :meth:`ActionData.set_status` and the
    methods next to it); the web server applies it."""

    __slots__ = ("download_name", "file", "file_type", "headers", "status")

    def __init__(self) -> None:
        self.status: int | None = None
        self.headers: list[tuple[str, str]] = []
        self.file: str | None = None
        self.file_type: str | None = None
        self.download_name: str | None = None


def _header_text(value: Any, what: str) -> str:
    text = str(value)
    if "\r" in text or "\n" in text or "\x00" in text:
        raise ActionError(f"{what} {text[:40]!r} contains a line break or NUL", 500)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise ActionError(f"{what} {text[:40]!r} is not latin-1 (HTTP headers are)", 500) from None
    return text


class ActionData(ActionResult):
    """What middleware and ``run`` see for one request.

    ``params`` (pre-processors: the params as received; from input checking on:
    only declared inputs plus ``action`` and ``apiVersion``), ``connection``,
    ``response`` (the dict that becomes the response), ``action`` (the name),
    ``action_template`` (the :class:`Action` instance), ``to_process`` (a
    pre-processor may set it False to skip the action), ``session`` (the
    connection's session dict: it lives as long as a WebSocket, one request over
    HTTP), ``api`` (the connection's api).

    Over HTTP an action may also shape its response: :meth:`set_status`,
    :meth:`set_header`, :meth:`redirect` and :meth:`send_file`. Over any other
    connection type these raise :class:`ActionError` (a WebSocket reply has no
    status line, headers or file body).
    """

    __slots__ = ("_http", "_released", "action_template", "connection", "to_process")

    params: dict[str, Any]
    action: str
    _released: bool
    _http: HttpReply

    def __init__(self, connection: Connection, action_template: Action, action: str, params: dict[str, Any]) -> None:
        self.connection = connection
        self.action_template = action_template
        self.action = action
        self.params = params
        self.response = {}
        self.status = 200
        self.to_process = True

    @property
    def session(self) -> dict[str, Any]:
        return self.connection.session

    @property
    def api(self) -> Any:
        return getattr(self.connection, "api", None)

    @property
    def http(self) -> HttpReply | None:
        """What the action asked of its HTTP response, or None (nothing asked)."""
        try:
            return self._http
        except AttributeError:
            return None

    def _reply(self, what: str) -> HttpReply:
        kind = getattr(self.connection, "type", None)
        if kind != "web":
            raise ActionError(f"{what} works over HTTP only (this request came over {kind})", 400)
        try:
            return self._http
        except AttributeError:
            self._http = HttpReply()
            return self._http

    def set_status(self, status: int) -> None:
        """The HTTP status of a successful response (an error keeps the error's status)."""
        reply = self._reply("set_status()")
        if not isinstance(status, int) or isinstance(status, bool) or not 200 <= status <= 599:
            raise ActionError(f"set_status(): {status!r} is not an HTTP status from 200 to 599", 500)
        reply.status = status

    def set_header(self, name: str, value: Any) -> None:
        """Add a response header (a repeated name, e.g. ``Set-Cookie``, adds another line)."""
        reply = self._reply("set_header()")
        name = _header_text(name, "header name")
        if not name or any(c in name for c in ' :\t"(),/;<=>?@[]{}'):
            raise ActionError(f"header name {name!r} is not a valid HTTP token", 500)
        reply.headers.append((name, _header_text(value, f"header {name}:")))

    def redirect(self, location: str, status: int = 302) -> None:
        """Answer with ``status`` (301, 302, 303, 307 or 308) and ``Location``."""
        reply = self._reply("redirect()")
        if status not in (301, 302, 303, 307, 308):
            raise ActionError(f"redirect(): {status!r} is not a redirect status", 500)
        reply.status = status
        reply.headers.append(("Location", _header_text(location, "redirect location")))

    def send_file(self, path: Any, *, content_type: str | None = None, download_name: str | None = None) -> None:
        """Answer with the file at ``path`` instead of JSON: absolute, or relative to the
        project's ``public/`` folder (where it must then stay). The file is streamed, with the
        static server's ETag, Last-Modified, conditional requests and byte ranges.
        ``download_name`` adds ``Content-Disposition: attachment``."""
        reply = self._reply("send_file()")
        reply.file = str(path)
        reply.file_type = None if content_type is None else _header_text(content_type, "content type")
        reply.download_name = download_name

    def __repr__(self) -> str:
        return f"<ActionData {self.action!r} status={self.status}>"
