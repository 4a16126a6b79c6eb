"""``akool-lab sim``: serve the embedded simulator on loopback until SIGINT/SIGTERM.

The first line on stdout is exactly ``akool-lab sim listening on http://HOST:PORT`` (flushed), so that a script can
read the port when ``--port 0``; when the key was generated, the second line prints it.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
import threading
from types import FrameType
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
    """Serve with the flags of ``akool-lab sim``; returns the exit code (0 after SIGINT/SIGTERM, 2 on bad flags)."""
    from akool_lab.sim import FaultPlan, FaultSpecError, start

    try:
        plan = FaultPlan.parse(args.faults or "")
    except FaultSpecError as exc:
        print(f"akool-lab sim: error: --faults: {exc}", file=sys.stderr)
        return 2
    # The simulator takes the given key, else $AKOOL_SIM_API_KEY, else generates one (printed below).
    generated = not args.api_key and not os.environ.get("AKOOL_SIM_API_KEY")
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server = start(
            host=args.host,
            port=args.port,
            api_key=args.api_key or None,
            seed=args.seed,
            profile=args.profile,
            faults=plan,
        )
    except (OSError, RuntimeError, ValueError) as exc:
        print(f"akool-lab sim: error: {exc}", file=sys.stderr)
        return 1
    # Everything imported and built so far lives as long as the process: take it out of the cyclic GC's reach, so
    # that a full collection (tens of milliseconds with it, during which no frame goes out) only scans what the
    # sessions created since. Only here, where the process is the simulator's own (not in an embedding program).
    gc.collect()
    gc.freeze()
    try:
        print(f"akool-lab sim listening on {server.base_url}", flush=True)
        if generated:
            print(f"generated API key (pass it as x-api-key): {server.api_key}", flush=True)
        # No timeout: a periodic wake-up would take the GIL from the server thread and delay its emits.
        # The signal handler still runs (lock waits are interrupted by signals) and sets the event.
        stop.wait()
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
