"""The simulator's data channel: one WebSocket per session, one v2 message per JSON text frame."""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from collections.abc import AsyncIterator, Callable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI
from websockets.frames import Frame as WsFrame
from websockets.frames import Opcode
from websockets.protocol import State

from akool_lab.errors import ConnectionError, StreamClosedError, TimeoutError, ValidationError
from akool_lab.events import KERNEL_CLOCK
from akool_lab.protocol.limits import WEBSOCKET, ProviderBudget
from akool_lab.redaction import redact, scrub
from akool_lab.transport._base import Frame, Transport

__all__ = ["WebSocketTransport", "display_url"]

_log = logging.getLogger("akool_lab.transport")


def display_url(url: str) -> str:
    """``url`` with the value of every query parameter named like a token redacted (safe to show)."""
    parts = urlsplit(url)
    query = [(k, redact(v) if "token" in k.lower() or "key" in k.lower() else v) for k, v in parse_qsl(parts.query)]
    return urlunsplit(parts._replace(query=urlencode(query)))


class _ScrubbingLogger(logging.LoggerAdapter):  # type: ignore[type-arg]
    """Hands websockets a logger that never writes the session's token (its DEBUG lines show the request line)."""

    def __init__(self, logger: logging.Logger, secrets: list[str]) -> None:
        super().__init__(logger, {})
        self._secrets = secrets

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return scrub(str(msg), self._secrets), kwargs

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if self.isEnabledFor(level):
            # Format first so that a token passed as an argument is scrubbed too.
            text = str(msg) % args if args else str(msg)
            super().log(level, scrub(text, self._secrets), **kwargs)


_DATA = (Opcode.TEXT, Opcode.BINARY, Opcode.CONT)


class _StampingConnection(ClientConnection):
    """A client connection that stamps each message when its bytes came off the socket.

    ``recv()`` hands a message over only when our task next runs; on a busy loop that is later than its arrival.
    Stamping in ``data_received`` (the protocol callback that receives the socket's bytes) removes that delay from
    every measurement. One stamp is queued per complete data message, so stamps and messages stay aligned.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.arrivals: collections.deque[int] = collections.deque()
        self._rx_ns = 0
        self.receiver: Callable[[Frame], None] | None = None
        self._fragmented = False  # inside a message split into several frames (left to recv())

    def send_text_now(self, data: bytes) -> bool:
        """What ``send(data, text=True)`` does when it would not wait: frame ``data`` (UTF-8) and write it to the
        socket, from a plain callback. False (nothing sent) when ``send()`` could wait: the connection is not open, a
        fragmented message is being sent, or the socket's write buffer is over its limit (flow control)."""
        if (
            self.protocol.state is not State.OPEN
            or self.send_in_progress is not None
            or self.paused
            or self.transport.is_closing()
        ):
            return False
        self.protocol.send_text(data)
        try:
            self.send_data()
        except Exception as exc:  # as send(): the connection is broken; close it and say so
            self.set_connection_exc(exc)
            self.transport.abort()
            raise
        return True

    def data_received(self, data: bytes) -> None:
        self._rx_ns = time.perf_counter_ns()
        super().data_received(data)

    def process_event(self, event: Any) -> None:
        if isinstance(event, WsFrame) and event.opcode in _DATA:
            receiver = self.receiver
            if receiver is not None and event.fin and not self._fragmented and event.opcode is not Opcode.CONT:
                # A whole message in one frame: handed over right here, in the socket's read callback, without the
                # two task wake-ups of recv() (the common case: every v2 message is small).
                receiver(Frame(bytes(event.data), self._rx_ns, KERNEL_CLOCK))
                return
            self._fragmented = not event.fin
            if event.fin:
                self.arrivals.append(self._rx_ns)
        super().process_event(event)


class WebSocketTransport(Transport):
    """The embedded simulator's ``ws_url``: v2 messages as JSON text frames, timestamped on the kernel clock.

    Sends and arrivals are stamped with ``time.perf_counter_ns()`` on the I/O loop thread, so every duration
    derived from them is on one clock.
    """

    paces_itself = False
    pushes_frames = True

    def __init__(self, url: str, *, budget: ProviderBudget = WEBSOCKET, token: str | None = None) -> None:
        if not isinstance(url, str) or urlsplit(url).scheme not in ("ws", "wss"):
            raise ValidationError("ws_url", "must be a ws:// or wss:// URL", allowed="ws://host:port/path")
        if token and "token=" not in url:
            parts = urlsplit(url)
            query = "&".join(q for q in (parts.query, urlencode({"token": token})) if q)
            url = urlunsplit(parts._replace(query=query))
        self._url = url
        self._secrets = [v for k, v in parse_qsl(urlsplit(url).query) if "token" in k.lower()]
        self.budget = budget
        self.clock = KERNEL_CLOCK
        self._ws: _StampingConnection | None = None
        self._closed = False
        self._close_reason: str | None = None

    def __repr__(self) -> str:
        return f"<WebSocketTransport {display_url(self._url)} {'closed' if self._closed else 'open'}>"

    def describe(self) -> str:
        return f"WebSocketTransport({display_url(self._url)})"

    async def connect(self, timeout: float) -> None:
        logger = _ScrubbingLogger(logging.getLogger("websockets.client"), self._secrets)
        try:
            self._ws = await asyncio.wait_for(
                connect(  # type: ignore[arg-type]
                    self._url,
                    compression=None,  # per-message deflate costs latency and the messages are small
                    proxy=None,
                    open_timeout=None,  # bounded by wait_for above
                    max_size=2**20,
                    logger=logger,
                    create_connection=_StampingConnection,
                ),
                timeout,
            )
        except asyncio.TimeoutError:
            raise TimeoutError(f"connecting to {display_url(self._url)}", timeout) from None
        except InvalidStatus as exc:
            status = exc.response.status_code
            raise ConnectionError(
                f"the stream refused the connection (HTTP {status}) at {display_url(self._url)}: "
                "the session may have ended, the token may be wrong, or another client is connected"
            ) from None
        except (OSError, InvalidHandshake, InvalidURI) as exc:
            detail = scrub(str(exc), self._secrets)
            raise ConnectionError(f"could not connect to {display_url(self._url)}: {detail}") from None

    async def send(self, data: bytes) -> int:
        ws = self._ws
        if ws is None or self._closed:
            raise StreamClosedError(f"the stream is closed ({self._close_reason or 'not connected'})")
        try:
            await ws.send(data, text=True)
        except ConnectionClosed as exc:
            self._note_closed(exc)
            raise StreamClosedError(f"the stream closed while sending ({self._close_reason})") from None
        return time.perf_counter_ns()

    def send_now(self, data: bytes) -> int | None:
        ws = self._ws
        if ws is None or self._closed:
            raise StreamClosedError(f"the stream is closed ({self._close_reason or 'not connected'})")
        # Stamped as the bytes go to the socket: the write releases the GIL, and whatever runs before this thread
        # gets it back (another thread; in-process, the simulator answering) must not be counted as sending time.
        t_ns = time.perf_counter_ns()
        try:
            if not ws.send_text_now(data):
                return None
        except Exception:
            self._closed = True
            self._close_reason = self._close_reason or "the connection failed while sending"
            raise StreamClosedError(f"the stream closed while sending ({self._close_reason})") from None
        return t_ns

    def set_receiver(self, receiver: Callable[[Frame], None] | None) -> bool:
        """Hand each whole received message to ``receiver`` from the socket's read callback (see the base class).

        Messages split into several WebSocket frames still come through :meth:`frames`, and so does every message
        when a subclass declares ``pushes_frames = False`` or overrides :meth:`frames` (it expects to see them all).
        """
        if self._ws is None or not self.pushes_frames or type(self).frames is not WebSocketTransport.frames:
            return False
        self._ws.receiver = receiver
        return True

    async def frames(self) -> AsyncIterator[Frame]:
        ws = self._ws
        if ws is None:
            raise StreamClosedError("the stream is not connected")
        try:
            while True:
                message = await ws.recv()
                # The stamp taken when the message's bytes came off the socket (see _StampingConnection).
                t_ns = ws.arrivals.popleft() if ws.arrivals else time.perf_counter_ns()
                data = message.encode("utf-8") if isinstance(message, str) else message
                yield Frame(data, t_ns, KERNEL_CLOCK)
        except ConnectionClosed as exc:
            self._note_closed(exc)

    def _note_closed(self, exc: ConnectionClosed) -> None:
        if not self._closed:
            self._closed = True
            rcvd = exc.rcvd
            if rcvd is not None:
                self._close_reason = (
                    f"closed by the server (code {rcvd.code}{': ' + rcvd.reason if rcvd.reason else ''})"
                )
            else:
                self._close_reason = "the connection dropped"
            _log.debug("%s: %s", self.describe(), self._close_reason)

    async def close(self) -> None:
        self._closed = True
        ws = self._ws
        if ws is not None:
            await ws.close()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason
