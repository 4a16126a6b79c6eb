"""Fixtures of the simulator tests: a fresh simulator per test (they share no state), fast profile."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from akool_lab.sim import SimServer, start
from tests.sim.helpers import KEY


@pytest.fixture
def sim() -> Iterator[SimServer]:
    """A simulator on a free loopback port, fast profile, no faults."""
    with start(api_key=KEY, seed=7, profile="fast") as server:
        yield server


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[SimServer]:
    """One simulator for the read-only tests of a module."""
    with start(api_key=KEY, seed=7, profile="fast") as server:
        yield server
