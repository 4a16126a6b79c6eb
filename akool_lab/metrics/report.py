"""``akool-lab report RUN [OTHER] [--out DIR]``: re-render a saved run, or compare two.

A run is a directory written by ``akool-lab demo`` or ``ExperimentResult.save()``; everything is re-derived from
its ``events.jsonl`` (and ``params.json`` for the parameters and target), so a report made with an older version
can be re-rendered with a newer one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["run"]


def run(args: argparse.Namespace) -> int:
    """Run the ``report`` subcommand; returns the process exit code (0 ok, 2 when a run cannot be read)."""
    from akool_lab.metrics._report import write_comparison
    from akool_lab.metrics._result import ExperimentResult

    try:
        first = ExperimentResult.load(args.run)
        second = ExperimentResult.load(args.other) if args.other else None
    except (FileNotFoundError, ValueError) as exc:
        print(f"akool-lab report: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out) if args.out else Path(args.run)
    if second is None:
        path = first.save(out)
        print(first.summary())
        print(f"\nreport: {path}")
        return 0
    labels = (Path(args.run).resolve().name or "A", Path(args.other).resolve().name or "B")
    if labels[0] == labels[1]:
        labels = (f"A: {labels[0]}", f"B: {labels[1]}")
    path = write_comparison(out, first.recorder, second.recorder, labels=labels)
    print(f"{labels[0]}:\n{first.summary()}\n\n{labels[1]}:\n{second.summary()}")
    print(f"\ncomparison: {path}")
    return 0
