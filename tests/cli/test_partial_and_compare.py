"""A run killed halfway loses nothing it measured, ``akool-lab report`` renders it and says it is partial; two runs
compared say whether their differences are significant."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from akool_lab.events import EventKind
from akool_lab.metrics import load_run
from akool_lab.metrics._compare import compare_metric, mann_whitney

from .conftest import CLI, akool_lab, clean_env


def wait_until(condition: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def marked_messages(events: Path) -> int:
    if not events.exists():
        return 0
    return sum(1 for line in events.read_text(encoding="utf-8").splitlines() if '"experiment.message"' in line)


def test_a_run_killed_halfway_has_every_event_on_disk_and_its_partial_report_renders(tmp_path: Path) -> None:
    out = tmp_path / "run"
    # Realistic timing, each message stopped at audio_start: about a second a message, 12 planned.
    proc = subprocess.Popen(
        [*CLI, "run", "--sessions", "1", "--messages", "12", "--until", "audio_start", "--out", str(out)],
        env=clean_env(tmp_path / "home"),
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: marked_messages(out / "events.jsonl") >= 3, 60, "three messages measured")
        assert proc.poll() is None, "the run ended before it could be killed"
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    meta = json.loads((out / "params.json").read_text())
    assert meta["status"] == "running"  # never finished: the run is partial

    result = load_run(out)
    assert result.partial and result.status == "running"
    marked = [e for e in result.recorder.events if e.kind == "experiment.message"]
    assert 3 <= len(marked) < 12
    # Every message marked done has all its events on disk: its chunks, reply and audio_start.
    measured = {r.mid: r for r in result.records}
    for mark in marked:
        record = measured[mark.mid]
        assert mark.data["ok"] and record.ttfr_ms is not None and record.ttfa_ms is not None, mark
    assert result.recorder.filter(EventKind.SESSION_CREATED)

    report = akool_lab("report", str(out), cwd=tmp_path)
    assert report.returncode == 0, report.stderr
    assert "Partial run (running)" in report.stdout and "ttfr_ms" in report.stdout
    html = (out / "report.html").read_text()
    assert "Partial run" in html and "simulated · profile realistic · seed 0" in html


def test_the_difference_of_two_clearly_different_samples_is_significant() -> None:
    a = [100.0 + i for i in range(30)]
    b = [160.0 + i for i in range(30)]
    diff = compare_metric("ttfr_ms", a, b)
    assert diff.diff == 60.0 and diff.significant is True
    assert diff.ci_low is not None and diff.ci_low > 0 and diff.p_value is not None and diff.p_value < 0.001
    assert diff.verdict.startswith("B is slower by 60.0 ms") and diff.verdict.endswith(": significant")


def test_the_difference_of_two_samples_of_the_same_values_is_not_significant() -> None:
    a = [100.0 + (i * 7) % 30 for i in range(30)]
    b = [100.0 + (i * 11) % 30 for i in range(30)]
    diff = compare_metric("ttfr_ms", a, b)
    assert diff.significant is False and "not significant" in diff.verdict
    assert (mann_whitney(a, b) or 0) > 0.5


def test_too_few_values_are_not_called_either_way() -> None:
    diff = compare_metric("ttfr_ms", [1.0], [2.0, 3.0])
    assert diff.significant is None and diff.verdict == "too few values to compare"


def test_report_of_two_runs_says_whether_each_headline_difference_is_significant(tmp_path: Path) -> None:
    runs = []
    for name, profile in (("fast", "fast"), ("slow", "realistic")):
        out = tmp_path / name
        proc = akool_lab(
            *("run", "--profile", profile, "--sessions", "1", "--messages", "6", "--until", "audio_start"),
            *("--out", str(out)),
            cwd=tmp_path,
            timeout=180,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        runs.append(out)
    proc = akool_lab("report", str(runs[0]), str(runs[1]), "--out", str(tmp_path / "cmp"), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "A = fast: simulated · profile fast · seed 0" in proc.stdout
    assert "B = slow: simulated · profile realistic · seed 0" in proc.stdout
    lines = [line.strip() for line in proc.stdout.splitlines()]
    for metric in ("ttfr_ms", "ttfa_ms"):
        line = next(line for line in lines if line.startswith(f"{metric}: B is slower by"))
        assert line.endswith(": significant"), line
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "Is the difference significant?" in html and "significant" in html
    assert (tmp_path / "cmp" / "significance.csv").read_text().count("True") == 2
