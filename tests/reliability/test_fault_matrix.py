"""The fault matrix: for every fault the simulator can inject, the client completes correctly or raises the
documented typed error within its timeout, the recorder marks the affected message or command, and every session
ends closed (checked after each test by the ``client`` fixture; the I/O loop's errors by ``no_background_errors``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from akool_lab import errors, sim
from akool_lab.api import AkoolClient
from akool_lab.api._base import BACKOFF_CAP
from akool_lab.events import Event, EventKind
from akool_lab.live import io_loop
from akool_lab.transport import Frame, WebSocketTransport
from tests.reliability.conftest import AVATAR, live_session, open_stream

TEXT = "One. Two. Three. Four. Five. Six. Seven. Eight."


def http_events(client: AkoolClient, endpoint: str) -> list[Event]:
    return [e for e in client.recorder.filter(EventKind.HTTP) if e.data["endpoint"] == endpoint]


def reply_done(client: AkoolClient) -> list[dict[str, Any]]:
    return [dict(e.data) for e in client.recorder.filter(EventKind.REPLY_DONE)]


def sessions_in_ledger(server: sim.SimServer) -> int:
    return int(server.ledger()["totals"]["sessions"])


@pytest.fixture
def quick_client(server: sim.SimServer) -> AkoolClient:
    """A client whose backoff pauses are recorded instead of slept (the retry decisions stay real)."""
    pauses: list[float] = []
    c = AkoolClient(server.api_key, base_url=server.base_url, max_retries=6, timeout=5.0, sleep=pauses.append)
    c.pauses = pauses  # type: ignore[attr-defined]
    return c


# --- REST: HTTP 5xx -------------------------------------------------------------------------------------------


def test_http_5xx_on_session_detail_is_retried_and_then_succeeds(
    client: AkoolClient, quick_client: AkoolClient, server: sim.SimServer
) -> None:
    session = live_session(client)
    server.set_faults("session.detail=503:0.5")
    results = [quick_client.sessions.get(session.id) for _ in range(6)]
    server.set_faults(None)
    client.sessions.close(session.id)
    attempts = http_events(quick_client, "sessions.get")
    assert all(r.id == session.id for r in results)
    assert any(e.data["http_status"] == 503 for e in attempts)
    assert any(e.data["attempt"] > 1 and e.data["http_status"] == 200 for e in attempts)
    assert all(0 < p <= BACKOFF_CAP for p in quick_client.pauses)  # type: ignore[attr-defined]


def test_http_5xx_that_persists_raises_akool_error_after_max_retries_within_the_backoff_bound(
    client: AkoolClient, server: sim.SimServer
) -> None:
    session = live_session(client)
    server.set_faults("session.detail=500:1")
    started = time.monotonic()
    with pytest.raises(errors.AkoolError) as info:
        client.sessions.get(session.id)
    elapsed = time.monotonic() - started
    server.set_faults(None)
    client.sessions.close(session.id)
    assert info.value.http_status == 500 and info.value.endpoint == "sessions.get"
    failed = [e for e in http_events(client, "sessions.get") if e.data["http_status"] == 500]
    assert [e.data["attempt"] for e in failed] == [1, 2, 3]  # max_retries=2
    assert elapsed < 0.5 + 1.0 + 1.5  # two backoffs (at most 0.5 s and 1 s) plus slack for the requests


def test_http_5xx_on_session_create_is_not_retried_and_charges_nothing(
    client: AkoolClient, server: sim.SimServer
) -> None:
    before = sessions_in_ledger(server)
    server.set_faults("session.create=5xx:1")
    with pytest.raises(errors.AkoolError) as info:
        client.sessions.create(AVATAR, duration=60)
    assert info.value.http_status == 500
    assert len(http_events(client, "sessions.create")) == 1
    assert sessions_in_ledger(server) == before


# --- REST: AKool codes 1005 / 1215 / 1218 ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error"),
    [(1005, errors.RateLimitError), (1215, errors.BusyError), (1218, errors.ProcessingError)],
)
def test_error_code_on_session_create_raises_its_typed_error_once_and_charges_nothing(
    client: AkoolClient, server: sim.SimServer, code: int, error: type[errors.AkoolError]
) -> None:
    before = sessions_in_ledger(server)
    server.set_faults(f"session.create={code}:1")
    with pytest.raises(error) as info:
        client.sessions.create(AVATAR, duration=60)
    assert (info.value.code, info.value.endpoint) == (code, "sessions.create")
    assert len(http_events(client, "sessions.create")) == 1  # a create is never repeated blindly
    assert sessions_in_ledger(server) == before
    assert client.journal.open_entries() == []


@pytest.mark.parametrize(("code", "retried"), [(1005, True), (1215, True), (1218, False)])
def test_error_code_on_session_detail_is_retried_only_when_transient(
    client: AkoolClient, quick_client: AkoolClient, server: sim.SimServer, code: int, retried: bool
) -> None:
    session = live_session(client)
    server.set_faults(f"session.detail={code}:1")
    with pytest.raises(errors.AkoolError) as info:
        quick_client.sessions.get(session.id)
    server.set_faults(None)
    client.sessions.close(session.id)
    assert info.value.code == code
    assert len(http_events(quick_client, "sessions.get")) == (1 + quick_client.max_retries if retried else 1)


def test_busy_answers_on_close_are_retried_until_the_session_is_closed(
    client: AkoolClient, quick_client: AkoolClient, server: sim.SimServer
) -> None:
    session = live_session(quick_client)
    server.set_faults("session.close=1215:0.5")
    quick_client.sessions.close(session.id)
    server.set_faults(None)
    assert quick_client.sessions.get(session.id).status == 3
    assert quick_client.journal.open_entries() == []


# --- REST: slow responses ---------------------------------------------------------------------------------------


def test_a_response_slower_than_the_client_timeout_raises_timeout_error_within_the_bound(
    server: sim.SimServer,
) -> None:
    server.set_faults("language.list=slow:2000")
    with AkoolClient(server.api_key, base_url=server.base_url, timeout=0.3, max_retries=1) as slow:
        started = time.monotonic()
        with pytest.raises(errors.TimeoutError):
            slow.languages.list()
        elapsed = time.monotonic() - started
    server.set_faults(None)
    assert elapsed < 2 * 0.3 + 0.5 + 0.8  # two attempts, one backoff of at most 0.5 s, slack


def test_a_slow_response_within_the_client_timeout_completes_and_its_time_is_recorded(
    client: AkoolClient, server: sim.SimServer
) -> None:
    server.set_faults("language.list=slow:150")
    languages = client.languages.list()
    assert languages
    assert http_events(client, "languages.list")[-1].data["ms"] >= 150


# --- sessions that fail -----------------------------------------------------------------------------------------


def test_a_failed_session_raises_session_failed_error_within_the_timeout_and_is_refunded(
    client: AkoolClient, server: sim.SimServer
) -> None:
    server.set_faults("session.fail=1")
    session = client.sessions.create(AVATAR, duration=60)
    started = time.monotonic()
    with pytest.raises(errors.SessionFailedError) as info:
        client.sessions.wait_until_live(session.id, timeout=5)
    assert time.monotonic() - started < 5
    assert info.value.status == 4
    client.sessions.close(session.id)  # 1219 "already ended" counts as closed
    entry = next(e for e in server.ledger()["sessions"] if e["session_id"] == session.id)
    assert entry["state"] == "failed" and entry["refunded"] == entry["charged"]


# --- the data channel -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["chunk.dup=1", "chunk.reorder=1"])
def test_duplicated_or_reordered_chunks_give_the_exact_text_marked_complete(
    client: AkoolClient, server: sim.SimServer, fault: str
) -> None:
    server.set_faults(fault)
    with client.connect(live_session(client), mode=1) as live:
        reply = live.say(TEXT, timeout=10)
    assert reply.text == TEXT and reply.complete
    assert [(d["complete"], d["reason"]) for d in reply_done(client)] == [(True, None)]


def test_dropped_chunks_mark_each_affected_reply_incomplete_and_keep_what_arrived(
    client: AkoolClient, server: sim.SimServer
) -> None:
    session = live_session(client)
    said: list[tuple[str, errors.ReplyIncompleteError | None]] = []
    with open_stream(client, session) as live:
        # A whole reply first: the stream learns that this avatar ends its replies with fin and echoes say() text
        # (docs/conversation.md, rule 10), so that any chunk lost from now on, the last ones too, shows.
        assert live.say(TEXT, timeout=10).complete
        server.set_faults("chunk.drop=0.3")
        # Until the simulator says it dropped a chunk (its truth; the draws depend on the random session id):
        # 20 four-chunk replies without a drop at 0.3 have a probability of 0.7**80, about 4e-13.
        for i in range(20):
            text = f"Alpha {i}. Beta {i}. Gamma {i}. Delta {i}."
            started = time.monotonic()
            try:
                mid = live.say(text, timeout=10).mid
                said.append((mid, None))
            except errors.ReplyIncompleteError as exc:
                assert exc.reply is not None
                said.append((exc.reply.mid, exc))  # type: ignore[attr-defined]
                assert time.monotonic() - started < 0.3 + 2.0  # the fin timeout, not the reply timeout
            if any(f.startswith("drop:") for f in server.truth(session.id)["messages"][said[-1][0]]["faults"]):
                break
    *whole, (_, affected) = said
    assert all(exc is None for _, exc in whole)  # no chunk dropped: complete
    assert affected is not None, "the reply that lost a chunk is incomplete"
    partial = affected.reply
    assert partial is not None and partial.reason  # type: ignore[attr-defined]
    assert len(partial.text) < len(partial.prompt)  # type: ignore[attr-defined]  # what arrived, kept
    done = reply_done(client)
    assert len(done) == 1 + len(said)  # every message is accounted for
    assert [d["complete"] for d in done] == [True] * len(said) + [False] and done[-1]["reason"]


def test_a_missing_fin_completes_the_reply_at_its_audio_end(client: AkoolClient, server: sim.SimServer) -> None:
    # As the official clients do, a reply without fin is complete once the avatar has spoken it (docs/conversation.md).
    server.set_faults("chunk.nofin=1")
    with open_stream(client, live_session(client), fin_timeout=0.3) as live:
        reply = live.say(TEXT, timeout=10)
    assert reply.text == TEXT and reply.complete and reply.completed_on == "audio_end"
    assert [(d["complete"], d["reason"]) for d in reply_done(client)] == [(True, None)]


def test_a_dropped_ack_raises_timeout_error_within_the_ack_timeout_and_is_recorded_as_missing(
    client: AkoolClient, server: sim.SimServer
) -> None:
    server.set_faults("ack.drop=1")
    with client.connect(live_session(client), mode=1) as live:
        started = time.monotonic()
        with pytest.raises(errors.TimeoutError):
            live.set_params(lang="fr", timeout=0.5)
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 0.5 + 1.0
    missing = client.recorder.filter(EventKind.ACK_MISSING)
    assert [(e.data["cmd"], e.data["timeout_s"]) for e in missing] == [("set-params", 0.5)]


def test_a_late_ack_raises_timeout_error_and_is_kept_as_an_unmatched_record(
    client: AkoolClient, server: sim.SimServer
) -> None:
    server.set_faults("ack.delay=600")
    with client.connect(live_session(client), mode=1) as live:
        with pytest.raises(errors.TimeoutError):
            live.set_params(lang="fr", timeout=0.2)
        deadline = time.monotonic() + 3
        while not client.recorder.filter(EventKind.ACK) and time.monotonic() < deadline:
            time.sleep(0.02)
    (missing,) = client.recorder.filter(EventKind.ACK_MISSING)
    (late,) = client.recorder.filter(EventKind.ACK)
    assert late.mid == missing.mid and late.data["matched"] is False


def test_a_server_disconnect_during_a_reply_raises_reply_incomplete_and_the_session_still_gets_closed(
    client: AkoolClient, server: sim.SimServer
) -> None:
    server.set_faults("stream.disconnect_after=3")
    session = live_session(client)
    live = client.connect(session, mode=1)
    started = time.monotonic()
    with pytest.raises(errors.ReplyIncompleteError) as info:
        live.say(TEXT, timeout=10)
    assert time.monotonic() - started < 5
    assert info.value.reply is not None
    (done,) = reply_done(client)
    assert done["complete"] is False and "1011" in done["reason"]
    with pytest.raises(errors.StreamClosedError):
        live.say("Anyone there?", timeout=5)
    live.close()
    assert client.sessions.get(session.id).status == 3


def test_the_session_expiring_during_a_reply_ends_it_incomplete_and_is_charged_for_its_duration_only(
    client: AkoolClient, server: sim.SimServer
) -> None:
    # 700 words take 1.4 s to speak on the fast profile: the 1 s session runs out in the middle.
    session = live_session(client, duration=1)
    live = client.connect(session, mode=1)
    started = time.monotonic()
    with pytest.raises((errors.ReplyIncompleteError, errors.StreamClosedError)):
        live.say(" ".join(["word"] * 700), timeout=10)
    assert time.monotonic() - started < 3
    (done,) = reply_done(client)
    assert done["complete"] is False and done["reason"]
    live.close()
    entry = next(e for e in server.ledger()["sessions"] if e["session_id"] == session.id)
    assert entry["state"] == "expired" and entry["refunded"] == 0.0


# --- nothing dies silently -------------------------------------------------------------------------------------


def test_an_exception_in_a_user_callback_is_surfaced_as_an_error_event_and_logged(
    client: AkoolClient, caplog: pytest.LogCaptureFixture
) -> None:
    surfaced: list[BaseException] = []

    def broken(_: object) -> None:
        raise RuntimeError("a bug in the user's callback")

    with client.connect(live_session(client), mode=1) as live:
        live.on("reply", broken)
        live.on("error", surfaced.append)
        with caplog.at_level(logging.ERROR, logger="akool_lab"):
            reply = live.say("Still fine.", timeout=10)
    assert reply.complete  # the stream kept working
    assert [str(e) for e in surfaced] == ["a bug in the user's callback"]
    recorded = client.recorder.filter(EventKind.ERROR)
    assert [(e.data["where"], e.data["type"]) for e in recorded] == [("callback:reply", "RuntimeError")]
    assert any("callback raised" in r.getMessage() for r in caplog.records)


class _BreaksAfterOneFrame(WebSocketTransport):
    """A transport whose receive side fails with a bug after the first frame."""

    async def frames(self) -> AsyncIterator[Frame]:
        async for frame in super().frames():
            yield frame
            raise RuntimeError("transport bug")


def test_a_failing_receive_loop_fails_the_waiting_call_and_is_logged_not_swallowed(
    client: AkoolClient, caplog: pytest.LogCaptureFixture
) -> None:
    from akool_lab.live import LiveSession

    session = live_session(client)
    transport = _BreaksAfterOneFrame(session.credentials.ws_url or "")  # type: ignore[union-attr]
    live = client.connect(session, transport=transport, mode=1)
    assert isinstance(live, LiveSession)
    started = time.monotonic()
    with caplog.at_level(logging.ERROR, logger="akool_lab"), pytest.raises(errors.StreamError):
        live.say(TEXT, timeout=10)
    assert time.monotonic() - started < 5
    live.close()
    recorded = client.recorder.filter(EventKind.ERROR)
    assert [(e.data["where"], e.data["type"]) for e in recorded] == [("receive", "RuntimeError")]
    assert any("receive loop" in r.getMessage() for r in caplog.records)


def test_an_exception_escaping_a_callback_on_the_io_loop_reaches_the_error_listeners() -> None:
    loop = io_loop()
    heard: list[BaseException] = []
    arrived = threading.Event()

    def listener(exc: BaseException) -> None:
        heard.append(exc)
        arrived.set()

    def boom() -> None:
        raise ValueError("escaped")

    before = len(loop.errors)
    remove = loop.add_error_listener(listener)
    try:
        loop.call_soon(boom)
        assert arrived.wait(5)
    finally:
        remove()
    new = loop.errors[before:]
    del loop.errors[before:]  # handled here, so the autouse check does not count it
    assert [str(e) for e in heard] == ["escaped"] and new == heard
