"""The AKool REST API: typed models and two clients over one definition of each endpoint.

>>> from akool_lab.api import AkoolClient
>>> with AkoolClient() as client:                    # AKOOL_API_KEY from the environment
...     avatars = client.avatars.list()
...     session = client.sessions.create(avatars[0].avatar_id, duration=120)
...     client.sessions.close(session.id)

:class:`AsyncAkoolClient` has the same methods, awaited. ``client.with_raw_response.sessions.get(id)`` (and every
other method under ``with_raw_response``) returns a :class:`RawResponse`: status, headers (credentials redacted),
timing and the parsed result.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import DEFAULT_BASE_URL, USER_AGENT, ClientCore, RawResponse
from ._client import AkoolClient
from ._models import (
    AgoraCredentials,
    Avatar,
    AvatarDetail,
    AvatarStatus,
    Credentials,
    Knowledge,
    Language,
    LiveKitCredentials,
    Page,
    Session,
    SessionStatus,
    TrtcCredentials,
    Voice,
)
from ._resource import Async, RawAsync, RawSync, Sync
from ._resources import Avatars, KnowledgeBases, Languages, RawResources, Sessions, Voices

if TYPE_CHECKING:
    from ._async_client import AsyncAkoolClient

__all__ = [
    "DEFAULT_BASE_URL",
    "USER_AGENT",
    "AgoraCredentials",
    "AkoolClient",
    "Async",
    "AsyncAkoolClient",
    "Avatar",
    "AvatarDetail",
    "AvatarStatus",
    "Avatars",
    "ClientCore",
    "Credentials",
    "Knowledge",
    "KnowledgeBases",
    "Language",
    "Languages",
    "LiveKitCredentials",
    "Page",
    "RawAsync",
    "RawResources",
    "RawResponse",
    "RawSync",
    "Session",
    "SessionStatus",
    "Sessions",
    "Sync",
    "TrtcCredentials",
    "Voice",
    "Voices",
]


def __getattr__(name: str) -> Any:
    # The async client (and asyncio with it) is imported on first use: `from akool_lab import AkoolClient`, what
    # most code writes, stays cheap.
    if name == "AsyncAkoolClient":
        from ._async_client import AsyncAkoolClient

        globals()[name] = AsyncAkoolClient
        return AsyncAkoolClient
    raise AttributeError(f"module 'akool_lab.api' has no attribute {name!r}")
