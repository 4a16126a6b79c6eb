"""``AsyncAkoolClient``: the awaiting driver of the calls defined once in ``_base.py`` and ``_resources.py``."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from akool_lab.redaction import Secret

from ._base import ClientCore, Http, Pages, Run, Sleep, Step, Steps
from ._models import Page, Session
from ._resource import Async, RawAsync

if TYPE_CHECKING:
    from akool_lab.live import AvatarStream
    from akool_lab.transport import Transport

__all__ = ["AsyncAkoolClient"]

T = TypeVar("T")


class AsyncAkoolClient(
    ClientCore[httpx.AsyncClient, httpx.AsyncBaseTransport, Callable[[float], Awaitable[None]], Async, RawAsync]
):
    """An asynchronous client of the AKool Live Avatar REST API, over ``httpx.AsyncClient``.

    >>> async with AsyncAkoolClient() as client:            # reads AKOOL_API_KEY
    ...     session = await client.sessions.create("dvp_Tristan_cloth2_1080P", duration=120)
    ...     await client.sessions.wait_until_live(session.id)
    ...     await client.sessions.close(session.id)

    It has the methods of :class:`AkoolClient`, awaited (``sessions.iter`` is an async iterator), and the same
    ``with_raw_response``; each call gets its own raw response, so concurrent calls never mix theirs up.
    The arguments, the resources (``sessions``, ``avatars``...) and ``with_raw_response`` are :class:`ClientCore`'s.
    """

    _default_sleep = staticmethod(asyncio.sleep)
    _token_lock: asyncio.Lock

    def _new_lock(self) -> asyncio.Lock:
        return asyncio.Lock()

    def _new_http(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url, headers=self._client_headers, timeout=self.timeout, transport=self._transport
        )

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def close(self) -> None:
        """Close the HTTP connections (sessions stay open: use :meth:`close_all` or ``sessions.close``)."""
        if self._owns_http:
            await self._http.aclose()

    async def __aenter__(self) -> AsyncAkoolClient:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def connect(
        self,
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
        """Open the live data channel of ``session`` (a :class:`Session` or its id): an
        :class:`~akool_lab.live.AvatarStream` to ``await say(...)``, ``ask``, ``set_params``, ``interrupt``...

        See :meth:`AkoolClient.connect` for the arguments. Use it as ``async with await client.connect(s) as live``.
        A thin call to :func:`akool_lab.live.connect_async`, imported on use (:meth:`AkoolClient.connect` says why).
        """
        from akool_lab.live import connect_async

        return await connect_async(
            self,
            session,
            transport=transport,
            mode=mode,
            close_session=close_session,
            reconnect=reconnect,
            timeout=timeout,
            expect_fin=expect_fin,
            expect_echo=expect_echo,
        )

    async def close_all(self) -> list[str]:
        """Close every session this client created and has not closed; returns the ids closed.

        A session the service reports as already closed or unknown counts as closed. Other failures are raised
        after every session has been tried.
        """
        closed: list[str] = await self._run(self._close_all())
        return closed

    def _close_at_exit(self, session_id: str) -> None:
        # at exit the event loop that owned the connections is gone: run the close on a fresh loop and, when this
        # object made its own connections, on fresh ones
        if self._owns_http:
            self._http = self._new_http()
        asyncio.run(self._run(self._close_session(session_id)))

    # -- the driver ------------------------------------------------------------------------------------------------

    async def _run(self, steps: Steps[T], raw: bool = False) -> Any:
        """Perform the steps of one call, awaiting; its result (a :class:`RawResponse` with ``raw``)."""
        return await Run(steps, raw).drive_async(self._perform)

    async def _perform(self, step: Step) -> Any:
        if type(step) is Http:
            try:
                return await self._http.request(
                    step.method, step.url, params=step.params, json=step.json, headers=step.headers
                )
            except httpx.TransportError as exc:
                return exc  # the call turns it into the library's error, or retries
        if type(step) is Sleep:
            return await self._sleep(step.seconds)
        async with self._token_lock:  # FETCH_TOKEN
            if self._token is None:
                self._token = Secret(await self._run(self._call(self._token_request())))
        return None

    async def _pages(self, pages: Pages[Any], raw: bool = False) -> AsyncIterator[Any]:
        """Every item of every page (one :class:`RawResponse` per page with ``raw``)."""
        number = 1
        while True:
            result = await self._run(self._call(pages.request(number)), raw)
            page: Page[Any] = result.parsed if raw else result
            for item in [result] if raw else page:
                yield item
            if not page.has_more:
                return
            number += 1
