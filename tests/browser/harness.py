"""The real-browser test harness: a private JupyterLab server, notebooks, and helpers to drive them from Playwright.

The pytest fixtures live in ``tests/browser/conftest.py``; this module holds everything a test imports::

    from tests.browser.harness import open_and_run_notebook, widget_locator, write_notebook

Design notes
------------
* The server runs with private ``JUPYTER_CONFIG_DIR``/``JUPYTER_DATA_DIR``/``JUPYTER_RUNTIME_DIR``/``IPYTHONDIR`` so
  nothing from the user's Jupyter setup leaks in, a ``python3`` kernelspec pointing at this interpreter (the venv),
  no network traffic of its own (no news, no update check, read-only extension manager) and
  ``LabApp.expose_app_in_browser`` so tests drive JupyterLab through its command registry (``window.jupyterapp``)
  instead of clicking through menus.
* Notebooks are opened in a fresh JupyterLab workspace per call, so tabs left by one test never reopen in the next.
* Running is ``notebook:run-all-cells`` on the opened panel; completion is the promise that command returns, and the
  result is read back from the notebook model (execution counts and error outputs), not from the DOM.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from playwright.sync_api import Browser, Locator, Page, Playwright, expect

from benchmarks.bench_media import MEDIA_ARGS

#: The repository root (``tests/browser/harness.py`` → two levels up from ``tests``).
REPO_ROOT = Path(__file__).resolve().parents[2]
#: Where screenshots and other browser-test artefacts go (``test-output/`` is git-ignored).
OUTPUT_DIR = REPO_ROOT / "test-output" / "browser"

#: Flags for Debian's chromium: headless, no sandbox (we run as root), and no network of its own.
CHROMIUM_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
)

#: Credentials that must never reach a kernel started by the harness.
_SCRUBBED_ENV = ("AKOOL_API_KEY", "AKOOL_CLIENT_ID", "AKOOL_CLIENT_SECRET", "AKOOL_BASE_URL", "AKOOL_SIM_API_KEY")

#: JupyterLab user settings written into the private config dir: quiet, deterministic rendering.
_USER_SETTINGS: dict[str, dict[str, Any]] = {
    # Never fetch (or ask about) the Jupyter news feed.
    "@jupyterlab/apputils-extension/notification": {"fetchNews": "false"},
    # Attach every cell to the DOM, so widgets in cells below the fold are rendered and locatable.
    "@jupyterlab/notebook-extension/tracker": {"windowingMode": "none"},
}


class HarnessError(RuntimeError):
    """The harness itself could not do its job (server did not start, notebook did not open...)."""


class NotebookExecutionError(AssertionError):
    """A notebook run in the browser did not complete: a cell raised, or the run timed out."""


# --------------------------------------------------------------------------------------------------------------------
# Notebooks


def write_notebook(path: Path | str, cells: Sequence[str], *, kernel_name: str = "python3") -> Path:
    """Write a notebook made of the given code cells (in order) to ``path`` and return the path.

    The notebook carries ``python3`` kernelspec metadata, so JupyterLab starts the kernel without asking.
    """
    notebook = nbformat.v4.new_notebook()  # type: ignore[no-untyped-call]
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]  # type: ignore[no-untyped-call]
    notebook.metadata["kernelspec"] = {
        "name": kernel_name,
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    notebook.metadata["language_info"] = {"name": "python"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(notebook, path)  # type: ignore[no-untyped-call]
    return path


# --------------------------------------------------------------------------------------------------------------------
# The JupyterLab server


@dataclass
class JupyterServer:
    """A running private JupyterLab server (see :func:`start_jupyter_server`)."""

    url: str
    """Base URL, e.g. ``http://127.0.0.1:8888/`` (always ends with ``/``)."""
    token: str
    root_dir: Path
    """The server's ``root_dir``: notebooks must live under it to be opened."""
    log_path: Path
    """The server's combined stdout/stderr."""
    startup_seconds: float
    """From process start until ``/api/status`` answered."""
    env: dict[str, str] = field(repr=False)
    process: subprocess.Popen[bytes] = field(repr=False)

    def api(self, path: str, *, method: str = "GET", timeout: float = 10.0) -> Any:
        """Call the server's REST API (``path`` like ``api/sessions``) and return the decoded JSON (or ``None``)."""
        request = urllib.request.Request(
            self.url + path.lstrip("/"), method=method, headers={"Authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=timeout) as response:
            body = response.read()
        return json.loads(body) if body else None

    def lab_url(self, notebook: str, *, workspace: str) -> str:
        """The URL that opens ``notebook`` (relative to :attr:`root_dir`) in a named JupyterLab workspace."""
        quoted = urllib.request.pathname2url(notebook)
        return f"{self.url}lab/workspaces/{workspace}/tree/{quoted.lstrip('/')}?token={self.token}"

    def log_tail(self, lines: int = 60) -> str:
        """The last ``lines`` lines of the server log (for failure messages)."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError as error:
            return f"<server log unreadable: {error}>"
        return "\n".join(text.splitlines()[-lines:])

    def shutdown_kernels(self) -> None:
        """Shut down every session (and so its kernel) the browser opened; errors are ignored."""
        try:
            sessions = self.api("api/sessions")
        except (OSError, urllib.error.URLError, ValueError):
            return
        for session in sessions or []:
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                self.api(f"api/sessions/{session['id']}", method="DELETE", timeout=20.0)

    def stop(self, timeout: float = 15.0) -> None:
        """Stop the server: a clean ``/api/shutdown`` (which also stops its kernels), then signals if need be."""
        if self.process.poll() is None:
            with contextlib.suppress(OSError, urllib.error.URLError, ValueError):
                self.api("api/shutdown", method="POST", timeout=timeout)
            _wait_or_kill(self.process, timeout)


def _wait_or_kill(process: subprocess.Popen[bytes], timeout: float) -> None:
    """Wait for ``process`` (started in its own session) to exit; SIGTERM then SIGKILL its process group if not."""
    for sig in (None, signal.SIGTERM, signal.SIGKILL):
        if sig is not None:
            try:
                os.killpg(process.pid, sig)
            except ProcessLookupError:
                return
        try:
            process.wait(timeout=timeout)
            return
        except subprocess.TimeoutExpired:
            continue


def _private_jupyter_dirs(base: Path) -> dict[str, Path]:
    """Create the private Jupyter directories (config with quiet user settings, data with our kernelspec)."""
    dirs = {name: base / name for name in ("config", "data", "runtime", "ipython", "root", "jupyter_path")}
    for directory in dirs.values():
        directory.mkdir(parents=True, exist_ok=True)
    # The python3 kernel is this interpreter (the venv's), whatever else is installed on the machine.
    kernel_dir = dirs["jupyter_path"] / "kernels" / "python3"
    kernel_dir.mkdir(parents=True, exist_ok=True)
    kernelspec = {
        "argv": [sys.executable, "-Xfrozen_modules=off", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
        "metadata": {"debugger": False},
    }
    (kernel_dir / "kernel.json").write_text(json.dumps(kernelspec, indent=1), encoding="utf-8")
    for plugin, settings in _USER_SETTINGS.items():
        settings_file = dirs["config"] / "lab" / "user-settings" / f"{plugin}.jupyterlab-settings"
        settings_file.parent.mkdir(parents=True, exist_ok=True)
        settings_file.write_text(json.dumps(settings), encoding="utf-8")
    return dirs


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_jupyter_server(
    base_dir: Path, *, extra_env: Mapping[str, str] | None = None, timeout: float = 60.0
) -> JupyterServer:
    """Start a private JupyterLab server under ``base_dir`` and wait until its API answers.

    ``extra_env`` is added to the server's environment, which every kernel inherits (e.g. ``AKOOL_LAB_HOME``). AKool
    credentials are removed from the inherited environment. Raises :class:`HarnessError` with the server log when the
    server does not answer within ``timeout`` seconds. The caller must :meth:`JupyterServer.stop` it.
    """
    dirs = _private_jupyter_dirs(base_dir)
    token = secrets.token_hex(24)
    log_path = base_dir / "jupyterlab.log"
    env = {key: value for key, value in os.environ.items() if key not in _SCRUBBED_ENV}
    env.update(
        JUPYTER_CONFIG_DIR=str(dirs["config"]),
        JUPYTER_DATA_DIR=str(dirs["data"]),
        JUPYTER_RUNTIME_DIR=str(dirs["runtime"]),
        JUPYTER_PATH=str(dirs["jupyter_path"]),
        IPYTHONDIR=str(dirs["ipython"]),
        JUPYTER_PLATFORM_DIRS="1",
        PYDEVD_DISABLE_FILE_VALIDATION="1",
        PYTHONUNBUFFERED="1",
    )
    env.pop("JUPYTER_TOKEN", None)
    env.update(extra_env or {})
    command = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--no-browser",
        "--allow-root",
        "--ip=127.0.0.1",
        f"--port={_free_port()}",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={dirs['root']}",
        "--ServerApp.terminals_enabled=False",
        "--ServerApp.log_level=INFO",
        "--KernelSpecManager.ensure_native_kernel=False",
        "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.extension_manager=readonly",
        "--LabApp.expose_app_in_browser=True",
        "--LanguageServerManager.autodetect=False",
    ]
    started = time.monotonic()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            command, env=env, cwd=dirs["root"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    server = JupyterServer(
        url="",
        token=token,
        root_dir=dirs["root"],
        log_path=log_path,
        startup_seconds=0.0,
        env=env,
        process=process,
    )
    try:
        server.url = _wait_until_ready(process, dirs["runtime"], token, log_path, timeout)
    except BaseException:
        _wait_or_kill(process, 5.0)
        raise
    server.startup_seconds = time.monotonic() - started
    return server


def _wait_until_ready(
    process: subprocess.Popen[bytes], runtime_dir: Path, token: str, log_path: Path, timeout: float
) -> str:
    """Wait for the server's runtime file (which has its real port) and then for ``/api/status``; return its URL."""
    deadline = time.monotonic() + timeout
    runtime_file = runtime_dir / f"jpserver-{process.pid}.json"
    url = ""
    last_error: object = "no runtime file yet"
    while time.monotonic() < deadline:
        if process.poll() is not None:
            last_error = f"server exited with code {process.returncode}"
            break
        try:
            if not url:
                info = json.loads(runtime_file.read_text(encoding="utf-8"))
                url = f"http://127.0.0.1:{info['port']}/"
            with urllib.request.urlopen(f"{url}api/status?token={token}", timeout=2.0) as response:
                if response.status == 200:
                    return url
        except (OSError, ValueError, KeyError) as error:
            last_error = error
        time.sleep(0.1)
    log = log_path.read_text(encoding="utf-8", errors="replace") if log_path.exists() else "<no log>"
    raise HarnessError(
        f"JupyterLab did not answer /api/status within {timeout:.0f} s ({last_error}).\n--- server log ---\n{log}"
    )


# --------------------------------------------------------------------------------------------------------------------
# Driving a notebook in the browser

# Finds the notebook panel for a path among the main-area widgets of the exposed JupyterLab app.
_FIND_PANEL_JS = """
(path) => {
  const app = window.jupyterapp;
  if (!app || !app.shell) return null;
  for (const widget of app.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.content && widget.content.model) return widget;
  }
  return null;
}
"""

_KERNEL_IDLE_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL_JS})(path);
  if (!panel || !panel.context.isReady) return false;
  const sessionContext = panel.sessionContext;
  return Boolean(sessionContext.isReady && sessionContext.session && sessionContext.session.kernel
                 && sessionContext.session.kernel.status === 'idle' && !sessionContext.pendingInput);
}}
"""

_START_RUN_ALL_JS = f"""
async (path) => {{
  const app = window.jupyterapp;
  const panel = ({_FIND_PANEL_JS})(path);
  app.shell.activateById(panel.id);
  const state = {{done: false, ok: null, error: null}};
  window.__akoolLabRun = state;
  Promise.resolve(app.commands.execute('notebook:run-all-cells'))
    .then((ok) => {{ state.ok = ok; }}, (error) => {{ state.error = String(error && error.stack || error); }})
    .finally(() => {{ state.done = true; }});
  return true;
}}
"""

_NOTEBOOK_JSON_JS = f"""
(path) => {{
  const panel = ({_FIND_PANEL_JS})(path);
  return {{notebook: panel.content.model.toJSON(), kernel: panel.sessionContext.session.kernel.status,
           run: window.__akoolLabRun}};
}}
"""


@dataclass(frozen=True)
class NotebookRun:
    """The outcome of :func:`open_and_run_notebook`."""

    path: str
    """The notebook path relative to the server's root dir."""
    url: str
    notebook: dict[str, Any]
    """The executed notebook as JupyterLab's model holds it (nbformat JSON, outputs included)."""
    open_seconds: float
    """From navigation until the kernel was idle."""
    run_seconds: float
    """From "run all" until every cell had replied."""

    def outputs_text(self) -> str:
        """All stream/text outputs of the run, concatenated (handy for asserting on ``print``)."""
        return _outputs_text(self.notebook)


def _outputs_text(notebook: Mapping[str, Any]) -> str:
    parts: list[str] = []
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(_joined(output.get("text", "")))
            elif "text/plain" in output.get("data", {}):
                parts.append(_joined(output["data"]["text/plain"]))
    return "".join(parts)


def _joined(text: str | list[str]) -> str:
    return text if isinstance(text, str) else "".join(text)


def _errors_of(notebook: Mapping[str, Any]) -> list[str]:
    """Human-readable error outputs (and never-run code cells) of an executed notebook."""
    problems: list[str] = []
    code_cells = [cell for cell in notebook.get("cells", []) if cell.get("cell_type") == "code"]
    for index, cell in enumerate(code_cells):
        for output in cell.get("outputs", []):
            if output.get("output_type") == "error":
                traceback = _strip_ansi("\n".join(output.get("traceback", [])))
                source = _joined(cell.get("source", ""))
                problems.append(
                    f"code cell {index} raised {output.get('ename')}: {output.get('evalue')}\n"
                    f"--- cell source ---\n{source}\n--- traceback ---\n{traceback}"
                )
        if cell.get("execution_count") is None and _joined(cell.get("source", "")).strip() and not problems:
            problems.append(f"code cell {index} was not executed")
    return problems


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", text)


def open_and_run_notebook(
    page: Page, server: JupyterServer, notebook_path: Path | str, *, timeout: float = 60.0
) -> NotebookRun:
    """Open a notebook in JupyterLab, run all its cells, wait for them to finish and return the result.

    ``notebook_path`` is copied into the server's root dir unless it is already inside it. The notebook opens in a
    fresh workspace; once its kernel is idle, ``notebook:run-all-cells`` runs it. Raises
    :class:`NotebookExecutionError` with each failing cell's source and traceback if a cell raised (later cells are
    then not run), or when opening plus running took longer than ``timeout`` seconds.
    """
    source = Path(notebook_path).resolve()
    root = server.root_dir.resolve()
    if root not in source.parents:
        target = root / source.name
        shutil.copyfile(source, target)
        source = target
    relative = source.relative_to(root).as_posix()
    workspace = f"akool-lab-{secrets.token_hex(4)}"
    url = server.lab_url(relative, workspace=workspace)
    deadline = time.monotonic() + timeout

    def remaining_ms() -> float:
        return max(1.0, (deadline - time.monotonic()) * 1000)

    started = time.monotonic()
    page.goto(url, wait_until="domcontentloaded", timeout=remaining_ms())
    try:
        page.wait_for_function(_KERNEL_IDLE_JS, arg=relative, timeout=remaining_ms(), polling=100)
    except Exception as error:
        raise NotebookExecutionError(
            f"{relative}: the notebook did not open with an idle kernel within {timeout:.0f} s ({error})"
        ) from error
    opened = time.monotonic()
    page.evaluate(_START_RUN_ALL_JS, relative)
    try:
        page.wait_for_function(
            "() => window.__akoolLabRun && window.__akoolLabRun.done", timeout=remaining_ms(), polling=100
        )
    except Exception as error:
        state = page.evaluate(_NOTEBOOK_JSON_JS, relative)
        problems = _errors_of(state["notebook"])
        raise NotebookExecutionError(
            f"{relative}: running all cells did not finish within {timeout:.0f} s\n" + "\n\n".join(problems)
        ) from error
    finished = time.monotonic()
    state = page.evaluate(_NOTEBOOK_JSON_JS, relative)
    run = state["run"] or {}
    if run.get("error"):
        raise NotebookExecutionError(f"{relative}: notebook:run-all-cells failed in the browser: {run['error']}")
    problems = _errors_of(state["notebook"])
    if problems or run.get("ok") is False:
        raise NotebookExecutionError(
            f"{relative}: the notebook run failed\n\n" + ("\n\n".join(problems) or "run-all reported failure")
        )
    return NotebookRun(
        path=relative,
        url=url,
        notebook=state["notebook"],
        open_seconds=opened - started,
        run_seconds=finished - opened,
    )


# --------------------------------------------------------------------------------------------------------------------
# Finding rendered widgets


def widget_locator(page: Page, css_class: str, *, index: int | None = None, timeout: float = 15.0) -> Locator:
    """The rendered DOM of the widget given ``widget.add_class(css_class)`` in the notebook, once it is visible.

    With ``index=None`` the widget must be displayed exactly once (a cell ending in ``w.add_class(...)`` displays ``w``
    again, since ``add_class`` returns the widget); pass ``index`` to pick one of several displays. Fails (Playwright
    ``AssertionError``) when no such element is visible within ``timeout`` seconds.
    """
    locator = page.locator(f".jp-OutputArea-output .{css_class}")
    if index is None:
        expect(locator, f"widget .{css_class} should be displayed exactly once").to_have_count(
            1, timeout=timeout * 1000
        )
    else:
        locator = locator.nth(index)
    expect(locator, f"widget .{css_class} should be visible").to_be_visible(timeout=timeout * 1000)
    return locator


def wait_for_text(locator: Locator, text: str, *, timeout: float = 10.0) -> None:
    """Wait until ``text`` appears in the element's visible text (or an input's value), failing after ``timeout``."""
    deadline_ms = timeout * 1000
    locator.first.wait_for(state="attached", timeout=deadline_ms)
    is_input = locator.evaluate("(el) => el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement")
    if is_input:
        expect(locator).to_have_value(re.compile(re.escape(text)), timeout=deadline_ms)
    else:
        expect(locator).to_contain_text(text, timeout=deadline_ms)


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as ``test-output/browser/<name>.png`` and return its path."""
    OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    path = OUTPUT_DIR / f"{safe_file_name(name)}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def safe_file_name(name: str) -> str:
    """``name`` with every character outside ``[A-Za-z0-9._-]`` replaced by ``_`` (test ids have ``[...]``)."""
    return "".join(char if char.isalnum() or char in "._-" else "_" for char in name).strip("_") or "unnamed"


def launch_media_chromium(playwright: Playwright, executable: str, *extra_args: str) -> Browser:
    """Chromium with the stage's media flags (``bench_media.MEDIA_ARGS``: fake capture devices, autoplay allowed),
    plus ``extra_args`` (another fake capture file, say)."""
    return playwright.chromium.launch(executable_path=executable, headless=True, args=[*MEDIA_ARGS, *extra_args])


@contextlib.contextmanager
def media_context_page(browser: Browser) -> Iterator[Page]:
    """A page in a fresh context of ``browser`` with a 60 s default timeout (a WebRTC round trip to the simulator
    can take a while); the context closes afterwards."""
    context = browser.new_context()
    context.set_default_timeout(60_000)
    try:
        yield context.new_page()
    finally:
        context.close()
