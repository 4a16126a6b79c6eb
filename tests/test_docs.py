"""``make docs``: the API reference builds from the docstrings, with every warning an error, and documents the
public names (including the lazily exported ones)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_api_reference_builds_without_warnings_and_documents_the_public_names(tmp_path: Path) -> None:
    out = tmp_path / "site"
    proc = subprocess.run(
        [sys.executable, "-W", "error", str(ROOT / "docs" / "build_api.py"), str(out)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    api = (out / "akool_lab" / "api.html").read_text(encoding="utf-8")
    for name in ("AkoolClient", "AsyncAkoolClient", "RawResponse", "Sessions", "wait_until_live"):
        assert f'id="{name}' in api or f'id="Sessions.{name}' in api, name
    transport = (out / "akool_lab" / "transport.html").read_text(encoding="utf-8")
    assert 'id="WebSocketTransport"' in transport  # exported lazily by its package
    assert (out / "index.html").exists()
