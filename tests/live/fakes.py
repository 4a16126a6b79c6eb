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
from dataclasses import dataclass
from typing import Any

from akool_lab.errors import StreamClosedError
from akool_lab.protocol.limits import WEBSOCKET, ProviderBudget
from akool_lab.transport import Frame, Transport

Responder = Callable[[dict[str, Any]], list[tuple[float, dict[str, Any]]]]
_END = object()


def queued(live: Any, n: int) -> bool:
    """Whether ``n`` messages have been queued on ``live`` (a LiveSession): each has its transcript line."""
    return bool(sum(e.role == "you" for e in live.transcript) >= n)


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
        on_join: list[tuple[float, dict[str, Any]]] | None = None,
        push: bool = False,
        sends_now: bool = False,
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
        self.on_join = on_join or []  # frames the avatar sends right after the join (a greeting)
        self.push = push  # hand frames to the stream's receiver (like the WebSocket transport) instead of frames()
        self._receiver: Callable[[Frame], None] | None = None
        self.sends_now = sends_now  # send_now() sends (like the WebSocket transport) instead of declining
        self.sent_now = 0  # how many messages went through send_now()

    async def connect(self, timeout: float) -> None:
        if self.fail_connect is not None:
            raise self.fail_connect
        self._queue = asyncio.Queue()
        self.play(self.on_join)

    def play(self, frames: list[tuple[float, dict[str, Any]]]) -> None:
        """Deliver ``frames``, each after its delay in seconds (call on the I/O loop)."""
        loop = asyncio.get_running_loop()
        for delay, frame in frames:
            loop.call_later(delay, self.inject, frame)

    async def send(self, data: bytes) -> int:
        if self._closed:
            raise StreamClosedError("fake closed")
        return self._sent(data)

    def send_now(self, data: bytes) -> int | None:
        if not self.sends_now:
            return None
        if self._closed:
            raise StreamClosedError("fake closed")
        self.sent_now += 1
        return self._sent(data)

    def _sent(self, data: bytes) -> int:
        self.sent.append(data)
        t = time.perf_counter_ns()
        if self.responder is not None:
            loop = asyncio.get_running_loop()
            for delay, frame in self.responder(json.loads(data), self.state):
                loop.call_later(delay, self.inject, frame)
        return t

    def set_receiver(self, receiver: Callable[[Frame], None] | None) -> bool:
        if not self.push:
            return False
        self._receiver = receiver
        return True

    def inject(self, frame: dict[str, Any] | bytes) -> None:
        """Deliver a frame to the stream now (call on the I/O loop)."""
        assert self._queue is not None
        data = frame if isinstance(frame, bytes) else json.dumps(frame).encode()
        if self._receiver is not None:
            self._receiver(Frame(data, time.perf_counter_ns(), "kernel"))
            return
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


# --------------------------------------------------------------------------------------------- dialects of the avatar


@dataclass(frozen=True)
class Dialect:
    """How a scripted avatar speaks the protocol: each field is one way in which real servers and the official
    clients differ from the documented protocol (see docs/conversation.md)."""

    name: str = "documented"
    idx: bool = True  # reply chunks carry idx
    fin: bool = True  # the last reply chunk says fin
    echo: bool = True  # in mode 1 the spoken text comes back as chat
    audio: bool = True  # audio_start / audio_end are sent
    event_mid: bool = True  # audio events carry the reply's mid
    ack_mid: bool = True  # acks carry the command's mid
    ack_type: str = "command"  # "command", "cmd" (older demo, JS SDK) or "ack" (PyPI: pld.original_mid)
    greeting: str | None = None  # a knowledge-base greeting spoken at join


DIALECTS = [
    Dialect(),
    Dialect("no-idx", idx=False),
    Dialect("no-idx-no-fin", idx=False, fin=False),
    Dialect("idx-no-fin", fin=False),
    Dialect("mode1-no-echo", echo=False),
    Dialect("ack-without-mid", ack_mid=False),
    Dialect("ack-type-cmd", ack_type="cmd"),
    Dialect("ack-type-ack", ack_type="ack"),
    Dialect("greeting", greeting="Welcome! I am your assistant."),
    Dialect("events-without-mid", event_mid=False),
    Dialect(
        "all-at-once",
        idx=False,
        fin=False,
        echo=False,
        event_mid=False,
        ack_mid=False,
        ack_type="cmd",
        greeting="Hello there, welcome.",
    ),
]


class DialectAvatar:
    """A responder for :class:`FakeTransport` that answers in one :class:`Dialect`.

    It speaks one reply at a time, in the order of what it was asked or heard (like the real avatar): mode 1
    repeats the text, mode 2 answers ``"Answer: <text>"``. :meth:`hear` makes it hear the user speak.
    """

    def __init__(self, dialect: Dialect, *, ttfr: float = 0.004, speak: float = 0.01) -> None:
        self.dialect = dialect
        self.mode = 1
        self.ttfr = ttfr
        self.speak = speak
        self._free_at = 0.0
        self._replies = 0
        self.acked: list[dict[str, Any]] = []

    def greeting(self) -> list[tuple[float, dict[str, Any]]]:
        if self.dialect.greeting is None:
            return []
        return self._reply("greeting", self.dialect.greeting, spoken=True, echoed=True, at=0.0)

    def __call__(self, message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "command":
            pld = message["pld"]
            if pld["cmd"] == "set-params" and "mode" in pld.get("data", {}):
                self.mode = pld["data"]["mode"]
            return [(0.001, self._ack(message["mid"], pld["cmd"]))]
        buf = state.setdefault("buf", {})
        buf.setdefault(message["mid"], []).append(message["pld"]["text"])
        if not message.get("fin"):
            return []
        text = "".join(buf.pop(message["mid"]))
        if self.mode == 1:
            return self._reply(message["mid"], text, spoken=True, echoed=self.dialect.echo)
        return self._reply(message["mid"], f"Answer: {text}", spoken=True, echoed=True)

    def hear(self, text: str, mid: str = "u-1") -> list[tuple[float, dict[str, Any]]]:
        """The frames of the user saying ``text`` (speech recognition) and of the avatar's answer to it."""
        heard = [(0.0, bot_chunk(mid, 0, text, True, sender="user"))]
        answer = text if self.mode == 1 else f"I heard: {text}"
        return heard + self._reply(mid, answer, spoken=True, echoed=True)

    def _ack(self, mid: str, cmd: str) -> dict[str, Any]:
        d = self.dialect
        pld: dict[str, Any] = {"cmd": cmd, "code": 1000, "msg": "OK"}
        frame: dict[str, Any] = {"v": 2, "type": d.ack_type}
        if d.ack_type == "ack":
            frame["mid"] = f"ack-{mid}"
            if d.ack_mid:
                pld["original_mid"] = mid
        elif d.ack_mid:
            frame["mid"] = mid
        frame["pld"] = pld
        self.acked.append(frame)
        return frame

    def _reply(
        self, cause: str, text: str, *, spoken: bool, echoed: bool, at: float | None = None
    ) -> list[tuple[float, dict[str, Any]]]:
        d = self.dialect
        self._replies += 1
        rid = f"r-{self._replies}"
        now = time.monotonic()
        start = max(now + self.ttfr, self._free_at) if at is None else now + at
        pieces = [text[i : i + 6] for i in range(0, len(text), 6)] or [""]
        frames: list[tuple[float, dict[str, Any]]] = []
        t = start
        if echoed:
            for i, piece in enumerate(pieces):
                chunk: dict[str, Any] = {"v": 2, "type": "chat", "mid": rid}
                if d.idx:
                    chunk["idx"] = i
                if d.fin:
                    chunk["fin"] = i == len(pieces) - 1
                chunk["pld"] = {"from": "bot", "text": piece}
                frames.append((t - now, chunk))
                t += 0.0005
        if spoken and d.audio:
            mid = rid if d.event_mid else None
            frames.append((start + 0.001 - now, _event_with_mid("audio_start", mid)))
            t = max(t, start + 0.002) + self.speak
            frames.append((t - now, _event_with_mid("audio_end", mid)))
        self._free_at = t + 0.001
        return frames


def _event_with_mid(name: str, mid: str | None) -> dict[str, Any]:
    frame: dict[str, Any] = {"v": 2, "type": "event"}
    if mid is not None:
        frame["mid"] = mid
    frame["pld"] = {"event": name}
    return frame
