"""What failed in a run, by kind, in words with the right nouns ("2 messages incomplete: session ended").

The runner marks every message it could not complete with an ``experiment.message`` event whose ``failure`` field
names the kind (see :func:`akool_lab.metrics._runner.failure_kind`); runs saved before that field existed count as
``"failed"``.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

from akool_lab.events import Event
from akool_lab.metrics._records import EXPERIMENT_MESSAGE

__all__ = ["failure_counts", "failure_lines", "plural"]

#: Kinds where the message was sent (or due) but its reply did not finish: "incomplete"; others "not sent"/"failed".
_INCOMPLETE = {"session ended", "reply incomplete", "no reply in time"}
_NOT_SENT = {"session did not start"}


def plural(count: int, noun: str) -> str:
    """``"1 message"``, ``"2 messages"``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def failure_counts(events: Iterable[Event]) -> Counter[str]:
    """How many messages failed, by kind of failure."""
    counts: Counter[str] = Counter()
    for event in events:
        if event.kind == EXPERIMENT_MESSAGE and event.data.get("ok") is False:
            counts[str(event.data.get("failure") or "failed")] += 1
    return counts


def failure_lines(counts: Counter[str]) -> list[str]:
    """One line per kind, most frequent first: ``"2 messages incomplete: session ended"``."""
    lines = []
    for kind, count in counts.most_common():
        state = "incomplete" if kind in _INCOMPLETE else "not sent" if kind in _NOT_SENT else "failed"
        lines.append(f"{plural(count, 'message')} {state}: {kind}")
    return lines
