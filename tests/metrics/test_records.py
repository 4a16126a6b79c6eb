"""Timings derived from recorded events: every number is hand-computed from the known sequences in ``_events``."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

import pytest

from akool_lab.events import Recorder
from akool_lab.metrics import MessageRecord, command_timings, http_timings, message_timings, session_timings
from akool_lab.types import ReplyTimings, default_reply_timeout

from ._events import BROWSER, ev, one_session, one_session_events


def test_a_paced_message_has_every_timing_of_the_design() -> None:
    m1 = message_timings(one_session())[0]
    assert (m1.mid, m1.intent, m1.mode, m1.chunks, m1.bytes, m1.text_chars) == ("m1", "say", 1, 2, 1200, 1000)
    assert m1.send_span_ms == 100.0  # first -> last chunk sent
    assert m1.ttfr_ms == 300.0  # last chunk sent (4100) -> first reply chunk (4400)
    assert m1.ttfa_ms == 400.0  # -> audio_start (4500)
    assert m1.reply_ms == 350.0  # -> final reply chunk (4450)
    assert m1.speak_ms == 2000.0  # audio_start -> audio_end
    assert m1.gaps_ms == (50.0,)
    assert (m1.complete, m1.interrupted, m1.reason, m1.clock) == (True, False, None, "kernel")


def test_an_interrupted_reply_has_no_reply_time_but_keeps_what_was_measured() -> None:
    m2 = message_timings(one_session())[1]
    assert (m2.intent, m2.mode, m2.chunks, m2.send_span_ms) == ("ask", 2, 1, 0.0)
    assert (m2.ttfr_ms, m2.ttfa_ms, m2.speak_ms) == (800.0, 900.0, 220.0)
    assert m2.reply_ms is None
    assert (m2.complete, m2.interrupted, m2.reason) == (False, True, "interrupted")


def test_the_first_message_of_each_session_is_cold_and_the_rest_warm() -> None:
    events = one_session_events()
    events += [ev("chat.sent", 100, sid="s2", mid="n1", idx=0, fin=True, bytes=10, intent="say", text_chars=5)]
    records = message_timings(Recorder(events))
    assert [(r.session_id, r.mid, r.cold, r.phase, r.index) for r in records] == [
        ("s1", "m1", True, "cold", 0),
        ("s1", "m2", False, "warm", 1),
        ("s2", "n1", True, "cold", 0),
    ]


def test_params_in_effect_come_from_the_latest_acked_set_params_before_the_message() -> None:
    events = [
        ev("chat.sent", 10, mid="a", idx=0, fin=True, bytes=5, intent="say", text_chars=5),
        ev("command.sent", 20, mid="c", cmd="set-params", bytes=9, params={"vid": "v2", "lang": "de"}),
        ev("command.ack", 25, mid="c", cmd="set-params", code=1000, msg="ok", matched=True),
        ev("chat.sent", 30, mid="b", idx=0, fin=True, bytes=5, intent="say", text_chars=5),
        ev("command.sent", 40, mid="d", cmd="set-params", bytes=9, params={"lang": "es"}),
        ev("command.ack", 45, mid="d", cmd="set-params", code=1201, msg="rejected", matched=True),
        ev("chat.sent", 50, mid="c3", idx=0, fin=True, bytes=5, intent="say", text_chars=5),
    ]
    records = message_timings(Recorder(events))
    assert [(r.voice, r.lang) for r in records] == [(None, None), ("v2", "de"), ("v2", "de")]


def test_a_message_recorded_by_the_runner_as_failed_before_sending_is_kept_and_marked() -> None:
    events = [ev("experiment.message", 10, mid=None, index=0, warmup=False, ok=False, error="StreamClosedError: x")]
    (record,) = message_timings(events)
    assert (record.mid, record.complete, record.reason, record.error) == (
        None,
        False,
        "not sent",
        "StreamClosedError: x",
    )
    assert record.ttfr_ms is None


def test_a_message_record_carries_every_reply_timing_under_the_same_name() -> None:
    # A timing added to ReplyTimings must reach the records (and the reports) without a second definition.
    timing_names = {f.name for f in fields(ReplyTimings)}
    assert timing_names <= {f.name for f in fields(MessageRecord)}
    m1 = message_timings(one_session())[0]
    assert m1.clock is not None
    derived = {name: getattr(m1, name) for name in timing_names}
    assert ReplyTimings(**derived).as_dict() == {**derived, "gaps_ms": [50.0]}


def test_a_message_never_sent_has_no_chunk_and_every_duration_unknown() -> None:
    (record,) = message_timings([ev("experiment.message", 10, mid=None, index=2, warmup=True, error="x")])
    assert (record.chunks, record.gaps_ms, record.clock, record.index, record.warmup) == (0, (), None, 2, True)
    assert [record.send_span_ms, record.ttfr_ms, record.ttfa_ms, record.reply_ms, record.speak_ms] == [None] * 5


def test_the_default_reply_timeout_is_30_s_plus_half_a_second_a_word() -> None:
    assert default_reply_timeout("") == 30.0
    assert default_reply_timeout("one two three four") == 32.0


def test_a_message_without_any_reply_is_incomplete() -> None:
    events = [ev("chat.sent", 10, mid="a", idx=0, fin=True, bytes=5, intent="say", text_chars=5)]
    (record,) = message_timings(events)
    assert (record.complete, record.reason, record.ttfr_ms, record.reply_ms) == (False, "no reply", None, None)


def test_message_timings_never_subtract_a_browser_time_from_a_kernel_time() -> None:
    # The stream is timed by the browser page; a stray kernel-clock reply chunk under the same mid must be ignored.
    events = [
        ev("chat.sent", 5, mid="b1", clock=BROWSER, idx=0, fin=True, bytes=10, intent="say", text_chars=4),
        ev("chat.recv", 999_000, mid="b1", clock="kernel", idx=0, fin=True, sender="bot", text_chars=4),
        ev("chat.recv", 65, mid="b1", clock=BROWSER, idx=0, fin=True, sender="bot", text_chars=4),
        ev("audio_start", 80, mid="b1", clock=BROWSER),
        ev("audio_end", 1080, mid="b1", clock=BROWSER),
    ]
    (record,) = message_timings(events)
    assert (record.clock, record.ttfr_ms, record.reply_ms, record.ttfa_ms, record.speak_ms) == (
        BROWSER,
        60.0,
        60.0,
        75.0,
        1000.0,
    )


def test_session_timings_leave_out_steps_recorded_on_another_clock() -> None:
    # Kernel: REST lifecycle and the connect; browser: the stream. The first reply cannot be placed on the kernel
    # timeline, so it is unknown rather than a meaningless difference of two clocks.
    events = [
        ev("session.created", 100, sid="s9"),
        ev("session.live", 400, sid="s9"),
        ev("stream.connect_start", 500, sid="s9"),
        ev("stream.connected", 700, sid="s9"),
        ev("chat.sent", 3, sid="s9", mid="b1", clock=BROWSER, idx=0, fin=True, bytes=10, intent="say", text_chars=4),
        ev("chat.recv", 9, sid="s9", mid="b1", clock=BROWSER, idx=0, fin=True, sender="bot", text_chars=4),
    ]
    (session,) = session_timings(events)
    assert (session.live_ms, session.connect_ms, session.first_reply_ms, session.create_ms) == (
        300.0,
        200.0,
        None,
        None,
    )


def test_session_timings_of_a_whole_life_cycle() -> None:
    (s,) = session_timings(one_session())
    assert s.session_id == "s1"
    assert s.create_ms == 120.0  # the sessions.create request, matched although it carries no session id
    assert s.live_ms == 1500.0  # created (1121) -> live (2621)
    assert s.connect_ms == 250.0
    assert s.first_reply_ms == 1150.0  # connected (3250) -> first reply chunk (4400)
    assert s.close_ms == 190.0  # first close_start (9000) -> the service's confirmation (9190)
    assert s.messages == 2
    assert (s.created_at_ms, s.live_at_ms, s.connected_at_ms, s.closed_at_ms) == (121.0, 1621.0, 2250.0, 8190.0)


def test_concurrent_creates_are_each_matched_to_their_own_request() -> None:
    events = [
        ev("http", 0, sid=None, endpoint="sessions.create", ms=100.0, attempt=1, error=None),
        ev("http", 10, sid=None, endpoint="sessions.create", ms=300.0, attempt=1, error=None),
        ev("session.created", 101, sid="a"),
        ev("session.created", 311, sid="b"),
    ]
    assert [(s.session_id, s.create_ms) for s in session_timings(events)] == [("a", 100.0), ("b", 300.0)]


def test_command_timings_give_ack_times_and_the_interrupt_cost() -> None:
    set_params, interrupt = command_timings(one_session())
    assert (set_params.cmd, set_params.ack_ms, set_params.ok, set_params.interrupt_to_audio_end_ms) == (
        "set-params",
        40.0,
        True,
        None,
    )
    assert (interrupt.cmd, interrupt.ack_ms, interrupt.interrupt_to_audio_end_ms) == ("interrupt", 30.0, 120.0)


def test_a_missing_ack_is_recorded_as_missing() -> None:
    events = [
        ev("command.sent", 10, mid="c", cmd="set-params", bytes=9),
        ev("command.ack_missing", 10_010, mid="c", cmd="set-params", timeout_s=10.0),
    ]
    (record,) = command_timings(events)
    assert (record.ack_missing, record.ack_ms, record.code, record.ok) == (True, None, None, False)


def test_an_interrupt_while_silent_has_no_interrupt_to_audio_end() -> None:
    events = [
        ev("audio_start", 0, mid="m"),
        ev("audio_end", 100, mid="m"),
        ev("command.sent", 200, mid="c", cmd="interrupt", bytes=9),
        ev("audio_start", 300, mid="n"),
        ev("audio_end", 400, mid="n"),
    ]
    assert command_timings(events)[0].interrupt_to_audio_end_ms is None


def test_http_timings_one_record_per_attempt() -> None:
    records = http_timings(one_session())
    assert [(r.endpoint, r.ms, r.attempt) for r in records] == [
        ("sessions.create", 120.0, 1),
        ("sessions.get", 30.0, 1),
        ("sessions.get", 21.0, 1),
        ("sessions.close", 170.0, 1),
    ]


def test_timings_are_the_same_after_a_save_and_load(tmp_path: Path) -> None:
    path = one_session().save(tmp_path / "events.jsonl")
    assert message_timings(Recorder.load(path)) == message_timings(one_session())
    assert session_timings(Recorder.load(path)) == session_timings(one_session())


@pytest.mark.parametrize("source", ["recorder", "list"])
def test_derivations_accept_a_recorder_or_a_list_of_events(source: str) -> None:
    events = one_session_events()
    records = message_timings(Recorder(events) if source == "recorder" else events)
    assert [r.mid for r in records] == ["m1", "m2"]
