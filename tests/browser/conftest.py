r"""Fixtures for the real-browser tests: Debian's chromium, a private JupyterLab server, and a Playwright page.

* ``chromium_executable`` (session): path to Debian's chromium; the test FAILS (not skips) when it is missing.
* ``jupyter_server_factory`` (session): ``factory(extra_env=None) -> JupyterServer``; one server per distinct env,
  started on first use and reused for the whole session.
* ``jupyter_server`` (session): the default server (its kernels get a private ``AKOOL_LAB_HOME``).
* ``browser`` (session) / ``page`` (function): chromium through Playwright's sync API, a fresh 1280x900 context per
  test.
* ``media_browser`` (module) / ``media_page`` (function): chromium with the media flags (``bench_media.MEDIA_ARGS``:
  fake capture devices, autoplay allowed), for the pages of ``benchmarks/bench_media.py``. When a test fails its page is saved to ``test-output/browser/<test name>.png`` and the report gains the
  browser console and the tail of the JupyterLab log. After each test the kernels it opened are shut down.

Each server's log is copied to ``test-output/browser/jupyterlab-<n>.log`` when the session ends. The helpers tests
call (``write_notebook``, ``open_and_run_notebook``, ``widget_locator``, ``wait_for_text``, ``screenshot``) are in
``harness.py``. A browser test reads::

    from tests.browser.harness import open_and_run_notebook, wait_for_text, widget_locator, write_notebook

    def test_the_button_pings_the_kernel(page, jupyter_server, tmp_path):
        notebook = write_notebook(tmp_path / "ping.ipynb", [
            "import ipywidgets as w\nb = w.Button(description='ping').add_class('ping')\n"
            "b.on_click(lambda _: setattr(b, 'description', 'pong'))\nb",
        ])
        open_and_run_notebook(page, jupyter_server, notebook)
        button = widget_locator(page, "ping")
        button.click()
        wait_for_text(button, "pong")
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Generator, Iterator, Mapping
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Playwright, ViewportSize, sync_playwright

from tests.browser.harness import (
    CHROMIUM_ARGS,
    OUTPUT_DIR,
    JupyterServer,
    launch_media_chromium,
    media_context_page,
    screenshot,
    start_jupyter_server,
)

#: Browser-wide defaults: big enough for a notebook with an avatar stage next to controls.
VIEWPORT: ViewportSize = {"width": 1280, "height": 900}
#: Playwright's default timeout for every action and expectation, in milliseconds.
DEFAULT_TIMEOUT_MS = 15_000

JupyterServerFactory = Callable[..., JupyterServer]

_PAGE = pytest.StashKey[Page]()
_CONSOLE = pytest.StashKey[list[str]]()
_SERVERS = pytest.StashKey[dict[tuple[tuple[str, str], ...], JupyterServer]]()


# --------------------------------------------------------------------------------------------------------------------
# Reporting hooks


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On failure: screenshot the test's page, attach its browser console and the JupyterLab log tail to the report."""
    report = yield
    if report.failed:
        page = item.stash.get(_PAGE, None)
        if page is not None and not page.is_closed():
            try:
                console_note = f"[harness] failure screenshot: {screenshot(page, item.name)}"
            except Error as error:
                console_note = f"[harness] could not take the failure screenshot: {error}"
            item.stash.setdefault(_CONSOLE, []).append(console_note)
        console = item.stash.get(_CONSOLE, None)
        if console:
            report.sections.append(("browser console", "\n".join(console[-200:])))
        for index, server in enumerate(item.config.stash.get(_SERVERS, {}).values()):
            title = f"jupyterlab log (tail; whole log in {OUTPUT_DIR / f'jupyterlab-{index}.log'} after the session)"
            report.sections.append((title, server.log_tail(40)))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    """Report how long each JupyterLab server took to start."""
    for server in config.stash.get(_SERVERS, {}).values():
        terminalreporter.write_line(
            f"browser tests: JupyterLab at {server.url} started in {server.startup_seconds:.1f} s"
        )


# --------------------------------------------------------------------------------------------------------------------
# Chromium and Playwright


@pytest.fixture(scope="session")
def chromium_executable() -> str:
    """Debian's chromium; fails the test (these tests must run in CI) with the fix when it is not installed."""
    found = shutil.which("chromium") or ("/usr/bin/chromium" if os.access("/usr/bin/chromium", os.X_OK) else None)
    if not found:
        pytest.fail(
            "chromium is not installed: the browser tests need Debian's chromium. Run `make chromium` "
            "(as root: apt-get update && apt-get install -y chromium).",
            pytrace=False,
        )
    return found


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    """Playwright's sync API, started once per session."""
    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="session")
def browser(playwright: Playwright, chromium_executable: str) -> Iterator[Browser]:
    """One headless chromium for the whole session (each test gets its own context in ``page``)."""
    browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=list(CHROMIUM_ARGS))
    yield browser
    browser.close()


@pytest.fixture(scope="module")
def media_browser(playwright: Playwright, chromium_executable: str) -> Iterator[Browser]:
    """Chromium with autoplay allowed and fake capture devices (the stage's media flags), one per test module."""
    browser = launch_media_chromium(playwright, chromium_executable)
    yield browser
    browser.close()


@pytest.fixture
def media_page(media_browser: Browser) -> Iterator[Page]:
    """A fresh context and page of :func:`media_browser` (a WebRTC round trip to the simulator can take a while)."""
    with media_context_page(media_browser) as page:
        yield page


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    """A fresh page in a fresh 1280x900 browser context; screenshot + console attached when the test fails."""
    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    console: list[str] = []
    request.node.stash[_CONSOLE] = console

    def on_console(message: ConsoleMessage) -> None:
        console.append(f"[{message.type}] {message.text}")

    def on_page_error(error: Error) -> None:
        console.append(f"[pageerror] {error.message}\n{error.stack or ''}")

    page.on("console", on_console)
    page.on("pageerror", on_page_error)
    request.node.stash[_PAGE] = page
    yield page
    del request.node.stash[_PAGE]
    context.close()
    for server in request.config.stash.get(_SERVERS, {}).values():
        server.shutdown_kernels()


# --------------------------------------------------------------------------------------------------------------------
# JupyterLab


@pytest.fixture(scope="session")
def jupyter_server_factory(request: pytest.FixtureRequest) -> Iterator[JupyterServerFactory]:
    """``factory(extra_env=None, timeout=60.0) -> JupyterServer``: a private JupyterLab, one per distinct env.

    Every server's kernels run with the server's environment: pass e.g. ``{"AKOOL_LAB_HOME": ...}`` to give them
    one. A server is started on first request and reused for the rest of the session; all are stopped at the end.
    """
    servers = request.config.stash.setdefault(_SERVERS, {})
    base = Path(tempfile.mkdtemp(prefix="akool-lab-jupyter-"))

    def factory(extra_env: Mapping[str, str] | None = None, *, timeout: float = 60.0) -> JupyterServer:
        key = tuple(sorted((extra_env or {}).items()))
        if key not in servers:
            server_dir = base / f"server{len(servers)}"
            home = server_dir / "akool_lab_home"
            home.mkdir(parents=True)
            env = {"AKOOL_LAB_HOME": str(home), **(extra_env or {})}
            servers[key] = start_jupyter_server(server_dir, extra_env=env, timeout=timeout)
        return servers[key]

    yield factory
    for index, server in enumerate(servers.values()):
        server.stop()
        OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(server.log_path, OUTPUT_DIR / f"jupyterlab-{index}.log")
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="session")
def jupyter_server(jupyter_server_factory: JupyterServerFactory) -> JupyterServer:
    """The session's default JupyterLab server (``url``, ``token``, ``root_dir``, ``log_path``...)."""
    return jupyter_server_factory()
