"""The one background I/O event-loop thread of the process.

All data-channel I/O runs here, so that frames keep being received and stamped while a notebook cell blocks, while
the kernel is busy and between cells. Async callers await its futures (``asyncio.wrap_future``); sync callers
block on them with a timeout. The thread starts on first use and stops cleanly at interpreter exit: pending tasks
are cancelled and awaited, async generators closed, so no "Task was destroyed" warning appears and the
interpreter never hangs on it (it is a daemon thread, joined with a bound).

An exception that escapes a background task is never swallowed: the loop's exception handler logs it, keeps it
in :attr:`IOLoop.errors`, and hands it to every registered error listener (live sessions re-raise it to the user).
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from akool_lab.errors import StreamError, TimeoutError

__all__ = ["Handoff", "IOLoop", "io_loop", "settle"]

T = TypeVar("T")
_log = logging.getLogger("akool_lab.live")


class Handoff:
    """What a thread blocked in :meth:`IOLoop.run` waits on: one outcome (a value or an exception), set once.

    The waiting thread blocks on a plain lock that the setter releases: one wake-up of the waiter and nothing else,
    where a ``concurrent.futures.Future`` takes a condition variable and its Python-level bookkeeping on both
    threads (measured: the difference is about 10 µs of a blocking ``say()``). Set only from the I/O thread.
    """

    __slots__ = ("_done", "_error", "_lock", "_value")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._lock.acquire()  # released once, by the outcome
        self._done = False
        self._value: Any = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        """Whether the outcome is set."""
        return self._done

    def set_result(self, value: Any) -> bool:
        """Hand ``value`` over; returns False (and changes nothing) when the outcome was already set."""
        if self._done:
            return False
        self._value = value
        self._done = True
        self._lock.release()
        return True

    def set_exception(self, error: BaseException) -> bool:
        """Hand ``error`` over (the waiter raises it); returns False when the outcome was already set."""
        if self._done:
            return False
        self._error = error
        self._done = True
        self._lock.release()
        return True

    def wait(self, timeout: float | None) -> bool:
        """Block until the outcome is set or ``timeout`` seconds pass (``None``: no limit); returns whether it is."""
        return self._lock.acquire(timeout=-1 if timeout is None else max(timeout, 0.0))

    def result(self) -> Any:
        """The value, or raise the exception (call once :meth:`wait` returned True)."""
        if self._error is not None:
            raise self._error
        return self._value


async def settle(coro: Coroutine[Any, Any, T], handoff: Handoff) -> None:
    """Await ``coro`` and hand its outcome to ``handoff`` (unless something completed it first)."""
    try:
        result = await coro
    except BaseException as exc:
        handoff.set_exception(exc)
        if not isinstance(exc, Exception):
            raise  # cancellation and interpreter exits keep propagating on the loop
    else:
        handoff.set_result(result)


class IOLoop:
    """A background thread running an asyncio event loop forever (until :meth:`shutdown`)."""

    def __init__(self, name: str = "akool-lab-io") -> None:
        self._ready = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._stopped = False
        self.errors: list[BaseException] = []
        self._error_listeners: list[Callable[[BaseException], None]] = []
        self._thread.start()
        if not self._ready.wait(10):  # pragma: no cover - a machine this slow has other problems
            raise TimeoutError("starting the I/O loop thread", 10)

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        loop.set_exception_handler(self._on_exception)
        asyncio.set_event_loop(loop)
        self._loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            try:
                self._drain(loop)
            finally:
                loop.close()

    @staticmethod
    def _drain(loop: asyncio.AbstractEventLoop) -> None:
        tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in tasks:
            task.cancel()
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())

    def _on_exception(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        error = exc if isinstance(exc, BaseException) else StreamError(str(context.get("message")))
        self.errors.append(error)
        _log.error("unhandled error in the akool_lab I/O loop: %s", context.get("message"), exc_info=exc)
        for listener in list(self._error_listeners):
            try:
                listener(error)
            except Exception:  # a listener failing must not hide the original error, which is logged above
                _log.exception("error listener failed")

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        """The event loop (running on the I/O thread)."""
        assert self._loop is not None
        return self._loop

    @property
    def thread(self) -> threading.Thread:
        """The I/O thread."""
        return self._thread

    def in_loop_thread(self) -> bool:
        """Whether the caller runs on the I/O thread (where blocking on the loop would deadlock)."""
        return threading.current_thread() is self._thread

    def add_error_listener(self, listener: Callable[[BaseException], None]) -> Callable[[], None]:
        """Call ``listener(exc)`` for every exception that escapes a background task; returns an unsubscriber."""
        self._error_listeners.append(listener)

        def remove() -> None:
            if listener in self._error_listeners:
                self._error_listeners.remove(listener)

        return remove

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Schedule ``coro`` on the I/O loop; returns a thread-safe future."""
        if self._stopped:
            coro.close()
            raise StreamError("the akool_lab I/O loop has shut down (the interpreter is exiting)")
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str) -> T:
        """Run ``coro`` on the I/O loop and block until it finishes.

        On timeout the coroutine is cancelled and ``akool_lab.errors.TimeoutError`` names ``what``. Calling this
        from the I/O thread itself would deadlock, so it raises instead.
        """
        if self.in_loop_thread() or self._stopped:
            coro.close()  # refused below: never started, so no "never awaited" warning
        loop = self._loop

        def start(handoff: Handoff) -> Callable[[], object]:
            assert loop is not None
            return loop.create_task(settle(coro, handoff)).cancel

        result: T = self.call(start, timeout, what)
        return result

    def call(self, start: Callable[[Handoff], Callable[[], object] | None], timeout: float | None, what: str) -> Any:
        """Call ``start(handoff)`` on the I/O thread and block until the work it began completes ``handoff``.

        ``start`` runs in a plain loop callback, not in a task: work that can begin at once (a blocking ``say()``
        whose message can be sent right away) then needs no task, whose steps and completion cost the I/O thread
        time and a loop iteration after the outcome is handed over. It must see to it that ``handoff`` is completed, with a value or an exception (an exception
        it raises itself is handed over), and return a function that stops the work (called on the I/O thread
        when the caller stops waiting: timeout, Ctrl+C), or ``None``.

        On timeout ``akool_lab.errors.TimeoutError`` names ``what``. Calling this from the I/O thread itself would
        deadlock, so it raises instead.
        """
        if self.in_loop_thread():
            raise StreamError(
                f"{what}: a blocking call was made on the akool_lab I/O thread (for example from an event "
                "callback); use the async API there (await stream.<method>(...)) instead"
            )
        if self._stopped:
            raise StreamError("the akool_lab I/O loop has shut down (the interpreter is exiting)")
        # The work hands its outcome to this thread itself, through a lock that this thread blocks on (Handoff):
        # one wake-up, instead of run_coroutine_threadsafe's done-callback chain and condition variable.
        handoff = Handoff()
        stops: list[Callable[[], object]] = []

        def begin() -> None:
            try:
                stop = start(handoff)
            except Exception as exc:
                handoff.set_exception(exc)
                return
            if stop is not None:
                stops.append(stop)

        def stop() -> None:
            for fn in stops:
                fn()

        loop = self.loop
        # Straight into the loop's ready queue: the I/O thread runs ``begin`` in the iteration that this call wakes it
        # for. (Deferring it one more iteration, so that bytes already received are handled first, cost about 4% of
        # a blocking say() round trip, measured with benchmarks/bench_overhead.py. Work that must see those bytes
        # first gets it anyway: ``start`` hands it to a task, whose first step runs an iteration later. See
        # AvatarStream.start_blocking for which work does.)
        loop.call_soon_threadsafe(begin)
        try:
            done = handoff.wait(timeout)
        except KeyboardInterrupt:
            loop.call_soon_threadsafe(stop)  # Ctrl+C / kernel interrupt: stop the work there too
            raise
        if not done:
            loop.call_soon_threadsafe(stop)  # after begin(): the loop keeps the order
            raise TimeoutError(what, timeout if timeout is not None else 0.0)
        # The work's own error (an akool_lab TimeoutError says more precisely what it waited for) as it is.
        return handoff.result()

    def call_soon(self, fn: Callable[..., object], *args: object) -> None:
        """Call ``fn(*args)`` on the I/O thread soon (thread-safe)."""
        self.loop.call_soon_threadsafe(fn, *args)

    async def wrap(self, coro: Coroutine[Any, Any, T]) -> T:
        """Await ``coro`` from another event loop (a notebook's, an async program's) while it runs on the I/O loop."""
        if asyncio.get_running_loop() is self._loop:
            return await coro
        return await asyncio.wrap_future(self.submit(coro))

    def shutdown(self, timeout: float = 5.0) -> None:
        """Cancel every task, close async generators, stop the loop and join the thread (bounded by ``timeout``)."""
        if self._stopped:
            return
        self._stopped = True
        loop = self._loop
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(loop.stop)
        if not self.in_loop_thread():
            self._thread.join(timeout)


_lock = threading.Lock()
_instance: IOLoop | None = None


def io_loop() -> IOLoop:
    """The process's I/O loop, started on first use."""
    global _instance
    with _lock:
        if _instance is None or _instance._stopped:
            _instance = IOLoop()
            atexit.register(_instance.shutdown)
        return _instance
