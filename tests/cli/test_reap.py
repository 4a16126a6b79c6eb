"""``akool-lab reap``: credentials from the environment, closed ids printed, exit 2 without credentials."""

from __future__ import annotations

import argparse

import httpx
import pytest

from akool_lab.api._journal import Journal
from akool_lab.cli import reap as reap_cli
from tests.api.test_lifecycle import crashed_process_created


def test_reap_without_credentials_explains_and_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert reap_cli.run(argparse.Namespace()) == 2
    assert "AKOOL_API_KEY" in capsys.readouterr().err


def test_reap_prints_the_closed_ids(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("AKOOL_API_KEY", "key-0123456789")
    monkeypatch.setenv("AKOOL_BASE_URL", "http://sim.test")
    journal = Journal()
    journal.path.parent.mkdir(parents=True, exist_ok=True)
    crashed_process_created(journal, "s-open", "http://sim.test")

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/detail"):
            return httpx.Response(200, json={"code": 1000, "msg": "OK", "data": {"_id": "s-open", "status": 2}})
        return httpx.Response(200, json={"code": 1000, "msg": "OK"})

    real_client = httpx.Client
    monkeypatch.setattr(httpx, "Client", lambda **kw: real_client(**{**kw, "transport": httpx.MockTransport(handler)}))
    assert reap_cli.run(argparse.Namespace()) == 0
    assert capsys.readouterr().out.split() == ["s-open"]
    assert Journal().open_entries() == []
