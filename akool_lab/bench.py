"""The benchmarks behind ``akool-lab bench`` (command line in :mod:`akool_lab.cli.bench`): the toolkit's own cost, the simulator's capacity and the accuracy of its measurements.

Each figure is measured side by side against a baseline in the same run (a ratio) where absolute times would be
too noisy on a shared machine. The benchmark code lives in the repository's ``benchmarks/`` folder (one module per
figure, each runnable on its own), so the command works from a source checkout only (an installed wheel leaves it
out of ``akool-lab --help`` and says so when it is called); it runs them all and writes one JSON file with exactly
these keys:

==========================  ===========================================================  ========
key                         what                                                          target
==========================  ===========================================================  ========
rest_overhead_ratio         ``sessions.get`` median / raw ``httpx`` GET median              <= 1.10
stream_overhead_ratio       ``live.say`` round trip median / raw websockets median          <= 1.15
import_ratio                ``from akool_lab import AkoolClient`` time / ``import httpx``   <= 1.5
lab_import_ratio            ``from akool_lab import lab`` time / ``import httpx``           <= 3.0
chunker_mb_per_s            ``encode_chat`` throughput on 1 MB of mixed-script text         >= 50
sim_capacity_sessions       concurrent sessions with simulator scheduling error p99 < 2 ms  >= 200
instrument_error_p99_ms     p99 |measured ttfr - injected ttfr|, 20 sessions, 200+ msgs    <= 2
widget_update_p99_ms        chunk arrival -> transcript widget update, 100 chunks/s burst  <= 20
onset_error_p99_ms          p99 |detected - scheduled onset|, perceived.js, 400 onsets     <= 5
heard_error_p99_ms          p99 |heard_ms - (injected + reported delay)|, 100 messages     <= 20
media_delay_p50_ms          audio_start arrival -> first audible sample, loopback, p50      <= 150
media_delay_p99_ms          the same, p99                                                   <= 300
==========================  ===========================================================  ========

The media figures (``benchmarks/bench_media.py``) run Debian's chromium with the simulator's WebRTC avatar (the
media extra). ``media_delay_*`` are informational: what the media path adds on loopback (its floor; a real network
adds to it); their targets are only a sanity bound that catches a media path gone wrong (a jitter buffer grown to
seconds). ``--quick`` measures a few onsets and messages only: its media figures are not the calibration.
"""

from __future__ import annotations

import importlib
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["KEYS", "TARGETS", "benchmarks_available", "meets", "run_benchmarks"]

#: key -> (module in benchmarks/, function returning the figure or a dict with "ratio")
KEYS: dict[str, tuple[str, str]] = {
    "rest_overhead_ratio": ("bench_overhead", "rest_overhead_ratio"),
    "stream_overhead_ratio": ("bench_overhead", "stream_overhead_ratio"),
    "import_ratio": ("bench_overhead", "import_ratio"),
    "lab_import_ratio": ("bench_overhead", "lab_import_ratio"),
    "chunker_mb_per_s": ("bench_chunker", "chunker_mb_per_s"),
    "sim_capacity_sessions": ("bench_sim_capacity", "sim_capacity_sessions"),
    "instrument_error_p99_ms": ("bench_instrument", "instrument_error_p99_ms"),
    "widget_update_p99_ms": ("bench_widgets", "widget_update_p99_ms"),
    "onset_error_p99_ms": ("bench_media", "onset_error_p99_ms"),
    "heard_error_p99_ms": ("bench_media", "heard_error_p99_ms"),
    "media_delay_p50_ms": ("bench_media", "media_delay_p50_ms"),
    "media_delay_p99_ms": ("bench_media", "media_delay_p99_ms"),
}
TARGETS: dict[str, tuple[str, float]] = {
    "rest_overhead_ratio": ("<=", 1.10),
    "stream_overhead_ratio": ("<=", 1.15),
    "import_ratio": ("<=", 1.5),
    "lab_import_ratio": ("<=", 3.0),
    "chunker_mb_per_s": (">=", 50.0),
    "sim_capacity_sessions": (">=", 200.0),
    "instrument_error_p99_ms": ("<=", 2.0),
    "widget_update_p99_ms": ("<=", 20.0),
    "onset_error_p99_ms": ("<=", 5.0),
    "heard_error_p99_ms": ("<=", 20.0),
    "media_delay_p50_ms": ("<=", 150.0),
    "media_delay_p99_ms": ("<=", 300.0),
}


def _benchmarks_path() -> Path:
    return Path(__file__).resolve().parent.parent / "benchmarks"


def benchmarks_available() -> bool:
    """Whether the benchmarks can run: this package sits in a source checkout beside its ``benchmarks/`` folder."""
    return (_benchmarks_path() / "bench_overhead.py").is_file()


def _benchmarks_dir() -> Path:
    here = _benchmarks_path()
    if not benchmarks_available():
        raise FileNotFoundError(
            "akool-lab bench runs from a source checkout (it needs the repository's benchmarks/ folder); "
            "clone the repository and run `make bench`"
        )
    return here


def _figure(value: Any) -> float:
    # Some benchmark functions return their details (a dict with "ratio"), others the figure itself.
    if isinstance(value, dict):
        return float(value["ratio"])
    return float(value)


def run_benchmarks(
    *, quick: bool = False, only: list[str] | None = None, log: Callable[[str], None] = print
) -> tuple[dict[str, float], dict[str, Any]]:
    """Run the benchmarks; returns ``(figures, details)`` where ``figures`` has exactly :data:`KEYS`."""
    folder = _benchmarks_dir()
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))
    figures: dict[str, float] = {}
    details: dict[str, Any] = {}
    for key, (module_name, function) in KEYS.items():
        if only and key not in only:
            continue
        started = time.perf_counter()
        module = importlib.import_module(module_name)
        value = getattr(module, function)(quick)
        figures[key] = round(_figure(value), 4)
        details[key] = value
        log(f"  {key:<26} {figures[key]:>10}   ({time.perf_counter() - started:.1f} s)")
    return figures, details


def meets(key: str, value: float) -> bool:
    """Whether ``value`` meets the target of figure ``key``."""
    op, target = TARGETS[key]
    return value <= target if op == "<=" else value >= target
