"""Timing records derived from raw recorder events: one record per message, command, session and HTTP request.

Every number here is computed from the raw events of :mod:`akool_lab.events` only, and every duration is the
difference of two timestamps on ONE clock: a stream timed by a browser page (``"browser:<id>"``) is never
measured against the kernel's HTTP or lifecycle events. When the two ends of a duration are on different clocks,
the duration is ``None`` (unknown), never a wrong number.

Message timings reuse :func:`akool_lab.types.derive_timings`, the one definition shared with the live
:class:`~akool_lab.live.Reply`, so a recorded run and the replies a notebook saw always agree.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from akool_lab.events import Event, EventKind, Recorder
from akool_lab.types import ReplyTimings, derive_timings

__all__ = [
    "EXPERIMENT_MESSAGE",
    "EXPERIMENT_PARAMS",
    "EXPERIMENT_SESSION",
    "CommandRecord",
    "HttpRecord",
    "MessageRecord",
    "SessionRecord",
    "command_timings",
    "http_timings",
    "message_timings",
    "perceived_timings",
    "session_timings",
]

#: Written by the experiment runner (kernel clock): a session it created, with ``index`` and ``params``.
EXPERIMENT_SESSION = "experiment.session"
#: Written by the experiment runner after an acked set-params: ``params`` now in effect for the session.
EXPERIMENT_PARAMS = "experiment.params"
#: Written by the experiment runner per message: ``index``, ``warmup``, ``ok``, ``error`` (mid None if never sent).
EXPERIMENT_MESSAGE = "experiment.message"

Events = Recorder | Iterable[Event]

_MODE_OF_INTENT = {"say": 1, "llm": 1, "ask": 2}


def _events(source: Events) -> list[Event]:
    return source.events if isinstance(source, Recorder) else list(source)


def _from_bot(e: Event) -> bool:
    # The stream writes ``sender``; ``from`` is the protocol's own name for it (EventKind's comment).
    return bool(e.data.get("sender", e.data.get("from", "bot")) == "bot")


def _ms(a: int | None, b: int | None) -> float | None:
    if a is None or b is None:
        return None
    return (b - a) / 1e6


@dataclass(frozen=True, slots=True)
class MessageRecord:
    """The timings of one sent message (``say``/``ask``/``llm``), keyed by its ``mid``.

    Attributes:
        session_id: the AKool session.
        mid: the message id (``None`` for a message that failed before any chunk was sent).
        intent: ``"say"``, ``"ask"`` or ``"llm"``.
        mode: 1 (retelling) or 2 (dialogue), implied by the intent (the stream switches mode to match it).
        voice, lang: the voice id and language in effect (the latest acked set-params before the message).
        params: every set-params value in effect (as recorded by the runner, or carried by ``command.sent``).
        text_chars: length of the text sent.
        bytes: total bytes of all its chunks.
        cold: True for the first message of its session (kept apart from warm ones in summaries).
        warmup: True when an experiment marked it as warm-up (left out of summaries by default).
        index: its position in its session (0 = first message sent).
        complete: whether the reply arrived in full.
        interrupted: whether an interrupt cut the reply short.
        reason: why the reply is incomplete or the message failed.
        error: the error the caller saw, when the message failed (the record is kept, marked, not dropped).
        clock: the clock of every timestamp below.
        first_sent_ns: when its first chunk was sent (ns on :attr:`clock`; for timelines).
        chunks, send_span_ms, ttfr_ms, ttfa_ms, reply_ms, speak_ms, gaps_ms: see
            :class:`~akool_lab.live.ReplyTimings`.
        heard_ms, media_delay_ms, jitter_buffer_ms, playout_delay_ms, perceived_clock: what the stage measured
            from the media it played (see :func:`perceived_timings`), on the browser's clock ``perceived_clock``;
            None when no stage heard the reply. Kept apart from the data-channel timings above (another clock).
    """

    session_id: str | None
    mid: str | None
    intent: str | None
    mode: int | None
    voice: str | None
    lang: str | None
    text_chars: int
    bytes: int
    cold: bool
    warmup: bool
    index: int
    complete: bool
    interrupted: bool
    reason: str | None
    error: str | None
    clock: str | None
    first_sent_ns: int | None
    chunks: int
    send_span_ms: float | None
    ttfr_ms: float | None
    ttfa_ms: float | None
    reply_ms: float | None
    speak_ms: float | None
    gaps_ms: tuple[float, ...] = ()
    params: Mapping[str, Any] = field(default_factory=dict)
    heard_ms: float | None = None
    media_delay_ms: float | None = None
    jitter_buffer_ms: float | None = None
    playout_delay_ms: float | None = None
    perceived_clock: str | None = None

    @property
    def phase(self) -> str:
        """``"cold"`` (first message of its session) or ``"warm"``: a ready-made grouping key."""
        return "cold" if self.cold else "warm"

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for tables, CSV and JSON)."""
        out = asdict(self)
        out["gaps_ms"] = list(self.gaps_ms)
        out["params"] = dict(self.params)
        out["phase"] = self.phase
        return out


@dataclass(frozen=True, slots=True)
class CommandRecord:
    """One command sent on the data channel (``set-params``, ``interrupt``, ``set-action``).

    Attributes:
        ack_ms: command sent → its ack received (None when no ack came, or on another clock).
        ack_missing: True when the stream gave up waiting for the ack.
        code, msg: the ack's AKool code and message.
        interrupt_to_audio_end_ms: for ``interrupt`` sent while the avatar spoke: sent → the next ``audio_end``.
    """

    session_id: str | None
    mid: str | None
    cmd: str
    clock: str
    sent_ns: int
    bytes: int | None
    ack_ms: float | None
    code: int | None
    msg: str | None
    ack_missing: bool
    interrupt_to_audio_end_ms: float | None

    @property
    def ok(self) -> bool:
        """Whether the command was acknowledged with code 1000."""
        return self.code == 1000

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for tables, CSV and JSON)."""
        out = asdict(self)
        out["ok"] = self.ok
        return out


@dataclass(frozen=True, slots=True)
class SessionRecord:
    """The life cycle of one AKool session, on the kernel clock (where the REST client and stream record it).

    The ``*_at_ms`` fields place each step on a timeline starting at :attr:`start_ns` (the ``session/create``
    request, or the first event of the session when that request is not in the recording).

    Attributes:
        create_ms: the ``sessions.create`` request's duration (from its ``http`` event).
        live_ms: create answered → the first poll that saw status 2 (live); excludes ``create_ms``.
        connect_ms: data-channel connect started → connected.
        first_reply_ms: connected → the avatar's first reply chunk (None if that arrived on another clock).
        close_ms: close started → the service confirmed it.
        messages: how many messages were sent in the session.
    """

    session_id: str
    clock: str
    start_ns: int
    create_ms: float | None
    live_ms: float | None
    connect_ms: float | None
    first_reply_ms: float | None
    close_ms: float | None
    created_at_ms: float | None
    live_at_ms: float | None
    connect_at_ms: float | None
    connected_at_ms: float | None
    first_reply_at_ms: float | None
    close_at_ms: float | None
    closed_at_ms: float | None
    messages: int
    params: Mapping[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for tables, CSV and JSON)."""
        out = asdict(self)
        out["params"] = dict(self.params)
        return out


@dataclass(frozen=True, slots=True)
class HttpRecord:
    """One HTTP attempt of the REST client (``ms`` was measured by the client on :attr:`clock`)."""

    session_id: str | None
    endpoint: str
    method: str | None
    path: str | None
    http_status: int | None
    code: int | None
    ms: float | None
    attempt: int
    error: str | None
    clock: str
    t_ns: int

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for tables, CSV and JSON)."""
        return asdict(self)


# ---------------------------------------------------------------------------------------------------- params


def _set_params_fields(data: Mapping[str, Any]) -> dict[str, Any]:
    """The set-params values a ``command.sent`` event carries, if the stream recorded them."""
    nested = data.get("params")
    if isinstance(nested, Mapping):
        return dict(nested)
    return {k: data[k] for k in ("vid", "vurl", "lang", "mode", "bgurl", "vparams") if data.get(k) is not None}


def _params_timeline(events: list[Event]) -> dict[str | None, list[tuple[int, dict[str, Any]]]]:
    """Per session, the params in effect from each point on (kernel-ordered by recording position).

    Positions in the recording, not timestamps, order these changes: the runner's marker and the ack may be on
    different clocks, and the recorder's append order is the order things happened on this machine.
    """
    acked: dict[str, dict[str, Any]] = {}
    sent: dict[str, dict[str, Any]] = {}
    out: dict[str | None, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    current: dict[str | None, dict[str, Any]] = defaultdict(dict)
    for pos, e in enumerate(events):
        change: dict[str, Any] | None = None
        if e.kind == EXPERIMENT_PARAMS:
            change = dict(e.data.get("params") or {})
        elif e.kind == EventKind.COMMAND_SENT and e.data.get("cmd") == "set-params" and e.mid:
            fields = _set_params_fields(e.data)
            if fields:
                sent[e.mid] = fields
        elif e.kind == EventKind.ACK and e.mid in sent and e.data.get("code") == 1000:
            acked[e.mid] = sent.pop(e.mid)
            change = acked[e.mid]
        if change:
            merged = {**current[e.session_id], **change}
            current[e.session_id] = merged
            out[e.session_id].append((pos, merged))
    return out


def _params_at(timeline: list[tuple[int, dict[str, Any]]], pos: int) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for at, value in timeline:
        if at > pos:
            break
        params = value
    return params


# ---------------------------------------------------------------------------------------------------- messages


#: The timings a :class:`MessageRecord` carries, as :class:`ReplyTimings` defines them (its clock is the record's own,
#: None for a message never sent): one list, so a new timing reaches the records without a second edit.
_TIMING_FIELDS = tuple(f.name for f in fields(ReplyTimings) if f.name != "clock")
#: The timings of a message that failed before any chunk was sent: no chunk, every duration unknown.
_NOTHING_SENT = derive_timings(
    clock="none", sent_ns=(), recv_ns=(), final_ns=None, audio_start_ns=None, audio_end_ns=None
)


def _perceived_fields(entry: Mapping[str, Any] | None) -> dict[str, Any]:
    if entry is None:
        return {}
    return {**{name: entry[name] for name in PERCEIVED_FIELDS}, "perceived_clock": entry["clock"]}


def _message_record(
    session_id: str | None, intent: Any, params: dict[str, Any], timings: ReplyTimings, **outcome: Any
) -> MessageRecord:
    """The record of one message: what was sent and in which settings, its ``timings``, and its ``outcome``."""
    return MessageRecord(
        session_id=session_id,
        intent=intent,
        mode=_MODE_OF_INTENT.get(str(intent)),
        voice=params.get("vid"),
        lang=params.get("lang"),
        params=params,
        **{name: getattr(timings, name) for name in _TIMING_FIELDS},
        **outcome,
    )


#: The per-message perceived timings a stage derives from the media (``perceived.heard`` events).
PERCEIVED_FIELDS = ("heard_ms", "media_delay_ms", "jitter_buffer_ms", "playout_delay_ms")
PERCEIVED_HEARD = "perceived.heard"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def perceived_timings(source: Events) -> dict[str, dict[str, Any]]:
    """Per message ``mid``, what the stage measured from the avatar's media on the browser's clock.

    From each ``perceived.heard`` event (recorded by the stage, one per reply whose first audible sample was
    heard): ``heard_ms`` (the message's last chunk sent to that sample), ``media_delay_ms`` (the reply's
    ``audio_start`` arriving to it), ``jitter_buffer_ms`` and ``playout_delay_ms`` (the browser's statistics for
    it), ``reply_mid`` and ``clock`` (``browser:<page id>``). Each value is a difference the browser took on its own
    clock: nothing is subtracted across clocks here. A message heard on two pages keeps the first.
    """
    out: dict[str, dict[str, Any]] = {}
    for e in _events(source):
        if e.kind != PERCEIVED_HEARD or not e.mid or not e.clock.startswith("browser:") or e.mid in out:
            continue
        entry: dict[str, Any] = {name: _number(e.data.get(name)) for name in PERCEIVED_FIELDS}
        entry["reply_mid"] = e.data.get("reply_mid")
        entry["clock"] = e.clock
        out[e.mid] = entry
    return out


def message_timings(source: Events) -> list[MessageRecord]:
    """One :class:`MessageRecord` per message sent (per ``mid`` of ``chat.sent``), in send order.

    A message's reply chunks, audio events and ``reply.done`` are the events recorded under its ``mid`` (the
    stream files a reply under the mid of the message it answers). Events on another clock than the message's
    chunks are ignored, so the timings are always single-clock. Messages that an experiment recorded as failed
    before any chunk was sent are included with ``mid=None`` and their ``error``.

    >>> records = message_timings(live.recorder)         # doctest: +SKIP
    >>> [r.ttfr_ms for r in records if not r.cold]       # doctest: +SKIP
    """
    events = _events(source)
    perceived = perceived_timings(events)
    sent: dict[str, list[Event]] = defaultdict(list)
    first_pos: dict[str, int] = {}
    by_mid: dict[str, list[Event]] = defaultdict(list)
    marks: dict[str, Event] = {}
    unsent_failures: list[tuple[int, Event]] = []
    for pos, e in enumerate(events):
        if e.kind == EventKind.CHAT_SENT and e.mid:
            sent[e.mid].append(e)
            first_pos.setdefault(e.mid, pos)
        elif e.kind == EXPERIMENT_MESSAGE:
            if e.mid:
                marks[e.mid] = e
            else:
                unsent_failures.append((pos, e))
        elif e.mid:
            by_mid[e.mid].append(e)
    params_timeline = _params_timeline(events)

    # Order of messages within each session, and the cold (first) one.
    ordered = sorted(sent, key=lambda mid: first_pos[mid])
    index_in_session: dict[str, int] = {}
    counts: dict[str | None, int] = defaultdict(int)
    for mid in ordered:
        sid = sent[mid][0].session_id
        index_in_session[mid] = counts[sid]
        counts[sid] += 1

    records: list[tuple[int, MessageRecord]] = []
    for mid in ordered:
        chunks = sorted(sent[mid], key=lambda e: (int(e.data.get("idx", 0)), e.t_ns))
        first = chunks[0]
        clock = first.clock
        same_clock = [e for e in by_mid[mid] if e.clock == clock]
        bot = [e for e in same_clock if e.kind == EventKind.CHAT_RECV and _from_bot(e)]
        bot.sort(key=lambda e: e.t_ns)
        finals = [e.t_ns for e in bot if e.data.get("fin")]
        starts = [e.t_ns for e in same_clock if e.kind == EventKind.AUDIO_START]
        ends = [e.t_ns for e in same_clock if e.kind == EventKind.AUDIO_END]
        done = next((e for e in by_mid[mid] if e.kind == EventKind.REPLY_DONE), None)
        complete = bool(done.data.get("complete")) if done is not None else bool(finals)
        interrupted = bool(done.data.get("interrupted")) if done is not None else False
        timings = derive_timings(
            clock=clock,
            sent_ns=[e.t_ns for e in chunks],
            recv_ns=[e.t_ns for e in bot],
            # A reply cut short has no final chunk, even if a late ``fin`` straggled in after the cut.
            final_ns=finals[0] if finals and (done is None or complete) else None,
            audio_start_ns=starts[0] if starts else None,
            audio_end_ns=ends[0] if ends else None,
        )
        mark = marks.get(mid)
        pos = first_pos[mid]
        record = _message_record(
            first.session_id,
            first.data.get("intent"),
            _params_at(params_timeline.get(first.session_id, []), pos),
            timings,
            mid=mid,
            text_chars=sum(int(e.data.get("text_chars") or 0) for e in chunks),
            bytes=sum(int(e.data.get("bytes") or 0) for e in chunks),
            cold=index_in_session[mid] == 0,
            warmup=bool(mark.data.get("warmup")) if mark else False,
            index=index_in_session[mid],
            complete=complete,
            interrupted=interrupted,
            reason=done.data.get("reason") if done is not None else ("no reply" if not bot else None),
            error=mark.data.get("error") if mark else None,
            clock=clock,
            first_sent_ns=first.t_ns,
            **_perceived_fields(perceived.get(mid)),
        )
        records.append((pos, record))
    for pos, mark in unsent_failures:
        record = _message_record(
            mark.session_id,
            mark.data.get("intent"),
            _params_at(params_timeline.get(mark.session_id, []), pos),
            _NOTHING_SENT,
            mid=None,
            text_chars=int(mark.data.get("text_chars") or 0),
            bytes=0,
            cold=False,
            warmup=bool(mark.data.get("warmup")),
            index=int(mark.data.get("index") or 0),
            complete=False,
            interrupted=False,
            reason="not sent",
            error=mark.data.get("error"),
            clock=None,
            first_sent_ns=None,
        )
        records.append((pos, record))
    records.sort(key=lambda item: item[0])
    return [record for _, record in records]


# ---------------------------------------------------------------------------------------------------- commands


def command_timings(source: Events) -> list[CommandRecord]:
    """One :class:`CommandRecord` per command sent, in send order.

    ``ack_ms`` uses the first ack matched to the command's ``mid`` on the same clock. ``interrupt_to_audio_end_ms``
    is measured only when the avatar was speaking when the interrupt was sent (more ``audio_start`` than
    ``audio_end`` events before it in that session, on that clock): to the next ``audio_end``.
    """
    events = _events(source)
    acks: dict[tuple[str | None, str], Event] = {}
    missing: set[str | None] = set()
    audio: dict[tuple[str | None, str], list[Event]] = defaultdict(list)
    for e in events:
        if e.kind == EventKind.ACK and e.data.get("matched", True):
            acks.setdefault((e.mid, e.clock), e)
        elif e.kind == EventKind.ACK_MISSING:
            missing.add(e.mid)
        elif e.kind in (EventKind.AUDIO_START, EventKind.AUDIO_END):
            audio[(e.session_id, e.clock)].append(e)
    records: list[CommandRecord] = []
    for e in events:
        if e.kind != EventKind.COMMAND_SENT:
            continue
        ack = acks.get((e.mid, e.clock))
        to_audio_end = None
        if e.data.get("cmd") == "interrupt":
            timeline = sorted(audio[(e.session_id, e.clock)], key=lambda a: a.t_ns)
            starts_before = sum(1 for a in timeline if a.kind == EventKind.AUDIO_START and a.t_ns <= e.t_ns)
            ends_before = sum(1 for a in timeline if a.kind == EventKind.AUDIO_END and a.t_ns <= e.t_ns)
            if starts_before > ends_before:  # the avatar was speaking when the interrupt left
                end = next((a for a in timeline if a.kind == EventKind.AUDIO_END and a.t_ns >= e.t_ns), None)
                to_audio_end = _ms(e.t_ns, end.t_ns) if end is not None else None
        code = ack.data.get("code") if ack is not None else None
        records.append(
            CommandRecord(
                session_id=e.session_id,
                mid=e.mid,
                cmd=str(e.data.get("cmd")),
                clock=e.clock,
                sent_ns=e.t_ns,
                bytes=e.data.get("bytes"),
                ack_ms=_ms(e.t_ns, ack.t_ns) if ack is not None else None,
                code=int(code) if code is not None else None,
                msg=ack.data.get("msg") if ack is not None else None,
                ack_missing=e.mid in missing and ack is None,
                interrupt_to_audio_end_ms=to_audio_end,
            )
        )
    return records


# ---------------------------------------------------------------------------------------------------- HTTP


def http_timings(source: Events) -> list[HttpRecord]:
    """One :class:`HttpRecord` per HTTP attempt of the REST client, in recording order."""
    records = []
    for e in _events(source):
        if e.kind != EventKind.HTTP:
            continue
        d = e.data
        records.append(
            HttpRecord(
                session_id=e.session_id,
                endpoint=str(d.get("endpoint")),
                method=d.get("method"),
                path=d.get("path"),
                http_status=d.get("http_status"),
                code=d.get("code"),
                ms=float(d["ms"]) if d.get("ms") is not None else None,
                attempt=int(d.get("attempt") or 1),
                error=d.get("error"),
                clock=e.clock,
                t_ns=e.t_ns,
            )
        )
    return records


# ---------------------------------------------------------------------------------------------------- sessions


def _first(events: list[Event], kind: str, clock: str, after: int | None = None) -> Event | None:
    return next(
        (e for e in events if e.kind == kind and e.clock == clock and (after is None or e.t_ns >= after)),
        None,
    )


def _create_request(events: list[Event], created: Event, claimed: set[int]) -> Event | None:
    """The ``sessions.create`` request that produced ``created``.

    Its ``http`` event carries no session id (the id is in the answer), so it is the successful create request,
    on the same clock, that ended last before ``created`` was recorded, and that no other session claimed.
    """
    best: Event | None = None
    best_end = -1
    for e in events:
        if (
            e.kind != EventKind.HTTP
            or e.data.get("endpoint") != "sessions.create"
            or e.data.get("error")
            or e.clock != created.clock
            or id(e) in claimed
        ):
            continue
        end = e.t_ns + int(float(e.data.get("ms") or 0) * 1e6)
        if end <= created.t_ns and end > best_end:
            best, best_end = e, end
    return best


def session_timings(source: Events, *, clock: str = "kernel") -> list[SessionRecord]:
    """One :class:`SessionRecord` per session seen in the recording (in order of first appearance).

    Everything is measured on ``clock`` (the kernel's, where the REST client and the stream's life cycle are
    recorded); a step recorded on another clock is left out (``None``).
    """
    events = _events(source)
    per_session: dict[str, list[Event]] = defaultdict(list)
    for e in events:
        if e.session_id:
            per_session[e.session_id].append(e)
    claimed: set[int] = set()
    records = []
    for sid, evs in per_session.items():
        evs = sorted(evs, key=lambda e: e.t_ns)
        created = _first(evs, EventKind.SESSION_CREATED, clock)
        request = _create_request(events, created, claimed) if created is not None else None
        if request is not None:
            claimed.add(id(request))
        own = [e for e in evs if e.clock == clock]
        if not own and request is None:
            continue
        start = request.t_ns if request is not None else (own[0].t_ns if own else 0)
        live = _first(evs, EventKind.SESSION_LIVE, clock)
        connect = _first(evs, EventKind.CONNECT_START, clock)
        connected = _first(evs, EventKind.CONNECTED, clock, after=connect.t_ns if connect else None)
        first_reply = next(
            (
                e
                for e in evs
                if e.kind == EventKind.CHAT_RECV
                and e.clock == clock
                and _from_bot(e)
                and (connected is None or e.t_ns >= connected.t_ns)
            ),
            None,
        )
        close = _first(evs, EventKind.CLOSE_START, clock)
        closed = _first(evs, EventKind.CLOSED, clock, after=close.t_ns if close else None)
        params_marks = [e for e in evs if e.kind == EXPERIMENT_SESSION]

        def at(e: Event | None, start: int = start) -> float | None:
            return _ms(start, e.t_ns) if e is not None else None

        records.append(
            SessionRecord(
                session_id=sid,
                clock=clock,
                start_ns=start,
                create_ms=float(request.data["ms"]) if request is not None and request.data.get("ms") else None,
                live_ms=_ms(created.t_ns if created else None, live.t_ns if live else None),
                connect_ms=_ms(connect.t_ns if connect else None, connected.t_ns if connected else None),
                first_reply_ms=_ms(connected.t_ns if connected else None, first_reply.t_ns if first_reply else None),
                close_ms=_ms(close.t_ns if close else None, closed.t_ns if closed else None),
                created_at_ms=at(created),
                live_at_ms=at(live),
                connect_at_ms=at(connect),
                connected_at_ms=at(connected),
                first_reply_at_ms=at(first_reply),
                close_at_ms=at(close),
                closed_at_ms=at(closed),
                messages=len({e.mid for e in evs if e.kind == EventKind.CHAT_SENT}),
                params=dict(params_marks[0].data.get("params") or {}) if params_marks else {},
            )
        )
    return records
