"""``ExperimentResult``: what an experiment leaves behind (its recorder), with summaries, figures and a report."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from akool_lab.events import Event, Recorder
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
from akool_lab.metrics._stats import DEFAULT_METRICS, PERCEIVED_METRICS, GroupKey, SummaryTable, summary_table

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
        directory: where the run's events were written as they happened (``None`` for a run kept in memory only).
        status: ``"complete"``, or for a partial run ``"running"`` (the process died: killed, crashed) or
            ``"interrupted"`` (Ctrl+C); a partial run holds every event recorded until it stopped.
    """

    recorder: Recorder
    params: dict[str, Any] = field(default_factory=dict)
    target: dict[str, Any] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    session_ids: list[str] = field(default_factory=list)
    elapsed_s: float | None = None
    versions: dict[str, str] = field(default_factory=dict)
    status: str = "complete"
    directory: Path | None = None

    @property
    def partial(self) -> bool:
        """Whether the run stopped before its end (see :attr:`status`)."""
        return self.status != "complete"

    @property
    def label(self) -> str:
        """What the numbers are: ``"simulated · profile realistic · seed 0"`` or ``"AKool"``."""
        from akool_lab.target import describe_target

        return describe_target(self.target)

    def failures(self) -> list[str]:
        """The messages that failed, by kind, in words: ``["2 messages incomplete: session ended"]``."""
        from akool_lab.metrics._failures import failure_counts, failure_lines

        return failure_lines(failure_counts(self.recorder.events))

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
        """The summary table of the message timings (see :func:`~akool_lab.metrics.summary_table`); metrics that no
        message has (``reply_ms``/``speak_ms`` when each message stopped at ``audio_start``) are left out."""
        records = self.records
        chosen = measured_metrics(records, metrics, until=self.params.get("until"))
        return summary_table(records, chosen, by, include_warmup=include_warmup)

    def report_text(self) -> str:
        """What the CLI prints after a run, in the report's words: the label of the numbers (and stream type), the
        summary table, the headline (ttfr and ttfa p50/p90 with intervals), the failures by kind, and whether the
        run is partial."""
        from akool_lab.metrics._report import headline

        streams = self.params.get("stream_types") or []
        lines = [f"Numbers: {self.label}" + (f" · stream type {', '.join(streams)}" if streams else "")]
        lines += [str(self.summary()), ""]
        failures = self.failures()
        lines.append(headline(self.records, failures))
        lines += [f"  {failure}" for failure in failures]
        lines += [f"  {e}" for e in self.errors if e.startswith(("closing session", "close_all"))]
        if self.partial:
            lines.append(f"This run is partial ({self.status}): it stopped before its end.")
        return "\n".join(lines)

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
            status=self.status,
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str]) -> ExperimentResult:
        """Read a run saved by :meth:`save` or being written by ``run_experiment(out=...)`` (its ``events.jsonl``
        and, when present, ``params.json``). A partial run (killed, interrupted) loads too: a last line cut short
        by the kill is left out; any other unreadable line is an error."""
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
            recorder=_load_events(events),
            params=params,
            target=dict(meta.get("target") or {}),
            errors=list(meta.get("errors") or []),
            session_ids=list(params.get("session_ids") or []),
            elapsed_s=params.get("elapsed_s"),
            versions=dict(meta.get("versions") or {}),
            status=str(meta.get("status") or "complete"),
            directory=base,
        )

    def __repr__(self) -> str:
        partial = "" if self.status == "complete" else f" status={self.status}"
        return (
            f"<ExperimentResult target={self.target.get('kind', '?')} sessions={len(self.session_ids)} "
            f"events={len(self.recorder)} errors={len(self.errors)}{partial}>"
        )


def _load_events(path: Path) -> Recorder:
    lines = path.read_text(encoding="utf-8").splitlines()
    events = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            events.append(Event.from_json(json.loads(line)))
        except ValueError as exc:
            if number == len(lines):
                break  # the last line of a killed run may be cut short: everything before it is whole
            raise ValueError(f"{path}: line {number} is not an event ({exc})") from None
    return Recorder(events)


def measured_metrics(
    records: Sequence[MessageRecord], metrics: Sequence[str] = DEFAULT_METRICS, *, until: str | None = None
) -> tuple[str, ...]:
    """The ``metrics`` that at least one record has a value for, in order (all of them when there is no record).

    In a run whose messages stopped at ``audio_start`` (``until``; then interrupted), the reply and speaking times
    are the interrupt's, not the avatar's: they are left out too. With the default ``metrics``, the perceived
    timings a stage measured (``heard_ms``, ``media_delay_ms``, on the browser's clock) follow when any record has
    them.
    """
    default = metrics is DEFAULT_METRICS
    if until == "audio_start":
        metrics = [m for m in metrics if m not in ("reply_ms", "speak_ms")]
    if not records:
        return tuple(metrics)
    present = tuple(m for m in metrics if any(getattr(r, m, None) is not None for r in records))
    # What a stage heard of the replies (browser clock), when it was measured: the default table gains it.
    heard = tuple(
        m
        for m in PERCEIVED_METRICS
        if default and m not in metrics and any(getattr(r, m, None) is not None for r in records)
    )
    return (present or tuple(metrics)) + heard


def load_run(directory: str | os.PathLike[str]) -> ExperimentResult:
    """Read a saved run (see :meth:`ExperimentResult.load`)."""
    return ExperimentResult.load(directory)
