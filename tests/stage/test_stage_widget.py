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
    assert Stage(session("trtc", TRTC)).budget["messages_per_second"] == 29  # under the SDK's 30 a window
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


def test_browser_events_are_recorded_on_the_page_clock_and_user_turns_are_summarised() -> None:
    stage = Stage(session("agora", AGORA))
    capture(stage)
    page = "page-7"

    def event(name: str, t: float, **data: Any) -> None:
        stage._handle_custom_msg({"type": "event", "page_id": page, "name": name, "t": t, "data": data}, [])

    event("stage.reconnecting", 100.5, detail="connection CONNECTED -> RECONNECTING")
    event("stage.network", 2000.0, rtt_ms=42.0, video_loss_pct=0.5, fps=25.0)
    event("user_turn.transcript", 3000.0, user_mid="u-1", fin=True, chars=12)
    event("user_turn.first_reply", 3450.25, user_mid="u-1", reply_mid="r-1", ms=450.25, ms_from_first=900.0)
    event("user_turn.audio_start", 3900.0, user_mid="u-1", ms=900.0, ms_from_first=1350.0)
    event("user_turn.transcript", 5000.0, user_mid="u-2", fin=True, chars=3)

    recorded = list(stage.recorder)
    assert [e.kind for e in recorded][:2] == ["stage.reconnecting", "stage.network"]
    assert {e.clock for e in recorded} == {"browser:page-7"}
    assert recorded[1].t_ns == 2_000_000_000 and recorded[1].data["rtt_ms"] == 42.0
    assert recorded[0].session_id == "sess-agora"
    # The reply to u-1 heard (perceived.js, same page): its first audible sample, from the same transcript arrival.
    heard = {"type": "heard", "at": 4100.0, "mid": "u-1", "reply_mid": "r-1", "sent_at": None, "heard_ms": None,
             "transcript_at": 3000.0, "user_heard_ms": 1100.0, "media_delay_ms": 200.0}  # fmt: skip
    stage._handle_custom_msg({"type": "perceived", "page_id": page, "events": [heard]}, [])
    assert stage.user_turns() == [
        {"user_mid": "u-1", "clock": "browser:page-7", "first_reply_ms": 450.25, "audio_start_ms": 900.0,
         "heard_ms": 1100.0},
        {"user_mid": "u-2", "clock": "browser:page-7", "first_reply_ms": None, "audio_start_ms": None,
         "heard_ms": None},
    ]  # fmt: skip
    event("user_turn.first_reply", 5300.0, user_mid="u-2", reply_mid="r-2", ms=300.0, ms_from_first=300.0)
    assert stage.user_turn_summary() == {
        "first_reply_ms": {"n": 2, "min": 300.0, "p50": 375.125, "p90": 435.225, "max": 450.25},
        "audio_start_ms": {"n": 1, "min": 900.0, "p50": 900.0, "p90": 900.0, "max": 900.0},
        "heard_ms": {"n": 1, "min": 1100.0, "p50": 1100.0, "p90": 1100.0, "max": 1100.0},
    }


def test_an_attached_stream_records_the_browsers_events() -> None:
    stage = Stage(session("agora", AGORA))
    capture(stage)
    live = LiveSession(AvatarStream(FakeTransport(), session_id="sess-agora"))
    stage.attach(live)
    stage._handle_custom_msg({"type": "event", "page_id": "p", "name": "stage.network", "t": 1.0, "data": {}}, [])
    assert [e.kind for e in live.avatar_stream.recorder.filter("stage.network")] == ["stage.network"]


def test_a_problem_is_reported_but_does_not_close_the_channel() -> None:
    stage = Stage(session("agora", AGORA))
    capture(stage)
    stage._handle_custom_msg({"type": "problem", "page_id": "p", "kind": "subscribe-failed", "message": "no"}, [])
    assert [str(e) for e in stage.errors] == ["the stage could not subscribe to the avatar's media: no"]
    assert not stage.transport.closed


@pytest.mark.parametrize("timeout", [0, -1, 601, "20", True])
def test_the_join_timeout_must_be_a_sensible_number_of_seconds(timeout: Any) -> None:
    with pytest.raises(ValidationError) as info:
        Stage(session("agora", AGORA), join_timeout=timeout)
    assert info.value.field == "join_timeout"


def test_the_join_timeout_defaults_to_20_s_and_is_synced() -> None:
    assert Stage(session("agora", AGORA)).join_timeout == 20.0
    assert Stage(session("agora", AGORA), join_timeout=5).get_state()["join_timeout"] == 5.0


def test_perceived_events_are_recorded_on_the_page_clock_and_give_a_messages_heard_ms() -> None:
    from akool_lab.metrics import message_timings, perceived_timings

    stage = Stage(session("agora", AGORA))
    capture(stage)
    heard = {"type": "heard", "mid": "m-1", "reply_mid": "r-1", "at": 1520.5, "sent_at": 1000.0,
             "audio_start_at": 1400.0, "onset_at": 1520.5, "heard_ms": 520.5, "media_delay_ms": 120.5,
             "jitter_buffer_ms": 30.0, "playout_delay_ms": None}  # fmt: skip
    frame = {"type": "first_frame", "at": 900.0, "width": 640, "height": 480}
    stage._handle_custom_msg({"type": "perceived", "page_id": "page-9", "events": [frame, heard, "junk"]}, [])

    recorded = list(stage.recorder)
    assert [e.kind for e in recorded] == ["perceived.first_frame", "perceived.heard"]
    assert {e.clock for e in recorded} == {"browser:page-9"}
    assert recorded[1].t_ns == 1_520_500_000 and recorded[1].mid == "m-1"
    assert recorded[0].data["width"] == 640 and "at" not in recorded[0].data
    assert perceived_timings(stage.recorder)["m-1"]["heard_ms"] == 520.5
    assert stage.heard()["m-1"]["media_delay_ms"] == 120.5
    assert message_timings(stage.recorder) == []  # no message was sent on this recorder: nothing is invented


def test_on_the_simulator_the_stage_gets_its_media_offer_url_and_token_in_a_message_and_the_sends_relayed() -> None:
    from akool_lab import sim
    from akool_lab.api import AkoolClient
    from akool_lab.target import DEFAULT_AVATAR

    with sim.start(profile="fast") as server:
        client = AkoolClient(server.api_key, base_url=server.base_url)
        created = client.sessions.create(DEFAULT_AVATAR, duration=60, mode_type=1)
        live_session = client.sessions.wait_until_live(created.id, timeout=30)
        token = live_session.credentials.ws_token if live_session.credentials else None
        assert token
        stage = Stage(live_session)
        sent = capture(stage)
        live = stage.connect(client, mode=1)
        try:
            [media] = [c for c, _ in sent if c["type"] == "sim-media"]
            assert media["offer_url"] == f"{server.base_url}/_sim/sessions/{created.id}/webrtc/offer"
            assert media["token"] == token
            assert token not in json.dumps(stage.get_state(), default=str)  # a message, never a trait
            # The page asks again (it was displayed after attach): the same answer, to that page.
            stage._handle_custom_msg({"type": "sim-media-request", "page_id": "page-3"}, [])
            assert sent[-1][0] == {**media, "page_id": "page-3"}

            reply = live.say("Hello there. " * 40, timeout=30)
            wait_until(lambda: any(c["type"] == "sim-message" for c, _ in sent), timeout=5)
            kinds = [(c["type"], c.get("mid") or c.get("message", {}).get("pld", {}).get("event")) for c, _ in sent]
            assert ("sim-sent", reply.mid) in kinds
            assert ("sim-message", "audio_start") in kinds and ("sim-message", "audio_end") in kinds
            assert kinds.index(("sim-sent", reply.mid)) < kinds.index(("sim-message", "audio_start"))
            # Of the reply's chunks, only the first is relayed (for the user-turn timings), without its text.
            chunks = [e for e in live.avatar_stream.recorder.filter("chat.recv") if e.data.get("sender") == "bot"]
            relayed = [c["message"] for c, _ in sent if c["type"] == "sim-message" and c["message"]["type"] == "chat"]
            assert len(chunks) > 1 and relayed == [
                {"v": 2, "type": "chat", "mid": reply.reply_mid, "pld": {"from": "bot"}}
            ]

            # The same stage on a later session: the simulator numbers its replies per session, and the first
            # chunk of that session's first reply is relayed again.
            live.close()
            other = client.sessions.wait_until_live(
                client.sessions.create(DEFAULT_AVATAR, duration=60, mode_type=1).id, timeout=30
            )
            stage.show(other)
            live = stage.connect(client, mode=1)
            sent.clear()
            again = live.say("Hello again. " * 40, timeout=30)
            wait_until(lambda: any(c["type"] == "sim-message" and c["message"]["type"] == "chat" for c, _ in sent), 5)
            assert again.reply_mid == reply.reply_mid, "the simulator numbers replies per session"
            relayed = [c["message"] for c, _ in sent if c["type"] == "sim-message" and c["message"]["type"] == "chat"]
            assert [m["mid"] for m in relayed] == [again.reply_mid]
        finally:
            live.close()
            stage.close()
    assert {"type": "sim-media-stop"} in [c for c, _ in sent]  # closing the stage closes the page's peer
