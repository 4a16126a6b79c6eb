"""Every command works from an installed wheel, or is left out of it: the wheel is built from this checkout and
installed into a fresh virtual environment (its dependencies come from this environment's site-packages, so the
test needs no network), and each command is run from a directory outside the checkout."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LISTED = ("demo", "run", "report", "sim", "reap")  # bench needs the checkout's benchmarks/: left out


def run(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, timeout=timeout)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ``bin`` folder of a fresh virtual environment with the wheel installed."""
    work = tmp_path_factory.mktemp("wheel")
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", work / "dist", ROOT, cwd=work)
    assert built.returncode == 0, built.stderr[-3000:]
    (wheel,) = (work / "dist").glob("akool_lab-*.whl")
    venv = work / "venv"
    made = run(sys.executable, "-m", "venv", "--without-pip", venv, cwd=work)
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    done = run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel, cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    # The dependencies: this environment's site-packages, appended after the fresh one's (a path line in a .pth
    # file does not process that folder's own .pth files, so the checkout's editable install stays out).
    site = run(python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])", cwd=work).stdout.strip()
    (Path(site) / "deps_from_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    return venv / "bin"


def env_for(tmp: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AKOOL_", "PYTHON"))}
    env["AKOOL_LAB_HOME"] = str(tmp / "home")
    return env


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Path, tmp_path: Path) -> None:
    proc = run(
        installed / "python", "-c", "import akool_lab; print(akool_lab.__file__)", cwd=tmp_path, env=env_for(tmp_path)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().startswith(str(installed.parent)) and str(ROOT) not in proc.stdout


def test_help_from_the_wheel_lists_every_command_it_can_run(installed: Path, tmp_path: Path) -> None:
    proc = run(installed / "akool-lab", "--help", cwd=tmp_path, env=env_for(tmp_path))
    assert proc.returncode == 0, proc.stderr
    for name in LISTED:
        assert f"    {name} " in proc.stdout, name
    assert "bench" not in proc.stdout
    for name in LISTED:
        sub = run(installed / "akool-lab", name, "--help", cwd=tmp_path, env=env_for(tmp_path))
        assert sub.returncode == 0 and f"usage: akool-lab {name}" in sub.stdout, (name, sub.stderr)


def test_bench_from_the_wheel_says_it_needs_a_checkout(installed: Path, tmp_path: Path) -> None:
    proc = run(installed / "akool-lab", "bench", "--quick", cwd=tmp_path, env=env_for(tmp_path))
    assert proc.returncode == 2 and "source checkout" in proc.stderr


def test_a_quick_run_and_its_report_work_from_the_wheel(installed: Path, tmp_path: Path) -> None:
    env = env_for(tmp_path)
    out = tmp_path / "run"
    proc = run(
        installed / "akool-lab",
        "run",
        "--profile",
        "fast",
        "--sessions",
        "1",
        "--messages",
        "2",
        "--out",
        out,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (out / "report.html").is_file() and "no message failed" in proc.stdout
    again = run(installed / "akool-lab", "report", out, cwd=tmp_path, env=env, timeout=120)
    assert again.returncode == 0, again.stderr[-3000:]
    reap = run(installed / "akool-lab", "reap", cwd=tmp_path, env=env)
    assert reap.returncode == 2 and "AKOOL_API_KEY" in reap.stderr  # no credentials: says which
