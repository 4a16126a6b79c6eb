"""Outgoing commands (AKOOL_API.md section 5.3): set-params, interrupt and set-action, validated before sending."""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Mapping
from typing import Any

from akool_lab.errors import ValidationError
from akool_lab.protocol._codec import encode, new_mid
from akool_lab.protocol._messages import Command

__all__ = [
    "ACTIONS",
    "EXPRESSIONS",
    "MODES",
    "TURN_DETECTION_TYPES",
    "VPARAMS_KEYS",
    "encode_interrupt",
    "encode_set_action",
    "encode_set_params",
    "validate_set_params",
]

#: Gestures of ``set-action`` (ultra avatars only).
ACTIONS = ("hand_wave", "cheer", "thumbs_up", "pump_fists", "nod", "shake", "waft_left", "waft_right")
#: Facial expressions of ``set-action``.
EXPRESSIONS = ("angry", "disgust", "fear", "happiness", "sadness", "surprise", "contempt")
#: ``mode``: 1 retelling (speak the text verbatim), 2 dialogue (answer it).
MODES = (1, 2)
#: The keys ``vparams`` may carry.
VPARAMS_KEYS = ("vid", "vurl", "speed", "stt_language", "pron_map", "stt_type", "turn_detection")
#: ``vparams.turn_detection.type``.
TURN_DETECTION_TYPES = ("server_vad", "semantic_vad")
_TURN_DETECTION_KEYS = ("type", "threshold", "prefix_padding_ms", "silence_duration_ms")
_STT_TYPES = ("openai_realtime",)
_SPEED_RANGE = (0.8, 1.2)


def _text(name: str, value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, f"must be a non-empty string, got {value!r}", allowed="a non-empty string")
    return value


def _url(name: str, value: object) -> str:
    text = _text(name, value)
    if not text.lower().startswith(("http://", "https://")) or len(text.split("://", 1)[1]) == 0:
        raise ValidationError(name, f"must be an http(s) URL, got {text!r}", allowed="http://... or https://...")
    return text


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValidationError(name, f"must be a number, got {value!r}", allowed=f"{low:g}..{high:g}")
    if not low <= value <= high:
        raise ValidationError(name, f"is out of range: {value!r}", allowed=f"{low:g}..{high:g}")
    return value


def _count(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValidationError(name, f"must be an integer >= 0, got {value!r}", allowed="0, 1, 2, ...")
    return value


def _choice(name: str, value: object, allowed: tuple[Any, ...]) -> Any:
    # `True in (1, 2)` holds in Python; a bool is never a valid mode or name.
    if isinstance(value, bool) or value not in allowed:
        raise ValidationError(name, f"{value!r} is not allowed", allowed=", ".join(map(str, allowed)))
    return value


def _unset(value: object) -> bool:
    # Unset values are dropped, as the official demo does (None, and the empty string of a blank form field), so a
    # form can pass every field.
    return value is None or value == ""


def _mapping(name: str, value: object, keys: tuple[str, ...], *, pass_unknown: bool = False) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(name, f"must be a mapping, got {type(value).__name__}", allowed=", ".join(keys))
    unknown = [key for key in value if key not in keys]
    if unknown and not pass_unknown:
        raise ValidationError(f"{name}.{unknown[0]}", "is not a known key", allowed=", ".join(keys))
    known = {key: value[key] for key in keys if key in value and not _unset(value[key])}
    for key in unknown:
        if not isinstance(key, str):
            raise ValidationError(f"{name}[{key!r}]", "keys must be strings", allowed=", ".join(keys))
        if _unset(value[key]):
            continue
        # The service grows new voice settings (elevenlabs_settings...) faster than this list: the official demo
        # forwards whatever its config holds, so send it as given, but say that nothing here checked it.
        warnings.warn(
            f"set-params: {name}.{key} is not a key akool_lab knows ({', '.join(keys)}); it is sent unchecked",
            UserWarning,
            stacklevel=4,  # the caller of validate_set_params
        )
        known[key] = value[key]
    return known


def _vparams(value: object) -> dict[str, Any]:
    given = _mapping("vparams", value, VPARAMS_KEYS, pass_unknown=True)
    checks: dict[str, Callable[[object], Any]] = {
        "vid": lambda v: _text("vparams.vid", v),
        "vurl": lambda v: _url("vparams.vurl", v),
        "speed": lambda v: _number("vparams.speed", v, *_SPEED_RANGE),
        "stt_language": lambda v: _text("vparams.stt_language", v),
        "pron_map": _pron_map,
        "stt_type": lambda v: _choice("vparams.stt_type", v, _STT_TYPES),
        "turn_detection": _turn_detection,
    }
    return {key: checks[key](item) if key in checks else item for key, item in given.items()}


def _pron_map(value: object) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ValidationError(
            "vparams.pron_map", "must be a mapping of word to pronunciation", allowed="dict[str, str]"
        )
    for word, said in value.items():
        if not isinstance(word, str) or not isinstance(said, str):
            raise ValidationError(
                f"vparams.pron_map[{word!r}]", "keys and values must be strings", allowed="dict[str, str]"
            )
    return dict(value)


def _turn_detection(value: object) -> dict[str, Any]:
    name = "vparams.turn_detection"
    given = _mapping(name, value, _TURN_DETECTION_KEYS)
    checks: dict[str, Callable[[object], Any]] = {
        "type": lambda v: _choice(f"{name}.type", v, TURN_DETECTION_TYPES),
        "threshold": lambda v: _number(f"{name}.threshold", v, 0.0, 1.0),
        "prefix_padding_ms": lambda v: _count(f"{name}.prefix_padding_ms", v),
        "silence_duration_ms": lambda v: _count(f"{name}.silence_duration_ms", v),
    }
    return {key: checks[key](item) for key, item in given.items()}


def validate_set_params(
    *,
    vid: str | None = None,
    vurl: str | None = None,
    lang: str | None = None,
    mode: int | None = None,
    bgurl: str | None = None,
    vparams: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The ``pld.data`` of a ``set-params`` command, validated; unset (``None``) values are left out.

    A UI can call it on every edit to flag a field before anything is sent. As in the official demo, unset fields
    (``None`` or ``""``) are left out, and ``vparams`` keys this package does not know (the service adds new ones,
    such as ``elevenlabs_settings``) are sent as given, with a :class:`UserWarning`.

    >>> validate_set_params(lang="en", mode=2, bgurl="", vparams={"speed": 1.1, "vid": None})
    {'lang': 'en', 'mode': 2, 'vparams': {'speed': 1.1}}

    Raises:
        ValidationError: naming the field (``"mode"``, ``"vparams.speed"``, ...) and what it allows, or ``"set-params"``
            when nothing at all is set.
    """
    data: dict[str, Any] = {}
    if not _unset(vid):
        data["vid"] = _text("vid", vid)
    if not _unset(vurl):
        data["vurl"] = _url("vurl", vurl)
    if not _unset(lang):
        data["lang"] = _text("lang", lang)
    if mode is not None:
        data["mode"] = _choice("mode", mode, MODES)
    if not _unset(bgurl):
        data["bgurl"] = _url("bgurl", bgurl)
    if vparams is not None:
        checked = _vparams(vparams)
        if checked:
            data["vparams"] = checked
    if not data:
        raise ValidationError("set-params", "nothing to set", allowed="vid, vurl, lang, mode, bgurl, vparams")
    return data


def encode_set_params(
    *,
    vid: str | None = None,
    vurl: str | None = None,
    lang: str | None = None,
    mode: int | None = None,
    bgurl: str | None = None,
    vparams: Mapping[str, Any] | None = None,
    mid: str | None = None,
) -> bytes:
    """A ``set-params`` command: change voice, language, mode or background while the session runs.

    >>> encode_set_params(mode=1, mid="m1")
    b'{"v":2,"type":"command","mid":"m1","pld":{"cmd":"set-params","data":{"mode":1}}}'

    Raises:
        ValidationError: see :func:`validate_set_params`.
    """
    data = validate_set_params(vid=vid, vurl=vurl, lang=lang, mode=mode, bgurl=bgurl, vparams=vparams)
    return encode(Command(new_mid() if mid is None else mid, "set-params", data))


def encode_interrupt(mid: str | None = None) -> bytes:
    """An ``interrupt`` command: stop the avatar's current utterance."""
    return encode(Command(new_mid() if mid is None else mid, "interrupt"))


def encode_set_action(action: str, expression: str | None = None, mid: str | None = None) -> bytes:
    """A ``set-action`` command: a gesture (one of :data:`ACTIONS`) and optionally an expression (:data:`EXPRESSIONS`).

    Only "ultra" avatars act on it.

    Raises:
        ValidationError: ``action`` or ``expression`` is not one of the allowed names.
    """
    data = {"action": _choice("action", action, ACTIONS)}
    if expression is not None:
        data["expression"] = _choice("expression", expression, EXPRESSIONS)
    return encode(Command(new_mid() if mid is None else mid, "set-action", data))
