"""The blocking bridge onto the I/O loop thread: ``IOLoop.run``, ``IOLoop.call`` and the hand-off their callers block
on."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable

import pytest

from akool_lab.errors import StreamError, TimeoutError
from akool_lab.live._loop import Handoff, io_loop


def test_run_returns_the_coroutines_value_computed_on_the_io_thread() -> None:
    async def where() -> str:
        await asyncio.sleep(0)
        return threading.current_thread().name

    assert io_loop().run(where(), 5, "where") == io_loop().thread.name


def test_run_raises_the_coroutines_own_error_as_it_is() -> None:
    async def fails() -> None:
        raise TimeoutError("the ack for set-params", 1.5)

    with pytest.raises(TimeoutError, match="the ack for set-params") as caught:
        io_loop().run(fails(), 5, "outer call")
    assert "outer call" not in str(caught.value)


def test_run_times_out_naming_what_it_waited_for_and_cancels_the_work() -> None:
    cancelled = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(60)
        except asyncio.CancelledError:
            cancelled.set()
            raise

    with pytest.raises(TimeoutError, match="waiting for nothing"):
        io_loop().run(forever(), 0.05, "waiting for nothing")
    assert cancelled.wait(5)


def test_call_hands_the_outcome_over_as_soon_as_the_work_sets_it() -> None:
    finish = threading.Event()
    returned = threading.Event()

    def start(handoff: Handoff) -> None:
        async def work() -> None:
            handoff.set_result("already known")
            await asyncio.get_running_loop().run_in_executor(None, finish.wait, 5)
            returned.set()

        io_loop().loop.create_task(work())

    try:
        assert io_loop().call(start, 5, "early") == "already known"
        assert not returned.is_set()  # the caller had its value while the work was still running
    finally:
        finish.set()
    assert returned.wait(5)


def test_call_runs_start_on_the_io_thread_and_hands_its_error_over() -> None:
    seen: list[str] = []

    def start(handoff: Handoff) -> None:
        seen.append(threading.current_thread().name)
        raise TimeoutError("the ack for set-params", 1.5)

    with pytest.raises(TimeoutError, match="the ack for set-params"):
        io_loop().call(start, 5, "outer call")
    assert seen == [io_loop().thread.name]


def test_call_stops_the_work_on_the_io_thread_when_the_caller_stops_waiting() -> None:
    stopped: list[str] = []
    done = threading.Event()

    def start(handoff: Handoff) -> Callable[[], None]:
        def stop() -> None:
            stopped.append(threading.current_thread().name)
            done.set()

        return stop

    with pytest.raises(TimeoutError, match="waiting for nothing"):
        io_loop().call(start, 0.05, "waiting for nothing")
    assert done.wait(5) and stopped == [io_loop().thread.name]


def test_a_blocking_call_from_the_io_thread_is_refused_instead_of_deadlocking() -> None:
    async def nested() -> None:
        async def inner() -> None:
            return None

        io_loop().run(inner(), 1, "nested")

    with pytest.raises(StreamError, match="blocking call was made on the akool_lab I/O thread"):
        io_loop().run(nested(), 5, "outer")


def test_a_handoff_takes_one_outcome_and_ignores_later_ones() -> None:
    handoff = Handoff()
    assert not handoff.done() and not handoff.wait(0)
    assert handoff.set_result(1)
    assert not handoff.set_result(2) and not handoff.set_exception(ValueError("late"))
    assert handoff.done() and handoff.wait(0) and handoff.result() == 1

    failed = Handoff()
    failed.set_exception(ValueError("bad"))
    assert failed.wait(None)
    with pytest.raises(ValueError, match="bad"):
        failed.result()
