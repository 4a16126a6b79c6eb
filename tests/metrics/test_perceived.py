"""Perceived timings: what the stage heard of each reply (``perceived.heard`` events on the browser's clock) joins
the message's record, apart from its data-channel timings, and is never computed across clocks."""

from __future__ import annotations

from typing import Any

from akool_lab.events import Event, Recorder
from akool_lab.metrics import message_timings, perceived_timings

from ._events import BROWSER, ev

HEARD: dict[str, Any] = {
    "reply_mid": "r1",
    "sent_at": 5000.0,
    "audio_start_at": 5400.0,
    "onset_at": 5520.0,
    "heard_ms": 520.0,
    "media_delay_ms": 120.0,
    "jitter_buffer_ms": 40.5,
    "playout_delay_ms": 10.0,
}


def _kernel_message(mid: str, t0: float) -> list[Event]:
    return [
        ev("chat.sent", t0, mid=mid, idx=0, fin=True, bytes=80, intent="say", text_chars=20),
        ev("chat.recv", t0 + 300, mid=mid, reply_mid="r1", idx=0, fin=True, sender="bot", text_chars=20),
        ev("audio_start", t0 + 350, mid=mid),
        ev("audio_end", t0 + 900, mid=mid),
    ]


def test_a_heard_reply_gives_its_message_heard_ms_and_media_delay_ms_from_the_browser() -> None:
    events = [*_kernel_message("m1", 1000), ev("perceived.heard", 5520, mid="m1", clock=BROWSER, **HEARD)]
    [record] = message_timings(Recorder(events))
    assert record.ttfa_ms == 350.0  # the data-channel timing is unchanged, on the kernel clock
    assert record.clock == "kernel"
    assert (record.heard_ms, record.media_delay_ms) == (520.0, 120.0)
    assert (record.jitter_buffer_ms, record.playout_delay_ms) == (40.5, 10.0)
    assert record.perceived_clock == BROWSER
    assert record.as_dict()["heard_ms"] == 520.0


def test_a_message_no_stage_heard_has_no_perceived_timings() -> None:
    unheard = ev("perceived.unheard", 2000, mid="m1", clock=BROWSER, reply_mid="r1")
    [record] = message_timings(Recorder([*_kernel_message("m1", 1000), unheard]))
    assert record.heard_ms is None and record.media_delay_ms is None and record.perceived_clock is None


def test_perceived_timings_are_taken_as_the_browser_measured_them_never_across_clocks() -> None:
    # The browser's event says heard_ms=520 on its own clock; the kernel sent at 1,000 ms and the browser event is
    # stamped at 5,520 ms: a cross-clock difference (4,520) must never appear.
    kernel_heard = ev("perceived.heard", 1800, mid="m2", clock="kernel", **HEARD)  # not a browser's: ignored
    events = [ev("perceived.heard", 5520, mid="m1", clock=BROWSER, **HEARD), kernel_heard]
    timings = perceived_timings(events)
    assert set(timings) == {"m1"}
    assert timings["m1"]["heard_ms"] == 520.0
    assert timings["m1"]["clock"] == BROWSER and timings["m1"]["reply_mid"] == "r1"


def test_a_reply_to_the_users_voice_has_no_heard_ms_but_keeps_its_media_delay() -> None:
    voice = {**HEARD, "sent_at": None, "heard_ms": None, "user_heard_ms": 700.0}
    timings = perceived_timings([ev("perceived.heard", 5520, mid="u1", clock=BROWSER, **voice)])
    assert timings["u1"]["heard_ms"] is None
    assert timings["u1"]["media_delay_ms"] == 120.0


def test_the_first_page_that_heard_a_reply_is_kept() -> None:
    other = "browser:page2"
    events = [
        ev("perceived.heard", 5520, mid="m1", clock=BROWSER, **HEARD),
        ev("perceived.heard", 9000, mid="m1", clock=other, **{**HEARD, "heard_ms": 999.0}),
    ]
    assert perceived_timings(events)["m1"]["heard_ms"] == 520.0


def test_the_default_report_metrics_gain_heard_ms_and_media_delay_ms_only_when_measured() -> None:
    from akool_lab.metrics import measured_metrics

    heard = message_timings(
        Recorder([*_kernel_message("m1", 1000), ev("perceived.heard", 5520, mid="m1", clock=BROWSER, **HEARD)])
    )
    unheard = message_timings(Recorder(_kernel_message("m1", 1000)))
    assert measured_metrics(heard)[-2:] == ("heard_ms", "media_delay_ms")
    assert "ttfa_ms" in measured_metrics(heard)
    assert not {"heard_ms", "media_delay_ms"} & set(measured_metrics(unheard))
    assert measured_metrics(heard, ("ttfr_ms",)) == ("ttfr_ms",)  # an explicit choice is kept as it is
