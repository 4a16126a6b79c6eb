"""The embedded AKool-compatible simulator: the same REST paths, envelopes, codes and v2 data-channel messages as
AKool's Live Avatar service, on loopback, with a latency model, faults, a credit ledger and ground truth.

- :func:`app` returns the Starlette (ASGI) app, to drive with ``httpx.ASGITransport`` and no port at all.
- :func:`start` serves it with uvicorn on a background thread and returns a :class:`SimServer`.
- ``akool-lab sim`` serves it until SIGINT/SIGTERM (:mod:`akool_lab.cli.sim`).

Extensions beyond AKool, all clearly marked: credentials carry ``ws_url`` and ``ws_token`` (a WebSocket carrying the
v2 messages as JSON text frames, one per frame), the stream type ``"websocket"``, and the admin routes under
``/_sim/``: ``GET /_sim/truth?session_id=``, ``GET /_sim/ledger``, ``GET /_sim/stats``, ``POST /_sim/stats/reset``,
``GET|POST /_sim/faults``, ``POST /_sim/sessions/{id}/user-speech``, ``GET|POST /_sim/dialect``,
``GET|POST /_sim/sessions/{id}/dialect``, ``WS /_sim/stream/{id}?token=``.
The fault grammar is documented in :mod:`akool_lab.sim._faults`; the profiles in :mod:`akool_lab.sim._latency`;
the limits the data channel enforces in :mod:`akool_lab.sim._limits`.

Dialects (:data:`DIALECTS`): how the avatar shapes what it sends, each a variant that AKool's official clients
accept (the React demo, the JS SDK, the PyPI package), combinable with commas (``dialect="no-idx,ack-cmd"``):

- ``documented`` (default): the documented protocol: reply chunks with ``idx`` and ``fin``, acks of
  ``type: "command"`` carrying the command's ``mid``;
- ``no-idx``: reply chunks without ``idx``; ``no-fin``: with ``idx`` but never ``fin`` (a reply ends at its
  ``audio_end``);
- ``no-echo``: in mode 1 the avatar speaks (``audio_start``/``audio_end``) but sends no text back;
- ``ack-no-mid``: acks without the command's ``mid`` (every other one with a fresh ``mid``); ``ack-cmd``: acks of
  ``type: "cmd"``; ``ack-type-ack``: ``type: "ack"`` with ``pld.original_mid`` (the PyPI package's style);
- ``greeting``: a knowledge-base style greeting (bot text and audio) when a client joins, before any message;
- ``trtc-demo-names``: TRTC credentials as ``trtc_app_id/trtc_room_id/trtc_user_id/trtc_user_sig``.

Set it for the whole simulator (``start(dialect=...)``, ``akool-lab sim --dialect``, ``$AKOOL_SIM_DIALECT``) or per
session (``SimServer.set_dialect(spec, session_id)``, ``POST /_sim/sessions/{id}/dialect``). The details of each are
in :mod:`akool_lab.sim._dialects`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from akool_lab.sim._dialects import DIALECTS, Dialect, DialectError
from akool_lab.sim._dialects import help_text as dialects_help
from akool_lab.sim._faults import FaultPlan, FaultSpecError

if TYPE_CHECKING:  # pragma: no cover
    from starlette.applications import Starlette

    from akool_lab.sim._server import SimServer

__all__ = [
    "DIALECTS",
    "Dialect",
    "DialectError",
    "FaultPlan",
    "FaultSpecError",
    "SimServer",
    "app",
    "dialects_help",
    "start",
]


def app(
    *,
    api_key: str,
    seed: int = 0,
    profile: str = "fast",
    faults: str | FaultPlan | None = None,
    base_url: str | None = None,
    dialect: str | Dialect | None = None,
) -> Starlette:
    """A new simulator as an ASGI app, with its own state.

    ``base_url`` is the public ``http://host:port`` used to build ``ws_url``; without it, the request's Host
    header is used. ``profile`` is ``fast`` (default), ``realistic``, ``degraded`` or ``zero``. ``dialect`` is one
    of :data:`DIALECTS` or several joined with commas (``None``: ``documented``); an unknown one raises
    :class:`DialectError` naming the allowed values.
    """
    from akool_lab.sim._app import build_app

    return build_app(api_key=api_key, seed=seed, profile=profile, faults=faults, base_url=base_url, dialect=dialect)


def start(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    api_key: str | None = None,
    seed: int = 0,
    profile: str = "fast",
    faults: str | FaultPlan | None = None,
    dialect: str | Dialect | None = None,
) -> SimServer:
    """Serve a new simulator on a background thread and return its handle once it listens.

    ``api_key=None`` uses ``$AKOOL_SIM_API_KEY``, else a generated key (``handle.api_key``). ``dialect=None`` uses
    ``$AKOOL_SIM_DIALECT``, else ``documented`` (see :data:`DIALECTS`).

    >>> with start() as sim:                                   # doctest: +SKIP
    ...     print(sim.base_url)
    http://127.0.0.1:54321
    """
    from akool_lab.sim._server import start as _start

    return _start(host=host, port=port, api_key=api_key, seed=seed, profile=profile, faults=faults, dialect=dialect)


def __getattr__(name: str) -> object:
    if name == "SimServer":
        from akool_lab.sim._server import SimServer

        return SimServer
    raise AttributeError(f"module 'akool_lab.sim' has no attribute {name!r}")
