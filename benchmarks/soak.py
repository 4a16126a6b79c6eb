"""The soak: many sessions over minutes with mixed faults, then check that nothing leaked.

Sessions start at a steady pace (``sessions`` over ``seconds``), each on its own thread with its own client (so the
per-session recorder is released when the session ends, as in a notebook that re-runs a cell): create, wait until
live, connect, say a few messages, change a parameter, close. Faults are injected by the simulator (seeded). After
the last session: the ledger must show every session ended, the journal none open, the thread and file-descriptor
counts back to their level after the warm-up session, and the traced memory flat after the warm-up.

    python benchmarks/soak.py                         # 50 sessions over 5 minutes, degraded profile
    python benchmarks/soak.py --sessions 10 --seconds 20 --profile fast

``tests/reliability/test_soak.py`` runs a short version in ``make test``.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import tempfile
import threading
import time
import tracemalloc
from dataclasses import asdict, dataclass, field
from typing import Any

from akool_lab import errors, sim
from akool_lab.api import AkoolClient

AVATAR = "dvp_Tristan_cloth2_1080P"
#: Every kind of fault at once, at rates that leave most sessions usable.
MIXED_FAULTS = (
    "session.create=1215:0.05,session.detail=503:0.1,session.close=5xx:0.1,session.detail=slow:300:0.1,"
    "session.fail=0.05,chunk.drop=0.03,chunk.dup=0.05,chunk.reorder=0.05,chunk.nofin=0.05,"
    "ack.drop=0.1,ack.delay=300:0.1,stream.disconnect=0.005"
)
MESSAGES = ("Hello there.", "Tell me something short.", "One more sentence to speak, please.")


def open_fds() -> int:
    """How many file descriptors this process has open (Linux)."""
    return len(os.listdir("/proc/self/fd"))


def thread_names() -> list[str]:
    return sorted(t.name for t in threading.enumerate())


@dataclass
class SoakFigures:
    """What a soak did and what it left behind."""

    profile: str
    faults: str
    sessions_started: int = 0
    sessions_created: int = 0
    sessions_live: int = 0
    messages: int = 0
    replies_complete: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    duration_s: float = 0.0
    ledger_states: dict[str, int] = field(default_factory=dict)
    journal_open: int = 0
    threads_before: list[str] = field(default_factory=list)
    threads_after: list[str] = field(default_factory=list)
    fds_before: int = 0
    fds_after: int = 0
    traced_kib_after_warmup: float = 0.0
    traced_kib_after: float = 0.0
    unexpected: list[str] = field(default_factory=list)

    @property
    def leaked_sessions(self) -> int:
        return sum(n for state, n in self.ledger_states.items() if state == "open")


def _one_session(server: sim.SimServer, figures: SoakFigures, lock: threading.Lock, seed: int) -> None:
    outcomes: list[str] = []
    messages = complete = 0
    created = live_ok = False
    with AkoolClient(server.api_key, base_url=server.base_url, timeout=10.0, max_retries=3) as client:
        try:
            session = client.sessions.create(AVATAR, duration=120, mode_type=1)
            created = True
            client.sessions.wait_until_live(session.id, timeout=30)
            live_ok = True
            with client.connect(session, mode=1) as live:
                for text in MESSAGES[: 2 + seed % 2]:
                    messages += 1
                    try:
                        complete += live.say(text, timeout=30).complete
                    except (errors.ReplyIncompleteError, errors.TimeoutError, errors.StreamError) as exc:
                        outcomes.append(type(exc).__name__)
                        if live.closed:
                            break
                if not live.closed:
                    try:
                        live.set_params(lang="fr", timeout=2.0)
                    except errors.TimeoutError as exc:
                        outcomes.append("ack " + type(exc).__name__)
        except errors.AkoolLabError as exc:
            outcomes.append(type(exc).__name__)
        except Exception as exc:  # not a documented error: a finding of the soak
            outcomes.append("UNEXPECTED " + type(exc).__name__)
            with lock:
                figures.unexpected.append(repr(exc))
        finally:
            try:
                client.close_all()  # a session whose close failed above is closed here
            except errors.AkoolLabError as exc:
                outcomes.append("close_all " + type(exc).__name__)
    with lock:
        figures.sessions_created += created
        figures.sessions_live += live_ok
        figures.messages += messages
        figures.replies_complete += complete
        for outcome in outcomes or ["ok"]:
            figures.outcomes[outcome] = figures.outcomes.get(outcome, 0) + 1


def run_soak(
    *, sessions: int, seconds: float, profile: str = "degraded", faults: str = MIXED_FAULTS, seed: int = 1
) -> SoakFigures:
    """Run the soak against an in-process simulator and return its figures (the caller checks them)."""
    figures = SoakFigures(profile=profile, faults=faults)
    lock = threading.Lock()
    tracing = tracemalloc.is_tracing()
    if not tracing:
        tracemalloc.start()
    try:
        with sim.start(profile=profile, seed=seed) as server:
            # Warm-up without faults: starts the I/O loop thread, its executor worker and the connection pools,
            # so the "before" figures are the steady state, not an empty process.
            _one_session(server, SoakFigures(profile, ""), lock, 0)
            figures.threads_before, figures.fds_before = thread_names(), open_fds()
            figures.traced_kib_after_warmup = tracemalloc.get_traced_memory()[0] / 1024
            server.set_faults(faults)
            started = time.monotonic()
            workers = []
            for i in range(sessions):
                delay = started + i * seconds / sessions - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                worker = threading.Thread(target=_one_session, args=(server, figures, lock, i), name=f"soak-{i}")
                worker.start()
                workers.append(worker)
                figures.sessions_started += 1
            for worker in workers:
                worker.join(max(60.0, seconds))
            figures.duration_s = round(time.monotonic() - started, 1)
            server.set_faults(None)
            created_here = [e for e in server.ledger()["sessions"]]
            figures.ledger_states = dict(collections.Counter(e["state"] for e in created_here))
            from akool_lab.api._journal import Journal

            figures.journal_open = len(Journal().open_entries(server.base_url))
        figures.threads_after, figures.fds_after = thread_names(), open_fds()
        figures.traced_kib_after = tracemalloc.get_traced_memory()[0] / 1024
    finally:
        if not tracing:
            tracemalloc.stop()
    # the simulator's own thread is gone now; compare like with like
    figures.threads_before = [n for n in figures.threads_before if not n.startswith("akool-sim-")]
    return figures


def main(argv: list[str] | None = None) -> int:
    """Run the long soak and print its figures; exit code 1 when something leaked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", type=int, default=50)
    parser.add_argument("--seconds", type=float, default=300.0)
    parser.add_argument("--profile", default="degraded")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    os.environ.setdefault("AKOOL_LAB_HOME", tempfile.mkdtemp(prefix="akool-soak-"))
    figures = run_soak(sessions=args.sessions, seconds=args.seconds, profile=args.profile, seed=args.seed)
    report: dict[str, Any] = asdict(figures)
    report["leaked_sessions"] = figures.leaked_sessions
    report["traced_growth_kib"] = round(figures.traced_kib_after - figures.traced_kib_after_warmup, 1)
    print(json.dumps(report, indent=2))
    leaked = figures.leaked_sessions or figures.journal_open or figures.unexpected
    return 1 if leaked else 0


if __name__ == "__main__":
    raise SystemExit(main())
