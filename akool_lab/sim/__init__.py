"""The embedded AKool-compatible simulator: the same REST paths, envelopes, codes and v2 data-channel messages as
AKool's Live Avatar service, on loopback, with a latency model, faults, a credit ledger and ground truth.

- :func:`app` returns the Starlette (ASGI) app, to drive with ``httpx.ASGITransport`` and no port at all.
- :func:`start` serves it with uvicorn on a background thread and returns a :class:`SimServer`.
- ``akool-lab sim`` serves it until SIGINT/SIGTERM (:mod:`akool_lab.cli.sim`).

Extensions beyond AKool, all clearly marked: credentials carry ``ws_url`` and ``ws_token`` (a WebSocket carrying the
v2 messages as JSON text frames, one per frame), the stream type ``"websocket"``, and the admin routes under
``/_sim/``: ``GET /_sim/truth?session_id=``, ``GET /_sim/ledger``, ``GET /_sim/stats``, ``POST /_sim/stats/reset``,
``GET|POST /_sim/faults``, ``POST /_sim/sessions/{id}/user-speech``, ``WS /_sim/stream/{id}?token=``.
The fault grammar is documented in :mod:`akool_lab.sim._faults`; the profiles in :mod:`akool_lab.sim._latency`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from akool_lab.sim._faults import FaultPlan, FaultSpecError

if TYPE_CHECKING:  # pragma: no cover
    from starlette.applications import Starlette

    from akool_lab.sim._server import SimServer

__all__ = ["FaultPlan", "FaultSpecError", "SimServer", "app", "start"]


def app(
    *,
    api_key: str,
    seed: int = 0,
    profile: str = "fast",
    faults: str | FaultPlan | None = None,
    base_url: str | None = None,
) -> Starlette:
    """A new simulator as an ASGI app, with its own state.

    ``base_url`` is the public ``http://host:port`` used to build ``ws_url``; without it, the request's Host
    header is used. ``profile`` is ``fast`` (default), ``realistic``, ``degraded`` or ``zero``.
    """
    from akool_lab.sim._app import build_app

    return build_app(api_key=api_key, seed=seed, profile=profile, faults=faults, base_url=base_url)


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    seed: int = 0,
    profile: str = "fast",
    faults: str | FaultPlan | None = None,
) -> SimServer:
    """Serve a new simulator on a background thread and return its handle once it listens.

    ``api_key=None`` uses ``$AKOOL_SIM_API_KEY``, else a generated key (``handle.api_key``).

    >>> with start() as sim:                                   # doctest: +SKIP
    ...     print(sim.base_url)
    http://127.0.0.1:54321
    """
    from akool_lab.sim._server import start as _start

    return _start(host=host, port=port, api_key=api_key, seed=seed, profile=profile, faults=faults)


def __getattr__(name: str) -> object:
    if name == "SimServer":
        from akool_lab.sim._server import SimServer

        return SimServer
    raise AttributeError(f"module 'akool_lab.sim' has no attribute {name!r}")
