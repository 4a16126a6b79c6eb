"""Where sessions run: the real AKool service, or the embedded simulator when no key is configured.

This module sits below the live layer and above metrics, widgets and the command line (``docs/architecture.md``):
it ties the REST client, live sessions and the simulator together, which no layer below it may do (none of them
imports the simulator).

>>> import akool_lab
>>> with akool_lab.start() as live:            # doctest: +SKIP
...     print(live.say("Hello!").timings)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from akool_lab.errors import AkoolLabError, ValidationError
from akool_lab.redaction import Secret

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient, AsyncAkoolClient
    from akool_lab.events import Recorder
    from akool_lab.live import LiveSession
    from akool_lab.sim import SimServer

__all__ = [
    "DEFAULT_AVATAR",
    "DEFAULT_PROFILE",
    "Target",
    "choose_stream_type",
    "describe_target",
    "has_real_credentials",
    "resolve_target",
    "start",
]

#: The avatar of AKool's own demo, also in the simulator's catalogue.
DEFAULT_AVATAR = "dvp_Tristan_cloth2_1080P"
TARGETS = ("auto", "sim", "real")
#: The simulator's profile wherever a person meets it (``start``, ``lab``, ``akool-lab demo``/``run``): timings
#: that look like the real service's (see ``docs/realistic-profile.md``). ``fast``/``zero`` are for tests/benchmarks.
DEFAULT_PROFILE = "realistic"


def has_real_credentials() -> bool:
    """Whether AKool credentials are configured in the environment (``AKOOL_API_KEY`` or client id + secret)."""
    return bool(os.environ.get("AKOOL_API_KEY")) or bool(
        os.environ.get("AKOOL_CLIENT_ID") and os.environ.get("AKOOL_CLIENT_SECRET")
    )


@dataclass
class Target:
    """A resolved target: where to send requests and with which key.

    Attributes:
        kind: ``"sim"`` (the embedded simulator, started for this target) or ``"real"`` (AKool).
        base_url: the REST base URL.
        api_key: the key (a :class:`Secret`; ``None`` for a real target using client id/secret from the env).
        sim: the running simulator when ``kind == "sim"`` (stopped by :meth:`close`).
        profile, seed: the simulator's latency profile and seed (``None`` for AKool).
    """

    kind: str
    base_url: str | None
    api_key: Secret | None
    sim: SimServer | None = field(default=None, repr=False)
    profile: str | None = None
    seed: int | None = None

    @property
    def label(self) -> str:
        """What the numbers measured on this target are, in words (see :func:`describe_target`)."""
        return describe_target(self)

    def client(self, **kwargs: Any) -> AkoolClient:
        """A sync :class:`~akool_lab.api.AkoolClient` for this target."""
        from akool_lab.api import AkoolClient

        return AkoolClient(self.api_key.reveal() if self.api_key else None, base_url=self.base_url, **kwargs)

    def async_client(self, **kwargs: Any) -> AsyncAkoolClient:
        """An async :class:`~akool_lab.api.AsyncAkoolClient` for this target."""
        from akool_lab.api import AsyncAkoolClient

        return AsyncAkoolClient(self.api_key.reveal() if self.api_key else None, base_url=self.base_url, **kwargs)

    def close(self) -> None:
        """Stop the simulator this target started (idempotent; nothing to do for a real target)."""
        if self.sim is not None:
            self.sim.stop()

    def __enter__(self) -> Target:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_target(target: Any) -> str:
    """The label that says what measured numbers are: ``"simulated · profile realistic · seed 0"`` or ``"AKool"``.

    ``target``: a :class:`Target`, the ``target`` mapping of a saved run's ``params.json`` (``kind``, ``profile``,
    ``seed``), or ``None`` (``"unknown target"``). Every place that shows numbers (the CLI's summary, report.html,
    params.json, the dashboard's banner, the notebooks) uses this one function, so they all say the same.

    >>> describe_target({"kind": "sim", "profile": "realistic", "seed": 0})
    'simulated · profile realistic · seed 0'
    >>> describe_target({"kind": "real"})
    'AKool'
    """
    if target is None:
        return "unknown target"
    if isinstance(target, Mapping):
        kind, profile, seed = target.get("kind"), target.get("profile"), target.get("seed")
    else:
        kind, profile, seed = (getattr(target, name, None) for name in ("kind", "profile", "seed"))
    if kind == "real":
        return "AKool"
    if kind == "sim":
        parts = ["simulated"]
        if profile:
            parts.append(f"profile {profile}")
        if seed is not None:
            parts.append(f"seed {seed}")
        return " · ".join(parts)
    return f"{kind or 'unknown'} target"


#: Stream types whose data channel Python itself can join (LiveKit, with the ``livekit`` extra).
PYTHON_STREAM_TYPES = ("livekit",)


def _livekit_installed() -> bool:
    import importlib.util

    try:
        return importlib.util.find_spec("livekit.rtc") is not None
    except ModuleNotFoundError:  # no ``livekit`` package at all
        return False


def choose_stream_type(kind: str, requested: str | None = None) -> str | None:
    """The stream type to create sessions with, so that Python can reach their data channel; checked before any
    session is created (a session costs credits as soon as it exists).

    On AKool (``kind == "real"``) only a LiveKit session's data channel can be joined from Python (Agora's and
    TRTC's exist only in a browser: use the notebook's stage widget for those), so ``requested=None`` chooses
    ``"livekit"``; the ``livekit`` package must be installed (``pip install 'akool-lab[livekit]'``). On the
    simulator every stream type carries its WebSocket, so the service's default (``None``) is kept.

    Raises:
        ValidationError: naming ``stream_type`` and what to install or pass.
    """
    if kind != "real":
        return requested
    if requested is not None and requested not in PYTHON_STREAM_TYPES:
        raise ValidationError(
            "stream_type",
            f"a {requested!r} session's data channel cannot be joined from Python, so its messages could not be "
            "sent or measured (the session would cost credits for nothing)",
            allowed="'livekit' (pip install 'akool-lab[livekit]'), or show the session on the notebook's stage "
            "widget (akool_lab.widgets.Stage) and connect through stage.transport",
        )
    if not _livekit_installed():
        raise ValidationError(
            "stream_type",
            "sessions on AKool are joined from Python through LiveKit, and the 'livekit' package is not installed "
            "(nothing was created)",
            allowed="pip install 'akool-lab[livekit]', or use the notebook's stage widget (akool_lab.widgets.Stage) "
            "for an Agora or TRTC session",
        )
    return "livekit"


def resolve_target(
    target: str = "auto", *, profile: str = DEFAULT_PROFILE, seed: int = 0, faults: str | None = None
) -> Target:
    """Resolve ``target``: ``"real"`` (AKool, needs credentials), ``"sim"`` (start the embedded simulator) or
    ``"auto"`` (real when credentials are configured, else the simulator)."""
    if target not in TARGETS:
        raise ValidationError("target", f"got {target!r}", allowed=", ".join(TARGETS))
    if target == "real" or (target == "auto" and has_real_credentials()):
        if not has_real_credentials():
            raise ValidationError(
                "target",
                "'real' needs AKool credentials",
                allowed="set AKOOL_API_KEY (or AKOOL_CLIENT_ID and AKOOL_CLIENT_SECRET) in the environment, "
                "e.g. os.environ['AKOOL_API_KEY'] = getpass.getpass()",
            )
        key = os.environ.get("AKOOL_API_KEY")
        return Target("real", os.environ.get("AKOOL_BASE_URL"), Secret(key) if key else None)
    from akool_lab import sim

    server = sim.start(profile=profile, seed=seed, faults=faults)
    return Target("sim", server.base_url, Secret(server.api_key), server, profile=profile, seed=seed)


def start(
    avatar_id: str | None = None,
    *,
    duration: int = 180,
    mode_type: int = 1,
    target: str = "auto",
    profile: str = DEFAULT_PROFILE,
    seed: int = 0,
    recorder: Recorder | None = None,
    live_timeout: float = 120.0,
    **create_kwargs: Any,
) -> LiveSession:
    """Create a session, wait until it is live, connect, and return the :class:`~akool_lab.live.LiveSession`.

    On the embedded simulator (profile ``realistic`` by default) when no API key is configured (``target="auto"``);
    on AKool, the session is a LiveKit one joined from Python (see :func:`choose_stream_type`, checked before the
    session is created). Closing the returned session
    (or leaving its ``with`` block) closes the stream, the AKool session, the client and the simulator.
    """
    tgt = resolve_target(target, profile=profile, seed=seed)
    try:
        stream_type = choose_stream_type(tgt.kind, create_kwargs.pop("stream_type", None))
    except BaseException:
        tgt.close()
        raise
    if stream_type is not None:
        create_kwargs["stream_type"] = stream_type
    client = None
    session_id: str | None = None
    try:
        client = tgt.client(recorder=recorder)
        session = client.sessions.create(
            avatar_id or DEFAULT_AVATAR, duration=duration, mode_type=mode_type, **create_kwargs
        )
        session_id = session.id
        session = client.sessions.wait_until_live(session.id, timeout=live_timeout)
        live = client.connect(session, mode=mode_type)
    except BaseException:
        if client is not None:
            if session_id is not None:
                # The original error is what the caller needs; if this close fails too, the journal keeps the
                # session for reap().
                with contextlib.suppress(AkoolLabError):
                    client.sessions.close(session_id)
            client.close()
        tgt.close()
        raise
    owned_client = client

    def cleanup() -> None:
        owned_client.close()
        tgt.close()

    live._on_close = cleanup
    return live
