"""Typed results of the REST API: frozen value objects built from the service's JSON.

Parsing is liberal (every variant listed in AKOOL_API.md section 11 is accepted) and nothing is lost: every model
keeps the JSON object it was built from in ``raw``. ``raw`` is left out of ``repr`` because it may hold secrets, and
every field that is a secret (RTC tokens, the simulator's ``ws_url``/``ws_token``) shows at most its last four
characters in ``repr``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Generic, TypeVar

from akool_lab.redaction import redact

__all__ = [
    "AgoraCredentials",
    "Avatar",
    "AvatarDetail",
    "AvatarStatus",
    "Credentials",
    "Knowledge",
    "Language",
    "LiveKitCredentials",
    "Page",
    "Session",
    "SessionStatus",
    "TrtcCredentials",
    "Voice",
]

T = TypeVar("T")


class _LenientIntEnum(IntEnum):
    """An IntEnum that turns an unknown value into a pseudo-member instead of failing (liberal parsing)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


class SessionStatus(_LenientIntEnum):
    """The status of a streaming session (AKool's generic task status).

    ``LIVE`` is what AKool calls "processing": the avatar is in the room and answers (AKOOL_API.md 12.2).
    ``PROCESSING`` is an alias of it.
    """

    QUEUEING = 1
    LIVE = 2
    PROCESSING = 2
    COMPLETED = 3
    FAILED = 4

    @property
    def is_open(self) -> bool:
        """True while the session may cost credits (queueing or live)."""
        return self in (SessionStatus.QUEUEING, SessionStatus.LIVE)


class AvatarStatus(_LenientIntEnum):
    """The processing status of an uploaded avatar: usable in ``sessions.create`` once ``READY``."""

    QUEUEING = 1
    PROCESSING = 2
    READY = 3
    FAILED = 4


def _secret_repr(value: str | None) -> str:
    return "None" if value is None else repr(redact(value))


# --- credentials -------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class Credentials:
    """What a client needs to join the session's media room; the base of the provider-specific classes.

    Used as-is for the simulator's ``"websocket"`` stream type and for a provider this library does not know.

    Attributes:
        provider: the stream type (``"agora"``, ``"livekit"``, ``"trtc"``, ``"websocket"``, ...).
        ws_url: simulator extension: the WebSocket URL carrying the data channel (it embeds a token: secret).
        ws_token: simulator extension: the token of that WebSocket (secret).
        raw: the ``credentials`` object as received, with every field.
    """

    provider: str
    ws_url: str | None = None
    ws_token: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False)

    def _fields_repr(self) -> list[str]:
        return []

    def __repr__(self) -> str:
        parts = [f"provider={self.provider!r}", *self._fields_repr()]
        if self.ws_url is not None:
            parts.append(f"ws_url={_secret_repr(self.ws_url)}")
        if self.ws_token is not None:
            parts.append(f"ws_token={_secret_repr(self.ws_token)}")
        return f"{type(self).__name__}({', '.join(parts)})"


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class AgoraCredentials(Credentials):
    """Agora RTC credentials: ``join(app_id, channel, token, uid)``.

    Attributes:
        uid: ``agora_uid``, the numeric user id to join with.
        app_id: ``agora_app_id``.
        channel: ``agora_channel``.
        token: ``agora_token``, the RTC token (secret; docs once said it is valid for 5 minutes: join promptly).
    """

    uid: int | None = None
    app_id: str | None = None
    channel: str | None = None
    token: str | None = None

    def _fields_repr(self) -> list[str]:
        return [
            f"uid={self.uid!r}",
            f"app_id={self.app_id!r}",
            f"channel={self.channel!r}",
            f"token={_secret_repr(self.token)}",
        ]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class LiveKitCredentials(Credentials):
    """LiveKit credentials: ``Room().connect(url, token)``.

    Attributes:
        url: ``livekit_url``, the server URL.
        token: ``livekit_token``, the access token (secret).
        room_name: ``livekit_room_name``.
        client_identity: ``livekit_client_identity``, our participant's identity.
        server_identity: ``livekit_server_identity``, the avatar participant's identity.
    """

    url: str | None = None
    token: str | None = None
    room_name: str | None = None
    client_identity: str | None = None
    server_identity: str | None = None

    def _fields_repr(self) -> list[str]:
        return [
            f"url={self.url!r}",
            f"token={_secret_repr(self.token)}",
            f"room_name={self.room_name!r}",
            f"client_identity={self.client_identity!r}",
            f"server_identity={self.server_identity!r}",
        ]


@dataclass(frozen=True, slots=True, kw_only=True, repr=False)
class TrtcCredentials(Credentials):
    """Tencent TRTC credentials: ``enterRoom({sdkAppId, roomId, userId, userSig})``.

    Both spellings are read: ``trtc_sdk_*`` (the OpenAPI file) and ``trtc_*`` (the official demo).

    Attributes:
        app_id: the SDK app id (a number).
        room_id: the room id.
        user_id: our user id.
        user_sig: the user signature (secret).
    """

    app_id: int | None = None
    room_id: str | None = None
    user_id: str | None = None
    user_sig: str | None = None

    def _fields_repr(self) -> list[str]:
        return [
            f"app_id={self.app_id!r}",
            f"room_id={self.room_id!r}",
            f"user_id={self.user_id!r}",
            f"user_sig={_secret_repr(self.user_sig)}",
        ]


def _str(raw: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` present in ``raw``, as a string (ids sometimes arrive as numbers)."""
    for key in keys:
        value = raw.get(key)
        if value is not None:
            return str(value)
    return None


def _int(raw: Mapping[str, Any], *keys: str) -> int | None:
    for key in keys:
        value = raw.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    return None


def _bool(raw: Mapping[str, Any], key: str) -> bool | None:
    value = raw.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return None


def parse_credentials(stream_type: str | None, raw: Any) -> Credentials | None:
    """Build the typed credentials for ``stream_type`` from the ``credentials`` JSON object.

    When ``stream_type`` is missing the provider is inferred from the key names. Returns ``None`` when there are no
    credentials at all.
    """
    if not isinstance(raw, Mapping) or not raw:
        return None
    data = dict(raw)
    provider = stream_type or _infer_provider(data)
    common: dict[str, Any] = {
        "provider": provider,
        "ws_url": _str(data, "ws_url"),
        "ws_token": _str(data, "ws_token"),
        "raw": data,
    }
    if provider == "agora":
        return AgoraCredentials(
            uid=_int(data, "agora_uid"),
            app_id=_str(data, "agora_app_id"),
            channel=_str(data, "agora_channel"),
            token=_str(data, "agora_token"),
            **common,
        )
    if provider == "livekit":
        return LiveKitCredentials(
            url=_str(data, "livekit_url"),
            token=_str(data, "livekit_token"),
            room_name=_str(data, "livekit_room_name"),
            client_identity=_str(data, "livekit_client_identity"),
            server_identity=_str(data, "livekit_server_identity"),
            **common,
        )
    if provider == "trtc":
        return TrtcCredentials(
            app_id=_int(data, "trtc_sdk_app_id", "trtc_app_id"),
            room_id=_str(data, "trtc_sdk_room_id", "trtc_room_id"),
            user_id=_str(data, "trtc_sdk_user_id", "trtc_user_id"),
            user_sig=_str(data, "trtc_sdk_user_sig", "trtc_user_sig"),
            **common,
        )
    return Credentials(**common)


def _infer_provider(data: Mapping[str, Any]) -> str:
    for prefix in ("agora", "livekit", "trtc"):
        if any(key.startswith(prefix + "_") for key in data):
            return prefix
    return "websocket" if "ws_url" in data else "unknown"


# --- sessions ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Session:
    """A streaming-avatar session (the ``data`` of session create, detail and list).

    Attributes:
        id: the session id (``_id``), used by detail and close.
        status: queueing, live, completed or failed.
        stream_type: the media provider (``"agora"``, ``"livekit"``, ``"trtc"``, or the simulator's ``"websocket"``).
        credentials: what a client needs to join the room (``None`` when the response carried none).
        uid: the account's user id.
        type: AKool's session type (1 in every example).
        raw: the JSON object as received, with every field (not shown in ``repr``).
    """

    id: str
    status: SessionStatus
    stream_type: str | None = None
    credentials: Credentials | None = None
    uid: int | None = None
    type: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Session:
        """Build a session from its JSON object (``_id`` is required; ``id`` is accepted as a fallback)."""
        session_id = _str(data, "_id", "id", "session_id")
        if session_id is None:
            raise KeyError("_id")
        stream_type = _str(data, "stream_type")
        return cls(
            id=session_id,
            status=SessionStatus(_int(data, "status") or 0),
            stream_type=stream_type,
            credentials=parse_credentials(stream_type, data.get("credentials")),
            uid=_int(data, "uid"),
            type=_int(data, "type"),
            raw=dict(data),
        )


# --- avatars, voices, languages, knowledge -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class Avatar:
    """A streaming avatar (an item of the v4 avatar list).

    Attributes:
        avatar_id: the id to pass to ``sessions.create``.
        name: the display name.
        id: AKool's internal ``_id``.
        voice_id: the avatar's default voice.
        url: the preview / idle video or image.
        thumbnail_url: ``thumbnailUrl``.
        gender: as given by AKool (free text).
        available: whether it can be used now (``False`` when busy or disabled).
        source: ``from``: 2 official, 3 (or 4) user-created.
        type: 2 for streaming avatars.
        status: processing status of an uploaded avatar (3 = ready), when present.
        uid: the owner's user id.
        raw: the JSON object as received (not shown in ``repr``).
    """

    avatar_id: str
    name: str | None = None
    id: str | None = None
    voice_id: str | None = None
    url: str | None = None
    thumbnail_url: str | None = None
    gender: str | None = None
    available: bool | None = None
    source: int | None = None
    type: int | None = None
    status: AvatarStatus | None = None
    uid: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def _fields_from_json(cls, data: Mapping[str, Any]) -> dict[str, Any]:
        avatar_id = _str(data, "avatar_id")
        if avatar_id is None:
            raise KeyError("avatar_id")
        status = _int(data, "status")
        return {
            "avatar_id": avatar_id,
            "name": _str(data, "name"),
            "id": _str(data, "_id"),
            "voice_id": _str(data, "voice_id"),
            "url": _str(data, "url"),
            "thumbnail_url": _str(data, "thumbnailUrl", "thumbnail_url"),
            "gender": _str(data, "gender"),
            "available": _bool(data, "available"),
            "source": _int(data, "from"),
            "type": _int(data, "type"),
            "status": None if status is None else AvatarStatus(status),
            "uid": _int(data, "uid"),
            "raw": dict(data),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Avatar:
        """Build an avatar from its JSON object (``avatar_id`` is required)."""
        return cls(**cls._fields_from_json(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class AvatarDetail(Avatar):
    """An avatar's detail (avatar detail, and the result of an upload).

    Attributes:
        platform: ``"open"`` (OpenAPI avatars) or ``"aigc"`` (made in the AKool web app), when given.
    """

    platform: str | None = None

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> AvatarDetail:
        """Build an avatar detail from its JSON object."""
        return cls(platform=_str(data, "platform"), **cls._fields_from_json(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class Voice:
    """A voice from the voice list.

    Attributes:
        voice_id: the id to pass as ``voice_id``.
        name: the display name.
        id: AKool's internal ``_id``.
        gender, language, locale: as given by AKool.
        preview: an mp3 URL with a sample.
        support_stream: whether the voice can be used with streaming avatars.
        voice_model_name: e.g. "Akool Multilingual 1" ("... 2" cannot stream).
        status: 1..4, 3 = ready.
        raw: the JSON object as received (not shown in ``repr``).
    """

    voice_id: str
    name: str | None = None
    id: str | None = None
    gender: str | None = None
    language: str | None = None
    locale: str | None = None
    preview: str | None = None
    support_stream: bool | None = None
    voice_model_name: str | None = None
    status: int | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Voice:
        """Build a voice from its JSON object (``voice_id`` is required)."""
        voice_id = _str(data, "voice_id")
        if voice_id is None:
            raise KeyError("voice_id")
        return cls(
            voice_id=voice_id,
            name=_str(data, "name"),
            id=_str(data, "_id"),
            gender=_str(data, "gender"),
            language=_str(data, "language"),
            locale=_str(data, "locale"),
            preview=_str(data, "preview"),
            support_stream=_bool(data, "support_stream"),
            voice_model_name=_str(data, "voice_model_name"),
            status=_int(data, "status"),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Language:
    """A language from the language list.

    Attributes:
        code: ``lang_code``, locale-style (``"en-US"``); passed on as the user gives it (AKOOL_API.md 12.4).
        name: ``lang_name``.
        url: a flag icon.
        raw: the JSON object as received (not shown in ``repr``).
    """

    code: str
    name: str | None = None
    url: str | None = None
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Language:
        """Build a language from its JSON object (``lang_code`` is required)."""
        code = _str(data, "lang_code", "code")
        if code is None:
            raise KeyError("lang_code")
        return cls(code=code, name=_str(data, "lang_name", "name"), url=_str(data, "url"), raw=dict(data))


@dataclass(frozen=True, slots=True, kw_only=True)
class Knowledge:
    """A knowledge base: context for the AKool LLM in dialogue mode (pass ``id`` as ``knowledge_id``).

    Attributes:
        id: ``_id``.
        name: the unique name.
        prologue: a greeting the avatar may speak first.
        prompt: instructions for the LLM.
        docs: documents (``{"name", "url", "size"}``).
        urls: web pages.
        raw: the JSON object as received (not shown in ``repr``).
    """

    id: str
    name: str | None = None
    prologue: str | None = None
    prompt: str | None = None
    docs: tuple[dict[str, Any], ...] = ()
    urls: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Knowledge:
        """Build a knowledge base from its JSON object (``_id`` is required)."""
        knowledge_id = _str(data, "_id", "id")
        if knowledge_id is None:
            raise KeyError("_id")
        docs = data.get("docs")
        urls = data.get("urls")
        return cls(
            id=knowledge_id,
            name=_str(data, "name"),
            prologue=_str(data, "prologue"),
            prompt=_str(data, "prompt"),
            docs=tuple(dict(d) for d in docs if isinstance(d, Mapping)) if isinstance(docs, list) else (),
            urls=tuple(str(u) for u in urls) if isinstance(urls, list) else (),
            raw=dict(data),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Page(Generic[T]):
    """One page of a list endpoint; iterating over it yields its items.

    Attributes:
        items: the items of this page.
        count: the total number of items over all pages (as reported by the service).
        page: the page number (from 1).
        size: the page size asked for.
        raw: the ``data`` object as received (not shown in ``repr``).
    """

    items: tuple[T, ...]
    count: int
    page: int
    size: int
    raw: Any = field(default=None, compare=False, repr=False)

    def __iter__(self) -> Iterator[T]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> T:
        return self.items[index]

    @property
    def has_more(self) -> bool:
        """True when a later page may hold more items."""
        return bool(self.items) and self.page * self.size < self.count
