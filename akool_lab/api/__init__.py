"""The AKool REST API: typed models and two clients over one definition of each endpoint.

>>> from akool_lab.api import AkoolClient
>>> with AkoolClient() as client:                    # AKOOL_API_KEY from the environment
...     avatars = client.avatars.list()
...     session = client.sessions.create(avatars[0].avatar_id, duration=120)
...     client.sessions.close(session.id)

:class:`AsyncAkoolClient` has the same methods, awaited.
"""

from __future__ import annotations

from ._async_client import AsyncAkoolClient
from ._base import DEFAULT_BASE_URL
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

__all__ = [
    "DEFAULT_BASE_URL",
    "AgoraCredentials",
    "AkoolClient",
    "AsyncAkoolClient",
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
