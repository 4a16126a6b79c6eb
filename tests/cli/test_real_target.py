"""AKool from Python: with a real key, ``start()``, ``run_experiment`` and ``akool-lab demo --target real`` choose a
data channel Python can reach (LiveKit, with the ``livekit`` extra) and check it before creating any session.

The service is a stand-in HTTP server on loopback answering as AKool does (create, detail, close, avatar list),
which records every request it gets; nothing reaches the network.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import akool_lab
from akool_lab import target as target_module
from akool_lab.api import AkoolClient
from akool_lab.errors import AkoolLabError, ValidationError
from akool_lab.metrics import run_experiment
from akool_lab.target import resolve_target

from .conftest import CLI, clean_env

KEY = "standin-key-0123456789abcdef"
SESSION_ID = "66a0c0ffee0000000000abcd"


class StandIn(ThreadingHTTPServer):
    """Answers as AKool's REST API does; ``requests`` lists (method, path, JSON body) of everything it got."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[tuple[str, str, Any]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def paths(self) -> list[str]:
        with self.lock:
            return [path for _, path, _ in self.requests]


class _Handler(BaseHTTPRequestHandler):
    server: StandIn

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass

    def _answer(self, data: Any) -> None:
        body = json.dumps({"code": 1000, "msg": "OK", "data": data}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _session(self, stream_type: str, status: int) -> dict[str, Any]:
        creds = {
            "livekit_url": "wss://livekit.standin.invalid",
            "livekit_token": "standin-token",
            "livekit_room_name": "room",
            "livekit_client_identity": "client",
            "livekit_server_identity": "avatar",
        }
        return {
            "_id": SESSION_ID,
            "uid": 1,
            "type": 2,
            "status": status,
            "stream_type": stream_type,
            "credentials": creds,
        }

    def _handle(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        path = self.path.split("?")[0]
        with self.server.lock:
            self.server.requests.append((method, path, body))
        if path.endswith("/session/create"):
            self._answer(self._session(str((body or {}).get("stream_type", "agora")), 1))
        elif path.endswith("/session/detail"):
            self._answer(self._session("livekit", 2))
        elif path.endswith("/avatar/list"):
            self._answer({"count": 1, "result": [{"avatar_id": "dvp_Tristan_cloth2_1080P", "name": "Tristan"}]})
        else:
            self._answer(None)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")


@pytest.fixture
def standin(monkeypatch: pytest.MonkeyPatch) -> Iterator[StandIn]:
    server = StandIn()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setenv("AKOOL_API_KEY", KEY)
    monkeypatch.setenv("AKOOL_BASE_URL", server.base_url)
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def no_livekit(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(target_module, "_livekit_installed", lambda: False)


def test_start_on_akool_without_livekit_says_what_to_install_and_creates_nothing(
    standin: StandIn, no_livekit: None
) -> None:
    with pytest.raises(ValidationError) as info:
        akool_lab.start(target="real")
    assert "stream_type" in str(info.value) and "pip install 'akool-lab[livekit]'" in str(info.value)
    assert standin.paths() == []


def test_start_on_akool_refuses_an_agora_session_python_cannot_join(standin: StandIn) -> None:
    with pytest.raises(ValidationError, match="cannot be joined from Python"):
        akool_lab.start(target="real", stream_type="agora")
    assert standin.paths() == []


def test_run_experiment_on_akool_without_livekit_creates_nothing(standin: StandIn, no_livekit: None) -> None:
    tgt = resolve_target("real")
    with AkoolClient() as client, pytest.raises(ValidationError, match=r"akool-lab\[livekit\]"):
        run_experiment(client, sessions=1, messages_per_session=1, target=tgt, progress=False)
    assert standin.paths() == []


def test_a_client_on_akools_own_base_url_is_checked_even_without_a_target(
    monkeypatch: pytest.MonkeyPatch, no_livekit: None
) -> None:
    monkeypatch.delenv("AKOOL_BASE_URL", raising=False)
    with AkoolClient("key-0123456789") as client, pytest.raises(ValidationError, match="livekit"):
        run_experiment(client, sessions=1, messages_per_session=1, progress=False)


def test_with_livekit_start_creates_a_livekit_session_and_closes_it_when_connecting_fails(
    standin: StandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if the extra were installed: the session is created as a LiveKit one. Joining it needs the real package,
    # which this environment lacks, so connecting fails, and the session that was created is closed.
    monkeypatch.setattr(target_module, "_livekit_installed", lambda: True)
    with pytest.raises((AkoolLabError, ImportError)):
        akool_lab.start(target="real")
    with standin.lock:
        creates = [body for _, path, body in standin.requests if path.endswith("/session/create")]
    assert len(creates) == 1 and creates[0]["stream_type"] == "livekit"
    assert any(path.endswith("/session/close") for path in standin.paths())


@pytest.mark.skipif(importlib.util.find_spec("livekit") is not None, reason="the livekit extra is installed here")
def test_demo_on_akool_without_livekit_exits_2_before_any_request(standin: StandIn, tmp_path: Path) -> None:
    env = clean_env(tmp_path / "home")
    env.update(AKOOL_API_KEY=KEY, AKOOL_BASE_URL=standin.base_url)
    proc = subprocess.run(
        [*CLI, "demo", "--target", "real", "--out", str(tmp_path / "r")],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=60,
    )
    assert proc.returncode == 2, proc.stderr
    assert "akool-lab[livekit]" in proc.stderr and KEY not in proc.stdout + proc.stderr
    assert standin.paths() == [] and not (tmp_path / "r").exists()


def test_the_chosen_stream_type_is_recorded_with_the_run_and_shown(tmp_path: Path) -> None:
    from akool_lab import sim

    with sim.start(profile="fast") as server, AkoolClient(server.api_key, base_url=server.base_url) as client:
        result = run_experiment(
            client, ["Hi."], sessions=1, messages_per_session=1, stream_type="livekit", progress=False, out=tmp_path
        )
    assert result.params["stream_type"] == "livekit" and result.params["stream_types"] == ["livekit"]
    assert "stream type livekit" in (tmp_path / "report.html").read_text()
