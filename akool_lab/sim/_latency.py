"""Latency profiles of the simulator: how long the emulated service takes for each step.

A profile draws every delay from a seeded :class:`random.Random`, so that the same seed gives the same delays.
Delays are in milliseconds. ``zero`` injects nothing at all (for overhead benchmarks); ``fast`` keeps every delay
to a few milliseconds (for tests); ``realistic`` (the default wherever a person meets the simulator) looks like a
real TTS-backed streaming avatar; ``degraded`` is slow and jittery (a loaded service on a poor network).

Where the ``realistic`` figures come from. AKool publishes no latency figures (neither its API reference nor its
official demo state any, and the data-channel protocol carries no timing field), so every delay below is an
**assumption**, chosen to sit where public reports put conversational avatar services; what is documented is
marked so. ``docs/realistic-profile.md`` gives the same table with the reasoning.

=====================  ===============================  ======================================================
figure                 realistic value                  stands for / source
=====================  ===============================  ======================================================
``queue_ms``           uniform 1,000-3,000 ms           ``session/create`` -> status 2 (live): a GPU worker is
                                                        assigned. Assumption; AKool's FAQ documents the
                                                        queueing status (1) and polling until 2, not its length.
``ttfr_ms``            lognormal, median 400 ms, σ .25  message sent -> first reply chunk (the text echoed back
                                                        in mode 1). Assumption: public reports of real-time
                                                        avatar services put a first response at 0.2-1 s.
``think_ms``           lognormal, median 900 ms, σ .35  mode 2 only, added to ``ttfr_ms``: the avatar's own LLM
                                                        writes the answer (time to first token of a hosted
                                                        LLM). Assumption (typical public LLM-API figures).
``audio_ms``           lognormal, median 250 ms, σ .15  first reply chunk -> ``audio_start``: TTS and the first
                                                        rendered video frames. Assumption.
``gap_ms``             lognormal, median 120 ms, σ .3   between two reply chunks. Assumption.
``words_per_minute``   150 at voice speed 1.0           speech rate: an average English speaking rate (public
                                                        figures put conversational speech at 140-160 wpm).
                                                        Speech lasts ``words / (wpm x speed)``; ``speed`` is the
                                                        voice's ``vparams.speed``, 0.8-1.2 (documented range).
``rest_ms``            lognormal, median 60 ms, σ .3    extra latency of each REST answer (a round trip to a
                                                        cloud API from Europe/US). Assumption.
``avatar_processing``  15 s                             an uploaded avatar becoming ready (status 1 -> 3).
                                                        Assumption; documented only as "poll until 3".
``ack_ms``             lognormal, median 40 ms, σ .3    a command (set-params, interrupt) -> its ack over the
                                                        data channel. Assumption (one RTC round trip).
=====================  ===============================  ======================================================

Documented limits the simulator enforces elsewhere: session ``duration`` 1-3,600 s (default 300), the data
channel's 960-byte message budget and Agora's 5,760 B/s pacing (AKool's docs and official demo).
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
        think_ms: (median, sigma) of the lognormal thinking time of the avatar's own LLM in mode 2 (dialogue),
            added to the time to first reply; mode 1 (retelling) does not think.
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
    think_ms: tuple[float, float] = (0.0, 0.0)

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

    def think(self, rng: random.Random) -> float:
        """Thinking time of the avatar's LLM before a mode 2 answer (added to the time to first reply)."""
        return _lognormal(rng, *self.think_ms)

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
        Profile("fast", (15, 25), (3, 0.2), (2, 0.2), (1, 0.2), 30_000.0, (0, 0), 150.0, (1, 0.2), (2, 0.2)),
        # Every figure is explained (and its source given, or called an assumption) in the module docstring.
        Profile(
            "realistic",
            (1000, 3000),
            (400, 0.25),
            (250, 0.15),
            (120, 0.3),
            150.0,
            (60, 0.3),
            15_000.0,
            (40, 0.3),
            (900, 0.35),
        ),
        Profile(
            "degraded",
            (3000, 8000),
            (1200, 0.6),
            (600, 0.5),
            (250, 0.6),
            130.0,
            (400, 0.6),
            40_000.0,
            (300, 0.7),
            (2500, 0.6),
        ),
    )
}


def profile_named(name: str) -> Profile:
    """The profile called ``name``; raises ``ValueError`` naming the allowed ones otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"profile: unknown profile {name!r} (allowed: {', '.join(PROFILES)})") from None
