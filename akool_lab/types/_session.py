"""A streaming session and the credentials to join its room: what the REST API returns and every layer reads.

These value objects are built from the service's JSON by liberal parsing (every variant listed in AKOOL_API.md
section 11 is accepted) and keep the JSON they came from in ``raw``. ``raw`` is left out of ``repr`` because it may
hold secrets, and every field that is a secret (RTC tokens, the simulator's ``ws_url``/``ws_token``) shows at most its
last four characters in ``repr``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from akool_lab.redaction import redact
from akool_lab.types.lenient import LenientIntEnum, read_int, read_str

__all__ = [
    "AgoraCredentials",
    "Credentials",
    "LiveKitCredentials",
    "Session",
    "SessionStatus",
    "TrtcCredentials",
    "parse_credentials",
]


class SessionStatus(LenientIntEnum):
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
        "ws_url": read_str(data, "ws_url"),
        "ws_token": read_str(data, "ws_token"),
        "raw": data,
    }
    if provider == "agora":
        return AgoraCredentials(
            uid=read_int(data, "agora_uid"),
            app_id=read_str(data, "agora_app_id"),
            channel=read_str(data, "agora_channel"),
            token=read_str(data, "agora_token"),
            **common,
        )
    if provider == "livekit":
        return LiveKitCredentials(
            url=read_str(data, "livekit_url"),
            token=read_str(data, "livekit_token"),
            room_name=read_str(data, "livekit_room_name"),
            client_identity=read_str(data, "livekit_client_identity"),
            server_identity=read_str(data, "livekit_server_identity"),
            **common,
        )
    if provider == "trtc":
        return TrtcCredentials(
            app_id=read_int(data, "trtc_sdk_app_id", "trtc_app_id"),
            room_id=read_str(data, "trtc_sdk_room_id", "trtc_room_id"),
            user_id=read_str(data, "trtc_sdk_user_id", "trtc_user_id"),
            user_sig=read_str(data, "trtc_sdk_user_sig", "trtc_user_sig"),
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
        session_id = read_str(data, "_id", "id", "session_id")
        if session_id is None:
            raise KeyError("_id")
        stream_type = read_str(data, "stream_type")
        return cls(
            id=session_id,
            status=SessionStatus(read_int(data, "status") or 0),
            stream_type=stream_type,
            credentials=parse_credentials(stream_type, data.get("credentials")),
            uid=read_int(data, "uid"),
            type=read_int(data, "type"),
            raw=dict(data),
        )
