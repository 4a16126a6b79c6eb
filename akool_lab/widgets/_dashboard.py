"""``Dashboard``: every panel in one box, wired together (what :func:`akool_lab.lab` returns).

>>> dash = Dashboard(client)                      # doctest: +SKIP
>>> dash                                          # Create a session; chat and params attach when it is live
>>> dash.close()                                  # closes the session, the panels and the client

The dashboard knows nothing of the simulator: it is given a client (and optionally the target that owns it, to close
with it). :func:`akool_lab.lab` picks the target.
"""

from __future__ import annotations

import contextlib
import html
import importlib
import logging
from typing import TYPE_CHECKING, Any

import ipywidgets as widgets

from akool_lab.errors import AkoolLabError
from akool_lab.widgets._chat_panel import ChatPanel
from akool_lab.widgets._common import PANEL_CSS, describe_target
from akool_lab.widgets._latency_monitor import LatencyMonitor
from akool_lab.widgets._params_panel import ParamsPanel
from akool_lab.widgets._session_panel import SessionPanel

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient, Session
    from akool_lab.live import LiveSession
    from akool_lab.transport import Transport

__all__ = ["Dashboard", "make_stage"]

_log = logging.getLogger("akool_lab.widgets")


def make_stage() -> widgets.Widget:
    """The avatar stage (``akool_lab.widgets.stage.Stage``) when it is available, else a placeholder box."""
    try:
        module = importlib.import_module("akool_lab.widgets.stage")
        stage: widgets.Widget = module.Stage()
        return stage
    except ImportError:
        pass  # not built (yet): the placeholder keeps the layout
    except Exception:  # a stage that fails to build must not take the rest of the dashboard down
        _log.exception("the avatar stage could not be built; showing a placeholder")
    return widgets.HTML(
        '<div style="display:flex;align-items:center;justify-content:center;height:100%;color:#777">'
        "avatar stage (video appears here)</div>",
        layout=widgets.Layout(
            width="360px", min_height="240px", border="1px dashed #bbb", margin="4px", flex="0 0 auto"
        ),
    ).add_class("akool-stage-placeholder")


class Dashboard(widgets.VBox):  # type: ignore[misc]
    """Session, stage, chat, params and latency panels in one box.

    When the session becomes live, the chat and params panels (and the stage, when it has an ``attach(live)``
    method) are attached to it.

    Args:
        client: the REST client for every panel (its ``recorder`` feeds the latency monitor).
        target: what owns the client, closed by :meth:`close` (an :class:`akool_lab.target.Target`); optional.
        stage: the stage widget; by default :func:`make_stage`.
        duration: the session panel's default duration in seconds.

    Attributes:
        session_panel, stage, chat, params, monitor: the panels.
        client, target: as given.
    """

    def __init__(
        self, client: AkoolClient, *, target: Any = None, stage: widgets.Widget | None = None, duration: int = 180
    ) -> None:
        self.client = client
        self.target = target
        self.stage = stage if stage is not None else make_stage()
        #: What the numbers on this dashboard are ("simulated · profile realistic · seed 0", or "AKool").
        self.label = describe_target(target)
        self.session_panel = SessionPanel(
            client, duration=duration, transport_for=self._transport_for, label=self.label
        )
        self.chat = ChatPanel()
        self.params = ParamsPanel(None, client)
        self.monitor = LatencyMonitor(client.recorder)
        self.session_panel.on_live(self._on_live)
        self.session_panel.on_end(lambda _status: self._on_end())
        super().__init__(
            [
                widgets.HTML(PANEL_CSS + _banner(getattr(target, "kind", None), self.label)).add_class("akool-banner"),
                widgets.HBox([self.session_panel, self.stage], layout=widgets.Layout(flex_flow="row wrap")),
                widgets.HBox([self.chat, self.params], layout=widgets.Layout(flex_flow="row wrap")),
                self.monitor,
            ]
        )
        self.add_class("akool-dashboard")

    @property
    def live(self) -> LiveSession | None:
        """The live session, once connected."""
        return self.session_panel.live

    def _transport_for(self, session: Session) -> Transport | None:
        """The stage's browser transport for a real Agora/TRTC room; ``None`` (pick from the credentials) otherwise."""
        credentials = session.credentials
        show = getattr(self.stage, "show", None)
        if credentials is None or credentials.ws_url or credentials.provider == "livekit" or not callable(show):
            # The simulator's WebSocket and LiveKit are joined from Python; without a stage that can show a
            # session, client.connect explains what to do instead.
            return None
        show(session)
        transport: Transport = self.stage.transport
        return transport

    def _on_live(self, live: LiveSession) -> None:
        self.chat.attach(live)
        self.params.attach(live)
        attach = getattr(self.stage, "attach", None)
        if callable(attach):
            attach(live)

    def _on_end(self) -> None:
        self.chat.detach()
        self.params.detach()

    def close(self) -> None:
        """Close the session, every panel, the client and the target (the simulator, if it started one)."""
        try:
            self.session_panel.close()
            with contextlib.suppress(AkoolLabError):
                self.client.close_all()
        finally:
            for panel in (self.chat, self.params, self.monitor, self.stage):
                panel.close()
            self.client.close()
            if self.target is not None:
                self.target.close()
            super().close()


def _banner(kind: str | None, label: str) -> str:
    """The line above the panels: what the numbers are, and what that means for the person clicking."""
    if kind == "sim":
        what = (
            f"<b>{html.escape(label)}</b>: the embedded simulator on this machine; every time shown comes from "
            "its latency model, not from AKool"
        )
    elif kind == "real":
        what = f"<b>{html.escape(label)}</b>: the real service; a session costs credits until it is closed"
    else:
        what = html.escape(label)
    return f'<div class="akool-banner-text" style="font-size:12px;color:#555">akool_lab · {what}</div>'
