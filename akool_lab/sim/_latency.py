"""Latency profiles of the simulator: how long the emulated service takes for each step.

A profile draws every delay from a seeded :class:`random.Random`, so that the same seed gives the same delays.
Delays are in milliseconds. ``zero`` injects nothing at all (for overhead benchmarks); ``fast`` keeps every delay
to a few milliseconds (for tests); ``realistic`` follows what a real TTS-backed avatar does; ``degraded`` is slow
and jittery.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

__all__ = ["PROFILES", "Profile", "profile_named"]


@dataclass(frozen=True, slots=True)
class Profile:
    """The parameters of one latency profile.

    Attributes:
        name: the profile's name.
        queue_ms: (low, high) of the uniform queueing time of a new session (status 1 -> 2).
        ttfr_ms: (median, sigma) of the lognormal delay from a question to the first reply chunk.
        audio_ms: (median, sigma) of the lognormal delay from the first reply chunk to ``audio_start``.
        gap_ms: (median, sigma) of the lognormal gap between two reply chunks.
        words_per_minute: the speech rate at voice speed 1.0 (``None``: speaking takes no time).
        rest_ms: (median, sigma) of the lognormal extra latency of every REST answer.
        avatar_processing_ms: how long an uploaded avatar takes to become ready (status 1 -> 2 -> 3).
        ack_ms: (median, sigma) of the lognormal delay before a command is acknowledged.
    """

    name: str
    queue_ms: tuple[float, float]
    ttfr_ms: tuple[float, float]
    audio_ms: tuple[float, float]
    gap_ms: tuple[float, float]
    words_per_minute: float | None
    rest_ms: tuple[float, float]
    avatar_processing_ms: float
    ack_ms: tuple[float, float]

    def queue(self, rng: random.Random) -> float:
        """Queueing time of a new session."""
        low, high = self.queue_ms
        return rng.uniform(low, high) if high > low else low

    def ttfr(self, rng: random.Random) -> float:
        """Delay from a question's last chunk to the first reply chunk."""
        return _lognormal(rng, *self.ttfr_ms)

    def audio(self, rng: random.Random) -> float:
        """Delay from the first reply chunk to ``audio_start``."""
        return _lognormal(rng, *self.audio_ms)

    def gap(self, rng: random.Random) -> float:
        """Gap between two reply chunks."""
        return _lognormal(rng, *self.gap_ms)

    def rest(self, rng: random.Random) -> float:
        """Extra latency of one REST answer."""
        return _lognormal(rng, *self.rest_ms)

    def ack(self, rng: random.Random) -> float:
        """Delay before a command's ack."""
        return _lognormal(rng, *self.ack_ms)

    def speak(self, text: str, speed: float) -> float:
        """How long speaking ``text`` takes at voice ``speed`` (words over the speech rate, never random)."""
        if self.words_per_minute is None:
            return 0.0
        words = max(1, len(text.split()))
        return words * 60_000.0 / (self.words_per_minute * speed)


def _lognormal(rng: random.Random, median: float, sigma: float) -> float:
    # A median of 0 means "no delay"; lognormal is what service latencies look like (long right tail).
    if median <= 0:
        return 0.0
    if sigma <= 0:
        return median
    return rng.lognormvariate(math.log(median), sigma)


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("zero", (0, 0), (0, 0), (0, 0), (0, 0), None, (0, 0), 0.0, (0, 0)),
        # 2 ms per word: a sentence is spoken in a few milliseconds, so tests stay fast.
        Profile("fast", (15, 25), (3, 0.2), (2, 0.2), (1, 0.2), 30_000.0, (0, 0), 150.0, (1, 0.2)),
        Profile("realistic", (1000, 3000), (400, 0.25), (250, 0.15), (120, 0.3), 150.0, (60, 0.3), 15_000.0, (40, 0.3)),
        Profile("degraded", (3000, 8000), (1200, 0.6), (600, 0.5), (250, 0.6), 130.0, (400, 0.6), 40_000.0, (300, 0.7)),
    )
}


def profile_named(name: str) -> Profile:
    """The profile called ``name``; raises ``ValueError`` naming the allowed ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"profile: unknown profile {name!r} (allowed: {', '.join(PROFILES)})") from None
