"""``akool-lab bench [--quick] [--out FILE]``: run every benchmark, print a table, write the JSON file.

The benchmarks live in the source checkout's ``benchmarks/`` folder (see :mod:`akool_lab.bench`): from an installed
wheel the command is left out of ``akool-lab --help`` and says what it needs when it is called.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

__all__ = ["UNAVAILABLE", "add_parser", "available", "run"]

UNAVAILABLE = (
    "the benchmarks run from a source checkout (they live in the repository's benchmarks/ folder, which an "
    "installed wheel does not hold): clone the repository and run `make bench`"
)


def available() -> bool:
    """Whether this installation can run the benchmarks (a source checkout)."""
    from akool_lab.bench import benchmarks_available

    return benchmarks_available()


def add_parser(sub: Any) -> None:
    """Declare ``bench`` and its flags."""
    bench = sub.add_parser("bench", help="measure the toolkit's own cost and accuracy (source checkout only)")
    bench.add_argument("--quick", action="store_true", help="a short run (under 60 s)")
    bench.add_argument("--out", default="bench.json", help="JSON file to write (default bench.json)")


def run(args: argparse.Namespace) -> int:
    """Run every benchmark; 0 when done, 2 outside a source checkout."""
    from akool_lab.bench import TARGETS, meets, run_benchmarks

    try:
        print(f"akool-lab bench ({'quick' if args.quick else 'full'})", flush=True)
        figures, details = run_benchmarks(quick=args.quick, log=lambda line: print(line, flush=True))
    except FileNotFoundError as exc:
        print(f"akool-lab bench: error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    out.with_suffix(".details.json").write_text(json.dumps(details, indent=2, default=str) + "\n", encoding="utf-8")
    print()
    print(f"{'figure':<26} {'value':>10}  {'target':>8}  met")
    for key, value in figures.items():
        op, target = TARGETS[key]
        print(f"{key:<26} {value:>10}  {op}{target:>6}  {'yes' if meets(key, value) else 'NO'}")
    print(f"\nwrote {out} (and {out.with_suffix('.details.json').name} with min/median/max)")
    return 0
