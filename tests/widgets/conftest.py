"""Fixtures of the widget tests: one simulator per module, a real REST client per test, and a polling wait.

The panels are driven as a notebook user drives them (set a value, ``.click()``); their work runs on the I/O loop,
so every check waits for its condition with a timeout instead of sleeping a fixed time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.events import Recorder

T = TypeVar("T")

AVATAR = "dvp_Tristan_cloth2_1080P"


def wait_until(condition: Callable[[], T], *, timeout: float = 10.0, what: str = "the condition") -> T:
    """Poll ``condition`` every 10 ms until it returns something truthy (returned), failing after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.01)


@pytest.fixture(scope="module")
def server() -> Iterator[sim.SimServer]:
    with sim.start(profile="fast", seed=11) as s:
        yield s


@pytest.fixture
def client(server: sim.SimServer) -> Iterator[AkoolClient]:
    server.set_faults(None)
    with AkoolClient(server.api_key, base_url=server.base_url, recorder=Recorder()) as c:
        yield c
        # Whatever a test left open is closed here, so no session outlives its test.
        c.close_all()
    server.set_faults(None)
