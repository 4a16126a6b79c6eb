"""``ExperimentResult``: what an experiment leaves behind (its recorder), with summaries, figures and a report."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akool_lab.events import Recorder
from akool_lab.metrics._records import (
    CommandRecord,
    HttpRecord,
    MessageRecord,
    SessionRecord,
    command_timings,
    http_timings,
    message_timings,
    session_timings,
)
from akool_lab.metrics._stats import DEFAULT_METRICS, GroupKey, SummaryTable, summary_table

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["ExperimentResult", "load_run"]


@dataclass
class ExperimentResult:
    """The outcome of :func:`~akool_lab.metrics.run_experiment` (or of a saved run, :meth:`load`).

    Every timing is derived from :attr:`recorder`'s raw events when asked for, so the numbers always match the
    events that are saved with them.

    Attributes:
        recorder: every raw event of the run.
        params: the run's parameters (sessions, messages per session, concurrency, grid, mode, warm-up...).
        target: where it ran: ``{"kind": "sim" | "real" | ..., "base_url": ...}`` (never a key).
        errors: what failed (sessions and messages), in words; failed messages are also in :attr:`records`.
        session_ids: the sessions the run created (all of them closed at the end).
        elapsed_s: the run's wall time in seconds.
        versions: the versions a loaded run was made with (empty for a run made in this process).
    """

    recorder: Recorder
    params: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    elapsed_s: float | None = None
    versions: dict[str, str] = field(default_factory=dict)

    @property
    def records(self) -> list[MessageRecord]:
        """One record per message (warm-up and failed ones included, marked)."""
        return message_timings(self.recorder)

    @property
    def sessions(self) -> list[SessionRecord]:
        """One record per session."""
        return session_timings(self.recorder)

    @property
    def commands(self) -> list[CommandRecord]:
        """One record per command (set-params, interrupt...)."""
        return command_timings(self.recorder)

    @property
    def http(self) -> list[HttpRecord]:
        """One record per HTTP attempt."""
        return http_timings(self.recorder)

    def summary(
        self,
        metrics: Sequence[str] = DEFAULT_METRICS,
        by: Sequence[GroupKey] | GroupKey = ("intent", "phase"),
        *,
        include_warmup: bool = False,
    ) -> SummaryTable:
        """The summary table of the message timings (see :func:`~akool_lab.metrics.summary_table`)."""
        return summary_table(self.records, metrics, by, include_warmup=include_warmup)

    def plot(self) -> dict[str, Figure]:
        """The report's figures, by name (each a new ``matplotlib.figure.Figure``)."""
        from akool_lab.metrics._plots import standard_figures

        return standard_figures(self.records, self.sessions, self.http)

    def save(self, directory: str | os.PathLike[str], *, title: str = "akool_lab latency report") -> Path:
        """Write ``events.jsonl``, ``params.json``, ``summary.csv``, the PNGs and ``report.html``; returns the
        path of ``report.html``."""
        from akool_lab.metrics._report import write_report

        params = dict(self.params)
        if self.elapsed_s is not None:
            params.setdefault("elapsed_s", round(self.elapsed_s, 3))
        if self.session_ids:
            params.setdefault("session_ids", list(self.session_ids))
        return write_report(
            directory,
            self.recorder,
            params=params,
            target=self.target,
            errors=self.errors,
            title=title,
            run_versions=self.versions or None,
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ExperimentResult:
        """Read a run saved by :meth:`save` (its ``events.jsonl`` and, when present, ``params.json``)."""
        from akool_lab.metrics._report import EVENTS_FILE, PARAMS_FILE

        base = Path(directory)
        events = base / EVENTS_FILE
        if not events.is_file():
            raise FileNotFoundError(f"{events} not found: is {base} a directory written by a run's save()?")
        meta: dict[str, Any] = {}
        if (base / PARAMS_FILE).is_file():
            meta = json.loads((base / PARAMS_FILE).read_text(encoding="utf-8"))
        params = dict(meta.get("params") or {})
        return cls(
            recorder=Recorder.load(events),
            params=params,
            target=dict(meta.get("target") or {}),
            errors=list(meta.get("errors") or []),
            session_ids=list(params.get("session_ids") or []),
            elapsed_s=params.get("elapsed_s"),
            versions=dict(meta.get("versions") or {}),
        )

    def __repr__(self) -> str:
        return (
            f"<ExperimentResult target={self.target.get('kind', '?')} sessions={len(self.session_ids)} "
            f"events={len(self.recorder)} errors={len(self.errors)}>"
        )


def load_run(directory: str | os.PathLike[str]) -> ExperimentResult:
    """Read a saved run (see :meth:`ExperimentResult.load`)."""
    return ExperimentResult.load(directory)
