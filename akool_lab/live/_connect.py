"""Open a live stream for a session created with the REST client (``client.connect``)."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

from akool_lab.errors import ValidationError
from akool_lab.live._loop import io_loop
from akool_lab.live._session import LiveSession
from akool_lab.live._stream import AvatarStream
from akool_lab.transport import Transport, select_transport

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient, AsyncAkoolClient, Session

__all__ = ["connect_async", "connect_sync"]

T = TypeVar("T")


async def connect_async(
    client: AsyncAkoolClient,
    session: Session | str,
    *,
    transport: Transport | None = None,
    mode: int | None = None,
    close_session: bool = True,
    reconnect: bool = False,
    timeout: float = 15.0,
) -> AvatarStream:
    """Connect to ``session`` (a :class:`Session` or its id) and return the open :class:`AvatarStream`.

    With ``close_session`` (default) closing the stream also closes the AKool session. With ``reconnect`` a
    dropped connection is re-joined while the session is live.
    """
    if isinstance(session, str):
        session = await client.sessions.get(session)
    chosen = select_transport(session, transport)
    session_id = session.id
    recorder = client.recorder
    # The async client's connections belong to the caller's event loop: its calls must run there, not on the
    # I/O loop where the stream lives.
    home = asyncio.get_running_loop()

    async def on_home(coro: Coroutine[Any, Any, T]) -> T:
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, home))

    async def closer() -> None:
        await on_home(client.sessions.close(session_id))

    async def rejoin() -> Transport:
        fresh = await on_home(client.sessions.get(session_id))
        if fresh.status != 2:
            raise ValidationError("session", f"is no longer live (status {int(fresh.status)})")
        return select_transport(fresh, None)

    return await AvatarStream.open(
        chosen,
        session_id=session_id,
        recorder=recorder,
        mode=mode,
        closer=closer if close_session else None,
        reconnect=rejoin if reconnect and transport is None else None,
        connect_timeout=timeout,
    )


def connect_sync(
    client: AkoolClient,
    session: Session | str,
    *,
    transport: Transport | None = None,
    mode: int | None = None,
    close_session: bool = True,
    reconnect: bool = False,
    timeout: float = 15.0,
) -> LiveSession:
    """The blocking form of :func:`connect_async`, for a sync :class:`AkoolClient`; returns a :class:`LiveSession`."""
    if isinstance(session, str):
        session = client.sessions.get(session)
    chosen = select_transport(session, transport)
    session_id = session.id
    loop = io_loop()

    async def closer() -> None:
        # The sync client blocks: run it off the I/O loop.
        await asyncio.get_running_loop().run_in_executor(None, client.sessions.close, session_id)

    async def rejoin() -> Transport:
        fresh = await asyncio.get_running_loop().run_in_executor(None, client.sessions.get, session_id)
        if fresh.status != 2:
            raise ValidationError("session", f"is no longer live (status {int(fresh.status)})")
        return select_transport(fresh, None)

    stream = loop.run(
        AvatarStream.open(
            chosen,
            session_id=session_id,
            recorder=client.recorder,
            mode=mode,
            closer=closer if close_session else None,
            reconnect=rejoin if reconnect and transport is None else None,
            connect_timeout=timeout,
        ),
        timeout + 5.0,
        f"connecting to session {session_id}",
    )
    return LiveSession(stream, loop=loop)
