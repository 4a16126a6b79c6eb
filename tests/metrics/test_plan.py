"""Duration planning: each session's duration comes from its messages, and a plan that cannot fit is refused with a
ValidationError before a single request is made (a session costs credits as soon as it exists)."""

from __future__ import annotations

from typing import Any, cast

import pytest

from akool_lab.errors import ValidationError
from akool_lab.metrics import run_experiment
from akool_lab.metrics._plan import MAX_DURATION_S, estimate_speech_s, plan_session

from .fakes import FakeClient

#: About 60 words: some 28 s of speech at the planning rate.
LONG = " ".join(["word"] * 60)


def run(client: FakeClient, **kwargs: Any) -> Any:
    kwargs.setdefault("progress", False)
    return run_experiment(cast(Any, client), **kwargs)


def test_the_planned_duration_grows_with_the_speech_and_is_what_each_session_is_created_with() -> None:
    client = FakeClient()
    result = run(client, prompts=["Hello there.", LONG], sessions=2, messages_per_session=4)
    expected = plan_session(["Hello there.", LONG] * 2, mode=1, until="audio_end").duration_s
    assert set(client.durations.values()) == {expected}
    assert result.params["duration"] == expected and result.params["duration_planned"] is True
    short = plan_session(["Hello there."] * 4, mode=1, until="audio_end").duration_s
    assert expected - short == pytest.approx(2 * (estimate_speech_s(LONG) - estimate_speech_s("Hello there.")), abs=1)


def test_a_faster_voice_shortens_the_planned_speech() -> None:
    slow = plan_session([LONG] * 10, mode=1, until="audio_end", combo={"vparams": {"speed": 0.8}})
    fast = plan_session([LONG] * 10, mode=1, until="audio_end", combo={"vparams": {"speed": 1.2}})
    assert slow.speech_s == pytest.approx(fast.speech_s * 1.5)
    assert slow.duration_s > fast.duration_s


def test_until_audio_start_does_not_pay_for_speech() -> None:
    whole = plan_session([LONG] * 20, mode=1, until="audio_end")
    cut = plan_session([LONG] * 20, mode=1, until="audio_start")
    assert cut.speech_s == 0 and cut.duration_s < whole.duration_s - 500


def test_a_plan_longer_than_akool_allows_is_refused_before_any_request() -> None:
    client = FakeClient()
    with pytest.raises(ValidationError) as info:
        run(client, prompts=[LONG], sessions=2, messages_per_session=200)
    text = str(info.value)
    assert "messages_per_session" in text and f"{MAX_DURATION_S:,} s" in text and "until='audio_start'" in text
    assert client.requests == 0 and client.created == []


def test_a_duration_too_short_for_the_plan_is_refused_before_any_request() -> None:
    client = FakeClient()
    with pytest.raises(ValidationError) as info:
        run(client, prompts=[LONG], sessions=1, messages_per_session=5, duration=60)
    assert "duration" in str(info.value) and "too short" in str(info.value)
    assert client.requests == 0 and client.created == []


def test_a_duration_long_enough_is_used_as_given() -> None:
    client = FakeClient()
    run(client, prompts=["Hi."], sessions=1, messages_per_session=2, duration=600)
    assert list(client.durations.values()) == [600]


def test_an_unknown_until_is_refused_before_any_request() -> None:
    client = FakeClient()
    with pytest.raises(ValidationError, match="until"):
        run(client, sessions=1, messages_per_session=1, until="forever")
    assert client.requests == 0
