"""Byte budgets and pacing of each provider's data channel (see AKOOL_API.md sections 4 and 12.3).

The budget is measured on the whole encoded JSON message, not just its text.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["AGORA", "LIVEKIT", "PROVIDERS", "TRTC", "WEBSOCKET", "ProviderBudget", "budget_for"]


@dataclass(frozen=True, slots=True)
class ProviderBudget:
    """How much one provider's data channel accepts.

    Attributes:
        name: the provider (``"agora"``, ``"trtc"``, ``"livekit"``, ``"websocket"``).
        max_message_bytes: the largest encoded message this project sends (the provider's hard limit is higher).
        bytes_per_second: the sustained byte rate to pace at, or ``None`` for no byte pacing.
        messages_per_second: the sustained message rate, or ``None`` for no message-rate limit.
        hard_limit_bytes: the provider's own per-message limit (what the service rejects above).
    """

    name: str
    max_message_bytes: int
    bytes_per_second: int | None
    messages_per_second: int | None
    hard_limit_bytes: int


AGORA = ProviderBudget("agora", 960, 5760, None, 1024)
#: TRTC's web SDK (trtc-sdk-v5 5.17) refuses a custom message over 1,000 bytes, and a call made less than 1,000 ms
#: (its Date.now() clock) after the call that opened its window when that window already holds 30 calls or the
#: bytes would pass 8,000 (the size is counted before the check). A 960-byte burst plus 7,040 B/s is exactly 8,000
#: bytes in a second, and 30 messages/s puts the 31st call at exactly 1,000 ms: both on the edge, where a rounded
#: millisecond decides. 7,000 B/s (at most 7,960 bytes) and 29 messages/s (at most 29 calls) keep a margin.
TRTC = ProviderBudget("trtc", 960, 7000, 29, 1000)
LIVEKIT = ProviderBudget("livekit", 960, None, None, 15 * 1024)
#: The simulator's WebSocket uses the Agora budget so that timings look like the real thing.
WEBSOCKET = ProviderBudget("websocket", 960, 5760, None, 1024)

PROVIDERS: dict[str, ProviderBudget] = {b.name: b for b in (AGORA, TRTC, LIVEKIT, WEBSOCKET)}


def budget_for(stream_type: str) -> ProviderBudget:
    """The budget for a session's ``stream_type``; raises ``ValidationError`` for an unknown one."""
    from akool_lab.errors import ValidationError

    try:
        return PROVIDERS[stream_type]
    except KeyError:
        raise ValidationError(
            "stream_type", f"unknown provider {stream_type!r}", allowed=", ".join(PROVIDERS)
        ) from None
