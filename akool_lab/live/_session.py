"""``LiveSession``: the blocking facade over :class:`AvatarStream`, for cells, scripts, threads and callbacks.

Each method submits the async method to the I/O loop thread and blocks on its future with a timeout, so it works
the same in a plain script, in a notebook cell (where the kernel's own event loop is running: we never nest it),
from several threads at once, and inside a widget callback on the kernel thread.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

from akool_lab.errors import ValidationError
from akool_lab.events import Recorder
from akool_lab.live._llm import ChatTurn
from akool_lab.live._loop import Handoff, IOLoop, io_loop
from akool_lab.live._stream import AvatarStream
from akool_lab.transport import ensure_blocking_call_allowed
from akool_lab.types import Ack, Reply, TranscriptEntry, default_reply_timeout

__all__ = ["LiveSession"]

T = TypeVar("T")

#: Extra time a blocking call allows beyond the stream's own timeout, so that the stream's typed error (which
#: says what was being waited for) reaches the caller rather than a generic one from the facade.
_MARGIN_S = 5.0


class LiveSession:
    """A live avatar session with blocking methods.

    >>> with client.connect(session) as live:            # doctest: +SKIP
    ...     reply = live.say("Hello!")
    ...     print(reply.text, reply.timings.ttfr_ms)

    Every call blocks the calling thread only; the I/O thread keeps receiving meanwhile. Every wait has a timeout
    and raises ``akool_lab.errors.TimeoutError`` naming what it waited for.
    """

    def __init__(self, stream: AvatarStream, *, loop: IOLoop | None = None, on_close: Callable[[], None] | None = None):
        self._stream = stream
        self._io = loop or io_loop()
        self._on_close = on_close

    def _run(self, coro: Coroutine[Any, Any, T], timeout: float | None, what: str, *, closing: bool = False) -> T:
        if not closing:
            try:
                self._check_blocking(what)
            except BaseException:
                coro.close()
                raise
        return self._io.run(coro, None if timeout is None else timeout + _MARGIN_S, what)

    def _check_blocking(self, what: str) -> None:
        transport = self._stream.transport
        if transport.requires_idle_kernel:
            # The stage's browser transport: its replies reach Python only while the kernel is idle, so a blocking
            # call on the kernel's main thread would wait for messages queued behind itself. Say so instead.
            # Closing waits for nothing from the far end: it is always allowed.
            ensure_blocking_call_allowed(transport, what)

    def _converse(self, text: str, intent: str, timeout: float | None, until: str, what: str) -> Reply:
        budget = timeout if timeout is not None else default_reply_timeout(text)
        self._check_blocking(what)
        stream = self._stream

        def start(handoff: Handoff) -> Callable[[], object]:
            return stream.start_blocking(text, intent, budget, until, handoff)

        # The reply reaches this thread as soon as it is complete, handed over by the stream itself.
        reply: Reply = self._io.call(start, budget + _MARGIN_S, what)
        return reply

    # -- state --------------------------------------------------------------------------------------

    @property
    def avatar_stream(self) -> AvatarStream:
        """The async core (for ``await`` in async code and for event callbacks)."""
        return self._stream

    @property
    def session_id(self) -> str | None:
        """The AKool session id."""
        return self._stream.session_id

    @property
    def recorder(self) -> Recorder:
        """Every raw event of the session (for :mod:`akool_lab.metrics`)."""
        return self._stream.recorder

    @property
    def transcript(self) -> list[TranscriptEntry]:
        """Who said what, in order (updated while text streams in)."""
        return list(self._stream.transcript)

    @property
    def mode(self) -> int | None:
        """The avatar's mode as far as this session knows (1 retelling, 2 dialogue)."""
        return self._stream.mode

    @property
    def is_open(self) -> bool:
        """Whether messages can be sent."""
        return self._stream.is_open

    @property
    def closed(self) -> bool:
        """Whether the stream is closed."""
        return self._stream.closed

    def __repr__(self) -> str:
        return repr(self._stream).replace("AvatarStream", "LiveSession", 1)

    # -- conversation ---------------------------------------------------------------------------------

    def say(self, text: str, *, timeout: float | None = None, until: str = "audio_end") -> Reply:
        """Have the avatar speak ``text`` verbatim (mode 1); see :meth:`AvatarStream.say`."""
        return self._converse(text, "say", timeout, until, "say()")

    def ask(self, text: str, *, timeout: float | None = None, until: str = "audio_end") -> Reply:
        """Ask the avatar a question (mode 2); see :meth:`AvatarStream.ask`."""
        return self._converse(text, "ask", timeout, until, "ask()")

    def stream(self, text: str, *, intent: str = "ask", timeout: float = 60.0) -> Iterator[str]:
        """Send ``text`` and yield the reply's text pieces as they arrive (blocking iterator)."""
        if timeout <= 0:
            raise ValidationError("timeout", f"must be positive, got {timeout!r}", allowed="> 0 seconds")
        agen = self._stream.stream(text, intent=intent, timeout=timeout)

        async def next_piece() -> str | None:
            try:
                return await agen.__anext__()
            except StopAsyncIteration:
                return None

        try:
            while True:
                piece = self._run(next_piece(), timeout, "stream()")
                if piece is None:
                    return
                yield piece
        finally:
            self._run(agen.aclose(), 5.0, "closing stream()", closing=True)

    def set_params(
        self,
        *,
        vid: str | None = None,
        vurl: str | None = None,
        lang: str | None = None,
        mode: int | None = None,
        bgurl: str | None = None,
        vparams: dict[str, Any] | None = None,
        timeout: float = 10.0,
    ) -> Ack:
        """Change voice, language, mode, background or voice params; see :meth:`AvatarStream.set_params`."""
        coro = self._stream.set_params(
            vid=vid, vurl=vurl, lang=lang, mode=mode, bgurl=bgurl, vparams=vparams, timeout=timeout
        )
        return self._run(coro, timeout, "set_params()")

    def interrupt(self, *, timeout: float = 10.0) -> Ack:
        """Stop the avatar's current utterance; see :meth:`AvatarStream.interrupt`."""
        return self._run(self._stream.interrupt(timeout=timeout), timeout, "interrupt()")

    def set_action(self, action: str, expression: str | None = None, *, timeout: float = 10.0) -> Ack:
        """Gesture / expression for "ultra" avatars; see :meth:`AvatarStream.set_action`."""
        return self._run(self._stream.set_action(action, expression, timeout=timeout), timeout, "set_action()")

    def on(self, event: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Subscribe to stream events (run on the I/O thread); see :meth:`AvatarStream.on`."""
        return self._stream.on(event, callback)

    def wait_closed(self, timeout: float) -> None:
        """Block until the stream closes (e.g. the session's duration ran out)."""
        self._run(self._stream.wait_closed(timeout), timeout, "wait_closed()")

    # -- your own LLM -------------------------------------------------------------------------------------

    def use_llm(self, fn: Callable[[str], Any]) -> None:
        """Use ``fn(user_text)`` as the brain for :meth:`chat` (see :meth:`AvatarStream.use_llm`)."""
        self._stream.use_llm(fn)

    def chat(self, user_text: str, *, timeout: float = 120.0) -> ChatTurn:
        """Run your LLM on ``user_text`` and have the avatar speak its answer (mode 1), sentence by sentence."""
        return self._run(self._stream.chat(user_text, timeout=timeout), timeout, "chat()")

    # -- closing -----------------------------------------------------------------------------------------

    def close(self, timeout: float = 30.0) -> None:
        """Close the data channel and the AKool session (idempotent)."""
        try:
            self._run(self._stream.close(), timeout, "close()", closing=True)
        finally:
            if self._on_close is not None:
                on_close, self._on_close = self._on_close, None
                on_close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
