"""hero_fast._eager.run_eager: run now, Task only for what suspends."""

from __future__ import annotations

import asyncio
import collections.abc
import types
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hero_fast._eager import Resume, run_eager


async def returns(value: Any) -> Any:
    return value


async def nested_no_wait() -> int:
    # awaits other coroutines that don't suspend: still no suspension
    a = await returns(1)
    b = await returns(2)
    return a + b


def test_non_suspending_coroutine_completes_synchronously() -> None:
    done, value = run_eager(returns({"x": 1}))
    assert done is True
    assert value == {"x": 1}
    assert run_eager(nested_no_wait()) == (True, 3)
    assert run_eager(returns(None)) == (True, None)


def test_exception_before_suspension_propagates() -> None:
    async def boom() -> None:
        raise ValueError("nope")

    with pytest.raises(ValueError, match="nope"):
        run_eager(boom())


def test_non_awaitable_is_refused() -> None:
    with pytest.raises(TypeError):
        run_eager(42)  # type: ignore[arg-type]


def test_no_running_loop_needed_for_the_fast_path() -> None:
    # called outside any event loop
    assert run_eager(nested_no_wait()) == (True, 3)


async def test_suspends_on_a_future_and_the_task_waits_on_that_future() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[int] = loop.create_future()

    async def waits() -> int:
        return await fut + 1

    done, aw = run_eager(waits())
    assert done is False
    assert isinstance(aw, Resume)
    assert isinstance(aw, collections.abc.Coroutine)
    assert asyncio.iscoroutine(aw)
    task = loop.create_task(aw)
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert not task.done()
    # the Task is blocked on exactly the future the coroutine awaits
    assert task._fut_waiter is fut  # type: ignore[attr-defined]
    fut.set_result(41)
    assert await task == 42


async def test_suspending_several_times() -> None:
    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in range(3)]
    trace: list[Any] = []

    async def many() -> list[Any]:
        trace.append("start")
        await asyncio.sleep(0)  # bare yield (None)
        trace.append("after sleep0")
        for f in futs:
            trace.append(await f)
        await asyncio.sleep(0.001)
        return trace

    done, aw = run_eager(many())
    assert not done
    assert trace == ["start"]
    task = loop.create_task(aw)
    for i, f in enumerate(futs):
        for _ in range(3):
            await asyncio.sleep(0)
        assert not task.done()
        f.set_result(i)
    assert await task == ["start", "after sleep0", 0, 1, 2]


async def test_exception_after_suspension_reaches_the_task() -> None:
    async def fails_later() -> None:
        await asyncio.sleep(0)
        raise KeyError("late")

    done, aw = run_eager(fails_later())
    assert not done
    with pytest.raises(KeyError, match="late"):
        await asyncio.get_running_loop().create_task(aw)


async def test_cancellation_is_forwarded_to_the_coroutine() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []

    async def waits() -> None:
        try:
            await fut
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise
        finally:
            seen.append("finally")

    done, aw = run_eager(waits())
    assert not done
    task = loop.create_task(aw)
    await asyncio.sleep(0)  # the task is now waiting on fut
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled", "finally"]
    assert task.cancelled()
    assert fut.cancelled()  # Task.cancel() cancels what it waits on, as usual


async def test_cancelled_before_the_task_ever_ran() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()
    seen: list[str] = []

    async def waits() -> None:
        try:
            await fut
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    _, aw = run_eager(waits())
    task = loop.create_task(aw)
    task.cancel()  # before its first step
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["cancelled"]
    assert fut.cancelled()


async def test_coroutine_may_swallow_cancellation_and_return() -> None:
    loop = asyncio.get_running_loop()
    fut: asyncio.Future[None] = loop.create_future()

    async def stubborn() -> str:
        try:
            await fut
        except asyncio.CancelledError:
            return "cleaned up"
        return "normal"

    _, aw = run_eager(stubborn())
    task = loop.create_task(aw)
    await asyncio.sleep(0)
    task.cancel()
    assert await task == "cleaned up"


async def test_cancellation_while_suspended_on_sleep() -> None:
    seen: list[str] = []

    async def sleeper() -> None:
        try:
            await asyncio.sleep(10)
        finally:
            seen.append("finally")

    _, aw = run_eager(sleeper())
    task = asyncio.get_running_loop().create_task(aw)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["finally"]


async def test_resume_can_be_awaited_directly() -> None:
    async def later(x: int) -> int:
        await asyncio.sleep(0)
        await asyncio.sleep(0.001)
        return x * 2

    done, aw = run_eager(later(21))
    assert not done
    assert await aw == 42


async def test_wait_for_timeout_cancels_the_coroutine() -> None:
    seen: list[str] = []

    async def slow() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    _, aw = run_eager(slow())
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(aw, 0.01)
    assert seen == ["cancelled"]


def test_close_closes_the_coroutine() -> None:
    seen: list[str] = []

    @types.coroutine
    def suspend() -> Any:
        yield "token"

    async def waits() -> None:
        try:
            await suspend()
        finally:
            seen.append("finally")

    done, aw = run_eager(waits())
    assert not done
    aw.close()
    assert seen == ["finally"]


def test_resume_drives_like_the_original_coroutine() -> None:
    """Without an event loop: the resumer yields what the coroutine yields and
    forwards send/throw."""

    @types.coroutine
    def ask(q: str) -> Any:
        return (yield q)

    async def dialogue() -> list[Any]:
        a = await ask("first")
        b = await ask("second")
        try:
            await ask("third")
        except LookupError as exc:
            c = f"caught {exc}"
        return [a, b, c]

    done, aw = run_eager(dialogue())
    assert not done
    assert aw.send(None) == "first"  # re-yields what it was blocked on
    assert aw.send("A") == "second"
    assert aw.send("B") == "third"
    with pytest.raises(StopIteration) as stop:
        aw.throw(LookupError("x"))
    assert stop.value.value == ["A", "B", "caught x"]


def test_three_argument_throw_is_normalised() -> None:
    @types.coroutine
    def suspend() -> Any:
        yield None

    async def catcher() -> str:
        try:
            await suspend()
        except ValueError as exc:
            return f"got {exc}"
        return "no"

    _, aw = run_eager(catcher())
    aw.send(None)  # the first step re-yields the None
    with pytest.raises(StopIteration) as stop:
        aw.throw(ValueError, ValueError("boom"), None)
    assert stop.value.value == "got boom"


def test_first_send_must_be_none() -> None:
    @types.coroutine
    def suspend() -> Any:
        yield None

    async def c() -> None:
        await suspend()

    _, aw = run_eager(c())
    with pytest.raises(TypeError):
        aw.send(1)
    aw.close()


async def test_other_awaitables() -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[str] = loop.create_future()
    ready.set_result("ready")
    assert run_eager(ready) == (True, "ready")

    pending: asyncio.Future[str] = loop.create_future()
    done, aw = run_eager(pending)
    assert not done
    loop.call_soon(pending.set_result, "later")
    assert await loop.create_task(aw) == "later"

    class Custom:
        def __await__(self) -> Any:
            return returns(7).__await__()

    assert run_eager(Custom()) == (True, 7)


async def test_failed_future_raises_eagerly() -> None:
    fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    fut.set_exception(RuntimeError("failed"))
    with pytest.raises(RuntimeError, match="failed"):
        run_eager(fut)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.one_of(
            st.tuples(st.just("sleep0")),
            st.tuples(st.just("value"), st.integers()),
            st.tuples(st.just("error"), st.integers()),
            st.tuples(st.just("sync"), st.integers()),
        ),
        max_size=8,
    )
)
def test_same_outcome_as_a_plain_task(ops: list[tuple[Any, ...]]) -> None:
    """For any mix of suspensions (bare yields, futures resolved with a value or
    an exception) and non-suspending awaits, eager + Task gives what a plain Task
    gives."""

    async def script(loop: asyncio.AbstractEventLoop) -> list[Any]:
        out: list[Any] = []
        for op in ops:
            if op[0] == "sleep0":
                await asyncio.sleep(0)
                out.append("s")
            elif op[0] == "sync":
                out.append(await returns(op[1]))
            else:
                fut: asyncio.Future[int] = loop.create_future()
                if op[0] == "value":
                    loop.call_soon(fut.set_result, op[1])
                else:
                    loop.call_soon(fut.set_exception, ValueError(op[1]))
                try:
                    out.append(await fut)
                except ValueError as exc:
                    out.append(f"err{exc}")
        return out

    async def both() -> tuple[list[Any], list[Any], bool]:
        loop = asyncio.get_running_loop()
        plain = await loop.create_task(script(loop))
        done, value = run_eager(script(loop))
        eager = value if done else await loop.create_task(value)
        return plain, eager, done

    plain, eager, done = asyncio.run(both())
    assert plain == eager
    suspends = any(op[0] != "sync" for op in ops)
    assert done is (not suspends)


# ---------------------------------------------------------------- the engine


def test_engine_survives_exceptions() -> None:
    async def boom() -> None:
        raise ValueError("first")

    for _ in range(3):
        with pytest.raises(ValueError, match="first"):
            run_eager(boom())
        assert run_eager(returns(5)) == (True, 5)


def test_coroutine_returning_a_tuple_or_yielding_odd_values() -> None:
    assert run_eager(returns((1, 2))) == (True, (1, 2))
    assert run_eager(returns(())) == (True, ())

    @types.coroutine
    def odd(value: Any) -> Any:
        return (yield value)

    async def yields(value: Any) -> Any:
        return await odd(value)

    for value in ((), (1, 2), ("x",), None, 0):
        done, aw = run_eager(yields(value))
        assert done is False
        assert aw.send(None) == value
        with pytest.raises(StopIteration) as stop:
            aw.send("answer")
        assert stop.value.value == "answer"


def test_reentrant_use_from_inside_an_eager_coroutine() -> None:
    async def inner(x: int) -> int:
        return x + 1

    async def outer() -> list[Any]:
        # runs inside an engine; the nested calls take other engines from the pool
        a = run_eager(inner(1))
        b = run_eager(nested_no_wait())
        return [a, b]

    assert run_eager(outer()) == (True, [(True, 2), (True, 3)])


async def test_reentrant_suspending_and_failing_inner() -> None:
    async def inner_suspends() -> str:
        await asyncio.sleep(0.001)
        return "inner done"

    async def inner_fails() -> None:
        raise LookupError("inner")

    async def outer() -> Any:
        done, aw = run_eager(inner_suspends())
        assert not done
        with pytest.raises(LookupError):
            run_eager(inner_fails())
        return aw

    done, aw = run_eager(outer())
    assert done
    assert await asyncio.get_running_loop().create_task(aw) == "inner done"
    assert run_eager(returns(1)) == (True, 1)  # the engine is fine afterwards


async def test_many_suspended_at_once_each_get_their_own_engine() -> None:
    loop = asyncio.get_running_loop()
    futs = [loop.create_future() for _ in range(20)]

    async def waits(i: int) -> int:
        return await futs[i] * 10

    resumed = []
    for i in range(20):
        done, aw = run_eager(waits(i))
        assert not done
        resumed.append(loop.create_task(aw))
        assert run_eager(returns(i)) == (True, i)  # the fresh engine works meanwhile
    for i, f in reversed(list(enumerate(futs))):
        f.set_result(i)
    assert await asyncio.gather(*resumed) == [i * 10 for i in range(20)]


def test_threads_share_the_engine_safely() -> None:
    import threading

    errors: list[BaseException] = []

    async def work(i: int) -> int:
        for _ in range(3):
            await returns(None)
        return i

    def loop_in_thread(base: int) -> None:
        try:
            for i in range(3000):
                assert run_eager(work(base + i)) == (True, base + i)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=loop_in_thread, args=(k * 10_000,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


async def test_cancel_a_reentrant_fallback_resume() -> None:
    seen: list[str] = []

    async def inner() -> None:
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            seen.append("inner cancelled")
            raise

    async def outer() -> Any:
        return run_eager(inner())[1]

    _, aw = run_eager(outer())
    task = asyncio.get_running_loop().create_task(aw)
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["inner cancelled"]
