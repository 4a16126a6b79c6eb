"""How long an experiment's session must last: estimated from its message plan, before anything is created.

A session costs credits for its ``duration`` and ends when that runs out, in the middle of a message if need be.
So the runner plans each session's duration from what it will send: the speech of every message at the voice's
speed, plus margins for the latencies around it, and refuses a plan that cannot fit in AKool's maximum (or in the
``duration`` the caller gave) before a single request is made. The unused part of a session is refunded on close,
so a margin costs nothing but protects the measurement.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from akool_lab.errors import ValidationError

__all__ = ["MAX_DURATION_S", "UNTIL", "SessionPlan", "estimate_speech_s", "plan_session", "voice_speed"]

#: AKool's maximum session duration (API reference: 1..3600 s).
MAX_DURATION_S = 3600
#: Where a message stops: at ``audio_start`` (then interrupted), at the reply's last chunk, or at ``audio_end``.
UNTIL = ("audio_start", "reply", "audio_end")
#: A conservative speech rate for planning (slower than the simulator's 150 wpm: never plan too short).
PLANNING_WPM = 130.0
#: Creating, becoming live (queueing), connecting and set-params, before the first message.
SETUP_MARGIN_S = 30.0
#: Latencies around one message: first reply, audio start, an interrupt's ack, the avatar's thinking in mode 2.
MESSAGE_MARGIN_S = 5.0
#: A dialogue answer's length is the avatar's choice: plan for this many words of speech per mode 2 message.
ANSWER_WORDS = 60


def estimate_speech_s(text: str, speed: float = 1.0) -> float:
    """Seconds that speaking ``text`` takes at voice ``speed`` (at the planning rate, :data:`PLANNING_WPM`)."""
    words = max(1, len(text.split()))
    return words * 60.0 / (PLANNING_WPM * speed)


@dataclass(frozen=True, slots=True)
class SessionPlan:
    """The planned duration of one session of an experiment.

    Attributes:
        duration_s: the duration to create the session with (seconds, whole).
        needed_s: the estimate it is based on (speech plus margins).
        speech_s: the estimated speech alone.
    """

    duration_s: int
    needed_s: float
    speech_s: float


def voice_speed(combo: Mapping[str, Any]) -> float:
    """The voice speed a set-params combination asks for (``vparams.speed``; 1.0 when it does not say)."""
    vparams = combo.get("vparams")
    speed = vparams.get("speed") if isinstance(vparams, Mapping) else None
    return float(speed) if isinstance(speed, (int, float)) and speed > 0 else 1.0


def plan_session(
    texts: Sequence[str],
    *,
    mode: int,
    until: str,
    combo: Mapping[str, Any] | None = None,
    duration: int | None = None,
) -> SessionPlan:
    """Plan one session that sends ``texts`` in order (mode 1 speaks them, mode 2 answers them).

    Args:
        until: :data:`UNTIL`; ``"audio_start"`` interrupts each message once the avatar speaks, so its speech
            costs nothing; ``"reply"`` and ``"audio_end"`` let the avatar speak it all (the next message waits).
        combo: the session's set-params (``vparams.speed`` changes the speech duration).
        duration: the caller's duration, checked against the plan; ``None`` plans one.

    Raises:
        ValidationError: when the plan cannot fit in ``duration`` or in AKool's :data:`MAX_DURATION_S`; it says
            how long the plan needs and what to change.
    """
    if until not in UNTIL:
        raise ValidationError("until", f"got {until!r}", allowed=", ".join(repr(u) for u in UNTIL))
    speed = voice_speed(combo or {})
    speech = 0.0
    if until != "audio_start":
        for text in texts:
            speech += estimate_speech_s(" ".join(["word"] * ANSWER_WORDS) if mode == 2 else text, speed)
    needed = SETUP_MARGIN_S + speech + MESSAGE_MARGIN_S * len(texts)
    fixes = "fewer messages per session, shorter prompts, or until='audio_start' (each message is interrupted once the avatar speaks)"
    if needed > MAX_DURATION_S:
        raise ValidationError(
            "messages_per_session",
            f"a session of this plan needs about {needed:,.0f} s ({speech:,.0f} s of speech at speed {speed:g} and "
            f"latency margins), more than AKool's maximum session of {MAX_DURATION_S:,} s; nothing was created",
            allowed=fixes,
        )
    if duration is not None:
        if not isinstance(duration, int) or isinstance(duration, bool) or not 1 <= duration <= MAX_DURATION_S:
            raise ValidationError("duration", f"got {duration!r}", allowed=f"whole seconds 1..{MAX_DURATION_S}")
        if needed > duration:
            raise ValidationError(
                "duration",
                f"{duration} s is too short for this plan: a session needs about {needed:,.0f} s ({speech:,.0f} s of "
                f"speech at speed {speed:g} and latency margins), and the session would end in the middle of a "
                "message; nothing was created",
                allowed=f"duration=None (planned), at least {math.ceil(needed)} s, or {fixes}",
            )
        return SessionPlan(duration, needed, speech)
    return SessionPlan(min(MAX_DURATION_S, math.ceil(needed)), needed, speech)
