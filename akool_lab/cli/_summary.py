"""What ``akool-lab demo`` and ``akool-lab run`` print at the end of an experiment: the same words as the report."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from akool_lab.metrics import ExperimentResult

__all__ = ["print_summary"]


def print_summary(result: ExperimentResult, report: Path, *, out: TextIO) -> None:
    """Print the label of the numbers, the summary table, the headline, the failures by kind and the report's path."""
    from akool_lab.metrics._records import message_timings
    from akool_lab.metrics._report import headline

    def line(text: str = "") -> None:
        print(text, file=out, flush=True)

    streams = result.params.get("stream_types") or []
    where = result.label + (f" · stream type {', '.join(streams)}" if streams else "")
    line(f"Numbers: {where}")
    line(str(result.summary()))
    line()
    failures = result.failures()
    line(headline(message_timings(result.recorder), failures))
    for failure in failures:
        line(f"  {failure}")
    for error in result.errors:
        if error.startswith(("closing session", "close_all")):
            line(f"  {error}")
    if result.partial:
        line(f"This run is partial ({result.status}): it stopped before its end.")
    line()
    line(f"Report: {report}")
