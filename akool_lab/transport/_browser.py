"""The notebook's browser as the data channel: the stage widget joins the room, this transport relays the bytes.

Python never touches the provider's SDK here. The stage widget (``akool_lab.widgets.Stage``) joins Agora, LiveKit
or TRTC in the browser; this transport hands it each encoded message as a widget custom message, and the browser
sends it with the provider's own call (Agora ``sendStreamMessage``, LiveKit ``publishData`` reliable, TRTC
``sendCustomMessage``), pacing it with the provider's token bucket itself (``paces_itself``). Every received
message comes back in batches, each stamped with ``performance.now()`` the moment it arrived in the browser, and
every send's browser timestamp comes back too. Both are on the clock ``"browser:<page id>"``: timings stay on one
clock even when the kernel runs on another machine (Binder).

The browser protocol (widget custom messages; bytes travel as binary buffers, never as JSON text)::

    Python -> browser   {"type": "send", "seq": n, "page_id": p}            + [message bytes]
                        {"type": "leave", "page_id": p}
    browser -> Python   {"type": "joined", "page_id": p, "provider": name}
                        {"type": "frames", "page_id": p, "t": [ms, ...]}    + [bytes of each frame]
                        {"type": "sent", "page_id": p, "items": [[seq, ms], ...]}
                        {"type": "send-failed", "page_id": p, "seq": n, "error": text}
                        {"type": "failed", "page_id": p, "kind": k, "message": text}   (k: sdk-load, join-refused,
                                                          join-timeout, token-expired, avatar-left, ...)
                        {"type": "left", "page_id": p, "reason": text}
    browser -> Stage    {"type": "problem", "page_id": p, "kind": k, "message": text}  (not fatal: reported only)
                        {"type": "event", "page_id": p, "name": n, "t": ms, "data": {...}}  (a raw event)

Jupyter reads widget messages on the kernel's main thread only while the kernel is idle. So replies reach this
transport between cells, not while a cell blocks: :attr:`BrowserTransport.requires_idle_kernel` says so, and
:func:`ensure_blocking_call_allowed` turns the would-be hang of a blocking call into a clear error.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from typing import Any

from akool_lab.errors import ConnectionError, StreamClosedError, StreamError
from akool_lab.protocol.limits import ProviderBudget
from akool_lab.transport._base import Frame, Transport

__all__ = ["BrowserSendError", "BrowserTransport", "blocking_call_would_hang", "ensure_blocking_call_allowed"]

_log = logging.getLogger("akool_lab.transport")

#: What the stage posts to the browser: ``post(content, buffers)`` (``widget.send``; safe from any thread).
Post = Callable[[dict[str, Any], list[bytes]], None]

_END = object()
_NS_PER_MS = 1_000_000

#: What each failure kind reported by the browser means, in the user's words (the browser adds the details).
FAILURE_TEXT = {
    "sdk-load": "the stage could not load the provider's SDK",
    "join-refused": "the provider refused to let the stage join the room",
    "token-expired": "the room token expired",
    "avatar-left": "the avatar left the room",
    "disconnected": "the stage lost its connection to the room",
    "join-timeout": "the stage could not join the room in time",
    "unreachable": "the stage could not reach the provider's server",
    "widget-closed": "the stage widget was closed",
    # Not fatal (reported, the room stays): a track not subscribed, blocked playback, the microphone.
    "subscribe-failed": "the stage could not subscribe to the avatar's media",
    "play-failed": "the stage could not play the avatar's media",
    "autoplay-blocked": "the browser blocks the avatar's audio",
    "mic-failed": "the stage's microphone failed",
    "stats-failed": "the stage could not read the network statistics",
    "leave-failed": "the stage could not leave the room cleanly",
}


class BrowserSendError(StreamClosedError):
    """The browser's provider SDK refused one message (the channel itself may still be open)."""


def _ms_to_ns(value: Any) -> int:
    # performance.now() is a float in ms with sub-ms resolution; integer ns keep every clock the same type.
    return round(float(value) * _NS_PER_MS)


class BrowserTransport(Transport):
    """The stage widget's room, joined in the browser; timestamps on the browser's clock ``"browser:<page id>"``.

    Created by the stage (``stage.transport``) with the I/O loop it runs on; pass it to ``client.connect(session, transport=stage.transport)``.
    :meth:`connect` returns at once: the browser joins when the user clicks Join on the stage (browsers need a
    click before they play audio), and :meth:`send` waits for that join (up to ``send_timeout`` seconds, then the
    transport closes with a reason that says so).

    Attributes:
        requires_idle_kernel: always True: the browser's replies reach Python only while the kernel is idle, so
            wait for results in a later cell (``io_loop().submit(...)``), never with a blocking call in the cell
            that sends.
    """

    paces_itself = True
    requires_idle_kernel = True

    def __init__(
        self,
        post: Post,
        *,
        budget: ProviderBudget,
        loop: asyncio.AbstractEventLoop,
        send_timeout: float = 120.0,
    ) -> None:
        if not send_timeout > 0:
            raise ValueError(f"send_timeout must be positive, got {send_timeout!r}")
        self._post = post
        self.budget = budget
        self.clock = "browser:unjoined"
        self.send_timeout = send_timeout
        # The I/O loop (``akool_lab.live.io_loop().loop``), passed in: this layer sits above ``live``.
        self._loop = loop
        # Both are created here but only used on the I/O loop (asyncio binds them to a loop on first use).
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._joined = asyncio.Event()
        self._pending: dict[int, asyncio.Future[int]] = {}
        self._seq = 0
        self._page_id: str | None = None
        self._provider: str | None = None
        self._opened = False
        self._closed = False
        self._close_reason: str | None = None
        self._failure_kind: str | None = None

    # ------------------------------------------------------------------ state

    @property
    def page_id(self) -> str | None:
        """The id of the browser page that joined the room (``None`` until a page has joined)."""
        return self._page_id

    @property
    def joined(self) -> bool:
        """Whether a browser page has joined the room (and not left it)."""
        return self._joined.is_set() and not self._closed

    @property
    def failure_kind(self) -> str | None:
        """The kind of the browser's failure (``"token-expired"``, ...) when the channel failed, else ``None``."""
        return self._failure_kind

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason

    def describe(self) -> str:
        return f"BrowserTransport({self._provider or self.budget.name}, {self.clock})"

    def __repr__(self) -> str:
        state = "closed" if self._closed else ("joined" if self._joined.is_set() else "waiting for Join")
        return f"<BrowserTransport {self._provider or self.budget.name} {state} clock={self.clock}>"

    # ------------------------------------------------------------------ from the widget (any thread)

    def deliver(self, content: Mapping[str, Any], buffers: Sequence[bytes | memoryview] = ()) -> None:
        """Hand one message from the browser to the I/O loop (thread-safe; the stage calls it from its comm handler).

        The buffers are copied here: the comm layer may reuse its memory once the handler returns.
        """
        try:
            self._loop.call_soon_threadsafe(self._on_browser_message, dict(content), [bytes(b) for b in buffers])
        except RuntimeError:  # the I/O loop has shut down (interpreter exit): nothing listens any more
            _log.debug("dropped a %r message from the stage: the I/O loop is closed", content.get("type"))

    # ------------------------------------------------------------------ I/O loop only

    def _on_browser_message(self, content: dict[str, Any], buffers: list[bytes]) -> None:
        kind = content.get("type")
        page = content.get("page_id")
        if kind == "joined":
            self._on_joined(str(page), content.get("provider"))
            return
        if self._page_id is not None and page is not None and page != self._page_id:
            # Another tab showing the same widget: its clock is not ours, and it does not own the room.
            _log.debug("ignoring %r from browser page %s (the room belongs to %s)", kind, page, self._page_id)
            return
        if kind == "frames":
            self._on_frames(content.get("t") or [], buffers)
        elif kind == "sent":
            for seq, t_ms in content.get("items") or []:
                future = self._pending.pop(int(seq), None)
                if future is not None and not future.done():
                    future.set_result(_ms_to_ns(t_ms))
        elif kind == "send-failed":
            future = self._pending.pop(int(content.get("seq", -1)), None)
            if future is not None and not future.done():
                future.set_exception(BrowserSendError(f"the browser could not send: {content.get('error')}"))
        elif kind == "failed":
            failure = str(content.get("kind") or "disconnected")
            lead = FAILURE_TEXT.get(failure, "the stage failed")
            detail = content.get("message")
            self._fail(failure, f"{lead}: {detail}" if detail else lead)
        elif kind == "left":
            self._fail("left", f"the stage left the room ({content.get('reason') or 'Leave was clicked'})")

    def _on_joined(self, page: str, provider: Any) -> None:
        if self._closed:
            return
        if self._page_id is not None and page != self._page_id:
            _log.warning("a second browser page joined the stage's room; only the first one is used")
            return
        self._page_id = page
        self._provider = str(provider) if provider else None
        self.clock = f"browser:{page}"
        self._joined.set()

    def _on_frames(self, times: Sequence[Any], buffers: list[bytes]) -> None:
        if not self._opened or self._closed:
            return  # nobody listens yet (or any more): frames from before connect() belong to no stream
        if len(times) != len(buffers):
            _log.error("the stage sent %d timestamps for %d frames; batch dropped", len(times), len(buffers))
            return
        for t_ms, data in zip(times, buffers, strict=True):
            self._queue.put_nowait(Frame(data, _ms_to_ns(t_ms), self.clock))

    def _fail(self, kind: str, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        self._failure_kind = kind
        self._close_reason = reason
        self._finish(StreamClosedError(f"the stream is closed: {reason}"))

    def _finish(self, exc: BaseException) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(exc)
        self._joined.set()  # wake senders waiting for a join that will never come; they re-check _closed
        self._queue.put_nowait(_END)

    # ------------------------------------------------------------------ Transport

    async def connect(self, timeout: float) -> None:
        """Start listening; returns at once (the browser joins when Join is clicked on the stage).

        Raises ``akool_lab.errors.ConnectionError`` when the stage already failed or was closed.
        """
        if self._closed:
            raise ConnectionError(self._close_reason or "the stage's transport is closed")
        self._opened = True

    async def send(self, data: bytes) -> int:
        """Have the browser send ``data`` (after the stage joined, paced there); returns the browser's send time.

        Raises ``StreamClosedError`` when the stage failed or left, or did not join and send within
        :attr:`send_timeout` seconds, and :class:`BrowserSendError` when the provider's SDK refused the message.
        """
        if self._closed:
            raise StreamClosedError(f"the stream is closed: {self._close_reason or 'closed by the user'}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.send_timeout
        if not self._joined.is_set():
            try:
                await asyncio.wait_for(self._joined.wait(), self.send_timeout)
            except asyncio.TimeoutError:
                self._fail(
                    "not-joined",
                    f"the stage did not join the room within {self.send_timeout:g} s: display the stage and click Join",
                )
            if self._closed:
                raise StreamClosedError(f"the stream is closed: {self._close_reason or 'closed by the user'}")
        self._seq += 1
        seq = self._seq
        future: asyncio.Future[int] = loop.create_future()
        self._pending[seq] = future
        try:
            self._post({"type": "send", "seq": seq, "page_id": self._page_id}, [bytes(data)])
        except Exception as exc:  # the comm is gone (widget closed, kernel shutting down)
            self._pending.pop(seq, None)
            self._fail("widget-closed", f"{FAILURE_TEXT['widget-closed']} ({type(exc).__name__})")
            raise StreamClosedError(f"the stream is closed: {self._close_reason}") from None
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, deadline - loop.time()))
        except asyncio.TimeoutError:
            self._pending.pop(seq, None)
            self._fail(
                "send-timeout",
                f"the browser did not confirm a send within {self.send_timeout:g} s (is the notebook open, "
                "and is the kernel idle? the browser's replies only reach Python between cells)",
            )
            raise StreamClosedError(f"the stream is closed: {self._close_reason}") from None

    async def frames(self) -> AsyncIterator[Frame]:
        while True:
            item = await self._queue.get()
            if item is _END:
                self._queue.put_nowait(_END)  # a later iterator (after a reconnect attempt) ends at once too
                return
            yield item

    async def close(self) -> None:
        """Leave the room in the browser and end the frame iterator (idempotent)."""
        if self._closed:
            return
        self._closed = True
        try:
            self._post({"type": "leave", "page_id": self._page_id}, [])
        except Exception:  # the widget is already gone: there is nothing left to tell
            _log.debug("could not tell the stage to leave (widget closed)")
        self._finish(StreamClosedError("the stream is closed: closed by the user"))


# ---------------------------------------------------------------------- blocking calls in a notebook


def _in_ipykernel() -> bool:
    """Whether this process is an IPython kernel (a notebook's), without importing IPython when it is not loaded."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def blocking_call_would_hang(transport: Transport) -> bool:
    """Whether a blocking call over ``transport`` on this thread would wait for messages that cannot arrive.

    True for a transport that ``requires_idle_kernel`` when called on the main thread of a Jupyter kernel: while
    that thread is blocked, the kernel reads no widget messages, so the browser's replies wait in line behind the
    very call that waits for them.
    """
    return transport.requires_idle_kernel and threading.current_thread() is threading.main_thread() and _in_ipykernel()


def ensure_blocking_call_allowed(transport: Transport, what: str) -> None:
    """Raise ``StreamError`` (with what to do instead) when a blocking ``what`` over ``transport`` would hang."""
    if blocking_call_would_hang(transport):
        raise StreamError(
            f"{what} would wait forever: the stage's browser transport delivers the avatar's replies through "
            "widget messages, which Jupyter reads only between cells. Start it without waiting "
            "(`job = stage.say('...')`, or `job = io_loop().submit(live.avatar_stream.say('...'))`) and read "
            "`job.result()` in a later cell"
        )
