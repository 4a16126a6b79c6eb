"""The command line: one home (``akool_lab/cli/``), every command listed, ``akool-lab run`` and ``report``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from akool_lab.cli import COMMANDS, build_parser

from .conftest import akool_lab


def test_help_lists_every_command(tmp_path: Path) -> None:
    proc = akool_lab("--help", cwd=tmp_path)
    assert proc.returncode == 0
    for name in COMMANDS:  # bench too: this is a source checkout
        assert f"    {name} " in proc.stdout, name


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_its_own_help(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args([name, "--help"])
    assert info.value.code == 0
    assert f"usage: akool-lab {name}" in capsys.readouterr().out


def test_the_old_homes_of_the_commands_are_gone() -> None:
    root = Path(__file__).resolve().parents[2] / "akool_lab"
    for old in ("cli.py", "metrics/report.py", "api/reap_cli.py", "sim/cli.py"):
        assert not (root / old).exists(), old


def test_run_measures_from_the_command_line_and_writes_the_report(tmp_path: Path) -> None:
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("Hello there.\n\nHow long does a reply take?\n", encoding="utf-8")
    out = tmp_path / "run"
    proc = akool_lab(
        *("run", "--profile", "fast", "--sessions", "2", "--messages", "3", "--mode", "1"),
        *("--prompts", str(prompts), "--until", "reply", "--concurrency", "2", "--out", str(out)),
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "akool-lab run on simulated · profile fast · seed 0" in proc.stdout
    assert "Numbers: simulated · profile fast · seed 0 · stream type agora" in proc.stdout
    assert "Time to first reply: p50" in proc.stdout and "no message failed" in proc.stdout
    assert "messages 6/6" in proc.stderr  # the progress bar
    meta = json.loads((out / "params.json").read_text())
    assert meta["status"] == "complete" and meta["label"] == "simulated · profile fast · seed 0"
    assert meta["params"]["until"] == "reply" and meta["params"]["prompts"] == [
        "Hello there.",
        "How long does a reply take?",
    ]
    assert meta["params"]["stream_types"] == ["agora"] and meta["counts"]["messages"] == 6
    assert "simulated · profile fast · seed 0" in (out / "report.html").read_text()


def test_run_refuses_a_plan_that_cannot_fit_before_creating_anything(tmp_path: Path) -> None:
    prompts = tmp_path / "long.json"
    prompts.write_text(json.dumps([" ".join(["word"] * 70)]), encoding="utf-8")
    proc = akool_lab(
        "run", "--profile", "fast", "--messages", "10", "--duration", "120", "--prompts", str(prompts), cwd=tmp_path
    )
    assert proc.returncode == 2
    assert "duration" in proc.stderr and "too short" in proc.stderr and "nothing was created" in proc.stderr


def test_run_refuses_a_prompts_file_without_prompts(tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    proc = akool_lab("run", "--profile", "fast", "--prompts", str(empty), cwd=tmp_path)
    assert proc.returncode == 2 and "--prompts" in proc.stderr


def test_bench_outside_a_checkout_is_left_out_and_says_what_it_needs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from akool_lab import bench
    from akool_lab.cli import main

    monkeypatch.setattr(bench, "_benchmarks_path", lambda: Path("/nonexistent/benchmarks"))
    assert "bench" not in build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    assert main(["bench", "--quick"]) == 2
    assert "source checkout" in capsys.readouterr().err
