"""Bad input raises ValidationError before any request is sent (the fake service sees nothing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from akool_lab import errors

from .conftest import Harness

BAD_CALLS: dict[str, tuple[str, Callable[[Any], Any]]] = {
    "missing avatar_id": ("avatar_id", lambda c: c.sessions.create("")),
    "avatar_id not a str": ("avatar_id", lambda c: c.sessions.create(None)),
    "duration 0": ("duration", lambda c: c.sessions.create("a", duration=0)),
    "duration 3601": ("duration", lambda c: c.sessions.create("a", duration=3601)),
    "duration float": ("duration", lambda c: c.sessions.create("a", duration=1.5)),
    "duration bool": ("duration", lambda c: c.sessions.create("a", duration=True)),
    "mode_type 3": ("mode_type", lambda c: c.sessions.create("a", mode_type=3)),
    "stream_type": ("stream_type", lambda c: c.sessions.create("a", stream_type="webrtc")),
    "background ftp": ("background_url", lambda c: c.sessions.create("a", background_url="ftp://x/y.png")),
    "voice_url relative": ("voice_url", lambda c: c.sessions.create("a", voice_url="/voice.mp3")),
    "speed 1.5": ("voice_params.speed", lambda c: c.sessions.create("a", voice_params={"speed": 1.5})),
    "speed 0.7": ("voice_params.speed", lambda c: c.sessions.create("a", voice_params={"speed": 0.7})),
    "unknown voice key": ("voice_params", lambda c: c.sessions.create("a", voice_params={"pitch": 1})),
    "turn type": (
        "voice_params.turn_detection.type",
        lambda c: c.sessions.create("a", voice_params={"turn_detection": {"type": "magic"}}),
    ),
    "threshold": (
        "voice_params.turn_detection.threshold",
        lambda c: c.sessions.create("a", voice_params={"turn_detection": {"threshold": 2}}),
    ),
    "fast voice": (
        "voice_params.voice_id",
        lambda c: c.sessions.create("a", scene_mode="fast_dialogue", voice_params={"voice_id": "v123"}),
    ),
    "e2e without fast": ("e2e_type", lambda c: c.sessions.create("a", e2e_type="openai")),
    "credentials not dict": ("credentials", lambda c: c.sessions.create("a", credentials="token")),
    "list page 0": ("page", lambda c: c.sessions.list(page=0)),
    "list size 101": ("size", lambda c: c.sessions.list(size=101)),
    "list status 5": ("status", lambda c: c.sessions.list(status=5)),
    "get empty id": ("id", lambda c: c.sessions.get("")),
    "close empty id": ("id", lambda c: c.sessions.close(" ")),
    "avatars size 0": ("size", lambda c: c.avatars.list(size=0)),
    "upload id with dash": (
        "avatar_id",
        lambda c: c.avatars.upload(url="https://a/v.mp4", avatar_id="my-id", name="n"),
    ),
    "upload url": ("url", lambda c: c.avatars.upload(url="file:///v.mp4", avatar_id="A1", name="n")),
    "upload url_from": (
        "url_from",
        lambda c: c.avatars.upload(url="https://a/v.mp4", avatar_id="A1", name="n", url_from=3),
    ),
    "voices type": ("type", lambda c: c.voices.list(type=3)),
    "voices support_stream": ("support_stream", lambda c: c.voices.list(support_stream=7)),
    "knowledge name too long": ("name", lambda c: c.knowledge.create(name="x" * 101)),
    "knowledge url": ("urls[0]", lambda c: c.knowledge.create(urls=["javascript:alert(1)"])),
    "knowledge delete id": ("id", lambda c: c.knowledge.delete("")),
}


@pytest.mark.parametrize("case", list(BAD_CALLS), ids=list(BAD_CALLS))
def test_bad_input_raises_validation_error_before_any_request(harness: Harness, case: str) -> None:
    field, call = BAD_CALLS[case]
    client = harness.client()
    with pytest.raises(errors.ValidationError) as info:
        harness.run(call(client))
    assert info.value.field == field
    assert harness.server.requests == []


def test_a_valid_full_voice_params_passes(harness: Harness) -> None:
    from akool_lab.api._endpoints import validate_voice_params

    params = {
        "speed": 1.2,
        "pron_map": {"akool": "ai ku er"},
        "stt_language": "en",
        "stt_type": "openai_realtime",
        "turn_detection": {
            "type": "server_vad",
            "threshold": 0.5,
            "prefix_padding_ms": 300,
            "silence_duration_ms": 500,
        },
        "elevenlabs_settings": {
            "api_key": "k",
            "model_id": "eleven_flash_v2_5",
            "stability": 0,
            "use_speaker_boost": True,
        },
    }
    assert validate_voice_params(params) == params


@pytest.mark.parametrize("value", [-1, "2", None])
def test_max_retries_must_be_a_whole_number(harness: Harness, value: object) -> None:
    with pytest.raises(errors.ValidationError, match="max_retries"):
        harness.client(max_retries=value)
