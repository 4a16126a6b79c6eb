"""``SessionPanel``: create, follow and close a streaming session from controls.

>>> panel = SessionPanel(client)                  # doctest: +SKIP
>>> panel.on_live(lambda live: print("live:", live.session_id))
>>> panel                                         # pick an avatar, click Create

The panel never blocks the kernel: every REST call runs in a worker thread driven from the I/O loop, and the status
chip, the countdown and the error line are updated from there. No credential is ever put in a widget: the
:class:`~akool_lab.api.Session` (which holds the room credentials) stays in Python, in :attr:`SessionPanel.session`.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import html
import logging
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from akool_lab.api import AkoolClient, Session, SessionStatus
from akool_lab.errors import AkoolLabError, SessionFailedError, TimeoutError
from akool_lab.widgets._common import ErrorLine, background, in_thread

if TYPE_CHECKING:
    from akool_lab.live import LiveSession
    from akool_lab.transport import Transport

__all__ = ["DEFAULT_DURATION_S", "STREAM_TYPES", "SessionPanel"]

_log = logging.getLogger("akool_lab.widgets")

#: Default session length: short, so that a forgotten tab (e.g. on a public Binder) cannot run up credits.
DEFAULT_DURATION_S = 180
#: The stream types offered (label, value); ``""`` lets the service pick (AKool's default is Agora). Not ``None``:
#: ipywidgets 8 shows a Dropdown whose value is None as blank.
STREAM_TYPES: tuple[tuple[str, str], ...] = (
    ("service default", ""),
    ("agora", "agora"),
    ("livekit", "livekit"),
    ("trtc", "trtc"),
)
MODES: tuple[tuple[str, int], ...] = (("retelling (1): speaks your text", 1), ("dialogue (2): answers you", 2))
_AVATAR_FALLBACK = "dvp_Tristan_cloth2_1080P"

LiveCallback = Callable[["LiveSession"], None]


class SessionPanel(widgets.VBox):  # type: ignore[misc]
    """Controls for one streaming session: avatar, duration, mode, stream type, Create / Close, status, countdown.

    Args:
        client: the REST client (its recorder receives every event of the session and its stream).
        duration: the default duration in seconds (3 minutes).
        poll_interval: seconds between status polls while the session is queueing.
        live_timeout: how long to wait for the session to become live before giving up (seconds).
        transport_for: optional ``fn(session) -> Transport | None`` used to join the room (the stage widget's
            browser transport for Agora/TRTC); ``None`` (or no function) picks it from the session's credentials.
        label: what the session runs on, shown beside the title (``"simulated · profile realistic · seed 0"`` or
            ``"AKool"``; see :func:`~akool_lab.widgets._common.describe_target`).

    Attributes:
        session: the current :class:`~akool_lab.api.Session` (``None`` before Create); kept out of every trait.
        live: the connected :class:`~akool_lab.live.LiveSession` once the session is live, else ``None``.
        status: ``"idle"``, ``"creating"``, ``"queueing"``, ``"connecting"``, ``"live"``, ``"closing"``, ``"ended"``
            or ``"failed"``.
        errors: the panel's :class:`~akool_lab.widgets._common.ErrorLine`.
    """

    def __init__(
        self,
        client: AkoolClient,
        *,
        duration: int = DEFAULT_DURATION_S,
        poll_interval: float = 0.25,
        live_timeout: float = 120.0,
        transport_for: Callable[[Session], Transport | None] | None = None,
        label: str = "",
    ) -> None:
        self.client = client
        self.session: Session | None = None
        self.live: LiveSession | None = None
        self.status = "idle"
        self.errors = ErrorLine()
        self._poll_interval = poll_interval
        self._live_timeout = live_timeout
        self._transport_for = transport_for
        self._live_callbacks: list[LiveCallback] = []
        self._end_callbacks: list[Callable[[str], None]] = []
        self._lock = threading.Lock()
        self._follow: concurrent.futures.Future[None] | None = None
        self._ends_at: float | None = None  # time.monotonic() when the duration runs out
        self._closed = False
        self._wake: asyncio.Event | None = None  # set to cut the follow loop's one-second sleep short

        self.avatar = widgets.Dropdown(
            options=[("loading avatars…", "")],
            description="avatar",
            disabled=True,
            style=_WIDE,
            layout=widgets.Layout(width="380px"),
        ).add_class("akool-avatar")
        self.duration = widgets.BoundedIntText(
            value=duration, min=30, max=3600, step=30, description="duration (s)", style=_WIDE
        ).add_class("akool-duration")
        self.mode = widgets.Dropdown(options=list(MODES), value=1, description="mode", style=_WIDE).add_class(
            "akool-mode"
        )
        self.stream_type = widgets.Dropdown(
            options=list(STREAM_TYPES), value="", description="stream type", style=_WIDE
        ).add_class("akool-stream-type")
        self.create_button = widgets.Button(
            description="Create",
            button_style="success",
            icon="play",
            disabled=True,
            layout=widgets.Layout(width="90px"),
        ).add_class("akool-create")
        self.close_button = widgets.Button(
            description="Close", icon="stop", disabled=True, layout=widgets.Layout(width="90px")
        ).add_class("akool-close")
        self.close_all_button = widgets.Button(
            description="Close all my sessions",
            button_style="warning",
            tooltip="close every journaled session",
            layout=widgets.Layout(width="auto"),
        ).add_class("akool-close-all")
        self.chip = widgets.HTML(_chip("idle")).add_class("akool-status")
        self.countdown = widgets.Label("").add_class("akool-countdown")
        self.session_label = widgets.Label("").add_class("akool-session-id")

        self.create_button.on_click(lambda _b: self.create())
        self.close_button.on_click(lambda _b: self.close_session())
        self.close_all_button.on_click(lambda _b: self.close_all())

        super().__init__(
            [
                widgets.HTML(_title(label)).add_class("akool-session-title"),
                self.avatar,
                self.duration,
                self.mode,
                self.stream_type,
                widgets.HBox([self.create_button, self.close_button, self.close_all_button]),
                widgets.HBox([self.chip, self.countdown, self.session_label]),
                self.errors.widget,
            ],
            layout=widgets.Layout(padding="4px", min_width="360px", flex="0 1 420px"),
        )
        self.add_class("akool-session-panel")
        self._avatars_loaded = background(
            in_thread(self._load_avatars), errors=self.errors, what="loading avatars", on_done=self._show_avatars
        )

    # -- hooks ------------------------------------------------------------------------------------------------------

    def on_live(self, callback: LiveCallback) -> None:
        """Call ``callback(live)`` each time a session becomes live and connected (on the I/O thread: be quick).

        If a session is live already, ``callback`` is called at once.
        """
        self._live_callbacks.append(callback)
        live = self.live
        if live is not None:
            self._call(callback, live, "an on_live callback")

    def on_end(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(status)`` when the session ends or fails (``"ended"`` or ``"failed"``)."""
        self._end_callbacks.append(callback)

    # -- actions (kernel thread: they only submit work) ------------------------------------------------------------

    def create(self) -> concurrent.futures.Future[None] | None:
        """Create a session with the chosen settings and follow it until it ends (what the Create button does).

        Returns the future of the follow-up work (for tests), or ``None`` when nothing was started.
        """
        avatar_id = self.avatar.value
        if not avatar_id:
            self.errors.problem("pick an avatar first (the list is still loading, or failed to load)")
            return None
        with self._lock:
            if self.status in ("creating", "queueing", "connecting", "live", "closing"):
                self.errors.problem(f"a session is already {self.status}: close it before creating another")
                return None
            self._set_status("creating")
        self.errors.clear()
        settings: dict[str, Any] = {"duration": int(self.duration.value), "mode_type": int(self.mode.value)}
        if self.stream_type.value:
            settings["stream_type"] = self.stream_type.value
        self._follow = background(self._run(avatar_id, settings), errors=self.errors, what="session")
        self._follow.add_done_callback(self._after_run)
        return self._follow

    def close_session(self) -> concurrent.futures.Future[None]:
        """Close the live stream and the AKool session (what the Close button does)."""
        self._set_status("closing")
        return background(self._close(), errors=self.errors, what="closing the session")

    def close_all(self) -> concurrent.futures.Future[list[str]]:
        """Close this panel's session, every session the client created, and every journaled one still open."""

        async def close_everything() -> list[str]:
            await self._close()
            reaped = await in_thread(self.client.sessions.reap)
            closed = await in_thread(self.client.close_all)
            return sorted(set(reaped) | set(closed))

        def report(ids: list[str]) -> None:
            self.errors.note(f"closed {len(ids)} open session(s)" + (f": {', '.join(ids)}" if ids else ""))

        return background(close_everything(), errors=self.errors, what="closing all sessions", on_done=report)

    def close(self) -> None:
        """Close the session (blocking, with a bound) and the panel's widgets; for :meth:`Dashboard.close`."""
        self._closed = True
        with contextlib.suppress(concurrent.futures.TimeoutError, AkoolLabError):
            self.close_session().result(30)
        for child in self._all_widgets():
            child.close()
        super().close()

    # -- the work (I/O loop) -----------------------------------------------------------------------------------

    def _load_avatars(self) -> list[tuple[str, str]]:
        avatars = self.client.avatars.list()
        return [(f"{a.name or a.avatar_id} ({a.avatar_id})", a.avatar_id) for a in avatars]

    def _show_avatars(self, options: list[tuple[str, str]]) -> None:
        if not options:
            self.avatar.options = [("no streaming avatar available", "")]
            return
        self.avatar.options = options
        values = [value for _label, value in options]
        self.avatar.value = _AVATAR_FALLBACK if _AVATAR_FALLBACK in values else values[0]
        self.avatar.disabled = False
        self.create_button.disabled = self.status in ("creating", "queueing", "connecting", "live", "closing")

    async def _run(self, avatar_id: str, settings: dict[str, Any]) -> None:
        """Create → wait until live → connect → follow (countdown, status) until the session ends."""
        session = await in_thread(self.client.sessions.create, avatar_id, **settings)
        self.session = session
        self._ends_at = time.monotonic() + settings["duration"]
        self.session_label.value = f"session {session.id}"
        self._set_status("queueing")
        session = await self._wait_until_live(session.id)
        self.session = session
        self._set_status("connecting")
        transport = self._transport_for(session) if self._transport_for is not None else None
        live = await in_thread(self.client.connect, session, mode=settings["mode_type"], transport=transport)
        if self.status != "connecting":  # Close was clicked while we connected
            await in_thread(live.close)
            return
        self.live = live
        live.on("closed", lambda _reason: self._tick_now())
        self._set_status("live")
        for callback in list(self._live_callbacks):
            self._call(callback, live, "an on_live callback")
        await self._follow_until_end(session.id)

    async def _wait_until_live(self, session_id: str) -> Session:
        deadline = time.monotonic() + self._live_timeout
        while True:
            session = await in_thread(self.client.sessions.get, session_id)
            if session.status == SessionStatus.LIVE:
                return session
            if session.status in (SessionStatus.FAILED, SessionStatus.COMPLETED):
                what = "failed before it was live" if session.status == SessionStatus.FAILED else "ended early"
                raise SessionFailedError(session_id, int(session.status), what)
            if self.status == "closing":
                raise asyncio.CancelledError
            if time.monotonic() > deadline:
                raise TimeoutError(f"session {session_id} becoming live", self._live_timeout)
            self._update_countdown()
            await asyncio.sleep(self._poll_interval)

    async def _follow_until_end(self, session_id: str) -> None:
        """Tick the countdown every second and poll the status every few seconds until the session is over."""
        ticks = 0
        self._wake = asyncio.Event()
        while self.status == "live":
            self._update_countdown()
            live = self.live
            ticks += 1
            if ticks % 5 == 0 or (live is not None and live.closed):
                session = await in_thread(self.client.sessions.get, session_id)
                if session.status != SessionStatus.LIVE:
                    await self._finish("failed" if session.status == SessionStatus.FAILED else "ended")
                    return
                if live is not None and live.closed:
                    # The stream dropped but the session is still billed: close it rather than leave it open.
                    self.errors.problem(f"the stream closed ({live.avatar_stream.close_reason}); closing the session")
                    await self._close()
                    return
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 1.0)
            self._wake.clear()

    def _tick_now(self) -> None:
        if self._wake is not None:
            self._wake.set()

    async def _close(self) -> None:
        live, session = self.live, self.session
        if live is None and session is None:
            self._set_status("idle")
            return
        self._set_status("closing")
        self._tick_now()
        self.live = None
        if live is not None:
            await in_thread(live.close)  # closes the AKool session too
        elif session is not None:
            await in_thread(self.client.sessions.close, session.id)
        await self._finish("ended")

    async def _finish(self, status: str) -> None:
        live, self.live = self.live, None
        if live is not None and not live.closed:
            with contextlib.suppress(AkoolLabError):
                await in_thread(live.close)
        self._ends_at = None
        self.countdown.value = ""
        for callback in list(self._end_callbacks):
            self._call(callback, status, "an on_end callback")
        # Last, so that a status of "ended" means the panels attached to the session have let go of it.
        self._set_status(status)

    def _after_run(self, future: concurrent.futures.Future[None]) -> None:
        """When the follow-up work failed (create refused, session failed...), the panel shows it as failed."""
        if future.cancelled() or future.exception() is None:
            return
        exc = future.exception()
        if isinstance(exc, asyncio.CancelledError):
            return
        self.live = None
        self._ends_at = None
        self.countdown.value = ""
        created = self.session is not None
        self._set_status("failed" if created else "idle")
        if created and not isinstance(exc, SessionFailedError):
            # Created but never connected: it still costs credits, so close it (the journal keeps it otherwise).
            session_id = self.session.id if self.session else ""
            background(
                in_thread(self.client.sessions.close, session_id), errors=self.errors, what="closing the session"
            )

    # -- display ---------------------------------------------------------------------------------------------------

    def _set_status(self, status: str) -> None:
        self.status = status
        self.chip.value = _chip(status)
        busy = status in ("creating", "queueing", "connecting", "live", "closing")
        self.create_button.disabled = busy or not self.avatar.value or self._closed
        self.close_button.disabled = status not in ("queueing", "connecting", "live")
        for control in (self.duration, self.mode, self.stream_type):
            control.disabled = busy

    def _update_countdown(self) -> None:
        if self._ends_at is None:
            self.countdown.value = ""
            return
        left = max(0, round(self._ends_at - time.monotonic()))
        self.countdown.value = f"{left // 60}:{left % 60:02d} left"

    def _call(self, callback: Callable[[Any], None], arg: Any, what: str) -> None:
        try:
            callback(arg)
        except Exception as exc:
            self.errors.error(exc, what)

    def _all_widgets(self) -> list[widgets.Widget]:
        return [
            self.avatar,
            self.duration,
            self.mode,
            self.stream_type,
            self.create_button,
            self.close_button,
            self.close_all_button,
            self.chip,
            self.countdown,
            self.session_label,
            self.errors.widget,
        ]


_WIDE = {"description_width": "90px"}


def _chip(status: str) -> str:
    return f'<span class="akool-chip akool-chip-{status}">{html.escape(status)}</span>'


def _title(label: str) -> str:
    note = f' <span style="font-weight:400;color:#777;font-size:12px">· {html.escape(label)}</span>' if label else ""
    return f'<div class="akool-panel-title">Session{note}</div>'
