"""The pieces users write: actions, their inputs, action middleware; and what
the processor hands back (:class:`ActionResult`) and passes around
(:class:`ActionData`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hero_fast.connections.connection import Connection

__all__ = [
    "MISSING",
    "Action",
    "ActionData",
    "ActionError",
    "ActionMiddleware",
    "ActionResult",
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
    ``data.response`` directly). Raise :class:`ActionError` for an error with an
    HTTP status; any other exception is a 500 whose message is ``str(exc)``.
    One instance serves every request.
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


class ActionMiddleware:
    """Runs around actions. ``pre_processor(data)`` before inputs are checked
    and the action runs (it sees the params as received and may change them,
    set ``data.to_process = False`` to skip the action, or raise to reject);
    ``post_processor(data)`` after a successful run (it may change
    ``data.response`` or raise). Both may be sync or async. Lower ``priority``
    runs first. ``global_=True`` (or ``global=True``) applies it to every
    action; otherwise actions opt in by listing its name in ``middleware``.

    Either pass the hooks as arguments or subclass and define them as methods.
    """

    name: str = ""
    priority: int = 100
    global_: bool = False
    pre_processor: Callable[[ActionData], Any] | None = None
    post_processor: Callable[[ActionData], Any] | None = None

    def __init__(
        self,
        name: str | None = None,
        priority: int | None = None,
        global_: bool | None = None,
        pre_processor: Callable[[ActionData], Any] | None = None,
        post_processor: Callable[[ActionData], Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "global" in kwargs:
            g = kwargs.pop("global")
            if global_ is not None and bool(global_) != bool(g):
                raise TypeError("give either global_ or global, not both")
            global_ = g
        if kwargs:
            raise TypeError(f"ActionMiddleware() got unexpected argument(s): {', '.join(sorted(kwargs))}")
        if name is not None:
            self.name = name
        if priority is not None:
            self.priority = priority
        if global_ is not None:
            self.global_ = bool(global_)
        if pre_processor is not None:
            self.pre_processor = pre_processor
        if post_processor is not None:
            self.post_processor = post_processor
        if not isinstance(self.name, str) or not self.name:
            raise TypeError("an action middleware needs a non-empty name")

    def __repr__(self) -> str:
        return f"<ActionMiddleware {self.name!r} priority={self.priority}{' global' if self.global_ else ''}>"


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


class ActionData(ActionResult):
    """What middleware and ``run`` see for one request.

    ``params`` (pre-processors: the params as received; from input checking on:
    only declared inputs plus ``action`` and ``apiVersion``), ``connection``,
    ``response`` (the dict that becomes the response), ``action`` (the name),
    ``action_template`` (the :class:`Action` instance), ``to_process`` (a
    pre-processor may set it False to skip the action), ``session`` (a dict
    for middleware to pass things along), ``api`` (the connection's api).
    """

    __slots__ = ("_released", "_session", "action_template", "connection", "to_process")

    params: dict[str, Any]
    action: str
    _released: bool
    _session: Any

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
        try:
            return self._session  # type: ignore[no-any-return]
        except AttributeError:
            self._session = {}
            return self._session  # type: ignore[no-any-return]

    @session.setter
    def session(self, value: Any) -> None:
        self._session = value

    @property
    def api(self) -> Any:
        return getattr(self.connection, "api", None)

    def __repr__(self) -> str:
        return f"<ActionData {self.action!r} status={self.status}>"
