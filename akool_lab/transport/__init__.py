"""How data-channel bytes travel: one small interface (:class:`Transport`) and its implementations.

- :class:`WebSocketTransport`: the embedded simulator's ``ws_url`` (kernel clock).
- ``LiveKitTransport``: a LiveKit room from Python (optional extra ``akool_lab[livekit]``, imported lazily).
- ``BrowserTransport``: the notebook's browser joins Agora/LiveKit/TRTC through the stage widget (browser clock).

:func:`select_transport` picks one for a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from akool_lab.errors import ValidationError
from akool_lab.protocol.limits import PROVIDERS, WEBSOCKET
from akool_lab.transport._base import Frame, Transport
from akool_lab.transport._browser import (
    FAILURE_TEXT,
    BrowserSendError,
    BrowserTransport,
    blocking_call_would_hang,
    ensure_blocking_call_allowed,
)

if TYPE_CHECKING:
    from akool_lab.transport._websocket import WebSocketTransport
    from akool_lab.types import Session

__all__ = [
    "FAILURE_TEXT",
    "BrowserSendError",
    "BrowserTransport",
    "Frame",
    "Transport",
    "WebSocketTransport",
    "blocking_call_would_hang",
    "ensure_blocking_call_allowed",
    "select_transport",
]


def select_transport(session: Session, transport: Transport | None = None) -> Transport:
    """The transport for ``session``: ``transport`` when given, else the simulator's WebSocket when the
    credentials carry a ``ws_url``, else LiveKit from Python for a livekit session.

    Agora and TRTC data channels can only be reached from a browser: for those, show the session on the stage
    widget (``akool_lab.widgets.Stage``) and pass its ``BrowserTransport`` here.
    """
    if transport is not None:
        if not isinstance(transport, Transport):
            raise ValidationError("transport", f"got {type(transport).__name__}", allowed="a Transport instance")
        return transport
    creds = session.credentials
    if creds is None:
        raise ValidationError("session.credentials", "the session has no credentials to join its room")
    budget = PROVIDERS.get(session.stream_type or "", WEBSOCKET)
    if creds.ws_url:
        from akool_lab.transport._websocket import WebSocketTransport

        return WebSocketTransport(creds.ws_url, budget=budget)
    if creds.provider == "livekit":
        from akool_lab.transport._livekit import LiveKitTransport

        return LiveKitTransport.from_credentials(creds)
    raise ValidationError(
        "transport",
        f"a {creds.provider!r} session's data channel cannot be joined from Python",
        allowed="show the session on the stage widget (akool_lab.widgets.Stage) and pass stage.transport, "
        "or create the session with stream_type='livekit'",
    )


def __getattr__(name: str) -> Any:
    # websockets is imported only when a WebSocket transport is actually used.
    if name == "WebSocketTransport":
        from akool_lab.transport._websocket import WebSocketTransport

        return WebSocketTransport
    raise AttributeError(f"module 'akool_lab.transport' has no attribute {name!r}")
