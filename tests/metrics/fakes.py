"""A fake REST client and live session for the runner's unit tests: they record plausible raw events and let a
test inject failures at any step, and they remember which sessions were created and closed."""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from akool_lab.errors import AkoolError, ReplyIncompleteError, StreamClosedError
from akool_lab.events import Recorder


@dataclass
class FakeSession:
    id: str


@dataclass
class FakeReply:
    mid: str


@dataclass
class Faults:
    """Which steps fail: session indexes (creation order, 0-based) for session steps, (session, message) for messages."""

    create: set[int] = field(default_factory=set)
    live: set[int] = field(default_factory=set)
    close: set[int] = field(default_factory=set)
    message: set[tuple[int, int]] = field(default_factory=set)
    incomplete: set[tuple[int, int]] = field(default_factory=set)
    interrupt_at: tuple[int, int] | None = None  # KeyboardInterrupt raised by say() there
    ends_at: tuple[int, int] | None = None  # the server ends the session while this message is spoken


class FakeLive:
    def __init__(self, client: FakeClient, session_id: str, number: int) -> None:
        self.client = client
        self.session_id = session_id
        self.number = number
        self.sent = 0
        self.closed = False
        self.close_reason: str | None = None
        self.params: dict[str, Any] = {}
        self.untils: list[str] = []

    @property
    def is_open(self) -> bool:
        return not self.closed

    @property
    def avatar_stream(self) -> FakeLive:
        return self  # the runner only reads close_reason from it

    def _now(self) -> int:
        return time.perf_counter_ns()

    def _converse(self, text: str, intent: str) -> FakeReply:
        if self.closed:
            raise StreamClosedError("the stream is closed")
        j = self.sent
        self.sent += 1
        faults = self.client.faults
        if faults.interrupt_at == (self.number, j):
            raise KeyboardInterrupt
        if (self.number, j) in faults.message:
            raise StreamClosedError("injected: the connection dropped before sending")
        if faults.ends_at == (self.number, j):
            self.closed = True
            self.close_reason = "closed by the server (code 1000)"
            raise StreamClosedError("the stream closed: closed by the server (code 1000)")
        rec = self.client.rec
        mid = f"m{self.number}-{j}"
        t = self._now()
        rec.record(
            "chat.sent",
            t_ns=t,
            session_id=self.session_id,
            mid=mid,
            idx=0,
            fin=True,
            bytes=len(text),
            intent=intent,
            text_chars=len(text),
        )
        if (self.number, j) in faults.incomplete:
            rec.record(
                "reply.done", session_id=self.session_id, mid=mid, complete=False, interrupted=False, reason="no fin"
            )
            raise ReplyIncompleteError("injected: incomplete", FakeReply(mid))
        rec.record(
            "chat.recv",
            t_ns=t + 2_000_000,
            session_id=self.session_id,
            mid=mid,
            idx=0,
            fin=True,
            sender="bot",
            text_chars=len(text),
        )
        rec.record("audio_start", t_ns=t + 3_000_000, session_id=self.session_id, mid=mid)
        rec.record("audio_end", t_ns=t + 9_000_000, session_id=self.session_id, mid=mid)
        rec.record(
            "reply.done",
            t_ns=t + 9_000_000,
            session_id=self.session_id,
            mid=mid,
            complete=True,
            interrupted=False,
            reason=None,
        )
        return FakeReply(mid)

    def say(self, text: str, *, timeout: float | None = None, until: str = "audio_end") -> FakeReply:
        self.untils.append(until)
        return self._converse(text, "say")

    def ask(self, text: str, *, timeout: float | None = None, until: str = "audio_end") -> FakeReply:
        self.untils.append(until)
        return self._converse(text, "ask")

    def set_params(self, **params: Any) -> None:
        mid = f"c{self.number}"
        self.client.rec.record("command.sent", session_id=self.session_id, mid=mid, cmd="set-params", bytes=10)
        self.client.rec.record(
            "command.ack", session_id=self.session_id, mid=mid, cmd="set-params", code=1000, msg="OK", matched=True
        )
        self.params = params

    def close(self) -> None:
        self.closed = True
        self.client.sessions.close(self.session_id)


class FakeSessions:
    def __init__(self, client: FakeClient) -> None:
        self.client = client
        self.counter = itertools.count()
        self.lock = threading.Lock()

    def create(self, avatar_id: str, *, duration: int, mode_type: int, stream_type: str | None = None) -> FakeSession:
        with self.lock:
            number = next(self.counter)
            self.client.requests += 1
        self.client.rec.record("http", session_id=None, endpoint="sessions.create", ms=1.0, attempt=1, error=None)
        if number in self.client.faults.create:
            raise AkoolError(1201, "injected: create failed", "sessions.create")
        sid = f"s{number}"
        with self.lock:
            self.client.created.append(sid)
            self.client.open.add(sid)
            self.client.numbers[sid] = number
            self.client.modes[sid] = mode_type
            self.client.durations[sid] = duration
        self.client.rec.record("session.created", session_id=sid, status=1)
        return FakeSession(sid)

    def wait_until_live(self, session_id: str, timeout: float = 60.0) -> FakeSession:
        if self.client.numbers[session_id] in self.client.faults.live:
            raise AkoolError(1201, "injected: never became live", "sessions.wait_until_live")
        self.client.rec.record("session.live", session_id=session_id)
        return FakeSession(session_id)

    def close(self, session_id: str) -> None:
        number = self.client.numbers[session_id]
        with self.lock:
            if number in self.client.faults.close:
                self.client.faults.close.discard(number)  # fails once: close_all() must retry it
                raise AkoolError(1201, "injected: close failed", "sessions.close")
            self.client.open.discard(session_id)
            self.client.closed.append(session_id)
        self.client.rec.record("session.closed", session_id=session_id, code=1000)


class FakeAvatars:
    def __init__(self, client: FakeClient) -> None:
        self.client = client

    def list(self) -> list[Any]:
        self.client.requests += 1

        @dataclass
        class Avatar:
            avatar_id: str

        return [Avatar("avatar-1")]


class FakeClient:
    """Stands in for AkoolClient: sessions.create/wait_until_live/close, avatars.list, connect, close_all."""

    def __init__(self, faults: Faults | None = None, recorder: Recorder | None = None) -> None:
        self.faults = faults or Faults()
        self.recorder: Recorder | None = recorder if recorder is not None else Recorder()
        self.base_url = "http://fake.invalid"
        self.sessions = FakeSessions(self)
        self.avatars = FakeAvatars(self)
        self.created: list[str] = []
        self.closed: list[str] = []
        self.open: set[str] = set()
        self.numbers: dict[str, int] = {}
        self.modes: dict[str, int] = {}
        self.durations: dict[str, int] = {}
        self.requests = 0  # every call that would reach the service (avatars.list, sessions.create)
        self.lives: list[FakeLive] = []
        self.close_all_calls = 0

    @property
    def rec(self) -> Recorder:
        """The recorder the runner attached (it always attaches one)."""
        assert self.recorder is not None
        return self.recorder

    def connect(self, session: FakeSession, *, mode: int | None = None) -> FakeLive:
        live = FakeLive(self, session.id, self.numbers[session.id])
        self.lives.append(live)
        return live

    def close_all(self) -> list[str]:
        self.close_all_calls += 1
        ids = sorted(self.open)
        for sid in ids:
            self.sessions.close(sid)
        return ids
