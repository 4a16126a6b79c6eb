"""The simulator's Starlette app: every route listed in :func:`routes`, one function per route.

REST routes follow AKool's paths, envelopes and codes (HTTP 200 with the business code in the body); the admin
routes of the simulator live under ``/_sim/`` and need the API key too.
"""

from __future__ import annotations

import asyncio
import functools
import hmac
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlparse

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket

from akool_lab.sim._catalogue import AVATARS, LANGUAGES, VOICES
from akool_lab.sim._dialects import DIALECTS, TRTC_DEMO_NAMES, Dialect, DialectError
from akool_lab.sim._faults import FaultPlan, FaultSpecError
from akool_lab.sim._latency import profile_named
from akool_lab.sim._state import NS_PER_MS, AvatarUpload, SessionRecord, SessionSettings, SimState, now_ns, percentiles
from akool_lab.sim._stream import CLOSE_AUTH, CLOSE_BUSY, CLOSE_GONE, StreamConnection
from akool_lab.sim.media._routes import webrtc_offer

__all__ = ["build_app", "routes"]

Handler = Callable[[Request, SimState], Awaitable[Response]]

#: When ``duration`` is omitted (undocumented on AKool; the official demo's proxy sends 600).
DEFAULT_DURATION_S = 600.0
STREAM_TYPES = ("agora", "livekit", "trtc", "websocket")
#: ``fast_dialogue`` is documented; ``meeting`` (audio in, lip-sync only) is what AKool's LiveKit plugin sends.
SCENE_MODES = ("fast_dialogue", "meeting")
_FAST_VOICES = {"alloy", "ash", "ballad", "coral", "echo", "sage", "shimmer", "verse", "marin", "cedar"}


class ApiError(Exception):
    """An AKool error answer: business ``code`` and ``msg`` (HTTP 200 unless ``http_status`` says otherwise)."""

    def __init__(self, code: int, msg: str, http_status: int = 200) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.http_status = http_status


def invalid(field: str, problem: str) -> ApiError:
    """A 1003 answer whose message names the field."""
    return ApiError(1003, f"{field}: {problem}")


def ok(data: Any = None, **top: Any) -> JSONResponse:
    """The success envelope (``data`` omitted when ``None``; extra top-level fields such as ``token``)."""
    body: dict[str, Any] = {"code": 1000, "msg": "OK", **top}
    if data is not None:
        body["data"] = data
    return JSONResponse(body)


def endpoint(name: str, *, auth: bool = True) -> Callable[[Handler], Callable[[Request], Awaitable[Response]]]:
    """Wrap a route: profile latency, authorization, injected faults (by endpoint ``name``), then the handler."""

    def wrap(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
        @functools.wraps(handler)
        async def route(request: Request) -> Response:
            state: SimState = request.app.state.sim
            try:
                delay_ms = state.profile.rest(state.rng("rest"))
                if auth:
                    authorize(request, state)
                for fault in state.faults.endpoints.get(name, ()):
                    if fault.slow_ms is not None and state.roll(f"{name}:slow", fault.rate):
                        delay_ms += fault.slow_ms
                if delay_ms > 0:
                    await asyncio.sleep(delay_ms / 1000)
                for fault in state.faults.endpoints.get(name, ()):
                    if fault.code is not None and state.roll(name, fault.rate):
                        if fault.is_http:
                            raise ApiError(fault.code, f"injected HTTP {fault.code}", http_status=fault.code)
                        raise ApiError(fault.code, f"injected fault {fault.code} on {name}")
                return await handler(request, state)
            except ApiError as exc:
                return JSONResponse({"code": exc.code, "msg": exc.msg}, status_code=exc.http_status)

        return route

    return wrap


def authorize(request: Request, state: SimState) -> None:
    """``Authorization: Bearer TOKEN`` (from getToken) wins over ``x-api-key``; missing -> 1102, wrong -> 1101."""
    header = request.headers.get("authorization")
    if header:
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token.strip() in state.tokens:
            return
        raise ApiError(1101, "Invalid authorization: the token is invalid or expired")
    key = request.headers.get("x-api-key")
    if not key:
        raise ApiError(1102, "Authorization is empty: send x-api-key or Authorization: Bearer <token>")
    if not hmac.compare_digest(key.encode(), state.api_key.encode()):
        raise ApiError(1101, "Invalid authorization: the API key was rejected")


async def json_object(request: Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object (1003 otherwise)."""
    try:
        body = await request.json()
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting; still the caller's fault
        raise invalid("body", "expected a JSON object") from None
    if not isinstance(body, dict):
        raise invalid("body", "expected a JSON object")
    return body


def query_int(request: Request, name: str, default: int | None, low: int = 1, high: int | None = None) -> int | None:
    """An integer query parameter within ``low..high`` (1003 naming it otherwise)."""
    text = request.query_params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text)
    except ValueError:
        raise invalid(name, f"expected a whole number, got {text!r}") from None
    if value < low or (high is not None and value > high):
        raise invalid(name, f"must be in {low}..{high}" if high is not None else f"must be >= {low}")
    return value


def page_of(items: list[Any], page: int, size: int) -> list[Any]:
    """One page of ``items``."""
    return items[(page - 1) * size : page * size]


def _string(body: dict[str, Any], key: str, *, required: bool = False, max_len: int | None = None) -> str | None:
    value = body.get(key)
    if value is None:
        if required:
            raise invalid(key, "is required")
        return None
    if not isinstance(value, str):
        raise invalid(key, "expected a string")
    if required and not value:
        raise invalid(key, "must not be empty")
    if max_len is not None and len(value) > max_len:
        raise invalid(key, f"at most {max_len} characters")
    return value


def _number(value: Any, field: str, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid(field, "expected a number")
    if not low <= value <= high:
        raise invalid(field, f"must be between {low:g} and {high:g}")
    return float(value)


# --- auth -------------------------------------------------------------------------------------------------


@endpoint("token", auth=False)
async def get_token(request: Request, state: SimState) -> Response:
    """POST /api/open/v3/getToken {clientId, clientSecret} -> top-level ``token`` (clientSecret = the API key)."""
    body = await json_object(request)
    secret = _string(body, "clientSecret", required=True)
    _string(body, "clientId")
    if not hmac.compare_digest((secret or "").encode(), state.api_key.encode()):
        raise ApiError(1101, "Invalid authorization: clientSecret was rejected")
    token = "sim." + secrets.token_urlsafe(32)
    state.tokens.add(token)
    return JSONResponse({"code": 1000, "msg": "OK", "token": token})


# --- sessions ---------------------------------------------------------------------------------------------


def _check_voice_params(value: Any, fast_dialogue: bool) -> None:
    if not isinstance(value, dict):
        raise invalid("voice_params", "expected an object")
    allowed = (
        {"voice_id", "stt_language", "turn_detection", "elevenlabs_settings"}
        if fast_dialogue
        else {"speed", "pron_map", "stt_language", "stt_type", "turn_detection", "elevenlabs_settings"}
    )
    for key, item in value.items():
        field = f"voice_params.{key}"
        if key not in allowed:
            raise invalid(field, "unknown key" + (" (scene_mode fast_dialogue)" if fast_dialogue else ""))
        if key == "speed":
            _number(item, field, 0.8, 1.2)
        elif key == "voice_id" and (not isinstance(item, str) or item not in _FAST_VOICES):
            raise invalid(field, f"must be one of {', '.join(sorted(_FAST_VOICES))}")
        elif key == "stt_language" and not isinstance(item, str):
            raise invalid(field, "expected a string")
        elif key == "stt_type" and item != "openai_realtime":
            raise invalid(field, "must be 'openai_realtime'")
        elif key == "pron_map" and (not isinstance(item, dict) or not all(isinstance(v, str) for v in item.values())):
            raise invalid(field, "expected an object of word -> pronunciation strings")
        elif key == "turn_detection":
            _check_turn_detection(item, field)
        elif key == "elevenlabs_settings":
            _check_elevenlabs(item, field)


def _check_turn_detection(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise invalid(field, "expected an object")
    if "type" in value and value["type"] not in ("server_vad", "semantic_vad"):
        raise invalid(f"{field}.type", "must be 'server_vad' or 'semantic_vad'")
    if "threshold" in value:
        _number(value["threshold"], f"{field}.threshold", 0, 1)
    for key in ("prefix_padding_ms", "silence_duration_ms"):
        if key in value and (isinstance(value[key], bool) or not isinstance(value[key], int)):
            raise invalid(f"{field}.{key}", "expected a whole number")


def _check_elevenlabs(value: Any, field: str) -> None:
    if not isinstance(value, dict):
        raise invalid(field, "expected an object")
    for key in ("api_key", "model_id"):
        if key in value and not isinstance(value[key], str):
            raise invalid(f"{field}.{key}", "expected a string")
    for key in ("stability", "similarity_boost", "style"):
        if key in value:
            _number(value[key], f"{field}.{key}", 0, 1)
    if "use_speaker_boost" in value and not isinstance(value["use_speaker_boost"], bool):
        raise invalid(f"{field}.use_speaker_boost", "expected true or false")


#: Request ``credentials`` fields the simulator checks (any other key is accepted and ignored, as AKool's docs allow
#: extra fields): the providers' room fields under every name AKool's sources use, and the LiveKit plugin's own.
_CREDENTIAL_TYPES: dict[str, tuple[type, ...]] = {
    "agora_uid": (int, str),
    "agora_app_id": (str,),
    "agora_channel": (str,),
    "agora_token": (str,),
    "livekit_url": (str,),
    "livekit_token": (str,),
    "livekit_room_name": (str,),
    "livekit_client_identity": (str,),
    "livekit_server_identity": (str,),
    "trtc_sdk_app_id": (int, str),
    "trtc_sdk_room_id": (int, str),
    "trtc_sdk_user_id": (str,),
    "trtc_sdk_user_sig": (str,),
    "trtc_app_id": (int, str),
    "trtc_room_id": (int, str),
    "trtc_user_id": (str,),
    "trtc_user_sig": (str,),
    "audio_input_source": (str,),
    "audio_publisher_identity": (str,),
    "audio_only_from_data_stream": (bool,),
}
_AUDIO_INPUT_SOURCES = ("data_stream", "audio_track")
_TRTC_SDK_NAMES = {demo: sdk for sdk, demo in TRTC_DEMO_NAMES.items()}


def _check_request_credentials(value: Any) -> dict[str, Any]:
    """The request's ``credentials`` object ({} when absent), its known fields type-checked (1003 naming one)."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise invalid("credentials", "expected an object")
    for key, item in value.items():
        types = _CREDENTIAL_TYPES.get(key)
        if types is None or item is None:
            continue
        if (isinstance(item, bool) and bool not in types) or not isinstance(item, types):
            names = " or ".join(
                {"int": "a number", "str": "a string", "bool": "true or false"}[t.__name__] for t in types
            )
            raise invalid(f"credentials.{key}", f"expected {names}")
    source = value.get("audio_input_source")
    if source is not None and source not in _AUDIO_INPUT_SOURCES:
        raise invalid("credentials.audio_input_source", f"must be one of {', '.join(_AUDIO_INPUT_SOURCES)}")
    return {k: v for k, v in value.items() if v is not None}


def _find_avatar(state: SimState, avatar_id: str) -> dict[str, Any] | None:
    for avatar in AVATARS:
        if avatar["avatar_id"] == avatar_id:
            return avatar
    upload = state.uploads.get(avatar_id)
    return upload.public() if upload is not None else None


def _credentials(state: SimState, session_id: str, stream_type: str, ws_token: str, base: str) -> dict[str, Any]:
    """Fake credentials shaped like the requested provider's, plus the simulator's ``ws_url`` and ``ws_token``."""
    rng = state.rng("credentials")
    fake = secrets.token_hex(16)
    creds: dict[str, Any] = {}
    if stream_type == "agora":
        creds = {
            "agora_uid": rng.randint(100_000, 999_999),
            "agora_app_id": "sim" + secrets.token_hex(14),
            "agora_channel": f"sim-{session_id}",
            "agora_token": "sim-agora-" + fake,
        }
    elif stream_type == "livekit":
        creds = {
            "livekit_url": "wss://livekit.sim.akool.invalid",
            "livekit_token": "sim-livekit-" + fake,
            "livekit_room_name": f"sim-{session_id}",
            "livekit_client_identity": f"client-{session_id[-6:]}",
            "livekit_server_identity": f"akool-avatar-{session_id[-6:]}",
        }
    elif stream_type == "trtc":
        creds = {
            "trtc_sdk_app_id": rng.randint(1_400_000_000, 1_499_999_999),
            "trtc_sdk_room_id": f"sim-{session_id}",
            "trtc_sdk_user_id": f"client-{session_id[-6:]}",
            "trtc_sdk_user_sig": "sim-trtc-" + fake,
        }
    creds["ws_url"] = f"{base}/_sim/stream/{session_id}?token={ws_token}"
    creds["ws_token"] = ws_token
    return creds


def _ws_base(request: Request, state: SimState) -> str:
    """``ws://host:port`` of this server: from ``base_url`` when given, else from the request's Host header."""
    if state.base_url:
        parsed = urlparse(state.base_url)
        scheme, host = parsed.scheme, parsed.netloc
    else:
        scheme, host = request.url.scheme, request.headers.get("host") or request.url.netloc
    return ("wss" if scheme in ("https", "wss") else "ws") + "://" + host


@endpoint("session.create")
async def session_create(request: Request, state: SimState) -> Response:
    """POST /api/open/v4/liveAvatar/session/create: validate, charge the ledger, return ``SessionResponse``."""
    body = await json_object(request)
    avatar_id = _string(body, "avatar_id", required=True)
    assert avatar_id is not None
    avatar = _find_avatar(state, avatar_id)
    if avatar is None:
        raise invalid("avatar_id", f"unknown avatar {avatar_id!r}; see /api/open/v4/liveAvatar/avatar/list")
    if "status" in avatar and avatar["status"] != 3:
        raise invalid("avatar_id", f"avatar {avatar_id!r} is not ready (status {avatar['status']}); wait for 3")
    duration = body.get("duration", DEFAULT_DURATION_S)
    duration = _number(duration, "duration", 1, 3600)
    mode = body.get("mode_type", 2)
    if isinstance(mode, bool) or mode not in (1, 2):
        raise invalid("mode_type", "must be 1 (retelling) or 2 (dialogue)")
    stream_type = body.get("stream_type", "agora")
    if stream_type not in STREAM_TYPES:
        raise invalid("stream_type", f"must be one of {', '.join(STREAM_TYPES)}")
    scene_mode = body.get("scene_mode")
    if scene_mode is not None and scene_mode not in SCENE_MODES:
        raise invalid("scene_mode", f"must be one of {', '.join(SCENE_MODES)}")
    if body.get("e2e_type") is not None and body["e2e_type"] != "openai":
        raise invalid("e2e_type", "must be 'openai'")
    if "voice_params" in body:
        _check_voice_params(body["voice_params"], scene_mode == "fast_dialogue")
    voice_id = _string(body, "voice_id")
    for voice in VOICES:
        if voice["voice_id"] == voice_id and not voice["support_stream"]:
            raise invalid("voice_id", f"voice {voice_id!r} ({voice['voice_model_name']}) cannot stream")
    knowledge_id = _string(body, "knowledge_id")
    if knowledge_id and knowledge_id not in state.knowledge:
        raise invalid("knowledge_id", f"unknown knowledge base {knowledge_id!r}")
    language = _string(body, "language")
    background_url = _string(body, "background_url")
    voice_url = _string(body, "voice_url")
    byo = _check_request_credentials(body.get("credentials"))
    if avatar.get("available") is False:
        raise ApiError(1215, f"liveAvatar processing busy: avatar {avatar_id!r} is not available; pick another")

    index = state.session_index()
    rng = state.rng(f"session:{index}")
    session_id = state.new_object_id()
    created = now_ns()
    queue_ms = state.profile.queue(rng)
    ws_token = secrets.token_urlsafe(24)
    credentials = _credentials(state, session_id, stream_type, ws_token, _ws_base(request, state))
    # "Bring your own room": the avatar joins the room given in the request, so echo the provider's fields (the
    # TRTC ones under either name AKool's sources use). Fields that only steer the avatar (the LiveKit plugin's
    # audio source) are accepted and not echoed.
    for key, value in byo.items():
        key = _TRTC_SDK_NAMES.get(key, key)
        if key in credentials and key not in ("ws_url", "ws_token"):
            credentials[key] = value
    vp = body.get("voice_params") if isinstance(body.get("voice_params"), dict) else {}
    session = SessionRecord(
        id=session_id,
        index=index,
        avatar_id=avatar_id,
        stream_type=stream_type,
        duration_s=duration,
        created_ns=created,
        live_ns=created + int(queue_ms * NS_PER_MS),
        fails=state.roll("session.fail", state.faults.session_fail),
        credentials=credentials,
        ws_token=ws_token,
        settings=SessionSettings(
            mode=mode,
            lang=language,
            voice_id=voice_id,
            voice_url=voice_url,
            background_url=background_url,
            speed=float((vp or {}).get("speed", 1.0)),
        ),
        knowledge_id=knowledge_id or None,
        rng=rng,
        dialect=state.dialect,
        scene_mode=scene_mode,
        planned_queue_ms=round(queue_ms, 3),
        charged=round(duration / 60.0, 4),
    )
    state.sessions[session_id] = session
    return ok(session.public())


def _session_arg(state: SimState, value: Any, field: str) -> SessionRecord:
    if not isinstance(value, str) or not value:
        raise invalid(field, "is required")
    session = state.sessions.get(value)
    if session is None:
        raise ApiError(1216, f"liveAvatar session does not exist: {value}")
    return session


@endpoint("session.detail")
async def session_detail(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/liveAvatar/session/detail?id=ID."""
    session = _session_arg(state, request.query_params.get("id"), "id")
    return ok(session.public())


@endpoint("session.close")
async def session_close(request: Request, state: SimState) -> Response:
    """POST /api/open/v4/liveAvatar/session/close {"id"} (or {"session_id"}): end, refund, close the stream."""
    body = await json_object(request)
    key = "id" if "id" in body else "session_id"
    session = _session_arg(state, body.get(key), "id")
    if session.status() in (3, 4):
        raise ApiError(1219, f"liveAvatar closed: session {session.id} has already ended")
    session.closed_ns = now_ns()
    if session.connection is not None:
        session.connection.end("closed")
    closed_at = int(time.time() * 1000)
    return ok({"session_id": session.id, "status": "closed", "closed_at": closed_at})


@endpoint("session.list")
async def session_list(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/liveAvatar/session/list?page&size&status (newest first)."""
    page = query_int(request, "page", 1) or 1
    size = query_int(request, "size", 100) or 100
    status = query_int(request, "status", None, 1, 4)
    items = [s.public() for s in reversed(state.sessions.values())]
    if status is not None:
        items = [s for s in items if s["status"] == status]
    return ok({"count": len(items), "result": page_of(items, page, size)})


# --- avatars ----------------------------------------------------------------------------------------------


@endpoint("avatar.list")
async def avatar_list(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/liveAvatar/avatar/list?platform&page&size (official avatars, then uploads)."""
    platform = request.query_params.get("platform", "open")
    if platform not in ("open", "aigc"):
        raise invalid("platform", "must be 'open' or 'aigc'")
    page = query_int(request, "page", 1) or 1
    size = query_int(request, "size", 100, 1, 100) or 100
    items = [dict(a) for a in AVATARS] + [u.public() for u in state.uploads.values()] if platform == "open" else []
    return ok({"count": len(items), "result": page_of(items, page, size)})


@endpoint("avatar.detail")
async def avatar_detail(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/liveAvatar/avatar/detail?avatar_id=ID."""
    avatar_id = request.query_params.get("avatar_id")
    if not avatar_id:
        raise invalid("avatar_id", "is required")
    avatar = _find_avatar(state, avatar_id)
    if avatar is None:
        raise invalid("avatar_id", f"unknown avatar {avatar_id!r}")
    return ok({**avatar, "platform": "open"})


@endpoint("avatar.create")
async def avatar_create(request: Request, state: SimState) -> Response:
    """POST /api/open/v3/avatar/create: an upload that is ready (status 3) after the profile's processing time."""
    body = await json_object(request)
    url = _string(body, "url", required=True)
    avatar_id = _string(body, "avatar_id", required=True)
    name = _string(body, "name", required=True)
    assert url is not None and avatar_id is not None and name is not None
    if not re.fullmatch(r"[a-zA-Z0-9]+", avatar_id):
        raise invalid("avatar_id", "letters and digits only")
    if body.get("type") != 2 or isinstance(body.get("type"), bool):
        raise invalid("type", "must be 2 (streaming avatar)")
    if body.get("url_from") not in (1, 2) or isinstance(body.get("url_from"), bool):
        raise invalid("url_from", "must be 1 (direct link) or 2 (YouTube/TikTok/X/Google Drive)")
    if avatar_id in state.uploads or any(a["avatar_id"] == avatar_id for a in AVATARS):
        raise ApiError(1222, f"resource already exists: avatar {avatar_id!r}")
    record = {
        "_id": state.new_object_id(),
        "uid": 1,
        "type": 2,
        "from": 3,
        "sort": len(state.uploads) + 1,
        "create_time": int(time.time() * 1000),
        "name": name,
        "avatar_id": avatar_id,
        "voice_id": VOICES[0]["voice_id"],
        "url": url,
        "modify_url": url,
        "gender": "",
        "thumbnailUrl": f"https://sim.akool.invalid/avatars/{avatar_id}.png",
        "crop_arr": [],
        "disabled": False,
    }
    upload = AvatarUpload(record, now_ns(), state.profile.avatar_processing_ms, "fail" in urlparse(url).path)
    state.uploads[avatar_id] = upload
    return ok(upload.public())


# --- voices, languages ------------------------------------------------------------------------------------


@endpoint("voice.list")
async def voice_list(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/voice/list?type=1|2&support_stream=1|2&name&gender&page&size."""
    voice_type = query_int(request, "type", None, 1, 2)
    if voice_type is None:
        raise invalid("type", "is required: 1 (cloned voices) or 2 (stock voices)")
    page = query_int(request, "page", 1) or 1
    size = query_int(request, "size", 10, 1, 100) or 10
    stream = query_int(request, "support_stream", None, 1, 2)
    name = (request.query_params.get("name") or "").lower()
    genders = {g.strip().lower() for g in (request.query_params.get("gender") or "").split(",") if g.strip()}
    items = [
        v
        for v in VOICES
        if v["type"] == voice_type
        and (stream is None or v["support_stream"] == (stream == 1))
        and name in v["name"].lower()
        and (not genders or v["gender"].lower() in genders)
    ]
    result = [{k: v for k, v in voice.items() if k != "type"} for voice in page_of(items, page, size)]
    return ok({"result": result, "count": len(items), "page": page, "size": size})


@endpoint("language.list")
async def language_list(request: Request, state: SimState) -> Response:
    """GET /api/open/v3/language/list -> ``data.lang_list`` of locale codes."""
    return ok({"lang_list": [dict(lang) for lang in LANGUAGES]})


# --- knowledge base ---------------------------------------------------------------------------------------


def _knowledge_fields(body: dict[str, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for key, limit in (("name", 100), ("prologue", 2000), ("prompt", 10_000)):
        value = _string(body, key, max_len=limit)
        if value is not None:
            fields[key] = value
    if "docs" in body:
        docs = body["docs"]
        if not isinstance(docs, list) or not all(
            isinstance(d, dict) and isinstance(d.get("name"), str) and isinstance(d.get("url"), str) for d in docs
        ):
            raise invalid("docs", "expected a list of {name, url, size}")
        fields["docs"] = docs
    if "urls" in body:
        urls = body["urls"]
        if not isinstance(urls, list) or not all(isinstance(u, str) for u in urls):
            raise invalid("urls", "expected a list of strings")
        fields["urls"] = urls
    return fields


def _knowledge(state: SimState, value: Any) -> dict[str, Any]:
    if not isinstance(value, str) or not value:
        raise invalid("id", "is required")
    record = state.knowledge.get(value)
    if record is None:
        raise ApiError(1232, f"knowledge base not found: {value}")
    return record


def _unique_name(state: SimState, name: str | None, own_id: str | None = None) -> None:
    if name and any(k["name"] == name and k["_id"] != own_id for k in state.knowledge.values()):
        raise ApiError(1233, f"knowledge base already exists: {name!r}")


@endpoint("knowledge.list")
async def knowledge_list(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/knowledge/list?page&size&name -> ``data.knowledge_list`` (the official demo's shape)."""
    page = query_int(request, "page", 1) or 1
    size = query_int(request, "size", 10, 1, 100) or 10
    name = (request.query_params.get("name") or "").lower()
    items = [k for k in state.knowledge.values() if name in k["name"].lower()]
    return ok({"knowledge_list": page_of(items, page, size), "count": len(items), "page": page, "size": size})


@endpoint("knowledge.create")
async def knowledge_create(request: Request, state: SimState) -> Response:
    """POST /api/open/v4/knowledge/create {name, prologue, prompt, docs, urls}."""
    fields = _knowledge_fields(await json_object(request))
    _unique_name(state, fields.get("name"))
    now_ms = int(time.time() * 1000)
    record: dict[str, Any] = {
        "_id": state.new_object_id(),
        "uid": 1,
        "from": 2,
        "name": "",
        "prologue": "",
        "prompt": "",
        "docs": [],
        "urls": [],
        "create_time": now_ms,
        "update_time": now_ms,
        **fields,
    }
    state.knowledge[record["_id"]] = record
    return ok(record)


@endpoint("knowledge.detail")
async def knowledge_detail(request: Request, state: SimState) -> Response:
    """GET /api/open/v4/knowledge/detail?id=ID."""
    return ok(_knowledge(state, request.query_params.get("id")))


@endpoint("knowledge.update")
async def knowledge_update(request: Request, state: SimState) -> Response:
    """POST /api/open/v4/knowledge/update {id, ...fields}."""
    body = await json_object(request)
    record = _knowledge(state, body.get("id"))
    fields = _knowledge_fields(body)
    _unique_name(state, fields.get("name"), record["_id"])
    record.update(fields, update_time=int(time.time() * 1000))
    return ok(record)


@endpoint("knowledge.delete")
async def knowledge_delete(request: Request, state: SimState) -> Response:
    """DELETE /api/open/v4/knowledge/delete {id} (``?id=`` also accepted)."""
    body = await json_object(request) if await request.body() else {}
    record = _knowledge(state, body.get("id", request.query_params.get("id")))
    del state.knowledge[record["_id"]]
    return ok()


# --- the simulator's own routes (/_sim/) ------------------------------------------------------------------


def _admin_session(state: SimState, value: Any) -> SessionRecord:
    return _session_arg(state, value, "session_id")


@endpoint("_sim.truth")
async def sim_truth(request: Request, state: SimState) -> Response:
    """GET /_sim/truth?session_id=ID: the delays the simulator injected and measured, per question mid."""
    session = _admin_session(state, request.query_params.get("session_id"))
    return ok(
        {
            "session_id": session.id,
            "status": session.status(),
            "profile": state.profile.name,
            "seed": state.seed,
            "stream_type": session.stream_type,
            "dialect": session.dialect.spec,
            "scene_mode": session.scene_mode,
            "budget": session.limits.to_json(),
            "planned_queue_ms": session.planned_queue_ms,
            "fails": session.fails,
            "connected": session.connection is not None,
            "settings": session.settings.to_json(),
            "knowledge_id": session.knowledge_id,
            "messages": session.truth_messages,
            "commands": session.truth_commands,
            "events": session.truth_events,
            "sched_error_ms": percentiles(session.sched_errors_ms),
        }
    )


@endpoint("_sim.ledger")
async def sim_ledger(request: Request, state: SimState) -> Response:
    """GET /_sim/ledger: credits charged at create and refunded at close, per session and in total."""
    return ok(state.ledger())


@endpoint("_sim.stats")
async def sim_stats(request: Request, state: SimState) -> Response:
    """GET /_sim/stats: how precisely frames were emitted (actual minus planned send time, ms)."""
    sessions = list(state.sessions.values())
    return ok(
        {
            "emits": state.emits,
            "sched_error_ms": percentiles(state.sched_errors_ms),
            "sessions": {
                "total": len(sessions),
                "live": sum(1 for s in sessions if s.status() == 2),
                "connected": sum(1 for s in sessions if s.connection is not None),
            },
        }
    )


@endpoint("_sim.stats.reset")
async def sim_stats_reset(request: Request, state: SimState) -> Response:
    """POST /_sim/stats/reset: forget the scheduling errors measured so far (per-step benchmarks)."""
    state.sched_errors_ms.clear()
    state.emits = 0
    return ok({})


@endpoint("_sim.faults")
async def sim_faults(request: Request, state: SimState) -> Response:
    """GET /_sim/faults: the plan in force; POST /_sim/faults {"spec": ...} or {TARGET: VALUE}: replace it."""
    if request.method == "POST":
        try:
            plan = FaultPlan.from_json(await json_object(request))
        except FaultSpecError as exc:
            raise ApiError(1003, str(exc)) from None
        state.set_faults(plan)
    return ok(state.faults.to_json())


def _dialect_arg(body: dict[str, Any]) -> Dialect:
    value = body.get("dialect")
    if value is None:
        raise invalid("dialect", f"is required: a name or comma-separated names among {', '.join(DIALECTS)}")
    if not isinstance(value, (str, list)) or (isinstance(value, list) and not all(isinstance(v, str) for v in value)):
        raise invalid("dialect", "expected a string (names separated by commas) or a list of strings")
    try:
        return Dialect.parse(value)
    except DialectError as exc:
        raise ApiError(1003, str(exc)) from None


@endpoint("_sim.dialect")
async def sim_dialect(request: Request, state: SimState) -> Response:
    """GET /_sim/dialect: the dialect of sessions created from now on; POST {"dialect": "no-idx,ack-cmd"}: set it.

    Sessions that exist keep theirs (see ``/_sim/sessions/{id}/dialect``). Names: :mod:`akool_lab.sim._dialects`.
    """
    if request.method == "POST":
        state.dialect = _dialect_arg(await json_object(request))
    return ok({"dialect": state.dialect.spec, "allowed": list(DIALECTS)})


@endpoint("_sim.session_dialect")
async def sim_session_dialect(request: Request, state: SimState) -> Response:
    """GET /_sim/sessions/{id}/dialect: the session's dialect; POST {"dialect": ...}: change it from now on.

    A change applies to what the avatar plans from then on (the next reply or ack; a reply being spoken keeps its
    shape) and to the credentials that session/detail shows; ``greeting`` applies to the next client that joins.
    """
    session = _admin_session(state, request.path_params["session_id"])
    if request.method == "POST":
        session.dialect = _dialect_arg(await json_object(request))
    return ok({"session_id": session.id, "dialect": session.dialect.spec, "allowed": list(DIALECTS)})


@endpoint("_sim.user_speech")
async def sim_user_speech(request: Request, state: SimState) -> Response:
    """POST /_sim/sessions/{id}/user-speech {"text"}: the avatar hears the user (and answers in mode 2)."""
    session = _admin_session(state, request.path_params["session_id"])
    text = _string(await json_object(request), "text", required=True)
    assert text is not None
    if session.status() in (3, 4):
        raise ApiError(1219, f"liveAvatar closed: session {session.id} has ended")
    if session.connection is None:
        raise invalid("session_id", "no stream client is connected to this session")
    return ok({"mid": session.connection.user_speech(text)})


async def sim_stream(websocket: WebSocket) -> None:
    """WS /_sim/stream/{session_id}?token=WS_TOKEN: the session's data channel (one client at a time).

    Refusals are sent as close codes right after the handshake, so clients can tell them apart:
    4001 wrong token, 4003 another client is connected, 4004 unknown, ended or failed session.
    """
    state: SimState = websocket.app.state.sim
    session = state.sessions.get(websocket.path_params["session_id"])
    token = websocket.query_params.get("token", "")
    await websocket.accept()
    if session is None or session.status() in (3, 4):
        await websocket.close(CLOSE_GONE, "unknown or ended session")
        return
    if not hmac.compare_digest(token.encode(), session.ws_token.encode()):
        await websocket.close(CLOSE_AUTH, "invalid token")
        return
    if session.connection is not None:
        await websocket.close(CLOSE_BUSY, "another client is connected to this session")
        return
    connection = StreamConnection(state, session, websocket)
    session.connection = connection
    await connection.run()


def routes() -> list[BaseRoute]:
    """Every route of the simulator, in one place."""
    v3, v4 = "/api/open/v3", "/api/open/v4"
    return [
        Route(f"{v3}/getToken", get_token, methods=["POST"]),
        Route(f"{v4}/liveAvatar/session/create", session_create, methods=["POST"]),
        Route(f"{v4}/liveAvatar/session/detail", session_detail, methods=["GET"]),
        Route(f"{v4}/liveAvatar/session/close", session_close, methods=["POST"]),
        Route(f"{v4}/liveAvatar/session/list", session_list, methods=["GET"]),
        Route(f"{v4}/liveAvatar/avatar/list", avatar_list, methods=["GET"]),
        Route(f"{v4}/liveAvatar/avatar/detail", avatar_detail, methods=["GET"]),
        Route(f"{v3}/avatar/create", avatar_create, methods=["POST"]),
        Route(f"{v4}/voice/list", voice_list, methods=["GET"]),
        Route(f"{v3}/language/list", language_list, methods=["GET"]),
        Route(f"{v4}/knowledge/list", knowledge_list, methods=["GET"]),
        Route(f"{v4}/knowledge/create", knowledge_create, methods=["POST"]),
        Route(f"{v4}/knowledge/detail", knowledge_detail, methods=["GET"]),
        Route(f"{v4}/knowledge/update", knowledge_update, methods=["POST"]),
        Route(f"{v4}/knowledge/delete", knowledge_delete, methods=["DELETE"]),
        Route("/_sim/truth", sim_truth, methods=["GET"]),
        Route("/_sim/ledger", sim_ledger, methods=["GET"]),
        Route("/_sim/stats", sim_stats, methods=["GET"]),
        Route("/_sim/stats/reset", sim_stats_reset, methods=["POST"]),
        Route("/_sim/faults", sim_faults, methods=["GET", "POST"]),
        Route("/_sim/sessions/{session_id}/user-speech", sim_user_speech, methods=["POST"]),
        Route("/_sim/dialect", sim_dialect, methods=["GET", "POST"]),
        Route("/_sim/sessions/{session_id}/dialect", sim_session_dialect, methods=["GET", "POST"]),
        WebSocketRoute("/_sim/stream/{session_id}", sim_stream),
        Route("/_sim/sessions/{session_id}/webrtc/offer", webrtc_offer, methods=["POST", "OPTIONS"]),
    ]


def build_app(
    *,
    api_key: str,
    seed: int = 0,
    profile: str = "fast",
    faults: str | FaultPlan | None = None,
    base_url: str | None = None,
    dialect: str | Dialect | None = None,
) -> Starlette:
    """A new simulator app with its own state (see :func:`akool_lab.sim.app`)."""
    if not api_key:
        raise ValueError("api_key: the simulator needs a non-empty API key")
    plan = faults if isinstance(faults, FaultPlan) else FaultPlan.parse(faults)
    application = Starlette(routes=routes())
    application.state.sim = SimState(
        api_key=api_key,
        seed=seed,
        profile=profile_named(profile),
        faults=plan,
        base_url=base_url,
        dialect=Dialect.parse(dialect),
    )
    return application
