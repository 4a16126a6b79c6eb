"""What the emulated providers' data channels accept from a client: per-message size and sustained rate.

These are the limits the *service* enforces, not the pacing a client aims at (that is
:mod:`akool_lab.protocol.limits`, which stays a little under them). They follow the providers' published figures:

- Agora: messages up to 1 KB and 6 KB/s per user (6,144 B/s); the simulator's ``websocket`` stream type uses the
  same figures. AKool's JS SDK sends 950-byte chunks paced at 6,000 B/s and the React demo 960-byte chunks at
  5,760 B/s; both stay under 6 KB/s.
- TRTC: messages up to 1 KB, 8 KB/s (8,192 B/s) and 30 messages/s. The demo paces at 7,680 B/s.
- LiveKit: messages up to 15 KiB and no rate limit.

A rate is checked with a token bucket that refills at the rate and holds a burst of :data:`BURST_MESSAGES` full
messages (4 KB on Agora): a client that paces every chunk passes however long it sends; one that sends a burst, or
keeps sending faster than the rate on average (for instance long messages back to back with no pause between
them), runs dry and its messages are refused. The limiter is sans-IO: time is passed in (nanoseconds on any one
clock), so tests drive it through minutes of simulated time in milliseconds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["BURST_MESSAGES", "ENFORCED", "Enforcement", "InboundLimiter", "enforcement_for"]

#: How many full-size messages the byte bucket holds (the burst a client may send at once).
BURST_MESSAGES = 4


@dataclass(frozen=True, slots=True)
class Enforcement:
    """The limits one provider enforces on what a client sends.

    Attributes:
        name: the stream type (``"agora"``, ``"trtc"``, ``"livekit"``, ``"websocket"``).
        hard_limit_bytes: the largest message accepted (bytes of the whole encoded frame).
        bytes_per_second: the sustained byte rate accepted, or ``None`` for no limit.
        messages_per_second: the sustained message rate accepted, or ``None`` for no limit.
    """

    name: str
    hard_limit_bytes: int
    bytes_per_second: int | None
    messages_per_second: int | None

    def to_json(self) -> dict[str, object]:
        """The limits as JSON (for the truth)."""
        return {
            "name": self.name,
            "hard_limit_bytes": self.hard_limit_bytes,
            "bytes_per_second": self.bytes_per_second,
            "messages_per_second": self.messages_per_second,
            "burst_bytes": None if self.bytes_per_second is None else BURST_MESSAGES * self.hard_limit_bytes,
        }


ENFORCED: dict[str, Enforcement] = {
    e.name: e
    for e in (
        Enforcement("agora", 1024, 6 * 1024, None),
        Enforcement("trtc", 1024, 8 * 1024, 30),
        Enforcement("livekit", 15 * 1024, None, None),
        Enforcement("websocket", 1024, 6 * 1024, None),
    )
}


def enforcement_for(stream_type: str) -> Enforcement:
    """The limits of ``stream_type`` (the Agora ones for a type the table does not know)."""
    return ENFORCED.get(stream_type, ENFORCED["agora"])


class InboundLimiter:
    """Admits or refuses each message a client sends, by size and by the provider's sustained rates.

    >>> limiter = InboundLimiter(ENFORCED["agora"], now_ns=0)
    >>> limiter.admit(950, now_ns=0) is None
    True
    >>> limiter.admit(2000, now_ns=1)
    'message of 2000 bytes is over the agora limit of 1024 bytes'
    """

    def __init__(self, limits: Enforcement, now_ns: int) -> None:
        self.limits = limits
        self._capacity = float(BURST_MESSAGES * limits.hard_limit_bytes)
        self._bytes = self._capacity
        self._messages = float(limits.messages_per_second or 0)
        self._last_ns = now_ns

    def admit(self, size: int, now_ns: int) -> str | None:
        """Take a message of ``size`` bytes arriving at ``now_ns``: ``None`` when accepted, else why not.

        A refused message costs nothing (the client may retry once the bucket has refilled).
        """
        limits = self.limits
        if size > limits.hard_limit_bytes:
            return f"message of {size} bytes is over the {limits.name} limit of {limits.hard_limit_bytes} bytes"
        elapsed = max(0, now_ns - self._last_ns) / 1e9
        self._last_ns = max(self._last_ns, now_ns)
        if limits.bytes_per_second is not None:
            self._bytes = min(self._capacity, self._bytes + elapsed * limits.bytes_per_second)
            if self._bytes < size:
                return f"over the {limits.name} rate of {limits.bytes_per_second} B/s"
        if limits.messages_per_second is not None:
            cap = float(limits.messages_per_second)
            self._messages = min(cap, self._messages + elapsed * limits.messages_per_second)
            if self._messages < 1.0:
                return f"over the {limits.name} rate of {limits.messages_per_second} messages/s"
            self._messages -= 1.0
        if limits.bytes_per_second is not None:
            self._bytes -= size
        return None
