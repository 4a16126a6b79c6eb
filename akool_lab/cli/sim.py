"""``akool-lab sim``: serve the embedded simulator on loopback until SIGINT/SIGTERM (see :mod:`akool_lab.sim.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

from akool_lab.cli._args import PROFILES, port

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Declare ``sim`` and its flags."""
    sim = sub.add_parser("sim", help="serve the AKool-compatible simulator on loopback until SIGINT/SIGTERM")
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default: loopback 127.0.0.1)")
    sim.add_argument("--port", type=port, default=0, help="port to bind; 0 picks a free one (default)")
    sim.add_argument("--api-key", help="the key clients must send (default: $AKOOL_SIM_API_KEY, else generated)")
    sim.add_argument("--seed", type=int, default=0, help="seed of the latency model and faults (default 0)")
    sim.add_argument("--profile", choices=PROFILES, default="realistic", help="latency profile (default realistic)")
    sim.add_argument("--faults", default="", help="fault plan, e.g. 'session.create=5xx:0.2,chunk.drop=0.1'")


def run(args: argparse.Namespace) -> int:
    """Serve (see :func:`akool_lab.sim.cli.run`)."""
    from akool_lab.sim.cli import run as serve

    return serve(args)
