"""The voice loop in Chromium: the page's (fake) microphone says a sentence to the simulator's WebRTC avatar, which
transcribes it offline and answers; the page receives the ``from: "user"`` transcript and times the user's turn.

Chromium's fake capture device plays a WAV file made here with the simulator's own speech synthesizer.
"""

from __future__ import annotations

import wave
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Browser, Page, Playwright

from akool_lab import sim
from benchmarks.bench_media import _WITH_TIMEOUT, create_session, serve_pages
from tests.browser.harness import launch_media_chromium, media_context_page

pytest.importorskip("aiortc")
pytest.importorskip("pocketsphinx")

SAID = "hello avatar what is the weather like today"


@pytest.fixture(scope="module")
def spoken_wav(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from akool_lab.sim.media._speech_audio import SAMPLE_RATE, synthesize

    samples = synthesize(SAID).samples
    # One second of silence, the sentence, then silence long enough for the turn to end before the file loops.
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.int16), samples, np.zeros(4 * SAMPLE_RATE, np.int16)])
    path = tmp_path_factory.mktemp("voice") / "said.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(audio.tobytes())
    return path


@pytest.fixture(scope="module")
def talking_browser(playwright: Playwright, chromium_executable: str, spoken_wav: Path) -> Iterator[Browser]:
    browser = launch_media_chromium(playwright, chromium_executable, f"--use-file-for-fake-audio-capture={spoken_wav}")
    yield browser
    browser.close()


@pytest.fixture
def talking_page(talking_browser: Browser) -> Iterator[Page]:
    with media_context_page(talking_browser) as page:
        yield page


def test_talking_into_the_microphone_gives_a_user_transcript_and_a_timed_reply(talking_page: Page) -> None:
    # The realistic profile: its replies last as long as speech does (the fast one gives a word 2 ms, too short to
    # synthesize a new reply before its audio_end).
    with serve_pages() as base, sim.start(profile="realistic") as server:
        session = create_session(server, mode=2)
        talking_page.goto(f"{base}/avatar.html")
        talking_page.wait_for_function("window.pageReady === true")
        talking_page.evaluate(
            _WITH_TIMEOUT.format(call="window.connectAvatar(o)"),
            {
                "simUrl": server.base_url,
                "sessionId": session["_id"],
                "token": session["credentials"]["ws_token"],
                "microphone": True,
                "timeoutMs": 60_000,
            },
        )
        try:
            turn = talking_page.evaluate(_WITH_TIMEOUT.format(call="window.waitForUserTurn(o)"), {"timeoutMs": 60_000})
        finally:
            talking_page.evaluate("() => window.closeAvatar()")
        truth = server.truth(session["_id"])
    assert turn["transcript"].strip()
    assert turn["user_mid"].startswith("u-")
    # Timed on the page's clock: the answer comes after the transcript, after the profile's think time (about
    # 650 ms to audio_start) plus the page's own latency.
    assert 0 <= turn["first_reply_chunk_ms"] < 5000
    assert 0 <= turn["audio_start_ms"] < 5000
    # And heard: the answer's first audible sample, timed from the transcript (the user's turn, perceived).
    assert turn["heard_mid"] == turn["user_mid"]
    assert turn["audio_start_ms"] < turn["user_heard_ms"] < 6000
    assert 0 < turn["media_delay_ms"] < 1000
    assert {"event": "microphone_received"} in truth["events"]
    utterances = [e for e in truth["events"] if e["event"] == "user_utterance" and e.get("mid") == turn["user_mid"]]
    assert utterances and utterances[0]["transcript"] == turn["transcript"]
