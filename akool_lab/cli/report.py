"""``akool-lab report RUN [OTHER] [--out DIR]``: re-render a saved run, or compare two.

A run is a directory written by ``akool-lab demo``, ``akool-lab run`` or ``ExperimentResult.save()``, or one a
killed run left behind (it is rendered and said to be partial); everything is re-derived from its
``events.jsonl`` (and ``params.json`` for the parameters and target), so a report made with an older version can be
re-rendered with a newer one. With OTHER, it says for each headline metric whether the difference is significant
(difference of medians with a bootstrap 95% interval, and Mann-Whitney's p-value).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Declare ``report`` and its flags."""
    report = sub.add_parser("report", help="re-render a saved (or partial) run, or compare two with significance")
    report.add_argument("run", help="a directory written by demo, run or ExperimentResult.save()")
    report.add_argument("other", nargs="?", help="a second run to compare against")
    report.add_argument("--out", default=None, help="where to write the re-rendered report (default: RUN)")


def run(args: argparse.Namespace) -> int:
    """Run the ``report`` command; returns the exit code (0 ok, 2 when a run cannot be read)."""
    from akool_lab.metrics import ExperimentResult, compare_records, measured_metrics, write_comparison

    try:
        first = ExperimentResult.load(args.run)
        second = ExperimentResult.load(args.other) if args.other else None
    except (FileNotFoundError, ValueError) as exc:
        print(f"akool-lab report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.run)
    if second is None:
        path = first.save(out)
        if first.partial:
            print(f"Partial run ({first.status}): it stopped before its end; rendering what was measured.")
        print(first.report_text())
        print(f"\nreport: {path}")
        return 0
    labels = (Path(args.run).resolve().name or "A", Path(args.other).resolve().name or "B")
    if labels[0] == labels[1]:
        labels = (f"A: {labels[0]}", f"B: {labels[1]}")
    # Only what both runs measured (a run stopped at audio_start has no reply or speaking time): no empty rows.
    theirs = measured_metrics(second.records, until=second.params.get("until"))
    metrics = [m for m in measured_metrics(first.records, until=first.params.get("until")) if m in theirs]
    path = write_comparison(
        out, first.recorder, second.recorder, labels=labels, metrics=metrics, targets=(first.target, second.target)
    )
    for side, result, name in (("A", first, labels[0]), ("B", second, labels[1])):
        partial = f" (partial: {result.status})" if result.partial else ""
        print(f"{side} = {name}: {result.label}{partial}\n{result.summary()}\n")
    print("Is the difference significant? (difference of medians B - A, bootstrap 95% interval; Mann-Whitney)")
    for diff in compare_records(first.records, second.records):
        print(f"  {diff.metric}: {diff.verdict}")
    print(f"\ncomparison: {path}")
    return 0
