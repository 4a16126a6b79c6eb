"""The realistic profile (the default wherever a person meets the simulator): what its figures do."""

from __future__ import annotations

import random
import statistics

from akool_lab.sim._latency import PROFILES, profile_named


def test_the_voice_speed_changes_how_long_speech_lasts() -> None:
    realistic = profile_named("realistic")
    text = " ".join(["word"] * 150)  # one minute at 150 words a minute, speed 1.0
    assert realistic.speak(text, 1.0) == 60_000.0
    assert realistic.speak(text, 1.2) == 50_000.0 and realistic.speak(text, 0.8) == 75_000.0


def test_mode_2_thinks_about_900_ms_on_the_realistic_profile_and_not_on_the_test_profiles() -> None:
    rng = random.Random(0)
    thinking = [profile_named("realistic").think(rng) for _ in range(2000)]
    assert 800 < statistics.median(thinking) < 1000
    assert profile_named("zero").think(rng) == 0.0 and profile_named("fast").think(rng) < 10


def test_every_profile_has_every_figure() -> None:
    assert set(PROFILES) == {"zero", "fast", "realistic", "degraded"}
    for profile in PROFILES.values():
        assert len(profile.think_ms) == 2 and profile.think_ms[0] >= 0
