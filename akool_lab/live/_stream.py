"""``AvatarStream``: the async core of a live session (say, ask, stream, set_params, interrupt, events).

Everything here runs on the process's one I/O loop thread (:mod:`akool_lab.live._loop`): the state below is only
ever touched from that thread, so it needs no locks. Public coroutines may be awaited from any event loop (a
notebook's, an async program's); they hop onto the I/O loop with :meth:`IOLoop.wrap`.

How a reply is matched to the message that caused it: the avatar may answer with a ``mid`` of its own, so the
first chunk of an unknown reply ``mid`` belongs to the oldest sent message still waiting for a reply (the avatar
answers in order). ``audio_start``/``audio_end`` carry no id: they belong to the oldest reply that has not
started / not finished speaking.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
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
from akool_lab.live._loop import IOLoop, io_loop
from akool_lab.live._types import Ack, Reply, TranscriptEntry, derive_timings
from akool_lab.transport import Transport

__all__ = ["EVENTS", "AvatarStream"]

_log = logging.getLogger("akool_lab.live")

#: The names accepted by :meth:`AvatarStream.on`.
EVENTS = ("chat", "reply", "user_speech", "audio_start", "audio_end", "ack", "error", "closed")

# How often the housekeeping task looks for replies without ``fin``, missing acks and silent avatars.
_TICK_S = 0.05
# After a reply's text is complete, how long to wait for an ``audio_start`` before giving up on audio events.
_AUDIO_START_GRACE_S = 10.0


@dataclass(eq=False, repr=False)  # cheap default repr: deque.remove() formats its argument
class _Message:
    """A message we sent (say/ask/llm) and everything that happened to it, in raw timestamps."""

    mid: str
    text: str
    intent: str
    chunks: list[bytes]
    until: str  # "audio_end" or "reply"
    future: asyncio.Future[Reply]
    timeout: float
    deadline: float  # loop.time() by which it must be done
    sent_ns: list[int] = field(default_factory=list)
    slot: _Slot | None = None
    on_piece: Callable[[str | None], None] | None = None  # for stream()
    interrupted: bool = False  # an interrupt arrived while its chunks were still being sent


@dataclass(eq=False, repr=False)  # cheap default repr: deque.remove() formats its argument
class _Slot:
    """One reply of the avatar (owned by a message we sent, or unsolicited, e.g. after user speech)."""

    reply_mid: str
    owner: _Message | None
    entry: TranscriptEntry
    recv_ns: list[int] = field(default_factory=list)
    seen_idx: set[int] = field(default_factory=set)
    final_ns: int | None = None
    result: proto.ReassembledReply | None = None
    audio_start_ns: int | None = None
    audio_end_ns: int | None = None
    interrupted: bool = False
    text_done_at: float | None = None  # loop.time() when the text completed
    audio_end_at: float | None = None  # loop.time() when audio_end arrived
    finished: bool = False


@dataclass(eq=False, repr=False)  # cheap default repr: deque.remove() formats its argument
class _Command:
    mid: str
    cmd: str
    data: bytes
    future: asyncio.Future[Ack]
    params: dict[str, Any] = field(default_factory=dict)  # what a set-params asked for (recorded with it)


class AvatarStream:
    """A live conversation with an avatar over one data-channel :class:`~akool_lab.transport.Transport`.

    Open one with ``await async_client.connect(session)`` (or :meth:`open`). Every method may be awaited from any
    event loop; the work runs on the I/O loop thread.

    >>> async with await client.connect(session) as live:       # doctest: +SKIP
    ...     reply = await live.say("Hello!")                     # mode 1: the avatar says exactly this
    ...     print(reply.timings.ttfr_ms, reply.timings.speak_ms)
    ...     answer = await live.ask("What can you do?")          # mode 2: the avatar answers
    ...     ack = await live.set_params(lang="fr", vparams={"speed": 1.1})

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
        self._reassembler = proto.Reassembler(int(fin_timeout * 1e9))
        self._acks = proto.AckTracker()
        self._ack_waiters: dict[str, _Command] = {}
        self._queue: asyncio.Queue[_Message | _Command] | None = None
        self._order_lock: asyncio.Lock | None = None
        self._link_up: asyncio.Event | None = None
        self._messages: dict[str, _Message] = {}
        self._awaiting: deque[_Message] = deque()
        self._owners: dict[str, _Slot] = {}
        self._slots: deque[_Slot] = deque()
        self._tasks: list[asyncio.Task[None]] = []
        self._state = "new"  # new -> open -> closing -> closed
        self._failure: BaseException | None = None
        self._close_reason: str | None = None
        self._messages_sent = 0
        self._sending: _Message | None = None  # the message whose chunks are being sent
        self._closing: asyncio.Task[None] | None = None  # closing after the server ended the stream
        self._llm: Callable[[str], Any] | None = None

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
        self._link_up = asyncio.Event()
        self._record(EventKind.CONNECT_START, transport=self._transport.describe())
        try:
            await self._transport.connect(self._connect_timeout)
        except BaseException:
            self._state = "closed"
            raise
        self._record(EventKind.CONNECTED, transport=self._transport.describe())
        self._state = "open"
        self._link_up.set()
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._receive_loop(), name="akool-lab-receive"),
            loop.create_task(self._send_loop(), name="akool-lab-send"),
            loop.create_task(self._housekeeping(), name="akool-lab-housekeeping"),
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
        self._state = "closed"
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
        for callback in list(self._listeners[event]):
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
        clock = clock_override or (self._transport.clock if t_ns is not None else "kernel")
        self.recorder.record(kind, t_ns=t_ns, clock=clock, session_id=self.session_id, mid=mid, **data)

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
            while self._state != "closed":
                await asyncio.sleep(_TICK_S)

        try:
            await asyncio.wait_for(self._io.wrap(waiter()), timeout)
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
    ) -> Reply:
        if until not in ("audio_end", "reply"):
            raise ValidationError("until", f"got {until!r}", allowed="'audio_end' or 'reply'")
        if timeout is not None and not timeout > 0:
            raise ValidationError("timeout", f"must be positive, got {timeout!r}", allowed="> 0 seconds or None")
        mid = proto.new_mid()
        chunks = proto.encode_chat(text, mid=mid, budget=self._transport.budget)  # validates the text first
        self._check_usable()
        if timeout is None:
            # Generous by default: speech takes time (about 0.5 s per word at the slowest speed).
            timeout = 30.0 + 0.5 * len(text.split())
        wanted_mode = 2 if intent == "ask" else 1
        assert self._order_lock is not None and self._queue is not None
        loop = asyncio.get_running_loop()
        async with self._order_lock:  # FIFO: concurrent calls keep their order, mode switches included
            if self.mode != wanted_mode:
                await self._command(
                    proto.encode_set_params(mode=wanted_mode), "set-params", None, new_mode=wanted_mode, ordered=True
                )
            message = _Message(
                mid=mid,
                text=text,
                intent=intent,
                chunks=chunks,
                until=until,
                future=loop.create_future(),
                timeout=timeout,
                deadline=loop.time() + timeout,
                on_piece=on_piece,
            )
            self._messages[mid] = message
            self.transcript.append(TranscriptEntry("you", text, mid, time.time(), done=True))
            self._queue.put_nowait(message)
        try:
            return await message.future
        except asyncio.CancelledError:
            # The caller gave up (timeout of a sync call, Ctrl+C), which also cancelled the message's future: it is
            # not sent if it has not been yet, and it stays accounted for in the recorder, marked.
            if message.mid in self._messages:
                self._finish_message(message, message.slot, reason="the caller cancelled the wait")
            raise

    async def _command(
        self, data: bytes, cmd: str, timeout: float | None, *, new_mode: int | None = None, ordered: bool
    ) -> Ack:
        self._check_usable()
        assert self._queue is not None
        encoded = proto.decode(data)  # the encoder chose the mid
        assert isinstance(encoded, proto.Command)
        mid = encoded.mid
        loop = asyncio.get_running_loop()
        command = _Command(mid, cmd, data, loop.create_future(), dict(encoded.data or {}))
        if ordered:
            self._queue.put_nowait(command)
        else:
            await self._send_command(command)
        wait = timeout if timeout is not None else self._ack_timeout
        try:
            ack = await asyncio.wait_for(asyncio.shield(command.future), wait)
        except asyncio.TimeoutError:
            self._ack_waiters.pop(mid, None)
            self._record(EventKind.ACK_MISSING, mid=mid, cmd=cmd, timeout_s=wait)
            raise TimeoutError(f"the ack for {cmd} (mid {mid})", wait) from None
        if not ack.ok:
            raise error_for_code(ack.code, ack.msg, cmd)
        if new_mode is not None:
            self.mode = new_mode
        return ack

    async def _send_loop(self) -> None:
        assert self._queue is not None
        while True:
            job = await self._queue.get()
            if isinstance(job, _Command):
                await self._send_command(job)
                continue
            if job.future.done():
                continue  # cancelled by its caller before its turn
            self._sending = job
            try:
                for chunk in job.chunks:
                    await self._pace(len(chunk))
                    if job.interrupted:
                        break  # interrupt() came while pacing: the rest of this message is not sent
                    t_ns = await self._send_when_linked(chunk, retry=not job.sent_ns)
                    job.sent_ns.append(t_ns)
                    self._record(
                        EventKind.CHAT_SENT,
                        t_ns=t_ns,
                        mid=job.mid,
                        idx=len(job.sent_ns) - 1,
                        fin=len(job.sent_ns) == len(job.chunks),
                        bytes=len(chunk),
                        intent=job.intent,
                        text_chars=len(job.text) if len(job.sent_ns) == 1 else 0,
                    )
            except StreamClosedError as exc:
                self._finish_message(job, None, reason=str(exc), error=exc)
                continue
            finally:
                self._sending = None
            self._messages_sent += 1
            if job.interrupted and len(job.sent_ns) < len(job.chunks):
                self._finish_message(job, None, reason="interrupted before it was fully sent", interrupted=True)
                continue
            self._awaiting.append(job)

    async def _send_when_linked(self, data: bytes, *, retry: bool) -> int:
        """Send ``data``; while a reconnect is under way, wait for it, and resend a message that provably did not
        go out (``retry``: nothing of it was sent yet). Half a chat message is never resent."""
        assert self._link_up is not None
        while True:
            if self._reconnect is not None and not self._link_up.is_set():
                try:
                    await asyncio.wait_for(self._link_up.wait(), self._connect_timeout * 3)
                except asyncio.TimeoutError:
                    raise StreamClosedError("the stream did not reconnect in time") from None
            try:
                return await self._transport.send(data)
            except StreamClosedError:
                if not (retry and self._reconnect is not None and self._state == "open"):
                    raise
                self._link_up.clear()  # the receive loop notices the drop and reconnects

    async def _send_command(self, command: _Command) -> None:
        await self._pace(len(command.data))
        try:
            t_ns = await self._send_when_linked(command.data, retry=True)
        except StreamClosedError as exc:
            if not command.future.done():
                command.future.set_exception(exc)
            return
        self._acks.sent(command.mid, command.cmd, t_ns)
        self._ack_waiters[command.mid] = command
        self._record(
            EventKind.COMMAND_SENT,
            t_ns=t_ns,
            mid=command.mid,
            cmd=command.cmd,
            bytes=len(command.data),
            params=_jsonable(command.params),
        )
        if command.cmd == "interrupt":
            self._mark_interrupted()

    async def _pace(self, nbytes: int) -> None:
        if self._transport.paces_itself:
            return
        delay_ns = self._pacer.delay_for(nbytes, time.perf_counter_ns())
        if delay_ns > 0:
            await asyncio.sleep(delay_ns / 1e9)

    # ------------------------------------------------------------------ receiving (I/O loop only)

    async def _receive_loop(self) -> None:
        try:
            while True:
                async for frame in self._transport.frames():
                    self._on_frame(frame.data, frame.t_ns)
                if self._state != "open":
                    return
                reason = self._transport.close_reason or "the connection dropped"
                if not await self._try_reconnect(reason):
                    self._close_reason = reason
                    self._fail_in_flight(reason)
                    # Kept in an attribute: the loop holds only weak references to tasks.
                    self._closing = asyncio.get_running_loop().create_task(self._close(reason, close_session=False))
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug or a broken transport: surface it to every waiter and to the user
            self._failure = exc
            _log.error("akool_lab: the receive loop of %r failed", self, exc_info=exc)
            self._record(EventKind.ERROR, where="receive", type=type(exc).__name__, message=str(exc))
            self._fail_pending(StreamError(f"the stream failed: {exc!r}"))
            self._emit("error", exc)
            self._state = "closed"
            self._close_reason = f"failed: {exc!r}"
            with contextlib.suppress(Exception):
                await self._transport.close()

    async def _try_reconnect(self, reason: str) -> bool:
        if self._reconnect is None:
            return False
        assert self._link_up is not None
        self._link_up.clear()
        self._record(EventKind.DISCONNECTED, reason=reason, reconnecting=True)
        self._fail_in_flight(f"the connection dropped ({reason}) during the reply")
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

    def _on_frame(self, data: bytes, t_ns: int) -> None:
        try:
            message = proto.decode(data)
        except ProtocolError as exc:
            self._record(EventKind.ERROR, t_ns=t_ns, where="decode", type="ProtocolError", message=str(exc))
            self._emit("error", exc)
            return
        if isinstance(message, proto.ChatChunk):
            self._on_chat(message, t_ns)
        elif isinstance(message, proto.Ack):
            self._on_ack(message, t_ns)
        elif isinstance(message, proto.ServerEvent):
            self._on_event(message, t_ns)
        # Unknown shapes (other versions, echoes) are ignored, as the official clients do.

    def _on_chat(self, chunk: proto.ChatChunk, t_ns: int) -> None:
        if chunk.sender == "user":
            self._on_user_speech(chunk, t_ns)
            return
        slot = self._owners.get(chunk.mid)
        if slot is None:
            # A reply whose audio started before its first text chunk already has a slot, still without a mid.
            slot = next((s for s in self._slots if not s.reply_mid), None)
            if slot is not None:
                slot.reply_mid = chunk.mid
            else:
                owner = self._messages.get(chunk.mid)
                if owner is not None and owner in self._awaiting:
                    self._awaiting.remove(owner)  # the avatar answered with our own mid
                elif owner is None and self._awaiting:
                    owner = self._awaiting.popleft()
                slot = self._new_slot(chunk.mid, owner)
            self._owners[chunk.mid] = slot
        if slot.finished or chunk.idx in slot.seen_idx:
            return  # a duplicate, or a chunk after the reply was cut short
        slot.seen_idx.add(chunk.idx)
        slot.recv_ns.append(t_ns)
        key = slot.owner.mid if slot.owner else chunk.mid
        self._record(
            EventKind.CHAT_RECV,
            t_ns=t_ns,
            mid=key,
            reply_mid=chunk.mid,
            idx=chunk.idx,
            fin=chunk.fin,
            sender="bot",
            text_chars=len(chunk.text),
            attributed=slot.owner is not None,
        )
        slot.entry.text += chunk.text
        if slot.owner is not None and slot.owner.on_piece is not None and chunk.text:
            slot.owner.on_piece(chunk.text)
        self._emit("chat", slot.entry)
        result = self._reassembler.feed(chunk, t_ns)
        if result is not None:
            self._on_reply_text(slot, result, t_ns)

    def _on_reply_text(self, slot: _Slot, result: proto.ReassembledReply, t_ns: int) -> None:
        slot.result = result
        slot.final_ns = result.last_ns if result.complete else None
        slot.entry.text = result.text  # in idx order, whatever the arrival order was
        slot.text_done_at = asyncio.get_running_loop().time()
        self._maybe_finish(slot)

    def _on_user_speech(self, chunk: proto.ChatChunk, t_ns: int) -> None:
        self._record(
            EventKind.CHAT_RECV,
            t_ns=t_ns,
            mid=chunk.mid,
            idx=chunk.idx,
            fin=chunk.fin,
            sender="user",
            text_chars=len(chunk.text),
            attributed=False,
        )
        entry = next((e for e in reversed(self.transcript) if e.role == "user" and e.mid == chunk.mid), None)
        if entry is None:
            entry = TranscriptEntry("user", "", chunk.mid, time.time())
            self.transcript.append(entry)
        entry.text += chunk.text
        result = self._reassembler.feed(chunk, t_ns)
        if result is not None:
            entry.text = result.text
            entry.done = True
        self._emit("user_speech", entry)

    def _on_ack(self, ack: proto.Ack, t_ns: int) -> None:
        result = self._acks.ack(ack, t_ns)
        command = self._ack_waiters.pop(ack.mid, None)
        if result is None or command is None:
            # An ack for nothing we wait for (a duplicate, or one that came after its timeout): kept as a record.
            self._record(EventKind.ACK, t_ns=t_ns, mid=ack.mid, cmd=ack.cmd, code=ack.code, msg=ack.msg, matched=False)
            return
        out = Ack(ack.mid, command.cmd, ack.code, ack.msg, result.ack_ns / 1e6)
        self._record(EventKind.ACK, t_ns=t_ns, mid=ack.mid, cmd=command.cmd, code=ack.code, msg=ack.msg, matched=True)
        if not command.future.done():
            command.future.set_result(out)
        self._emit("ack", out)

    def _on_event(self, event: proto.ServerEvent, t_ns: int) -> None:
        if event.name == "audio_start":
            slot = next((s for s in self._slots if s.audio_start_ns is None), None)
            if slot is None and self._awaiting:
                # Speech can start before the first text chunk arrives: open the slot for the oldest message.
                slot = self._new_slot("", self._awaiting.popleft())
            key = slot.owner.mid if slot and slot.owner else (slot.reply_mid if slot else event.mid)
            self._record(EventKind.AUDIO_START, t_ns=t_ns, mid=key, attributed=slot is not None)
            if slot is not None:
                slot.audio_start_ns = t_ns
            self._emit("audio_start", key)
        elif event.name == "audio_end":
            slot = next((s for s in self._slots if s.audio_start_ns is not None and s.audio_end_ns is None), None)
            key = slot.owner.mid if slot and slot.owner else (slot.reply_mid if slot else event.mid)
            self._record(EventKind.AUDIO_END, t_ns=t_ns, mid=key, attributed=slot is not None)
            if slot is not None:
                slot.audio_end_ns = t_ns
                slot.audio_end_at = asyncio.get_running_loop().time()
                self._maybe_finish(slot)
            self._emit("audio_end", key)
        else:
            payload = {k: v for k, v in event.pld.items() if k != "event"}
            self._record(EventKind.SERVER_EVENT, t_ns=t_ns, mid=event.mid, event=event.name, **_jsonable(payload))
            if event.name == "error":
                code = payload.get("code")
                message = str(payload.get("msg", "the avatar reported an error"))
                exc = error_for_code(int(code), message, "stream") if isinstance(code, int) else StreamError(message)
                rejected = self._messages.get(str(payload.get("ref_mid")))
                if rejected is not None:
                    # The avatar refused this message (over budget, malformed): no reply will come for it.
                    with contextlib.suppress(ValueError):
                        self._awaiting.remove(rejected)
                    self._finish_message(rejected, rejected.slot, reason=f"rejected: {message}", error=exc)
                self._emit("error", exc)

    def _new_slot(self, reply_mid: str, owner: _Message | None) -> _Slot:
        entry = TranscriptEntry("avatar", "", owner.mid if owner else reply_mid, time.time())
        slot = _Slot(reply_mid, owner, entry)
        if owner is not None:
            owner.slot = slot
        self._slots.append(slot)
        self.transcript.append(entry)
        return slot

    # ------------------------------------------------------------------ completion

    def _mark_interrupted(self) -> None:
        if self._sending is not None:
            self._sending.interrupted = True
        for slot in self._slots:
            if slot.finished:
                continue
            slot.interrupted = True
            if slot.result is None and slot.reply_mid:
                result = self._reassembler.flush(slot.reply_mid)
                slot.result = result
                slot.text_done_at = asyncio.get_running_loop().time()
            if slot.audio_start_ns is None:
                self._maybe_finish(slot, force=True)

    def _maybe_finish(self, slot: _Slot, *, force: bool = False) -> None:
        if slot.finished:
            return
        text_done = slot.result is not None or slot.interrupted
        waits_audio = slot.owner is None or slot.owner.until == "audio_end"
        audio_done = slot.audio_end_ns is not None or not waits_audio
        if not force and not (text_done and audio_done):
            return
        slot.finished = True
        slot.entry.done = True
        with contextlib.suppress(ValueError):
            self._slots.remove(slot)
        result = slot.result
        complete = result is not None and result.complete and not slot.interrupted
        reason = None
        if slot.interrupted:
            reason = "interrupted"
        elif result is None:
            reason = "no reply text arrived"
        elif not result.complete:
            reason = result.reason or "incomplete"
        if slot.owner is not None:
            self._finish_message(slot.owner, slot, reason=reason)
        else:
            self._record(
                EventKind.REPLY_DONE, mid=slot.reply_mid, reply_mid=slot.reply_mid, complete=complete, reason=reason
            )

    def _finish_message(
        self,
        message: _Message,
        slot: _Slot | None,
        *,
        reason: str | None,
        error: BaseException | None = None,
        interrupted: bool = False,
        timed_out: bool = False,
    ) -> None:
        if self._messages.pop(message.mid, None) is None:
            return  # finished already (e.g. its caller gave up, then its reply ended): one record per message
        # A message that was sent stays in self._awaiting even when its caller stops waiting (timeout, cancel):
        # the avatar still owes it a reply, and that reply must not be taken for the next message's.
        if slot is None:
            slot = message.slot
        result = slot.result if slot else None
        timings = derive_timings(
            clock=self._transport.clock,
            sent_ns=message.sent_ns,
            recv_ns=slot.recv_ns if slot else [],
            final_ns=slot.final_ns if slot else None,
            audio_start_ns=slot.audio_start_ns if slot else None,
            audio_end_ns=slot.audio_end_ns if slot else None,
        )
        interrupted = interrupted or bool(slot and slot.interrupted)
        complete = reason is None and result is not None and result.complete
        reply = Reply(
            mid=message.mid,
            reply_mid=(slot.reply_mid or None) if slot else None,
            text=(result.text if result else (slot.entry.text if slot else "")),
            prompt=message.text,
            intent=message.intent,
            timings=timings,
            complete=complete,
            interrupted=interrupted,
            reason=reason,
            missing=result.missing if result else (),
        )
        if slot is not None:
            slot.entry.reply = reply
            slot.entry.done = True
        self._record(
            EventKind.REPLY_DONE,
            mid=message.mid,
            reply_mid=reply.reply_mid,
            complete=complete,
            interrupted=interrupted,
            reason=reason,
            chunks=len(slot.recv_ns) if slot else 0,
        )
        if message.on_piece is not None:
            message.on_piece(None)
            message.on_piece = None
        if message.future.done():
            return
        if timed_out and not reply.text:
            message.future.set_exception(TimeoutError(f"the reply to {message.intent}({message.mid})", message.timeout))
        elif error is not None:
            message.future.set_exception(error)
        elif complete or interrupted:
            message.future.set_result(reply)
            self._emit("reply", reply)
        else:
            message.future.set_exception(
                ReplyIncompleteError(f"the reply to {message.mid} is incomplete: {reason}", reply)
            )
            self._emit("reply", reply)

    def _fail_in_flight(self, reason: str) -> None:
        """The connection dropped: every reply in progress is incomplete (what arrived is kept)."""
        for slot in list(self._slots):
            if slot.result is None and slot.reply_mid:
                slot.result = self._reassembler.flush(slot.reply_mid)
            if slot.owner is not None:
                self._finish_message(slot.owner, slot, reason=reason)
            slot.finished = True
        self._slots.clear()
        for message in list(self._awaiting):
            self._finish_message(message, None, reason=reason)
        self._awaiting.clear()  # no reply owed over a dropped connection

    def _fail_pending(self, exc: BaseException) -> None:
        self._fail_in_flight(str(exc))
        for message in list(self._messages.values()):
            self._finish_message(message, None, reason=str(exc), error=exc)
        for command in list(self._ack_waiters.values()):
            if not command.future.done():
                command.future.set_exception(exc)
        self._ack_waiters.clear()
        if self._queue is not None:
            while not self._queue.empty():
                job = self._queue.get_nowait()
                if not job.future.done():
                    job.future.set_exception(exc)

    async def _housekeeping(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(_TICK_S)
            now_ns = time.perf_counter_ns()
            for result in self._reassembler.expire(now_ns):
                slot = self._owners.get(result.mid)
                if slot is not None and not slot.finished:
                    slot.result = result
                    slot.text_done_at = loop.time()
                    self._maybe_finish(slot, force=True)
            now = loop.time()
            for slot in list(self._slots):
                # The avatar finished speaking but the text never completed (chunks lost): wait no longer than
                # the fin timeout, then report what arrived.
                if (
                    slot.result is None
                    and slot.audio_end_at is not None
                    and now - slot.audio_end_at > self._fin_timeout
                ):
                    if slot.reply_mid:
                        slot.result = self._reassembler.flush(slot.reply_mid)
                    self._maybe_finish(slot, force=True)
                    continue
                # Text complete but the avatar never said it started speaking: do not wait forever.
                if (
                    slot.audio_start_ns is None
                    and slot.text_done_at is not None
                    and now - slot.text_done_at > _AUDIO_START_GRACE_S
                ):
                    self._maybe_finish(slot, force=True)
            for message in list(self._messages.values()):
                if now > message.deadline and not message.future.done():
                    self._record(
                        EventKind.ERROR, mid=message.mid, where="reply", type="TimeoutError", message="timeout"
                    )
                    # What did arrive is kept: a partial reply comes with ReplyIncompleteError, none with TimeoutError.
                    if message.slot is not None:
                        message.slot.finished = True
                        if message.slot.result is None and message.slot.reply_mid:
                            message.slot.result = self._reassembler.flush(message.slot.reply_mid)
                        with contextlib.suppress(ValueError):
                            self._slots.remove(message.slot)
                    reason = f"timeout after {message.timeout:g} s"
                    self._finish_message(message, message.slot, reason=reason, timed_out=True)


def _jsonable(payload: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in payload.items():
        out[key] = value if isinstance(value, (str, int, float, bool, type(None), list, dict)) else repr(value)
    return out
