"""The ``akool-lab`` command.

Subcommands (each implemented in its own module, imported only when that subcommand runs):

- ``akool-lab sim``: serve the embedded AKool-compatible simulator on loopback (``akool_lab.sim.cli``).
- ``akool-lab demo``: the main job: the whole lifecycle and a latency experiment, with a report (``akool_lab.demo``).
- ``akool-lab report DIR [DIR2]``: re-render a saved run, or compare two (``akool_lab.metrics.report``).
- ``akool-lab bench``: the benchmarks (``akool_lab.bench``).
- ``akool-lab reap``: close every journaled session the service still reports as open (``akool_lab.api``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

__all__ = ["build_parser", "main"]

PROFILES = ("fast", "realistic", "degraded", "zero")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a number >= 1, got {value}")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"expected a port number 0..65535, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``akool-lab`` (every subcommand's flags are declared here)."""
    parser = argparse.ArgumentParser(
        prog="akool-lab",
        description="Explore and measure AKool streaming avatars (with an embedded simulator).",
    )
    from akool_lab import __version__

    parser.add_argument("--version", action="version", version=f"akool-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    from akool_lab.sim import dialects_help

    sim = sub.add_parser(
        "sim",
        help="serve the AKool-compatible simulator on loopback until SIGINT/SIGTERM",
        epilog=dialects_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback 127.0.0.1)")
    sim.add_argument("--port", type=_port, default=0, help="port to bind; 0 picks a free one (default)")
    sim.add_argument("--api-key", help="the key clients must send (default: $AKOOL_SIM_API_KEY, else generated)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the latency model and faults (default 0)")
    sim.add_argument("--profile", choices=PROFILES, default="realistic", help="latency profile (default realistic)")
    sim.add_argument("--faults", default="", help="fault plan, e.g. 'session.create=5xx:0.2,chunk.drop=0.1'")
    sim.add_argument("--dialect", default=None, help="protocol dialect(s), e.g. 'no-idx,ack-cmd' (listed below)")

    demo = sub.add_parser("demo", help="run the whole lifecycle and a latency experiment, and write a report")
    demo.add_argument("--out", default="report", help="report directory (default: report/)")
    demo.add_argument("--target", choices=("sim", "real"), default="sim", help="embedded simulator or AKool")
    demo.add_argument("--sessions", type=_positive_int, default=3, help="sessions in the experiment (default 3)")
    demo.add_argument("--messages", type=_positive_int, default=8, help="messages per session (default 8)")
    demo.add_argument("--profile", choices=PROFILES, default="fast", help="simulator profile (default fast)")
    demo.add_argument("--seed", type=int, default=0, help="simulator seed (default 0)")
    demo.add_argument("--avatar", default=None, help="avatar id (default: the first available)")

    report = sub.add_parser("report", help="re-render a saved run, or compare two")
    report.add_argument("run", help="a directory written by demo or ExperimentResult.save()")
    report.add_argument("other", nargs="?", help="a second run to compare against")
    report.add_argument("--out", default=None, help="where to write the re-rendered report (default: RUN)")

    bench = sub.add_parser("bench", help="measure the toolkit's own cost and accuracy")
    bench.add_argument("--quick", action="store_true", help="a short run (under 60 s)")
    bench.add_argument("--out", default="bench.json", help="JSON file to write (default bench.json)")

    sub.add_parser("reap", help="close every journaled session that the service still reports as open")
    return parser


# subcommand -> module with ``run(args: argparse.Namespace) -> int``
_COMMANDS = {
    "sim": "akool_lab.sim.cli",
    "demo": "akool_lab.demo",
    "report": "akool_lab.metrics.report",
    "bench": "akool_lab.bench",
    "reap": "akool_lab.api.reap_cli",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``akool-lab`` console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    module = importlib.import_module(_COMMANDS[args.command])
    try:
        code: int = module.run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
