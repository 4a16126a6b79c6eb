"""Cost safety and waiting: the journal, reap, close_all, the exit registry, wait_until_live / wait_until_ready."""

from __future__ import annotations

import json
import subprocess
import sys
from urllib.parse import parse_qs

import httpx
import pytest

from akool_lab import errors
from akool_lab.api import SessionStatus
from akool_lab.api._journal import REGISTRY, Journal
from akool_lab.events import EventKind, Recorder

from .conftest import Harness, fail, ok, session_json

CREATE = "/api/open/v4/liveAvatar/session/create"
DETAIL = "/api/open/v4/liveAvatar/session/detail"
CLOSE = "/api/open/v4/liveAvatar/session/close"


def by_id(statuses: dict[str, int | None]):  # type: ignore[no-untyped-def]
    """A detail handler answering each id with its status (``None``: 1216 does not exist)."""

    def reply(request: httpx.Request) -> dict[str, object]:
        sid = parse_qs(request.url.query.decode())["id"][0]
        status = statuses[sid]
        return fail(1216, "session does not exist") if status is None else ok(session_json(sid, status=status))

    return reply


def closed_ids(harness: Harness) -> list[str]:
    return [json.loads(r.content)["id"] for r in harness.server.calls(CLOSE)]


def test_create_and_close_are_journaled_without_secrets(harness: Harness) -> None:
    harness.server.on("POST", CREATE, ok(session_json("s1")))
    harness.server.on("POST", CLOSE, ok())
    client = harness.client()
    harness.run(client.sessions.create("a"))
    assert [e.id for e in client.journal.open_entries()] == ["s1"]
    harness.run(client.sessions.close("s1"))
    assert client.journal.open_entries() == []
    lines = [json.loads(line) for line in client.journal.path.read_text().splitlines()]
    assert lines[0]["event"] == "created" and lines[0]["base_url"] == client.base_url and "wall" in lines[0]
    assert lines[1] == {"event": "closed", "id": "s1"}


def test_journal_lives_under_akool_lab_home(harness: Harness, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("AKOOL_LAB_HOME", str(tmp_path))
    assert harness.client().journal.path == tmp_path / "sessions.jsonl"


def test_journal_skips_a_half_written_line(tmp_path) -> None:  # type: ignore[no-untyped-def]
    journal = Journal(tmp_path / "sessions.jsonl")
    journal.created("s1", "https://x")
    with journal.path.open("a") as fh:
        fh.write('{"event": "crea')
    assert [e.id for e in journal.open_entries()] == ["s1"]


def crashed_process_created(journal: Journal, session_id: str, base_url: str) -> None:
    """Journal a session as created by a process that has since died (a crashed kernel)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    line = {"event": "created", "id": session_id, "base_url": base_url, "wall": 0.0, "pid": child.pid}
    with journal.path.open("a") as fh:
        fh.write(json.dumps(line) + "\n")


def test_reap_closes_exactly_the_journaled_sessions_still_queueing_or_live(harness: Harness) -> None:
    client = harness.client()
    client.journal.path.parent.mkdir(parents=True, exist_ok=True)
    for sid in ("queued", "live", "done", "failed", "gone"):
        crashed_process_created(client.journal, sid, client.base_url)
    crashed_process_created(client.journal, "elsewhere", "http://127.0.0.1:1")  # another service: not ours
    crashed_process_created(client.journal, "closed-before", client.base_url)
    client.journal.closed("closed-before")
    statuses = {"queued": 1, "live": 2, "done": 3, "failed": 4, "gone": None}
    harness.server.on("GET", DETAIL, by_id(statuses))
    harness.server.on("POST", CLOSE, ok())
    reaped = harness.run(client.sessions.reap())
    assert sorted(reaped) == ["live", "queued"]
    assert sorted(closed_ids(harness)) == ["live", "queued"]
    assert [e.id for e in client.journal.open_entries()] == ["elsewhere"]


def test_reap_leaves_sessions_of_a_running_process_alone_unless_asked(harness: Harness) -> None:
    client = harness.client()
    client.journal.created("in-use", client.base_url)  # by this (running) process: maybe in use
    harness.server.on("GET", DETAIL, by_id({"in-use": 2}))
    harness.server.on("POST", CLOSE, ok())
    assert harness.run(client.sessions.reap()) == []
    assert closed_ids(harness) == []
    assert harness.run(client.sessions.reap(include_running=True)) == ["in-use"]


def test_reap_with_an_empty_journal_does_nothing(harness: Harness) -> None:
    assert harness.run(harness.client().sessions.reap()) == []
    assert harness.server.requests == []


def test_close_all_closes_every_session_this_client_created_and_not_closed(harness: Harness) -> None:
    harness.server.on("POST", CREATE, ok(session_json("s1")), ok(session_json("s2")), ok(session_json("s3")))
    harness.server.on("POST", CLOSE, ok())
    client = harness.client()
    for _ in range(3):
        harness.run(client.sessions.create("a"))
    harness.run(client.sessions.close("s2"))
    assert harness.run(client.close_all()) == ["s1", "s3"]
    assert sorted(closed_ids(harness)) == ["s1", "s2", "s3"]
    assert harness.run(client.close_all()) == []


def test_close_treats_an_already_closed_session_as_closed(harness: Harness) -> None:
    harness.server.on("POST", CREATE, ok(session_json("s1")))
    harness.server.on("POST", CLOSE, fail(1219, "liveAvatar closed"))
    client = harness.client()
    harness.run(client.sessions.create("a"))
    harness.run(client.sessions.close("s1"))
    assert client.journal.open_entries() == []
    assert harness.run(client.close_all()) == []


def test_created_sessions_are_registered_and_closed_by_the_exit_hook(harness: Harness) -> None:
    harness.server.on("POST", CREATE, ok(session_json("s1")))
    harness.server.on("POST", CLOSE, ok())
    client = harness.client()
    harness.run(client.sessions.create("a"))
    assert REGISTRY.ids() == ["s1"]
    harness.run(client.close())  # closing the HTTP connections does not close sessions
    assert REGISTRY.close_all() == ["s1"]  # what atexit runs
    assert closed_ids(harness) == ["s1"]
    assert REGISTRY.ids() == []


def test_lifecycle_events_are_recorded(harness: Harness) -> None:
    recorder = Recorder()
    harness.server.on("POST", CREATE, ok(session_json("s1")))
    harness.server.on("POST", CLOSE, ok())
    client = harness.client(recorder=recorder)
    harness.run(client.sessions.create("a", duration=60))
    harness.run(client.sessions.close("s1"))
    kinds = [e.kind for e in recorder.events if e.kind != EventKind.HTTP]
    assert kinds == [EventKind.SESSION_CREATED, EventKind.CLOSE_START, EventKind.CLOSED]
    created = recorder.filter(EventKind.SESSION_CREATED)[0]
    assert created.session_id == "s1"
    assert dict(created.data) == {"status": 1, "stream_type": "agora", "duration": 60}


# --- waiting -----------------------------------------------------------------------------------------------------


def test_wait_until_live_returns_the_session_at_status_2_and_records_each_poll(harness: Harness) -> None:
    recorder = Recorder()
    harness.server.on("GET", DETAIL, ok(session_json(status=1)), ok(session_json(status=1)), ok(session_json(status=2)))
    session = harness.run(harness.client(recorder=recorder).sessions.wait_until_live("s1", timeout=10))
    assert session.status is SessionStatus.LIVE
    assert [e.data["status"] for e in recorder.filter(EventKind.SESSION_STATUS)] == [1, 1, 2]
    assert len(recorder.filter(EventKind.SESSION_LIVE)) == 1
    assert harness.sleeps == [0.2, 0.4]


@pytest.mark.parametrize(("status", "word"), [(4, "failed"), (3, "ended")])
def test_wait_until_live_raises_when_the_session_fails_or_ends(harness: Harness, status: int, word: str) -> None:
    harness.server.on("GET", DETAIL, ok(session_json(status=1)), ok(session_json(status=status)))
    with pytest.raises(errors.SessionFailedError, match=word) as info:
        harness.run(harness.client().sessions.wait_until_live("s1"))
    assert info.value.status == status


def test_wait_until_live_times_out_with_polls_backing_off_to_two_seconds(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok(session_json(status=1)))
    with pytest.raises(errors.TimeoutError) as info:
        harness.run(harness.client().sessions.wait_until_live("s1", timeout=10))
    assert info.value.timeout == 10
    assert sum(harness.sleeps) == pytest.approx(10)
    assert harness.sleeps[:5] == [0.2, 0.4, 0.8, 1.6, 2.0]
    assert max(harness.sleeps) == 2.0


def test_wait_until_ready_returns_at_status_3_and_raises_at_4(harness: Harness) -> None:
    path = "/api/open/v4/liveAvatar/avatar/detail"
    harness.server.on("GET", path, ok({"avatar_id": "A1", "status": 2}), ok({"avatar_id": "A1", "status": 3}))
    assert harness.run(harness.client().avatars.wait_until_ready("A1")).status == 3
    harness.server.routes.clear()
    harness.server.on("GET", path, ok({"avatar_id": "A1", "status": 4}))
    with pytest.raises(errors.AkoolError) as info:
        harness.run(harness.client().avatars.wait_until_ready("A1"))
    assert info.value.code == 1105
