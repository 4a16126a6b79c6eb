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
#: TRTC's web SDK (trtc-sdk-v5 5.17) refuses a custom message over 1,000 bytes, and more than 30 calls or 8,000 bytes
#: in a fixed window that opens at a call and closes only at a call more than 1,000 ms later on its ms clock (so it
#: spans up to 1,001 ms). A 960-byte burst plus 7,000 B/s over 1,001 ms is 7,967 bytes, and one message per 1/29 s
#: puts at most 30 calls in such a window: the paced schedule never meets the limiter (7,040 B/s, 8,000 - 960, could
#: reach 8,007 bytes in a 1,001 ms window, and 30 messages/s 31 calls).
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
