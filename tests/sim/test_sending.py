"""How a frame reaches the socket: at once from the timer callback, or in order behind frames the transport held up."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable
from typing import Any

from akool_lab.sim._faults import FaultPlan
from akool_lab.sim._latency import profile_named
from akool_lab.sim._state import SessionRecord, SessionSettings, SimState, now_ns
from akool_lab.sim._stream import CLOSE_FAULT, StreamConnection, _resume
from tests.sim.helpers import until


class FakeSocket:
    """The few WebSocket methods the connection uses; ``gate`` (when set) holds every send until it opens."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.gate: asyncio.Event | None = None
        self.closed: int | None = None
        self.held = 0  # sends that waited at the gate
        self.fail: Exception | None = None  # raised by every send when set

    async def send_text(self, text: str) -> None:
        if self.fail is not None:
            raise self.fail
        if self.gate is not None:
            self.held += 1
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
        await until(lambda: socket.held == 1)  # the sender task holds "a" at the gate, "b" and "c" wait behind it
        assert socket.sent == [] and conn.state.emits == 0
        held = now_ns()
        socket.gate.set()
        await until(lambda: len(socket.sent) == 3)
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


def test_a_frame_the_socket_refuses_is_reported_to_the_client_and_the_stream_closes_with_1011() -> None:
    async def scenario() -> None:
        socket = FakeSocket()
        conn = _connection(socket)
        sender = asyncio.create_task(conn._send_loop())
        socket.fail = UnicodeEncodeError("utf-8", "\ud83d", 0, 1, "surrogates not allowed")
        conn._deliver('{"bad":"\ud83d"}', now_ns(), None)
        socket.fail = None
        await asyncio.wait_for(sender, 2)
        assert len(socket.sent) == 1 and '"event":"error"' in socket.sent[0] and "UnicodeEncodeError" in socket.sent[0]
        assert socket.closed == CLOSE_FAULT == 1011
        assert conn.session.truth_events[-1]["event"] == "send_failed"

    asyncio.run(scenario())


def test_a_client_gone_mid_send_ends_the_stream_with_1011_and_no_more_frames() -> None:
    async def scenario() -> None:
        socket = FakeSocket()
        conn = _connection(socket)
        sender = asyncio.create_task(conn._send_loop())
        socket.fail = OSError("connection reset")
        conn._deliver("lost", now_ns(), None)
        conn._deliver("never", now_ns(), None)
        await asyncio.wait_for(sender, 2)
        assert socket.sent == [] and socket.closed == 1011
        assert conn.session.truth_events == [{"event": "send_failed", "error": "OSError: connection reset"}]

    asyncio.run(scenario())
