"""set-params, interrupt and set-action: validated before anything is sent, errors name the field."""

from __future__ import annotations

import json
from typing import Any

import pytest

from akool_lab.errors import ValidationError
from akool_lab.protocol import (
    ACTIONS,
    EXPRESSIONS,
    Command,
    decode,
    encode_interrupt,
    encode_set_action,
    encode_set_params,
    validate_set_params,
)


def test_set_params_sends_the_documented_shape() -> None:
    message = encode_set_params(lang="en", mode=1, vparams={"vid": "voice-1", "speed": 1.1}, mid="c1")
    assert json.loads(message) == {
        "v": 2,
        "type": "command",
        "mid": "c1",
        "pld": {"cmd": "set-params", "data": {"lang": "en", "mode": 1, "vparams": {"vid": "voice-1", "speed": 1.1}}},
    }


def test_set_params_drops_unset_values() -> None:
    assert validate_set_params(vid=None, lang="fr", vparams={"speed": None, "stt_language": "fr"}) == {
        "lang": "fr",
        "vparams": {"stt_language": "fr"},
    }


def test_set_params_with_nothing_set_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        validate_set_params(vparams={"speed": None})
    assert info.value.allowed is not None and "vparams" in info.value.allowed


def test_set_params_decodes_back_to_a_command() -> None:
    assert decode(encode_set_params(bgurl="https://x.test/bg.png", mid="c1")) == Command(
        "c1", "set-params", {"bgurl": "https://x.test/bg.png"}
    )


@pytest.mark.parametrize(
    ("kwargs", "field", "allowed"),
    [
        ({"mode": 3}, "mode", "1, 2"),
        ({"mode": True}, "mode", "1, 2"),
        ({"bgurl": "ftp://x.test/a.png"}, "bgurl", "https://"),
        ({"vurl": "voice.mp3"}, "vurl", "https://"),
        ({"lang": "  "}, "lang", "non-empty"),
        ({"vparams": {"speed": 1.5}}, "vparams.speed", "0.8..1.2"),
        ({"vparams": {"speed": "fast"}}, "vparams.speed", "0.8..1.2"),
        ({"vparams": {"turn_detection": {"mode": "x"}}}, "vparams.turn_detection.mode", "threshold"),
        ({"vparams": {"stt_type": "whisper"}}, "vparams.stt_type", "openai_realtime"),
        ({"vparams": {"pron_map": {"AKool": 1}}}, "vparams.pron_map['AKool']", "dict[str, str]"),
        ({"vparams": {"turn_detection": {"type": "manual"}}}, "vparams.turn_detection.type", "server_vad"),
        ({"vparams": {"turn_detection": {"threshold": 1.5}}}, "vparams.turn_detection.threshold", "0..1"),
        (
            {"vparams": {"turn_detection": {"silence_duration_ms": -1}}},
            "vparams.turn_detection.silence_duration_ms",
            "0",
        ),
        ({"vparams": "fast"}, "vparams", "speed"),
    ],
)
def test_set_params_errors_name_the_field_and_what_is_allowed(kwargs: dict[str, Any], field: str, allowed: str) -> None:
    with pytest.raises(ValidationError) as info:
        validate_set_params(**kwargs)
    assert info.value.field == field
    assert info.value.allowed is not None and allowed in info.value.allowed


def test_set_params_drops_empty_string_fields_as_the_demo_does() -> None:
    data = validate_set_params(vid="", vurl="", lang="", bgurl="", mode=1, vparams={"vid": "", "speed": 1.0})
    assert data == {"mode": 1, "vparams": {"speed": 1.0}}


def test_set_params_with_only_empty_strings_sets_nothing_and_is_rejected() -> None:
    with pytest.raises(ValidationError, match="nothing to set"):
        validate_set_params(lang="", bgurl="")


def test_unknown_vparams_keys_are_passed_through_with_a_warning() -> None:
    eleven = {"stability": 0.5, "similarity_boost": 0.75}
    with pytest.warns(UserWarning, match="vparams.elevenlabs_settings"):
        data = validate_set_params(vparams={"speed": 1.1, "elevenlabs_settings": eleven})
    assert data == {"vparams": {"speed": 1.1, "elevenlabs_settings": eleven}}
    with pytest.warns(UserWarning):
        message = decode(encode_set_params(vparams={"elevenlabs_settings": eleven}, mid="c9"))
    assert message == Command("c9", "set-params", {"vparams": {"elevenlabs_settings": eleven}})


def test_an_unknown_vparams_value_that_is_not_json_is_refused_before_sending() -> None:
    with pytest.warns(UserWarning), pytest.raises(ValidationError, match="JSON"):
        encode_set_params(vparams={"future_setting": {1, 2}})


def test_set_params_accepts_a_full_turn_detection() -> None:
    turn = {"type": "semantic_vad", "threshold": 0.5, "prefix_padding_ms": 300, "silence_duration_ms": 500}
    assert validate_set_params(vparams={"turn_detection": turn}) == {"vparams": {"turn_detection": turn}}


@pytest.mark.parametrize("speed", [0.8, 1, 1.2])
def test_set_params_accepts_speeds_at_the_edges(speed: float) -> None:
    assert validate_set_params(vparams={"speed": speed}) == {"vparams": {"speed": speed}}


def test_interrupt_carries_no_data() -> None:
    assert encode_interrupt(mid="c2") == b'{"v":2,"type":"command","mid":"c2","pld":{"cmd":"interrupt"}}'


def test_commands_get_unique_mids_by_default() -> None:
    mids = {json.loads(encode_interrupt())["mid"] for _ in range(100)}
    assert len(mids) == 100


def test_set_action_sends_action_and_expression() -> None:
    message = decode(encode_set_action("hand_wave", "happiness", mid="c3"))
    assert message == Command("c3", "set-action", {"action": "hand_wave", "expression": "happiness"})


def test_set_action_rejects_an_unknown_action_and_lists_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as info:
        encode_set_action("dance")
    assert info.value.field == "action" and info.value.allowed == ", ".join(ACTIONS)


def test_set_action_rejects_an_unknown_expression() -> None:
    with pytest.raises(ValidationError) as info:
        encode_set_action("nod", "boredom")
    assert info.value.field == "expression" and info.value.allowed == ", ".join(EXPRESSIONS)
