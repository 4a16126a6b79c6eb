"""Typed results of the REST API: frozen value objects built from the service's JSON.

The session and its credentials live in :mod:`akool_lab.types` (the transport, live and widget layers read them
too) and are re-exported here, so ``akool_lab.api.Session`` keeps working. Parsing is liberal (every variant listed in AKOOL_API.md section 11 is accepted) and nothing is lost: every model
keeps the JSON object it was built from in ``raw``. ``raw`` is left out of ``repr`` because it may hold secrets, and
every field that is a secret (RTC tokens, the simulator's ``ws_url``/``ws_token``) shows at most its last four
characters in ``repr``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from akool_lab.types import (
    AgoraCredentials,
    Credentials,
    LiveKitCredentials,
    Session,
    SessionStatus,
    TrtcCredentials,
    parse_credentials,
)
from akool_lab.types.lenient import LenientIntEnum, read_bool, read_int, read_str

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
    "parse_credentials",
]

T = TypeVar("T")


class AvatarStatus(LenientIntEnum):
    """The processing status of an uploaded avatar: usable in ``sessions.create`` once ``READY``."""

    QUEUEING = 1
    PROCESSING = 2
    READY = 3
    FAILED = 4


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
        avatar_id = read_str(data, "avatar_id")
        if avatar_id is None:
            raise KeyError("avatar_id")
        status = read_int(data, "status")
        return {
            "avatar_id": avatar_id,
            "name": read_str(data, "name"),
            "id": read_str(data, "_id"),
            "voice_id": read_str(data, "voice_id"),
            "url": read_str(data, "url"),
            "thumbnail_url": read_str(data, "thumbnailUrl", "thumbnail_url"),
            "gender": read_str(data, "gender"),
            "available": read_bool(data, "available"),
            "source": read_int(data, "from"),
            "type": read_int(data, "type"),
            "status": None if status is None else AvatarStatus(status),
            "uid": read_int(data, "uid"),
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
        return cls(platform=read_str(data, "platform"), **cls._fields_from_json(data))


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
        voice_id = read_str(data, "voice_id")
        if voice_id is None:
            raise KeyError("voice_id")
        return cls(
            voice_id=voice_id,
            name=read_str(data, "name"),
            id=read_str(data, "_id"),
            gender=read_str(data, "gender"),
            language=read_str(data, "language"),
            locale=read_str(data, "locale"),
            preview=read_str(data, "preview"),
            support_stream=read_bool(data, "support_stream"),
            voice_model_name=read_str(data, "voice_model_name"),
            status=read_int(data, "status"),
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
        code = read_str(data, "lang_code", "code")
        if code is None:
            raise KeyError("lang_code")
        return cls(code=code, name=read_str(data, "lang_name", "name"), url=read_str(data, "url"), raw=dict(data))


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
        knowledge_id = read_str(data, "_id", "id")
        if knowledge_id is None:
            raise KeyError("_id")
        docs = data.get("docs")
        urls = data.get("urls")
        return cls(
            id=knowledge_id,
            name=read_str(data, "name"),
            prologue=read_str(data, "prologue"),
            prompt=read_str(data, "prompt"),
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
