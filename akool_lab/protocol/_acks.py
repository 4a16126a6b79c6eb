"""Matching command acks to the commands sent, by ``mid`` (AKOOL_API.md section 5.5), for ``ack_ms``."""

from __future__ import annotations

from dataclasses import dataclass

from akool_lab.errors import ValidationError
from akool_lab.protocol._messages import ACK_OK, Ack

__all__ = ["AckResult", "AckTracker"]


@dataclass(frozen=True, slots=True)
class AckResult:
    """The outcome of one acknowledged command."""

    mid: str
    """The command's message id."""
    cmd: str
    """The command's name as it was sent (``"set-params"``, ``"interrupt"``...)."""
    code: int
    """The ack code: 1000 for success."""
    msg: str
    """The service's message."""
    ack_ns: int
    """Ack latency: arrival of the ack minus sending of the command, in ns."""

    @property
    def ok(self) -> bool:
        """True when the command succeeded (``code == 1000``)."""
        return self.code == ACK_OK


class AckTracker:
    """Remembers the commands sent and matches each ack to its command.

    >>> tracker = AckTracker()
    >>> tracker.sent("m1", "interrupt", now=1_000)
    >>> tracker.ack(Ack("m1", "interrupt", 1000, "OK"), now=4_000).ack_ns
    3000
    """

    def __init__(self) -> None:
        self._sent: dict[str, tuple[str, int]] = {}

    @property
    def pending(self) -> int:
        """How many commands still wait for their ack."""
        return len(self._sent)

    def sent(self, mid: str, cmd: str, now: int) -> None:
        """Record that command ``cmd`` with id ``mid`` was sent at ``now`` (ns).

        Raises:
            ValidationError: ``mid`` already waits for an ack (two commands with one id could not be told apart).
        """
        if mid in self._sent:
            raise ValidationError("mid", f"{mid!r} is already waiting for an ack", allowed="a fresh id (new_mid())")
        self._sent[mid] = (cmd, now)

    def ack(self, ack: Ack, now: int) -> AckResult | None:
        """Match an ack that arrived at ``now``; ``None`` when its ``mid`` is unknown or was already acked.

        Matching by ``mid`` only: :class:`~akool_lab.protocol.Conversation` also matches acks without one."""
        if ack.mid is None:
            return None
        entry = self._sent.pop(ack.mid, None)
        if entry is None:
            return None
        cmd, sent_ns = entry
        return AckResult(ack.mid, cmd, ack.code, ack.msg, now - sent_ns)

    def expired(self, now: int, timeout_ns: int) -> list[tuple[str, str]]:
        """The ``(mid, cmd)`` of commands sent more than ``timeout_ns`` ago without an ack; they are forgotten."""
        stale = [(mid, cmd) for mid, (cmd, sent_ns) in self._sent.items() if now - sent_ns > timeout_ns]
        for mid, _ in stale:
            del self._sent[mid]
        return stale
