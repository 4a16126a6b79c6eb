"""How many concurrent streaming sessions the simulator sustains while emitting frames on time.

The simulator runs in its own process (``python -m akool_lab.cli sim --profile realistic``), the load runs here with
raw websockets: each session sends a short mode-1 message every 2 s and reads everything that comes back. For each
step (a number of sessions) the simulator's scheduling error (actual send time minus planned, ``GET /_sim/stats``)
is measured over a window; the capacity is the largest step whose p99 stays under 2 ms.

The load is kept as cheap as it can be, so that it measures the simulator rather than itself: no per-message
deflate (like akool_lab's own client), the frames are read off the socket and parsed by the connection but no task
wakes up for each of them, and (Linux) the load process runs as ``SCHED_BATCH``. That last one matters on a small
machine: a frame the simulator sends wakes the load process, and a normal-priority process woken that way may take
the simulator's CPU on the spot (wakeup preemption), so that the simulator's next frames go out late because of the
measuring side. ``--load-sched normal`` measures without it. Each step also reports the CPU use of both processes
over the window and the load average.

    python benchmarks/bench_sim_capacity.py            # steps 50..400, ~15 s each
    python benchmarks/bench_sim_capacity.py --quick    # steps 100 and 200, ~5 s each
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import random
import resource
import subprocess
import sys
from typing import Any

import httpx
import websockets

KEY = "bench-sim-capacity-key"
P99_LIMIT_MS = 2.0
MESSAGE_EVERY_S = 2.0
TEXT = "Hi there, nice to meet you."
STEPS = (50, 100, 200, 300, 400)
QUICK_STEPS = (100, 200)  # --quick: is the target (200) held? (full run: where does it stop?)


def _start_simulator() -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "akool_lab.cli", "sim", "--port", "0", "--profile", "realistic", "--api-key", KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    first = process.stdout.readline().strip()
    if not first.startswith("akool-lab sim listening on "):
        process.kill()
        raise RuntimeError(f"the simulator did not start: {first!r}")
    return process, first.rsplit(" ", 1)[-1]


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) of a process so far, from /proc (0.0 where there is none)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def _client(url: str, rng: random.Random) -> None:
    """One session's client until cancelled: a message every 2 s; replies are read off the socket and dropped.

    With ``max_queue=None`` nothing is ever awaited on the receiving side: the connection parses what arrives and
    keeps it (a few hundred small frames per step), so that a frame costs the load no task wake-up.
    """
    message = json.dumps({"v": 2, "type": "chat", "mid": "m{}", "idx": 0, "fin": True, "pld": {"text": TEXT}})
    async with websockets.connect(url, max_queue=None, compression=None) as ws:
        await asyncio.sleep(rng.uniform(0, MESSAGE_EVERY_S))  # spread the sessions over the period
        loop = asyncio.get_running_loop()
        next_at = loop.time()
        for n in itertools.count(1):
            await ws.send(message.replace("m{}", f"m{n}", 1))
            next_at += MESSAGE_EVERY_S
            await asyncio.sleep(max(0.0, next_at - loop.time()))


async def _step(base_url: str, sim_pid: int, sessions: int, window_s: float) -> dict[str, Any]:
    headers = {"x-api-key": KEY}
    limits = httpx.Limits(max_connections=50)
    async with httpx.AsyncClient(base_url=base_url, headers=headers, timeout=30, limits=limits) as http:
        body = {"avatar_id": "dvp_Tristan_cloth2_1080P", "stream_type": "websocket", "mode_type": 1, "duration": 600}
        created = await asyncio.gather(
            *(http.post("/api/open/v4/liveAvatar/session/create", json=body) for _ in range(sessions))
        )
        data = [r.json()["data"] for r in created]
        rng = random.Random(sessions)
        clients = [asyncio.create_task(_client(d["credentials"]["ws_url"], rng)) for d in data]
        await asyncio.sleep(3.5)  # realistic queueing is 1-3 s; measure once every session is live
        await http.post("/_sim/stats/reset")
        sim_cpu, own_cpu = _cpu_s(sim_pid), _own_cpu_s()
        await asyncio.sleep(window_s)
        sim_cpu, own_cpu = _cpu_s(sim_pid) - sim_cpu, _own_cpu_s() - own_cpu
        stats = (await http.get("/_sim/stats")).json()["data"]
        for client in clients:
            client.cancel()
        await asyncio.gather(*clients, return_exceptions=True)
        await asyncio.gather(*(http.post("/api/open/v4/liveAvatar/session/close", json={"id": d["_id"]}) for d in data))
    errors = stats["sched_error_ms"]
    return {
        "sessions": sessions,
        "emits": stats["emits"],
        **{k: errors[k] for k in ("p50", "p90", "p99", "max")},
        "sim_cpu_pct": round(100 * sim_cpu / window_s, 1),
        "load_cpu_pct": round(100 * own_cpu / window_s, 1),
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


def _lower_load_priority(mode: str) -> None:
    """``batch``: the load process no longer preempts the simulator when a frame wakes it (Linux ``SCHED_BATCH``)."""
    if mode == "batch" and hasattr(os, "SCHED_BATCH"):
        os.sched_setscheduler(0, os.SCHED_BATCH, os.sched_param(0))


async def _measure(quick: bool, report: list[dict[str, Any]], load_sched: str = "batch") -> int:
    process, base_url = _start_simulator()
    _lower_load_priority(load_sched)  # after starting the simulator: it must not inherit the policy
    capacity = 0
    try:
        for sessions in QUICK_STEPS if quick else STEPS:
            result = await _step(base_url, process.pid, sessions, 5.0 if quick else 15.0)
            report.append(result)
            print(json.dumps(result), flush=True)
            if result["p99"] is None or result["p99"] >= P99_LIMIT_MS:
                break
            capacity = sessions
    finally:
        process.terminate()
        process.wait(10)
    return capacity


def sim_capacity_sessions(quick: bool = False) -> int:
    """The most concurrent sessions (of the steps tried) with a scheduling error under 2 ms p99.

    Runs in a child process: the load's scheduling policy (``SCHED_BATCH``) must not stick to the caller.
    """
    command = [sys.executable, __file__] + (["--quick"] if quick else [])
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    return int(json.loads(output.strip().splitlines()[-1])["sim_capacity_sessions"])


def main() -> int:
    """Command line: print each step and the capacity."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fewer, shorter steps")
    parser.add_argument(
        "--load-sched",
        choices=("batch", "normal"),
        default="batch",
        help="scheduling policy of the load process (default batch: it does not preempt the simulator)",
    )
    args = parser.parse_args()
    report: list[dict[str, Any]] = []
    capacity = asyncio.run(_measure(args.quick, report, args.load_sched))
    summary = {"sim_capacity_sessions": capacity, "p99_limit_ms": P99_LIMIT_MS, "load_sched": args.load_sched}
    print(json.dumps({**summary, "steps": report}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
