"""Run the simulator with uvicorn on a background thread (its own event loop): :func:`start` and :class:`SimServer`."""

from __future__ import annotations

import asyncio
import ctypes
import math
import os
import secrets
import selectors
import socket
import sys
import threading
import time
from types import TracebackType
from typing import Any

import httpx
import uvicorn

from akool_lab.redaction import Secret
from akool_lab.sim._app import build_app
from akool_lab.sim._dialects import Dialect
from akool_lab.sim._faults import FaultPlan
from akool_lab.sim.media._routes import shutdown_media

__all__ = ["SimServer", "resolve_api_key", "resolve_dialect", "start"]

#: How long :func:`start` waits for the server to listen, and :meth:`SimServer.stop` for it to finish.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 10.0
#: prctl(2) option: the thread's timer slack in nanoseconds.
PR_SET_TIMERSLACK = 29


def resolve_dialect(dialect: str | Dialect | None) -> Dialect:
    """The dialect to speak: the given one, else ``$AKOOL_SIM_DIALECT``, else ``documented``.

    Raises :class:`~akool_lab.sim._dialects.DialectError` naming the allowed values.
    """
    if dialect is None or dialect == "":
        dialect = os.environ.get("AKOOL_SIM_DIALECT") or None
    return Dialect.parse(dialect)


def resolve_api_key(api_key: str | None) -> tuple[str, bool]:
    """The key to use: the given one, else ``$AKOOL_SIM_API_KEY``, else a generated one (then ``True``)."""
    if api_key:
        return api_key, False
    from_env = os.environ.get("AKOOL_SIM_API_KEY")
    if from_env:
        return from_env, False
    return "sim-" + secrets.token_urlsafe(24), True


class PreciseSelector(selectors.DefaultSelector):
    """The default selector, but sub-millisecond timeouts are honoured.

    epoll (and poll) sleep in whole milliseconds, rounded up, so a timer due in 0.3 ms would fire ~0.7 ms late and
    every emit would be up to 1 ms late. Here the whole milliseconds are waited in the selector and the remainder
    with ``time.sleep`` (nanosecond clock, releases the GIL), then the selector is polled without waiting. I/O that
    arrives during that last sub-millisecond stretch is handled right after it.
    """

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        if timeout is None or timeout <= 0:
            return super().select(timeout)
        deadline = time.monotonic() + timeout
        whole = math.floor(timeout * 1000) / 1000
        if whole > 0:
            events: list[tuple[selectors.SelectorKey, int]] = super().select(whole)
            if events:
                return events
        remaining = deadline - time.monotonic()
        if remaining > 0:
            time.sleep(remaining)
        return super().select(0)


def _tight_timer_slack() -> None:
    """Ask Linux to wake this thread on time: its timer slack (50 µs by default) is added to every sleep."""
    if sys.platform != "linux":
        return
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_TIMERSLACK, 1, 0, 0, 0)  # 1 ns, the least; 0 would mean "back to the default"
    except (OSError, AttributeError):  # pragma: no cover - no libc with prctl: keep the default slack
        pass


def run_server(server: uvicorn.Server, sockets: list[socket.socket]) -> None:
    """Serve on a fresh event loop built on :class:`PreciseSelector` (blocks until the server exits).

    Runs on the server's own thread, whose timer slack is set to the least (Linux): timers then fire ~50 µs earlier.
    """
    _tight_timer_slack()
    loop = asyncio.SelectorEventLoop(PreciseSelector())
    try:
        loop.run_until_complete(server.serve(sockets=sockets))
        sim_state = getattr(getattr(server.config.app, "state", None), "sim", None)
        if sim_state is not None:  # the WebRTC peers live on this loop: close them before it goes
            loop.run_until_complete(shutdown_media(sim_state))
    finally:
        loop.close()


class SimServer:
    """A running simulator. ``base_url`` is ``http://HOST:PORT``; the key is kept as a :class:`Secret`.

    >>> with start() as sim:                                   # doctest: +SKIP
    ...     httpx.get(sim.base_url + "/api/open/v3/language/list", headers={"x-api-key": sim.api_key})
    """

    def __init__(self, server: uvicorn.Server, thread: threading.Thread, sock: socket.socket, key: str) -> None:
        self._server = server
        self._thread = thread
        self._socket = sock
        self._key = Secret(key)
        host, port = sock.getsockname()[:2]
        self.host: str = host
        self.port: int = port
        self.base_url = f"http://{host}:{port}"
        self._stopped = False

    @property
    def api_key(self) -> str:
        """The API key clients must send (``x-api-key``)."""
        return self._key.reveal()

    def __repr__(self) -> str:
        state = "stopped" if self._stopped else "running"
        return f"SimServer(base_url={self.base_url!r}, api_key={self._key!r}, {state})"

    def stop(self) -> None:
        """Stop serving, close every connection and join the thread; calling it again does nothing."""
        if self._stopped:
            return
        self._stopped = True
        self._server.should_exit = True
        self._thread.join(STOP_TIMEOUT_S)
        self._socket.close()

    def __enter__(self) -> SimServer:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # --- admin calls over HTTP ------------------------------------------------------------------------------

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        response = httpx.request(
            method, self.base_url + path, headers={"x-api-key": self.api_key}, timeout=10.0, **kwargs
        )
        response.raise_for_status()
        body = response.json()
        if body.get("code") != 1000:
            raise RuntimeError(f"simulator answered {body.get('code')} {body.get('msg')} to {method} {path}")
        return body.get("data")

    def truth(self, session_id: str) -> dict[str, Any]:
        """The ground truth of a session (``GET /_sim/truth``)."""
        data: dict[str, Any] = self._call("GET", "/_sim/truth", params={"session_id": session_id})
        return data

    def ledger(self) -> dict[str, Any]:
        """The credit ledger (``GET /_sim/ledger``)."""
        data: dict[str, Any] = self._call("GET", "/_sim/ledger")
        return data

    def stats(self) -> dict[str, Any]:
        """Scheduling precision (``GET /_sim/stats``)."""
        data: dict[str, Any] = self._call("GET", "/_sim/stats")
        return data

    def set_faults(self, spec: str | FaultPlan | dict[str, Any] | None) -> dict[str, Any]:
        """Replace the fault plan (a spec string, a plan, a JSON object, or ``None`` for none)."""
        if isinstance(spec, FaultPlan):
            body: dict[str, Any] = {"spec": spec.spec}
        elif isinstance(spec, dict):
            body = spec
        else:
            body = {"spec": spec or ""}
        data: dict[str, Any] = self._call("POST", "/_sim/faults", json=body)
        return data

    def dialect(self, session_id: str | None = None) -> str:
        """The dialect of a session, or (without ``session_id``) of sessions created from now on."""
        path = "/_sim/dialect" if session_id is None else f"/_sim/sessions/{session_id}/dialect"
        return str(self._call("GET", path)["dialect"])

    def set_dialect(self, dialect: str | list[str], session_id: str | None = None) -> str:
        """Change the dialect of a session, or (without ``session_id``) of sessions created from now on.

        Returns the canonical spec; an unknown name raises ``RuntimeError`` with the simulator's message.
        """
        path = "/_sim/dialect" if session_id is None else f"/_sim/sessions/{session_id}/dialect"
        return str(self._call("POST", path, json={"dialect": dialect})["dialect"])

    def user_speech(self, session_id: str, text: str) -> str:
        """Make the avatar hear ``text`` from the user; returns the ``mid`` of the user chunks."""
        data = self._call("POST", f"/_sim/sessions/{session_id}/user-speech", json={"text": text})
        return str(data["mid"])


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
    """Serve a new simulator on a background thread; returns once it listens (``port=0`` picks a free port)."""
    key, _generated = resolve_api_key(api_key)
    spoken = resolve_dialect(dialect)
    # IPPROTO_TCP explicitly: asyncio enables TCP_NODELAY only on sockets that say so, and without it every
    # response written in two parts waits ~40 ms for the client's delayed ACK (Nagle's algorithm).
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    bound_host, bound_port = sock.getsockname()[:2]
    shown_host = f"[{bound_host}]" if ":" in bound_host else bound_host
    application = build_app(
        api_key=key,
        seed=seed,
        profile=profile,
        faults=faults,
        base_url=f"http://{shown_host}:{bound_port}",
        dialect=spoken,
    )
    config = uvicorn.Config(
        application,
        log_level="warning",
        lifespan="off",
        http="h11",
        ws="websockets-sansio",
        ws_ping_interval=None,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    failed: list[BaseException] = []

    def serve() -> None:
        try:
            run_server(server, [sock])
        except BaseException as exc:  # pragma: no cover - reported to the caller of start()
            failed.append(exc)

    thread = threading.Thread(target=serve, name=f"akool-sim-{bound_port}", daemon=True)
    thread.start()
    handle = SimServer(server, thread, sock, key)
    handle.base_url = f"http://{shown_host}:{bound_port}"
    for _ in range(int(START_TIMEOUT_S / 0.005)):
        if server.started or failed or not thread.is_alive():
            break
        threading.Event().wait(0.005)
    if not server.started:
        handle.stop()
        raise RuntimeError(f"the simulator did not start on {host}:{port}: {failed[0] if failed else 'timeout'}")
    return handle
