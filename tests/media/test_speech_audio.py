"""The simulated avatar's voice: eSpeak NG from the wheel, Debian's program, or the deterministic fallback."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from akool_lab.sim.media import _speech_audio as speech
from akool_lab.sim.media._speech_audio import SAMPLE_RATE, TRIM_THRESHOLD, synthesize

TEXT = "Hello, I am the simulated avatar. How can I help you today?"


def _loudness_over_time(samples: np.ndarray, window_ms: float = 20.0) -> np.ndarray:
    size = int(SAMPLE_RATE * window_ms / 1000)
    usable = len(samples) // size * size
    frames = samples[:usable].astype(np.float64).reshape(-1, size)
    levels: np.ndarray = np.sqrt(np.mean(frames**2, axis=1))
    return levels


def test_espeak_from_the_wheel_speaks_the_text_as_48khz_speech() -> None:
    pytest.importorskip("espeakng_loader")
    clip = synthesize(TEXT, voice="espeak-wheel")
    assert clip.voice == "espeak-wheel"
    assert clip.samples.dtype == np.int16
    # Eleven words at eSpeak's 175 words a minute: a few seconds, not a blip and not silence.
    assert 1500 < clip.duration_ms < 8000
    levels = _loudness_over_time(clip.samples)
    assert levels.max() > 1000  # speech-like level
    assert (levels < 0.1 * levels.max()).any()  # pauses between words: it is speech, not a tone


def test_espeak_speaks_faster_when_the_voice_speed_is_raised() -> None:
    pytest.importorskip("espeakng_loader")
    normal = synthesize(TEXT, voice="espeak-wheel", speed=1.0)
    fast = synthesize(TEXT, voice="espeak-wheel", speed=1.2)
    assert fast.duration_ms < 0.95 * normal.duration_ms


def test_every_clip_starts_with_its_first_audible_sample() -> None:
    for voice in speech.available_voices():
        clip = synthesize(TEXT, voice=voice)
        assert abs(int(clip.samples[0])) > TRIM_THRESHOLD, voice
        assert abs(int(clip.samples[-1])) > TRIM_THRESHOLD, voice


def test_the_fallback_voice_is_deterministic_and_differs_between_texts() -> None:
    one = synthesize(TEXT, voice="fallback")
    again = synthesize(TEXT, voice="fallback")
    other = synthesize("Something else entirely, said by the avatar.", voice="fallback")
    assert one.voice == "fallback"
    assert np.array_equal(one.samples, again.samples)
    assert not np.array_equal(one.samples[: len(other.samples)], other.samples[: len(one.samples)])
    assert _loudness_over_time(one.samples).max() > 1000
    # Roughly the pace of speech: about 170 words a minute.
    assert 2000 < one.duration_ms < 7000


def test_without_any_synthesizer_the_fallback_voice_speaks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech, "_library", None)
    monkeypatch.setattr(speech, "_library_error", "not installed (test)")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    clip = synthesize(TEXT)
    assert clip.voice == "fallback"
    assert np.array_equal(clip.samples, synthesize(TEXT, voice="fallback").samples)


def test_debian_espeak_program_speaks_when_installed() -> None:
    if shutil.which("espeak-ng") is None:
        pytest.skip("Debian's espeak-ng is not installed (the wheel is what the media extra brings)")
    clip = synthesize(TEXT, voice="espeak-binary")
    assert clip.voice == "espeak-binary"
    assert 1500 < clip.duration_ms < 8000


def test_an_unknown_voice_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="voice: expected one of espeak-wheel, espeak-binary, fallback"):
        synthesize(TEXT, voice="nope")
