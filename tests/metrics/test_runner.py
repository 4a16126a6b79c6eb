"""The experiment runner, with a fake client: what it records, and that every session it creates gets closed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import pytest

from akool_lab.errors import ValidationError
from akool_lab.events import Recorder
from akool_lab.metrics import load_run, run_experiment
from akool_lab.metrics._runner import Progress, grid

from .fakes import FakeClient, Faults


def run(client: FakeClient, **kwargs: Any) -> Any:
    kwargs.setdefault("progress", False)
    kwargs.setdefault("prompts", ["Hello there.", "A second, longer prompt for the avatar."])
    return run_experiment(cast(Any, client), **kwargs)


def assert_everything_closed(client: FakeClient) -> None:
    assert client.created, "the test should have created sessions"
    assert client.open == set()
    assert sorted(set(client.closed)) == sorted(client.created)


def test_a_run_sends_every_message_and_closes_every_session() -> None:
    client = FakeClient()
    result = run(client, sessions=3, messages_per_session=4, concurrency=2)
    assert_everything_closed(client)
    assert result.errors == []
    assert len(result.records) == 12
    assert sorted(result.session_ids) == ["s0", "s1", "s2"]
    assert all(r.complete and r.ttfr_ms == 2.0 and r.speak_ms == 6.0 for r in result.records)
    assert sum(r.cold for r in result.records) == 3


def test_warmup_messages_are_marked_and_left_out_of_the_summary() -> None:
    result = run(FakeClient(), sessions=2, messages_per_session=3, warmup=1)
    assert [r.warmup for r in result.records if r.session_id == "s0"] == [True, False, False]
    rows = [row for row in result.summary().rows if row["metric"] == "ttfr_ms"]
    assert [(row["phase"], row["n"]) for row in rows] == [("warm", 4)]
    assert sum(row["n"] for row in result.summary(include_warmup=True).rows if row["metric"] == "ttfr_ms") == 6


def test_a_grid_of_params_gives_one_combination_per_session_round_robin() -> None:
    client = FakeClient()
    result = run(client, sessions=4, messages_per_session=1, params={"lang": ["en", "fr"], "vid": "v1"})
    assert [live.params for live in sorted(client.lives, key=lambda live: live.number)] == [
        {"lang": "en", "vid": "v1"},
        {"lang": "fr", "vid": "v1"},
        {"lang": "en", "vid": "v1"},
        {"lang": "fr", "vid": "v1"},
    ]
    assert sorted((r.session_id, r.lang, r.voice) for r in result.records) == [
        ("s0", "en", "v1"),
        ("s1", "fr", "v1"),
        ("s2", "en", "v1"),
        ("s3", "fr", "v1"),
    ]


def test_mode_2_asks_and_a_mode_in_the_grid_overrides_it_per_session() -> None:
    client = FakeClient()
    result = run(client, sessions=2, messages_per_session=1, params={"mode": [1, 2]})
    assert client.modes == {"s0": 1, "s1": 2}
    assert sorted((r.session_id, r.intent) for r in result.records) == [("s0", "say"), ("s1", "ask")]


def test_grid_expands_lists_and_keeps_single_values() -> None:
    assert grid(None) == [{}]
    assert grid({"lang": ["en", "fr"], "mode": (1, 2)}) == [
        {"lang": "en", "mode": 1},
        {"lang": "en", "mode": 2},
        {"lang": "fr", "mode": 1},
        {"lang": "fr", "mode": 2},
    ]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"params": {"colour": "red"}},
        {"params": {"lang": []}},
        {"sessions": 0},
        {"concurrency": 0},
        {"mode": 3},
        {"prompts": []},
        {"prompts": ["  "]},
        {"warmup": -1},
    ],
)
def test_bad_arguments_fail_before_any_session_is_created(kwargs: dict[str, Any]) -> None:
    client = FakeClient()
    with pytest.raises(ValidationError):
        run(client, **kwargs)
    assert client.created == []


def test_failed_sessions_are_listed_closed_and_the_run_goes_on() -> None:
    client = FakeClient(Faults(create={0}, live={1}))
    result = run(client, sessions=3, messages_per_session=2, concurrency=1)
    assert_everything_closed(client)  # s1 never went live but was created: it is closed
    assert len(result.errors) == 2
    assert "create failed" in result.errors[0] and "never became live" in result.errors[1]
    sent = [r for r in result.records if r.mid is not None]
    assert [r.session_id for r in sent] == ["s2", "s2"]
    # The messages of the two sessions that never started each fail with the reason, without being sent.
    unsent = [r for r in result.records if r.mid is None]
    assert len(unsent) == 4 and all("not sent: session did not start" in (r.error or "") for r in unsent)
    assert result.failures() == ["4 messages not sent: session did not start"]


def test_failed_messages_are_recorded_marked_and_the_run_goes_on() -> None:
    client = FakeClient(Faults(message={(0, 1)}, incomplete={(0, 2)}))
    result = run(client, sessions=1, messages_per_session=4)
    assert_everything_closed(client)
    records = result.records
    assert len(records) == 4
    unsent = [r for r in records if r.mid is None]
    assert len(unsent) == 1 and unsent[0].reason == "not sent" and "StreamClosedError" in (unsent[0].error or "")
    incomplete = next(r for r in records if r.mid == "m0-2")
    assert (incomplete.complete, incomplete.error) == (False, "ReplyIncompleteError: injected: incomplete")
    assert len(result.errors) == 2
    assert [r.complete for r in records if r.mid not in (None, "m0-2")] == [True, True]


def test_a_close_that_fails_is_retried_by_close_all() -> None:
    client = FakeClient(Faults(close={0}))
    result = run(client, sessions=2, messages_per_session=1)
    assert_everything_closed(client)
    assert client.close_all_calls == 1
    assert any("close failed" in e for e in result.errors)


def test_keyboard_interrupt_from_the_progress_callback_closes_every_session() -> None:
    client = FakeClient()
    seen: list[Progress] = []

    def on_progress(update: Progress) -> None:
        seen.append(update)
        if update.done == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(client, sessions=6, messages_per_session=3, concurrency=2, on_progress=on_progress)
    assert_everything_closed(client)
    assert len(client.created) < 6  # the sessions not started yet never started
    assert client.close_all_calls == 1


def test_keyboard_interrupt_inside_a_worker_closes_every_session() -> None:
    client = FakeClient(Faults(interrupt_at=(1, 0)))
    with pytest.raises(KeyboardInterrupt):
        run(client, sessions=3, messages_per_session=2, concurrency=3)
    assert_everything_closed(client)


def test_progress_counts_every_message() -> None:
    updates: list[Progress] = []
    run(FakeClient(), sessions=2, messages_per_session=2, on_progress=updates.append)
    assert [u.done for u in updates] == [1, 2, 3, 4] and all(u.total == 4 for u in updates)


def test_the_client_gets_its_own_recorder_back() -> None:
    client = FakeClient()
    client.recorder = None
    result = run(client, sessions=1, messages_per_session=1)
    assert client.recorder is None
    assert len(result.recorder) > 0
    mine = Recorder()
    client.recorder = mine
    result = run(client, sessions=1, messages_per_session=1)
    # The run keeps its own events apart, and the client's recorder still receives every one of them.
    assert client.recorder is mine and result.recorder is not mine
    assert [e.kind for e in mine.events] == [e.kind for e in result.recorder.events]


def test_the_result_says_where_it_ran_without_any_key() -> None:
    target = {"kind": "sim", "base_url": "http://user:secret@127.0.0.1:8000/api?key=secret", "api_key": "secret"}
    result = run(FakeClient(), sessions=1, messages_per_session=1, target=target)
    assert result.target == {"kind": "sim", "base_url": "http://127.0.0.1:8000/api", "label": "simulated"}
    assert "secret" not in repr(result)


def test_until_is_passed_to_every_message() -> None:
    client = FakeClient()
    result = run(client, sessions=1, messages_per_session=3, until="reply")
    assert client.lives[0].untils == ["reply"] * 3
    assert result.params["until"] == "reply"


def test_a_session_that_ends_early_fails_each_remaining_message_with_one_reason() -> None:
    client = FakeClient(Faults(ends_at=(0, 1)))
    result = run(client, sessions=1, messages_per_session=4)
    assert_everything_closed(client)
    records = sorted(result.records, key=lambda r: r.index)
    assert [r.error is None for r in records] == [True, False, False, False]
    # The message cut by the end, then the two never sent: each says why, once.
    assert all("closed by the server (code 1000)" in (r.error or "") for r in records[1:])
    assert [r.error for r in records[2:]] == ["not sent: the session ended (closed by the server (code 1000))"] * 2
    assert result.failures() == ["3 messages incomplete: session ended"]


def test_one_failed_message_is_summarised_in_the_singular() -> None:
    client = FakeClient(Faults(incomplete={(0, 0)}))
    result = run(client, sessions=1, messages_per_session=2)
    assert result.failures() == ["1 message incomplete: reply incomplete"]


def test_a_run_stopped_by_ctrl_c_leaves_every_event_on_disk_and_says_it_is_partial(tmp_path: Path) -> None:
    client = FakeClient(Faults(interrupt_at=(0, 2)))
    with pytest.raises(KeyboardInterrupt):
        run(client, sessions=1, messages_per_session=4, out=tmp_path)
    assert_everything_closed(client)
    loaded = load_run(tmp_path)
    assert loaded.partial and loaded.status == "interrupted"
    assert [r.mid for r in loaded.records if r.complete] == ["m0-0", "m0-1"]  # what was measured is all there
    assert [e.session_id for e in loaded.recorder.filter("session.closed")] == ["s0"]
    report = loaded.save(tmp_path / "again")
    assert "Partial run" in report.read_text()


def test_each_message_is_on_disk_before_its_progress_is_reported(tmp_path: Path) -> None:
    on_disk: list[tuple[int, int]] = []

    def look(update: Progress) -> None:
        lines = (tmp_path / "events.jsonl").read_text(encoding="utf-8").splitlines()
        on_disk.append((update.done, sum(1 for line in lines if '"experiment.message"' in line)))

    run(FakeClient(), sessions=1, messages_per_session=3, out=tmp_path, on_progress=look)
    assert len(on_disk) == 3 and all(marked >= done for done, marked in on_disk)
    assert json.loads((tmp_path / "params.json").read_text())["status"] == "complete"


def test_the_progress_within_a_message_moves_at_each_step() -> None:
    from akool_lab.events import Event
    from akool_lab.metrics._runner import _Steps

    steps = _Steps()
    steps.begin("s1", 0.0)
    seen = [steps.in_flight()]
    for kind in ("chat.sent", "chat.recv", "audio_start"):
        steps.on_event(Event(kind, 0, "kernel", "s1", "m1", {}))
        seen.append(steps.in_flight())
    steps.on_event(Event("chat.sent", 0, "kernel", "other-session", "m2", {}))  # not a message in flight here
    assert seen == [0.0, 0.2, 0.4, 0.6] and steps.in_flight() == 0.6
    steps.end("s1")
    assert steps.in_flight() == 0.0


def test_by_default_a_run_keeps_its_events_on_disk_under_the_lab_home(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AKOOL_LAB_HOME", str(tmp_path))
    result = run(FakeClient(), sessions=1, messages_per_session=2)
    assert result.directory is not None and result.directory.parent == tmp_path / "runs"
    loaded = load_run(result.directory)
    assert loaded.status == "complete" and len(loaded.recorder) == len(result.recorder)
    assert not (result.directory / "report.html").exists()  # rendered on demand: akool-lab report DIR


def test_out_false_keeps_the_run_in_memory_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKOOL_LAB_HOME", str(tmp_path))
    result = run(FakeClient(), sessions=1, messages_per_session=1, out=False)
    assert result.directory is None and not (tmp_path / "runs").exists()


def test_an_out_that_cannot_be_written_is_refused_before_any_request(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    client = FakeClient()
    with pytest.raises(ValidationError, match="out"):
        run(client, sessions=1, messages_per_session=1, out=blocker / "run")
    assert client.requests == 0
