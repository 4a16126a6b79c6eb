"""SessionPanel against the simulator: pick, create, follow, close, and readable errors."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.live import LiveSession
from akool_lab.widgets import SessionPanel
from tests.widgets.conftest import AVATAR, wait_until


@pytest.fixture
def panel(client: AkoolClient) -> Iterator[SessionPanel]:
    p = SessionPanel(client, poll_interval=0.05)
    wait_until(lambda: p.avatar.value, what="the avatar list")
    yield p
    p.close()


def test_the_avatar_picker_lists_streaming_avatars_by_name(panel: SessionPanel) -> None:
    labels = [label for label, _value in panel.avatar.options]
    assert "Tristan (dvp_Tristan_cloth2_1080P)" in labels
    assert panel.avatar.value == AVATAR, "AKool's demo avatar is picked by default"
    assert not panel.create_button.disabled


def test_the_default_duration_is_three_minutes_to_protect_credits(panel: SessionPanel) -> None:
    assert panel.duration.value == 180


def test_create_follows_the_session_to_live_connects_and_counts_down(
    panel: SessionPanel, server: sim.SimServer
) -> None:
    seen: list[LiveSession] = []
    panel.on_live(seen.append)
    panel.duration.value = 120
    panel.mode.value = 2

    panel.create_button.click()

    wait_until(lambda: panel.status == "live", what="the session to be live")
    assert "live" in panel.chip.value
    assert panel.live is not None and panel.live.is_open
    assert seen == [panel.live], "on_live callbacks get the connected session"
    assert panel.countdown.value in ("2:00 left", "1:59 left")
    assert panel.create_button.disabled and not panel.close_button.disabled
    truth = server.truth(panel.live.session_id or "")
    assert truth["status"] == 2 and truth["settings"]["mode"] == 2


def test_on_live_registered_after_the_session_is_live_is_called_at_once(panel: SessionPanel) -> None:
    panel.create_button.click()
    wait_until(lambda: panel.status == "live", what="live")
    seen: list[LiveSession] = []
    panel.on_live(seen.append)
    assert seen == [panel.live]


def test_close_ends_the_session_on_the_service(panel: SessionPanel, client: AkoolClient) -> None:
    ended: list[str] = []
    panel.on_end(ended.append)
    panel.create_button.click()
    wait_until(lambda: panel.status == "live", what="live")
    session_id = panel.live.session_id if panel.live else ""

    panel.close_button.click()

    wait_until(lambda: panel.status == "ended", what="the session to end")
    assert client.sessions.get(session_id or "").status == 3
    assert ended == ["ended"] and panel.live is None and panel.countdown.value == ""
    assert not panel.create_button.disabled, "a new session can be created once the old one has ended"


def test_a_busy_avatar_shows_a_readable_line_not_a_traceback(panel: SessionPanel, server: sim.SimServer) -> None:
    server.set_faults("session.create=1215:1")

    panel.create_button.click()

    text = wait_until(lambda: panel.errors.text, what="the error line")
    assert "1215" in text and "busy" in text and "retry later or pick another avatar" in text
    assert "Traceback" not in text
    wait_until(lambda: panel.status == "idle", what="the panel to be usable again")
    assert not panel.create_button.disabled


def test_a_session_that_fails_while_queueing_shows_failed(panel: SessionPanel, server: sim.SimServer) -> None:
    server.set_faults("session.fail=1")

    panel.create_button.click()

    wait_until(lambda: panel.status == "failed", what="the failed status")
    assert "failed" in panel.chip.value
    assert "failed before it was live" in panel.errors.text


def test_create_without_an_avatar_is_refused_in_the_panel(client: AkoolClient, server: sim.SimServer) -> None:
    server.set_faults("avatar.list=1218:1")
    panel = SessionPanel(client)
    try:
        wait_until(lambda: "loading avatars" in panel.errors.text, what="the avatar list error")
        assert "1218" in panel.errors.text
        assert panel.create() is None
        assert "pick an avatar first" in panel.errors.text
    finally:
        panel.close()


def test_close_all_closes_every_journaled_session(panel: SessionPanel, client: AkoolClient) -> None:
    other = client.sessions.create(AVATAR, duration=60)  # as if created in another cell, or a crashed kernel
    panel.create_button.click()
    wait_until(lambda: panel.status == "live", what="live")

    panel.close_all_button.click()

    wait_until(lambda: "closed" in panel.errors.text, what="the close-all note")
    assert client.sessions.get(other.id).status == 3
    assert other.id in panel.errors.text
    assert panel.status == "ended"


def test_every_choice_shows_a_selected_option(panel: SessionPanel) -> None:
    for control in (panel.avatar, panel.mode, panel.stream_type):
        assert control.index is not None, f"{control.description} would render blank"
    assert panel.stream_type.label == "service default"
