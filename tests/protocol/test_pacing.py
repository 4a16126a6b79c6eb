"""Pacer: a token bucket per provider that returns delays (ns) and reserves the slot; it never sleeps."""

from __future__ import annotations

import itertools

import pytest

from akool_lab.errors import ValidationError
from akool_lab.protocol import AGORA, LIVEKIT, LIVEKIT_UNPACED, TRTC, Pacer, ProviderBudget

SECOND = 1_000_000_000


def test_the_first_message_goes_at_once() -> None:
    assert Pacer(AGORA).delay_for(960, now=0) == 0


def test_a_second_full_message_waits_960_over_5760_seconds_on_agora() -> None:
    pacer = Pacer(AGORA)
    pacer.delay_for(960, now=0)
    assert pacer.delay_for(960, now=0) == -(-960 * SECOND // 5760)  # 166_666_667 ns, rounded up


def test_delays_account_for_reserved_slots_when_scheduled_up_front() -> None:
    pacer = Pacer(AGORA)
    delays = [pacer.delay_for(960, now=0) for _ in range(4)]
    # k/6 s for the k-th message; rounding each send time up to a whole ns may add at most 1 ns per message.
    assert all(0 <= delay - k * SECOND // 6 <= k for k, delay in enumerate(delays))


def test_time_that_passed_refills_the_bucket() -> None:
    pacer = Pacer(AGORA)
    pacer.delay_for(960, now=0)
    assert pacer.delay_for(960, now=SECOND) == 0


def test_the_long_run_rate_is_the_providers_byte_rate() -> None:
    pacer = Pacer(AGORA)
    now = 0
    for _ in range(60):
        now += pacer.delay_for(960, now)
    # 60 full messages: one free burst, then 59 at 5760 B/s.
    assert now == pytest.approx(59 * 960 / 5760 * SECOND, abs=60)


def test_trtc_sends_at_most_30_messages_in_any_window_of_the_sdk() -> None:
    pacer = Pacer(TRTC)
    now, sent = 0, []
    for _ in range(100):
        now += pacer.delay_for(10, now)  # tiny messages: only the message rate binds
        sent.append(now)
    assert all(later - earlier >= SECOND // 29 for earlier, later in itertools.pairwise(sent))
    # The SDK checks the calls made less than 1,000 ms after the one that opened its window: at most 30 may be there.
    assert max(sum(1 for t in sent if start <= t < start + SECOND) for start in sent) == 29


def test_trtc_full_messages_wait_for_the_byte_rate() -> None:
    pacer = Pacer(TRTC)
    pacer.delay_for(960, now=0)
    assert pacer.delay_for(960, now=0) == 137_142_858  # 960 / 7000 s, rounded up


def test_livekit_is_paced_like_the_official_demo() -> None:
    pacer = Pacer(LIVEKIT)
    pacer.delay_for(960, now=0)
    assert pacer.delay_for(960, now=0) == 166_666_667  # 960 / 5760 s, as on Agora


def test_livekit_unpaced_sends_back_to_back() -> None:
    pacer = Pacer(LIVEKIT_UNPACED)
    assert [pacer.delay_for(960, now=0) for _ in range(50)] == [0] * 50


def test_a_message_over_the_hard_limit_is_rejected() -> None:
    with pytest.raises(ValidationError) as info:
        Pacer(AGORA).delay_for(1025, now=0)
    assert info.value.field == "nbytes" and info.value.allowed == "0..1024"


def test_trtc_refuses_what_its_sdk_refuses_above_1000_bytes() -> None:
    assert Pacer(TRTC).delay_for(1000, now=0) == 0
    with pytest.raises(ValidationError) as info:
        Pacer(TRTC).delay_for(1001, now=0)
    assert info.value.allowed == "0..1000"


@pytest.mark.parametrize("budget", [AGORA, TRTC, LIVEKIT, LIVEKIT_UNPACED], ids=lambda b: b.name)
def test_ready_says_whether_delay_for_would_be_zero_and_reserves_nothing(budget: ProviderBudget) -> None:
    pacer = Pacer(budget)
    twin = Pacer(budget)
    for now in (0, 0, 0, SECOND // 100, SECOND // 10, SECOND // 10, SECOND):
        ready = pacer.ready(900, now)
        assert ready == pacer.ready(900, now)  # asking twice changes nothing
        assert ready == (pacer.delay_for(900, now) == 0)
        twin.delay_for(900, now)
    assert pacer.delay_for(900, SECOND) == twin.delay_for(900, SECOND)  # the same reservations as without ready()
