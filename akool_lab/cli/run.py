"""``akool-lab run``: a latency experiment from the command line, on the simulator or AKool.

The same experiment as :func:`akool_lab.metrics.run_experiment` (same progress bar, summary and report): the run
is planned and checked before any session is created, its events are written to ``--out`` as they happen, and the
command exits 1 when a message failed (summarised by kind), 2 on bad input, 130 on Ctrl+C (what was measured is
on disk: ``akool-lab report OUT`` renders it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from akool_lab.cli._args import PROFILES, TARGETS, positive_int
from akool_lab.metrics import UNTIL

__all__ = ["add_parser", "read_prompts", "run"]


def add_parser(sub: Any) -> None:
    """Declare ``run`` and its flags."""
    p = sub.add_parser(
        "run",
        help="run a latency experiment (sessions x messages) and write its report",
        description="Run a latency experiment on the embedded simulator or on AKool, and write its report.",
    )
    p.add_argument("--target", choices=TARGETS, default="sim", help="simulator, AKool, or AKool when a key is set")
    p.add_argument("--profile", choices=PROFILES, default="realistic", help="simulator profile (default realistic)")
    p.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    p.add_argument("--sessions", type=positive_int, default=3, help="sessions (default 3)")
    p.add_argument("--messages", type=positive_int, default=8, help="messages per session (default 8)")
    p.add_argument("--mode", type=int, choices=(1, 2), default=1, help="1: say (retelling), 2: ask (dialogue)")
    p.add_argument("--prompts", metavar="FILE", help="prompts, one a line (or a JSON list); default: built-in")
    p.add_argument(
        "--until",
        choices=UNTIL,
        default="audio_end",
        help="where each message stops: audio_start (then interrupted: no speech paid for), reply, audio_end",
    )
    p.add_argument("--concurrency", type=positive_int, default=1, help="sessions at a time (default 1)")
    p.add_argument("--warmup", type=int, default=0, help="first messages of each session left out (default 0)")
    p.add_argument("--duration", type=positive_int, default=None, help="session duration in s (default: planned)")
    p.add_argument("--avatar", default=None, help="avatar id (default: the first available)")
    p.add_argument("--stream-type", default=None, help="stream type (default: livekit on AKool, as is on the sim)")
    p.add_argument("--out", default=None, help="run directory (default: runs/run-YYYYmmdd-HHMMSS)")


def read_prompts(path: str | Path) -> list[str]:
    """The prompts of ``path``: a JSON list of strings (``.json``), else one prompt a line (blank lines skipped)."""
    from akool_lab.errors import ValidationError

    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValidationError(
            "--prompts", f"cannot read {file}: {exc.strerror or exc}", allowed="a text file"
        ) from None
    if file.suffix == ".json":
        try:
            prompts = json.loads(text)
        except ValueError as exc:
            raise ValidationError(
                "--prompts", f"{file} is not JSON ({exc})", allowed="a JSON list of strings"
            ) from None
        if not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts):
            raise ValidationError("--prompts", f"{file} is not a list of strings", allowed="a JSON list of strings")
    else:
        prompts = [line.strip() for line in text.splitlines() if line.strip()]
    if not prompts or not all(p.strip() for p in prompts):
        raise ValidationError("--prompts", f"{file} holds no prompt", allowed="at least one non-empty prompt")
    return prompts


def run(args: argparse.Namespace) -> int:
    """Run the experiment; see the module docstring for the exit codes."""
    from akool_lab.errors import AkoolLabError, ValidationError
    from akool_lab.metrics import run_experiment
    from akool_lab.target import resolve_target

    out = Path(args.out or f"runs/run-{dt.datetime.now():%Y%m%d-%H%M%S}")
    started = time.perf_counter()
    try:
        prompts = read_prompts(args.prompts) if args.prompts else None
        target = resolve_target(args.target, profile=args.profile, seed=args.seed)
    except ValidationError as exc:
        print(f"akool-lab run: error: {exc}", file=sys.stderr)
        return 2
    try:
        print(f"akool-lab run on {target.label} ({target.base_url or 'default base URL'})", flush=True)
        print(
            f"{args.sessions} sessions x {args.messages} messages, mode {args.mode}, until {args.until}, "
            f"{args.concurrency} at a time; events are written to {out} as they happen",
            flush=True,
        )
        with target.client() as client:
            result = run_experiment(
                client,
                prompts,
                sessions=args.sessions,
                messages_per_session=args.messages,
                concurrency=args.concurrency,
                mode=args.mode,
                warmup=args.warmup,
                until=args.until,
                duration=args.duration,
                avatar_id=args.avatar,
                stream_type=args.stream_type,
                target=target,
                out=out,
            )
    except ValidationError as exc:
        print(f"akool-lab run: error: {exc}", file=sys.stderr)
        return 2
    except AkoolLabError as exc:
        print(f"akool-lab run: failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"\nakool-lab run: interrupted; what was measured is in {out} (akool-lab report {out})", file=sys.stderr)
        return 130
    finally:
        target.close()
    print()
    print(result.report_text())
    print(f"\nReport: {out / 'report.html'}")
    print(f"Done in {time.perf_counter() - started:.1f} s.")
    failures = result.failures()
    if failures:
        print("akool-lab run: failed: " + "; ".join(failures), file=sys.stderr)
        return 1
    return 0
