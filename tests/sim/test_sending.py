"""How a frame reaches the socket: at once from the timer callback, or in order behind frames the transport held up."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from akool_lab.sim._faults import FaultPlan
from akool_lab.sim._latency import profile_named
from akool_lab.sim._state import SessionRecord, SessionSettings, SimState, now_ns
from akool_lab.sim._stream import StreamConnection, _resume


class FakeSocket:
    """The few WebSocket methods the connection uses; ``gate`` (when set) holds every send until it opens."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate: asyncio.Event | None = None
        self.closed: int | None = None

    async def send_text(self, text: str) -> None:
        if self.gate is not None:
            await self.gate.wait()
        self.sent.append(text)

    async def close(self, code: int = 1000) -> None:
        self.closed = code


def _connection(socket: FakeSocket) -> StreamConnection:
    state = SimState(api_key="k", seed=0, profile=profile_named("fast"), faults=FaultPlan.parse(""))
    now = now_ns()
    session = SessionRecord(
        id="s1",
        index=0,
        avatar_id="a",
        stream_type="websocket",
        duration_s=60.0,
        created_ns=now,
        live_ns=now,
        fails=False,
        credentials={},
        ws_token="t",
        settings=SessionSettings(),
        knowledge_id=None,
        rng=random.Random(0),
    )
    return StreamConnection(state, session, socket)  # type: ignore[arg-type]


def test_a_frame_is_handed_to_the_socket_within_the_call_and_its_send_time_recorded() -> None:
    async def scenario() -> None:
        socket = FakeSocket()
        conn = _connection(socket)
        stamps: list[int] = []
        before = now_ns()
        conn._deliver("one", before, stamps.append)
        assert socket.sent == ["one"]  # no await in between: no hop through the loop
        assert conn.state.emits == 1 and len(stamps) == 1 and stamps[0] >= before
        assert conn.state.sched_errors_ms[0] >= 0.0

    asyncio.run(scenario())


def test_frames_held_up_by_the_transport_go_out_in_order_once_it_accepts_data_again() -> None:
    async def scenario() -> None:
        socket = FakeSocket()
        conn = _connection(socket)
        sender = asyncio.create_task(conn._send_loop())
        socket.gate = asyncio.Event()
        stamps: list[tuple[str, int]] = []

        def stamper(text: str) -> Callable[[int], None]:
            return lambda at: stamps.append((text, at))

        for text in ("a", "b", "c"):
            conn._deliver(text, now_ns(), stamper(text))
        assert socket.sent == [] and conn.state.emits == 0  # nothing is counted as sent before it is
        await asyncio.sleep(0.01)
        held = now_ns()
        socket.gate.set()
        await asyncio.sleep(0.01)
        assert socket.sent == ["a", "b", "c"]
        assert [t for t, _ in stamps] == ["a", "b", "c"] and all(at >= held for _, at in stamps)
        socket.gate = None
        conn._deliver("d", now_ns(), None)  # the backlog is empty again: straight to the socket
        assert socket.sent[-1] == "d"
        conn._outbox.put_nowait(None)
        await sender
        assert socket.closed == 1000

    asyncio.run(scenario())


def test_resume_finishes_a_coroutine_started_by_hand_and_passes_its_failure_on() -> None:
    async def scenario() -> None:
        gate = asyncio.Event()
        log: list[Any] = []

        async def job(fail: bool) -> None:
            await gate.wait()
            if fail:
                raise OSError("gone")
            log.append("done")

        ok = job(False)
        waiting = ok.send(None)
        failing = job(True)
        waiting_too = failing.send(None)
        loop = asyncio.get_running_loop()
        loop.call_later(0.01, gate.set)
        await _resume(ok, waiting)
        assert log == ["done"]
        try:
            await _resume(failing, waiting_too)
        except OSError as exc:
            log.append(str(exc))
        assert log == ["done", "gone"]

    asyncio.run(scenario())
