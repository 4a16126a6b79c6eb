"""LatencyMonitor: the plot and percentile table follow the recorder, redrawn at a bounded rate."""

from __future__ import annotations

import time

from akool_lab.api import AkoolClient
from akool_lab.events import EventKind, Recorder
from akool_lab.metrics import percentile
from akool_lab.widgets import LatencyMonitor
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
        elapsed = time.monotonic() - started
        time.sleep(0.5)  # let the last pending redraw run
        redraws = monitor.renders - before
        assert 1 <= redraws <= 3.0 * (elapsed + 0.5) + 1, f"{redraws} redraws for 300 events in {elapsed:.2f} s"
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
