"""LiveKit from Python: join the session's room and use its reliable data packets as the data channel.

Needs the optional extra ``akool_lab[livekit]`` (the ``livekit`` package), imported only when this transport is
used. It is tested against a fake room object with the same interface as ``livekit.rtc.Room``; it has NOT been
tested against the live AKool service (unreachable from where this project is built).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from akool_lab.errors import ConnectionError, StreamClosedError, TimeoutError, ValidationError
from akool_lab.events import KERNEL_CLOCK
from akool_lab.protocol.limits import LIVEKIT, LIVEKIT_UNPACED, ProviderBudget
from akool_lab.redaction import scrub
from akool_lab.transport._base import Frame, Transport

__all__ = ["LiveKitTransport"]

_END = object()


def _default_room() -> Any:
    try:
        from livekit import rtc
    except ImportError:
        raise ValidationError(
            "transport", "LiveKit needs the optional 'livekit' package", allowed="pip install 'akool-lab[livekit]'"
        ) from None
    return rtc.Room()


class LiveKitTransport(Transport):
    """The session's LiveKit room, joined from Python; v2 messages travel as reliable data packets.

    Only packets from the avatar participant (``server_identity``, when known) are received. Timestamps are on the
    kernel clock, taken on the I/O thread.

    Messages are chunked at 960 B and paced at 5,760 B/s as the official demo does on LiveKit (:data:`LIVEKIT`);
    ``pace=False`` sends the chunks back to back (:data:`LIVEKIT_UNPACED`), at your own risk.
    """

    paces_itself = False

    def __init__(
        self,
        url: str,
        token: str,
        *,
        server_identity: str | None = None,
        budget: ProviderBudget | None = None,
        pace: bool = True,
        room_factory: Callable[[], Any] = _default_room,
    ) -> None:
        if not url or not url.startswith(("ws://", "wss://", "http://", "https://")):
            raise ValidationError("livekit_url", "must be a ws(s):// or http(s):// URL", allowed="wss://host")
        if not token:
            raise ValidationError("livekit_token", "is empty", allowed="the token from the session's credentials")
        self._url = url
        self._token = token
        self._server_identity = server_identity
        self.budget = budget if budget is not None else (LIVEKIT if pace else LIVEKIT_UNPACED)
        self.clock = KERNEL_CLOCK
        self._room_factory = room_factory
        self._room: Any = None
        self._queue: asyncio.Queue[Any] = asyncio.Queue()
        self._closed = False
        self._close_reason: str | None = None

    @classmethod
    def from_credentials(cls, credentials: Any, **kwargs: Any) -> LiveKitTransport:
        """Build from a session's :class:`~akool_lab.api.LiveKitCredentials`."""
        return cls(
            credentials.url or "", credentials.token or "", server_identity=credentials.server_identity, **kwargs
        )

    def __repr__(self) -> str:
        return f"<LiveKitTransport {self._url} {'closed' if self._closed else 'open'}>"

    def describe(self) -> str:
        return f"LiveKitTransport({self._url})"

    async def connect(self, timeout: float) -> None:
        self._queue = asyncio.Queue()  # bound to the running (I/O) loop
        room = self._room_factory()
        room.on("data_received", self._on_data)
        room.on("disconnected", self._on_disconnected)
        self._room = room
        try:
            await asyncio.wait_for(room.connect(self._url, self._token), timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"joining the LiveKit room at {self._url}", timeout) from None
        except Exception as exc:  # the SDK raises its own ConnectError; reported as ours, token scrubbed
            raise ConnectionError(
                f"could not join the LiveKit room at {self._url}: {scrub(str(exc), [self._token])}"
            ) from None

    def _on_data(self, packet: Any) -> None:
        t_ns = time.perf_counter_ns()
        participant = getattr(packet, "participant", None)
        identity = getattr(participant, "identity", None)
        if self._server_identity and identity is not None and identity != self._server_identity:
            return  # another participant's data is not the avatar's
        self._queue.put_nowait(Frame(bytes(packet.data), t_ns, KERNEL_CLOCK))

    def _on_disconnected(self, reason: Any = None) -> None:
        if not self._closed:
            self._closed = True
            self._close_reason = f"left the LiveKit room ({reason})" if reason is not None else "left the LiveKit room"
        self._queue.put_nowait(_END)

    async def send(self, data: bytes) -> int:
        if self._room is None or self._closed:
            raise StreamClosedError(f"the LiveKit room is closed ({self._close_reason or 'not connected'})")
        await self._room.local_participant.publish_data(data, reliable=True)
        return time.perf_counter_ns()

    async def frames(self) -> AsyncIterator[Frame]:
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item

    async def close(self) -> None:
        if self._room is not None and not self._closed:
            self._closed = True
            await self._room.disconnect()
        self._closed = True
        self._queue.put_nowait(_END)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self._close_reason
