"""Fixtures of the reliability and security campaign (issue 11).

One simulator per module (fast profile, seeded, keyed with the canary so that every test is also a leak test), a
client per test with its own journal (``AKOOL_LAB_HOME`` is private per test), and two checks that run after
every test that uses them: every session the test created ends closed (ledger and journal agree), and no
background task of the I/O loop died.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient, Session
from akool_lab.live import AvatarStream, LiveSession, io_loop
from akool_lab.transport import select_transport
from tests.conftest import CANARY_KEY

AVATAR = "dvp_Tristan_cloth2_1080P"
#: Ledger states of a session that no longer costs anything.
ENDED = frozenset({"closed", "expired", "failed"})


@pytest.fixture(scope="module")
def server() -> Iterator[sim.SimServer]:
    """A simulator on loopback, fast profile, keyed with the canary."""
    with sim.start(profile="fast", seed=11, api_key=CANARY_KEY) as s:
        yield s


@pytest.fixture
def client(server: sim.SimServer) -> Iterator[AkoolClient]:
    """A client of ``server``; afterwards the faults are cleared and every session it created must be closed."""
    server.set_faults(None)
    with AkoolClient(server.api_key, base_url=server.base_url, timeout=5.0) as c:
        yield c
    server.set_faults(None)
    assert_sessions_accounted(server, c)


@pytest.fixture(autouse=True)
def no_background_errors() -> Iterator[None]:
    """No exception escaped a background task of the I/O loop during the test (they would be kept in ``errors``)."""
    errors = io_loop().errors
    before = len(errors)
    yield
    assert errors[before:] == []


def journaled_ids(client: AkoolClient) -> list[str]:
    """Every session id the client's journal says was created."""
    if not client.journal.path.exists():
        return []
    lines = client.journal.path.read_text(encoding="utf-8").splitlines()
    return [entry["id"] for entry in map(json.loads, lines) if entry["event"] == "created"]


def assert_sessions_accounted(server: sim.SimServer, client: AkoolClient) -> None:
    """Every session of ``client`` is closed in the journal and ended in the ledger, with its refund computed."""
    created = journaled_ids(client)
    assert client.journal.open_entries(server.base_url) == [], "the journal still lists open sessions"
    ledger = {entry["session_id"]: entry for entry in server.ledger()["sessions"]}
    for session_id in created:
        entry = ledger[session_id]
        assert entry["state"] in ENDED, f"session {session_id} is still {entry['state']} in the ledger"
        assert 0 <= entry["refunded"] <= entry["charged"]
        assert entry["net"] == pytest.approx(entry["charged"] - entry["refunded"], abs=1e-3)
        if entry["state"] == "failed":
            assert entry["refunded"] == entry["charged"]


def live_session(client: AkoolClient, *, duration: int = 60, mode: int = 1) -> Session:
    """A new session that is live."""
    session = client.sessions.create(AVATAR, duration=duration, mode_type=mode)
    client.sessions.wait_until_live(session.id, timeout=10)
    return session


def open_stream(
    client: AkoolClient, session: Session, *, fin_timeout: float = 0.3, ack_timeout: float = 0.5, **kwargs: Any
) -> LiveSession:
    """Like ``client.connect(session, mode=1)``, with short fin/ack timeouts so that fault tests stay fast.

    Closing the returned session closes the AKool session through ``client`` (as ``connect`` does).
    """

    async def closer() -> None:
        await asyncio.get_running_loop().run_in_executor(None, client.sessions.close, session.id)

    stream = io_loop().run(
        AvatarStream.open(
            select_transport(session),
            session_id=session.id,
            recorder=client.recorder,
            mode=1,
            closer=closer,
            fin_timeout=fin_timeout,
            ack_timeout=ack_timeout,
            **kwargs,
        ),
        10,
        "open",
    )
    return LiveSession(stream)
