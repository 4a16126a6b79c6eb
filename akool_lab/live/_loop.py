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
import contextvars
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

from akool_lab.errors import StreamError, TimeoutError

__all__ = ["HANDOFF", "IOLoop", "io_loop"]

T = TypeVar("T")
_log = logging.getLogger("akool_lab.live")

#: Inside a coroutine run by ``IOLoop.run(..., early=True)``: the thread-safe future that its caller blocks on. The
#: coroutine may complete it itself (with its own return value, never another) as soon as that value is known, one
#: loop iteration before returning; it must take it out (``HANDOFF.set(None)``) so that nothing it starts sees it.
HANDOFF: contextvars.ContextVar[concurrent.futures.Future[Any] | None] = contextvars.ContextVar(
    "akool_lab_handoff", default=None
)


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

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str, *, early: bool = False) -> T:
        """Run ``coro`` on the I/O loop and block until it finishes.

        On timeout the coroutine is cancelled and ``akool_lab.errors.TimeoutError`` names ``what``. Calling this
        from the I/O thread itself would deadlock, so it raises instead. With ``early``, ``coro`` finds the future
        its caller waits on in :data:`HANDOFF` and may complete it before it returns.
        """
        if self.in_loop_thread():
            coro.close()
            raise StreamError(
                f"{what}: a blocking call was made on the akool_lab I/O thread (for example from an event "
                "callback); use the async API there (await stream.<method>(...)) instead"
            )
        if self._stopped:
            coro.close()
            raise StreamError("the akool_lab I/O loop has shut down (the interpreter is exiting)")
        # The coroutine hands its outcome to this thread itself, one loop iteration sooner than
        # run_coroutine_threadsafe's done-callback chain (measured: 99 µs instead of 133 µs per call): this is the
        # path of every blocking say()/ask().
        future: concurrent.futures.Future[T] = concurrent.futures.Future()
        tasks: list[asyncio.Task[None]] = []

        async def runner() -> None:
            try:
                result = await coro
            except BaseException as exc:
                if not future.done():
                    future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise  # cancellation and interpreter exits keep propagating on the loop
            else:
                if not future.done():
                    future.set_result(result)

        def cancel() -> None:
            for task in tasks:
                task.cancel()

        if early:
            context = contextvars.copy_context()
            context.run(HANDOFF.set, future)
            # The task copies the context of the callback that creates it (create_task(context=) is 3.11+).
            self.loop.call_soon_threadsafe(lambda: tasks.append(self.loop.create_task(runner())), context=context)
        else:
            self.loop.call_soon_threadsafe(lambda: tasks.append(self.loop.create_task(runner())))
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            # Since Python 3.11 this is the builtin TimeoutError, which the coroutine's own (more precise)
            # akool_lab TimeoutError also derives from: re-raise that one as it is.
            if future.done() and not future.cancelled():
                raise
            self.loop.call_soon_threadsafe(cancel)  # after the task's creation: the loop keeps the order
            raise TimeoutError(what, timeout if timeout is not None else 0.0) from None
        except KeyboardInterrupt:
            self.loop.call_soon_threadsafe(cancel)  # Ctrl+C / kernel interrupt: stop the work on the loop too
            raise

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
