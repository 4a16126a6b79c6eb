"""``akool-lab reap``: close every journaled session that the service still reports as open.

For after a crashed kernel: the journal (``sessions.jsonl`` under ``$AKOOL_LAB_HOME`` or the user data dir) lists
the sessions this machine created; those that are still queueing or live on the service (``$AKOOL_BASE_URL``, else
AKool) are closed, so they stop costing credits. Credentials come from the environment (``AKOOL_API_KEY``, or
``AKOOL_CLIENT_ID`` and ``AKOOL_CLIENT_SECRET``).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["add_parser", "run"]


def add_parser(sub: Any) -> None:
    """Declare ``reap``."""
    sub.add_parser("reap", help="close every journaled session that the service still reports as open")


def run(args: argparse.Namespace) -> int:
    """Reap; print each closed id. Exit code 0 on success, 1 when the service failed, 2 without credentials."""
    from akool_lab.api import AkoolClient
    from akool_lab.errors import AkoolLabError, ValidationError

    try:
        client = AkoolClient()
    except ValidationError as exc:
        print(f"akool-lab reap: {exc}", file=sys.stderr)
        return 2
    with client:
        try:
            closed = client.sessions.reap()
        except AkoolLabError as exc:
            print(f"akool-lab reap: {exc}", file=sys.stderr)
            return 1
    for session_id in closed:
        print(session_id)
    print(f"closed {len(closed)} session(s) on {client.base_url}", file=sys.stderr)
    return 0
