"""``akool-lab demo``: the main job (see :mod:`akool_lab.demo`); exits 1 when any message or session failed."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from akool_lab.cli._args import PROFILES, positive_int

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Declare ``demo`` and its flags."""
    demo = sub.add_parser("demo", help="run the whole lifecycle and a latency experiment, and write a report")
    demo.add_argument("--out", default="report", help="report directory (default: report/)")
    demo.add_argument("--target", choices=("sim", "real"), default="sim", help="embedded simulator or AKool")
    demo.add_argument("--sessions", type=positive_int, default=3, help="sessions in the experiment (default 3)")
    demo.add_argument("--messages", type=positive_int, default=8, help="messages per session (default 8)")
    demo.add_argument("--profile", choices=PROFILES, default="realistic", help="simulator profile (default realistic)")
    demo.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    demo.add_argument("--avatar", default=None, help="avatar id (default: the first available)")
    demo.add_argument("--faults", default=None, help="simulator fault plan (see akool-lab sim --help), to see failures")


def run(args: argparse.Namespace) -> int:
    """Run the demo; 0 when everything succeeded, 1 when something failed (summarised by kind), 2 on bad input."""
    from akool_lab.demo import run_demo
    from akool_lab.errors import AkoolLabError, ValidationError

    try:
        outcome = run_demo(
            out=args.out,
            target=args.target,
            sessions=args.sessions,
            messages=args.messages,
            profile=args.profile,
            seed=args.seed,
            avatar_id=args.avatar,
            faults=args.faults,
        )
    except ValidationError as exc:
        print(f"akool-lab demo: error: {exc}", file=sys.stderr)
        return 2
    except AkoolLabError as exc:
        print(f"akool-lab demo: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if not outcome.ok:
        print("akool-lab demo: failed: " + "; ".join(outcome.failures), file=sys.stderr)
        return 1
    return 0
