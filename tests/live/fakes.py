"""A scripted in-memory data channel, for testing AvatarStream without a server.

Fakes live in tests only. The responder sees each decoded message the stream sends and returns the frames the
"avatar" answers with, each after a delay, so that edge cases (duplicates, reordering, missing fin, audio before
text) are exact and repeatable.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from akool_lab.errors import StreamClosedError
from akool_lab.protocol.limits import WEBSOCKET, ProviderBudget
from akool_lab.transport import Frame, Transport

Responder = Callable[[dict[str, Any]], list[tuple[float, dict[str, Any]]]]
_END = object()


def bot_chunk(mid: str, idx: int, text: str, fin: bool, sender: str = "bot") -> dict[str, Any]:
    return {"v": 2, "type": "chat", "mid": mid, "idx": idx, "fin": fin, "pld": {"from": sender, "text": text}}


def event(name: str) -> dict[str, Any]:
    return {"v": 2, "type": "event", "pld": {"event": name}}


def ack(mid: str, cmd: str, code: int = 1000, msg: str = "OK") -> dict[str, Any]:
    return {"v": 2, "type": "command", "mid": mid, "pld": {"cmd": cmd, "code": code, "msg": msg}}


def echo_avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
    """A well-behaved retelling avatar: acks commands; answers each complete chat with its text."""
    if message["type"] == "command":
        return [(0.001, ack(message["mid"], message["pld"]["cmd"]))]
    buf = state.setdefault("buf", {})
    buf.setdefault(message["mid"], []).append(message["pld"]["text"])
    if not message.get("fin"):
        return []
    text = "".join(buf.pop(message["mid"]))
    state["n"] = state.get("n", 0) + 1
    rid = f"r-{state['n']}"
    half = max(1, len(text) // 2)
    return [
        (0.005, bot_chunk(rid, 0, text[:half], False)),
        (0.006, event("audio_start")),
        (0.007, bot_chunk(rid, 1, text[half:], True)),
        (0.010, event("audio_end")),
    ]


class FakeTransport(Transport):
    """An in-memory transport driven by a responder function (kernel clock)."""

    paces_itself = False

    def __init__(
        self,
        responder: Callable[[dict[str, Any], dict[str, Any]], list[tuple[float, dict[str, Any]]]] | None = echo_avatar,
        budget: ProviderBudget = WEBSOCKET,
    ) -> None:
        self.budget = budget
        self.clock = "kernel"
        self.sent: list[bytes] = []
        self.responder = responder
        self.state: dict[str, Any] = {}
        self._queue: asyncio.Queue[Any] | None = None
        self._closed = False
        self.reason: str | None = None
        self.fail_connect: Exception | None = None

    async def connect(self, timeout: float) -> None:
        if self.fail_connect is not None:
            raise self.fail_connect
        self._queue = asyncio.Queue()

    async def send(self, data: bytes) -> int:
        if self._closed:
            raise StreamClosedError("fake closed")
        self.sent.append(data)
        t = time.perf_counter_ns()
        if self.responder is not None:
            loop = asyncio.get_running_loop()
            for delay, frame in self.responder(json.loads(data), self.state):
                loop.call_later(delay, self.inject, frame)
        return t

    def inject(self, frame: dict[str, Any] | bytes) -> None:
        """Deliver a frame to the stream now (call on the I/O loop)."""
        assert self._queue is not None
        data = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        self._queue.put_nowait(Frame(data, time.perf_counter_ns(), "kernel"))

    def drop(self, reason: str = "dropped by the test") -> None:
        """Simulate the server closing the connection (call on the I/O loop)."""
        self._closed = True
        self.reason = reason
        assert self._queue is not None
        self._queue.put_nowait(_END)

    async def frames(self) -> AsyncIterator[Frame]:
        assert self._queue is not None
        while True:
            item = await self._queue.get()
            if item is _END:
                return
            yield item

    async def close(self) -> None:
        if not self._closed and self._queue is not None:
            self._queue.put_nowait(_END)
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def close_reason(self) -> str | None:
        return self.reason

    def sent_messages(self) -> list[dict[str, Any]]:
        return [json.loads(b) for b in self.sent]
