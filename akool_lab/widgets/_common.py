"""What every panel shares: running work off the kernel thread, readable error lines, coalesced redraws.

Threading model of the panels (DESIGN.md, "Threading and clocks"):

- A widget callback (a click, a value change) runs on the kernel thread. It never waits for I/O: it hands the work
  to :func:`background`, which runs it on the process's I/O loop (REST calls, which are blocking, go to a worker
  thread via ``asyncio.to_thread`` so that the I/O loop keeps receiving and stamping frames meanwhile).
- When the work finishes, its result (or error) is shown by a callback on the I/O thread. Setting a trait from that
  thread is safe: ipywidgets sends the change as a comm message, which ipykernel serialises on its IOPub thread.
- Redraws that events trigger (transcript, latency plot) are coalesced by :class:`Coalescer`: however many events
  arrive, the widget is updated at most ``max_hz`` times a second, on the I/O loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import html
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import ipywidgets as widgets

from akool_lab.errors import AkoolError, AkoolLabError, ValidationError
from akool_lab.live import io_loop
from akool_lab.target import describe_target as target_label

__all__ = ["PANEL_CSS", "Coalescer", "ErrorLine", "background", "describe_error", "describe_target", "in_thread"]

T = TypeVar("T")
_log = logging.getLogger("akool_lab.widgets")

#: Styles of the panels, shown once by the dashboard (a ``<style>`` in an HTML widget: no front-end build needed).
PANEL_CSS = """
<style>
.akool-chip { display:inline-block; padding:1px 10px; border-radius:10px; font-weight:600; color:#fff;
              background:#888; font-size:12px; }
.akool-chip-idle { background:#9e9e9e; } .akool-chip-creating, .akool-chip-queueing { background:#f0a020; }
.akool-chip-connecting { background:#f0a020; }
.akool-chip-live { background:#2e9d4f; } .akool-chip-ended { background:#607d8b; }
.akool-chip-failed { background:#d32f2f; } .akool-chip-closing { background:#607d8b; }
.akool-error { color:#b00020; font-size:13px; white-space:pre-wrap; }
.akool-note { color:#2e7d32; font-size:13px; }
.akool-invalid input, .akool-invalid textarea { border:2px solid #d32f2f !important; }
.akool-transcript { display:flex; flex-direction:column-reverse; overflow-y:auto; height:260px;
                    border:1px solid #ddd; border-radius:4px; padding:6px; background:#fafafa; font-size:13px; }
.akool-line { margin:2px 0; }
.akool-role { font-weight:600; margin-right:6px; }
.akool-role-you { color:#1565c0; } .akool-role-avatar { color:#2e7d32; } .akool-role-user { color:#6a1b9a; }
.akool-timing { color:#777; font-size:11px; margin-left:6px; font-family:monospace; }
.akool-table td, .akool-table th { padding:1px 8px; text-align:right; font-family:monospace; font-size:12px; }
.akool-panel-title { font-weight:700; font-size:14px; margin-bottom:4px; }
</style>
"""


def describe_target(target: Any) -> str:
    """What the numbers a panel shows are: ``"simulated · profile realistic · seed 0"``, or ``"AKool"``.

    ``target`` is an :class:`akool_lab.target.Target` (its own ``label``), anything read the way
    :func:`akool_lab.target.describe_target` reads it, or ``None``, which gives ``""`` (a panel built on a bare client
    does not know its target).

    >>> describe_target({"kind": "sim", "profile": "realistic", "seed": 0})
    'simulated · profile realistic · seed 0'
    >>> describe_target({"kind": "real"})
    'AKool'
    """
    if target is None:
        return ""
    own = getattr(target, "label", None)
    if isinstance(own, str):
        return own
    return target_label(target)


def describe_error(exc: BaseException) -> str:
    """One readable line for ``exc``: what went wrong and what to do, never a traceback.

    AKool errors carry their code, the service's message, the endpoint and a hint (their ``str`` says all of it);
    validation errors name the field and what it allows; anything else gets its type name in front.
    """
    if isinstance(exc, AkoolError | ValidationError):
        return str(exc)
    if isinstance(exc, AkoolLabError):
        return f"{type(exc).__name__}: {exc}"
    return f"unexpected {type(exc).__name__}: {exc} (details in the log)"


class ErrorLine:
    """A one-line message area of a panel: errors in red, notes in green, empty when all is well.

    Every error shown is also logged (with its traceback, in the log only), so nothing is swallowed.
    """

    def __init__(self) -> None:
        self.widget = widgets.HTML(value="").add_class("akool-error-line")
        self._lock = threading.Lock()

    @property
    def text(self) -> str:
        """The plain text shown (HTML tags removed), for tests and logs."""
        value: str = self.widget.value
        return html.unescape(_strip_tags(value))

    def error(self, exc: BaseException, what: str) -> None:
        """Show ``exc`` (a failure of ``what``) and log it."""
        if isinstance(exc, AkoolLabError):
            # An expected failure (bad input, an AKool code): the readable line is the whole story.
            _log.warning("%s failed: %s", what, exc)
        else:
            _log.error("%s failed", what, exc_info=exc)
        self._set(f'<span class="akool-error">{html.escape(what)}: {html.escape(describe_error(exc))}</span>')

    def problem(self, text: str) -> None:
        """Show a problem found before anything was sent (invalid input)."""
        self._set(f'<span class="akool-error">{html.escape(text)}</span>')

    def note(self, text: str) -> None:
        """Show a success note (e.g. an ack)."""
        self._set(f'<span class="akool-note">{html.escape(text)}</span>')

    def clear(self) -> None:
        """Show nothing."""
        self._set("")

    def _set(self, value: str) -> None:
        with self._lock:  # the kernel thread and the I/O thread may both write
            self.widget.value = value


def _strip_tags(value: str) -> str:
    out: list[str] = []
    inside = False
    for char in value:
        if char == "<":
            inside = True
        elif char == ">":
            inside = False
        elif not inside:
            out.append(char)
    return "".join(out)


def background(
    coro: Coroutine[Any, Any, T],
    *,
    errors: ErrorLine,
    what: str,
    on_done: Callable[[T], None] | None = None,
) -> concurrent.futures.Future[T]:
    """Run ``coro`` on the I/O loop without waiting for it; show its failure on ``errors``.

    ``on_done(result)`` runs on the I/O thread when it succeeds; an exception raised there is shown too.
    Returns the future (tests wait on it; widget callbacks ignore it).
    """
    future = io_loop().submit(coro)

    def finished(done: concurrent.futures.Future[T]) -> None:
        if done.cancelled():
            return
        exc = done.exception()
        if exc is not None:
            errors.error(exc, what)
            return
        if on_done is not None:
            try:
                on_done(done.result())
            except Exception as callback_exc:
                errors.error(callback_exc, what)

    future.add_done_callback(finished)
    return future


async def in_thread(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run the blocking ``fn`` (a REST call) in a worker thread, so the I/O loop keeps receiving meanwhile."""
    return await asyncio.to_thread(fn, *args, **kwargs)


class Coalescer:
    """Calls ``render()`` on the I/O loop at most ``max_hz`` times a second, however often :meth:`poke` is called.

    A dirty flag plus one pending timer: a poke while a render is scheduled or running only marks the state dirty,
    and the render that follows picks the change up. A render that raises is shown on ``errors`` and logged; the
    next poke tries again. With ``offload`` the render runs in a worker thread (for matplotlib, whose drawing
    would otherwise stall the I/O loop and so the timestamps of arriving frames).
    """

    def __init__(
        self, render: Callable[[], None], *, max_hz: float, errors: ErrorLine, what: str, offload: bool = False
    ) -> None:
        self._render = render
        self._interval = 1.0 / max_hz
        self._errors = errors
        self._what = what
        self._offload = offload
        self._lock = threading.Lock()
        self._dirty = False
        self._scheduled = False
        self._last = 0.0  # time.monotonic() of the last render's start
        self._closed = False
        #: How many times render() ran (tests check the rate limit with it).
        self.renders = 0

    def poke(self) -> None:
        """Mark the view out of date; it is re-rendered within ``1 / max_hz`` seconds. Thread-safe, never blocks."""
        with self._lock:
            if self._closed:
                return
            self._dirty = True
            if self._scheduled:
                return
            self._scheduled = True
        loop = io_loop().loop
        loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        delay = max(0.0, self._last + self._interval - time.monotonic())
        io_loop().loop.call_later(delay, self._fire)

    def _fire(self) -> None:
        with self._lock:
            self._dirty = False
            if self._closed:
                self._scheduled = False
                return
        self._last = time.monotonic()
        if self._offload:
            task = io_loop().loop.run_in_executor(None, self._run)
            task.add_done_callback(lambda _: self._after())
        else:
            self._run()
            self._after()

    def _run(self) -> None:
        try:
            self.renders += 1
            self._render()
        except Exception as exc:
            self._errors.error(exc, self._what)

    def _after(self) -> None:
        with self._lock:
            again = self._dirty and not self._closed
            self._scheduled = again
        if again:
            self._schedule()

    def close(self) -> None:
        """Stop rendering (pokes after this are ignored)."""
        with self._lock:
            self._closed = True
