"""A transport's abilities are declared on ``Transport`` and the live layer reads the declarations."""

from __future__ import annotations

import time

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.errors import StreamClosedError, StreamError
from akool_lab.live import AvatarStream, LiveSession, io_loop
from akool_lab.protocol import encode_chat
from akool_lab.transport import BrowserTransport, Frame, Transport, WebSocketTransport, _browser
from tests._wait import wait_until
from tests.live.fakes import FakeTransport

ABILITIES = ("paces_itself", "requires_idle_kernel", "pushes_frames")


@pytest.mark.parametrize("ability", ABILITIES)
def test_the_base_transport_declares_every_ability_off_by_default(ability: str) -> None:
    assert getattr(Transport, ability) is False
    assert ability in Transport.__doc__  # type: ignore[operator]


@pytest.mark.parametrize(
    ("transport", "declared"),
    [
        (WebSocketTransport, {"pushes_frames"}),
        (BrowserTransport, {"paces_itself", "requires_idle_kernel"}),
        (FakeTransport, set()),
    ],
)
def test_each_transport_declares_what_it_does(transport: type[Transport], declared: set[str]) -> None:
    assert {a for a in ABILITIES if getattr(transport, a)} == declared


def test_a_transport_that_does_not_push_frames_refuses_a_receiver() -> None:
    assert FakeTransport().set_receiver(lambda frame: None) is False


class _NeedsIdleKernel(FakeTransport):
    requires_idle_kernel = True


def test_the_blocking_facade_reads_the_declared_ability_not_the_transport_class(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Any transport declaring requires_idle_kernel gets the guard, not only the browser's.
    loop = io_loop()
    stream = loop.run(AvatarStream.open(_NeedsIdleKernel(), session_id="s-idle", mode=1), 5, "open")
    live = LiveSession(stream, loop=loop)
    monkeypatch.setattr(_browser, "_in_ipykernel", lambda: True)
    try:
        with pytest.raises(StreamError, match=r"say\(\) would wait forever"):
            live.say("hello", timeout=1.0)
    finally:
        live.close()  # closing waits for nothing from the far end: allowed


def test_without_the_ability_a_blocking_call_on_the_kernel_thread_goes_ahead(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = io_loop()
    stream = loop.run(AvatarStream.open(FakeTransport(), session_id="s-busy", mode=1), 5, "open")
    live = LiveSession(stream, loop=loop)
    monkeypatch.setattr(_browser, "_in_ipykernel", lambda: True)
    try:
        assert live.say("hello", timeout=5.0).text
    finally:
        live.close()


class _DeclinesPush(WebSocketTransport):
    pushes_frames = False


def test_a_websocket_transport_declared_without_push_delivers_every_frame_through_frames() -> None:
    with sim.start(profile="fast", seed=3) as server, AkoolClient(server.api_key, base_url=server.base_url) as client:
        session = client.sessions.create("dvp_Tristan_cloth2_1080P", duration=60, mode_type=1)
        client.sessions.wait_until_live(session.id, timeout=10)
        assert session.credentials is not None and session.credentials.ws_url
        loop = io_loop()
        for transport_class, pushes in ((WebSocketTransport, True), (_DeclinesPush, False)):
            transport = transport_class(session.credentials.ws_url)
            loop.run(transport.connect(5.0), 10, "connect")
            try:
                assert transport.set_receiver(lambda frame: None) is pushes
                transport.set_receiver(None)
            finally:
                loop.run(transport.close(), 10, "close")
        client.sessions.close(session.id)


def test_a_transport_sends_at_once_only_when_it_says_so_and_never_on_a_closed_channel() -> None:
    assert FakeTransport().send_now(b"{}") is None  # the base class's answer: use send()
    with sim.start(profile="fast", seed=4) as server, AkoolClient(server.api_key, base_url=server.base_url) as client:
        session = client.sessions.create("dvp_Tristan_cloth2_1080P", duration=60, mode_type=1)
        client.sessions.wait_until_live(session.id, timeout=10)
        assert session.credentials is not None and session.credentials.ws_url
        loop = io_loop()
        transport = WebSocketTransport(session.credentials.ws_url)
        loop.run(transport.connect(5.0), 10, "connect")
        frames: list[Frame] = []
        transport.set_receiver(frames.append)

        async def send_at_once() -> int | None:
            (chunk,) = encode_chat("At once.")
            return transport.send_now(chunk)

        try:
            before = time.perf_counter_ns()
            stamp = loop.run(send_at_once(), 10, "send_now")
            assert stamp is not None and before <= stamp <= time.perf_counter_ns()
            wait_until(lambda: any(b'"audio_end"' in f.data for f in frames), 10, "the reply to a message sent at once")
        finally:
            loop.run(transport.close(), 10, "close")
        with pytest.raises(StreamClosedError):
            loop.run(send_at_once(), 10, "send_now after close")
        client.sessions.close(session.id)
