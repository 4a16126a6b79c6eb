"""Fixtures shared by the whole suite.

Every test runs with a private ``AKOOL_LAB_HOME`` (so the session journal never touches the user's data dir) and
without any AKool credentials from the environment (so nothing can reach the real service by accident).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

#: The canary key: tests that check for leaks run with it and search every output for it.
CANARY_KEY = "akl-canary-7f3e9c1d5b2a4860"

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
OPENAPI_PATH = SHARED / "reference" / "akool-live-avatar.openapi.yaml"


@pytest.fixture(autouse=True)
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    home = tmp_path_factory.mktemp("akool_lab_home")
    monkeypatch.setenv("AKOOL_LAB_HOME", str(home))
    for name in ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET", "AKOOL_BASE_URL", "AKOOL_SIM_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AKOOL_SIM_DIALECT", raising=False)  # every simulator speaks documented unless a test says
    yield
    # Sessions a test left open would otherwise be closed at interpreter exit through a server (or a mock) that
    # is long gone; tests that check the exit registry do so explicitly.
    from akool_lab.api._journal import REGISTRY

    REGISTRY.clear()


@pytest.fixture(scope="session")
def openapi_spec() -> dict[str, object]:
    """AKool's own OpenAPI description, read once from ../shared (the test is skipped when it is absent)."""
    if not OPENAPI_PATH.exists():
        pytest.skip("../shared/reference/akool-live-avatar.openapi.yaml is absent")
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spec: dict[str, object] = yaml.load(OPENAPI_PATH.read_text(encoding="utf-8"), Loader=loader)
    return spec


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the real-browser tests last.

    Playwright's sync API keeps an event loop running on the main thread for as long as its (session-scoped)
    browser lives, and ``asyncio.run()`` refuses to start inside a running loop: tests that call it must run first.
    """
    items.sort(key=lambda item: "tests/browser/" in item.nodeid.replace("\\", "/"))
