"""``akool_lab.lab()``: the whole dashboard in one call, on AKool or on the embedded simulator.

>>> import akool_lab
>>> dash = akool_lab.lab()               # doctest: +SKIP
>>> dash                                 # the last expression of a cell displays it

This module sits at the top, beside ``target``: it may start the simulator (through :mod:`akool_lab.target`),
which the widgets layer never does. It is private (``_lab``) so that the package attribute ``akool_lab.lab`` is
always the function, never a module that an import would bind over it.
"""

from __future__ import annotations

from typing import Any

from akool_lab.events import Recorder
from akool_lab.target import DEFAULT_PROFILE, resolve_target
from akool_lab.widgets import Dashboard

__all__ = ["Dashboard", "lab"]


def lab(
    target: str = "auto",
    *,
    profile: str = DEFAULT_PROFILE,
    seed: int = 0,
    faults: str | None = None,
    duration: int = 180,
    recorder: Recorder | None = None,
    **client_kwargs: Any,
) -> Dashboard:
    """Build the dashboard: session, stage, chat, params and latency panels, on one client.

    Args:
        target: ``"auto"`` (AKool when credentials are configured, else the embedded simulator), ``"sim"`` or
            ``"real"``.
        profile, seed, faults: the simulator's latency profile, seed and fault spec (``target="sim"``/``"auto"``).
        duration: the default session duration in seconds (short by default, to protect credits).
        recorder: where every event goes (a new :class:`~akool_lab.events.Recorder` by default).
        client_kwargs: passed on to :class:`~akool_lab.api.AkoolClient`.

    Returns:
        a :class:`~akool_lab.widgets.Dashboard`; ``.close()`` closes the session, the client and the simulator.
    """
    resolved = resolve_target(target, profile=profile, seed=seed, faults=faults)
    try:
        client = resolved.client(recorder=recorder if recorder is not None else Recorder(), **client_kwargs)
    except BaseException:
        resolved.close()
        raise
    try:
        return Dashboard(client, target=resolved, duration=duration)
    except BaseException:
        client.close()
        resolved.close()
        raise
