"""ParamsPanel against the simulator: lists, Apply sends only what changed, acks, and invalid input flagged."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.events import EventKind
from akool_lab.live import LiveSession
from akool_lab.widgets import ParamsPanel
from tests.widgets.conftest import AVATAR, wait_until


@pytest.fixture
def live(client: AkoolClient) -> Iterator[LiveSession]:
    session = client.sessions.create(AVATAR, duration=120, mode_type=1)
    client.sessions.wait_until_live(session.id, timeout=10)
    with client.connect(session, mode=1) as live_session:
        yield live_session


@pytest.fixture
def params(live: LiveSession, client: AkoolClient) -> Iterator[ParamsPanel]:
    panel = ParamsPanel(live, client)
    assert panel.lists_loaded is not None
    panel.lists_loaded.result(10)
    yield panel
    panel.close()


@pytest.fixture
def sent(live: LiveSession, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """The keyword arguments of every set_params the panel sends (the call still goes through)."""
    calls: list[dict[str, Any]] = []
    stream = live.avatar_stream
    original = stream.set_params

    def spy(**kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(stream, "set_params", spy)
    return calls


def set_params_sent(live: LiveSession) -> int:
    return sum(1 for e in live.recorder.filter(EventKind.COMMAND_SENT) if e.data.get("cmd") == "set-params")


def test_the_voice_list_holds_only_streaming_voices_stock_and_cloned(params: ParamsPanel) -> None:
    voices = [value for _label, value in params.voice.options if value]
    assert voices[:2] == ["sim_voice_en_male_1", "sim_voice_en_female_1"], "AKool's stock voices come first"
    assert "sim_clone_alex" in voices, "the account's cloned streaming voice is offered too"
    assert "sim_voice_fr_male_1" not in voices and "sim_clone_maria" not in voices, "non-streaming voices are not"


def test_the_language_list_holds_every_language(params: ParamsPanel) -> None:
    languages = [value for _label, value in params.language.options if value]
    assert "en-US" in languages and "fr-FR" in languages
    assert params.voice.value == "" and params.language.value == "", "nothing is changed until the user does"


def test_apply_sends_only_what_changed_and_shows_the_ack(
    params: ParamsPanel, live: LiveSession, server: sim.SimServer, sent: list[dict[str, Any]]
) -> None:
    params.speed.value = 1.1
    params.language.value = "fr-FR"

    params.apply_button.click()

    wait_until(lambda: params.last_ack is not None, what="the ack")
    assert sent == [{"lang": "fr-FR", "vparams": {"speed": 1.1}}]
    assert params.last_ack is not None
    assert f"ack 1000 OK in {params.last_ack.ack_ms:.1f} ms" in params.errors.text
    settings = server.truth(live.session_id or "")["settings"]
    assert settings["lang"] == "fr-FR" and settings["speed"] == 1.1

    params.voice.value = "sim_voice_en_female_1"
    params.apply_button.click()

    wait_until(lambda: len(sent) == 2 and "ack 1000" in params.errors.text, what="the second ack")
    assert sent[1] == {"vid": "sim_voice_en_female_1"}, "the speed and language already applied are not resent"
    assert server.truth(live.session_id or "")["settings"]["voice_id"] == "sim_voice_en_female_1"


def test_advanced_voice_params_are_folded_away_and_sent_as_vparams(
    params: ParamsPanel, sent: list[dict[str, Any]]
) -> None:
    assert params.advanced.selected_index is None, "the accordion starts folded"
    params.stt_language.value = "en"
    params.turn_detection.value = "server_vad"
    params.silence_ms.value = 500

    params.apply_button.click()

    wait_until(lambda: params.last_ack is not None, what="the ack")
    assert sent == [
        {"vparams": {"stt_language": "en", "turn_detection": {"type": "server_vad", "silence_duration_ms": 500}}}
    ]


def test_an_invalid_background_url_is_flagged_before_anything_is_sent(params: ParamsPanel, live: LiveSession) -> None:
    before = set_params_sent(live)

    params.background_url.value = "not a url"

    assert "akool-invalid" in params.background_url._dom_classes, "flagged as soon as it is typed"
    assert "not sent: bgurl: must be an http(s) URL" in params.errors.text
    assert params.apply() is None
    assert set_params_sent(live) == before

    params.background_url.value = "https://example.com/studio.jpg"

    assert "akool-invalid" not in params.background_url._dom_classes
    assert params.errors.text == ""


def test_an_invalid_advanced_value_is_flagged_on_its_field(params: ParamsPanel, live: LiveSession) -> None:
    before = set_params_sent(live)

    params.silence_ms.value = -5

    assert "akool-invalid" in params.silence_ms._dom_classes
    assert "vparams.turn_detection.silence_duration_ms" in params.errors.text
    params.apply_button.click()
    assert set_params_sent(live) == before


def test_the_speed_slider_cannot_leave_the_range_akool_accepts(params: ParamsPanel) -> None:
    params.speed.value = 1.5
    assert params.speed.value == 1.2
    params.speed.value = 0.5
    assert params.speed.value == 0.8


def test_apply_with_nothing_changed_sends_nothing(params: ParamsPanel, live: LiveSession) -> None:
    before = set_params_sent(live)

    params.apply_button.click()

    assert "nothing changed" in params.errors.text
    assert set_params_sent(live) == before


def test_apply_is_disabled_without_a_connected_session(client: AkoolClient, live: LiveSession) -> None:
    panel = ParamsPanel(None, client)
    try:
        assert panel.apply_button.disabled
        assert panel.apply() is None and "not connected" in panel.errors.text
        panel.attach(live)
        assert not panel.apply_button.disabled
        live.close()
        wait_until(lambda: panel.apply_button.disabled, what="Apply to be disabled when the stream closes")
    finally:
        panel.close()


def test_every_choice_starts_on_unchanged_which_the_browser_can_show(client: AkoolClient) -> None:
    panel = ParamsPanel(None, client)
    try:
        for control in (panel.voice, panel.language, panel.mode, panel.turn_detection):
            # ipywidgets 8 renders a Dropdown whose value is None as blank: "unchanged" must be a real option.
            assert control.index == 0 and control.label == "(unchanged)"
    finally:
        panel.close()
