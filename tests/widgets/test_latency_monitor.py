"""LatencyMonitor: the plot and percentile table follow the recorder, redrawn at a bounded rate."""

from __future__ import annotations

import time
from typing import Any

from akool_lab.api import AkoolClient
from akool_lab.events import EventKind, Recorder
from akool_lab.metrics import percentile
from akool_lab.widgets import LatencyMonitor
from akool_lab.widgets._latency_monitor import _figure, _table
from tests.widgets.conftest import AVATAR, wait_until

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def test_an_empty_recorder_shows_an_empty_plot_and_zero_counts() -> None:
    monitor = LatencyMonitor(Recorder())
    try:
        wait_until(lambda: bytes(monitor.image.value).startswith(PNG_MAGIC), what="the first figure")
        assert "<td>0</td>" in monitor.table.value
    finally:
        monitor.close()


def test_the_plot_and_table_show_the_timings_of_the_replies(client: AkoolClient) -> None:
    monitor = LatencyMonitor(client.recorder)
    try:
        session = client.sessions.create(AVATAR, duration=60, mode_type=1)
        client.sessions.wait_until_live(session.id, timeout=10)
        with client.connect(session, mode=1) as live:
            replies = [live.say(f"Message number {i}.") for i in range(5)]

        expected = [r.timings.ttfr_ms for r in replies]
        wait_until(lambda: monitor.values["ttfr_ms"] == expected, what="the monitor to show every reply")
        assert monitor.values["ttfa_ms"] == [r.timings.ttfa_ms for r in replies]
        ordered = sorted(v for v in expected if v is not None)
        table = monitor.table.value
        assert "<th>ttfr_ms</th><td>5</td>" in table
        assert f"<td>{percentile(ordered, 50):.1f}</td>" in table and f"<td>{ordered[-1]:.1f}</td>" in table
        assert table_cells(monitor.values["ttfr_ms"])[2:4] == ["–", "–"], "no p90 nor p99 from 5 messages"
        assert bytes(monitor.image.value).startswith(PNG_MAGIC)
    finally:
        monitor.close()


def test_a_burst_of_events_is_redrawn_a_few_times_not_once_per_event() -> None:
    recorder = Recorder()
    monitor = LatencyMonitor(recorder, max_hz=3.0)
    try:
        wait_until(lambda: monitor.renders >= 1, what="the first figure")
        before = monitor.renders
        started = time.monotonic()
        for i in range(300):
            recorder.record(EventKind.REPLY_DONE, mid=f"m{i}", complete=True)
            time.sleep(0.002)
        wait_until(lambda: monitor.renders > before, what="a redraw after the burst")
        elapsed = time.monotonic() - started
        redraws = monitor.renders - before
        assert 1 <= redraws <= 3.0 * elapsed + 1, f"{redraws} redraws for 300 events in {elapsed:.2f} s"
    finally:
        monitor.close()


def test_recording_never_waits_for_a_redraw() -> None:
    recorder = Recorder()
    monitor = LatencyMonitor(recorder)
    try:
        started = time.perf_counter()
        for i in range(1000):
            recorder.record(EventKind.REPLY_DONE, mid=f"m{i}", complete=True)
        per_event_ms = (time.perf_counter() - started) * 1000 / 1000
        assert per_event_ms < 1.0, "the listener only marks the figure dirty; drawing happens elsewhere"
    finally:
        monitor.close()


def table_cells(values: list[float]) -> list[str]:
    """The ttfr row of the percentile table for ``values``: n, p50, p90, p99, max as shown."""
    row = _table({"ttfr_ms": values, "ttfa_ms": []}).split("<th>ttfr_ms</th>")[1].split("</tr>")[0]
    return [cell.split(">", 1)[1] for cell in row.split("</td>") if cell]


def test_a_percentile_is_shown_only_from_a_sample_that_supports_it() -> None:
    few = [float(v) for v in range(1, 6)]  # 5 values: p50 only
    some = [float(v) for v in range(1, 11)]  # 10: p50 and p90
    many = [float(v) for v in range(1, 101)]  # 100: all three

    assert table_cells(few) == ["5", "3.0", "–", "–", "5.0"]
    assert table_cells(some) == ["10", "5.5", f"{percentile(some, 90):.1f}", "–", "10.0"]
    assert table_cells(many)[3] == f"{percentile(many, 99):.1f}"
    assert 'title="p99 needs at least 100 values"' in _table({"ttfr_ms": some, "ttfa_ms": []})


def test_the_histogram_counts_messages_in_whole_numbers() -> None:
    figure = _figure({"ttfr_ms": [410.0, 432.0, 388.0], "ttfa_ms": [650.0, 702.0, 671.0]})
    figure.canvas.draw()
    histogram = figure.axes[1]

    ticks = [t for t in histogram.get_yticks() if histogram.get_ylim()[0] <= t <= histogram.get_ylim()[1]]
    assert len(ticks) >= 2 and all(t == int(t) for t in ticks), f"fractional counts on the axis: {ticks}"


def test_the_recent_messages_axis_numbers_whole_messages_even_for_one() -> None:
    figure = _figure({"ttfr_ms": [410.0], "ttfa_ms": [650.0]})
    figure.canvas.draw()
    recent = figure.axes[0]

    low, high = recent.get_xlim()
    ticks = [t for t in recent.get_xticks() if low <= t <= high]
    assert ticks == [1.0], f"one message, one tick at 1: {ticks}"


def test_a_message_a_stage_heard_shows_its_heard_ms_next_to_its_ttfa_ms() -> None:
    from tests.metrics._events import BROWSER, ev

    recorder = Recorder()
    monitor = LatencyMonitor(recorder)
    try:
        recorder.extend(
            [
                ev("chat.sent", 1000, mid="m1", idx=0, fin=True, bytes=80, intent="say", text_chars=20),
                ev("chat.recv", 1300, mid="m1", reply_mid="r1", idx=0, fin=True, sender="bot", text_chars=20),
                ev("audio_start", 1350, mid="m1"),
            ]
        )
        heard: dict[str, Any] = {"reply_mid": "r1", "heard_ms": 520.0, "media_delay_ms": 120.0}
        recorder.add(ev("perceived.heard", 5520, mid="m1", clock=BROWSER, **heard))
        wait_until(lambda: monitor.values["heard_ms"] == [520.0], what="the monitor to show the heard reply")
        assert monitor.values["ttfa_ms"] == [350.0]
        assert "<th>heard_ms</th><td>1</td>" in monitor.table.value
    finally:
        monitor.close()
