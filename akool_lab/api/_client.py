"""``AkoolClient``: the synchronous executor of the endpoint definitions, over ``httpx.Client``."""

from __future__ import annotations

import builtins
import os
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from akool_lab import errors
from akool_lab.events import EventKind, Recorder
from akool_lab.redaction import Secret

from . import _endpoints as ep
from ._base import ClientCore, evaluate_exception, evaluate_response, poll_delays
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

if TYPE_CHECKING:
    from akool_lab.live import LiveSession
    from akool_lab.transport import Transport

__all__ = ["AkoolClient"]

T = TypeVar("T")


class AkoolClient(ClientCore):
    """A synchronous client of the AKool Live Avatar REST API.

    >>> with AkoolClient() as client:                      # reads AKOOL_API_KEY
    ...     session = client.sessions.create("dvp_Tristan_cloth2_1080P", duration=120)
    ...     client.sessions.wait_until_live(session.id)
    ...     client.sessions.close(session.id)

    Credentials: ``api_key`` (else ``$AKOOL_API_KEY``) is sent as ``x-api-key``; without one, ``client_id`` and
    ``client_secret`` (else ``$AKOOL_CLIENT_ID``/``$AKOOL_CLIENT_SECRET``) fetch a token from getToken, sent as
    ``Authorization: Bearer``. With neither, the constructor raises :class:`~akool_lab.errors.ValidationError`.

    Args:
        base_url: the service; default ``$AKOOL_BASE_URL``, else :data:`DEFAULT_BASE_URL`.
        timeout: seconds per HTTP request (``None``: no limit).
        max_retries: how many times a failed *safe* request is repeated (see :class:`~akool_lab.api._endpoints.Retry`).
        http_client: an ``httpx.Client`` to use (not closed by :meth:`close`); ``transport`` is ignored then.
        transport: an httpx transport for the client this object creates (``httpx.MockTransport`` in tests).
        recorder: receives one ``http`` event per attempt and the session lifecycle events.
        journal_path: the session journal (default ``$AKOOL_LAB_HOME/sessions.jsonl`` or the user data dir).
        sleep, rng, clock: injectable ``time.sleep``, random source and monotonic clock (for tests).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        client_id: str | None = None,
        client_secret: str | None = None,
        base_url: str | None = None,
        timeout: float | None = 30.0,
        max_retries: int = 2,
        http_client: httpx.Client | None = None,
        transport: httpx.BaseTransport | None = None,
        recorder: Recorder | None = None,
        journal_path: str | os.PathLike[str] | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        clock: Callable[[], float] | None = None,
    ) -> None:
        super().__init__(
            api_key,
            client_id=client_id,
            client_secret=client_secret,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            recorder=recorder,
            journal_path=journal_path,
            rng=rng,
            clock=clock,
        )
        self._owns_http = http_client is None
        self._transport = transport
        self._http = http_client or self._new_http()
        self._sleep = sleep or time.sleep
        self._token_lock = threading.Lock()
        self.sessions = Sessions(self)
        self.avatars = Avatars(self)
        self.voices = Voices(self)
        self.languages = Languages(self)
        self.knowledge = KnowledgeBases(self)

    def _new_http(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, timeout=self.timeout, transport=self._transport)

    def __repr__(self) -> str:
        return self._repr()

    # -- lifecycle -------------------------------------------------------------------------------------------------

    def close(self) -> None:
        """Close the HTTP connections (sessions stay open: use :meth:`close_all` or ``sessions.close``)."""
        if self._owns_http:
            self._http.close()

    def __enter__(self) -> AkoolClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def connect(
        self,
        session: Session | str,
        *,
        transport: Transport | None = None,
        mode: int | None = None,
        close_session: bool = True,
        reconnect: bool = False,
        timeout: float = 15.0,
    ) -> LiveSession:
        """Open the live data channel of ``session`` (a :class:`Session` or its id): a blocking
        :class:`~akool_lab.live.LiveSession` to ``say``, ``ask``, ``set_params``, ``interrupt``...

        The transport is picked from the credentials (the simulator's WebSocket, or LiveKit) unless given (the
        stage widget's browser transport for Agora/TRTC). ``mode`` is the avatar's mode if known (1 or 2). With
        ``close_session`` (default) closing the live session also closes the AKool session.
        """
        # The live layer sits below this one; it is imported here, on use, so that the REST client never
        # loads it (nor websockets) when only REST is used.
        from akool_lab.live._connect import connect_sync

        return connect_sync(
            self,
            session,
            transport=transport,
            mode=mode,
            close_session=close_session,
            reconnect=reconnect,
            timeout=timeout,
        )

    def close_all(self) -> list[str]:
        """Close every session this client created and has not closed; returns the ids closed.

        A session the service reports as already closed or unknown counts as closed. Other failures are raised
        after every session has been tried.
        """
        closed: list[str] = []
        failures: list[errors.AkoolLabError] = []
        for session_id in sorted(self._open_sessions):
            try:
                self.sessions.close(session_id)
            except errors.NotFoundError:
                closed.append(session_id)
            except errors.AkoolLabError as exc:
                failures.append(exc)
            else:
                closed.append(session_id)
        if failures:
            raise failures[0]
        return closed

    def _close_at_exit(self, session_id: str) -> None:
        if self._owns_http and self._http.is_closed:
            self._http = self._new_http()  # the user closed the connections, not the sessions
        self.sessions.close(session_id)

    # -- the executor ----------------------------------------------------------------------------------------------

    def _auth_headers(self) -> dict[str, str]:
        headers = self._static_auth_headers()
        if headers is None:
            with self._token_lock:
                if self._token is None:
                    self._token = Secret(self._send(self._token_request()))
            headers = self._static_auth_headers()
            assert headers is not None
        return headers

    def _send(self, request: ep.Request[T]) -> T:
        """Send ``request``: authenticate, retry what may be retried, time and record each attempt, parse."""
        attempt = retries = 0
        refreshed = False
        while True:
            attempt += 1
            headers = self._auth_headers() if request.endpoint.auth else {}
            self._log_request(request, headers, attempt)
            t0 = time.perf_counter_ns()
            try:
                response = self._http.request(
                    request.endpoint.method,
                    request.endpoint.path,
                    params=request.params,
                    json=request.json,
                    headers=headers,
                )
                self.last_response = response
                outcome = evaluate_response(request, response)
            except httpx.TransportError as exc:
                outcome = evaluate_exception(request, exc, self.timeout)
            self._record_http(request, outcome, t0, attempt)
            if outcome.error is None:
                return outcome.value  # type: ignore[no-any-return]
            if self._should_refresh_token(outcome, refreshed):
                refreshed = True
                self._token = None
                continue
            delay = self._retry_delay(outcome, retries)
            if delay is None:
                raise outcome.error
            retries += 1
            self._sleep(delay)


class Sessions:
    """Streaming sessions: ``client.sessions``."""

    def __init__(self, client: AkoolClient) -> None:
        self._client = client

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
    ) -> Session:
        """Create a session (it costs credits for ``duration`` seconds until closed; never retried once sent).

        Args:
            avatar_id: a streaming avatar id (``avatars.list()``).
            duration: seconds, 1..3600 (default 300); the unused part is refunded on close.
            voice_id, voice_url, language, knowledge_id: see the API reference (3.1).
            mode_type: 1 = retelling (speaks your text), 2 = dialogue (AKool's LLM answers).
            background_url: an http(s) image or video URL.
            voice_params: ``speed`` 0.8..1.2, ``pron_map``, ``stt_language``, ``stt_type``, ``turn_detection``,
                ``elevenlabs_settings`` (or the fast-dialogue keys with ``scene_mode="fast_dialogue"``).
            stream_type: ``"agora"`` (AKool's default), ``"livekit"``, ``"trtc"`` or the simulator's ``"websocket"``.
            credentials: bring-your-own-room credentials (same key names as the response).
            scene_mode, e2e_type: ``"fast_dialogue"`` and ``"openai"``.

        The session is journaled and registered so that it gets closed at exit, by :meth:`AkoolClient.close_all`
        or by :meth:`reap` after a crash.
        """
        request = ep.create_session(
            avatar_id,
            duration=duration,
            voice_id=voice_id,
            voice_url=voice_url,
            language=language,
            mode_type=mode_type,
            background_url=background_url,
            voice_params=voice_params,
            knowledge_id=knowledge_id,
            stream_type=stream_type,
            credentials=credentials,
            scene_mode=scene_mode,
            e2e_type=e2e_type,
        )
        session = self._client._send(request)
        client = self._client
        client._session_created(session.id, lambda: client._close_at_exit(session.id))
        client._record(
            EventKind.SESSION_CREATED,
            session.id,
            status=int(session.status),
            stream_type=session.stream_type,
            duration=duration,
        )
        return session

    def get(self, id: str) -> Session:
        """The session's current state (``session/detail``)."""
        return self._client._send(ep.get_session(id))

    def close(self, id: str) -> None:
        """Close the session (stops billing). Idempotent: an already closed session (1219) is not an error.

        Close is retried like a read: repeating it cannot cost anything.
        """
        request = ep.close_session(id)
        client = self._client
        client._record(EventKind.CLOSE_START, id)
        try:
            client._send(request)
        except errors.SessionClosedError as exc:
            client._session_closed(id)
            client._record(EventKind.CLOSED, id, code=exc.code)
            return
        except errors.NotFoundError:
            client._session_closed(id)  # nothing left to close, nor to reap
            raise
        client._session_closed(id)
        client._record(EventKind.CLOSED, id, code=1000)

    def list(self, page: int = 1, size: int = 100, status: int | None = None) -> Page[Session]:
        """One page of sessions (``page`` >= 1, ``size`` 1..100, optional ``status`` filter 1..4)."""
        return self._client._send(ep.list_sessions(page, size, status))

    def iter(self, status: int | None = None, *, size: int = 100) -> Iterator[Session]:
        """Every session over all pages, fetched lazily."""
        page = 1
        while True:
            result = self.list(page=page, size=size, status=status)
            yield from result
            if not result.has_more:
                return
            page += 1

    def wait_until_live(self, id: str, timeout: float = 60.0, poll_interval: float = 0.2) -> Session:
        """Poll until the session is live (status 2) and return it.

        Polls start every ``poll_interval`` seconds and back off to 2 s. Raises
        :class:`~akool_lab.errors.SessionFailedError` when it fails (4) or ends (3) first, and
        :class:`~akool_lab.errors.TimeoutError` after ``timeout`` seconds.
        """
        client = self._client
        ep.require_text("id", id)
        deadline = client._clock() + timeout
        next_delay = poll_delays(poll_interval)
        while True:
            session = self.get(id)
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
            client._sleep(min(next_delay(), remaining))

    def reap(self, *, include_running: bool = False) -> builtins.list[str]:
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
                session = self.get(entry.id)
            except errors.NotFoundError:
                client.journal.closed(entry.id)
                continue
            if session.status.is_open:
                self.close(entry.id)
                closed.append(entry.id)
            else:
                client.journal.closed(entry.id)
        return closed


class Avatars:
    """Streaming avatars: ``client.avatars``."""

    def __init__(self, client: AkoolClient) -> None:
        self._client = client

    def list(self, page: int = 1, size: int = 100) -> Page[Avatar]:
        """One page of streaming avatars (``size`` 1..100)."""
        return self._client._send(ep.list_avatars(page, size))

    def get(self, avatar_id: str) -> AvatarDetail:
        """One avatar's detail."""
        return self._client._send(ep.get_avatar(avatar_id))

    def upload(self, *, url: str, avatar_id: str, name: str, url_from: int = 1) -> AvatarDetail:
        """Create a streaming avatar from a video URL (``avatar_id``: letters and digits only; never retried once sent).

        ``url_from``: 1 = a direct link, 2 = YouTube / TikTok / X / Google Drive. Wait with :meth:`wait_until_ready`.
        """
        return self._client._send(ep.upload_avatar(url=url, avatar_id=avatar_id, name=name, url_from=url_from))

    def wait_until_ready(self, avatar_id: str, timeout: float = 600.0, poll_interval: float = 1.0) -> AvatarDetail:
        """Poll until the uploaded avatar is ready (status 3); raises :class:`~akool_lab.errors.AkoolError` (1105)
        when processing failed (4) and :class:`~akool_lab.errors.TimeoutError` after ``timeout`` seconds."""
        client = self._client
        deadline = client._clock() + timeout
        next_delay = poll_delays(poll_interval, cap=10.0)
        while True:
            avatar = self.get(avatar_id)
            if avatar.status == AvatarStatus.READY:
                return avatar
            if avatar.status == AvatarStatus.FAILED:
                raise errors.error_for_code(1105, "avatar processing failed (status 4)", "avatars.wait_until_ready")
            remaining = deadline - client._clock()
            if remaining <= 0:
                raise errors.TimeoutError(f"avatar {avatar_id} becoming ready", timeout)
            client._sleep(min(next_delay(), remaining))


class Voices:
    """Voices: ``client.voices``."""

    def __init__(self, client: AkoolClient) -> None:
        self._client = client

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
    ) -> Page[Voice]:
        """One page of voices: ``type`` 1 = your cloned voices, 2 = AKool's; ``support_stream=True`` (or 1) keeps
        only voices usable with streaming avatars."""
        request = ep.list_voices(
            type=type,
            support_stream=support_stream,
            page=page,
            size=size,
            style=style,
            gender=gender,
            age=age,
            scenario=scenario,
            name=name,
        )
        return self._client._send(request)


class Languages:
    """Languages: ``client.languages``."""

    def __init__(self, client: AkoolClient) -> None:
        self._client = client

    def list(self) -> builtins.list[Language]:
        """Every language (locale-style codes such as ``"en-US"``, passed on as given)."""
        return self._client._send(ep.list_languages())


class KnowledgeBases:
    """Knowledge bases for the AKool LLM: ``client.knowledge``."""

    def __init__(self, client: AkoolClient) -> None:
        self._client = client

    def list(self, page: int = 1, size: int = 10, name: str | None = None) -> Page[Knowledge]:
        """One page of knowledge bases (``size`` 1..100; ``name`` filters)."""
        return self._client._send(ep.list_knowledge(page, size, name))

    def get(self, id: str) -> Knowledge:
        """One knowledge base."""
        return self._client._send(ep.get_knowledge(id))

    def create(
        self,
        *,
        name: str | None = None,
        prologue: str | None = None,
        prompt: str | None = None,
        docs: Sequence[Mapping[str, Any]] | None = None,
        urls: Sequence[str] | None = None,
    ) -> Knowledge:
        """Create a knowledge base (``name`` <= 100 chars, ``prologue`` <= 2000, ``prompt`` <= 10000)."""
        return self._client._send(
            ep.create_knowledge(name=name, prologue=prologue, prompt=prompt, docs=docs, urls=urls)
        )

    def update(
        self,
        id: str,
        *,
        name: str | None = None,
        prologue: str | None = None,
        prompt: str | None = None,
        docs: Sequence[Mapping[str, Any]] | None = None,
        urls: Sequence[str] | None = None,
    ) -> Knowledge | None:
        """Change the given fields; returns the updated knowledge base when the service sends it back."""
        return self._client._send(
            ep.update_knowledge(id, name=name, prologue=prologue, prompt=prompt, docs=docs, urls=urls)
        )

    def delete(self, id: str) -> None:
        """Delete a knowledge base."""
        self._client._send(ep.delete_knowledge(id))
