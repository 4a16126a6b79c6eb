"""The runner against the embedded simulator (fast profile): a small real run, an interrupted one, and the report."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.events import EventKind, Recorder
from akool_lab.metrics import run_experiment
from akool_lab.metrics._runner import Progress
from tests.conftest import CANARY_KEY


@pytest.fixture(scope="module")
def server() -> Iterator[sim.SimServer]:
    with sim.start(profile="fast", seed=3, api_key=CANARY_KEY) as s:
        yield s


@pytest.fixture
def client(server: sim.SimServer) -> Iterator[AkoolClient]:
    with AkoolClient(server.api_key, base_url=server.base_url, recorder=Recorder()) as c:
        yield c


def created_ids(recorder: Recorder) -> list[str]:
    return [e.session_id for e in recorder.filter(EventKind.SESSION_CREATED) if e.session_id]


def test_a_small_run_measures_every_message_closes_every_session_and_reports_no_key(
    client: AkoolClient, server: sim.SimServer, tmp_path: Path
) -> None:
    result = run_experiment(
        client,
        ["Hello there.", "How long does a reply take?"],
        sessions=2,
        messages_per_session=2,
        concurrency=2,
        params={"lang": ["en", "fr"]},
        progress=False,
        target={"kind": "sim", "base_url": server.base_url},
    )
    assert result.errors == []
    assert len(result.records) == 4
    assert all(r.complete and r.ttfr_ms is not None and r.speak_ms is not None for r in result.records)
    assert sorted(str(r.lang) for r in result.records) == ["en", "en", "fr", "fr"]
    assert all(s.create_ms and s.live_ms and s.connect_ms and s.close_ms for s in result.sessions)
    assert {client.sessions.get(sid).status for sid in result.session_ids} == {3}  # closed
    result.save(tmp_path)
    for path in tmp_path.iterdir():
        assert CANARY_KEY.encode() not in path.read_bytes(), path.name


def test_an_interrupted_run_still_closes_every_session(client: AkoolClient) -> None:
    def stop_after_first(update: Progress) -> None:
        if update.done >= 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_experiment(
            client,
            ["Hello there."],
            sessions=3,
            messages_per_session=3,
            concurrency=2,
            progress=False,
            on_progress=stop_after_first,
        )
    assert client.recorder is not None
    ids = created_ids(client.recorder)
    assert ids
    assert {client.sessions.get(sid).status for sid in ids} == {3}


def test_two_runs_on_one_client_keep_their_own_records_and_the_client_still_sees_everything(
    client: AkoolClient,
) -> None:
    before = len(client.recorder)
    first = run_experiment(client, sessions=1, messages_per_session=2, progress=False)
    second = run_experiment(client, sessions=1, messages_per_session=3, mode=2, progress=False)
    assert first.recorder is not second.recorder is not client.recorder
    assert [r.intent for r in first.records] == ["say", "say"]
    assert [r.intent for r in second.records] == ["ask", "ask", "ask"]
    assert len(client.recorder) - before == len(first.recorder) + len(second.recorder)


def test_until_audio_start_measures_ttfr_and_ttfa_and_interrupts_the_speech(client: AkoolClient) -> None:
    long_text = " ".join(["word"] * 400)  # 0.8 s of speech on the fast profile: the interrupt comes well before
    result = run_experiment(
        client, [long_text], sessions=1, messages_per_session=3, until="audio_start", progress=False
    )
    assert result.errors == [] and result.failures() == []
    assert all(r.ttfr_ms is not None and r.ttfa_ms is not None and r.interrupted for r in result.records)
    assert len(result.commands) == 3 and {c.cmd for c in result.commands} == {"interrupt"}
    # The speech was cut: the summary leaves the interrupt's reply and speaking times out.
    assert {row["metric"] for row in result.summary().rows} == {"ttfr_ms", "ttfa_ms", "send_span_ms"}


def test_until_reply_returns_at_the_last_chunk_before_the_speech_ends(client: AkoolClient) -> None:
    result = run_experiment(
        client, ["Hello there, this is a reply."], sessions=1, messages_per_session=2, until="reply", progress=False
    )
    assert result.failures() == []
    assert all(r.complete and r.reply_ms is not None for r in result.records)


def test_on_the_realistic_profile_mode_2_adds_the_avatars_thinking_time() -> None:
    with (
        sim.start(profile="realistic", seed=1) as server,
        AkoolClient(server.api_key, base_url=server.base_url) as c,
    ):
        result = run_experiment(
            c,
            ["What is a streaming avatar?"],
            sessions=2,
            messages_per_session=2,
            concurrency=2,
            params={"mode": [1, 2]},
            until="audio_start",
            progress=False,
        )
    assert result.failures() == []
    ttfr = {mode: [r.ttfr_ms or 0.0 for r in result.records if r.mode == mode] for mode in (1, 2)}
    assert len(ttfr[1]) == len(ttfr[2]) == 2
    assert min(ttfr[2]) > max(ttfr[1]) + 300  # median thinking time 900 ms (docs/realistic-profile.md)
