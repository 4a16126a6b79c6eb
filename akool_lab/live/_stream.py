"""``AvatarStream``: the async core of a live session (say, ask, stream, set_params, interrupt, events).

Everything here runs on the process's one I/O loop thread (:mod:`akool_lab.live._loop`): the state below is only
ever touched from that thread, so it needs no locks. Public coroutines may be awaited from any event loop (a
notebook's, an async program's); they hop onto the I/O loop with :meth:`IOLoop.wrap`.

The stream is a thin driver of :class:`akool_lab.protocol.Conversation`, the sans-IO state machine that decides
which reply, ack and audio event belongs to which message (its rules: ``docs/conversation.md``). The driver sends
(paced), hands every received frame to the machine, turns the machine's events into replies, acks, recorder
events and callbacks, and wakes the machine at its next deadline with one ``loop.call_later`` timer: nothing polls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from akool_lab import protocol as proto
from akool_lab.errors import (
    AkoolLabError,
    ProtocolError,
    ReplyIncompleteError,
    StreamClosedError,
    StreamError,
    TimeoutError,
    ValidationError,
    error_for_code,
)
from akool_lab.events import EventKind, Recorder
from akool_lab.live._llm import ChatTurn, SentenceSplitter, llm_pieces, now_ns
from akool_lab.live._loop import Handoff, IOLoop, io_loop, settle
from akool_lab.transport import Frame, Transport
from akool_lab.types import Ack, Reply, TranscriptEntry, default_reply_timeout, derive_timings

__all__ = ["EVENTS", "AvatarStream"]

_log = logging.getLogger("akool_lab.live")

#: The names accepted by :meth:`AvatarStream.on`.
EVENTS = ("chat", "reply", "user_speech", "audio_start", "audio_end", "ack", "error", "closed")

_NS = 1_000_000_000
_perf_ns = time.perf_counter_ns


@dataclass(eq=False, repr=False, slots=True)  # cheap default repr
class _Message:
    """A message we send (say/ask/llm): what the caller waits on. Its conversation state is in the machine."""

    mid: str
    text: str
    intent: str
    chunks: list[bytes]
    future: asyncio.Future[Reply] | None  # what an awaiting coroutine waits on (None: only a blocked caller waits)
    timeout: float
    on_piece: Callable[[str | None], None] | None = None  # for stream()
    error: BaseException | None = None  # the exception its caller gets, when one is already known
    handoff: Handoff | None = None  # what a blocked caller waits on, completed directly


@dataclass(eq=False, repr=False, slots=True)  # cheap default repr
class _Command:
    mid: str
    cmd: str
    data: bytes
    future: asyncio.Future[Ack]
    timeout: float
    params: dict[str, Any] = field(default_factory=dict)  # what a set-params asked for (recorded with it)
    error: BaseException | None = None


class AvatarStream:
    """A live conversation with an avatar over one data-channel :class:`~akool_lab.transport.Transport`.

    Open one with ``await async_client.connect(session)`` (or :meth:`open`). Every method may be awaited from any
    event loop; the work runs on the I/O loop thread.

    >>> async with await client.connect(session) as live:       # doctest: +SKIP
    ...     reply = await live.say("Hello!")                     # mode 1: the avatar says exactly this
    ...     print(reply.timings.ttfr_ms, reply.timings.speak_ms)
    ...     answer = await live.ask("What can you do?")          # mode 2: the avatar answers
    ...     ack = await live.set_params(lang="fr", vparams={"speed": 1.1})

    Which reply belongs to which message, and when a reply is complete, follows the rules of
    ``docs/conversation.md`` (as tolerant as AKool's official clients). Once this avatar has shown that it ends its
    replies with ``fin`` (or echoes ``say()`` text), a reply without it is taken as one whose last chunks were
    lost, and is incomplete (rule 10); ``expect_fin``/``expect_echo`` (here, in :meth:`open` and in
    ``client.connect``) set that instead of learning it: ``False`` never expects them, ``True`` always does.

    Attributes:
        session_id: the AKool session id (``None`` when unknown).
        recorder: every raw event of this stream (and of the client that created it, when shared).
        transcript: who said what, updated while text streams in.
        mode: the avatar's current mode as far as this stream knows (1 retelling, 2 dialogue, None unknown).
    """

    def __init__(
        self,
        transport: Transport,
        *,
        session_id: str | None = None,
        recorder: Recorder | None = None,
        mode: int | None = None,
        closer: Callable[[], Awaitable[None]] | None = None,
        reconnect: Callable[[], Awaitable[Transport]] | None = None,
        fin_timeout: float = 5.0,
        ack_timeout: float = 10.0,
        connect_timeout: float = 15.0,
        strict_interrupt: bool = False,
        expect_fin: bool | None = None,
        expect_echo: bool | None = None,
        loop: IOLoop | None = None,
    ) -> None:
        if mode not in (None, 1, 2):
            raise ValidationError("mode", f"got {mode!r}", allowed="1 (retelling), 2 (dialogue) or None")
        for name, value in (("fin_timeout", fin_timeout), ("ack_timeout", ack_timeout)):
            if not value > 0:
                raise ValidationError(name, f"must be positive, got {value!r}", allowed="> 0 seconds")
        self._transport = transport
        self.session_id = session_id
        self.recorder = recorder if recorder is not None else Recorder()
        self.mode = mode
        self.transcript: list[TranscriptEntry] = []
        self._closer = closer
        self._reconnect = reconnect
        self._fin_timeout = fin_timeout
        self._ack_timeout = ack_timeout
        self._connect_timeout = connect_timeout
        self._io = loop or io_loop()
        self._listeners: dict[str, list[Callable[[Any], None]]] = {name: [] for name in EVENTS}
        self._pacer = proto.Pacer(transport.budget)
        self._conv = proto.Conversation(
            quiet_ns=int(fin_timeout * _NS),
            strict_interrupt=strict_interrupt,
            expect_fin=expect_fin,  # (docs/conversation.md, rule 10: None learns it from the avatar)
            expect_echo=expect_echo,
        )
        self._messages: dict[str, _Message] = {}  # sent or queued, not ended
        self._commands: dict[str, _Command] = {}  # sent, waiting for their ack
        self._entries: dict[str, TranscriptEntry] = {}  # the avatar's transcript entry of each open reply
        self._users: dict[str, TranscriptEntry] = {}  # the transcript entry of each user utterance
        self._queue: asyncio.Queue[_Message | _Command] | None = None
        self._order_lock: asyncio.Lock | None = None
        self._send_lock: asyncio.Lock | None = None
        self._link_up: asyncio.Event | None = None
        self._closed_event: asyncio.Event | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at: int | None = None  # the machine deadline (perf_counter ns) the timer is set for
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "new"  # new -> open -> closing -> closed
        self._failure: BaseException | None = None
        self._close_reason: str | None = None
        self._messages_sent = 0
        self._closing: asyncio.Task[None] | None = None  # closing after the server ended the stream
        self._llm: Callable[[str], Any] | None = None
        # What to do with each event of the machine (a dict lookup per event: this is the hot path).
        self._handlers: dict[type, Callable[[Any], None]] = {
            proto.ReplyPiece: self._on_piece,
            proto.AudioEvent: self._on_audio,
            proto.ReplyEnded: self._on_reply_ended,
            proto.AckMatched: self._on_ack,
            proto.CommandUnacked: self._on_unacked,
            proto.UserSpeech: self._on_user_speech,
            proto.UnmatchedAck: self._on_unmatched_ack,
            proto.ServerError: self._on_server_error,
            proto.OtherEvent: self._on_other_event,
            proto.Ignored: self._on_ignored,
        }

    # ------------------------------------------------------------------ life cycle

    @classmethod
    async def open(cls, transport: Transport, **kwargs: Any) -> AvatarStream:
        """Create a stream over ``transport``, connect it and start receiving; returns the open stream."""
        stream = cls(transport, **kwargs)
        await stream._io.wrap(stream._open())
        return stream

    async def _open(self) -> None:
        self._queue = asyncio.Queue()
        self._order_lock = asyncio.Lock()
        self._send_lock = asyncio.Lock()
        self._link_up = asyncio.Event()
        self._closed_event = asyncio.Event()
        self._record(EventKind.CONNECT_START, transport=self._transport.describe())
        try:
            await self._transport.connect(self._connect_timeout)
        except BaseException:
            self._set_closed()
            raise
        self._record(EventKind.CONNECTED, transport=self._transport.describe())
        self._state = "open"
        self._link_up.set()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive_loop(), name="akool-lab-receive"),
            loop.create_task(self._send_loop(), name="akool-lab-send"),
        ]

    @property
    def transport(self) -> Transport:
        """The data-channel transport in use."""
        return self._transport

    @property
    def is_open(self) -> bool:
        """Whether messages can be sent."""
        return self._state == "open"

    @property
    def closed(self) -> bool:
        """Whether the stream is closed (by :meth:`close`, the server, or a failure)."""
        return self._state == "closed"

    @property
    def close_reason(self) -> str | None:
        """Why the stream closed, when it did."""
        return self._close_reason

    def __repr__(self) -> str:
        return (
            f"<AvatarStream session={self.session_id} {self._state} mode={self.mode} "
            f"via {self._transport.describe()} messages={self._messages_sent}>"
        )

    async def close(self) -> None:
        """Close the data channel and, when this stream owns it, the AKool session (idempotent)."""
        await self._io.wrap(self._close("closed by the user", close_session=True))

    async def __aenter__(self) -> AvatarStream:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _set_closed(self) -> None:
        self._state = "closed"
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._closed_event is not None:
            self._closed_event.set()

    async def _close(self, reason: str, *, close_session: bool) -> None:
        if self._state in ("closing", "closed"):
            # A second close (user after server) still closes the session if that has not happened.
            if close_session and self._closer is not None:
                await self._run_closer()
            return
        self._state = "closing"
        self._close_reason = self._close_reason or reason
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()
        for task in self._tasks:
            if task is not current:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        with contextlib.suppress(AkoolLabError, OSError):
            await self._transport.close()
        self._fail_pending(StreamClosedError(f"the stream closed: {self._close_reason}"))
        self._set_closed()
        self._record(EventKind.DISCONNECTED, reason=self._close_reason)
        self._emit("closed", self._close_reason)
        if close_session and self._closer is not None:
            await self._run_closer()

    async def _run_closer(self) -> None:
        closer, self._closer = self._closer, None
        if closer is None:
            return
        await closer()  # the REST client records session.close_start / session.closed itself

    def _check_usable(self) -> None:
        if self._failure is not None:
            raise StreamError(f"the stream failed: {self._failure!r}") from self._failure
        if self._state != "open":
            raise StreamClosedError(
                f"the stream is {self._state}" + (f": {self._close_reason}" if self._close_reason else "")
            )

    # ------------------------------------------------------------------ events

    def on(self, event: str, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback(payload)`` on the I/O thread for each ``event``; returns a function that unsubscribes.

        Events and payloads: ``"chat"`` (a :class:`TranscriptEntry` each time the avatar's text grows),
        ``"reply"`` (a completed :class:`Reply`), ``"user_speech"`` (a :class:`TranscriptEntry` of speech the avatar
        heard), ``"audio_start"``/``"audio_end"`` (the reply mid or None), ``"ack"`` (an :class:`Ack`),
        ``"error"`` (an exception), ``"closed"`` (the reason). Callbacks must be quick and must not block: they
        run on the I/O thread (use the async API, or hand work to another thread).
        """
        if event not in self._listeners:
            raise ValidationError("event", f"unknown event {event!r}", allowed=", ".join(EVENTS))
        self._listeners[event].append(callback)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners[event].remove(callback)

        return unsubscribe

    def _emit(self, event: str, payload: Any) -> None:
        listeners = self._listeners[event]
        if not listeners:
            return
        for callback in list(listeners):
            try:
                callback(payload)
            except Exception as exc:  # a user's callback must not kill the I/O loop; it is reported, not hidden
                _log.exception("akool_lab: an %r callback raised", event)
                self._record(EventKind.ERROR, where=f"callback:{event}", type=type(exc).__name__, message=str(exc))
                if event != "error":
                    self._emit("error", exc)

    def _record(
        self,
        kind: str,
        *,
        t_ns: int | None = None,
        mid: str | None = None,
        clock_override: str | None = None,
        **data: Any,
    ) -> None:
        # A timestamp given by the transport is on its clock; one taken here (t_ns None) is the kernel's.
        if t_ns is None:
            t_ns = _perf_ns()
            clock = clock_override or "kernel"
        else:
            clock = clock_override or self._transport.clock
        self.recorder.record_fields(kind, t_ns, clock, self.session_id, mid, data)

    # ------------------------------------------------------------------ public API

    async def say(self, text: str, *, timeout: float | None = None, until: str = "audio_end") -> Reply:
        """Have the avatar speak ``text`` verbatim (retelling, mode 1) and return its :class:`Reply`.

        The stream switches the avatar to mode 1 first when it is not known to be in it. ``until`` is
        ``"audio_end"`` (default: return when it has finished speaking, so ``speak_ms`` is known) or ``"reply"``
        (return when the reply's text is complete). Concurrent calls are sent in call order.
        """
        return await self._io.wrap(self._converse(text, "say", timeout, until))

    async def ask(self, text: str, *, timeout: float | None = None, until: str = "audio_end") -> Reply:
        """Ask the avatar a question (dialogue, mode 2: AKool's LLM answers) and return its :class:`Reply`."""
        return await self._io.wrap(self._converse(text, "ask", timeout, until))

    async def stream(
        self, text: str, *, intent: str = "ask", timeout: float | None = None
    ) -> AsyncGenerator[str, None]:
        """Send ``text`` (``intent`` ``"ask"`` or ``"say"``) and yield the reply's text pieces as they arrive."""
        pieces: asyncio.Queue[str | None] = asyncio.Queue()
        caller_loop = asyncio.get_running_loop()

        def put(piece: str | None) -> None:
            caller_loop.call_soon_threadsafe(pieces.put_nowait, piece)

        job = asyncio.ensure_future(self._io.wrap(self._converse(text, intent, timeout, "reply", on_piece=put)))
        try:
            while True:
                getter = asyncio.ensure_future(pieces.get())
                done, _ = await asyncio.wait({getter, job}, return_when=asyncio.FIRST_COMPLETED)
                if getter in done:
                    piece = getter.result()
                    if piece is None:
                        break
                    yield piece
                else:
                    getter.cancel()
                    # The job ended first: drain what arrived, then surface its error (if any).
                    while not pieces.empty():
                        piece = pieces.get_nowait()
                        if piece is not None:
                            yield piece
                    job.result()
                    return
            await job
        finally:
            if not job.done():
                job.cancel()

    async def set_params(
        self,
        *,
        vid: str | None = None,
        vurl: str | None = None,
        lang: str | None = None,
        mode: int | None = None,
        bgurl: str | None = None,
        vparams: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Ack:
        """Change the session's voice, language, mode, background or voice params; returns the :class:`Ack`.

        Invalid values raise ``ValidationError`` before anything is sent; a non-1000 ack raises the typed
        ``AkoolError`` for its code; no ack within ``timeout`` (default ``ack_timeout``) raises ``TimeoutError``.
        """
        data = proto.encode_set_params(vid=vid, vurl=vurl, lang=lang, mode=mode, bgurl=bgurl, vparams=vparams)
        return await self._io.wrap(self._command(data, "set-params", timeout, new_mode=mode, ordered=True))

    async def interrupt(self, *, timeout: float | None = None) -> Ack:
        """Stop the avatar's current utterance at once; returns the :class:`Ack`. Jumps the send queue."""
        return await self._io.wrap(self._command(proto.encode_interrupt(), "interrupt", timeout, ordered=False))

    async def set_action(self, action: str, expression: str | None = None, *, timeout: float | None = None) -> Ack:
        """Ask an "ultra" avatar for a gesture and/or expression (see ``protocol.ACTIONS``/``EXPRESSIONS``)."""
        data = proto.encode_set_action(action, expression)
        return await self._io.wrap(self._command(data, "set-action", timeout, ordered=True))

    def use_llm(self, fn: Callable[[str], Any]) -> None:
        """Use ``fn(user_text)`` as the avatar's brain for :meth:`chat`.

        ``fn`` may return a ``str``, an iterable of text pieces, an awaitable, or an async iterable of pieces
        (for example an httpx call to an OpenAI-compatible endpoint with ``stream=True``).
        """
        if not callable(fn):
            raise ValidationError("fn", f"{type(fn).__name__} is not callable", allowed="a function of the user's text")
        self._llm = fn

    async def chat(self, user_text: str, *, timeout: float = 120.0) -> ChatTurn:
        """Run your LLM on ``user_text`` and have the avatar speak the answer (mode 1), sentence by sentence.

        Each sentence goes to the avatar as soon as the LLM has finished it, so the avatar starts speaking
        before the LLM is done. The LLM's own first-token and total times are recorded beside the avatar's.
        """
        if self._llm is None:
            raise ValidationError("llm", "no LLM is set", allowed="call use_llm(fn) first")
        if not isinstance(user_text, str) or not user_text.strip():
            raise ValidationError("user_text", "must be a non-empty string", allowed="text")
        return await self._io.wrap(asyncio.wait_for(self._chat(self._llm, user_text, timeout), timeout))

    async def _chat(self, fn: Callable[[str], Any], user_text: str, timeout: float) -> ChatTurn:
        self._check_usable()
        turn = proto.new_mid()
        self.transcript.append(TranscriptEntry("user", user_text, turn, time.time(), done=True))
        start = now_ns()
        self._record(EventKind.LLM_START, t_ns=start, clock_override="kernel", mid=turn, text_chars=len(user_text))
        first: int | None = None
        first_sentence: int | None = None
        splitter = SentenceSplitter()
        answer: list[str] = []
        jobs: list[asyncio.Task[Reply]] = []
        loop = asyncio.get_running_loop()

        def send(sentence: str) -> None:
            jobs.append(loop.create_task(self._converse(sentence, "llm", timeout, "audio_end")))

        async for piece in llm_pieces(fn, user_text):
            if first is None and piece:
                first = now_ns()
                self._record(EventKind.LLM_FIRST_TOKEN, t_ns=first, clock_override="kernel", mid=turn)
            answer.append(piece)
            for sentence in splitter.feed(piece):
                if first_sentence is None:
                    first_sentence = now_ns()
                send(sentence)
        for sentence in splitter.flush():
            if first_sentence is None:
                first_sentence = now_ns()
            send(sentence)
        end = now_ns()
        text = "".join(answer)
        self._record(EventKind.LLM_END, t_ns=end, clock_override="kernel", mid=turn, chars=len(text))
        replies = tuple(await asyncio.gather(*jobs))
        to_audio = None
        if replies and self._transport.clock == "kernel":
            starts = [e.t_ns for e in self.recorder.filter(EventKind.AUDIO_START, mid=replies[0].mid)]
            if starts:
                to_audio = (starts[0] - start) / 1e6
        return ChatTurn(
            user_text=user_text,
            answer=text,
            replies=replies,
            llm_first_token_ms=None if first is None else (first - start) / 1e6,
            llm_total_ms=(end - start) / 1e6,
            first_sentence_ms=None if first_sentence is None else (first_sentence - start) / 1e6,
            to_first_audio_ms=to_audio,
        )

    async def wait_closed(self, timeout: float) -> None:
        """Wait until the stream closes (for example when the session's duration runs out)."""

        async def waiter() -> None:
            if self._state == "closed":
                return
            if self._closed_event is None:  # never opened: it can only close by opening first
                raise StreamClosedError("the stream was never opened")
            await asyncio.wait_for(self._closed_event.wait(), timeout)

        try:
            await self._io.wrap(waiter())
        except asyncio.TimeoutError:
            raise TimeoutError("waiting for the stream to close", timeout) from None

    # ------------------------------------------------------------------ sending (I/O loop only)

    async def _converse(
        self,
        text: str,
        intent: str,
        timeout: float | None,
        until: str,
        on_piece: Callable[[str | None], None] | None = None,
        handoff: Handoff | None = None,
    ) -> Reply:
        if until not in ("audio_end", "reply"):
            raise ValidationError("until", f"got {until!r}", allowed="'audio_end' or 'reply'")
        if timeout is not None and not timeout > 0:
            raise ValidationError("timeout", f"must be positive, got {timeout!r}", allowed="> 0 seconds or None")
        mid = proto.new_mid()
        chunks = proto.encode_chat(text, mid=mid, budget=self._transport.budget)  # validates the text first
        self._check_usable()
        if timeout is None:
            timeout = default_reply_timeout(text)
        wanted_mode = 2 if intent == "ask" else 1
        assert self._order_lock is not None and self._queue is not None
        loop = asyncio.get_running_loop()
        async with self._order_lock:  # FIFO: concurrent calls keep their order, mode switches included
            if self.mode != wanted_mode:
                await self._command(
                    proto.encode_set_params(mode=wanted_mode), "set-params", None, new_mode=wanted_mode, ordered=True
                )
            future: asyncio.Future[Reply] = loop.create_future()
            message = _Message(mid, text, intent, chunks, future, timeout, on_piece, handoff=handoff)
            self._register(message, until, _perf_ns())
            assert self._send_lock is not None
            if len(chunks) == 1 and self._queue.empty() and not self._send_lock.locked():
                # Nothing queued and nothing being sent: a one-chunk message goes from here, sparing the send loop's
                # wake-up (one loop iteration). (If its caller gives up while it waits for its pacing slot, it is
                # simply not sent; a longer message goes through the send loop, which never sends half of one.)
                # Its deadline's timer is armed once it is sent (by _send_message), off the path to the socket.
                async with self._send_lock:
                    await self._send_message(message)
            else:
                self._reschedule()  # its deadline runs while it waits in the queue
                self._queue.put_nowait(message)
        try:
            return await future
        except asyncio.CancelledError:
            # The caller gave up (timeout of a sync call, Ctrl+C), which also cancelled the message's future: it is
            # not sent if it has not been yet, and it stays accounted for in the recorder, marked.
            if mid in self._messages:
                self._handle(self._conv.cancel(mid, _perf_ns()))
            raise

    def start_blocking(
        self, text: str, intent: str, timeout: float | None, until: str, handoff: Handoff
    ) -> Callable[[], object]:
        """Begin ``say``/``ask`` for a caller blocked on ``handoff`` (:meth:`IOLoop.call`: on the I/O thread, in a
        plain loop callback); the reply or the error completes the handoff. Returns what to call on the I/O thread
        when the caller stops waiting. This is :class:`~akool_lab.live.LiveSession`'s path.

        A message that can go out at once (see :meth:`_send_now`) is sent from right here, with no task: no task
        step to run before it is sent, and none to complete (a loop iteration) once its reply is handed over while
        the caller's thread waits for this one. Anything else runs the same coroutine as an async caller's, in a task.

        This runs in the loop iteration the caller's thread woke the loop for, before bytes that arrived in the same
        wake-up are handled: a server's close frame, say. The direct path may then send into a closing connection;
        the message ends at once as incomplete, as if it had been sent a moment earlier. A stream that reconnects
        never takes the direct path, and a task's first step runs an iteration later, after those bytes.
        """
        message = self._send_now(text, intent, timeout, until, handoff)
        if message is not None:
            mid = message.mid
            return lambda: self._give_up(mid)
        coro = self._converse(text, intent, timeout, until, handoff=handoff)
        return asyncio.get_running_loop().create_task(settle(coro, handoff)).cancel

    def _send_now(self, text: str, intent: str, timeout: float | None, until: str, handoff: Handoff) -> _Message | None:
        """Send a one-chunk message at once and register it, when nothing else has to happen first: the stream is
        open and in the right mode, nothing is queued or being sent, the pacing allows it now and the transport
        can send without waiting. Otherwise ``None``, and nothing was sent: :meth:`_converse` does it all.

        A stream that reconnects sends everything through :meth:`_converse`: right after the server hangs up, a
        message sent this fast often goes out before the close frame is read, into the closing socket, and is lost
        with the connection (seen in 2 runs out of 6 of the reconnect test); the send path is slower to get there,
        waits for the rejoin once the drop is known, and resends a message that provably did not go out."""
        transport = self._transport
        wanted_mode = 2 if intent == "ask" else 1
        queue, order_lock, send_lock, link_up = self._queue, self._order_lock, self._send_lock, self._link_up
        if (
            self._state != "open"
            or self._failure is not None
            or self._reconnect is not None
            or self.mode != wanted_mode
            or queue is None
            or not queue.empty()
            or order_lock is None
            or order_lock.locked()
            or send_lock is None
            or send_lock.locked()
            or link_up is None
            or not link_up.is_set()
            or until not in ("audio_end", "reply")
            or (timeout is not None and not timeout > 0)
        ):
            return None  # (the general path raises for a bad argument or a closed stream)
        mid = proto.new_mid()
        chunks = proto.encode_chat(text, mid=mid, budget=transport.budget)  # validates the text first
        if len(chunks) != 1:
            return None
        (chunk,) = chunks
        paced = not transport.paces_itself
        now = _perf_ns()
        if paced and not self._pacer.ready(len(chunk), now):
            return None
        t_ns = transport.send_now(chunk)  # (StreamClosedError: nothing was sent; the caller gets it)
        if t_ns is None:
            return None
        if paced:
            self._pacer.delay_for(len(chunk), now)  # its slot (free: ready() said so)
        if timeout is None:
            timeout = default_reply_timeout(text)
        message = _Message(mid, text, intent, chunks, None, timeout, handoff=handoff)
        self._register(message, until, now)
        self._conv.begin_sending(mid)
        self._chunk_went_out(message, 0, t_ns)
        self._messages_sent += 1
        self._reschedule()
        return message

    def _give_up(self, mid: str) -> None:
        """The blocked caller of message ``mid`` stopped waiting: it ends (marked so in the recorder)."""
        if mid in self._messages:
            self._handle(self._conv.cancel(mid, _perf_ns()))

    async def _command(
        self, data: bytes, cmd: str, timeout: float | None, *, new_mode: int | None = None, ordered: bool
    ) -> Ack:
        self._check_usable()
        assert self._queue is not None
        encoded = proto.decode(data)  # the encoder chose the mid
        assert isinstance(encoded, proto.Command)
        wait = timeout if timeout is not None else self._ack_timeout
        if not wait > 0:
            raise ValidationError("timeout", f"must be positive, got {timeout!r}", allowed="> 0 seconds or None")
        future: asyncio.Future[Ack] = asyncio.get_running_loop().create_future()
        command = _Command(encoded.mid, cmd, data, future, wait, dict(encoded.data or {}))
        if ordered:
            self._queue.put_nowait(command)
        else:
            await self._send_command(command)
        ack = await future  # the machine ends every sent command: ack, or no ack by its deadline
        if ack.acknowledged and not ack.ok:
            raise error_for_code(ack.code if ack.code is not None else 0, ack.msg, cmd)
        if new_mode is not None:
            self.mode = new_mode
        return ack

    def _register(self, message: _Message, until: str, now: int) -> None:
        """Hand ``message`` to the machine and the transcript before its first chunk goes out (both send paths)."""
        self._conv.add_message(
            message.mid,
            message.text,
            chunks=len(message.chunks),
            now=now,
            timeout_ns=int(message.timeout * _NS),
            until=until,
            echo=message.intent != "ask",  # mode 1 (say) echoes the text; mode 2 (ask) answers it
        )
        self._messages[message.mid] = message
        self.transcript.append(TranscriptEntry("you", message.text, message.mid, time.time(), done=True))

    def _chunk_went_out(self, message: _Message, idx: int, t_ns: int) -> None:
        """Chunk ``idx`` of ``message`` left at ``t_ns`` (the transport's clock): record it and tell the machine."""
        clock = self._transport.clock
        chunk = message.chunks[idx]
        last = idx == len(message.chunks) - 1
        data = {"idx": idx, "fin": last, "bytes": len(chunk), "intent": message.intent,
                "text_chars": len(message.text) if idx == 0 else 0}  # fmt: skip
        self.recorder.record_fields(EventKind.CHAT_SENT, t_ns, clock, self.session_id, message.mid, data)
        # The machine's clock is the kernel's: a browser transport's stamp stays in the recorder only.
        self._conv.chunk_sent(message.mid, t_ns if clock == "kernel" else _perf_ns(), t_ns)

    async def _send_loop(self) -> None:
        assert self._queue is not None and self._send_lock is not None
        while True:
            job = await self._queue.get()
            async with self._send_lock:  # one sender at a time: the queue's order is the wire's order
                if isinstance(job, _Command):
                    await self._send_command(job)
                else:
                    await self._send_message(job)

    async def _send_message(self, job: _Message) -> None:
        if (job.future is not None and job.future.done()) or job.mid not in self._messages:
            return  # cancelled by its caller (or out of time) before its turn
        conv = self._conv
        conv.begin_sending(job.mid)
        sent = 0
        try:
            for chunk in job.chunks:
                if not self._transport.paces_itself:
                    delay_ns = self._pacer.delay_for(len(chunk), _perf_ns())
                    if delay_ns > 0:
                        self._reschedule()  # the message's deadline runs while it waits for its slot
                        await asyncio.sleep(delay_ns / 1e9)
                if conv.is_interrupted(job.mid):
                    break  # interrupt() came while pacing: the rest of this message is not sent
                t_ns = await self._send_when_linked(chunk, retry=sent == 0)
                self._chunk_went_out(job, sent, t_ns)
                sent += 1
        except StreamClosedError as exc:
            job.error = exc
            self._handle(conv.stop_sending(job.mid, _perf_ns(), str(exc)))
            return
        self._messages_sent += 1
        if sent < len(job.chunks):
            self._handle(conv.stop_sending(job.mid, _perf_ns(), "interrupted before it was fully sent"))
        self._reschedule()

    async def _send_when_linked(self, data: bytes, *, retry: bool) -> int:
        """Send ``data``; while a reconnect is under way, wait for it, and resend a message that provably did not
        go out (``retry``: nothing of it was sent yet). Half a chat message is never resent."""
        link_up = self._link_up
        assert link_up is not None
        while True:
            if self._reconnect is not None and not link_up.is_set():
                try:
                    await asyncio.wait_for(link_up.wait(), self._connect_timeout * 3)
                except asyncio.TimeoutError:
                    raise StreamClosedError("the stream did not reconnect in time") from None
            try:
                return await self._transport.send(data)
            except StreamClosedError:
                if not (retry and self._reconnect is not None and self._state == "open"):
                    raise
                link_up.clear()  # the receive loop notices the drop and reconnects

    async def _send_command(self, command: _Command) -> None:
        await self._pace(len(command.data))
        try:
            t_ns = await self._send_when_linked(command.data, retry=True)
        except StreamClosedError as exc:
            if not command.future.done():
                command.future.set_exception(exc)
            return
        self._commands[command.mid] = command
        self._record(
            EventKind.COMMAND_SENT,
            t_ns=t_ns,
            mid=command.mid,
            cmd=command.cmd,
            bytes=len(command.data),
            params=_jsonable(command.params),
        )
        now = t_ns if self._transport.clock == "kernel" else _perf_ns()
        self._handle(self._conv.command_sent(command.mid, command.cmd, now, int(command.timeout * _NS), t_ns))
        self._reschedule()

    async def _pace(self, nbytes: int) -> None:
        if self._transport.paces_itself:
            return
        delay_ns = self._pacer.delay_for(nbytes, _perf_ns())
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / 1e9)

    # ------------------------------------------------------------------ receiving (I/O loop only)

    async def _receive_loop(self) -> None:
        try:
            while True:
                conv = self._conv
                transport = self._transport
                kernel = transport.clock == "kernel"
                # Frames handed over from the transport's read callback skip two task wake-ups per frame; those it
                # cannot push (and the end of the channel) still come through frames().
                transport.set_receiver(self._on_pushed)
                async for frame in transport.frames():
                    t_ns = frame.t_ns
                    self._handle(conv.feed(frame.data, t_ns if kernel else _perf_ns(), t_ns))
                    self._reschedule()
                transport.set_receiver(None)
                if self._state != "open":
                    return
                reason = self._transport.close_reason or "the connection dropped"
                if not await self._try_reconnect(reason):
                    self._close_reason = reason
                    self._handle(self._conv.connection_lost(reason, _perf_ns()))
                    # Kept in an attribute: the loop holds only weak references to tasks.
                    self._closing = asyncio.get_running_loop().create_task(self._close(reason, close_session=False))
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a broken transport: surface it to every waiter and to the user
            await self._fail(exc)

    def _on_pushed(self, frame: Frame) -> None:
        if self._failure is not None:
            return
        try:
            t_ns = frame.t_ns
            now = t_ns if frame.clock == "kernel" else _perf_ns()
            self._handle(self._conv.feed(frame.data, now, t_ns))
            self._reschedule()
        except Exception as exc:  # a bug: it must not reach the transport's read callback, but the user
            self._failure = exc
            self._transport.set_receiver(None)
            self._closing = asyncio.get_running_loop().create_task(self._fail(exc))

    async def _fail(self, exc: Exception) -> None:
        self._failure = exc
        _log.error("akool_lab: the receive loop of %r failed", self, exc_info=exc)
        self._record(EventKind.ERROR, where="receive", type=type(exc).__name__, message=str(exc))
        self._fail_pending(StreamError(f"the stream failed: {exc!r}"))
        self._emit("error", exc)
        self._close_reason = f"failed: {exc!r}"
        self._set_closed()
        current = asyncio.current_task()
        for task in self._tasks:
            if task is not current:
                task.cancel()  # nothing will be sent or received any more
        with contextlib.suppress(Exception):
            await self._transport.close()

    async def _try_reconnect(self, reason: str) -> bool:
        if self._reconnect is None:
            return False
        assert self._link_up is not None
        self._link_up.clear()
        self._record(EventKind.DISCONNECTED, reason=reason, reconnecting=True)
        self._handle(self._conv.connection_lost(f"the connection dropped ({reason}) during the reply", _perf_ns()))
        for attempt in range(1, 4):
            try:
                transport = await self._reconnect()
                await transport.connect(self._connect_timeout)
            except AkoolLabError as exc:
                _log.warning("akool_lab: reconnect attempt %d failed: %s", attempt, exc)
                await asyncio.sleep(0.2 * attempt)
                continue
            self._transport = transport
            self._record(EventKind.CONNECTED, transport=transport.describe(), attempt=attempt)
            self._link_up.set()
            return True
        return False

    # ------------------------------------------------------------------ the machine's deadlines

    def _reschedule(self) -> None:
        """Arm the one timer for the machine's next deadline (never polling). A timer already set for an earlier
        time is kept: when it fires, :meth:`_on_timer` re-arms it for whatever is due next."""
        deadline = self._conv.next_deadline()
        if deadline is None or self._state in ("closing", "closed"):
            return
        if self._timer is not None:
            assert self._timer_at is not None
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        delay = max(0, deadline - _perf_ns()) / 1e9
        self._timer = asyncio.get_running_loop().call_later(delay, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        now = _perf_ns()
        deadline = self._conv.next_deadline()
        if deadline is not None and deadline <= now:
            self._handle(self._conv.expire(now))
        self._reschedule()

    def _fail_pending(self, exc: BaseException) -> None:
        """The stream is going away: every message and command ends, with ``exc`` for those not under way."""
        now = _perf_ns()
        self._handle(self._conv.connection_lost(str(exc), now))
        for message in self._messages.values():
            message.error = message.error or exc
        for command in self._commands.values():
            command.error = command.error or exc
        self._handle(self._conv.close(str(exc), now))
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if job.future is not None and not job.future.done():
                    job.future.set_exception(exc)

    # ------------------------------------------------------------------ the machine's events

    def _handle(self, events: list[proto.ConversationEvent]) -> None:
        handlers = self._handlers
        for event in events:
            kind = type(event)
            # The events of every reply first, without the table (this runs for every frame).
            if kind is proto.AudioEvent:
                self._on_audio(event)  # type: ignore[arg-type]
            elif kind is proto.ReplyPiece:
                self._on_piece(event)  # type: ignore[arg-type]
            else:
                handlers[kind](event)

    def _on_unmatched_ack(self, event: proto.UnmatchedAck) -> None:
        ack = event.ack
        self._record(
            EventKind.ACK,
            t_ns=event.t_ns,
            mid=ack.mid,
            cmd=ack.cmd,
            code=ack.code,
            msg=ack.msg,
            matched=False,
            reason=event.reason,
        )

    def _on_other_event(self, event: proto.OtherEvent) -> None:
        payload = {k: v for k, v in event.pld.items() if k != "event"}
        self._record(EventKind.SERVER_EVENT, t_ns=event.t_ns, mid=event.mid, event=event.name, **_jsonable(payload))

    def _on_ignored(self, event: proto.Ignored) -> None:
        message = event.message
        if message is None:  # bytes that did not decode: an error worth seeing, not a fatal one
            exc = ProtocolError(event.reason, event.data)
            self._record(EventKind.ERROR, t_ns=event.t_ns, where="decode", type="ProtocolError", message=str(exc))
            self._emit("error", exc)
            return
        # Other ignored frames (duplicates, echoes, other versions, unknown types) change nothing, as with the
        # official clients; they are recorded with the reason, so that a dialect nobody expected shows up.
        mid = getattr(message, "mid", None)
        self._record(
            EventKind.SERVER_EVENT,
            t_ns=event.t_ns,
            mid=mid if isinstance(mid, str) else None,
            event="ignored",
            reason=event.reason,
            message_type=type(message).__name__,
        )

    def _entry(self, key: str) -> TranscriptEntry:
        entry = self._entries.get(key)
        if entry is None:
            entry = self._entries[key] = TranscriptEntry("avatar", "", key, time.time())
            self.transcript.append(entry)
        return entry

    # The handlers of the events every reply brings (a chunk, two audio events, its end) record straight into the
    # recorder (what _record does, one call less) and call _emit only when someone listens: they run for every frame.

    def _on_piece(self, piece: proto.ReplyPiece) -> None:
        owner = piece.owner
        key = owner or piece.reply_mid
        text = piece.text
        self.recorder.record_fields(
            EventKind.CHAT_RECV,
            piece.t_ns,
            self._transport.clock,
            self.session_id,
            key,
            {
                "reply_mid": piece.reply_mid,
                "idx": piece.idx,
                "fin": piece.fin,
                "sender": "bot",
                "text_chars": len(text),
                "attributed": owner is not None,
            },
        )
        entry = self._entry(key)
        entry.text += text
        message = self._messages.get(owner) if owner is not None else None
        if message is not None and message.on_piece is not None and text:
            message.on_piece(text)
        if self._listeners["chat"]:
            self._emit("chat", entry)

    def _on_audio(self, event: proto.AudioEvent) -> None:
        name = event.name
        owner = event.owner
        self.recorder.record_fields(
            EventKind.AUDIO_START if name == "audio_start" else EventKind.AUDIO_END,
            event.t_ns,
            self._transport.clock,
            self.session_id,
            owner,
            {"attributed": owner is not None},
        )
        if self._listeners[name]:
            self._emit(name, owner)

    def _on_user_speech(self, speech: proto.UserSpeech) -> None:
        if speech.piece or speech.idx is not None:
            self._record(
                EventKind.CHAT_RECV,
                t_ns=speech.t_ns,
                mid=speech.mid,
                idx=speech.idx,
                fin=speech.fin,
                sender="user",
                text_chars=len(speech.piece),
                attributed=False,
            )
        entry = self._users.get(speech.mid)
        if entry is None:
            entry = self._users[speech.mid] = TranscriptEntry("user", "", speech.mid, time.time())
            self.transcript.append(entry)
        entry.text = speech.text
        if speech.done:
            entry.done = True
            del self._users[speech.mid]
        self._emit("user_speech", entry)

    def _on_ack(self, event: proto.AckMatched) -> None:
        command = self._commands.pop(event.mid, None)
        self._record(
            EventKind.ACK,
            t_ns=event.t_ns,
            mid=event.mid,
            cmd=event.cmd,
            code=event.code,
            msg=event.msg,
            matched=True,
            matched_by=event.matched_by,
        )
        ack = Ack(event.mid, event.cmd, event.code, event.msg, (event.t_ns - event.sent_ns) / 1e6)
        if command is not None and not command.future.done():
            command.future.set_result(ack)
        self._emit("ack", ack)

    def _on_unacked(self, event: proto.CommandUnacked) -> None:
        command = self._commands.pop(event.mid, None)
        if command is None or command.future.done():
            return
        if command.error is not None:
            command.future.set_exception(command.error)
        elif event.fatal:
            self._record(EventKind.ACK_MISSING, mid=event.mid, cmd=event.cmd, timeout_s=command.timeout)
            command.future.set_exception(TimeoutError(f"the ack for {event.cmd} (mid {event.mid})", command.timeout))
        else:
            why = "the avatar stopped speaking" if event.reason == "audio_end" else "its timeout passed"
            self._record(EventKind.ACK_MISSING, mid=event.mid, cmd=event.cmd, timeout_s=command.timeout, fatal=False)
            ack = Ack(event.mid, event.cmd, None, f"not acknowledged; complete because {why}", None, False)
            command.future.set_result(ack)
            self._emit("ack", ack)

    def _on_server_error(self, event: proto.ServerError) -> None:
        payload = {k: v for k, v in event.pld.items() if k != "event"}
        self._record(EventKind.SERVER_EVENT, t_ns=event.t_ns, mid=None, event="error", **_jsonable(payload))
        exc = error_for_code(event.code, event.msg, "stream") if event.code is not None else StreamError(event.msg)
        if event.rejected is not None and event.rejected in self._messages:
            # The avatar refused this message (over budget, malformed): it fails at once with this error.
            self._messages[event.rejected].error = exc
        self._emit("error", exc)

    def _on_reply_ended(self, event: proto.ReplyEnded) -> None:
        self._on_reply(event.reply)

    def _on_reply(self, result: proto.ConversationReply) -> None:
        owner = result.owner
        key = owner or result.reply_mid
        entry = self._entries.pop(key, None) if key is not None else None
        message = self._messages.pop(owner, None) if owner is not None else None
        if message is None:
            if owner is None:  # unsolicited (a greeting, an answer to the user's speech)
                self._record(
                    EventKind.REPLY_DONE,
                    mid=result.reply_mid,
                    reply_mid=result.reply_mid,
                    complete=result.complete,
                    reason=result.reason,
                )
            if entry is not None:
                entry.done = True
            return
        timings = derive_timings(
            clock=self._transport.clock,
            sent_ns=result.sent_ns,
            recv_ns=result.recv_ns,
            final_ns=result.final_ns,
            audio_start_ns=result.audio_start_ns,
            audio_end_ns=result.audio_end_ns,
        )
        # (Positional, in field order: one is built for every reply, on the way to the waiting caller.)
        reply = Reply(
            message.mid,
            result.reply_mid,
            result.text,
            message.text,  # prompt
            message.intent,
            timings,
            result.complete,
            result.interrupted,
            result.reason,
            result.missing,
            result.echoed,
            result.text_end,  # completed_on
        )
        if entry is not None:
            entry.text = result.text
            entry.reply = reply
            entry.done = True
        if result.timed_out:
            self._record(EventKind.ERROR, mid=message.mid, where="reply", type="TimeoutError", message="timeout")
        self.recorder.record_fields(
            EventKind.REPLY_DONE,
            _perf_ns(),
            "kernel",  # (as _record stamps it: on this thread's clock)
            self.session_id,
            message.mid,
            {
                "reply_mid": reply.reply_mid,
                "complete": reply.complete,
                "interrupted": reply.interrupted,
                "reason": reply.reason,
                "chunks": len(result.recv_ns),
                "echoed": reply.echoed,
                "completed_on": reply.completed_on,
            },
        )
        if message.on_piece is not None:
            message.on_piece(None)
            message.on_piece = None
        future = message.future
        handoff = message.handoff
        if future.done() if future is not None else handoff is None or handoff.done():
            return  # its caller gave up
        error: BaseException | None = None
        if message.error is not None:
            error = message.error
        elif result.timed_out and not reply.text:
            error = TimeoutError(f"the reply to {message.intent}({message.mid})", message.timeout)
        elif not (reply.complete or reply.interrupted):
            error = ReplyIncompleteError(f"the reply to {message.mid} is incomplete: {reply.reason}", reply)
        if handoff is not None:
            # A blocked caller gets the outcome now, not after the coroutines return it (a loop iteration later):
            # first, so that its thread wakes up while this one finishes.
            if error is None:
                handoff.set_result(reply)
            else:
                handoff.set_exception(error)
        if future is not None:
            if error is None:
                future.set_result(reply)
            else:
                future.set_exception(error)
        if error is None or isinstance(error, ReplyIncompleteError):
            self._emit("reply", reply)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in payload.items():
        out[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)
    return out
