"""Kernel death: a process that created sessions is killed with SIGKILL (no atexit, no close); a new client on the
same journal runs ``sessions.reap()``, which closes exactly the sessions the dead process left open.

"Only those", in the journal's terms: reap closes the journaled sessions (of this base URL) that the service still
reports as queueing or live. A journaled session that was closed properly is not touched; a session that is not in
this journal (created by raw HTTP, or by another user's environment with its own journal) is not touched.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import httpx
import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from tests.conftest import CANARY_KEY
from tests.reliability.conftest import AVATAR

#: Creates 3 sessions it leaves open and 1 it closes, prints their ids, then waits to be killed.
CHILD = textwrap.dedent(
    f"""
    import os, sys, time
    from akool_lab.api import AkoolClient
    client = AkoolClient(os.environ["AKOOL_API_KEY"], base_url=os.environ["AKOOL_BASE_URL"])
    left_open = [client.sessions.create({AVATAR!r}, duration=600).id for _ in range(3)]
    closed = client.sessions.create({AVATAR!r}, duration=600).id
    client.sessions.close(closed)
    print(" ".join(left_open), closed, flush=True)
    time.sleep(60)
    """
)


@pytest.fixture
def server() -> Iterator[sim.SimServer]:
    with sim.start(profile="fast", seed=3, api_key=CANARY_KEY) as s:
        yield s


def run_and_kill_child(server: sim.SimServer) -> tuple[list[str], str]:
    env = {**os.environ, "AKOOL_API_KEY": CANARY_KEY, "AKOOL_BASE_URL": server.base_url}
    child = subprocess.Popen([sys.executable, "-c", CHILD], env=env, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        line = child.stdout.readline()  # bounded: the pytest timeout, and the child's own 60 s sleep
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    *left_open, closed = line.split()
    return left_open, closed


def status(server: sim.SimServer, session_id: str) -> int:
    answer = httpx.get(
        server.base_url + "/api/open/v4/liveAvatar/session/detail",
        params={"id": session_id},
        headers={"x-api-key": CANARY_KEY},
        timeout=10,
    ).json()
    return int(answer["data"]["status"])


def test_reap_after_sigkill_closes_exactly_the_sessions_the_dead_process_left_open(
    server: sim.SimServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    raw = httpx.post(
        server.base_url + "/api/open/v4/liveAvatar/session/create",
        json={"avatar_id": AVATAR, "duration": 600},
        headers={"x-api-key": CANARY_KEY},
        timeout=10,
    ).json()["data"]["_id"]
    elsewhere = tmp_path_factory.mktemp("other_home") / "sessions.jsonl"
    with AkoolClient(CANARY_KEY, base_url=server.base_url, journal_path=elsewhere) as other:
        in_use = other.sessions.create(AVATAR, duration=600).id
        left_open, closed = run_and_kill_child(server)
        assert all(status(server, sid) in (1, 2) for sid in left_open)

        with AkoolClient(CANARY_KEY, base_url=server.base_url) as survivor:
            reaped = survivor.sessions.reap()
            assert sorted(reaped) == sorted(left_open)
            assert survivor.journal.open_entries() == []
            assert survivor.sessions.reap() == []  # nothing left: a second reap is a no-op

        assert all(status(server, sid) == 3 for sid in left_open)
        assert status(server, closed) == 3
        assert status(server, raw) in (1, 2) and status(server, in_use) in (1, 2)
        closes = [e for e in survivor.recorder.filter("http") if e.data["endpoint"] == "sessions.close"]
        assert sorted(e.session_id for e in closes) == sorted(left_open)  # the closed one was not closed again
        other.sessions.close(in_use)
    httpx.post(
        server.base_url + "/api/open/v4/liveAvatar/session/close",
        json={"id": raw},
        headers={"x-api-key": CANARY_KEY},
        timeout=10,
    )
    states = {e["session_id"]: e["state"] for e in server.ledger()["sessions"]}
    assert set(states.values()) == {"closed"}


def test_reap_does_not_close_a_session_that_a_running_process_on_the_same_journal_is_using(
    server: sim.SimServer,
) -> None:
    with AkoolClient(CANARY_KEY, base_url=server.base_url) as running:
        in_use = running.sessions.create(AVATAR, duration=600).id
        with AkoolClient(CANARY_KEY, base_url=server.base_url) as reaper:
            reaped = reaper.sessions.reap()
        still_live = status(server, in_use) in (1, 2)
        if still_live:
            running.sessions.close(in_use)
    assert reaped == [] and still_live
