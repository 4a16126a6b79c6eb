"""The simulator accepts what AKool's official clients send: their chunking (emoji cut in two), their pacing, their
session/create bodies and set-params; and a frame it cannot send ends the stream loudly, never with code 1000."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from akool_lab.sim import SimServer
from akool_lab.sim._limits import ENFORCED, InboundLimiter
from tests.sim.helpers import (
    AVATAR,
    KEY,
    V3,
    V4,
    Message,
    bot_text,
    call,
    chat,
    command,
    create_session,
    is_ack,
    is_event,
    receive_for,
    receive_until,
)
from tests.sim.official_clients import DEMO, SDK, OfficialSender

NS_PER_MS = 1_000_000
GRIN = "\U0001f600"  # two UTF-16 code units: \ud83d \ude00


def run(coro: Any) -> Any:
    """Run one async scenario."""
    return asyncio.run(coro)


async def _send_paced_then_receive(url: str, sender: OfficialSender, text: str, mid: str) -> list[Message]:
    async with websockets.connect(url) as ws:
        await sender.send(ws, sender.frames(text, mid))
        return await receive_until(ws, is_event("audio_end"), timeout=10)


# --- the official splitter: an emoji cut between two chunks ----------------------------------------------


def test_the_official_splitter_does_cut_an_emoji_between_two_chunks() -> None:
    # The premise of the tests below: the JSON on the wire carries each half of the pair alone.
    cut = DEMO.first_cut("msg-1")
    frames = DEMO.frames("a" * (cut - 1) + GRIN + "b" * 10, "msg-1")
    assert len(frames) == 2
    assert frames[0].endswith(b'\\ud83d"}}') and b'"text":"\\ude00b' in frames[1]


@pytest.mark.parametrize("sender", [DEMO, SDK], ids=["demo", "sdk"])
def test_an_emoji_cut_between_chunks_is_spoken_back_whole_in_mode_1(sim: SimServer, sender: OfficialSender) -> None:
    data = create_session(sim, mode_type=1)
    mid = "msg-1730000000000"
    cut = sender.first_cut(mid)
    text = "a" * (cut - 1) + GRIN + " and more text after the emoji. " + GRIN * 3
    assert len(sender.frames(text, mid)) == 2
    seen = run(_send_paced_then_receive(data["credentials"]["ws_url"], sender, text, mid))
    assert bot_text(seen, "r-1") == text
    assert not [m for m in seen if is_event("error")(m)]
    assert sim.truth(data["_id"])["messages"][mid]["text"] == text


def test_every_emoji_of_a_long_emoji_text_survives_the_official_chunking(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)
    text = "".join(chr(0x1F600 + i % 64) for i in range(700))  # 1,400 code units: cut many times, at odd places
    frames = DEMO.frames(text, "msg-2")
    assert len(frames) >= 3 and any(b"\\ud83d" in f for f in frames)
    seen = run(_send_paced_then_receive(data["credentials"]["ws_url"], DEMO, text, "msg-2"))
    assert bot_text(seen, "r-1") == text


def test_a_surrogate_left_alone_becomes_a_replacement_character_and_the_stream_goes_on(sim: SimServer) -> None:
    url = create_session(sim, mode_type=1)["credentials"]["ws_url"]
    lone = '{"v":2,"type":"chat","mid":"m","idx":0,"fin":true,"pld":{"text":"half \\ud83d here"}}'

    async def scenario() -> list[Message]:
        async with websockets.connect(url) as ws:
            await ws.send(lone)
            seen = await receive_until(ws, is_event("audio_end"))
            await ws.send(chat("n", "Still here."))
            return seen + await receive_until(ws, is_event("audio_end", "r-2"))

    seen = run(scenario())
    assert bot_text(seen, "r-1") == "half \ufffd here" and bot_text(seen, "r-2") == "Still here."


# --- a frame that cannot be sent ------------------------------------------------------------------------


def test_a_frame_that_cannot_be_sent_is_logged_reported_and_ends_the_stream_with_1011(
    sim: SimServer, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # A reply piece that UTF-8 cannot encode (a lone surrogate) makes the socket's send fail, as it did before
    # chunks were joined: the failure must reach the client, the log and the truth, not end in a quiet 1000.
    monkeypatch.setattr("akool_lab.sim._stream.tts_chunks", lambda text: ["Fine. ", "\ud83d broken"])
    data = create_session(sim, mode_type=1)

    async def scenario() -> tuple[list[Message], int | None]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await ws.send(chat("m", "Anything."))
            seen = await receive_for(ws, 3)
            return seen, ws.close_code

    with caplog.at_level(logging.ERROR, logger="akool_lab.sim"):
        seen, code = run(scenario())
    assert code == 1011
    assert [m["pld"]["text"] for m in seen if m["type"] == "chat"] == ["Fine. "]
    error = seen[-1]
    assert error["type"] == "event" and error["pld"]["event"] == "error" and error["pld"]["code"] == 1218
    assert "UnicodeEncodeError" in error["pld"]["msg"]
    assert any("could not be sent" in r.getMessage() and r.exc_info for r in caplog.records)
    assert [e["event"] for e in sim.truth(data["_id"])["events"]] == ["send_failed"]


# --- pacing: what the official clients send is accepted --------------------------------------------------


def _sdk_schedule(sender: OfficialSender, frame_bytes: int, seconds: float) -> Iterator[int]:
    """Send times (ns) of one long message's frames of ``frame_bytes``, paced as ``sender`` paces them.

    Worst case for the service: ``Date.now()`` makes the client's measured send time up to 1 ms longer and a timer
    may fire up to 1 ms early, so each gap is ``minimumTimeMs - 2`` ms.
    """
    gap_ns = (sender.minimum_ms(frame_bytes) - 2) * NS_PER_MS
    t = 0
    while t <= seconds * 1e9:
        yield t
        t += gap_ns


@pytest.mark.parametrize("provider", ["agora", "websocket"])
def test_sixty_seconds_of_the_sdk_pacing_at_6000_bytes_per_second_are_accepted(provider: str) -> None:
    limiter = InboundLimiter(ENFORCED[provider], now_ns=0)
    refused = [t for t in _sdk_schedule(SDK, 950, 60.0) if limiter.admit(950, t) is not None]
    assert refused == []


@pytest.mark.parametrize(("provider", "rate"), [("agora", 5760), ("livekit", 5760), ("trtc", 7680)])
def test_sixty_seconds_of_the_demo_pacing_are_accepted(provider: str, rate: int) -> None:
    limiter = InboundLimiter(ENFORCED[provider], now_ns=0)
    demo = OfficialSender(960, rate)
    refused = [t for t in _sdk_schedule(demo, 960, 60.0) if limiter.admit(960, t) is not None]
    assert refused == []


def test_sending_well_over_the_rate_is_refused_within_seconds() -> None:
    limiter = InboundLimiter(ENFORCED["agora"], now_ns=0)
    every_100_ms = (i * 100 * NS_PER_MS for i in range(600))  # 9,500 B/s
    first_refusal = next(t for t in every_100_ms if limiter.admit(950, t) is not None)
    assert first_refusal < 2_000 * NS_PER_MS
    assert limiter.admit(950, first_refusal + 1) == "over the agora rate of 6144 B/s"


def test_a_burst_of_four_full_messages_is_accepted_and_a_fifth_is_not() -> None:
    limiter = InboundLimiter(ENFORCED["agora"], now_ns=0)
    assert [limiter.admit(1024, 0) for _ in range(4)] == [None] * 4
    assert limiter.admit(1024, 0) is not None


def test_the_sdk_pacing_of_950_byte_frames_over_a_real_socket_is_accepted(sim: SimServer) -> None:
    data = create_session(sim, mode_type=2)
    mid = "msg-1730000000001"
    # 20 frames of exactly 950 bytes (3 s at the SDK's pacing): one long question.
    frames = [SDK.encode("q" * (950 - len(SDK.encode("", i, i == 19, mid))), i, i == 19, mid) for i in range(20)]
    assert {len(f) for f in frames} == {950}

    async def scenario() -> list[Message]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await SDK.send(ws, frames)
            return await receive_until(ws, is_event("audio_end"), timeout=10)

    seen = run(scenario())
    assert not [m for m in seen if is_event("error")(m)]
    truth = sim.truth(data["_id"])
    assert truth["messages"][mid]["reply_mid"] == "r-1" and not truth["events"]
    assert truth["budget"]["bytes_per_second"] == 6144


# --- the official clients' REST bodies and commands ------------------------------------------------------


@pytest.mark.parametrize("stream_type", ["agora", "livekit", "trtc"])
def test_the_demo_create_body_with_its_empty_defaults_is_accepted(sim: SimServer, stream_type: str) -> None:
    body = {
        "avatar_id": AVATAR,
        "duration": 10 * 60,
        "knowledge_id": "",
        "voice_id": "",
        "voice_url": "",
        "language": "en",
        "mode_type": 2,
        "background_url": "",
        "voice_params": {},
        "stream_type": stream_type,
    }
    answer = call(sim, "POST", f"{V4}/liveAvatar/session/create", json=body)
    assert answer["code"] == 1000, answer
    assert answer["data"]["stream_type"] == stream_type and answer["data"]["status"] == 1


def test_the_demo_set_params_with_vid_and_vparams_together_are_acked_and_applied(sim: SimServer) -> None:
    data = create_session(sim, mode_type=2)
    # What the demo sends after joining (empty values dropped, the voice params object kept even when empty),
    # then after the user picked a voice, a speed and mode 1 in its settings panel.
    at_join = {"vid": "sim_voice_en_female_1", "lang": "en", "mode": 2, "vparams": {}}
    changed = {
        "vid": "sim_voice_en_female_1",
        "lang": "es-ES",
        "mode": 1,
        "vparams": {"vid": "sim_voice_es_female_1", "speed": 1.1, "stt_language": "es"},
    }
    frames = [
        command("msg-1730000000100", "set-params", at_join),
        command("msg-1730000000200", "set-params", changed),
        chat("msg-1730000000300", "Speak this."),
    ]

    async def scenario() -> list[Message]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            for frame in frames:
                await ws.send(frame)
            return await receive_until(ws, is_event("audio_end"))

    seen = run(scenario())
    acks = [m for m in seen if is_ack("msg-1730000000100")(m) or is_ack("msg-1730000000200")(m)]
    assert [a["pld"]["code"] for a in acks] == [1000, 1000]
    assert bot_text(seen, "r-1") == "Speak this."
    settings = sim.truth(data["_id"])["messages"]["msg-1730000000300"]["settings"]
    assert settings["mode"] == 1 and settings["lang"] == "es-ES" and settings["voice_id"] == "sim_voice_es_female_1"
    assert settings["speed"] == 1.1


def test_the_demo_interrupt_without_data_is_acked(sim: SimServer) -> None:
    url = create_session(sim)["credentials"]["ws_url"]

    async def scenario() -> list[Message]:
        async with websockets.connect(url) as ws:
            await ws.send('{"v":2,"type":"command","mid":"msg-1730000000400","pld":{"cmd":"interrupt"}}')
            return await receive_until(ws, is_ack("msg-1730000000400"))

    assert run(scenario())[-1]["pld"] == {"cmd": "interrupt", "code": 1000, "msg": "OK"}


@pytest.mark.parametrize(
    "credentials",
    [
        # the plugin's schema in AKOOL-Official/livekit_agents
        {"livekit_url": "wss://room.example", "livekit_token": "user-token", "audio_only_from_data_stream": True},
        # the audio source fields described for the plugin (AKOOL_API.md section 3.1)
        {
            "livekit_url": "wss://room.example",
            "livekit_token": "user-token",
            "audio_input_source": "audio_track",
            "audio_publisher_identity": "agent-1",
        },
    ],
    ids=["audio_only_from_data_stream", "audio_input_source"],
)
def test_the_livekit_plugin_flow_is_accepted(sim: SimServer, credentials: dict[str, Any]) -> None:
    token = call(sim, "POST", f"{V3}/getToken", key=None, json={"clientId": "lk-agent", "clientSecret": KEY})["token"]
    bearer = {"Authorization": f"Bearer {token}"}
    body = {
        "avatar_id": AVATAR,
        "mode_type": 2,
        "scene_mode": "meeting",
        "stream_type": "livekit",
        "credentials": credentials,
        "voice_params": {"speed": 1.0, "pron_map": {"akool": "ai ku er"}},
    }
    created = call(sim, "POST", f"{V4}/liveAvatar/session/create", key=None, headers=bearer, json=body)
    assert created["code"] == 1000, created
    creds = created["data"]["credentials"]
    assert creds["livekit_url"] == "wss://room.example" and creds["livekit_token"] == "user-token"
    assert sim.truth(created["data"]["_id"])["scene_mode"] == "meeting"
    closed = call(
        sim,
        "POST",
        f"{V4}/liveAvatar/session/close",
        key=None,
        headers=bearer,
        json={"session_id": created["data"]["_id"]},
    )
    assert closed["code"] == 1000


@pytest.mark.parametrize(
    ("credentials", "field"),
    [
        ({"audio_input_source": "microphone"}, "credentials.audio_input_source"),
        ({"audio_only_from_data_stream": "yes"}, "credentials.audio_only_from_data_stream"),
        ({"livekit_token": 5}, "credentials.livekit_token"),
        ("wss://room", "credentials"),
    ],
)
def test_malformed_request_credentials_are_1003_naming_the_field(sim: SimServer, credentials: Any, field: str) -> None:
    body = {"avatar_id": AVATAR, "stream_type": "livekit", "credentials": credentials}
    answer = call(sim, "POST", f"{V4}/liveAvatar/session/create", json=body)
    assert answer["code"] == 1003 and answer["msg"].startswith(field + ":"), answer


def test_trtc_room_credentials_under_the_demo_names_are_taken_for_the_room(sim: SimServer) -> None:
    body = {
        "avatar_id": AVATAR,
        "stream_type": "trtc",
        "credentials": {
            "trtc_app_id": 1400000001,
            "trtc_room_id": "my-room",
            "trtc_user_id": "me",
            "trtc_user_sig": "s",
        },
    }
    creds = call(sim, "POST", f"{V4}/liveAvatar/session/create", json=body)["data"]["credentials"]
    assert creds["trtc_sdk_app_id"] == 1400000001 and creds["trtc_sdk_room_id"] == "my-room"


def test_chunks_without_idx_are_assembled_in_arrival_order(sim: SimServer) -> None:
    url = create_session(sim, mode_type=1)["credentials"]["ws_url"]
    frames = [
        '{"v":2,"type":"chat","mid":"m","fin":false,"pld":{"text":"First, "}}',
        '{"v":2,"type":"chat","mid":"m","fin":false,"pld":{"text":"then "}}',
        '{"v":2,"type":"chat","mid":"m","fin":true,"pld":{"text":"last."}}',
    ]

    async def scenario() -> list[Message]:
        async with websockets.connect(url) as ws:
            for frame in frames:
                await ws.send(frame)
            return await receive_until(ws, is_event("audio_end"))

    assert bot_text(run(scenario()), "r-1") == "First, then last."


def test_the_demo_vparams_of_a_fast_dialogue_session_are_accepted(sim: SimServer) -> None:
    # The demo sends the voice_params object it created the session with as vparams.
    url = create_session(sim, scene_mode="fast_dialogue", voice_params={"voice_id": "alloy"})["credentials"]["ws_url"]
    data = {"lang": "en", "mode": 2, "vparams": {"voice_id": "alloy", "stt_language": "en"}}

    async def scenario() -> list[Message]:
        async with websockets.connect(url) as ws:
            await ws.send(command("msg-1730000000500", "set-params", data))
            return await receive_until(ws, is_ack("msg-1730000000500"))

    assert run(scenario())[-1]["pld"]["code"] == 1000
