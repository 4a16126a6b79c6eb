"""How data-channel bytes travel: one small interface (:class:`Transport`) and its implementations.

- :class:`WebSocketTransport`: the embedded simulator's ``ws_url`` (kernel clock).
- ``LiveKitTransport``: a LiveKit room from Python (optional extra ``akool_lab[livekit]``, imported lazily).
- ``BrowserTransport``: the notebook's browser joins Agora/LiveKit/TRTC through the stage widget (browser clock).

:func:`select_transport` picks one for a session.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from akool_lab.transport._base import Frame, Transport

if TYPE_CHECKING:
    from akool_lab.transport._websocket import WebSocketTransport

__all__ = ["Frame", "Transport", "WebSocketTransport", "select_transport"]


def __getattr__(name: str) -> Any:
    # websockets is imported only when a WebSocket transport is actually used.
    if name == "WebSocketTransport":
        from akool_lab.transport._websocket import WebSocketTransport

        return WebSocketTransport
    raise AttributeError(f"module 'akool_lab.transport' has no attribute {name!r}")
