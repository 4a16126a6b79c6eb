"""``AkoolClient``: the blocking driver of the calls defined once in ``_base.py`` and ``_resources.py``."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from akool_lab.redaction import Secret

from ._base import ClientCore, Http, Pages, Run, Sleep, Step, Steps
from ._models import Page, Session
from ._resource import RawSync, Sync

if TYPE_CHECKING:
    from akool_lab.live import LiveSession
    from akool_lab.transport import Transport

__all__ = ["AkoolClient"]

T = TypeVar("T")


class AkoolClient(ClientCore[httpx.Client, httpx.BaseTransport, Callable[[float], None], Sync, RawSync]):
    """A synchronous client of the AKool Live Avatar REST API, over ``httpx.Client``.

    >>> with AkoolClient() as client:                      # reads AKOOL_API_KEY
    ...     session = client.sessions.create("dvp_Tristan_cloth2_1080P", duration=120)
    ...     client.sessions.wait_until_live(session.id)
    ...     client.sessions.close(session.id)

    Each method of ``client.with_raw_response.<resource>`` returns a :class:`~akool_lab.api.RawResponse` (status,
    headers with the credentials redacted, timing, and the parsed result) instead of the result alone.
    The arguments, the resources (``sessions``, ``avatars``...) and ``with_raw_response`` are :class:`ClientCore`'s.
    """

    _default_sleep = staticmethod(time.sleep)
    _token_lock: threading.Lock

    def _new_lock(self) -> threading.Lock:
        return threading.Lock()

    def _new_http(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.base_url, headers=self._client_headers, timeout=self.timeout, transport=self._transport
        )

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
        expect_fin: bool | None = None,
        expect_echo: bool | None = None,
    ) -> LiveSession:
        """Open the live data channel of ``session`` (a :class:`Session` or its id): a blocking
        :class:`~akool_lab.live.LiveSession` to ``say``, ``ask``, ``set_params``, ``interrupt``...

        The transport is picked from the credentials (the simulator's WebSocket, or LiveKit) unless given (the
        stage widget's browser transport for Agora/TRTC). ``mode`` is the avatar's mode if known (1 or 2). With
        ``close_session`` (default) closing the live session also closes the AKool session. ``expect_fin`` and
        ``expect_echo`` say whether the avatar ends its replies with ``fin`` and sends ``say()`` text back:
        ``None`` (default) learns it from the avatar's replies, so that a reply that lost its last chunks is
        incomplete rather than complete; ``False`` never expects it, as AKool's own clients; ``True`` always does
        (docs/conversation.md, rule 10).

        This is a thin call to :func:`akool_lab.live.connect_sync`, which does the work: the live layer sits below
        the REST layer and needs nothing of it but ``sessions.get``/``sessions.close`` (it never imports
        ``akool_lab.api``), so this call-time import is the one way down and no import cycle exists. It is made
        here, on use, rather than by the live layer registering itself, so that ``client.connect()`` works whether
        or not ``akool_lab.live`` was imported, and REST-only code never loads the live layer (nor websockets).
        ``tests/test_architecture.py`` allows exactly this call-time import and no other.
        """
        from akool_lab.live import connect_sync

        return connect_sync(
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

    def close_all(self) -> list[str]:
        """Close every session this client created and has not closed; returns the ids closed.

        A session the service reports as already closed or unknown counts as closed. Other failures are raised
        after every session has been tried.
        """
        closed: list[str] = self._run(self._close_all())
        return closed

    def _close_at_exit(self, session_id: str) -> None:
        if self._owns_http and self._http.is_closed:
            self._http = self._new_http()  # the user closed the connections, not the sessions
        self._run(self._close_session(session_id))

    # -- the driver ------------------------------------------------------------------------------------------------

    def _run(self, steps: Steps[T], raw: bool = False) -> Any:
        """Perform the steps of one call, blocking; its result (a :class:`RawResponse` with ``raw``)."""
        return Run(steps, raw).drive(self._perform)

    def _perform(self, step: Step) -> Any:
        if type(step) is Http:
            try:
                return self._http.request(
                    step.method, step.url, params=step.params, json=step.json, headers=step.headers
                )
            except httpx.TransportError as exc:
                return exc  # the call turns it into the library's error, or retries
        if type(step) is Sleep:
            return self._sleep(step.seconds)
        with self._token_lock:  # FETCH_TOKEN
            if self._token is None:
                self._token = Secret(self._run(self._call(self._token_request())))
        return None

    def _pages(self, pages: Pages[Any], raw: bool = False) -> Iterator[Any]:
        """Every item of every page (one :class:`RawResponse` per page with ``raw``)."""
        number = 1
        while True:
            result = self._run(self._call(pages.request(number)), raw)
            page: Page[Any] = result.parsed if raw else result
            yield from ([result] if raw else page)
            if not page.has_more:
                return
            number += 1
