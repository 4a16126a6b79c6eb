"""Pacing: a token bucket that returns how long to wait and never waits itself (AKOOL_API.md sections 4, 12.3)."""

from __future__ import annotations

from akool_lab.errors import ValidationError
from akool_lab.protocol.limits import ProviderBudget

__all__ = ["Pacer"]

_NS_PER_S = 1_000_000_000


class _Bucket:
    """A token bucket of ``capacity`` tokens refilled at ``rate`` tokens per second, in exact integer arithmetic.

    Instead of a token count it keeps the time at which the bucket will be full again, scaled by ``rate`` so that
    every quantity is an integer (``1e9 / 5760`` ns per byte is not): no float drift over a long session.
    """

    __slots__ = ("_capacity", "_full_at", "_rate")

    def __init__(self, rate: int, capacity: int) -> None:
        self._rate = rate
        self._capacity = capacity
        self._full_at: int | None = None  # in ns x rate; None: full since forever

    def earliest(self, cost: int, now: int) -> int:
        """The first time (ns) at which ``cost`` tokens are available."""
        if self._full_at is None:
            return now
        # The bucket holds enough once its deficit has shrunk to capacity - cost.
        ready_scaled = self._full_at - (self._capacity - cost) * _NS_PER_S
        return max(now, -(-ready_scaled // self._rate))  # ceil: never send early

    def take(self, cost: int, at: int) -> None:
        """Record that ``cost`` tokens were spent at time ``at`` (ns)."""
        base = at * self._rate if self._full_at is None else max(self._full_at, at * self._rate)
        self._full_at = base + cost * _NS_PER_S


class Pacer:
    """Spaces messages so a provider's data channel is never sent faster than it accepts.

    A token bucket of ``budget.max_message_bytes`` bytes refilled at ``budget.bytes_per_second``: the first message
    goes at once and a second full one waits ``max_message_bytes / bytes_per_second`` (1/6 s for agora). For a
    budget with ``messages_per_second`` (trtc: 30) a second bucket of capacity 1 spaces messages at least
    ``1 / messages_per_second`` apart: a capacity of 1 means no burst, so no one-second window ever holds more
    than the limit, whatever the sizes. A budget without ``bytes_per_second`` (``LIVEKIT_UNPACED``) is not byte-paced.

    >>> from akool_lab.protocol import AGORA
    >>> pacer = Pacer(AGORA)
    >>> pacer.delay_for(960, now=0), pacer.delay_for(960, now=0)
    (0, 166666667)

    Times are integer nanoseconds from one clock (``time.perf_counter_ns()`` in the caller).
    """

    def __init__(self, budget: ProviderBudget) -> None:
        self.budget = budget
        self._bytes = (
            None if budget.bytes_per_second is None else _Bucket(budget.bytes_per_second, budget.max_message_bytes)
        )
        self._messages = None if budget.messages_per_second is None else _Bucket(budget.messages_per_second, 1)

    def ready(self, nbytes: int, now: int) -> bool:
        """Whether a message of ``nbytes`` may be sent at ``now`` without waiting. Reserves nothing: the sender
        still calls :meth:`delay_for` for it (which then returns 0).

        >>> from akool_lab.protocol import AGORA
        >>> pacer = Pacer(AGORA)
        >>> pacer.ready(960, now=0), pacer.delay_for(960, now=0), pacer.ready(960, now=0)
        (True, 0, False)
        """
        if self._bytes is not None and self._bytes.earliest(nbytes, now) > now:
            return False
        return self._messages is None or self._messages.earliest(1, now) <= now

    def delay_for(self, nbytes: int, now: int) -> int:
        """How many ns to wait before sending a message of ``nbytes``; the slot is reserved.

        The message is assumed sent at ``now + delay``, so the next call accounts for it: calling this for every
        chunk of a message up front gives the whole send schedule.

        Raises:
            ValidationError: ``nbytes`` is negative or above the provider's hard per-message limit.
        """
        hard = self.budget.hard_limit_bytes
        if isinstance(nbytes, bool) or not isinstance(nbytes, int) or not 0 <= nbytes <= hard:
            raise ValidationError(
                "nbytes", f"{nbytes!r} bytes cannot be sent on {self.budget.name}", allowed=f"0..{hard}"
            )
        send_at = now
        if self._bytes is not None:
            send_at = max(send_at, self._bytes.earliest(nbytes, now))
        if self._messages is not None:
            send_at = max(send_at, self._messages.earliest(1, now))
        if self._bytes is not None:
            self._bytes.take(nbytes, send_at)
        if self._messages is not None:
            self._messages.take(1, send_at)
        return send_at - now
