"""The short soak of ``make test``: 10 sessions over ~12 s with mixed faults (fast profile: the degraded one queues
each session 3-8 s, which is for the long soak in ``benchmarks/soak.py``), then nothing may be left behind."""

from __future__ import annotations

import pytest

from benchmarks.soak import MIXED_FAULTS, SoakFigures, run_soak

#: Warm-up is one session, so this is the growth of 10 more sessions with their clients and recorders released.
#: Generous on purpose: tracemalloc counts allocator caches and the interpreter's own lazy structures too.
MEMORY_GROWTH_LIMIT_KIB = 4096


@pytest.fixture(scope="module")
def figures(tmp_path_factory: pytest.TempPathFactory) -> SoakFigures:
    # Module-scoped, so it runs before the per-test AKOOL_LAB_HOME of tests/conftest.py: give it its own.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("AKOOL_LAB_HOME", str(tmp_path_factory.mktemp("soak_home")))
        env.delenv("AKOOL_API_KEY", raising=False)
        return run_soak(sessions=10, seconds=12, profile="fast", faults=MIXED_FAULTS, seed=2)


def test_the_soak_ran_every_session_and_hit_faults(figures: SoakFigures) -> None:
    assert figures.sessions_started == 10 and figures.sessions_created >= 8
    assert figures.messages > 0 and set(figures.outcomes) - {"ok"}, figures.outcomes


def test_the_soak_leaves_no_session_open_in_the_ledger_or_the_journal(figures: SoakFigures) -> None:
    assert figures.leaked_sessions == 0 and figures.journal_open == 0, figures.ledger_states


def test_the_soak_raises_only_documented_errors(figures: SoakFigures) -> None:
    assert figures.unexpected == []


def test_the_soak_leaves_no_thread_behind(figures: SoakFigures) -> None:
    # Same names as after the warm-up: the I/O loop thread and its executor worker(s) stay, nothing else.
    # The executor (closes run off the I/O loop) may have grown to more idle workers, bounded by its max_workers.
    def shape(names: list[str]) -> list[str]:
        return [n for n in names if not n.startswith("asyncio_")]

    assert shape(figures.threads_after) == shape(figures.threads_before)
    assert len(figures.threads_after) - len(figures.threads_before) <= 4


def test_the_soak_leaves_no_socket_or_file_descriptor_behind(figures: SoakFigures) -> None:
    # "after" is measured once the simulator has stopped (its listening socket closed), so it may only be lower;
    # a tolerance of 2 allows a pooled keep-alive connection that the pool closes lazily.
    assert figures.fds_after <= figures.fds_before + 2


def test_the_soak_memory_is_flat_after_the_warm_up(figures: SoakFigures) -> None:
    assert figures.traced_kib_after - figures.traced_kib_after_warmup < MEMORY_GROWTH_LIMIT_KIB
