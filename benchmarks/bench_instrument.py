"""How exactly does akool_lab measure? |measured ttfr − injected ttfr| against the simulator's ground truth.

The simulator (its own process, realistic profile) records, per message, when the question's last chunk arrived
and when it sent the first reply chunk, audio_start and so on (``/_sim/truth``). The client measures the same
intervals from its own send and arrival stamps. Their difference is the instrument's error: loopback transit both
ways plus scheduling delays on either side. Reported: p50, p99 and max over 20 concurrent sessions and 200+
messages (``--quick``: 5 sessions, 25 messages).

    python benchmarks/bench_instrument.py [--quick]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _simproc import SimProcess

from akool_lab.api import AkoolClient
from akool_lab.live import LiveSession, Reply
from akool_lab.metrics import percentile

AVATAR = "dvp_Tristan_cloth2_1080P"


def measure(sessions: int, messages: int, *, seed: int = 1) -> dict[str, Any]:
    """Run the calibration and return the error figures (ms) for ttfr and ttfa."""
    with SimProcess(profile="realistic", seed=seed) as sim, AkoolClient(sim.api_key, base_url=sim.base_url) as client:
        created = [client.sessions.create(AVATAR, duration=600, mode_type=1) for _ in range(sessions)]
        lives: list[LiveSession] = []
        try:
            for s in created:
                client.sessions.wait_until_live(s.id, timeout=30)
                lives.append(client.connect(s, mode=1))
            replies: dict[str, list[Reply]] = {}
            failures: list[BaseException] = []

            def talk(live: LiveSession) -> None:
                out: list[Reply] = []
                try:
                    for i in range(messages):
                        out.append(live.say(f"Calibration message number {i}.", timeout=60))
                except BaseException as exc:  # reported below, never dropped
                    failures.append(exc)
                replies[live.session_id or ""] = out

            threads = [threading.Thread(target=talk, args=(live,)) for live in lives]
            for th in threads:
                th.start()
            for th in threads:
                th.join(600)
            ttfr_err: list[float] = []
            ttfa_err: list[float] = []
            for sid, rs in replies.items():
                truth = _truth(sim, sid)
                for r in rs:
                    t = truth[r.mid]
                    if r.timings.ttfr_ms is not None and t["ttfr_ms"] is not None:
                        ttfr_err.append(abs(r.timings.ttfr_ms - t["ttfr_ms"]))
                    if r.timings.ttfa_ms is not None and t["ttfa_ms"] is not None:
                        ttfa_err.append(abs(r.timings.ttfa_ms - t["ttfa_ms"]))
        finally:
            for live in lives:
                live.close()
            client.close_all()
    return {
        "sessions": sessions,
        "messages": len(ttfr_err),
        "failures": [repr(f) for f in failures],
        "ttfr_error_ms": _stats(ttfr_err),
        "ttfa_error_ms": _stats(ttfa_err),
    }


def _truth(sim: SimProcess, session_id: str) -> dict[str, Any]:
    import httpx

    r = httpx.get(f"{sim.base_url}/_sim/truth", params={"session_id": session_id}, headers={"x-api-key": sim.api_key})
    data: dict[str, Any] = r.json()["data"]["messages"]
    return data


def _stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    return {
        "min": round(min(values), 3),
        "p50": round(statistics.median(values), 3),
        "p99": round(percentile(sorted(values), 99), 3),
        "max": round(max(values), 3),
    }


def instrument_error_p99_ms(quick: bool = False) -> float:
    """p99 of |measured ttfr − injected ttfr| in ms (20 sessions × 11 messages; quick: 5 × 5)."""
    result = measure(5, 5) if quick else measure(20, 11)
    return float(result["ttfr_error_ms"]["p99"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    result = measure(5, 5) if args.quick else measure(20, 11)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
