"""BrowserTransport: the stage's browser as the data channel, driven by a fake page (no browser, no widget).

The transport runs on a real I/O loop thread; the fake page delivers its messages from the test's thread, as the
kernel's comm handler would.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from akool_lab import protocol as proto
from akool_lab.errors import ConnectionError, StreamClosedError, StreamError
from akool_lab.events import EventKind
from akool_lab.live import AvatarStream, IOLoop, LiveSession
from akool_lab.protocol.limits import AGORA
from akool_lab.transport import Frame, WebSocketTransport, _browser
from akool_lab.transport._browser import (
    BrowserSendError,
    BrowserTransport,
    blocking_call_would_hang,
    ensure_blocking_call_allowed,
)
from tests.stage.fake_browser import FakePage

T = TypeVar("T")


@pytest.fixture(scope="module")
def io() -> Iterator[IOLoop]:
    loop = IOLoop(name="stage-tests-io")
    yield loop
    loop.shutdown()


def make(io: IOLoop, page: FakePage, **kwargs: Any) -> BrowserTransport:
    transport = BrowserTransport(page.post, budget=AGORA, loop=io.loop, **kwargs)
    page.transport = transport
    return transport


def run(io: IOLoop, coro: Coroutine[Any, Any, T], timeout: float = 5.0) -> T:
    return io.run(coro, timeout, "test")


async def settle() -> None:
    """Let callbacks scheduled with call_soon_threadsafe before this point run first."""
    for _ in range(3):
        await asyncio.sleep(0)


def wait_for_posts(page: FakePage, count: int, timeout: float = 2.0) -> None:
    """Wait until the transport has posted ``count`` sends to the page (it does so on the I/O thread)."""
    deadline = time.monotonic() + timeout
    while sum(1 for content, _ in page.posts if content.get("type") == "send") < count:
        assert time.monotonic() < deadline, f"{count} sends were not posted within {timeout} s"
        time.sleep(0.001)


async def collect(transport: BrowserTransport, n: int, timeout: float = 2.0) -> list[Frame]:
    frames: list[Frame] = []

    async def take() -> None:
        async for frame in transport.frames():
            frames.append(frame)
            if len(frames) == n:
                return

    await asyncio.wait_for(take(), timeout)
    return frames


def test_it_paces_itself_and_needs_an_idle_kernel(io: IOLoop) -> None:
    transport = make(io, FakePage())

    assert transport.paces_itself is True, "the browser paces, so AvatarStream must not pace a second time"
    assert transport.requires_idle_kernel is True
    assert transport.budget is AGORA


def test_the_clock_is_the_joined_pages_clock(io: IOLoop) -> None:
    page = FakePage("tab-42")
    transport = make(io, page)
    run(io, transport.connect(1.0))
    assert transport.clock == "browser:unjoined"

    page.join()
    run(io, settle())

    assert transport.clock == "browser:tab-42"
    assert transport.page_id == "tab-42"
    assert transport.joined


def test_frames_arrive_in_order_with_their_browser_arrival_times_in_ns(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()

    times = page.frames({"n": 1}, {"n": 2}, b"\xff raw bytes", gap_ms=0.125)
    frames = run(io, collect(transport, 3))

    assert [f.data for f in frames] == [b'{"n": 1}', b'{"n": 2}', b"\xff raw bytes"]
    assert [f.t_ns for f in frames] == [round(t * 1_000_000) for t in times]
    assert all(isinstance(f.t_ns, int) for f in frames)
    assert {f.clock for f in frames} == {"browser:page-1"}


def test_frames_that_arrive_before_connect_are_dropped(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page)
    page.join()
    page.frames({"stale": True})
    run(io, settle())
    run(io, transport.connect(1.0))

    page.frames({"fresh": True})
    frames = run(io, collect(transport, 1))

    assert json.loads(frames[0].data) == {"fresh": True}


def test_a_batch_with_mismatched_times_is_dropped_not_misattributed(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()

    page.deliver({"type": "frames", "t": [1.0]}, [b"a", b"b"])
    page.frames({"ok": 1})
    frames = run(io, collect(transport, 1))

    assert json.loads(frames[0].data) == {"ok": 1}


def test_send_posts_the_bytes_to_the_joined_page_and_resolves_with_the_browser_send_time(io: IOLoop) -> None:
    page = FakePage("p7")
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()

    t_ns = run(io, transport.send(b'{"v":2}'))

    content, buffers = page.posts[-1]
    assert content == {"type": "send", "seq": 1, "page_id": "p7"}
    assert buffers == [b'{"v":2}']
    _seq, t_ms, _ = page.sent[-1]
    assert t_ns == round(t_ms * 1_000_000)


def test_send_waits_for_the_join_then_goes_out(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page)
    run(io, transport.connect(1.0))

    pending = io.submit(transport.send(b"hello"))
    run(io, settle())  # the send has run up to its wait for the join
    assert not pending.done()
    assert page.posts == [], "nothing is posted before a page joined (it would not know which page sends)"

    page.join()

    assert pending.result(2.0) == round(page.sent[0][1] * 1_000_000)
    assert page.sent[0][2] == b"hello"


def test_confirmations_in_one_batch_resolve_each_send(io: IOLoop) -> None:
    page = FakePage(auto_confirm=False)
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()

    first = io.submit(transport.send(b"a"))
    second = io.submit(transport.send(b"b"))
    wait_for_posts(page, 2)
    page.deliver({"type": "sent", "items": [[2, 20.5], [1, 10.25]]})

    assert first.result(2.0) == 10_250_000
    assert second.result(2.0) == 20_500_000


def test_messages_from_another_page_are_ignored(io: IOLoop) -> None:
    page = FakePage("first")
    other = FakePage("second")
    transport = make(io, page)
    other.transport = transport
    run(io, transport.connect(1.0))
    page.join()
    other.join()  # a second tab showing the same widget

    other.frames({"from": "second"})
    page.frames({"from": "first"})
    frames = run(io, collect(transport, 1))

    assert json.loads(frames[0].data) == {"from": "first"}
    assert transport.clock == "browser:first"


def test_a_refused_message_fails_that_send_only(io: IOLoop) -> None:
    page = FakePage(auto_confirm=False)
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()

    refused = io.submit(transport.send(b"x" * 2000))
    wait_for_posts(page, 1)
    page.deliver({"type": "send-failed", "seq": 1, "error": "INVALID_PARAMS: stream message out of range"})

    with pytest.raises(BrowserSendError, match="stream message out of range"):
        refused.result(2.0)
    assert isinstance(refused.exception(), StreamClosedError), "AvatarStream handles it like any failed send"
    assert not transport.closed


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("token-expired", "the room token expired: token-privilege-did-expire"),
        ("avatar-left", "the avatar left the room"),
        ("join-refused", "refused to let the stage join"),
        ("sdk-load", "could not load the provider's SDK"),
    ],
)
def test_a_browser_failure_closes_the_channel_with_its_reason(io: IOLoop, kind: str, words: str) -> None:
    page = FakePage(auto_confirm=False)
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()
    pending = io.submit(transport.send(b"waiting"))
    wait_for_posts(page, 1)
    ended = io.submit(collect(transport, 1))

    page.deliver({"type": "failed", "kind": kind, "message": "token-privilege-did-expire"})

    assert ended.result(2.0) == [], "the frame iterator ends, without a frame"
    with pytest.raises(StreamClosedError, match=words):
        pending.result(2.0)
    assert transport.closed
    assert transport.failure_kind == kind
    assert words in (transport.close_reason or "")
    with pytest.raises(StreamClosedError, match=words):
        run(io, transport.send(b"later"))
    with pytest.raises(ConnectionError, match=words):
        run(io, transport.connect(1.0))


def test_the_frame_iterator_ends_when_the_browser_fails(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()
    page.frames({"n": 1})
    page.deliver({"type": "failed", "kind": "avatar-left", "message": "user 7 left"})

    async def drain() -> list[Frame]:
        return [frame async for frame in transport.frames()]

    frames = run(io, drain())

    assert [json.loads(f.data) for f in frames] == [{"n": 1}]
    assert transport.close_reason == "the avatar left the room: user 7 left"


def test_a_stage_that_never_joins_fails_the_send_with_what_to_do(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page, send_timeout=0.1)
    run(io, transport.connect(1.0))

    with pytest.raises(StreamClosedError, match="click Join"):
        run(io, transport.send(b"hello"))
    assert transport.closed


def test_an_unconfirmed_send_times_out_and_says_the_kernel_must_be_idle(io: IOLoop) -> None:
    page = FakePage(auto_confirm=False)
    transport = make(io, page, send_timeout=0.1)
    run(io, transport.connect(1.0))
    page.join()

    with pytest.raises(StreamClosedError, match="kernel idle"):
        run(io, transport.send(b"hello"))


def test_a_post_that_raises_closes_the_channel(io: IOLoop) -> None:
    def broken_post(content: dict[str, Any], buffers: list[bytes]) -> None:
        raise RuntimeError("comm closed")

    page = FakePage()
    transport = BrowserTransport(broken_post, budget=AGORA, loop=io.loop)
    page.transport = transport
    run(io, transport.connect(1.0))
    page.join()

    with pytest.raises(StreamClosedError, match="widget was closed"):
        run(io, transport.send(b"x"))


def test_close_tells_the_page_to_leave_ends_frames_and_is_idempotent(io: IOLoop) -> None:
    page = FakePage("p")
    transport = make(io, page)
    run(io, transport.connect(1.0))
    page.join()

    run(io, transport.close())
    run(io, transport.close())

    assert [c for c, _ in page.posts if c["type"] == "leave"] == [{"type": "leave", "page_id": "p"}]
    assert transport.closed and transport.close_reason is None
    assert run(io, collect_all(transport)) == []


async def collect_all(transport: BrowserTransport) -> list[Frame]:
    return [frame async for frame in transport.frames()]


def test_describe_and_repr_carry_no_secret_and_name_the_clock(io: IOLoop) -> None:
    page = FakePage("pg")
    transport = make(io, page)
    page.join("livekit")
    run(io, settle())

    assert transport.describe() == "BrowserTransport(livekit, browser:pg)"
    assert "joined" in repr(transport)


# ------------------------------------------------------------------ with AvatarStream on top


def retelling_avatar(page: FakePage) -> None:
    """Answer each complete chat message with one reply chunk, then audio_start and audio_end, 40 ms apart."""
    buffers: dict[str, list[str]] = {}

    def on_send(message: dict[str, Any]) -> None:
        if message["type"] != "chat":
            return
        buffers.setdefault(message["mid"], []).append(message["pld"]["text"])
        if message.get("fin"):
            text = "".join(buffers.pop(message["mid"]))
            reply = (
                {"v": 2, "type": "chat", "mid": "r1", "idx": 0, "fin": True, "pld": {"from": "bot", "text": text}},
                {"v": 2, "type": "event", "mid": "e1", "pld": {"event": "audio_start"}},
                {"v": 2, "type": "event", "mid": "e2", "pld": {"event": "audio_end"}},
            )
            # A real avatar answers well after the send was confirmed: deliver from another thread, a bit later.
            threading.Timer(0.05, lambda: page.frames(*reply, gap_ms=40.0)).start()

    page.on_send = on_send


def test_an_avatar_stream_over_the_browser_measures_everything_on_the_browser_clock(io: IOLoop) -> None:
    page = FakePage("tab")
    transport = make(io, page)
    retelling_avatar(page)
    stream = run(io, AvatarStream.open(transport, session_id="s1", mode=1, loop=io))
    page.join()
    text = "Hello from the stage. " * 100  # several chunks under the agora budget

    reply = run(io, stream.say(text, timeout=5.0))

    chunks = proto.encode_chat(text, mid=reply.mid, budget=AGORA)
    assert len(page.sent) == len(chunks) > 1
    assert reply.text == text
    sent = stream.recorder.filter(EventKind.CHAT_SENT)
    received = stream.recorder.filter(EventKind.CHAT_RECV)
    assert {e.clock for e in sent + received} == {"browser:tab"}
    assert [e.t_ns for e in sent] == [round(t * 1_000_000) for _, t, _ in page.sent]
    # ttfr = first reply chunk (40 ms after the last send, on the page's clock) - last chunk sent.
    assert reply.timings.ttfr_ms == pytest.approx(40.0, abs=0.01)
    assert reply.timings.speak_ms == pytest.approx(40.0, abs=0.01)
    run(io, stream.close())
    assert page.posts[-1][0]["type"] == "leave"


def test_a_failure_in_the_browser_closes_the_stream_with_the_reason(io: IOLoop) -> None:
    page = FakePage()
    transport = make(io, page)
    stream = run(io, AvatarStream.open(transport, session_id="s2", mode=1, loop=io))
    page.join()

    page.deliver({"type": "failed", "kind": "token-expired", "message": "token-privilege-did-expire"})
    run(io, stream.wait_closed(2.0))

    assert stream.close_reason == "the room token expired: token-privilege-did-expire"
    with pytest.raises(StreamClosedError, match="token expired"):
        run(io, stream.say("anyone there?", timeout=1.0))


# ------------------------------------------------------------------ blocking calls in a notebook


def test_blocking_calls_are_fine_outside_a_kernel(io: IOLoop) -> None:
    transport = make(io, FakePage())

    assert not blocking_call_would_hang(transport)
    ensure_blocking_call_allowed(transport, "say()")


def test_a_blocking_call_on_the_kernels_main_thread_raises_a_clear_error(
    io: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = make(io, FakePage())
    monkeypatch.setattr(_browser, "_in_ipykernel", lambda: True)

    with pytest.raises(StreamError, match=r"say\(\) would wait forever.*later cell"):
        ensure_blocking_call_allowed(transport, "say()")


def test_a_blocking_call_from_another_thread_of_the_kernel_is_allowed(
    io: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = make(io, FakePage())
    monkeypatch.setattr(_browser, "_in_ipykernel", lambda: True)
    results: list[bool] = []
    worker = threading.Thread(target=lambda: results.append(blocking_call_would_hang(transport)))
    worker.start()
    worker.join()

    assert results == [False], "another thread may block: the kernel's main thread keeps reading comm messages"


def test_a_kernel_clock_transport_never_counts_as_hanging(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_browser, "_in_ipykernel", lambda: True)

    assert not blocking_call_would_hang(WebSocketTransport("ws://127.0.0.1:9/never-connected"))


def test_a_blocking_live_session_call_over_the_stage_raises_instead_of_hanging(
    io: IOLoop, monkeypatch: pytest.MonkeyPatch
) -> None:
    transport = make(io, FakePage(), send_timeout=0.5)  # without the guard: fails after 0.5 s, not at once
    stream = run(io, AvatarStream.open(transport, session_id="s-block", mode=1, loop=io))
    live = LiveSession(stream, loop=io)
    monkeypatch.setattr(_browser, "_in_ipykernel", lambda: True)

    with pytest.raises(StreamError, match=r"say\(\) would wait forever"):
        live.say("hello", timeout=1.0)
    live.close()  # closing needs no reply from the browser: always allowed
