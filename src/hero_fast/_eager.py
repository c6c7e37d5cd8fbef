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

Engines. ``coro.send(None)`` reports completion by raising ``StopIteration``,
and catching that in Python costs about as much as the rest of a trivial
action. So native coroutines are driven by small reusable generators
("engines") that do ``yield from coro`` — CPython delegates in C, and a
coroutine that returns hands its value over without any exception — and then
yield ``(DONE, value)``. ``engine.send(coro)`` therefore returns either that
tuple or, when the coroutine suspended, what it yielded; that engine is then
dedicated to the coroutine (it becomes the Task's coroutine, through
:class:`Resume`). Idle engines wait in :data:`ENGINES`, a free list: popping
and appending are atomic, so nested use (an action running another action
in-process) and threads each get their own engine. An engine whose coroutine
raised is finished and simply dropped. Use :func:`start` (or
:func:`run_eager`); hot paths may inline it (see ``ActionRegistry.process``).

On Python 3.12 and later, when a loop is running, :func:`start_task` uses the
loop's own eager Tasks instead (``asyncio.Task(coro, eager_start=True)``): the
Task object is made but never scheduled unless the coroutine suspends, and the
eager part then runs as a real Task — ``asyncio.current_task()`` is set, so
``asyncio.timeout()`` and ``asyncio.wait_for()`` (which needs a Task since
3.12) work before the first ``await``, and the coroutine gets a copy of the
context. On 3.10 and 3.11 the engines run it: there, code before an action's
first suspension runs outside any Task and in the caller's ``contextvars``
context, so ``asyncio.timeout()`` (3.11) must come after an ``await`` or be
replaced by ``asyncio.wait_for()``.
"""

from __future__ import annotations

import inspect
import sys
from asyncio import CancelledError, Task
from asyncio.events import _get_running_loop
from collections.abc import Awaitable, Coroutine, Generator
from types import CoroutineType, TracebackType, coroutine
from typing import Any, TypeVar

__all__ = [
    "DONE",
    "EAGER_TASKS",
    "ENGINES",
    "EngineResume",
    "Resume",
    "new_engine",
    "resume",
    "run_eager",
    "start",
    "start_task",
]

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

    def throw(
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
        return self

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


DONE: Any = object()
"""First item of the tuple the engine yields when a coroutine completed."""


class EngineResume(Resume):
    """A suspended engine generator: like :class:`Resume`, but the engine's
    final ``(DONE, value)`` becomes the coroutine's return value."""

    __slots__ = ()

    def send(self, value: Any) -> Any:
        r = Resume.send(self, value)
        if r.__class__ is tuple and len(r) == 2 and r[0] is DONE:
            self._coro.close()
            raise StopIteration(r[1])
        return r

    def throw(
        self,
        typ: type[BaseException] | BaseException,
        val: BaseException | object = None,
        tb: TracebackType | None = None,
    ) -> Any:
        r = Resume.throw(self, typ, val, tb)
        if r.__class__ is tuple and len(r) == 2 and r[0] is DONE:
            self._coro.close()
            raise StopIteration(r[1])
        return r


@coroutine
def _engine_gen() -> Generator[Any, Any, Any]:
    coro = yield
    while True:
        coro = yield (DONE, (yield from coro))


def new_engine() -> Any:
    """A fresh engine, ready for ``engine.send(coro)``."""
    gen = _engine_gen()
    gen.send(None)
    return gen


ENGINES: list[Any] = []
"""Idle engines (a free list; it holds at most as many as were ever busy at
once: the nesting depth times the threads)."""

_pop = ENGINES.pop
_push = ENGINES.append


#: Python >= 3.12: eager Tasks give the eager part a current Task (see above).
EAGER_TASKS = sys.version_info >= (3, 12)


def start_task(coro: Coroutine[Any, Any, Any]) -> Any:
    """Like :func:`start`, but on Python >= 3.12 with a running loop the
    coroutine runs as an eager Task: ``(DONE, value)`` when it finished, else
    that Task (already running; await it). Used for user code (actions,
    middleware), which may need ``asyncio.current_task()``."""
    if EAGER_TASKS:
        loop = _get_running_loop()
        if loop is not None:
            task = Task(coro, loop=loop, eager_start=True)  # type: ignore[call-arg]
            if task.done():
                return (DONE, task.result())
            return task
    return start(coro)


def start(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a native coroutine until it finishes or suspends: ``(DONE, value)``
    when it finished, else a :class:`Resume` to continue it. Exceptions raised
    before it suspended propagate."""
    try:
        engine = _pop()
    except IndexError:
        engine = new_engine()
    r = engine.send(coro)
    if r.__class__ is tuple and r and r[0] is DONE:
        _push(engine)
        return r
    return EngineResume(engine, r)


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
        coro: Coroutine[Any, Any, Any] = aw
    elif inspect.isawaitable(aw):
        coro = _await(aw)
    else:
        raise TypeError(f"run_eager() needs an awaitable, got {type(aw).__name__}")
    r = start(coro)
    if r.__class__ is tuple:
        return True, r[1]
    return False, r
