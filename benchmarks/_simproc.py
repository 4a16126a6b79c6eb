"""Run the simulator in its own process for benchmarks, so that it does not share a GIL with the measuring side."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
from types import TracebackType


class SimProcess:
    """``akool-lab sim`` in a subprocess on loopback; ``base_url`` and ``api_key`` once it listens."""

    def __init__(self, *, profile: str = "realistic", seed: int = 0, faults: str = "", timeout: float = 30.0) -> None:
        self.api_key = "bench-" + secrets.token_hex(12)
        cmd = [
            sys.executable,
            "-m",
            "akool_lab.cli",
            "sim",
            "--port",
            "0",
            "--profile",
            profile,
            "--seed",
            str(seed),
            "--api-key",
            self.api_key,
        ]
        if faults:
            cmd += ["--faults", faults]
        self._proc = subprocess.Popen(
            cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env={**os.environ}
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline().strip()
        prefix = "akool-lab sim listening on "
        if not line.startswith(prefix):
            self.stop()
            raise RuntimeError(f"the simulator did not start: {line!r}")
        self.base_url = line[len(prefix) :]

    def stop(self) -> None:
        """Stop the simulator (SIGTERM, then SIGKILL after 10 s)."""
        if self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(5)

    def __enter__(self) -> SimProcess:
        return self

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
