"""The Stage widget in Python, without a browser: what it syncs, when credentials leave, errors, the relay.

Browser messages are fed through ``widget._handle_custom_msg`` (what the comm calls); what the widget sends is
captured by replacing ``widget.send``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from akool_lab.api import Session
from akool_lab.errors import ConnectionError, StreamClosedError, ValidationError
from akool_lab.live import AvatarStream, LiveSession, io_loop
from akool_lab.widgets.stage import DEFAULT_SDK_URLS, Stage
from tests.live.fakes import FakeTransport

SECRETS = ("agora-SECRET-token-0001", "lk-SECRET-token-0002", "trtc-SECRET-sig-0003", "ws-SECRET-0004")

AGORA = {"agora_uid": 100001, "agora_app_id": "app-1", "agora_channel": "chan-1", "agora_token": SECRETS[0]}
LIVEKIT = {
    "livekit_url": "wss://lk.example",
    "livekit_token": SECRETS[1],
    "livekit_room_name": "room-1",
    "livekit_client_identity": "client-1",
    "livekit_server_identity": "avatar-1",
}
TRTC = {"trtc_app_id": 1400000001, "trtc_room_id": "r-1", "trtc_user_id": "u-1", "trtc_user_sig": SECRETS[2]}


def session(stream_type: str, credentials: dict[str, Any]) -> Session:
    return Session.from_json({"_id": f"sess-{stream_type}", "status": 2, "stream_type": stream_type,
                              "credentials": credentials})  # fmt: skip


def capture(stage: Stage) -> list[tuple[dict[str, Any], Any]]:
    sent: list[tuple[dict[str, Any], Any]] = []

    def send(content: dict[str, Any], buffers: Any = None) -> None:
        sent.append((content, buffers))

    stage.send = send  # type: ignore[method-assign]
    return sent


def wait_until(condition: Callable[[], bool], timeout: float = 2.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@pytest.mark.parametrize(
    ("stream_type", "credentials"), [("agora", AGORA), ("livekit", LIVEKIT), ("trtc", TRTC)], ids=str
)
def test_no_secret_is_ever_in_the_synced_state(stream_type: str, credentials: dict[str, Any]) -> None:
    stage = Stage(session(stream_type, credentials))
    capture(stage)
    stage._handle_custom_msg({"type": "join-request", "page_id": "p"}, [])

    state = json.dumps(stage.get_state(), default=str)

    assert stage.provider == stream_type
    assert not any(secret in state for secret in SECRETS)
    assert not any(secret in repr(stage) for secret in SECRETS)


def test_credentials_leave_only_as_a_custom_message_to_the_page_that_asked_to_join() -> None:
    stage = Stage(session("agora", AGORA))
    sent = capture(stage)
    assert sent == [], "nothing is sent before the browser asks"

    stage._handle_custom_msg({"type": "join-request", "page_id": "page-9"}, [])

    assert sent == [
        (
            {
                "type": "credentials",
                "page_id": "page-9",
                "provider": "agora",
                "credentials": {"app_id": "app-1", "channel": "chan-1", "token": SECRETS[0], "uid": 100001},
            },
            None,
        )
    ]


def test_livekit_and_trtc_credentials_carry_what_their_join_calls_need() -> None:
    livekit, trtc = Stage(session("livekit", LIVEKIT)), Stage(session("trtc", TRTC))
    sent_lk, sent_trtc = capture(livekit), capture(trtc)

    livekit._handle_custom_msg({"type": "join-request", "page_id": "p"}, [])
    trtc._handle_custom_msg({"type": "join-request", "page_id": "p"}, [])

    assert sent_lk[0][0]["credentials"] == {"url": "wss://lk.example", "token": SECRETS[1], "room_name": "room-1",
                                            "client_identity": "client-1", "server_identity": "avatar-1"}  # fmt: skip
    assert sent_trtc[0][0]["credentials"] == {"sdk_app_id": 1400000001, "room_id": "r-1", "user_id": "u-1",
                                              "user_sig": SECRETS[2]}  # fmt: skip


def test_the_budget_the_browser_paces_with_is_the_providers() -> None:
    assert Stage(session("agora", AGORA)).budget == {
        "name": "agora", "max_message_bytes": 960, "bytes_per_second": 5760, "messages_per_second": None,
    }  # fmt: skip
    assert Stage(session("trtc", TRTC)).budget["messages_per_second"] == 30
    assert Stage(session("livekit", LIVEKIT)).budget["bytes_per_second"] == 5760  # paced like the official demo


def test_sdk_urls_default_to_the_cdn_and_can_be_overridden() -> None:
    stage = Stage(session("agora", AGORA), sdk_urls={"agora": "http://127.0.0.1:9/agora.js"})

    assert stage.sdk_urls == {**DEFAULT_SDK_URLS, "agora": "http://127.0.0.1:9/agora.js"}
    with pytest.raises(ValidationError, match="unknown provider 'zoom'"):
        Stage(sdk_urls={"zoom": "https://x"})
    with pytest.raises(ValidationError, match="is not a URL"):
        Stage(sdk_urls={"agora": "agora.js"})


def test_a_simulator_session_is_drawn_simulated_and_has_no_browser_transport() -> None:
    sim = session("agora", {**AGORA, "ws_url": f"ws://127.0.0.1:1/_sim/stream/s?token={SECRETS[3]}"})
    stage = Stage(sim)

    assert stage.simulated and stage.provider == "simulator"
    assert SECRETS[3] not in json.dumps(stage.get_state(), default=str)
    with pytest.raises(ValidationError, match="embedded simulator"):
        _ = stage.transport


def test_a_browser_failure_is_shown_reported_and_closes_the_transport() -> None:
    stage = Stage(session("agora", AGORA))
    capture(stage)
    seen: list[Exception] = []
    stage.on_error(seen.append)
    transport = stage.transport

    stage._handle_custom_msg({"type": "failed", "kind": "sdk-load", "message": "could not load from http://x"}, [])
    wait_until(lambda: transport.closed)

    assert [str(e) for e in seen] == ["the stage could not load the provider's SDK: could not load from http://x"]
    assert stage.errors == seen and isinstance(seen[0], ConnectionError)
    with pytest.raises(ConnectionError, match="could not load"):
        io_loop().run(transport.connect(1.0), 2.0, "connect")


def test_join_again_after_a_failure_uses_a_fresh_transport() -> None:
    stage = Stage(session("agora", AGORA))
    capture(stage)
    first = stage.transport
    stage._handle_custom_msg({"type": "failed", "kind": "join-refused", "message": "invalid token"}, [])

    stage._handle_custom_msg({"type": "join-request", "page_id": "p"}, [])

    assert stage.transport is not first and not stage.transport.closed


def test_stage_connect_is_client_connect_over_its_transport() -> None:
    stage = Stage(session("agora", AGORA))
    calls: list[dict[str, Any]] = []

    class Client:
        def connect(self, sess: Session, **kwargs: Any) -> LiveSession:
            calls.append({"session": sess.id, **kwargs})
            stream = io_loop().run(AvatarStream.open(kwargs["transport"], session_id=sess.id), 5.0, "open")
            return LiveSession(stream)

    live = stage.connect(Client(), mode=1)  # type: ignore[arg-type]

    assert calls == [{"session": "sess-agora", "transport": stage.transport, "mode": 1}]
    assert stage.live is live.avatar_stream
    assert not stage.simulated, "over its own transport the browser sees the messages itself: no relay"
    live.close()


def test_a_relayed_stream_drives_speaking_and_captions() -> None:
    fake = FakeTransport()
    stream = io_loop().run(AvatarStream.open(fake, session_id="s-relay", mode=1), 5.0, "open")
    stage = Stage(stream)
    capture(stage)
    changes: list[bool] = []
    stage.observe(lambda change: changes.append(change["new"]), names="speaking")

    reply = io_loop().run(stream.say("Hello there, stage!", timeout=5.0), 10.0, "say")

    assert stage.simulated and stage.connection_state == "connected"
    assert changes == [True, False], "audio_start then audio_end, relayed from the I/O thread"
    assert stage.caption == reply.text == "Hello there, stage!"
    io_loop().run(stream.close(), 5.0, "close")
    wait_until(lambda: stage.connection_state == "left")


def test_the_non_blocking_helpers_need_a_stream() -> None:
    with pytest.raises(ValidationError, match="has no live stream"):
        Stage().say("hi")


def test_closing_the_widget_closes_a_stream_on_its_transport() -> None:
    stage = Stage(session("agora", AGORA))
    capture(stage)
    stream = io_loop().run(AvatarStream.open(stage.transport, session_id="s-close", mode=1), 5.0, "open")

    stage.close()
    io_loop().run(stream.wait_closed(2.0), 5.0, "wait")

    assert "widget was closed" in (stream.close_reason or "")
    with pytest.raises(StreamClosedError):
        io_loop().run(stream.say("hi", timeout=1.0), 5.0, "say")
