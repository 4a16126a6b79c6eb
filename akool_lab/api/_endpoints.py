"""Every REST endpoint, defined once, without I/O.

An endpoint is data (:class:`Endpoint`: name, method, path, retry policy) plus two pure functions: a request builder
that validates the caller's input (raising :class:`~akool_lab.errors.ValidationError` before anything is sent) and
returns a :class:`Request`, and a response parser that turns the envelope into a typed model. A new endpoint is one
entry here and one method of a resource in ``_resources.py``, which serves both clients (see ``_resource.py``).
"""

from __future__ import annotations

import enum
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from akool_lab.errors import ResponseFormatError, ValidationError, error_for_code

from ._models import Avatar, AvatarDetail, Credentials, Knowledge, Language, Page, Session, Voice

T = TypeVar("T")
M = TypeVar("M")

SUCCESS = 1000

#: Session duration used when the caller gives none (AKool's own default is undocumented; five minutes keeps an
#: experiment cheap, and closing early refunds the rest anyway).
DEFAULT_DURATION = 300
MAX_DURATION = 3600
STREAM_TYPES = ("agora", "livekit", "trtc", "websocket")
SCENE_MODES = ("fast_dialogue", "meeting")
FAST_DIALOGUE_VOICES = ("alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar")


class Retry(enum.Enum):
    """When an endpoint may be sent again after a failure."""

    #: Safe to repeat (reads, and close, which is idempotent): retried on connection errors, timeouts,
    #: HTTP 5xx/429 and the codes 1005/1215.
    SAFE = "safe"
    #: Has side effects (creating a session costs money): only retried when the request provably never left this
    #: machine (the TCP connection could not be opened).
    UNSENT_ONLY = "unsent_only"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """The fixed part of an endpoint: its name (used in errors and events), method, path and retry policy."""

    name: str
    method: str
    path: str
    retry: Retry = Retry.SAFE
    auth: bool = True


TOKEN = Endpoint("auth.token", "POST", "/api/open/v3/getToken", auth=False)
SESSIONS_CREATE = Endpoint("sessions.create", "POST", "/api/open/v4/liveAvatar/session/create", Retry.UNSENT_ONLY)
SESSIONS_GET = Endpoint("sessions.get", "GET", "/api/open/v4/liveAvatar/session/detail")
SESSIONS_CLOSE = Endpoint("sessions.close", "POST", "/api/open/v4/liveAvatar/session/close")
SESSIONS_LIST = Endpoint("sessions.list", "GET", "/api/open/v4/liveAvatar/session/list")
AVATARS_LIST = Endpoint("avatars.list", "GET", "/api/open/v4/liveAvatar/avatar/list")
AVATARS_GET = Endpoint("avatars.get", "GET", "/api/open/v4/liveAvatar/avatar/detail")
AVATARS_UPLOAD = Endpoint("avatars.upload", "POST", "/api/open/v3/avatar/create", Retry.UNSENT_ONLY)
VOICES_LIST = Endpoint("voices.list", "GET", "/api/open/v4/voice/list")
LANGUAGES_LIST = Endpoint("languages.list", "GET", "/api/open/v3/language/list")
KNOWLEDGE_LIST = Endpoint("knowledge.list", "GET", "/api/open/v4/knowledge/list")
KNOWLEDGE_GET = Endpoint("knowledge.get", "GET", "/api/open/v4/knowledge/detail")
KNOWLEDGE_CREATE = Endpoint("knowledge.create", "POST", "/api/open/v4/knowledge/create", Retry.UNSENT_ONLY)
# update and delete are idempotent in effect, but a repeated delete answers "not found"; keep them conservative.
KNOWLEDGE_UPDATE = Endpoint("knowledge.update", "POST", "/api/open/v4/knowledge/update", Retry.UNSENT_ONLY)
KNOWLEDGE_DELETE = Endpoint("knowledge.delete", "DELETE", "/api/open/v4/knowledge/delete", Retry.UNSENT_ONLY)

ENDPOINTS = (
    TOKEN,
    SESSIONS_CREATE,
    SESSIONS_GET,
    SESSIONS_CLOSE,
    SESSIONS_LIST,
    AVATARS_LIST,
    AVATARS_GET,
    AVATARS_UPLOAD,
    VOICES_LIST,
    LANGUAGES_LIST,
    KNOWLEDGE_LIST,
    KNOWLEDGE_GET,
    KNOWLEDGE_CREATE,
    KNOWLEDGE_UPDATE,
    KNOWLEDGE_DELETE,
)


class ShapeError(Exception):
    """A parser found a valid envelope whose ``data`` does not have the expected shape (private)."""


@dataclass(frozen=True, slots=True)
class Request(Generic[T]):
    """A fully validated request, ready to send, and the parser of its answer.

    Attributes:
        endpoint: the endpoint definition.
        parse: turns a successful envelope (``code == 1000``) into the result.
        params: query parameters.
        json: the JSON body.
        session_id: the session the request is about, for event records.
    """

    endpoint: Endpoint
    parse: Callable[[Mapping[str, Any]], T]
    params: dict[str, Any] | None = None
    json: dict[str, Any] | None = None
    session_id: str | None = field(default=None)


# --- the envelope ------------------------------------------------------------------------------------------------


def parse_body(endpoint: Endpoint, http_status: int, content: bytes) -> Mapping[str, Any]:
    """Decode the JSON envelope ``{"code", "msg", "data"}``; raise the typed error for any code other than 1000.

    A body that is not a JSON object with an integer ``code`` (HTML from a proxy, an empty body...) raises
    :class:`~akool_lab.errors.ResponseFormatError`. A non-2xx HTTP status without an envelope is reported the same way.
    """
    try:
        body = json.loads(content)  # the bytes as they came (UTF-8, the common case: no decoded copy)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting is not an envelope either
        text = content.decode("utf-8", "replace").strip()
        try:
            body = json.loads(text)  # a stray invalid byte inside a string is replaced, not fatal
        except (ValueError, RecursionError):
            if not text:
                raise ResponseFormatError(endpoint.name, http_status, "empty body") from None
            kind = "an HTML page" if text.startswith("<") else "not JSON"
            raise ResponseFormatError(endpoint.name, http_status, f"the body is {kind}: {text[:80]!r}") from None
    code = body.get("code") if isinstance(body, dict) else None
    if not isinstance(code, int) or isinstance(code, bool):
        raise ResponseFormatError(endpoint.name, http_status, "the JSON body has no integer 'code'")
    if code != SUCCESS:
        msg = body.get("msg")
        raise error_for_code(code, msg if isinstance(msg, str) else "", endpoint.name, http_status=http_status)
    if not 200 <= http_status < 300:
        raise ResponseFormatError(endpoint.name, http_status, "code 1000 with a non-2xx HTTP status")
    envelope: Mapping[str, Any] = body
    return envelope


def parse_response(request: Request[T], http_status: int, content: bytes) -> T:
    """Check the envelope and parse its payload with the request's parser."""
    body = parse_body(request.endpoint, http_status, content)
    try:
        return request.parse(body)
    except (ShapeError, KeyError, TypeError, ValueError) as exc:
        detail = str(exc) if isinstance(exc, ShapeError) else f"missing or malformed field {exc}"
        raise ResponseFormatError(request.endpoint.name, http_status, detail) from None


def _data(body: Mapping[str, Any]) -> Any:
    if "data" not in body:
        raise ShapeError("the envelope has no 'data'")
    return body["data"]


def _object(body: Mapping[str, Any]) -> Mapping[str, Any]:
    data = _data(body)
    if not isinstance(data, Mapping):
        raise ShapeError(f"'data' is a {type(data).__name__}, expected an object")
    return data


def _page(
    body: Mapping[str, Any], model: Callable[[Mapping[str, Any]], M], page: int, size: int, *list_keys: str
) -> Page[M]:
    """A page from ``data`` given as an array, or as an object holding the array under one of ``list_keys``."""
    data = _data(body)
    count: Any = None
    if isinstance(data, list):
        items = data
    elif isinstance(data, Mapping):
        found = next((data[k] for k in list_keys if isinstance(data.get(k), list)), None)
        if found is None:
            raise ShapeError(f"'data' has none of {', '.join(list_keys)}")
        items = found
        count = data.get("count")
    else:
        raise ShapeError(f"'data' is a {type(data).__name__}, expected a list or an object")
    parsed = tuple(model(item) for item in items if isinstance(item, Mapping))
    if not isinstance(count, int) or isinstance(count, bool):
        count = (page - 1) * size + len(parsed)
    return Page(items=parsed, count=count, page=page, size=size, raw=data)


def parse_token(body: Mapping[str, Any]) -> str:
    """The API token of a getToken answer: top-level ``token`` (AKool docs) or ``data.token`` (SDK sample)."""
    token = body.get("token")
    data = body.get("data")
    if not token and isinstance(data, Mapping):
        token = data.get("token")
    if not isinstance(token, str) or not token:
        raise ShapeError("no 'token' at top level or in 'data'")
    return token


def _nothing(body: Mapping[str, Any]) -> None:
    """For endpoints answered by the bare envelope (or one whose ``data`` we do not need)."""
    return None


# --- validation helpers ------------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def require_text(name: str, value: object) -> str:
    """``value`` must be a non-empty string."""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(name, f"must be a non-empty string, got {type(value).__name__}", allowed="non-empty str")
    return value


def _optional_text(name: str, value: object, max_len: int | None = None) -> str | None:
    if value is None:
        return None
    text = require_text(name, value)
    if max_len is not None and len(text) > max_len:
        raise ValidationError(name, f"is {len(text)} characters long", allowed=f"at most {max_len} characters")
    return text


def _int_in(name: str, value: object, low: int, high: int | None = None) -> int:
    allowed = f"{low}..{high}" if high is not None else f">= {low}"
    if not _is_int(value):
        raise ValidationError(name, f"must be a whole number, got {value!r}", allowed=allowed)
    assert isinstance(value, int)
    if value < low or (high is not None and value > high):
        raise ValidationError(name, f"is {value}", allowed=allowed)
    return value


def _choice(name: str, value: object, choices: Sequence[object]) -> Any:
    if value not in choices or isinstance(value, bool):
        raise ValidationError(name, f"is {value!r}", allowed=" | ".join(str(c) for c in choices))
    return value


def _number_in(name: str, value: object, low: float, high: float) -> float:
    if not _is_number(value):
        raise ValidationError(name, f"must be a number, got {type(value).__name__}", allowed=f"{low:g}..{high:g}")
    assert isinstance(value, (int, float))
    if not low <= value <= high:
        raise ValidationError(name, f"is {value!r}", allowed=f"{low:g}..{high:g}")
    return value


def _http_url(name: str, value: object) -> str:
    text = require_text(name, value)
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        # never echo the URL: it may carry a signed query string
        raise ValidationError(name, "is not an http(s) URL", allowed="http://... or https://...")
    return text


def _mapping(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValidationError(name, f"must be a dict, got {type(value).__name__}")
    return value


def _known_keys(name: str, value: Mapping[str, Any], allowed: Sequence[str]) -> None:
    unknown = sorted(str(k) for k in value if k not in allowed)
    if unknown:
        raise ValidationError(name, f"unknown key(s) {', '.join(unknown)}", allowed=", ".join(allowed))


def _page_args(page: object, size: object, max_size: int = 100) -> dict[str, Any]:
    return {"page": _int_in("page", page, 1), "size": _int_in("size", size, 1, max_size)}


def _drop_none(values: Mapping[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


# --- voice_params (AKOOL_API.md 3.1) -------------------------------------------------------------------------------

_VOICE_PARAMS_KEYS = ("speed", "pron_map", "stt_language", "stt_type", "turn_detection", "elevenlabs_settings")
_FAST_VOICE_PARAMS_KEYS = ("voice_id", "stt_language", "turn_detection", "elevenlabs_settings")
_TURN_KEYS = ("type", "threshold", "prefix_padding_ms", "silence_duration_ms")
_ELEVENLABS_KEYS = ("api_key", "model_id", "stability", "similarity_boost", "style", "use_speaker_boost")


def validate_voice_params(value: object, *, fast_dialogue: bool = False) -> dict[str, Any]:
    """Check ``voice_params`` against the OpenAPI schema (``VoiceParams``, or ``FastDialogueVoiceParams``).

    Error texts name fields and ranges only: the ElevenLabs ``api_key`` never appears in them.
    """
    params = _mapping("voice_params", value)
    _known_keys("voice_params", params, _FAST_VOICE_PARAMS_KEYS if fast_dialogue else _VOICE_PARAMS_KEYS)
    if "speed" in params:
        _number_in("voice_params.speed", params["speed"], 0.8, 1.2)
    if "pron_map" in params:
        pron = _mapping("voice_params.pron_map", params["pron_map"])
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in pron.items()):
            raise ValidationError("voice_params.pron_map", "must map words to pronunciation strings")
    if "stt_language" in params:
        require_text("voice_params.stt_language", params["stt_language"])
    if "stt_type" in params:
        _choice("voice_params.stt_type", params["stt_type"], ("openai_realtime",))
    if "voice_id" in params:
        _choice("voice_params.voice_id", params["voice_id"], FAST_DIALOGUE_VOICES)
    if "turn_detection" in params:
        turn = _mapping("voice_params.turn_detection", params["turn_detection"])
        _known_keys("voice_params.turn_detection", turn, _TURN_KEYS)
        if "type" in turn:
            _choice("voice_params.turn_detection.type", turn["type"], ("server_vad", "semantic_vad"))
        if "threshold" in turn:
            _number_in("voice_params.turn_detection.threshold", turn["threshold"], 0.0, 1.0)
        for key in ("prefix_padding_ms", "silence_duration_ms"):
            if key in turn:
                _int_in(f"voice_params.turn_detection.{key}", turn[key], 0, 60_000)
    if "elevenlabs_settings" in params:
        eleven = _mapping("voice_params.elevenlabs_settings", params["elevenlabs_settings"])
        _known_keys("voice_params.elevenlabs_settings", eleven, _ELEVENLABS_KEYS)
        for key in ("api_key", "model_id"):
            if key in eleven:
                require_text(f"voice_params.elevenlabs_settings.{key}", eleven[key])
        for key in ("stability", "similarity_boost", "style"):
            if key in eleven:
                _number_in(f"voice_params.elevenlabs_settings.{key}", eleven[key], 0.0, 1.0)
        if "use_speaker_boost" in eleven and not isinstance(eleven["use_speaker_boost"], bool):
            raise ValidationError("voice_params.elevenlabs_settings.use_speaker_boost", "must be True or False")
    try:
        copy: dict[str, Any] = json.loads(json.dumps(params))  # a plain deep copy; also proves it is JSON-safe
    except (TypeError, ValueError):
        raise ValidationError(
            "voice_params", "holds a value that is not JSON (str, number, bool, list, dict)"
        ) from None
    return copy


def credentials_body(value: object) -> dict[str, Any]:
    """The ``credentials`` of a bring-your-own-room request: a dict, or a :class:`Credentials` (its ``raw``)."""
    if isinstance(value, Credentials):
        if not value.raw:
            raise ValidationError("credentials", "has no fields (build it with the provider's key names)")
        return dict(value.raw)
    return dict(_mapping("credentials", value))


# --- request builders --------------------------------------------------------------------------------------------


def get_token(client_id: str, client_secret: str) -> Request[str]:
    """``POST /api/open/v3/getToken`` (no auth header); the result is the token."""
    return Request(TOKEN, parse_token, json={"clientId": client_id, "clientSecret": client_secret})


#: The fields of ``session/create`` besides ``avatar_id`` (the parameters of ``Sessions.create``).
SESSION_FIELDS = (
    "duration",
    "voice_id",
    "voice_url",
    "language",
    "mode_type",
    "background_url",
    "voice_params",
    "knowledge_id",
    "stream_type",
    "credentials",
    "scene_mode",
    "e2e_type",
)


#: How each optional scalar field of ``session/create`` is checked, in the order of the OpenAPI schema.
_SESSION_CHECKS: tuple[tuple[str, Callable[[str, object], Any]], ...] = (
    ("voice_id", _optional_text),
    ("voice_url", _http_url),
    ("language", _optional_text),
    ("mode_type", lambda name, value: _choice(name, value, (1, 2))),
    ("background_url", _http_url),
    ("knowledge_id", _optional_text),
    ("stream_type", lambda name, value: _choice(name, value, STREAM_TYPES)),
    ("scene_mode", lambda name, value: _choice(name, value, SCENE_MODES)),
)


def create_session(avatar_id: object, **fields: object) -> Request[Session]:
    """``POST /api/open/v4/liveAvatar/session/create``; ``fields`` are those of ``Sessions.create``."""
    _known_keys("sessions.create", fields, SESSION_FIELDS)
    scene_mode = fields.get("scene_mode")
    body: dict[str, Any] = {
        "avatar_id": require_text("avatar_id", avatar_id),
        "duration": _int_in("duration", fields.get("duration", DEFAULT_DURATION), 1, MAX_DURATION),
    }
    for name, check in _SESSION_CHECKS:  # None (not given) is left out of the body
        value = fields.get(name)
        if value is not None:
            body[name] = check(name, value)
    if fields.get("e2e_type") is not None:
        body["e2e_type"] = _choice("e2e_type", fields["e2e_type"], ("openai",))
        if scene_mode != "fast_dialogue":
            raise ValidationError("e2e_type", "only applies with scene_mode='fast_dialogue'")
    if fields.get("voice_params") is not None:
        body["voice_params"] = validate_voice_params(
            fields["voice_params"], fast_dialogue=scene_mode == "fast_dialogue"
        )
    if fields.get("credentials") is not None:
        body["credentials"] = credentials_body(fields["credentials"])
    return Request(SESSIONS_CREATE, lambda b: Session.from_json(_object(b)), json=_drop_none(body))


def get_session(session_id: object) -> Request[Session]:
    """``GET /api/open/v4/liveAvatar/session/detail?id=``."""
    sid = require_text("id", session_id)
    return Request(SESSIONS_GET, lambda b: Session.from_json(_object(b)), params={"id": sid}, session_id=sid)


def close_session(session_id: object) -> Request[None]:
    """``POST /api/open/v4/liveAvatar/session/close`` with ``{"id": ...}`` (the schema's and the demo's key).

    The answer may be the bare envelope or carry ``data`` (``{session_id, status, closed_at}``); both are accepted.
    """
    sid = require_text("id", session_id)
    return Request(SESSIONS_CLOSE, _nothing, json={"id": sid}, session_id=sid)


def list_sessions(page: object = 1, size: object = 100, status: object = None) -> Request[Page[Session]]:
    """``GET /api/open/v4/liveAvatar/session/list``."""
    params = _page_args(page, size)
    if status is not None:
        params["status"] = int(_choice("status", status, (1, 2, 3, 4)))
    return Request(
        SESSIONS_LIST, lambda b: _page(b, Session.from_json, params["page"], params["size"], "result"), params=params
    )


def list_avatars(page: object = 1, size: object = 100) -> Request[Page[Avatar]]:
    """``GET /api/open/v4/liveAvatar/avatar/list``."""
    params = _page_args(page, size)
    return Request(
        AVATARS_LIST, lambda b: _page(b, Avatar.from_json, params["page"], params["size"], "result"), params=params
    )


def get_avatar(avatar_id: object) -> Request[AvatarDetail]:
    """``GET /api/open/v4/liveAvatar/avatar/detail?avatar_id=``."""
    aid = require_text("avatar_id", avatar_id)
    return Request(AVATARS_GET, lambda b: AvatarDetail.from_json(_object(b)), params={"avatar_id": aid})


_ALNUM = re.compile(r"^[A-Za-z0-9]+$")


def upload_avatar(*, url: object, avatar_id: object, name: object, url_from: object = 1) -> Request[AvatarDetail]:
    """``POST /api/open/v3/avatar/create`` with ``type: 2`` (a streaming avatar)."""
    aid = require_text("avatar_id", avatar_id)
    if not _ALNUM.match(aid):
        raise ValidationError("avatar_id", "must contain letters and digits only", allowed="[A-Za-z0-9]+")
    body = {
        "url": _http_url("url", url),
        "avatar_id": aid,
        "name": require_text("name", name),
        "type": 2,
        "url_from": _choice("url_from", url_from, (1, 2)),
    }
    return Request(AVATARS_UPLOAD, lambda b: AvatarDetail.from_json(_object(b)), json=body)


def _csv(name: str, value: object) -> str | None:
    """A filter given as ``"A,B"`` or ``["A", "B"]``, sent as a comma list."""
    if value is None:
        return None
    if isinstance(value, str):
        return require_text(name, value)
    if isinstance(value, Sequence) and value and all(isinstance(v, str) and v for v in value):
        return ",".join(value)
    raise ValidationError(name, "must be a string or a list of strings")


def list_voices(
    *,
    type: object = 2,
    support_stream: object = None,
    page: object = 1,
    size: object = 10,
    style: object = None,
    gender: object = None,
    age: object = None,
    scenario: object = None,
    name: object = None,
) -> Request[Page[Voice]]:
    """``GET /api/open/v4/voice/list``; ``type`` 1 = your cloned voices, 2 = AKool's stock voices."""
    params: dict[str, Any] = {"type": _choice("type", type, (1, 2)), **_page_args(page, size)}
    if support_stream is not None:
        # a bool reads naturally (support_stream=True); the API wants 1 (streaming-capable) or 2 (not)
        if isinstance(support_stream, bool):
            support_stream = 1 if support_stream else 2
        params["support_stream"] = _choice("support_stream", support_stream, (1, 2))
    for key, value in (("style", style), ("gender", gender), ("age", age), ("scenario", scenario)):
        params[key] = _csv(key, value)
    params["name"] = _optional_text("name", name)
    params = _drop_none(params)
    return Request(
        VOICES_LIST, lambda b: _page(b, Voice.from_json, params["page"], params["size"], "result"), params=params
    )


def _languages(body: Mapping[str, Any]) -> list[Language]:
    data = _data(body)
    items = data.get("lang_list") if isinstance(data, Mapping) else data
    if not isinstance(items, list):
        raise ShapeError("'data' has no 'lang_list' array")
    return [Language.from_json(item) for item in items if isinstance(item, Mapping)]


def list_languages() -> Request[list[Language]]:
    """``GET /api/open/v3/language/list``."""
    return Request(LANGUAGES_LIST, _languages)


def list_knowledge(page: object = 1, size: object = 10, name: object = None) -> Request[Page[Knowledge]]:
    """``GET /api/open/v4/knowledge/list``; ``data`` may be an array or ``{knowledge_list: [...]}``."""
    params = _page_args(page, size)
    if name is not None:
        params["name"] = require_text("name", name)
    return Request(
        KNOWLEDGE_LIST,
        lambda b: _page(b, Knowledge.from_json, params["page"], params["size"], "knowledge_list", "result"),
        params=params,
    )


def get_knowledge(knowledge_id: object) -> Request[Knowledge]:
    """``GET /api/open/v4/knowledge/detail?id=``."""
    kid = require_text("id", knowledge_id)
    return Request(KNOWLEDGE_GET, lambda b: Knowledge.from_json(_object(b)), params={"id": kid})


def _knowledge_fields(name: object, prologue: object, prompt: object, docs: object, urls: object) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": _optional_text("name", name, 100),
        "prologue": _optional_text("prologue", prologue, 2000),
        "prompt": _optional_text("prompt", prompt, 10_000),
    }
    if docs is not None:
        if not isinstance(docs, Sequence) or isinstance(docs, str):
            raise ValidationError("docs", "must be a list of {'name', 'url', 'size'} dicts")
        checked = []
        for i, doc in enumerate(docs):
            item = dict(_mapping(f"docs[{i}]", doc))
            require_text(f"docs[{i}].name", item.get("name"))
            _http_url(f"docs[{i}].url", item.get("url"))
            if "size" in item:
                _int_in(f"docs[{i}].size", item["size"], 0)
            checked.append(item)
        body["docs"] = checked
    if urls is not None:
        if not isinstance(urls, Sequence) or isinstance(urls, str):
            raise ValidationError("urls", "must be a list of http(s) URLs")
        body["urls"] = [_http_url(f"urls[{i}]", u) for i, u in enumerate(urls)]
    return _drop_none(body)


def _knowledge_or_none(body: Mapping[str, Any]) -> Knowledge | None:
    data = body.get("data")
    return Knowledge.from_json(data) if isinstance(data, Mapping) and ("_id" in data or "id" in data) else None


def create_knowledge(
    *, name: object = None, prologue: object = None, prompt: object = None, docs: object = None, urls: object = None
) -> Request[Knowledge]:
    """``POST /api/open/v4/knowledge/create``."""
    body = _knowledge_fields(name, prologue, prompt, docs, urls)
    return Request(KNOWLEDGE_CREATE, lambda b: Knowledge.from_json(_object(b)), json=body)


def update_knowledge(
    id: object,
    *,
    name: object = None,
    prologue: object = None,
    prompt: object = None,
    docs: object = None,
    urls: object = None,
) -> Request[Knowledge | None]:
    """``POST /api/open/v4/knowledge/update`` with ``id`` and the fields to change."""
    body = {"id": require_text("id", id), **_knowledge_fields(name, prologue, prompt, docs, urls)}
    return Request(KNOWLEDGE_UPDATE, _knowledge_or_none, json=body)


def delete_knowledge(knowledge_id: object) -> Request[None]:
    """``DELETE /api/open/v4/knowledge/delete`` with the body ``{"id": ...}``."""
    return Request(KNOWLEDGE_DELETE, _nothing, json={"id": require_text("id", knowledge_id)})
