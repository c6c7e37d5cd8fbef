"""Middleware: hooks around actions, connections and chat.

Each kind is a class with a ``name``, a ``priority`` (lower runs first) and hook methods.
Give the hooks as arguments or define them as methods of a subclass::

    from hero_fast.middleware import ActionMiddleware, ChatMiddleware, ConnectionMiddleware

    def require_login(data):
        if "user" not in data.connection.session:
            raise ActionError("log in first", 401)

    auth = ActionMiddleware("auth", pre_processor=require_login)

    class Audit(ConnectionMiddleware):
        name = "audit"

        def destroy(self, connection):
            print("gone:", connection.id)

A project declares middleware in its ``middleware/`` folder (config
``general.paths.middleware``): every instance of these classes at module level, and every
subclass with a ``name`` defined there, is registered at boot. Hooks may be sync or async.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from hero_fast.actions.action import ActionData
    from hero_fast.connections.connection import Connection

__all__ = ["ActionMiddleware", "ChatMiddleware", "ConnectionMiddleware", "Middleware"]


class Middleware:
    """The common shape: ``name``, ``priority`` and the hook methods of the kind
    (``HOOKS``); a hook left as None is skipped."""

    HOOKS: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = "middleware"
    name: str = ""
    priority: int = 100

    def __init__(self, name: str | None = None, priority: int | None = None, **hooks: Any) -> None:
        unknown = sorted(set(hooks) - set(self.HOOKS))
        if unknown:
            raise TypeError(f"{type(self).__name__}() got unexpected argument(s): {', '.join(unknown)}")
        if name is not None:
            self.name = name
        if priority is not None:
            self.priority = priority
        for hook, fn in hooks.items():
            if fn is not None:
                setattr(self, hook, fn)
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"a {self.KIND} needs a non-empty name")
        if not isinstance(self.priority, (int, float)) or isinstance(self.priority, bool):
            raise TypeError(f"{self.KIND} {self.name!r}: priority must be a number")
        for hook in self.HOOKS:
            fn = getattr(self, hook)
            if fn is not None and not callable(fn):
                raise TypeError(f"{self.KIND} {self.name!r}: {hook} must be callable")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} priority={self.priority}>"


class ActionMiddleware(Middleware):
    """Runs around actions. ``pre_processor(data)`` before inputs are checked and the action
    runs (it sees the params as received and may change them, set ``data.to_process = False``
    to skip the action, or raise to reject); ``post_processor(data)`` after a successful run
    (it may change ``data.response`` or raise). ``global_=True`` (or ``global=True``) applies
    it to every action; otherwise actions opt in by listing its name in ``middleware``."""

    HOOKS = ("pre_processor", "post_processor")
    KIND = "action middleware"
    global_: bool = False
    pre_processor: Callable[[ActionData], Any] | None = None
    post_processor: Callable[[ActionData], Any] | None = None

    def __init__(
        self,
        name: str | None = None,
        priority: int | None = None,
        global_: bool | None = None,
        **kwargs: Any,
    ) -> None:
        if "global" in kwargs:
            g = kwargs.pop("global")
            if global_ is not None and bool(global_) != bool(g):
                raise TypeError("give either global_ or global, not both")
            global_ = g
        if global_ is not None:
            self.global_ = bool(global_)
        super().__init__(name, priority, **kwargs)

    def __repr__(self) -> str:
        return f"<ActionMiddleware {self.name!r} priority={self.priority}{' global' if self.global_ else ''}>"


class ConnectionMiddleware(Middleware):
    """Runs when a connection is created or destroyed: ``create(connection)``,
    ``destroy(connection)``. An error in one is logged, never fatal to the connection or the
    server; a WebSocket's ``destroy`` sees ``connection.close_code``."""

    HOOKS = ("create", "destroy")
    KIND = "connection middleware"
    create: Callable[[Connection], Any] | None = None
    destroy: Callable[[Connection], Any] | None = None


class ChatMiddleware(Middleware):
    """Hooks around chat: ``join(connection, room)`` and ``leave(connection, room)`` may raise
    to refuse (``ChatError`` for a message the client sees); ``say(connection, room,
    payload)`` gets the outgoing chat payload (``{"message", "room", "from", "context",
    "sentAt"}``) and may return a replacement dict, return ``None`` to keep it, or raise to
    refuse it. Say middleware runs once per message, not once per receiver."""

    HOOKS = ("join", "leave", "say")
    KIND = "chat middleware"
    join: Callable[..., Any] | None = None
    leave: Callable[..., Any] | None = None
    say: Callable[..., Any] | None = None
