"""Known event sequences for the metrics tests: every timestamp is chosen so that timings are easy to hand-compute.

Times are written in milliseconds (``ms(4000)`` is 4 s after the clock's origin) and stored as integer ns.
"""

from __future__ import annotations

from typing import Any

from akool_lab.events import Event, Recorder

BROWSER = "browser:page1"


def ms(value: float) -> int:
    return int(value * 1_000_000)


def ev(
    kind: str, t_ms: float, sid: str | None = "s1", mid: str | None = None, clock: str = "kernel", **data: Any
) -> Event:
    return Event(kind, ms(t_ms), clock, sid, mid, data, wall=0.0)


def one_session_events() -> list[Event]:
    """Session s1 on the kernel clock: create, live, connect, set-params, a paced say and an interrupted ask, close."""
    return [
        ev(
            "http",
            1000,
            sid=None,
            endpoint="sessions.create",
            method="POST",
            path="/create",
            http_status=200,
            code=1000,
            ms=120.0,
            attempt=1,
            error=None,
        ),
        ev("session.created", 1121, status=1, stream_type="websocket", duration=180),
        ev(
            "http",
            1200,
            endpoint="sessions.get",
            method="GET",
            path="/detail",
            http_status=200,
            code=1000,
            ms=30.0,
            attempt=1,
            error=None,
        ),
        ev("session.status", 1230, status=1),
        ev(
            "http",
            2600,
            endpoint="sessions.get",
            method="GET",
            path="/detail",
            http_status=200,
            code=1000,
            ms=21.0,
            attempt=1,
            error=None,
        ),
        ev("session.status", 2621, status=2),
        ev("session.live", 2621),
        ev("stream.connect_start", 3000, transport="ws"),
        ev("stream.connected", 3250, transport="ws"),
        ev("command.sent", 3300, mid="c1", cmd="set-params", bytes=80),
        ev("command.ack", 3340, mid="c1", cmd="set-params", code=1000, msg="ok", matched=True),
        ev("experiment.params", 3341, params={"vid": "v1", "lang": "fr"}),
        # m1: say, two chunks 100 ms apart, two reply chunks, audio.
        ev("chat.sent", 4000, mid="m1", idx=0, fin=False, bytes=900, intent="say", text_chars=1000),
        ev("chat.sent", 4100, mid="m1", idx=1, fin=True, bytes=300, intent="say", text_chars=0),
        ev("chat.recv", 4400, mid="m1", reply_mid="r1", idx=0, fin=False, sender="bot", text_chars=600),
        ev("chat.recv", 4450, mid="m1", reply_mid="r1", idx=1, fin=True, sender="bot", text_chars=400),
        ev("audio_start", 4500, mid="m1", attributed=True),
        ev("audio_end", 6500, mid="m1", attributed=True),
        ev("reply.done", 6500, mid="m1", reply_mid="r1", complete=True, interrupted=False, reason=None, chunks=2),
        # m2: ask, one chunk; the reply is interrupted while the avatar speaks.
        ev("chat.sent", 7000, mid="m2", idx=0, fin=True, bytes=50, intent="ask", text_chars=20),
        ev("chat.recv", 7800, mid="m2", reply_mid="r2", idx=0, fin=False, sender="bot", text_chars=30),
        ev("audio_start", 7900, mid="m2", attributed=True),
        ev("command.sent", 8000, mid="c2", cmd="interrupt", bytes=40),
        ev("command.ack", 8030, mid="c2", cmd="interrupt", code=1000, msg="ok", matched=True),
        ev("audio_end", 8120, mid="m2", attributed=True),
        ev(
            "reply.done",
            8120,
            mid="m2",
            reply_mid="r2",
            complete=False,
            interrupted=True,
            reason="interrupted",
            chunks=1,
        ),
        # The stream starts closing, the client's close runs inside it, then the stream records its own end.
        ev("session.close_start", 9000),
        ev("session.close_start", 9010),
        ev(
            "http",
            9010,
            endpoint="sessions.close",
            method="POST",
            path="/close",
            http_status=200,
            code=1000,
            ms=170.0,
            attempt=1,
            error=None,
        ),
        ev("session.closed", 9190, code=1000),
        ev("session.closed", 9200),
    ]


def one_session() -> Recorder:
    return Recorder(one_session_events())
