"""The simulator as a WebRTC avatar, seen from a receiving peer (aiortc standing in for the browser)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc")

from akool_lab import sim
from tests.media._client import AUDIBLE, chat, connect, create_session, run, wait_for

#: Sixty words: 120 ms of speech on the fast profile (2 ms a word), long enough to be heard and seen.
TEXT = " ".join(["Hello from the simulated avatar, speaking on a real WebRTC track."] * 6)


@pytest.fixture
def server() -> Iterator[sim.SimServer]:
    with sim.start(profile="fast") as handle:
        yield handle


def test_importing_akool_lab_and_its_simulator_loads_no_webrtc_code() -> None:
    code = (
        "import sys, akool_lab, akool_lab.sim, akool_lab.sim._app, akool_lab.sim._server\n"
        "loaded = [m for m in ('aiortc', 'av', 'espeakng_loader', 'numpy') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_a_reply_is_heard_on_the_audio_track_from_its_audio_start(server: sim.SimServer) -> None:
    session = create_session(server)

    async def scenario() -> tuple[int, int, int, int, list[int]]:
        client, response = await connect(server, session)
        assert response.status_code == 200
        try:
            await wait_for(lambda: len(client.audio) >= 10, 20, "audio frames before any reply")
            silent_before = [f.peak for f in client.audio]
            sent = client.send(chat("m-1", TEXT))
            await wait_for(lambda: bool(client.events("audio_start")), 20, "audio_start")
            await wait_for(lambda: client.first_audible_after(sent) is not None, 20, "the first audible frame")
            heard = client.first_audible_after(sent)
            assert heard is not None
            await wait_for(lambda: bool(client.events("audio_end")), 20, "audio_end")
            start_at = client.events("audio_start")[0][0]
            loudest = max(f.peak for f in client.audio if f.at_ns > sent)
            return sent, start_at, heard.at_ns, loudest, silent_before
        finally:
            await client.close()

    sent, audio_start_at, heard_at, peak, silent_before = run(scenario(), timeout=60)
    assert max(silent_before) <= AUDIBLE  # silence between utterances
    assert peak > 3000  # speech-like level
    truth = server.truth(session["_id"])["messages"]["m-1"]
    media = truth["media"]
    assert media["heard"] is True
    assert media["voice"] in ("espeak-wheel", "espeak-binary", "fallback")
    # The first sample went in at the planned audio_start (the clip was synthesized in time, or nearly).
    assert abs(media["first_sample_ms"] - truth["planned_ttfa_ms"]) < 50
    heard_ms = (heard_at - sent) / 1e6
    # Heard after the simulator put the sound in (the question reaches it over the data channel first), and not
    # long after: loopback, one 20 ms frame, a jitter buffer.
    assert media["first_sample_ms"] - 5 < heard_ms < media["first_sample_ms"] + 1000
    assert heard_at > audio_start_at - 50_000_000


def test_the_data_channel_carries_the_v2_protocol_and_acks_commands(server: sim.SimServer) -> None:
    session = create_session(server)

    async def scenario() -> list[dict[str, Any]]:
        client, _ = await connect(server, session)
        try:
            client.send({"v": 2, "type": "command", "mid": "c-1", "pld": {"cmd": "set-params", "data": {"mode": 1}}})
            client.send(chat("m-2", "Say this back."))
            await wait_for(lambda: bool(client.events("audio_end")), 20, "the reply's audio_end")
            await wait_for(lambda: any(m.get("type") == "command" for _, m in client.messages), 20, "the ack")
            return [m for _, m in client.messages]
        finally:
            await client.close()

    messages = run(scenario(), timeout=60)
    ack = next(m for m in messages if m.get("type") == "command")
    assert ack["mid"] == "c-1" and ack["pld"]["code"] == 1000
    bot = "".join(m["pld"]["text"] for m in messages if m.get("type") == "chat" and m["pld"].get("from") == "bot")
    assert bot == "Say this back."
    assert server.truth(session["_id"])["messages"]["m-2"]["ttfa_ms"] is not None


def test_the_face_opens_its_mouth_while_the_avatar_speaks(server: sim.SimServer) -> None:
    session = create_session(server)
    long_text = " ".join(["The mouth follows the voice."] * 100)  # 500 words: one second on the fast profile

    async def scenario() -> tuple[list[np.ndarray], list[np.ndarray]]:
        client, _ = await connect(server, session, keep_video=True)
        try:
            await wait_for(lambda: len(client.video) >= 5, 30, "video frames")
            idle = [frame for _, frame in client.video[-3:]]
            client.send(chat("m-3", long_text))
            await wait_for(lambda: bool(client.events("audio_start")), 20, "audio_start")
            start = client.events("audio_start")[0][0]
            await wait_for(lambda: bool(client.events("audio_end")), 20, "audio_end")
            end = client.events("audio_end")[0][0]
            await wait_for(lambda: client.video[-1][0] > end + 300_000_000, 20, "frames after the reply")
            speaking = [frame for at, frame in client.video if start + 200_000_000 < at < end]
            return idle, speaking
        finally:
            await client.close()

    idle, speaking = run(scenario(), timeout=90)
    assert idle and speaking
    assert idle[0].shape == (192, 192)

    # The mouth is the dark region in the lower middle of the face; it grows while the avatar speaks.
    def mouth_dark(frame: np.ndarray) -> int:
        return int((frame[115:150, 70:122] < 80).sum())

    assert max(mouth_dark(f) for f in speaking) > 3 * max(mouth_dark(f) for f in idle)


def test_an_offer_without_the_session_token_is_refused(server: sim.SimServer) -> None:
    session = create_session(server)

    async def scenario() -> dict[str, object]:
        client, response = await connect(server, session, token="not-the-token")
        await client.close()
        body: dict[str, object] = response.json()
        return body

    body = run(scenario(), timeout=60)
    assert body["code"] == 1101


def test_a_second_data_channel_client_is_refused_while_one_is_connected(server: sim.SimServer) -> None:
    session = create_session(server)

    async def scenario() -> list[dict[str, object]]:
        first, _ = await connect(server, session)
        try:
            second, _ = await connect(server, session)  # replaces the media peer: the first one's channel closes
            try:
                await wait_for(lambda: first.channel.readyState == "closed", 20, "the first channel to close")
                started = time.monotonic()
                second.send(chat("m-4", "Still here."))
                await wait_for(lambda: bool(second.events("audio_end")), 20, "the second client's reply")
                assert time.monotonic() - started < 20
                return [m for _, m in second.messages]
            finally:
                await second.close()
        finally:
            await first.close()

    messages = run(scenario(), timeout=90)
    assert any(m.get("type") == "chat" for m in messages)


def test_a_webrtc_data_channel_is_refused_while_a_websocket_client_holds_the_session(server: sim.SimServer) -> None:
    import websockets

    session = create_session(server)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(session["credentials"]["ws_url"]) as socket:
            await wait_for(lambda: server.truth(session["_id"])["connected"], 20, "the WebSocket client")
            client, _ = await connect(server, session)
            try:
                await wait_for(lambda: bool(client.events("error")), 20, "the refusal")
                await wait_for(lambda: client.channel.readyState == "closed", 20, "the channel to close")
                return [m for _, m in client.messages]
            finally:
                await client.close()
                await socket.close()

    messages = run(scenario(), timeout=60)
    assert messages[0]["pld"] == {
        "event": "error",
        "code": 4003,
        "msg": "another client is connected to this session",
    }


def test_an_interrupt_silences_the_audio_track(server: sim.SimServer) -> None:
    session = create_session(server)
    long_text = " ".join(["This reply is long enough to be interrupted."] * 125)  # 1,000 words: 2 s of speech

    async def scenario() -> tuple[int, int]:
        client, _ = await connect(server, session)
        try:
            sent = client.send(chat("m-5", long_text))
            await wait_for(lambda: client.first_audible_after(sent) is not None, 20, "the speech")
            interrupted = client.send({"v": 2, "type": "command", "mid": "c-5", "pld": {"cmd": "interrupt"}})
            await wait_for(lambda: bool(client.events("audio_end")), 20, "audio_end")
            await wait_for(lambda: client.audio[-1].at_ns > interrupted + 1_500_000_000, 20, "1.5 s more audio")
            last_loud = max(f.at_ns for f in client.audio if f.peak > AUDIBLE)
            return interrupted, last_loud
        finally:
            await client.close()

    interrupted, last_loud = run(scenario(), timeout=60)
    truth = server.truth(session["_id"])["messages"]["m-5"]
    assert truth["interrupted"] is True
    # The speech would have gone on for 2 s; it stops within the media path's delay of the interrupt.
    assert last_loud - interrupted < 700_000_000
    assert truth["media"]["heard"] is True
