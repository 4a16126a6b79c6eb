"""One way for tests to wait: for a condition, with a timeout (never a fixed sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["wait_until"]


def wait_until(predicate: Callable[[], object], timeout: float = 5.0, what: str = "the condition") -> None:
    """Return as soon as ``predicate()`` is true; fail the test (``AssertionError`` naming ``what``) after ``timeout``.

    It polls with a short, growing interval (0.5 ms up to 10 ms), so a condition that holds quickly costs almost
    nothing and a slow one does not spin the CPU.
    """
    deadline = time.monotonic() + timeout
    interval = 0.0005
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(interval)
        interval = min(interval * 2, 0.01)
