"""Reports: save() writes every file, the HTML page stands alone, no secret is written, and ``akool-lab report``
re-renders or compares saved runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, cast

import pytest

from akool_lab.cli import main
from akool_lab.metrics import ExperimentResult, load_run, run_experiment
from tests.conftest import CANARY_KEY

from ._events import one_session
from .fakes import FakeClient

FIGURES = {
    "ttfr_histogram",
    "ttfa_histogram",
    "latency_cdf",
    "message_timeline",
    "session_timeline",
    "http_latency",
    "pacing_cost",
}


def leaky_result() -> ExperimentResult:
    """A run whose parameters and target carry the canary key where careless code would write it."""
    return ExperimentResult(
        recorder=one_session(),
        params={"sessions": 1, "api_key": CANARY_KEY, "nested": {"token": CANARY_KEY}},
        target={"kind": "real", "base_url": f"https://user:{CANARY_KEY}@api.example.com/v4?key={CANARY_KEY}"},
        session_ids=["s1"],
        elapsed_s=1.5,
    )


@pytest.fixture(scope="module")
def saved(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One saved report, shared by the tests that only read it (rendering figures is the slow part)."""
    directory = tmp_path_factory.mktemp("run")
    assert leaky_result().save(directory) == directory / "report.html"
    return directory


def assert_no_canary(directory: Path) -> None:
    for path in directory.rglob("*"):
        if path.is_file():
            assert CANARY_KEY.encode() not in path.read_bytes(), f"the key leaked into {path.name}"


def test_save_writes_events_params_summary_figures_and_the_page(saved: Path) -> None:
    names = {p.name for p in saved.iterdir()}
    assert {"events.jsonl", "params.json", "summary.csv", "report.html"} <= names
    assert {f"{name}.png" for name in FIGURES} <= names
    assert (saved / "summary.csv").read_text().startswith("intent,phase,metric,n,")


def test_the_page_is_self_contained_with_figures_summary_params_target_and_versions(saved: Path) -> None:
    html = (saved / "report.html").read_text(encoding="utf-8")
    assert html.count('src="data:image/png;base64,') == len(FIGURES)
    assert "<link" not in html and "<script" not in html and 'src="http' not in html
    assert "ttfr_ms" in html and "sessions.create" in html
    assert "https://api.example.com/v4" in html
    for name in ("akool_lab", "python", "httpx", "matplotlib"):
        assert f"<th>{name}</th>" in html


def test_no_secret_is_written_anywhere(saved: Path) -> None:
    assert_no_canary(saved)
    meta = json.loads((saved / "params.json").read_text())
    assert meta["target"] == {"kind": "real", "base_url": "https://api.example.com/v4", "label": "AKool"}
    assert meta["label"] == "AKool" and meta["status"] == "complete"
    assert meta["params"]["api_key"] != CANARY_KEY


def test_a_saved_run_loads_back_with_the_same_timings(saved: Path) -> None:
    original = leaky_result()
    loaded = load_run(saved)
    assert loaded.records == original.records
    assert loaded.sessions == original.sessions
    assert loaded.target["kind"] == "real" and loaded.session_ids == ["s1"] and loaded.elapsed_s == 1.5
    assert loaded.versions["akool_lab"]


def test_a_run_of_the_runner_has_the_report_figures_and_events() -> None:
    result = run_experiment(cast(Any, FakeClient()), ["Hi."], sessions=2, messages_per_session=2, progress=False)
    assert set(result.plot()) == FIGURES
    assert len(result.records) == 4


def test_the_report_command_re_renders_a_saved_run(
    saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(saved), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.html").is_file()
    assert (tmp_path / "again" / "summary.csv").read_text() == (saved / "summary.csv").read_text()
    out = capsys.readouterr().out
    assert "ttfr_ms" in out and "report.html" in out
    assert_no_canary(tmp_path)


def test_the_report_command_compares_two_runs(saved: Path, tmp_path: Path) -> None:
    shutil.copytree(saved, tmp_path / "before")
    shutil.copytree(saved, tmp_path / "after")
    assert main(["report", str(tmp_path / "before"), str(tmp_path / "after"), "--out", str(tmp_path / "cmp")]) == 0
    html = (tmp_path / "cmp" / "comparison.html").read_text()
    assert "before vs after" in html and html.count("data:image/png;base64,") == 5
    rows = (tmp_path / "cmp" / "comparison.csv").read_text().splitlines()
    assert rows[0] == "phase,metric,stat,a,b,b_minus_a"
    assert "cold,ttfr_ms,p50,300.0,300.0,0.0" in rows


def test_the_report_command_explains_a_directory_that_is_not_a_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "events.jsonl" in capsys.readouterr().err


def test_a_report_says_what_when_and_with_which_version_with_a_headline_and_captions(tmp_path: Path) -> None:
    long_prompt = "A long prompt, " + "with many words in it, " * 20
    result = run_experiment(
        cast(Any, FakeClient()),
        ["Hello there.", long_prompt],
        sessions=2,
        messages_per_session=3,
        progress=False,
        target={"kind": "sim", "base_url": "http://127.0.0.1:1", "profile": "realistic", "seed": 0},
    )
    html = result.save(tmp_path).read_text()
    assert '<span class="badge sim">simulated · profile realistic · seed 0</span>' in html
    assert "akool_lab 0.1.0" in html and " UTC" in html  # version, date and time
    headline = html.split('<p class="headline">', 1)[1].split("</p>", 1)[0]
    assert headline.startswith("Time to first reply: p50 ") and "p90 " in headline and "95% CI" in headline
    assert "Time to audio: p50 " in headline and "6 messages in 2 sessions; no message failed." in headline
    assert "how many messages got their first reply chunk after each delay" in html  # captions in words
    assert "<h2>Commands</h2>" not in html  # no commands were sent: no empty table
    assert '<td class="text">A long prompt, with many words in it,' in html  # long prompts wrap in their cell
    meta = json.loads((tmp_path / "params.json").read_text())
    assert meta["label"] == "simulated · profile realistic · seed 0" and meta["failures"] == []
