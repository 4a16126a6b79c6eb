"""``run_experiment``: many sessions and messages, concurrently, every session closed whatever happens.

Each session runs on a worker thread with the blocking API (create → wait until live → connect → set-params →
messages → close). The main thread only watches: it draws the progress bar and calls the progress callback, so
a Ctrl+C (or an exception from the callback) lands there, stops the workers, closes their live sessions and, last,
asks the client to close anything still open (``close_all``), before the interrupt is raised again.

Timings are not computed here: the run only records raw events (plus a few markers of its own, see
:mod:`akool_lab.metrics._records`), and :class:`ExperimentResult` derives everything from them.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from akool_lab.errors import AkoolLabError, ReplyIncompleteError, ValidationError
from akool_lab.events import EventKind, Recorder
from akool_lab.metrics._records import EXPERIMENT_MESSAGE, EXPERIMENT_PARAMS, EXPERIMENT_SESSION
from akool_lab.metrics._report import describe_target
from akool_lab.metrics._result import ExperimentResult

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient
    from akool_lab.live import LiveSession

__all__ = ["DEFAULT_PROMPTS", "Progress", "run_experiment"]

#: Prompts of varied length (short to several chunks), so that pacing cost shows against text length.
DEFAULT_PROMPTS: tuple[str, ...] = (
    "Hello!",
    "How are you today?",
    "Tell me something interesting about the ocean in one or two sentences.",
    "Please describe, in a few sentences, how a streaming avatar turns text into speech and video, "
    "and what makes the first words arrive quickly or slowly.",
    "Here is a longer message to measure chunking and pacing: " + "the quick brown fox jumps over the lazy dog. " * 30,
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
    """

    session: int
    message: int | None
    ok: bool
    done: int
    total: int


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

    def error(self, text: str, session_id: str | None = None) -> None:
        with self.lock:
            self.errors.append(text)
        self.recorder.record(EventKind.ERROR, session_id=session_id, where="experiment", message=text)

    def progress(self, session: int, message: int | None, ok: bool) -> None:
        with self.lock:
            if message is not None:
                self.done += 1
            done = self.done
        self.updates.put(Progress(session, message, ok, done, self.total))

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
    duration: int = 180,
    progress: bool = True,
    on_progress: Callable[[Progress], None] | None = None,
    target: Any = None,
    live_timeout: float = 60.0,
    message_timeout: float | None = None,
) -> ExperimentResult:
    """Run ``sessions`` sessions of ``messages_per_session`` messages each, ``concurrency`` at a time.

    Args:
        client: an :class:`~akool_lab.api.AkoolClient`; its ``recorder`` receives every event (one is attached
            for the run when it has none).
        prompts: the texts to send, cycled through in each session (default :data:`DEFAULT_PROMPTS`).
        params: set-params values applied after connecting, e.g. ``{"lang": "fr"}``; a list value makes a grid
            (``{"lang": ["en", "fr"], "vid": ["v1", "v2"]}``: 4 combinations, one per session, round-robin).
        mode: 1 (``say``: the avatar speaks the prompt) or 2 (``ask``: the avatar answers it); a ``mode`` in
            ``params`` overrides it per session.
        warmup: the first ``warmup`` messages of each session are marked warm-up and left out of summaries.
        avatar_id: default: the first avatar ``client.avatars.list()`` returns.
        duration: each session's duration in seconds.
        progress: show a progress bar (``tqdm.auto``: a widget in notebooks, text in terminals).
        on_progress: called with a :class:`Progress` on the calling thread after each step.
        target: where the run goes, for the report (an :class:`akool_lab.target.Target` or ``{"kind", "base_url"}``).
        live_timeout: seconds to wait for each session to become live.
        message_timeout: seconds per message (default: the stream's own, which grows with the text).

    Every session it creates is closed, also when a step fails or the run is interrupted (Ctrl+C): the
    interrupt is raised again once everything is closed. A failed message is recorded and marked (it stays in
    :attr:`ExperimentResult.records`) and the run goes on; a failed session is listed in
    :attr:`ExperimentResult.errors`.

    >>> result = run_experiment(client, sessions=3, messages_per_session=8, concurrency=3)   # doctest: +SKIP
    >>> print(result.summary()); result.save("report/")                                        # doctest: +SKIP
    """
    _check("sessions", sessions, 1)
    _check("messages_per_session", messages_per_session, 1)
    _check("concurrency", concurrency, 1)
    _check("warmup", warmup, 0)
    if mode not in (1, 2):
        raise ValidationError("mode", f"got {mode!r}", allowed="1 (retelling: say) or 2 (dialogue: ask)")
    texts = list(DEFAULT_PROMPTS if prompts is None else prompts)
    if not texts or not all(isinstance(t, str) and t.strip() for t in texts):
        raise ValidationError("prompts", "must be a non-empty list of non-empty strings", allowed="texts")
    combos = grid(params)

    # Each run records into its own recorder, so its results never mix with another run on the same client;
    # the client's own recorder still receives every event (forwarded), and is restored afterwards.
    previous = client.recorder
    recorder = Recorder()
    forward = recorder.subscribe(previous.add) if previous is not None else None
    client.recorder = recorder
    run = _Run(client, recorder, sessions * messages_per_session)
    started = time.perf_counter()
    try:
        if avatar_id is None:
            avatar_id = client.avatars.list()[0].avatar_id
        settings = {
            "avatar_id": avatar_id,
            "duration": duration,
            "mode": mode,
            "messages": messages_per_session,
            "warmup": warmup,
            "live_timeout": live_timeout,
            "message_timeout": message_timeout,
            "prompts": texts,
        }
        _watch(run, combos, settings, sessions, concurrency, progress, on_progress)
    finally:
        client.recorder = previous
        if forward is not None:
            forward()
    return ExperimentResult(
        recorder=recorder,
        params={
            "sessions": sessions,
            "messages_per_session": messages_per_session,
            "concurrency": concurrency,
            "mode": mode,
            "warmup": warmup,
            "avatar_id": avatar_id,
            "duration": duration,
            "params": dict(params or {}),
            "combinations": combos,
            "prompts": texts,
        },
        target=describe_target(target if target is not None else {"kind": "unknown", "base_url": client.base_url}),
        errors=list(run.errors),
        session_ids=list(run.session_ids),
        elapsed_s=time.perf_counter() - started,
    )


def _watch(
    run: _Run,
    combos: list[dict[str, Any]],
    settings: dict[str, Any],
    sessions: int,
    concurrency: int,
    show_bar: bool,
    on_progress: Callable[[Progress], None] | None,
) -> None:
    """Start the workers and watch them from this thread; on any exception, stop and close everything."""
    from concurrent.futures import Future, ThreadPoolExecutor

    from tqdm.auto import tqdm

    bar = tqdm(total=run.total, desc="messages", unit="msg", disable=not show_bar)
    pool = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="akool-lab-experiment")
    futures: list[Future[None]] = []
    try:
        futures = [pool.submit(_session, run, i, combos[i % len(combos)], settings) for i in range(sessions)]
        while True:
            running = any(not f.done() for f in futures)
            try:
                update = run.updates.get(timeout=0.05)
            except queue.Empty:
                if not running:
                    break
                continue
            if update.message is not None:
                bar.update(1)
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
        bar.close()
        try:
            run.client.close_all()  # the last safety net: anything a worker could not close
        except AkoolLabError as exc:
            run.error(f"close_all: {_describe(exc)}")


def _session(run: _Run, index: int, combo: dict[str, Any], settings: dict[str, Any]) -> None:
    """One session's whole life, on a worker thread; whatever happens, what it created is closed."""
    client, recorder = run.client, run.recorder
    session_mode = int(combo.get("mode", settings["mode"]))
    session_id: str | None = None
    live: LiveSession | None = None
    try:
        if run.stop.is_set():
            return
        session = client.sessions.create(settings["avatar_id"], duration=settings["duration"], mode_type=session_mode)
        session_id = session.id
        with run.lock:
            run.session_ids.append(session_id)
        recorder.record(EXPERIMENT_SESSION, session_id=session_id, index=index, params=combo)
        if run.stop.is_set():
            return
        client.sessions.wait_until_live(session_id, timeout=settings["live_timeout"])
        if run.stop.is_set():
            return
        live = client.connect(session, mode=session_mode)
        with run.lock:
            run.lives[index] = live
        if combo:
            live.set_params(**combo)
            recorder.record(EXPERIMENT_PARAMS, session_id=session_id, params=combo)
        for j in range(settings["messages"]):
            if run.stop.is_set():
                return
            _message(run, live, index, j, session_mode, settings)
    except Exception as exc:  # the session failed: note it and move on to the next session
        run.error(f"session #{index} ({session_id or 'not created'}): {_describe(exc)}", session_id)
        run.progress(index, None, False)
    finally:
        with run.lock:
            run.lives.pop(index, None)
        try:
            if live is not None:
                live.close()  # closes the data channel and the AKool session
            elif session_id is not None:
                client.sessions.close(session_id)
        except Exception as exc:  # close_all() at the end of the run tries again
            run.error(f"closing session {session_id}: {_describe(exc)}", session_id)


def _message(run: _Run, live: LiveSession, index: int, j: int, mode: int, settings: dict[str, Any]) -> None:
    """Send one message and mark it in the recording (failures are marked, never dropped)."""
    prompts: list[str] = settings["prompts"]
    text = prompts[j % len(prompts)]
    intent = "ask" if mode == 2 else "say"
    before = len(run.recorder)
    mid: str | None = None
    error: str | None = None
    try:
        send = live.ask if intent == "ask" else live.say
        mid = send(text, timeout=settings["message_timeout"]).mid
    except ReplyIncompleteError as exc:
        error = _describe(exc)
        mid = getattr(exc.reply, "mid", None)
    except Exception as exc:  # recorded and marked; the run goes on with the next message
        error = _describe(exc)
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
        intent=intent,
        text_chars=len(text),
    )
    if error is not None:
        run.error(f"session {live.session_id} message #{j}: {error}", live.session_id)
    run.progress(index, j, error is None)
