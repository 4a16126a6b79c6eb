"""The simulator's state: one :class:`SimState` per app, passed to every route (never a module global).

All times are ``time.perf_counter_ns()`` values of the server process: the one clock of the simulator.
Session and avatar statuses are computed from the clock when asked, so no timer is needed for them.
"""

from __future__ import annotations

import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

from akool_lab.sim._dialects import TRTC_DEMO_NAMES, Dialect
from akool_lab.sim._faults import FaultPlan
from akool_lab.sim._latency import Profile
from akool_lab.sim._limits import Enforcement, enforcement_for

__all__ = [
    "CREDITS_PER_MINUTE",
    "AvatarUpload",
    "Connection",
    "MediaOutput",
    "SessionRecord",
    "SimState",
    "percentiles",
]

#: The simulator's price: 1 credit per minute of session duration, charged at create, unused part refunded.
CREDITS_PER_MINUTE = 1.0
#: How many scheduling errors to keep for ``/_sim/stats`` (the most recent ones).
STATS_WINDOW = 200_000
NS_PER_MS = 1_000_000


def now_ns() -> int:
    """The simulator's clock."""
    return time.perf_counter_ns()


def percentiles(values: list[float] | deque[float]) -> dict[str, float | int | None]:
    """n, p50, p90, p99 and max of ``values`` (``None`` when empty), rounded to microseconds."""
    data = sorted(values)
    if not data:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None}

    def pick(q: float) -> float:
        return round(data[min(len(data) - 1, int(q * len(data)))], 3)

    return {"n": len(data), "p50": pick(0.5), "p90": pick(0.9), "p99": pick(0.99), "max": round(data[-1], 3)}


class Connection(Protocol):
    """What the routes ask of a session's open data channel (``_stream.StreamConnection`` is the one there is).

    Declared here so that the state does not import the stream module, which imports the state.
    """

    def end(self, reason: str) -> None:
        """Close the channel, saying why (the session was closed, expired...)."""

    def user_speech(self, text: str) -> str:
        """Play ``text`` as if the user had said it to the avatar; returns the mid of the avatar's answer."""


class MediaOutput(Protocol):
    """What the stream asks of a session's WebRTC media (``media._peer.MediaPeer`` is the one there is).

    Declared here, like :class:`Connection`, so that the state does not import the media package, which imports the
    state.
    """

    def speak(
        self,
        mid: str,
        text: str,
        audio_start_ns: int,
        audio_end_ns: int,
        arrived_ns: int,
        truth: dict[str, Any],
        settings: SessionSettings,
    ) -> None:
        """Plan a reply's speech: its first sample goes into the audio track at ``audio_start_ns``."""

    def cut(self, mid: str, at_ns: int) -> None:
        """The reply ``mid`` was interrupted: its speech stops at ``at_ns``."""

    async def close(self) -> None:
        """Stop the tracks and close the peer connection (idempotent)."""


@dataclass(slots=True)
class SessionSettings:
    """What the avatar uses for its next reply (set at create, changed by set-params)."""

    mode: int = 2
    lang: str | None = None
    voice_id: str | None = None
    voice_url: str | None = None
    background_url: str | None = None
    speed: float = 1.0

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON (for the truth)."""
        return {
            "mode": self.mode,
            "lang": self.lang,
            "voice_id": self.voice_id,
            "voice_url": self.voice_url,
            "background_url": self.background_url,
            "speed": self.speed,
        }


@dataclass(slots=True)
class SessionRecord:
    """One session: its REST face, its billing and its ground truth."""

    id: str
    index: int
    avatar_id: str
    stream_type: str
    duration_s: float
    created_ns: int
    live_ns: int
    fails: bool
    credentials: dict[str, Any]
    ws_token: str
    settings: SessionSettings
    knowledge_id: str | None
    rng: random.Random
    dialect: Dialect = field(default_factory=Dialect)
    scene_mode: str | None = None
    planned_queue_ms: float = 0.0
    closed_ns: int | None = None
    charged: float = 0.0
    connection: Connection | None = None
    media: MediaOutput | None = None  # the WebRTC peer publishing the avatar's speech and face (the media extra)
    next_reply: int = 0
    next_user: int = 0
    greeted: bool = False
    truth_messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    truth_commands: dict[str, dict[str, Any]] = field(default_factory=dict)
    truth_events: list[dict[str, Any]] = field(default_factory=list)
    sched_errors_ms: list[float] = field(default_factory=list)

    @property
    def expires_ns(self) -> int:
        """When the session's duration runs out."""
        return self.created_ns + int(self.duration_s * 1e9)

    @property
    def limits(self) -> Enforcement:
        """What the emulated provider's data channel accepts from the client."""
        return enforcement_for(self.stream_type)

    def status(self, now: int | None = None) -> int:
        """1 queueing, 2 live, 3 ended (closed or expired), 4 failed."""
        t = now_ns() if now is None else now
        if self.closed_ns is not None and self.closed_ns <= t:
            return 3
        if t >= self.live_ns and self.fails:
            return 4
        if t >= self.expires_ns:
            return 3
        return 2 if t >= self.live_ns else 1

    def end_ns(self) -> int | None:
        """When the session stopped consuming time (closed, expired, or failed), or ``None`` while it runs."""
        if self.fails:
            return self.live_ns if self.closed_ns is None else min(self.closed_ns, self.live_ns)
        candidates = [t for t in (self.closed_ns, self.expires_ns) if t is not None]
        end = min(candidates)
        return end if end <= now_ns() else None

    def ledger_entry(self) -> dict[str, Any]:
        """Charge and refund of this session (1 credit per minute of duration; unused time refunded)."""
        end = self.end_ns()
        if end is None:
            state, refunded = "open", 0.0
        elif self.fails:
            state, refunded = "failed", self.charged  # a session that never went live costs nothing
        else:
            used_s = (end - self.created_ns) / 1e9
            unused_s = max(0.0, self.duration_s - used_s)
            state = "closed" if self.closed_ns is not None and self.closed_ns < self.expires_ns else "expired"
            refunded = round(unused_s / 60.0 * CREDITS_PER_MINUTE, 4)
        return {
            "session_id": self.id,
            "duration_s": self.duration_s,
            "state": state,
            "charged": self.charged,
            "refunded": refunded,
            "net": round(self.charged - refunded, 4),
        }

    def public(self) -> dict[str, Any]:
        """The session as the REST API shows it (``SessionResponse``)."""
        return {
            "_id": self.id,
            "uid": 1,
            "type": 1,
            "status": self.status(),
            "stream_type": self.stream_type,
            "credentials": self.public_credentials(),
        }

    def public_credentials(self) -> dict[str, Any]:
        """The credentials as the session's dialect names them (the TRTC names differ between AKool's sources)."""
        if "trtc-demo-names" in self.dialect:
            return {TRTC_DEMO_NAMES.get(key, key): value for key, value in self.credentials.items()}
        return dict(self.credentials)


@dataclass(slots=True)
class AvatarUpload:
    """An avatar created with ``avatar/create``: ready after the profile's processing time."""

    record: dict[str, Any]
    created_ns: int
    processing_ms: float
    fails: bool

    def status(self) -> int:
        """1 queueing (first third of the processing time), 2 processing, then 3 ready or 4 failed."""
        elapsed_ms = (now_ns() - self.created_ns) / NS_PER_MS
        if elapsed_ms >= self.processing_ms:
            return 4 if self.fails else 3
        return 1 if elapsed_ms < self.processing_ms / 3 else 2

    def public(self) -> dict[str, Any]:
        """The avatar as the REST API shows it."""
        status = self.status()
        return {**self.record, "status": status, "available": status == 3}


@dataclass
class SimState:
    """Everything one simulator instance knows. Created by :func:`akool_lab.sim.app`, shared by its routes."""

    api_key: str
    seed: int
    profile: Profile
    faults: FaultPlan
    base_url: str | None = None
    dialect: Dialect = field(default_factory=Dialect)
    tokens: set[str] = field(default_factory=set)
    sessions: dict[str, SessionRecord] = field(default_factory=dict)
    uploads: dict[str, AvatarUpload] = field(default_factory=dict)
    knowledge: dict[str, dict[str, Any]] = field(default_factory=dict)
    sched_errors_ms: deque[float] = field(default_factory=lambda: deque(maxlen=STATS_WINDOW))
    emits: int = 0
    _counter: int = 0
    _rngs: dict[str, random.Random] = field(default_factory=dict)

    def rng(self, name: str) -> random.Random:
        """A seeded generator per purpose (``"rest"``, ``"fault:session.create"``...), reset with the faults."""
        rng = self._rngs.get(name)
        if rng is None:
            rng = self._rngs[name] = random.Random(f"{self.seed}:{name}")
        return rng

    def set_faults(self, plan: FaultPlan) -> None:
        """Replace the fault plan; fault decisions restart from the seed, so a plan replays the same way."""
        self.faults = plan
        for name in [n for n in self._rngs if n.startswith("fault:")]:
            del self._rngs[name]

    def roll(self, name: str, rate: float) -> bool:
        """Whether a fault with ``rate`` happens now (a seeded draw from the generator ``fault:<name>``)."""
        if rate <= 0.0:
            return False
        return self.rng(f"fault:{name}").random() < rate

    def new_object_id(self) -> str:
        """A fresh Mongo-style id: 24 hex characters, unique within this instance."""
        self._counter += 1
        return f"{secrets.token_hex(8)}{self._counter:08x}"

    def session_index(self) -> int:
        """The index of the next session (seeds its latency model)."""
        return len(self.sessions)

    def ledger(self) -> dict[str, Any]:
        """Every session's charge and refund, and the totals."""
        entries = [s.ledger_entry() for s in self.sessions.values()]
        charged = round(sum(e["charged"] for e in entries), 4)
        refunded = round(sum(e["refunded"] for e in entries), 4)
        return {
            "credits_per_minute": CREDITS_PER_MINUTE,
            "sessions": entries,
            "totals": {
                "sessions": len(entries),
                "charged": charged,
                "refunded": refunded,
                "net": round(charged - refunded, 4),
            },
        }
