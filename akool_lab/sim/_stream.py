"""The data channel of one session: a WebSocket carrying v2 messages as JSON text frames, one message per frame.

What the client sends is checked against the emulated provider's budget (size and rate), chat chunks are assembled
by ``mid``, and every question becomes a reply that is *planned* (absolute deadlines drawn from the latency profile)
and then emitted on time: each deadline is handed to ``loop.call_at``, the timer callback hands the frame to the
socket itself (no hop through a queue and another task), and the send time is measured with ``time.perf_counter_ns()``
once the transport has the bytes, so that the scheduling error of every frame is known (``/_sim/stats``, the truth).
Only while the transport pushes back (a client that does not read) do frames wait, in order, for a sender task.

Replies are spoken one after another: a question that arrives while the avatar speaks waits, and the next reply is
planned when the previous one's ``audio_end`` is due, with the settings of that moment (so ``set-params`` applies to
the next reply). Bot replies carry their own ``mid`` (``r-<n>``); the truth maps each question's mid to it.

What arrives is checked against what the emulated provider enforces (:mod:`akool_lab.sim._limits`), and chunks
are joined before their text is decoded, so a surrogate pair that an official client cut between two chunks is one
character again. A frame that cannot be sent is never dropped silently: it is logged, the client gets an error event
(when the socket still works) and the stream closes with 1011.

What the avatar sends is shaped by the session's dialect (:mod:`akool_lab.sim._dialects`): chunks without ``idx``
or ``fin``, no text echoed in mode 1, acks of other shapes, a greeting at join.

The wire format is parsed and written here, independently of ``akool_lab.protocol``, so that the simulator checks
the client instead of sharing its bugs.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import json
import logging
import re
from collections import deque
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from starlette.websockets import WebSocket, WebSocketDisconnect

from akool_lab.sim._dialogue import dialogue_reply
from akool_lab.sim._limits import InboundLimiter
from akool_lab.sim._speech import STOCK_GREETING, tts_chunks
from akool_lab.sim._state import NS_PER_MS, SessionRecord, SimState, now_ns

__all__ = ["CLOSE_AUTH", "CLOSE_BUSY", "CLOSE_GONE", "StreamConnection"]

_log = logging.getLogger("akool_lab.sim")

#: Close codes when a connection is refused (as AKool's WebSocket service uses them).
CLOSE_AUTH = 4001  # wrong or missing token
CLOSE_BUSY = 4003  # another client is connected to this session
CLOSE_GONE = 4004  # unknown, ended or failed session
CLOSE_FAULT = 1011  # an injected server-side disconnect, or a frame the server could not send
#: AKool's code for a server-side failure, in the error event sent when a frame cannot be sent.
CODE_PROCESSING_ERROR = 1218
_SURROGATE = re.compile("[\ud800-\udfff]")

#: A frame is sent when it is due within this margin (a timer may fire a hair early: the loop's clock resolution).
DUE_MARGIN_NS = 30_000

#: How many unfinished chat messages (by mid) a connection keeps; beyond that the oldest is forgotten.
MAX_PENDING_MIDS = 256

_SET_PARAMS_KEYS: dict[str, tuple[type, ...]] = {
    "vid": (str,),
    "vurl": (str,),
    "lang": (str,),
    "mode": (int,),
    "bgurl": (str,),
    "vparams": (dict,),
}
_VPARAMS_KEYS: dict[str, tuple[type, ...]] = {
    "vid": (str,),
    "vurl": (str,),
    "speed": (int, float),
    "stt_language": (str,),
    "pron_map": (dict,),
    "stt_type": (str,),
    "turn_detection": (dict,),
    "elevenlabs_settings": (dict,),
    # The demo sends its create-time voice_params object as vparams; with scene_mode fast_dialogue it holds voice_id.
    "voice_id": (str,),
}
ACTIONS = frozenset({"hand_wave", "cheer", "thumbs_up", "pump_fists", "nod", "shake", "waft_left", "waft_right"})
EXPRESSIONS = frozenset({"angry", "disgust", "fear", "happiness", "sadness", "surprise", "contempt"})


def encode(message: dict[str, Any]) -> str:
    """One v2 message as the compact JSON text of a frame."""
    return json.dumps(message, ensure_ascii=False, separators=(",", ":"))


def join_utf16(parts: list[str]) -> str:
    """The text of a message's chunks, joined, with surrogate pairs decoded as the characters they are.

    AKool's official splitter cuts text by UTF-16 code units, so a character outside the BMP (an emoji) can end
    one chunk with its high surrogate and start the next with the low one; JSON carries each as a lone ``\\ud83d``
    escape. Joined, the two make one character. A surrogate that stays alone becomes U+FFFD, so the text can
    always be encoded as UTF-8 again.
    """
    whole = "".join(parts)
    if _SURROGATE.search(whole) is None:
        return whole
    return whole.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


class _Invalid(Exception):
    """A command's data is invalid; ``str()`` names the key."""


@dataclass(slots=True)
class _Item:
    """Something due at ``planned_ns``: a frame to send (encoded when planned) and/or an action to run."""

    planned_ns: int
    text: str | None = None
    on_sent: Callable[[int], None] | None = None
    action: Callable[[], None] | None = None
    cancelled: bool = False


@dataclass(slots=True)
class _Question:
    """A complete question (or text to speak), waiting for the avatar."""

    mid: str
    text: str
    arrived_ns: int
    source: str


@dataclass(slots=True)
class _Reply:
    """The reply being spoken, with its truth record."""

    mid: str
    truth: dict[str, Any]
    arrived_ns: int
    items: list[_Item] = field(default_factory=list)
    audio_start_ns: int | None = None
    done: bool = False


@dataclass(slots=True)
class _Queued:
    """A frame for the sender task; ``send`` is the ASGI send already started by hand and suspended on ``waiting``."""

    text: str
    planned_ns: int
    on_sent: Callable[[int], None] | None
    send: Coroutine[Any, Any, None] | None = None
    waiting: Any = None


async def _resume(coro: Coroutine[Any, Any, None], waiting: Any) -> None:
    """Finish a coroutine that was started by hand (``coro.send(None)``) and is suspended on what it yielded."""
    while True:
        try:
            if waiting is None:  # a bare yield (asyncio.sleep(0))
                await asyncio.sleep(0)
            else:
                # Not ``await waiting``: the coroutine already awaits that future (it is marked as awaited), so
                # wait for it to be done from the outside, then let the coroutine take its result (or exception).
                await asyncio.wait((waiting,))
        except BaseException as exc:  # cancelled: the coroutine decides
            try:
                waiting = coro.throw(exc)
            except StopIteration:
                return
        else:
            try:
                waiting = coro.send(None)
            except StopIteration:
                return


@dataclass(slots=True)
class _Assembly:
    parts: dict[int, str] = field(default_factory=dict)
    fin_idx: int | None = None


class StreamConnection:
    """The one client of a session's data channel; created by the WebSocket route after the checks pass."""

    def __init__(self, state: SimState, session: SessionRecord, websocket: WebSocket) -> None:
        self.state = state
        self.session = session
        self.ws = websocket
        self.loop = asyncio.get_running_loop()
        self._heap: list[tuple[int, int, _Item]] = []
        self._seq = itertools.count()
        self._timer: asyncio.TimerHandle | None = None
        self._timer_ns: int | None = None
        # Frames waiting for the sender task (only while the transport pushes back); None ends the task.
        self._outbox: asyncio.Queue[_Queued | None] = asyncio.Queue()
        self._backlog = 0  # frames in the outbox or being sent by the sender task
        self._stopped = False  # no more frames: the socket failed, or an injected disconnect
        self._pending: dict[str, _Assembly] = {}
        self._questions: deque[_Question] = deque()
        self._current: _Reply | None = None
        self._speaker_free_ns = 0
        self._sent = 0
        self._closing = False
        self._close_code = 1000
        self._last_words: str | None = None  # the error event sent before closing, after a failed send
        self._limiter = InboundLimiter(session.limits, now_ns())
        self._sys = itertools.count(1)
        self._acks = 0

    # --- lifecycle ---------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until the client leaves or the server ends it."""
        sender = asyncio.create_task(self._send_loop())
        session = self.session
        if session.status() == 1 and session.fails:
            self._at(session.live_ns, action=lambda: self.end("failed"))
        elif session.fails:
            self.end("failed")
        self._at(session.expires_ns, action=lambda: self.end("expired"))
        self._greet(now_ns())
        try:
            while not self._closing:
                message = await self.ws.receive()
                arrived = now_ns()
                if message["type"] == "websocket.disconnect":
                    break
                data = message.get("text")
                if data is None and message.get("bytes") is not None:
                    data = message["bytes"].decode("utf-8", "replace")
                if data is not None:
                    try:
                        self._on_frame(data, arrived)
                    except Exception as exc:  # a frame the checks missed must not end the session: report it
                        _log.exception("simulator: error while handling a frame")
                        self._emit_now(
                            self._event("error", code=1003, msg=f"invalid message ({type(exc).__name__})"), arrived
                        )
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self._closing = True
            self._cancel_all()
            if self._current is not None and not self._current.done:
                self._current.truth["disconnected"] = True
            self._outbox.put_nowait(None)
            with contextlib.suppress(BaseException):
                await sender
            if session.connection is self:
                session.connection = None

    def end(self, reason: str) -> None:
        """End the stream from the server side: ``session_ended`` (after an error event for a failure), then close."""
        if self._closing:
            return
        self._cancel_all()
        now = now_ns()
        if reason == "failed":
            self._emit_now(self._event("error", code=1218, msg="liveAvatar processing error: the session failed"), now)
        self.session.truth_events.append({"event": "session_ended", "reason": reason})
        self._emit_now(self._event("session_ended", reason=reason), now)
        self._closing = True
        self._outbox.put_nowait(None)

    def drop(self) -> None:
        """An injected server-side disconnect: close at once with code 1011, no goodbye."""
        self._closing = True
        self._stopped = True
        self._close_code = CLOSE_FAULT
        self._cancel_all()
        self.session.truth_events.append({"event": "disconnect", "after_messages": self._sent})
        self._outbox.put_nowait(None)

    # --- sending -------------------------------------------------------------------------------------------

    def _deliver(self, text: str, planned_ns: int, on_sent: Callable[[int], None] | None) -> None:
        """Hand a frame to the socket now, from the caller (a timer callback), unless frames are queued before it.

        The ASGI ``send`` does not suspend while the transport accepts data, so it is driven here by hand and
        finishes at once: no hop through the event loop's ready queue between the deadline and the socket. If it
        does suspend (the transport pushes back), the sender task finishes it and the frames after it wait in order.
        """
        if self._stopped:
            return
        if self._backlog:
            self._backlog += 1
            self._outbox.put_nowait(_Queued(text, planned_ns, on_sent))
            return
        send = self.ws.send_text(text)
        try:
            waiting = send.send(None)
        except StopIteration:
            self._handed(planned_ns, on_sent)
            return
        except Exception as exc:
            self._send_failed(exc)
            return
        self._backlog += 1
        self._outbox.put_nowait(_Queued(text, planned_ns, on_sent, send, waiting))

    def _handed(self, planned_ns: int, on_sent: Callable[[int], None] | None) -> None:
        """A frame is with the transport: record its send time (the truth) and roll the disconnect fault."""
        sent = now_ns()
        error_ms = (sent - planned_ns) / NS_PER_MS
        self.state.sched_errors_ms.append(error_ms)
        self.session.sched_errors_ms.append(error_ms)
        self.state.emits += 1
        self._sent += 1
        if on_sent is not None:
            on_sent(sent)
        plan = self.state.faults
        if (plan.disconnect_after is not None and self._sent >= plan.disconnect_after) or self.state.roll(
            f"stream.disconnect:{self.session.id}", plan.disconnect_rate
        ):
            self.drop()

    def _send_failed(self, exc: BaseException) -> None:
        """A frame could not be sent. Never silent: log it, record it in the truth, tell the client with an error
        event when the socket still works (the frame itself was at fault), and close with 1011, not 1000."""
        if self._stopped:
            return
        gone = isinstance(exc, (WebSocketDisconnect, OSError, RuntimeError))  # starlette/uvicorn: socket closed
        if gone:  # a client that leaves while the avatar speaks: ordinary, so not at warning level
            _log.info("simulator: session %s: the client is gone; a frame was not sent (%r)", self.session.id, exc)
        else:
            _log.error(
                "simulator: session %s: a frame could not be sent; ending the stream", self.session.id, exc_info=exc
            )
            msg = f"liveAvatar processing error: a frame could not be sent ({type(exc).__name__}); the stream ends"
            self._last_words = encode(self._event("error", code=CODE_PROCESSING_ERROR, msg=msg))
        self.session.truth_events.append({"event": "send_failed", "error": f"{type(exc).__name__}: {exc}"})
        self._close_code = CLOSE_FAULT
        self._closing = True
        self._stopped = True
        self._cancel_all()
        if self._current is not None and not self._current.done:
            self._current.truth["send_failed"] = True
        self._outbox.put_nowait(None)

    async def _send_loop(self) -> None:
        """The sender task: sends what had to wait (in order), and closes the socket when told to (``None``)."""
        while True:
            entry = await self._outbox.get()
            if entry is None:
                break
            try:
                if self._stopped:
                    continue
                if entry.send is None:
                    await self.ws.send_text(entry.text)
                else:
                    await _resume(entry.send, entry.waiting)
            except Exception as exc:
                self._send_failed(exc)
                continue
            finally:
                self._backlog -= 1  # only once the frame is sent: a frame planned meanwhile must not overtake it
            self._handed(entry.planned_ns, entry.on_sent)
        if self._last_words is not None:
            try:
                await self.ws.send_text(self._last_words)
            except Exception as exc:  # the socket failed too: the close code below is all the client gets
                _log.warning("simulator: session %s: the error event was not sent either (%r)", self.session.id, exc)
        try:
            await self.ws.close(self._close_code)
        except Exception as exc:  # already closed by the client: nothing left to tell it
            _log.debug("simulator: session %s: close after the end: %r", self.session.id, exc)

    # --- scheduling ----------------------------------------------------------------------------------------

    def _at(
        self,
        planned_ns: int,
        frame: dict[str, Any] | None = None,
        *,
        on_sent: Callable[[int], None] | None = None,
        action: Callable[[], None] | None = None,
        reply: _Reply | None = None,
    ) -> _Item:
        item = _Item(planned_ns, None if frame is None else encode(frame), on_sent, action)
        # The sequence number keeps items with equal deadlines in the order they were planned.
        heapq.heappush(self._heap, (planned_ns, next(self._seq), item))
        if reply is not None:
            reply.items.append(item)
        self._arm()
        return item

    def _arm(self) -> None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        if not self._heap:
            return
        due = self._heap[0][0]
        if self._timer is not None and self._timer_ns is not None and self._timer_ns <= due:
            return
        if self._timer is not None:
            self._timer.cancel()
        # Absolute deadline on the loop's clock: convert from the perf_counter deadline at this instant, so the
        # error does not accumulate over a reply (no chain of relative sleeps).
        when = self.loop.time() + (due - now_ns()) / 1e9
        self._timer_ns = due
        self._timer = self.loop.call_at(when, self._fire)

    def _fire(self) -> None:
        self._timer = None
        self._timer_ns = None
        horizon = now_ns() + DUE_MARGIN_NS
        while self._heap and self._heap[0][0] <= horizon and not self._closing:
            _, _, item = heapq.heappop(self._heap)
            if item.cancelled:
                continue
            if item.text is not None:
                self._deliver(item.text, item.planned_ns, item.on_sent)
            if item.action is not None:
                item.action()
        if not self._closing:
            self._arm()

    def _cancel_all(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = None
        self._timer_ns = None
        for _, _, item in self._heap:
            item.cancelled = True
        self._heap.clear()
        self._questions.clear()

    def _emit_now(self, frame: dict[str, Any], now: int, on_sent: Callable[[int], None] | None = None) -> None:
        if not self._closing:
            self._deliver(encode(frame), now, on_sent)

    def _event(self, name: str, mid: str | None = None, **extra: Any) -> dict[str, Any]:
        return {"v": 2, "type": "event", "mid": mid or f"sys-{next(self._sys)}", "pld": {"event": name, **extra}}

    # --- inbound frames ------------------------------------------------------------------------------------

    def _reject(self, why: str, now: int, mid: object = None) -> None:
        self.session.truth_events.append({"event": "rejected", "mid": mid, "msg": why})
        self._emit_now(self._event("error", code=1003, msg=why, ref_mid=mid if isinstance(mid, str) else None), now)

    def _on_frame(self, text: str, now: int) -> None:
        problem = self._limiter.admit(len(text.encode("utf-8")), now)
        if problem is not None:
            self._reject(f"{problem}; message dropped", now)
            return
        try:
            message = json.loads(text)
        except ValueError:
            self._reject("frame is not JSON; message dropped", now)
            return
        if not isinstance(message, dict) or message.get("v") != 2:
            self._reject("v: expected a v2 message object; message dropped", now)
            return
        kind = message.get("type")
        mid = message.get("mid")
        pld = message.get("pld")
        if not isinstance(pld, dict):
            self._reject("pld: expected an object; message dropped", now, mid)
        elif kind == "chat":
            self._on_chat(message, pld, now)
        elif kind in ("command", "cmd"):
            self._on_command(mid, pld, now)
        elif kind == "ping":
            self._emit_now({"v": 2, "type": "pong", "mid": mid, "pld": {}}, now)
        else:
            self._reject(f"type: unknown message type {kind!r}; message dropped", now, mid)

    def _on_chat(self, message: dict[str, Any], pld: dict[str, Any], now: int) -> None:
        mid = message.get("mid")
        idx = message.get("idx")
        fin = message.get("fin", pld.get("fin", True))
        text = pld.get("text")
        if not isinstance(mid, str) or not mid:
            self._reject("mid: expected a non-empty string; message dropped", now, mid)
            return
        if idx is not None and (isinstance(idx, bool) or not isinstance(idx, int) or idx < 0):
            self._reject("idx: expected a whole number >= 0; message dropped", now, mid)
            return
        if not isinstance(fin, bool):
            self._reject("fin: expected true or false; message dropped", now, mid)
            return
        if not isinstance(text, str):
            self._reject("pld.text: expected a string; message dropped", now, mid)
            return
        assembly = self._pending.get(mid)
        if assembly is None:
            if len(self._pending) >= MAX_PENDING_MIDS:
                del self._pending[next(iter(self._pending))]
            assembly = self._pending[mid] = _Assembly()
        if idx is None:  # a client that numbers nothing: its chunks count in arrival order
            idx = len(assembly.parts)
        assembly.parts.setdefault(idx, text)  # a duplicate idx keeps the first copy
        if fin:
            assembly.fin_idx = idx
        last = assembly.fin_idx
        if last is not None and all(i in assembly.parts for i in range(last + 1)):
            del self._pending[mid]
            whole = join_utf16([assembly.parts[i] for i in range(last + 1)])
            self.ask(_Question(mid, whole, now, "chat"))

    # --- replies -------------------------------------------------------------------------------------------

    def ask(self, question: _Question) -> None:
        """Queue a question (or text to speak); it is answered when the avatar is free."""
        self._questions.append(question)
        if self._current is None:
            self._start_next(max(question.arrived_ns, self._speaker_free_ns))

    def user_speech(self, text: str) -> str:
        """The avatar "hears" the user: ``from:"user"`` chunks now, and in dialogue mode an answer. Returns the mid."""
        now = now_ns()
        text = join_utf16([text])
        self.session.next_user += 1
        mid = f"u-{self.session.next_user}"
        pieces = tts_chunks(text)
        for i, piece in enumerate(pieces):
            frame = {
                "v": 2,
                "type": "chat",
                "mid": mid,
                "idx": i,
                "fin": i == len(pieces) - 1,
                "pld": {"from": "user", "text": piece},
            }
            self._emit_now(self._shaped(frame), now)
        if self.session.settings.mode == 2:
            self.ask(_Question(mid, text, now, "user_speech"))
        return mid

    def _greet(self, now: int) -> None:
        """Dialect ``greeting``: the avatar greets the first client that joins, before any message (once).

        The greeting's text starts at once (at join, or when the session goes live), then it is spoken like any
        reply: a question sent meanwhile waits until its ``audio_end``.
        """
        session = self.session
        if "greeting" not in session.dialect or session.greeted:
            return
        session.greeted = True
        kb = self.state.knowledge.get(session.knowledge_id or "")
        text = (kb.get("prologue") if kb else None) or STOCK_GREETING
        self.ask(_Question("", text, now, "greeting"))
        # Its first chunk goes to the socket now, right behind the handshake, not one loop iteration later: a
        # client that sends as soon as it is connected has the greeting's first chunk before its own message.
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
            self._timer_ns = None
        self._fire()

    def _shaped(self, frame: dict[str, Any]) -> dict[str, Any]:
        """A chat frame as the session's dialect writes it (``no-idx``: no ``idx``; ``no-fin``: no ``fin``)."""
        dialect = self.session.dialect
        if "no-idx" not in dialect and "no-fin" not in dialect:
            return frame
        shaped = dict(frame)
        if "no-idx" in dialect:
            shaped.pop("idx", None)
        if "no-fin" in dialect:
            shaped.pop("fin", None)
        return shaped

    def _start_next(self, start_ns: int) -> None:
        self._current = None
        if not self._questions or self._closing:
            return
        question = self._questions.popleft()
        self._plan_reply(question, max(start_ns, question.arrived_ns, self.session.live_ns))

    def _plan_reply(self, question: _Question, start_ns: int) -> None:
        session, state = self.session, self.state
        settings = session.settings
        profile, rng = state.profile, session.rng
        if settings.mode == 1 or question.source == "greeting":
            text = question.text
        else:
            kb = state.knowledge.get(session.knowledge_id or "")
            text = dialogue_reply(
                question.text, seed=state.seed, prompt=kb.get("prompt") if kb else None, lang=settings.lang
            )
        pieces = tts_chunks(text)
        session.next_reply += 1
        reply_mid = f"r-{session.next_reply}"
        ms = NS_PER_MS
        # In dialogue mode the avatar's LLM thinks before the first chunk (the profile's think_ms; 0 for mode 1).
        first = start_ns + int((profile.ttfr(rng) + (profile.think(rng) if settings.mode == 2 else 0.0)) * ms)
        audio_start = first + int(profile.audio(rng) * ms)
        speak_ms = profile.speak(text, settings.speed)
        audio_end = audio_start + int(speak_ms * ms)
        if question.source == "greeting":
            # A greeting's text is known in advance (no answer to think of): its first chunk goes out as the client
            # joins (or as the session goes live), before the client can have sent anything.
            early = first - start_ns
            first, audio_start, audio_end = start_ns, audio_start - early, audio_end - early
        times = [first]
        for _ in pieces[1:]:
            times.append(times[-1] + int(profile.gap(rng) * ms))
        times = [min(t, max(audio_end, first)) for t in times]

        arrived = question.arrived_ns
        truth: dict[str, Any] = {
            "reply_mid": reply_mid,
            "source": question.source,
            "mode": settings.mode,
            "settings": settings.to_json(),
            "text": text,
            "arrived_ms": round((arrived - session.created_ns) / ms, 3),
            "queued_ms": round((start_ns - arrived) / ms, 3),
            "planned_ttfr_ms": round((first - arrived) / ms, 3),
            "planned_ttfa_ms": round((audio_start - arrived) / ms, 3),
            "planned_reply_ms": round((times[-1] - arrived) / ms, 3),
            "planned_speak_ms": round(speak_ms, 3),
            "ttfr_ms": None,
            "ttfa_ms": None,
            "reply_ms": None,
            "speak_ms": None,
            "chunks": len(pieces),
            "chunks_sent": 0,
            "faults": [],
            "interrupted": False,
        }
        # Dialect no-echo: in retelling mode the avatar speaks what it was sent without sending the text back.
        echo = not (settings.mode == 1 and question.source != "greeting" and "no-echo" in session.dialect)
        if not echo:
            truth["echo"] = False
            truth["chunks"] = 0
        if question.source == "greeting":
            session.truth_events.append({"event": "greeting", **truth})
            truth = session.truth_events[-1]
        else:
            session.truth_messages[question.mid] = truth
        reply = _Reply(reply_mid, truth, arrived)
        self._current = reply
        self._speaker_free_ns = audio_end
        if session.media is not None:  # the avatar's voice on its WebRTC audio track, from audio_start
            session.media.speak(reply_mid, text, audio_start, audio_end, arrived, truth, settings)

        frames = self._chunk_frames(reply_mid, pieces, truth) if echo else []
        for planned, frame in zip(times, frames, strict=False):
            for copy in frame:
                self._at(planned, copy, on_sent=self._chunk_sent(reply, arrived), reply=reply)
        self._at(
            audio_start,
            self._event("audio_start", reply_mid),
            on_sent=self._audio_start_sent(reply, arrived),
            reply=reply,
        )
        self._at(
            audio_end,
            self._event("audio_end", reply_mid),
            on_sent=self._audio_end_sent(reply),
            action=lambda: self._finish(reply, audio_end),
            reply=reply,
        )

    def _chunk_frames(self, reply_mid: str, pieces: list[str], truth: dict[str, Any]) -> list[list[dict[str, Any]]]:
        """The frames of each chunk slot (a slot holds 0 frames when dropped, 2 when duplicated), faults applied."""
        state, sid, plan = self.state, self.session.id, self.state.faults
        last = len(pieces) - 1
        nofin = state.roll(f"chunk.nofin:{sid}", plan.chunk_nofin)
        if nofin:
            truth["faults"].append("nofin")
        frames = [
            {
                "v": 2,
                "type": "chat",
                "mid": reply_mid,
                "idx": i,
                "fin": i == last and not nofin,
                "pld": {"from": "bot", "text": piece},
            }
            for i, piece in enumerate(pieces)
        ]
        for i in range(len(frames) - 1):
            if state.roll(f"chunk.reorder:{sid}", plan.chunk_reorder):
                frames[i], frames[i + 1] = frames[i + 1], frames[i]
                truth["faults"].append(f"reorder:{frames[i]['idx']}<->{frames[i + 1]['idx']}")
        slots: list[list[dict[str, Any]]] = []
        for frame in frames:
            if state.roll(f"chunk.drop:{sid}", plan.chunk_drop):
                truth["faults"].append(f"drop:{frame['idx']}")
                slots.append([])
            elif state.roll(f"chunk.dup:{sid}", plan.chunk_dup):
                truth["faults"].append(f"dup:{frame['idx']}")
                slots.append([self._shaped(frame), self._shaped(frame)])
            else:
                slots.append([self._shaped(frame)])
        return slots

    def _chunk_sent(self, reply: _Reply, arrived: int) -> Callable[[int], None]:
        def sent(at: int) -> None:
            truth = reply.truth
            if truth["ttfr_ms"] is None:
                truth["ttfr_ms"] = round((at - arrived) / NS_PER_MS, 3)
            truth["chunks_sent"] += 1
            truth["reply_ms"] = round((at - arrived) / NS_PER_MS, 3)

        return sent

    def _audio_start_sent(self, reply: _Reply, arrived: int) -> Callable[[int], None]:
        def sent(at: int) -> None:
            reply.audio_start_ns = at
            reply.truth["ttfa_ms"] = round((at - arrived) / NS_PER_MS, 3)

        return sent

    def _audio_end_sent(self, reply: _Reply) -> Callable[[int], None]:
        def sent(at: int) -> None:
            if reply.audio_start_ns is not None:
                reply.truth["speak_ms"] = round((at - reply.audio_start_ns) / NS_PER_MS, 3)

        return sent

    def _finish(self, reply: _Reply, planned_end: int) -> None:
        reply.done = True
        # Every item of the reply has run by now (audio_end is its last). Its items refer to it (the on_sent
        # callbacks), so forgetting them here lets reference counting free the reply: no garbage for the cyclic
        # GC to find, whose collections pause the loop (and so delay emits).
        reply.items.clear()
        if self._current is reply:
            self._start_next(planned_end)

    def _interrupt(self, now: int) -> None:
        reply = self._current
        if reply is None or reply.done:
            return
        for item in reply.items:
            item.cancelled = True
        reply.items.clear()  # no reference cycle left for the GC (see _finish)
        reply.done = True
        reply.truth["interrupted"] = True
        reply.truth["interrupted_ms"] = round((now - reply.arrived_ns) / NS_PER_MS, 3)
        self._speaker_free_ns = now
        if self.session.media is not None:
            self.session.media.cut(reply.mid, now)
        self._emit_now(self._event("audio_end", reply.mid, interrupted=True), now, self._audio_end_sent(reply))
        self._start_next(now)

    # --- commands ------------------------------------------------------------------------------------------

    def _on_command(self, mid: object, pld: dict[str, Any], now: int) -> None:
        cmd = pld.get("cmd")
        code, msg = 1000, "OK"
        try:
            if cmd == "set-params":
                data = pld.get("data", pld.get("params", {}))
                self._set_params(data)
            elif cmd == "interrupt":
                self._interrupt(now)
            elif cmd == "set-action":
                self._set_action(pld.get("data", {}))
            else:
                raise _Invalid(f"cmd: unknown command {cmd!r}")
        except _Invalid as exc:
            code, msg = 1003, str(exc)
        self._ack(mid, str(cmd), code, msg, now)

    def _ack(self, mid: object, cmd: str, code: int, msg: str, now: int) -> None:
        state, plan, sid = self.state, self.state.faults, self.session.id
        key = mid if isinstance(mid, str) else f"(no mid {now})"
        truth: dict[str, Any] = {"cmd": cmd, "code": code, "msg": msg, "faults": [], "ack_ms": None}
        self.session.truth_commands[key] = truth
        if state.roll(f"ack.drop:{sid}", plan.ack_drop):
            truth["faults"].append("ack.drop")
            truth["planned_ack_ms"] = None
            return
        delay_ms = state.profile.ack(self.session.rng)
        if state.roll(f"ack.delay:{sid}", plan.ack_delay_rate):
            delay_ms += plan.ack_delay_ms
            truth["faults"].append(f"ack.delay:{plan.ack_delay_ms:g}")
        truth["planned_ack_ms"] = round(delay_ms, 3)
        frame = self._ack_frame(mid, {"cmd": cmd, "code": code, "msg": msg})

        def sent(at: int) -> None:
            truth["ack_ms"] = round((at - now) / NS_PER_MS, 3)

        self._at(now + int(delay_ms * NS_PER_MS), frame, on_sent=sent)

    def _ack_frame(self, mid: object, pld: dict[str, Any]) -> dict[str, Any]:
        """The ack of command ``mid`` as the session's dialect writes it (see :mod:`akool_lab.sim._dialects`)."""
        dialect = self.session.dialect
        self._acks += 1
        n = self._acks
        ref = mid if isinstance(mid, str) else None
        if "ack-no-mid" in dialect:
            ref = None if n % 2 else f"ack-{n}"
        if "ack-type-ack" in dialect:
            body = {"original_mid": ref, **pld} if ref is not None else dict(pld)
            return {"v": 2, "type": "ack", "mid": f"ack-{n}", "pld": body}
        frame: dict[str, Any] = {"v": 2, "type": "cmd" if "ack-cmd" in dialect else "command", "pld": pld}
        if ref is not None:
            frame["mid"] = ref
        return frame

    def _set_params(self, data: object) -> None:
        if not isinstance(data, dict):
            raise _Invalid("data: expected an object")
        _check_types(data, _SET_PARAMS_KEYS, "")
        vparams = data.get("vparams") or {}
        _check_types(vparams, _VPARAMS_KEYS, "vparams.")
        mode = data.get("mode")
        if mode is not None and mode not in (1, 2):
            raise _Invalid("mode: must be 1 (retelling) or 2 (dialogue)")
        speed = vparams.get("speed")
        if speed is not None and not 0.8 <= speed <= 1.2:
            raise _Invalid("vparams.speed: must be between 0.8 and 1.2")
        settings = self.session.settings
        if mode is not None:
            settings.mode = mode
        for key, attr in (("lang", "lang"), ("vid", "voice_id"), ("vurl", "voice_url"), ("bgurl", "background_url")):
            if data.get(key):
                setattr(settings, attr, data[key])
        if vparams.get("vid"):
            settings.voice_id = vparams["vid"]
        if vparams.get("vurl"):
            settings.voice_url = vparams["vurl"]
        if speed is not None:
            settings.speed = float(speed)

    def _set_action(self, data: object) -> None:
        if not isinstance(data, dict):
            raise _Invalid("data: expected an object")
        for key in data:
            if key not in ("action", "expression"):
                raise _Invalid(f"{key}: unknown key")
        action, expression = data.get("action"), data.get("expression")
        if action is None and expression is None:
            raise _Invalid("action: an action or an expression is required")
        if action is not None and (not isinstance(action, str) or action not in ACTIONS):
            raise _Invalid(f"action: unknown action {action!r}")
        if expression is not None and (not isinstance(expression, str) or expression not in EXPRESSIONS):
            raise _Invalid(f"expression: unknown expression {expression!r}")


def _check_types(data: dict[str, Any], allowed: dict[str, tuple[type, ...]], prefix: str) -> None:
    for key, value in data.items():
        types = allowed.get(key)
        if types is None:
            raise _Invalid(f"{prefix}{key}: unknown key")
        # None and "" mean "leave as is" (the official demo strips empty values; others send them).
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, types):
            names = " or ".join("number" if t in (int, float) else t.__name__ for t in types)
            raise _Invalid(f"{prefix}{key}: expected {names.replace('dict', 'object').replace('str', 'string')}")
