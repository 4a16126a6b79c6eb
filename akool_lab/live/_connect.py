"""Open a live stream for a session created with the REST client (what ``client.connect`` runs).

The live layer sits below the REST layer and never imports it: a client is anything with a ``recorder`` and
``sessions.get``/``sessions.close`` (:class:`SessionClient`, :class:`AsyncSessionClient`), which
``akool_lab.api.AkoolClient`` and ``AsyncAkoolClient`` are. Their ``connect`` methods are thin calls to
:func:`connect_sync` and :func:`connect_async` here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from akool_lab.errors import ValidationError
from akool_lab.live._loop import io_loop
from akool_lab.live._session import LiveSession
from akool_lab.live._stream import AvatarStream
from akool_lab.transport import Transport, select_transport

if TYPE_CHECKING:
    from akool_lab.events import Recorder
    from akool_lab.types import Session

__all__ = ["AsyncSessionClient", "SessionClient", "connect_async", "connect_sync"]

T = TypeVar("T")


class _Sessions(Protocol):
    def get(self, id: str, /) -> Session: ...
    def close(self, id: str, /) -> None: ...


class _AsyncSessions(Protocol):
    def get(self, id: str, /) -> Coroutine[Any, Any, Session]: ...
    def close(self, id: str, /) -> Coroutine[Any, Any, None]: ...


class SessionClient(Protocol):
    """What :func:`connect_sync` needs of a blocking REST client (``akool_lab.api.AkoolClient`` is one)."""

    @property
    def recorder(self) -> Recorder:
        """Where the stream records its events."""

    @property
    def sessions(self) -> _Sessions:
        """``get(id)`` to re-join after a drop, ``close(id)`` to close the session with the stream."""


class AsyncSessionClient(Protocol):
    """What :func:`connect_async` needs of an awaiting REST client (``akool_lab.api.AsyncAkoolClient`` is one)."""

    @property
    def recorder(self) -> Recorder:
        """Where the stream records its events."""

    @property
    def sessions(self) -> _AsyncSessions:
        """``get(id)`` to re-join after a drop, ``close(id)`` to close the session with the stream."""


def _open(
    session: Session,
    transport: Transport | None,
    *,
    close: Callable[[str], Awaitable[object]],
    get: Callable[[str], Awaitable[Session]],
    recorder: Recorder,
    mode: int | None,
    close_session: bool,
    reconnect: bool,
    timeout: float,
    expect_fin: bool | None,
    expect_echo: bool | None,
) -> Coroutine[Any, Any, AvatarStream]:
    """The coroutine (to run on the I/O loop) that opens the stream; ``close``/``get`` reach the REST client from
    the I/O loop, whichever kind of client it is."""
    session_id = session.id

    async def closer() -> None:
        await close(session_id)

    async def rejoin() -> Transport:
        fresh = await get(session_id)
        if fresh.status != 2:
            raise ValidationError("session", f"is no longer live (status {int(fresh.status)})")
        return select_transport(fresh, None)

    return AvatarStream.open(
        select_transport(session, transport),
        session_id=session_id,
        recorder=recorder,
        mode=mode,
        closer=closer if close_session else None,
        reconnect=rejoin if reconnect and transport is None else None,
        connect_timeout=timeout,
        expect_fin=expect_fin,
        expect_echo=expect_echo,
    )


async def connect_async(
    client: AsyncSessionClient,
    session: Session | str,
    *,
    transport: Transport | None = None,
    mode: int | None = None,
    close_session: bool = True,
    reconnect: bool = False,
    timeout: float = 15.0,
    expect_fin: bool | None = None,
    expect_echo: bool | None = None,
) -> AvatarStream:
    """Connect to ``session`` (a :class:`Session` or its id) and return the open :class:`AvatarStream`.

    With ``close_session`` (default) closing the stream also closes the AKool session. With ``reconnect`` a
    dropped connection is re-joined while the session is live. ``expect_fin``/``expect_echo``: what the avatar
    is expected to send (``None`` learns it; see :class:`AvatarStream` and docs/conversation.md, rule 10).
    """
    if isinstance(session, str):
        session = await client.sessions.get(session)
    # The async client's connections belong to the caller's event loop: its calls must run there, not on the
    # I/O loop where the stream lives.
    home = asyncio.get_running_loop()

    def on_home(coro: Coroutine[Any, Any, T]) -> Awaitable[T]:
        return asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))

    return await io_loop().wrap(
        _open(
            session,
            transport,
            close=lambda sid: on_home(client.sessions.close(sid)),
            get=lambda sid: on_home(client.sessions.get(sid)),
            recorder=client.recorder,
            mode=mode,
            close_session=close_session,
            reconnect=reconnect,
            timeout=timeout,
            expect_fin=expect_fin,
            expect_echo=expect_echo,
        )
    )


def connect_sync(
    client: SessionClient,
    session: Session | str,
    *,
    transport: Transport | None = None,
    mode: int | None = None,
    close_session: bool = True,
    reconnect: bool = False,
    timeout: float = 15.0,
    expect_fin: bool | None = None,
    expect_echo: bool | None = None,
) -> LiveSession:
    """The blocking form of :func:`connect_async`, for a sync :class:`AkoolClient`; returns a :class:`LiveSession`."""
    if isinstance(session, str):
        session = client.sessions.get(session)
    loop = io_loop()

    def off_loop(fn: Callable[[str], T]) -> Callable[[str], Awaitable[T]]:
        # The sync client blocks: its calls run in a worker thread, never on the I/O loop.
        return lambda sid: asyncio.get_running_loop().run_in_executor(None, fn, sid)

    stream = loop.run(
        _open(
            session,
            transport,
            close=off_loop(client.sessions.close),
            get=off_loop(client.sessions.get),
            recorder=client.recorder,
            mode=mode,
            close_session=close_session,
            reconnect=reconnect,
            timeout=timeout,
            expect_fin=expect_fin,
            expect_echo=expect_echo,
        ),
        timeout + 5.0,
        f"connecting to session {session.id}",
    )
    return LiveSession(stream, loop=loop)
