"""The resources of a client (``client.sessions``, ``avatars``, ``voices``, ``languages``, ``knowledge``).

Each method is defined once, for the sync client, the async client and both raw-response views (see
:mod:`._resource`): it validates with the endpoint definitions of :mod:`._endpoints`, yields the steps of its
requests and returns the result. With :class:`~akool_lab.api.AsyncAkoolClient` every method is awaited
(``await client.sessions.get(id)``) and ``iter`` is an async iterator; through ``client.with_raw_response`` every
method returns a :class:`~akool_lab.api.RawResponse`.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator, Mapping, Sequence  # noqa: F401 - Iterator: see below
from typing import TYPE_CHECKING, Any, Generic

from akool_lab import errors
from akool_lab.events import EventKind

from . import _endpoints as ep
from ._base import Pages, Sleep, Steps, poll_delays
from ._models import (
    Avatar,
    AvatarDetail,
    AvatarStatus,
    Credentials,
    Knowledge,
    Language,
    Page,
    Session,
    SessionStatus,
    Voice,
)
from ._resource import M, Resource, operation, paginated

if TYPE_CHECKING:
    from ._base import ClientCore

__all__ = ["Avatars", "KnowledgeBases", "Languages", "RawResources", "Sessions", "Voices"]

# Iterator is imported for the signatures that help() and the API reference show: a paginated method's result is
# presented as "Iterator[...]", evaluated in this module.


def _arguments(local_names: Mapping[str, Any]) -> dict[str, Any]:
    """A method's own arguments (its ``locals()`` before anything else is bound), to pass on to the endpoint
    definition that validates them: the parameter list is written once, in the public signature."""
    return {name: value for name, value in local_names.items() if name != "self"}


class Sessions(Resource[M]):
    """Streaming sessions: ``client.sessions``."""

    __slots__ = ()

    @operation
    def create(
        self,
        avatar_id: str,
        *,
        duration: int = ep.DEFAULT_DURATION,
        voice_id: str | None = None,
        voice_url: str | None = None,
        language: str | None = None,
        mode_type: int | None = None,
        background_url: str | None = None,
        voice_params: Mapping[str, Any] | None = None,
        knowledge_id: str | None = None,
        stream_type: str | None = None,
        credentials: Mapping[str, Any] | Credentials | None = None,
        scene_mode: str | None = None,
        e2e_type: str | None = None,
    ) -> Steps[Session]:
        """Create a session (it costs credits for ``duration`` seconds until closed; never retried once sent).

        Args:
            avatar_id: a streaming avatar id (``avatars.list()``).
            duration: seconds, 1..3600 (default 300); the unused part is refunded on close.
            voice_id: a voice id (``voices.list()``); voice_url: a voice sample URL instead.
            language: a language code (``languages.list()``), e.g. ``"en-US"``.
            mode_type: 1 = retelling (speaks your text), 2 = dialogue (AKool's LLM answers).
            background_url: an http(s) image or video URL.
            voice_params: ``speed`` 0.8..1.2, ``pron_map``, ``stt_language``, ``stt_type``, ``turn_detection``,
                ``elevenlabs_settings`` (or the fast-dialogue keys with ``scene_mode="fast_dialogue"``).
            knowledge_id: a knowledge base for the dialogue mode (``knowledge.list()``).
            stream_type: ``"agora"`` (AKool's default), ``"livekit"``, ``"trtc"`` or the simulator's ``"websocket"``.
            credentials: bring-your-own-room credentials (same key names as the response).
            scene_mode: ``"fast_dialogue"`` or ``"meeting"``; e2e_type: ``"openai"`` (with fast dialogue only).

        The session is journaled and registered so that it gets closed at exit, by ``close_all()`` or by
        :meth:`reap` after a crash.
        """
        request = ep.create_session(**_arguments(locals()))
        client = self._client
        session: Session = yield from client._call(request)
        client._session_created(session.id)
        client._record(
            EventKind.SESSION_CREATED,
            session.id,
            status=int(session.status),
            stream_type=session.stream_type,
            duration=duration,
        )
        return session

    @operation
    def get(self, id: str) -> Steps[Session]:
        """The session's current state (``session/detail``)."""
        return (yield from self._client._call(ep.get_session(id)))

    @operation
    def close(self, id: str) -> Steps[None]:
        """Close the session (stops billing). Idempotent: an already closed session (1219) is not an error.

        Close is retried like a read: repeating it cannot cost anything.
        """
        yield from self._client._close_session(id)

    @operation
    def list(self, page: int = 1, size: int = 100, status: int | None = None) -> Steps[Page[Session]]:
        """One page of sessions (``page`` >= 1, ``size`` 1..100, optional ``status`` filter 1..4)."""
        return (yield from self._client._call(ep.list_sessions(page, size, status)))

    @paginated
    def iter(self, status: int | None = None, *, size: int = 100) -> Pages[Session]:
        """Every session over all pages, fetched lazily (``async for`` with the async client)."""
        ep.list_sessions(1, size, status)  # the arguments are checked now, not at the first page
        return Pages(lambda page: ep.list_sessions(page, size, status))

    @operation
    def wait_until_live(self, id: str, timeout: float = 60.0, poll_interval: float = 0.2) -> Steps[Session]:
        """Poll until the session is live (status 2) and return it.

        Polls start every ``poll_interval`` seconds and back off to 2 s. Raises
        :class:`~akool_lab.errors.SessionFailedError` when it fails (4) or ends (3) first, and
        :class:`~akool_lab.errors.TimeoutError` after ``timeout`` seconds.
        """
        client = self._client
        request = ep.get_session(id)
        deadline = client._clock() + timeout
        next_delay = poll_delays(poll_interval)
        while True:
            session: Session = yield from client._call(request)
            client._record(EventKind.SESSION_STATUS, id, status=int(session.status))
            if session.status == SessionStatus.LIVE:
                client._record(EventKind.SESSION_LIVE, id)
                return session
            if session.status == SessionStatus.FAILED:
                raise errors.SessionFailedError(id, int(session.status), "failed before it was live")
            if session.status == SessionStatus.COMPLETED:
                raise errors.SessionFailedError(id, int(session.status), "ended before it was live")
            remaining = deadline - client._clock()
            if remaining <= 0:
                raise errors.TimeoutError(f"session {id} becoming live", timeout)
            yield Sleep(min(next_delay(), remaining))

    @operation
    def reap(self, *, include_running: bool = False) -> Steps[builtins.list[str]]:
        """Close every journaled session (of this base URL) that the service still reports as queueing or live.

        For recovery after a crashed kernel: sessions that are already finished, or unknown to the service, are
        only marked done in the journal. Sessions whose creating process is still running (another open notebook,
        or this one) may be in use and are left alone unless ``include_running``. Returns the ids that were closed.
        """
        client = self._client
        closed = []
        for entry in client.journal.open_entries(client.base_url):
            if entry.creator_alive() and not include_running:
                continue
            try:
                session: Session = yield from client._call(ep.get_session(entry.id))
            except errors.NotFoundError:
                client.journal.closed(entry.id)
                continue
            if session.status.is_open:
                yield from client._close_session(entry.id)
                closed.append(entry.id)
            else:
                client.journal.closed(entry.id)
        return closed


class Avatars(Resource[M]):
    """Streaming avatars: ``client.avatars``."""

    __slots__ = ()

    @operation
    def list(self, page: int = 1, size: int = 100) -> Steps[Page[Avatar]]:
        """One page of streaming avatars (``size`` 1..100)."""
        return (yield from self._client._call(ep.list_avatars(page, size)))

    @operation
    def get(self, avatar_id: str) -> Steps[AvatarDetail]:
        """One avatar's detail."""
        return (yield from self._client._call(ep.get_avatar(avatar_id)))

    @operation
    def upload(self, *, url: str, avatar_id: str, name: str, url_from: int = 1) -> Steps[AvatarDetail]:
        """Create a streaming avatar from a video URL (``avatar_id``: letters and digits only; never retried once sent).

        ``url_from``: 1 = a direct link, 2 = YouTube / TikTok / X / Google Drive. Wait with :meth:`wait_until_ready`.
        """
        request = ep.upload_avatar(url=url, avatar_id=avatar_id, name=name, url_from=url_from)
        return (yield from self._client._call(request))

    @operation
    def wait_until_ready(
        self, avatar_id: str, timeout: float = 600.0, poll_interval: float = 1.0
    ) -> Steps[AvatarDetail]:
        """Poll until the uploaded avatar is ready (status 3).

        Raises :class:`~akool_lab.errors.AkoolError` (1105) when processing failed (4) and
        :class:`~akool_lab.errors.TimeoutError` after ``timeout`` seconds.
        """
        client = self._client
        request = ep.get_avatar(avatar_id)
        deadline = client._clock() + timeout
        next_delay = poll_delays(poll_interval, cap=10.0)
        while True:
            avatar: AvatarDetail = yield from client._call(request)
            if avatar.status == AvatarStatus.READY:
                return avatar
            if avatar.status == AvatarStatus.FAILED:
                raise errors.error_for_code(1105, "avatar processing failed (status 4)", "avatars.wait_until_ready")
            remaining = deadline - client._clock()
            if remaining <= 0:
                raise errors.TimeoutError(f"avatar {avatar_id} becoming ready", timeout)
            yield Sleep(min(next_delay(), remaining))


class Voices(Resource[M]):
    """Voices: ``client.voices``."""

    __slots__ = ()

    @operation
    def list(
        self,
        type: int = 2,
        support_stream: int | bool | None = None,
        page: int = 1,
        size: int = 10,
        *,
        style: str | Sequence[str] | None = None,
        gender: str | Sequence[str] | None = None,
        age: str | Sequence[str] | None = None,
        scenario: str | Sequence[str] | None = None,
        name: str | None = None,
    ) -> Steps[Page[Voice]]:
        """One page of voices: ``type`` 1 = your cloned voices, 2 = AKool's; ``support_stream=True`` (or 1) keeps
        only voices usable with streaming avatars; ``style``, ``gender``, ``age``, ``scenario`` filter (a string or
        a list of strings) and ``name`` searches."""
        return (yield from self._client._call(ep.list_voices(**_arguments(locals()))))


class Languages(Resource[M]):
    """Languages: ``client.languages``."""

    __slots__ = ()

    @operation
    def list(self) -> Steps[builtins.list[Language]]:
        """Every language (locale-style codes such as ``"en-US"``, passed on as given)."""
        return (yield from self._client._call(ep.list_languages()))


class KnowledgeBases(Resource[M]):
    """Knowledge bases for the AKool LLM: ``client.knowledge``."""

    __slots__ = ()

    @operation
    def list(self, page: int = 1, size: int = 10, name: str | None = None) -> Steps[Page[Knowledge]]:
        """One page of knowledge bases (``size`` 1..100; ``name`` filters)."""
        return (yield from self._client._call(ep.list_knowledge(page, size, name)))

    @operation
    def get(self, id: str) -> Steps[Knowledge]:
        """One knowledge base."""
        return (yield from self._client._call(ep.get_knowledge(id)))

    @operation
    def create(
        self,
        *,
        name: str | None = None,
        prologue: str | None = None,
        prompt: str | None = None,
        docs: Sequence[Mapping[str, Any]] | None = None,
        urls: Sequence[str] | None = None,
    ) -> Steps[Knowledge]:
        """Create a knowledge base (``name`` <= 100 chars, ``prologue`` <= 2000, ``prompt`` <= 10000; ``docs``:
        ``{"name", "url", "size"}`` dicts; ``urls``: web pages)."""
        return (yield from self._client._call(ep.create_knowledge(**_arguments(locals()))))

    @operation
    def update(
        self,
        id: str,
        *,
        name: str | None = None,
        prologue: str | None = None,
        prompt: str | None = None,
        docs: Sequence[Mapping[str, Any]] | None = None,
        urls: Sequence[str] | None = None,
    ) -> Steps[Knowledge | None]:
        """Change the given fields; returns the updated knowledge base when the service sends it back."""
        return (yield from self._client._call(ep.update_knowledge(**_arguments(locals()))))

    @operation
    def delete(self, id: str) -> Steps[None]:
        """Delete a knowledge base."""
        yield from self._client._call(ep.delete_knowledge(id))


class RawResources(Generic[M]):
    """``client.with_raw_response``: the client's resources, whose methods return :class:`RawResponse` objects.

    Each call gets its own raw response (nothing is shared between calls, so concurrent calls of the async client
    cannot mix theirs up).
    """

    def __init__(self, client: ClientCore[Any, Any, Any, Any, Any]) -> None:
        self.sessions: Sessions[M] = Sessions(client, raw=True)
        self.avatars: Avatars[M] = Avatars(client, raw=True)
        self.voices: Voices[M] = Voices(client, raw=True)
        self.languages: Languages[M] = Languages(client, raw=True)
        self.knowledge: KnowledgeBases[M] = KnowledgeBases(client, raw=True)
