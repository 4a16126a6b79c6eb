"""``run_experiment``: many sessions and messages, concurrently, every session closed whatever happens.

Before any request, the run checks that its plan fits (each session's duration is planned from its messages, see
:mod:`akool_lab.metrics._plan`) and that Python can reach the sessions' data channel (on AKool: LiveKit).

Each session runs on a worker thread with the blocking API (create → wait until live → connect → set-params →
messages → close). The main thread only watches: it draws the progress bar and calls the progress callback, so
a Ctrl+C (or an exception from the callback) lands there, stops the workers, closes their live sessions and, last,
asks the client to close anything still open (``close_all``), before the interrupt is raised again.

Timings are not computed here: the run only records raw events (plus a few markers of its own, see
:mod:`akool_lab.metrics._records`), and :class:`ExperimentResult` derives everything from them. With ``out``, every
event is appended to ``events.jsonl`` as it is recorded (flushed line by line), so that a crash, a kill or a
Ctrl+C loses nothing that was measured: ``akool-lab report OUT`` renders such a partial run and says so.
"""

from __future__ import annotations

import itertools
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from akool_lab.errors import AkoolLabError, ReplyIncompleteError, StreamClosedError, ValidationError
from akool_lab.events import Event, EventKind, Recorder
from akool_lab.metrics._failures import plural
from akool_lab.metrics._plan import UNTIL, SessionPlan, estimate_speech_s, plan_session, voice_speed
from akool_lab.metrics._records import EXPERIMENT_MESSAGE, EXPERIMENT_PARAMS, EXPERIMENT_SESSION
from akool_lab.metrics._report import EventSink, default_run_dir, target_info, utc_now
from akool_lab.metrics._result import ExperimentResult
from akool_lab.types import default_reply_timeout

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient
    from akool_lab.live import LiveSession

__all__ = ["DEFAULT_PROMPTS", "UNTIL", "Progress", "failure_kind", "run_experiment"]

#: Prompts sized for measuring: short, medium and long, each well under 30 s of speech at 150 words a minute (the
#: longest, 58 words, speaks for about 23 s), so that a session's duration is spent measuring, not listening.
DEFAULT_PROMPTS: tuple[str, ...] = (
    "Hello!",
    "How are you today?",
    "Tell me something interesting about the ocean in one or two sentences.",
    "Please describe, in a few sentences, how a streaming avatar turns text into speech and video, "
    "and what makes the first words arrive quickly or slowly.",
    "Here is a longer message, to see how the length of a text changes the time to the first reply. "
    "A streaming avatar receives the text in chunks, speaks it with a synthetic voice and moves its face to match. "
    "The first words should arrive as quickly as for a short message, while the whole speech takes longer.",
)

#: The values ``set-params`` accepts (``LiveSession.set_params`` keywords).
SET_PARAMS_KEYS = frozenset({"vid", "vurl", "lang", "mode", "bgurl", "vparams"})


@dataclass(frozen=True, slots=True)
class Progress:
    """One step of a run, passed to ``on_progress`` on the calling thread.

    Attributes:
        session: the session's index in the run (0-based).
        message: the message's index in its session, or None for a session-level step.
        ok: whether the step succeeded.
        done, total: messages finished so far, and planned.
        error: why the step failed (``None`` when it succeeded).
    """

    session: int
    message: int | None
    ok: bool
    done: int
    total: int
    error: str | None = None


def grid(params: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    """The set-params combinations of ``params``: list values are alternatives (cartesian product).

    >>> grid({"lang": ["en", "fr"], "vid": "v1"})
    [{'lang': 'en', 'vid': 'v1'}, {'lang': 'fr', 'vid': 'v1'}]
    """
    if not params:
        return [{}]
    unknown = set(params) - SET_PARAMS_KEYS
    if unknown:
        raise ValidationError(
            "params", f"unknown set-params keys {sorted(unknown)}", allowed=", ".join(sorted(SET_PARAMS_KEYS))
        )
    keys = list(params)
    choices = [list(v) if isinstance(v, (list, tuple)) else [v] for v in params.values()]
    for key, values in zip(keys, choices, strict=True):
        if not values:
            raise ValidationError(f"params.{key}", "an empty list of values", allowed="at least one value")
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*choices)]


def _check(name: str, value: int, minimum: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise ValidationError(name, f"got {value!r}", allowed=f"a whole number >= {minimum}")


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


#: The kinds a failed message is summarised by (``"2 messages incomplete: session ended"``).
SESSION_ENDED = "session ended"
NOT_STARTED = "session did not start"
NO_REPLY = "no reply in time"
REPLY_INCOMPLETE = "reply incomplete"


def failure_kind(exc: BaseException) -> str:
    """The kind of a message's failure, in a few words (the summary groups failures by it)."""
    if isinstance(exc, StreamClosedError):
        return SESSION_ENDED
    if isinstance(exc, ReplyIncompleteError):
        return REPLY_INCOMPLETE
    if isinstance(exc, TimeoutError):
        return NO_REPLY
    return f"error ({type(exc).__name__})"


def _target_kind(target: Any, client: AkoolClient) -> str:
    """``"sim"``, ``"real"`` or ``"unknown"``: a client on AKool's own base URL is real whatever ``target`` says."""
    from akool_lab.api import DEFAULT_BASE_URL

    kind = target_info(target).get("kind") if target is not None else None
    if kind in ("sim", "real"):
        return str(kind)
    if str(client.base_url).rstrip("/") == DEFAULT_BASE_URL.rstrip("/"):
        return "real"
    return "unknown"


class _Steps:
    """Progress within the messages in flight, so that the bar keeps moving during a long message.

    A message is one unit: a fifth when its first chunk is sent, two fifths at its first reply chunk, three at
    ``audio_start``, then the rest spread over its estimated speech until it is done. Fed by a recorder listener
    (on the I/O thread: it only stores timestamps) and read by the watching thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._current: dict[str, tuple[float, float | None, float]] = {}  # sid -> (fraction, speaking since, speech s)
        self._speech: dict[str, float] = {}

    def begin(self, session_id: str, speech_s: float) -> None:
        with self._lock:
            self._current[session_id] = (0.0, None, speech_s)

    def end(self, session_id: str) -> None:
        with self._lock:
            self._current.pop(session_id, None)

    def on_event(self, event: Event) -> None:
        sid = event.session_id
        if sid is None:
            return
        step = {EventKind.CHAT_SENT: 0.2, EventKind.CHAT_RECV: 0.4, EventKind.AUDIO_START: 0.6}.get(event.kind)
        if step is None:
            return
        with self._lock:
            current = self._current.get(sid)
            if current is None or current[0] >= step:
                return
            speaking = time.monotonic() if event.kind == EventKind.AUDIO_START else current[1]
            self._current[sid] = (step, speaking, current[2])

    def in_flight(self) -> float:
        now = time.monotonic()
        total = 0.0
        with self._lock:
            for fraction, speaking, speech_s in self._current.values():
                if speaking is not None and speech_s > 0:
                    fraction += 0.35 * min(1.0, (now - speaking) / speech_s)
                total += fraction
        return total


class _Run:
    """The state one run shares between its workers and the watching thread."""

    def __init__(self, client: AkoolClient, recorder: Recorder, total: int) -> None:
        self.client = client
        self.recorder = recorder
        self.total = total
        self.stop = threading.Event()
        self.updates: queue.SimpleQueue[Progress] = queue.SimpleQueue()
        self.lock = threading.Lock()
        self.lives: dict[int, LiveSession] = {}
        self.errors: list[str] = []
        self.session_ids: list[str] = []
        self.done = 0
        self.starting = 0  # sessions created and not connected yet (queueing): shown beside the bar
        self.steps = _Steps()

    def starting_by(self, delta: int) -> None:
        with self.lock:
            self.starting += delta

    def error(self, text: str, session_id: str | None = None) -> None:
        with self.lock:
            self.errors.append(text)
        self.recorder.record(EventKind.ERROR, session_id=session_id, where="experiment", message=text)

    def progress(self, session: int, message: int | None, ok: bool, error: str | None = None) -> None:
        with self.lock:
            if message is not None:
                self.done += 1
            done = self.done
        self.updates.put(Progress(session, message, ok, done, self.total, error))

    def close_lives(self) -> None:
        """Close every live session now (from the watching thread): a worker blocked in say() returns at once."""
        with self.lock:
            lives = list(self.lives.values())
        for live in lives:
            try:
                live.close()
            except Exception as exc:  # the client's close_all() at the end retries; keep the reason
                self.error(f"closing session {live.session_id}: {_describe(exc)}", live.session_id)


def run_experiment(
    client: AkoolClient,
    prompts: Sequence[str] | None = None,
    *,
    sessions: int = 3,
    messages_per_session: int = 8,
    concurrency: int = 1,
    params: Mapping[str, Any] | None = None,
    mode: int = 1,
    warmup: int = 0,
    avatar_id: str | None = None,
    duration: int | None = None,
    until: str = "audio_end",
    progress: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    target: Any = None,
    live_timeout: float = 60.0,
    message_timeout: float | None = None,
    stream_type: str | None = None,
    out: str | os.PathLike[str] | Literal[False] | None = None,
    title: str = "akool_lab latency report",
) -> ExperimentResult:
    """Run ``sessions`` sessions of ``messages_per_session`` messages each, ``concurrency`` at a time.

    Args:
        client: an :class:`~akool_lab.api.AkoolClient`; its ``recorder`` receives every event (one is attached
            for the run when it has none).
        prompts: the texts to send, cycled through in each session (default :data:`DEFAULT_PROMPTS`: short,
            medium and long, each well under 30 s of speech).
        params: set-params values applied after connecting, e.g. ``{"lang": "fr"}``; a list value makes a grid
            (``{"lang": ["en", "fr"], "vid": ["v1", "v2"]}``: 4 combinations, one per session, round-robin).
            ``{"vparams": {"speed": 1.2}}`` changes the voice's speed (and the planned speech).
        mode: 1 (``say``: the avatar speaks the prompt) or 2 (``ask``: the avatar answers it); a ``mode`` in
            ``params`` overrides it per session.
        warmup: the first ``warmup`` messages of each session are marked warm-up and left out of summaries.
        avatar_id: default: the first avatar ``client.avatars.list()`` returns.
        duration: each session's duration in seconds; ``None`` (default) plans it from the messages (their speech
            at the voice's speed plus latency margins, at most 3,600 s). A plan that cannot fit is refused with a
            :class:`~akool_lab.errors.ValidationError` before any request.
        until: where each message stops: ``"audio_start"`` (interrupted once the avatar starts speaking: time to
            first reply and to audio are measured, no speech is paid for), ``"reply"`` (its last text chunk) or
            ``"audio_end"`` (default: the whole speech, also measures speaking time).
        progress: show a progress bar (``tqdm.auto``: a widget in notebooks, text in terminals); it moves within
            each message too.
        on_progress: called with a :class:`Progress` on the calling thread after each step.
        target: where the run goes, for the report and its label (an :class:`akool_lab.target.Target` or
            ``{"kind", "base_url", "profile", "seed"}``); a client on AKool's base URL is taken as AKool.
        live_timeout: seconds to wait for each session to become live.
        message_timeout: seconds per message (default: the stream's own, which grows with the text).
        stream_type: the sessions' stream type; on AKool the default is ``"livekit"``, the one data channel Python
            can join, and its ``livekit`` package is checked before any session is created (see
            :func:`akool_lab.target.choose_stream_type`).
        out: a directory to write the run to as it happens: ``events.jsonl`` (every event appended and flushed as
            it is recorded) and ``params.json``; the whole report at the end. A run that is killed leaves a
            partial run there that ``akool-lab report`` renders. ``None`` (default): the events and parameters go
            to a new folder under ``$AKOOL_LAB_HOME/runs/`` (else the user data dir; see
            :attr:`ExperimentResult.directory`), without the report; ``False``: nothing is written.
        title: the report's title (with ``out``).

    Every session it creates is closed, also when a step fails or the run is interrupted (Ctrl+C): the
    interrupt is raised again once everything is closed. A failed message is recorded and marked (it stays in
    :attr:`ExperimentResult.records`, with the kind of failure in :meth:`ExperimentResult.failures`) and the run
    goes on; when a session ends early, each of its remaining messages fails with the reason.

    >>> result = run_experiment(client, sessions=3, messages_per_session=8, concurrency=3)   # doctest: +SKIP
    >>> print(result.summary()); result.save("report/")                                        # doctest: +SKIP
    """
    from akool_lab.target import choose_stream_type

    _check("sessions", sessions, 1)
    _check("messages_per_session", messages_per_session, 1)
    _check("concurrency", concurrency, 1)
    _check("warmup", warmup, 0)
    if mode not in (1, 2):
        raise ValidationError("mode", f"got {mode!r}", allowed="1 (retelling: say) or 2 (dialogue: ask)")
    if until not in UNTIL:
        raise ValidationError("until", f"got {until!r}", allowed=", ".join(repr(u) for u in UNTIL))
    texts = list(DEFAULT_PROMPTS if prompts is None else prompts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValidationError("prompts", "must be a non-empty list of non-empty strings", allowed="texts")
    combos = grid(params)
    plan_texts = [texts[j % len(texts)] for j in range(messages_per_session)]
    # Every combination is planned (and a plan that cannot fit refused) before a single request is made.
    plans = [
        plan_session(plan_texts, mode=int(c.get("mode", mode)), until=until, combo=c, duration=duration) for c in combos
    ]
    kind = _target_kind(target, client)
    chosen_stream = choose_stream_type(kind, stream_type)
    info = target_info(target if target is not None else {"kind": kind, "base_url": client.base_url})

    # Each run records into its own recorder, so its results never mix with another run on the same client;
    # the client's own recorder still receives every event (forwarded), and is restored afterwards.
    previous = client.recorder
    recorder = Recorder()
    forward = recorder.subscribe(previous.add) if previous is not None else None
    run = _Run(client, recorder, sessions * messages_per_session)
    steps = recorder.subscribe(run.steps.on_event)
    run_params: dict[str, Any] = {
        "sessions": sessions,
        "messages_per_session": messages_per_session,
        "concurrency": concurrency,
        "mode": mode,
        "until": until,
        "warmup": warmup,
        "avatar_id": avatar_id,
        "duration": duration if duration is not None else max(p.duration_s for p in plans),
        "duration_planned": duration is None,
        "stream_type": chosen_stream,
        "params": dict(params or {}),
        "combinations": combos,
        "prompts": texts,
        "started_at": utc_now(),
    }
    directory = default_run_dir() if out is None else None if out is False else Path(out)
    try:
        sink = EventSink(directory, params=run_params, target=info, title=title) if directory is not None else None
    except OSError as exc:
        steps()
        if forward is not None:
            forward()
        raise ValidationError(
            "out",
            f"cannot write the run's events to {directory}: {exc.strerror or exc} (nothing was created)",
            allowed="out=DIR (a writable directory), or out=False to keep the run in memory only",
        ) from None
    if sink is not None:
        recorder.subscribe(sink.write)
    client.recorder = recorder
    started = time.perf_counter()
    status = "interrupted"
    try:
        if avatar_id is None:
            avatar_id = client.avatars.list()[0].avatar_id
            run_params["avatar_id"] = avatar_id
        settings = {
            "avatar_id": avatar_id,
            "mode": mode,
            "until": until,
            "messages": messages_per_session,
            "warmup": warmup,
            "live_timeout": live_timeout,
            "message_timeout": message_timeout,
            "prompts": texts,
            "stream_type": chosen_stream,
        }
        _watch(run, combos, plans, settings, sessions, concurrency, progress, on_progress)
        status = "complete"
    finally:
        client.recorder = previous
        steps()
        if forward is not None:
            forward()
        seen = sorted({str(e.data.get("stream_type")) for e in recorder.filter(EventKind.SESSION_CREATED)})
        run_params["stream_types"] = [t for t in seen if t != "None"]
        run_params["elapsed_s"] = round(time.perf_counter() - started, 3)
        if sink is not None:
            sink.close(status, params=run_params, errors=run.errors)
    result = ExperimentResult(
        recorder=recorder,
        params=run_params,
        target=info,
        errors=list(run.errors),
        session_ids=list(run.session_ids),
        elapsed_s=run_params["elapsed_s"],
        directory=directory,
    )
    if out is not None and out is not False:
        result.save(out, title=title)
    return result


def _watch(
    run: _Run,
    combos: list[dict[str, Any]],
    plans: list[SessionPlan],
    settings: dict[str, Any],
    sessions: int,
    concurrency: int,
    show_bar: bool,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Start the workers and watch them from this thread; on any exception, stop and close everything."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm.auto import tqdm

    bar = tqdm(
        total=run.total,
        desc=f"messages 0/{run.total}",
        disable=not show_bar,
        bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}<{remaining}]",
    )
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="akool-lab-experiment")
    futures: list[Future[None]] = []
    failed = 0

    def redraw() -> None:
        bar.n = min(float(run.total), run.done + run.steps.in_flight())
        failures = f" ({failed} failed)" if failed else ""
        starting = f", {plural(run.starting, 'session')} starting" if run.starting else ""
        bar.set_description_str(f"messages {run.done}/{run.total}{failures}{starting}", refresh=False)
        bar.refresh()

    try:
        futures = [
            pool.submit(_session, run, i, combos[i % len(combos)], plans[i % len(plans)], settings)
            for i in range(sessions)
        ]
        while True:
            running = any(not f.done() for f in futures)
            try:
                update = run.updates.get(timeout=0.2)
            except queue.Empty:
                if not running:
                    break
                redraw()  # the bar moves within messages in flight
                continue
            if update.message is not None and not update.ok:
                failed += 1
            redraw()
            if on_progress is not None:
                on_progress(update)
        for future in futures:
            future.result()  # a worker's KeyboardInterrupt (or a bug) surfaces here
    except BaseException:
        run.stop.set()
        for future in futures:
            future.cancel()  # sessions not started yet never start
        run.close_lives()
        raise
    finally:
        pool.shutdown(wait=True)  # workers close what they created before they return
        redraw()
        bar.close()
        try:
            run.client.close_all()  # the last safety net: anything a worker could not close
        except AkoolLabError as exc:
            run.error(f"close_all: {_describe(exc)}")


def _fail_unsent(
    run: _Run, index: int, session_id: str | None, first: int, settings: dict[str, Any], kind: str, why: str
) -> None:
    """Mark messages ``first..`` of session ``index`` as failed without sending them (one clear reason each)."""
    prompts: list[str] = settings["prompts"]
    intent = "ask" if settings["mode"] == 2 else "say"
    for j in range(first, settings["messages"]):
        error = f"not sent: {why}"
        run.recorder.record(
            EXPERIMENT_MESSAGE,
            session_id=session_id,
            mid=None,
            index=j,
            warmup=j < settings["warmup"],
            ok=False,
            error=error,
            failure=kind,
            intent=intent,
            text_chars=len(prompts[j % len(prompts)]),
        )
        run.progress(index, j, False, error)


def _session(run: _Run, index: int, combo: dict[str, Any], plan: SessionPlan, settings: dict[str, Any]) -> None:
    """One session's whole life, on a worker thread; whatever happens, what it created is closed."""
    client, recorder = run.client, run.recorder
    session_mode = int(combo.get("mode", settings["mode"]))
    session_id: str | None = None
    live: LiveSession | None = None
    sent = 0
    pending_start = False
    try:
        if run.stop.is_set():
            return
        session = client.sessions.create(
            settings["avatar_id"], duration=plan.duration_s, mode_type=session_mode, stream_type=settings["stream_type"]
        )
        session_id = session.id
        with run.lock:
            run.session_ids.append(session_id)
        run.starting_by(1)
        pending_start = True
        recorder.record(EXPERIMENT_SESSION, session_id=session_id, index=index, params=combo, duration=plan.duration_s)
        if run.stop.is_set():
            return
        client.sessions.wait_until_live(session_id, timeout=settings["live_timeout"])
        if run.stop.is_set():
            return
        live = client.connect(session, mode=session_mode)
        run.starting_by(-1)
        pending_start = False
        with run.lock:
            run.lives[index] = live
        if combo:
            live.set_params(**combo)
            recorder.record(EXPERIMENT_PARAMS, session_id=session_id, params=combo)
        speed = voice_speed(combo)
        for j in range(settings["messages"]):
            if run.stop.is_set():
                return
            if not live.is_open:
                reason = live.avatar_stream.close_reason or "the stream closed"
                _fail_unsent(run, index, session_id, j, settings, SESSION_ENDED, f"the session ended ({reason})")
                return
            sent = j + 1
            _message(run, live, index, j, session_mode, speed, settings)
    except Exception as exc:  # the session failed: note it and fail the messages it could not send
        run.error(f"session #{index} ({session_id or 'not created'}): {_describe(exc)}", session_id)
        if not run.stop.is_set():
            kind = NOT_STARTED if sent == 0 else SESSION_ENDED
            _fail_unsent(run, index, session_id, sent, settings, kind, f"{kind}: {_describe(exc)}")
        run.progress(index, None, False, _describe(exc))
    finally:
        if pending_start:
            run.starting_by(-1)
        with run.lock:
            run.lives.pop(index, None)
        try:
            if live is not None:
                live.close()  # closes the data channel and the AKool session
            elif session_id is not None:
                client.sessions.close(session_id)
        except Exception as exc:  # close_all() at the end of the run tries again
            run.error(f"closing session {session_id}: {_describe(exc)}", session_id)


def _send_until_audio_start(live: LiveSession, text: str, intent: str, budget: float, recorder: Recorder) -> Any:
    """Send ``text`` and interrupt the avatar once it starts speaking; returns the (interrupted) reply."""
    from akool_lab.live import io_loop

    session_id = live.session_id
    started = threading.Event()
    speaking = threading.Event()

    def on_event(event: Event) -> None:
        if event.kind == EventKind.AUDIO_START and event.session_id == session_id:
            speaking.set()
            started.set()

    unsubscribe = recorder.subscribe(on_event)
    try:
        stream = live.avatar_stream
        coro = stream.ask(text, timeout=budget) if intent == "ask" else stream.say(text, timeout=budget)
        pending = io_loop().submit(coro)
        pending.add_done_callback(lambda _: started.set())
        deadline = time.monotonic() + budget
        started.wait(budget)  # audio_start, or the message ended first (failed, or too short to interrupt)
        if speaking.is_set() and not pending.done():
            live.interrupt()
        try:
            return pending.result(max(1.0, deadline - time.monotonic()) + 10.0)
        except ReplyIncompleteError as exc:
            if speaking.is_set() and getattr(exc.reply, "interrupted", False):
                return exc.reply  # interrupted on purpose, once what is measured was measured
            raise
    finally:
        unsubscribe()


def _message(
    run: _Run, live: LiveSession, index: int, j: int, mode: int, speed: float, settings: dict[str, Any]
) -> None:
    """Send one message and mark it in the recording (failures are marked, never dropped)."""
    prompts: list[str] = settings["prompts"]
    text = prompts[j % len(prompts)]
    intent = "ask" if mode == 2 else "say"
    until = settings["until"]
    before = len(run.recorder)
    mid: str | None = None
    error: str | None = None
    kind: str | None = None
    session_id = live.session_id or ""
    run.steps.begin(session_id, 0.0 if until == "audio_start" else estimate_speech_s(text, speed))
    try:
        if until == "audio_start":
            budget = settings["message_timeout"] or default_reply_timeout(text)
            mid = _send_until_audio_start(live, text, intent, budget, run.recorder).mid
        else:
            send = live.ask if intent == "ask" else live.say
            mid = send(text, timeout=settings["message_timeout"], until=until).mid
    except ReplyIncompleteError as exc:
        error, kind = _describe(exc), failure_kind(exc)
        mid = getattr(exc.reply, "mid", None)
        if not live.is_open:
            kind = SESSION_ENDED
    except Exception as exc:  # recorded and marked; the run goes on with the next message
        error, kind = _describe(exc), failure_kind(exc)
        if not live.is_open:
            kind = SESSION_ENDED
    finally:
        run.steps.end(session_id)
    if mid is None:
        # The message may have been sent before it failed: find its first chunk among the new events.
        mid = next(
            (
                e.mid
                for e in run.recorder.events[before:]
                if e.kind == EventKind.CHAT_SENT and e.session_id == live.session_id and e.data.get("idx") == 0
            ),
            None,
        )
    run.recorder.record(
        EXPERIMENT_MESSAGE,
        session_id=live.session_id,
        mid=mid,
        index=j,
        warmup=j < settings["warmup"],
        ok=error is None,
        error=error,
        failure=kind,
        intent=intent,
        text_chars=len(text),
    )
    if error is not None:
        run.error(f"session {live.session_id} message #{j}: {error}", live.session_id)
    run.progress(index, j, error is None, error)
