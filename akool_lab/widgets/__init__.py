"""ipywidgets panels to drive and measure AKool streaming avatars from a notebook, and the one-call dashboard.

>>> import akool_lab
>>> dash = akool_lab.lab()             # doctest: +SKIP
>>> dash                               # pick an avatar, Create, chat, change params, watch the latency

The panels can also be used one by one with your own client and session:

- :class:`SessionPanel`: create, follow (status chip, countdown) and close a session.
- :class:`ChatPanel`: the transcript as it streams in, Send (Ctrl+Enter), Interrupt, say / ask.
- :class:`ParamsPanel`: voice, language, mode, speed, background and advanced voice params; Apply sends changes.
- :class:`LatencyMonitor`: recent ttfr/ttfa, their histogram and percentiles, redrawn a few times a second.
- :class:`Dashboard`: all of the above, wired together.

Importing this package imports ipywidgets (``import akool_lab`` alone does not). It never imports the simulator.
"""

from __future__ import annotations

from typing import Any

from akool_lab.widgets._chat_panel import ChatPanel
from akool_lab.widgets._dashboard import Dashboard
from akool_lab.widgets._latency_monitor import LatencyMonitor
from akool_lab.widgets._params_panel import ParamsPanel
from akool_lab.widgets._session_panel import SessionPanel

__all__ = ["ChatPanel", "Dashboard", "LatencyMonitor", "ParamsPanel", "SessionPanel", "Stage"]


def __getattr__(name: str) -> Any:
    # The stage pulls in anywidget and the live layer: loaded when first used.
    if name == "Stage":
        from akool_lab.widgets.stage import Stage

        return Stage
    raise AttributeError(f"module 'akool_lab.widgets' has no attribute {name!r}")
