"""Eager execution of coroutines: run now, schedule only what really waits.

Creating an :class:`asyncio.Task` per action costs a Task object, a
``call_soon`` and a loop iteration before the action even starts. Most actions
never wait for anything, so hero-fast runs the coroutine right away with
``coro.send(None)``:

* if it raises ``StopIteration`` the coroutine finished without suspending and
  its return value is available synchronously;
* if it yields, it is blocked on something (normally an asyncio future, or
  ``None`` for a bare ``asyncio.sleep(0)``). :func:`run_eager` then hands back a
  :class:`Resume` object — a coroutine that first re-yields that same future (so
  the Task driving it waits on exactly what the original coroutine waits on) and
  afterwards forwards every ``send``/``throw``/``close`` to the original
  coroutine, returning its result. Wrap it in a Task (or ``await`` it).

Cancellation works as for a Task that had been running the coroutine from the
start: a ``CancelledError`` thrown into the Task reaches the coroutine at its
``await``; if the Task is cancelled before it first runs, the future the
coroutine is blocked on is cancelled too and the coroutine receives the
``CancelledError``.

Python 3.12's ``asyncio.eager_task_factory`` does something similar for whole
tasks; this helper works on 3.10+ and does not create a Task at all on the fast
path.
"""

from __future__ import annotations

import inspect
from asyncio import CancelledError
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, TracebackType
from typing import Any, TypeVar

__all__ = ["Resume", "resume", "run_eager"]

T = TypeVar("T")

_NOTHING: Any = object()


class Resume(Coroutine[Any, Any, Any]):
    """A started, suspended coroutine packaged so that a Task (or an ``await``)
    can continue it. ``first`` is what the coroutine yielded when it suspended.
    """

    __slots__ = ("_coro", "_first")

    def __init__(self, coro: Coroutine[Any, Any, Any] | Generator[Any, Any, Any], first: Any) -> None:
        self._coro = coro
        self._first = first

    def send(self, value: Any) -> Any:
        first = self._first
        if first is not _NOTHING:
            # The first step re-yields the future the coroutine is blocked on.
            self._first = _NOTHING
            if value is not None:
                raise TypeError("can't send non-None value to a just-resumed coroutine")
            return first
        return self._coro.send(value)

    def throw(  # type: ignore[override]
        self,
        typ: type[BaseException] | BaseException,
        val: BaseException | object = None,
        tb: TracebackType | None = None,
    ) -> Any:
        # Normalise the (deprecated) three-argument form to one exception object.
        if isinstance(typ, BaseException):
            exc = typ
        elif isinstance(val, BaseException):
            exc = val
        elif val is None:
            exc = typ()
        else:
            exc = typ(val)
        if tb is not None:
            exc = exc.with_traceback(tb)
        first = self._first
        if first is not _NOTHING:
            # Thrown into before the first step (a Task cancelled before it ran):
            # behave like a Task that was waiting on ``first`` all along.
            self._first = _NOTHING
            if isinstance(exc, CancelledError):
                cancel = getattr(first, "cancel", None)
                if cancel is not None:
                    cancel()
        return self._coro.throw(exc)

    def close(self) -> None:
        self._first = _NOTHING
        self._coro.close()

    def __await__(self) -> Generator[Any, Any, Any]:
        return self  # type: ignore[return-value]

    def __iter__(self) -> Resume:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    @property
    def coroutine(self) -> Coroutine[Any, Any, Any] | Generator[Any, Any, Any]:
        """The original coroutine (for introspection)."""
        return self._coro

    def __repr__(self) -> str:
        return f"<Resume {self._coro!r}>"


def resume(coro: Coroutine[Any, Any, Any], first: Any) -> Resume:
    """Package ``coro``, which just yielded ``first``, for a Task to continue."""
    return Resume(coro, first)


async def _await(aw: Awaitable[T]) -> T:
    return await aw


def run_eager(aw: Awaitable[T]) -> tuple[bool, Any]:
    """Run ``aw`` until it finishes or first suspends.

    Returns ``(True, value)`` when it finished without suspending, or
    ``(False, awaitable)`` when it suspended: ``awaitable`` is a coroutine that
    continues it (pass it to ``loop.create_task`` or ``await`` it); its result
    is the original's result. An exception raised before the first suspension
    propagates from this call. ``aw`` may be a coroutine or any awaitable
    (futures, objects with ``__await__``).
    """
    if aw.__class__ is CoroutineType:
        coro: Coroutine[Any, Any, Any] = aw  # type: ignore[assignment]
    elif inspect.isawaitable(aw):
        coro = _await(aw)
    else:
        raise TypeError(f"run_eager() needs an awaitable, got {type(aw).__name__}")
    try:
        first = coro.send(None)
    except StopIteration as stop:
        return True, stop.value
    return False, Resume(coro, first)
