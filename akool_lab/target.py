"""Where sessions run: the real AKool service, or the embedded simulator when no key is configured.

This module sits at the top, beside ``cli``: it ties the REST client, live sessions and the simulator together,
which no layer may do on its own (a layer never imports the simulator).

>>> import akool_lab
>>> with akool_lab.start() as live:            # doctest: +SKIP
...     print(live.say("Hello!").timings)
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from akool_lab.errors import AkoolLabError, ValidationError
from akool_lab.redaction import Secret

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient, AsyncAkoolClient
    from akool_lab.events import Recorder
    from akool_lab.live import LiveSession
    from akool_lab.sim import SimServer

__all__ = ["DEFAULT_AVATAR", "Target", "has_real_credentials", "resolve_target", "start"]

#: The avatar of AKool's own demo, also in the simulator's catalogue.
DEFAULT_AVATAR = "dvp_Tristan_cloth2_1080P"
TARGETS = ("auto", "sim", "real")


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
    """

    kind: str
    base_url: str | None
    api_key: Secret | None
    sim: SimServer | None = field(default=None, repr=False)

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


def resolve_target(target: str = "auto", *, profile: str = "fast", seed: int = 0, faults: str | None = None) -> Target:
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
    return Target("sim", server.base_url, Secret(server.api_key), server)


def start(
    avatar_id: str | None = None,
    *,
    duration: int = 180,
    mode_type: int = 1,
    target: str = "auto",
    profile: str = "fast",
    seed: int = 0,
    recorder: Recorder | None = None,
    live_timeout: float = 120.0,
    **create_kwargs: Any,
) -> LiveSession:
    """Create a session, wait until it is live, connect, and return the :class:`~akool_lab.live.LiveSession`.

    On the embedded simulator when no API key is configured (``target="auto"``). Closing the returned session
    (or leaving its ``with`` block) closes the stream, the AKool session, the client and the simulator.
    """
    tgt = resolve_target(target, profile=profile, seed=seed)
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
