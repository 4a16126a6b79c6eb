"""``akool-lab demo``: the main job runs the lifecycle and an experiment and writes a secret-free report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CANARY_KEY

REPORT_FILES = {"events.jsonl", "summary.csv", "report.html", "params.json", "ttfr_histogram.png", "latency_cdf.png"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    work = tmp_path_factory.mktemp("demo")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    env.update(AKOOL_SIM_API_KEY=CANARY_KEY, AKOOL_LAB_HOME=str(work / "home"))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "akool_lab.cli",
            "demo",
            "--out",
            str(work / "report"),
            "--sessions",
            "2",
            "--messages",
            "4",
            "--profile",
            "fast",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=work,
        timeout=120,
    )
    return proc, work / "report"


def test_demo_exits_0_and_prints_the_lifecycle_the_summary_and_the_report_path(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, report = demo_run
    assert proc.returncode == 0, proc.stderr
    for step in ("create a session", "wait until it is live", "set-params", "say", "ask", "interrupt", "ledger"):
        assert step in proc.stdout
    assert "ttfr_ms" in proc.stdout and f"Report: {report / 'report.html'}" in proc.stdout
    assert "reply interrupted=True" in proc.stdout
    # What the numbers are, in the summary and in the report.
    assert "Numbers: simulated · profile fast · seed 0" in proc.stdout
    assert "no message failed" in proc.stdout
    assert "simulated · profile fast · seed 0" in (report / "report.html").read_text()


def test_the_demo_is_on_the_realistic_profile_unless_told_otherwise() -> None:
    from akool_lab.cli import build_parser

    assert build_parser().parse_args(["demo"]).profile == "realistic"


def test_a_demo_with_failures_exits_1_and_summarises_them_by_kind(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    env.update(AKOOL_LAB_HOME=str(tmp_path / "home"))
    # Each stream is dropped by the server after its 45th message: the lifecycle's session needs fewer, the
    # experiment's sessions (20 messages, about 4 server messages each) end halfway.
    proc = subprocess.run(
        [
            *(
                sys.executable,
                "-m",
                "akool_lab.cli",
                "demo",
                "--profile",
                "fast",
                "--sessions",
                "2",
                "--messages",
                "20",
            ),
            *("--faults", "stream.disconnect_after=45", "--out", str(tmp_path / "report")),
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stdout[-2000:] + proc.stderr[-2000:]
    line = next(line for line in proc.stdout.splitlines() if line.strip().endswith("incomplete: session ended"))
    count = int(line.split()[0])
    assert 0 < count < 40 and line.strip() == f"{count} messages incomplete: session ended"
    assert f"akool-lab demo: failed: {count} messages incomplete: session ended" in proc.stderr
    meta = json.loads((tmp_path / "report" / "params.json").read_text())
    assert meta["failures"] == [f"{count} messages incomplete: session ended"] and meta["status"] == "complete"


def test_demo_writes_every_report_file(demo_run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _, report = demo_run
    assert {p.name for p in report.iterdir()} >= REPORT_FILES
    assert sum(1 for _ in (report / "events.jsonl").open()) > 50


def test_demo_output_report_and_events_contain_no_secret(
    demo_run: tuple[subprocess.CompletedProcess[str], Path],
) -> None:
    proc, report = demo_run
    assert CANARY_KEY not in proc.stdout + proc.stderr
    for path in report.iterdir():
        assert CANARY_KEY.encode() not in path.read_bytes(), path.name
        assert CANARY_KEY[-12:].encode() not in path.read_bytes(), path.name  # not even most of it


def test_demo_against_the_real_service_refuses_to_start_without_credentials(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    proc = subprocess.run(
        [sys.executable, "-m", "akool_lab.cli", "demo", "--target", "real", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "AKOOL_API_KEY" in proc.stderr and not (tmp_path / "r").exists()
