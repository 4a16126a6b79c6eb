"""The ``akool-lab`` command: one module a command in this package, each with ``add_parser(sub)`` and
``run(args) -> int`` (the exit code). A command module imports what it needs only when it runs, so that
``akool-lab --help`` stays quick.

- ``akool-lab demo``: the main job: the whole lifecycle and a latency experiment, with a report.
- ``akool-lab run``: a latency experiment from the command line (on the simulator or AKool).
- ``akool-lab report RUN [OTHER]``: re-render a saved (or partial) run, or compare two with significance.
- ``akool-lab sim``: serve the embedded AKool-compatible simulator on loopback.
- ``akool-lab reap``: close every journaled session that the service still reports as open.
- ``akool-lab bench``: the benchmarks (from a source checkout only: they live in its ``benchmarks/`` folder; an
  installed wheel leaves the command out and says so).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

__all__ = ["COMMANDS", "build_parser", "main"]

#: Every command, in the order ``--help`` lists them; each is the module ``akool_lab.cli.<name>``.
COMMANDS = ("demo", "run", "report", "sim", "reap", "bench")


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"akool_lab.cli.{name}")


def _available(name: str) -> bool:
    module = _module(name)
    check = getattr(module, "available", None)
    return bool(check()) if callable(check) else True


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``akool-lab`` (each command declares its own flags in its module)."""
    from akool_lab import __version__

    parser = argparse.ArgumentParser(
        prog="akool-lab",
        description="Explore and measure AKool streaming avatars (with an embedded simulator).",
    )
    parser.add_argument("--version", action="version", version=f"akool-lab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        if _available(name):
            _module(name).add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``akool-lab`` console script; returns the process exit code."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list[:1] and args_list[0] in COMMANDS and not _available(args_list[0]):
        print(f"akool-lab {args_list[0]}: {_module(args_list[0]).UNAVAILABLE}", file=sys.stderr)
        return 2
    args = build_parser().parse_args(args_list)
    try:
        code: int = _module(args.command).run(args)
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
