"""Raw timing events and the recorder that stores them.

This module sits beside ``errors`` at the foundation of the package, above every layer, because every layer
produces events: the REST client (one ``http`` event per request), the live stream (chunks sent and received,
acks, audio events), the LLM bridge. The metrics layer (``akool_lab.metrics``) derives every timing from these
raw events only, so a new metric never needs a new experiment.

Clock rule: ``t_ns`` is a timestamp on the clock named by ``clock``. Durations are only ever computed between two
events of the same clock: ``"kernel"`` is ``time.perf_counter_ns()`` in this process (taken on the I/O thread for
stream events); ``"browser:<id>"`` is ``performance.now()`` of one browser page, converted to integer ns.
``wall`` (``time.time()``) is for display only and never subtracted.

The recorder is thread-safe: events are appended from the I/O loop thread and read from the kernel's thread.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["KERNEL_CLOCK", "Event", "EventKind", "Recorder"]

_log = logging.getLogger("akool_lab")

#: The clock of this Python process (``time.perf_counter_ns()``).
KERNEL_CLOCK = "kernel"


class EventKind:
    """The names of raw event kinds; the ``data`` fields each carries are listed beside it."""

    HTTP = "http"  # endpoint, method, path, http_status, code, ms, attempt, error
    SESSION_CREATED = "session.created"  # status, stream_type, duration (t_ns = response received)
    SESSION_STATUS = "session.status"  # status (each poll result of wait_until_live)
    SESSION_LIVE = "session.live"  # first time status 2 was seen
    CONNECT_START = "stream.connect_start"  # transport
    CONNECTED = "stream.connected"  # transport
    DISCONNECTED = "stream.disconnected"  # reason
    CLOSE_START = "session.close_start"
    CLOSED = "session.closed"  # code
    CHAT_SENT = "chat.sent"  # idx, fin, bytes, intent ("say" | "ask" | "llm"), text_chars (per chunk)
    CHAT_RECV = "chat.recv"  # reply_mid, idx, fin, sender ("bot" | "user"), text_chars, attributed (per chunk)
    REPLY_DONE = "reply.done"  # reply_mid, complete (bool), reason (when incomplete), chunks
    COMMAND_SENT = "command.sent"  # cmd, bytes, params (what a set-params asked for)
    ACK = "command.ack"  # cmd, code, msg
    ACK_MISSING = "command.ack_missing"  # cmd, timeout_s
    AUDIO_START = "audio_start"
    AUDIO_END = "audio_end"
    SERVER_EVENT = "server.event"  # event (other event names, kept as-is), plus the payload
    ERROR = "error"  # where, type, message
    LLM_START = "llm.start"
    LLM_FIRST_TOKEN = "llm.first_token"
    LLM_END = "llm.end"  # chars


@dataclass(frozen=True, slots=True)
class Event:
    """One raw, timestamped event.

    Attributes:
        kind: one of the :class:`EventKind` names.
        t_ns: the timestamp in integer nanoseconds on ``clock``.
        clock: ``"kernel"`` or ``"browser:<id>"``; two events may be subtracted only when their clocks match.
        session_id: the AKool session ``_id`` the event belongs to, if any.
        mid: the protocol message id (chat or command) the event belongs to, if any.
        data: kind-specific fields (see :class:`EventKind`); JSON-serialisable, never a secret.
        wall: ``time.time()`` when recorded, for display only.
    """

    kind: str
    t_ns: int
    clock: str = KERNEL_CLOCK
    session_id: str | None = None
    mid: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    wall: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (the line format of ``events.jsonl``)."""
        return {
            "kind": self.kind,
            "t_ns": self.t_ns,
            "clock": self.clock,
            "session_id": self.session_id,
            "mid": self.mid,
            "data": dict(self.data),
            "wall": self.wall,
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> Event:
        """Rebuild an event from :meth:`to_json`'s output."""
        return cls(
            kind=str(obj["kind"]),
            t_ns=int(obj["t_ns"]),
            clock=str(obj.get("clock", KERNEL_CLOCK)),
            session_id=obj.get("session_id"),
            mid=obj.get("mid"),
            data=dict(obj.get("data") or {}),
            wall=float(obj.get("wall", 0.0)),
        )


Listener = Callable[[Event], object]  # the return value is ignored

_wall = time.time

# An event recorded by Recorder.record_fields, kept as the Event's fields until someone reads it.
_Row = tuple[str, int, str, "str | None", "str | None", dict[str, Any], float]


class Recorder:
    """A thread-safe, append-only store of :class:`Event` records.

    >>> rec = Recorder()
    >>> rec.record("chat.sent", session_id="s1", mid="m1", idx=0, fin=True)  # doctest: +ELLIPSIS
    Event(kind='chat.sent', ...)
    >>> len(rec)
    1

    Listeners added with :meth:`subscribe` are called synchronously on the recording thread (often the I/O loop);
    they must be quick and must not block (widgets only schedule a redraw).
    """

    def __init__(self, events: Iterable[Event] = ()) -> None:
        self._lock = threading.Lock()
        self._events: list[Event | _Row] = list(events)
        self._built = len(self._events)  # every entry before this index is an Event
        self._listeners: list[Listener] = []
        #: Errors raised by listeners; kept (never swallowed silently) so that callers can inspect them.
        self.listener_errors: list[BaseException] = []

    # -- writing ---------------------------------------------------------------------------------

    def add(self, event: Event) -> Event:
        """Append ``event`` and notify listeners."""
        with self._lock:
            self._events.append(event)
            listeners = tuple(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception as exc:  # a broken listener must not break the I/O loop; it is kept and logged
                self.listener_errors.append(exc)
                _log.exception("event listener %r failed", listener)
        return event

    def record(
        self,
        kind: str,
        *,
        t_ns: int | None = None,
        clock: str = KERNEL_CLOCK,
        session_id: str | None = None,
        mid: str | None = None,
        **data: Any,
    ) -> Event:
        """Build and append an event; ``t_ns`` defaults to ``time.perf_counter_ns()`` now."""
        ts = time.perf_counter_ns() if t_ns is None else t_ns
        return self.add(Event(kind, ts, clock, session_id, mid, data))

    def record_fields(
        self, kind: str, t_ns: int, clock: str, session_id: str | None, mid: str | None, data: dict[str, Any]
    ) -> None:
        """:meth:`record` for hot paths (every frame of a live stream): the same event, with ``data`` taken as it is
        (not copied), and no :class:`Event` object built until it is read, unless a listener wants it now."""
        if self._listeners:
            self.add(Event(kind, t_ns, clock, session_id, mid, data))
            return
        # One list append, atomic on its own (the readers below never depend on the length staying put), so without
        # the lock: it is most of the cost of recording an event, and a live stream records several per message.
        self._events.append((kind, t_ns, clock, session_id, mid, data, _wall()))

    def extend(self, events: Iterable[Event]) -> None:
        """Append several events (listeners are notified for each)."""
        for event in events:
            self.add(event)

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener(event)`` for every future event; returns a function that unsubscribes."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    # -- reading ---------------------------------------------------------------------------------

    @property
    def events(self) -> list[Event]:
        """A snapshot (a new list) of all events so far, in recording order."""
        with self._lock:
            events = self._events
            end = len(events)  # rows appended from here on (record_fields takes no lock) are built next time
            for i in range(self._built, end):
                entry = events[i]
                if type(entry) is tuple:
                    events[i] = Event(*entry)
            self._built = end
            return events[:end]  # type: ignore[return-value]  # all Events up to end

    def __len__(self) -> int:
        with self._lock:
            return len(self._events)

    def __iter__(self) -> Iterator[Event]:
        return iter(self.events)

    def filter(self, kind: str | None = None, *, session_id: str | None = None, mid: str | None = None) -> list[Event]:
        """The events matching every given criterion."""
        return [
            e
            for e in self.events
            if (kind is None or e.kind == kind)
            and (session_id is None or e.session_id == session_id)
            and (mid is None or e.mid == mid)
        ]

    def __repr__(self) -> str:
        return f"<Recorder events={len(self)}>"

    # -- files -------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write all events as JSON lines (``events.jsonl``); returns the path."""
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        with target.open("w", encoding="utf-8") as fh:
            for event in self.events:
                fh.write(json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n")
        return target

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Recorder:
        """Read a recorder back from :meth:`save`'s JSON lines."""
        events = []
        with Path(path).open(encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    events.append(Event.from_json(json.loads(line)))
        return cls(events)
