"""The voice loop on the simulator: the user's microphone over WebRTC -> voice activity -> offline transcription
(PocketSphinx) -> ``from: "user"`` messages, and in dialogue mode the avatar's answer."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

pytest.importorskip("aiortc")
pytest.importorskip("pocketsphinx")

from akool_lab import sim
from akool_lab.sim.media._listen import transcribe
from akool_lab.sim.media._speech_audio import synthesize
from tests.media._client import ClipTrack, connect, create_session, run, wait_for

SAID = "hello avatar what is the weather like today"


@pytest.fixture
def server() -> Iterator[sim.SimServer]:
    with sim.start(profile="fast") as handle:
        yield handle


def test_pocketsphinx_transcribes_speech_offline() -> None:
    clip = synthesize(SAID)
    at_16k = clip.samples[: len(clip.samples) // 3 * 3].reshape(-1, 3).mean(axis=1).astype(np.int16)
    heard = transcribe(at_16k)
    # eSpeak's voice is hard for PocketSphinx: some words, not all of them; several, not a one-word guess (it
    # answers "the" to digital silence, which is why only what the voice activity detector cut out reaches it).
    assert len(heard.split()) >= 3


def test_speaking_into_the_microphone_produces_a_user_transcript_and_a_reply(server: sim.SimServer) -> None:
    session = create_session(server, mode=2)
    microphone = ClipTrack(synthesize(SAID).samples, delay_s=0.8)

    async def scenario() -> list[dict[str, Any]]:
        client, response = await connect(server, session, microphone=microphone)
        assert response.json()["code"] == 1000
        try:

            def user_chat() -> bool:
                return any(m.get("type") == "chat" and m["pld"].get("from") == "user" for _, m in client.messages)

            await wait_for(user_chat, 60, "the user's transcript")
            await wait_for(lambda: bool(client.events("audio_start")), 30, "the avatar's answer")
            return [m for _, m in client.messages]
        finally:
            await client.close()

    messages = run(scenario(), timeout=120)
    user = [m for m in messages if m.get("type") == "chat" and m["pld"].get("from") == "user"]
    transcript = "".join(m["pld"]["text"] for m in user)
    assert transcript.strip()
    assert user[0]["mid"].startswith("u-")
    assert any(m.get("type") == "chat" and m["pld"].get("from") == "bot" for m in messages)
    truth = server.truth(session["_id"])
    utterances = [e for e in truth["events"] if e["event"] == "user_utterance"]
    assert len(utterances) == 1
    assert utterances[0]["transcript"] == transcript
    # The utterance was cut where the speech ended: about as long as the clip, plus at most the pre-roll.
    assert 1000 < utterances[0]["speech_ms"] < 6000
    assert truth["messages"][user[0]["mid"]]["source"] == "user_speech"
