"""Helpers of the command-line tests: run ``akool-lab`` in a subprocess with a clean environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

CLI = [sys.executable, "-m", "akool_lab.cli"]


def clean_env(home: Path) -> dict[str, str]:
    """This environment without any AKool credentials, with its own journal home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AKOOL_")}
    env["AKOOL_LAB_HOME"] = str(home)
    return env


def akool_lab(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run ``akool-lab ARGS`` in ``cwd``; returns the finished process (stdout and stderr as text)."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=clean_env(cwd / "home"), cwd=cwd, timeout=timeout
    )
