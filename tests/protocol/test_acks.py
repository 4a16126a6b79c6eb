"""AckTracker: acks matched to sent commands by mid, with their latency."""

from __future__ import annotations

import pytest

from akool_lab.errors import ValidationError
from akool_lab.protocol import Ack, AckResult, AckTracker

MS = 1_000_000


def test_an_ack_yields_the_latency_since_the_command_was_sent() -> None:
    tracker = AckTracker()
    tracker.sent("c1", "set-params", now=10 * MS)
    result = tracker.ack(Ack("c1", "set-params", 1000, "OK"), now=55 * MS)
    assert result == AckResult("c1", "set-params", 1000, "OK", 45 * MS)
    assert result is not None and result.ok and tracker.pending == 0


def test_the_command_name_comes_from_what_was_sent_when_the_ack_omits_it() -> None:
    tracker = AckTracker()
    tracker.sent("c1", "interrupt", now=0)
    result = tracker.ack(Ack("c1", None, 1003, "bad"), now=1)
    assert result is not None and result.cmd == "interrupt" and not result.ok


def test_an_ack_for_an_unknown_or_already_acked_mid_is_ignored() -> None:
    tracker = AckTracker()
    tracker.sent("c1", "interrupt", now=0)
    assert tracker.ack(Ack("zz", "interrupt", 1000), now=1) is None
    assert tracker.ack(Ack("c1", "interrupt", 1000), now=1) is not None
    assert tracker.ack(Ack("c1", "interrupt", 1000), now=2) is None


def test_commands_without_an_ack_expire_once_and_are_forgotten() -> None:
    tracker = AckTracker()
    tracker.sent("c1", "set-params", now=0)
    tracker.sent("c2", "interrupt", now=50 * MS)
    assert tracker.expired(now=100 * MS, timeout_ns=60 * MS) == [("c1", "set-params")]
    assert tracker.expired(now=100 * MS, timeout_ns=60 * MS) == []
    assert tracker.pending == 1


def test_sending_two_commands_with_one_mid_is_rejected() -> None:
    tracker = AckTracker()
    tracker.sent("c1", "interrupt", now=0)
    with pytest.raises(ValidationError):
        tracker.sent("c1", "set-params", now=1)
