"""Stand-ins for the provider SDKs the stage imports from a CDN, and helpers for the stage's browser tests.

The CDNs are unreachable here (and in CI), so :func:`serve_standins` serves the ``*-stub.js`` modules of this folder
from loopback, with CORS headers (the notebook page is on another port, and module scripts are fetched in CORS mode);
the notebook then points the stage's ``sdk_urls`` at them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import threading
import urllib.request
from collections.abc import Callable, Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from socketserver import BaseRequestHandler
from typing import Any, ClassVar

from playwright.sync_api import Page

from tests.browser.harness import JupyterServer

HERE = Path(__file__).parent


class QuietHandler(SimpleHTTPRequestHandler):
    """Serves files to any origin, never cached, without logging each request (the test output is for failures)."""

    extensions_map: ClassVar[dict[str, str]] = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
    }

    def end_headers(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_on_loopback(handler: Callable[..., BaseRequestHandler], name: str) -> Iterator[str]:
    """Run an HTTP server with ``handler`` on a free loopback port in a thread; yields ``http://127.0.0.1:PORT``."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextlib.contextmanager
def serve_standins() -> Iterator[str]:
    """Serve this folder on a free loopback port; yields its base URL (``http://127.0.0.1:PORT/``)."""
    with serve_on_loopback(functools.partial(QuietHandler, directory=str(HERE)), "standin-sdk-server") as base:
        yield base + "/"


_WIDGET_MANAGER_PLUGIN = "@jupyter-widgets/jupyterlab-manager:plugin"


def _put_setting(server: JupyterServer, plugin: str, raw: dict[str, Any]) -> None:
    request = urllib.request.Request(
        f"{server.url}lab/api/settings/{plugin}",
        data=json.dumps({"raw": json.dumps(raw)}).encode(),
        method="PUT",
        headers={"Authorization": f"token {server.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 204), response.status


@contextlib.contextmanager
def saved_widget_state(server: JupyterServer) -> Iterator[None]:
    """Have JupyterLab save the widget state into notebooks (``saveState``) for the duration; then restore it."""
    _put_setting(server, _WIDGET_MANAGER_PLUGIN, {"saveState": True})
    try:
        yield
    finally:
        _put_setting(server, _WIDGET_MANAGER_PLUGIN, {})


_PANEL_JS = """
(path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path && widget.sessionContext) return widget;
  }
  throw new Error('no notebook panel for ' + path);
}
"""

_EXECUTE_JS = f"""
async ({{path, code, key}}) => {{
  const panel = ({_PANEL_JS})(path);
  const kernel = panel.sessionContext.session.kernel;
  const result = {{out: '', error: null, done: false}};
  const future = kernel.requestExecute({{code, store_history: false, stop_on_error: true}});
  future.onIOPub = (msg) => {{
    const type = msg.header.msg_type;
    if (type === 'stream') result.out += msg.content.text;
    else if (type === 'execute_result') result.out += msg.content.data['text/plain'] + '\\n';
    else if (type === 'error') result.error = msg.content.ename + ': ' + msg.content.evalue + '\\n'
      + msg.content.traceback.join('\\n').replace(/\\u001b\\[[0-9;]*m/g, '');
  }};
  const finished = future.done.then(() => {{ result.done = true; return result; }});
  if (key) {{ (window.__stageExec = window.__stageExec || {{}})[key] = result; return null; }}
  return await finished;
}}
"""


def run_in_kernel(page: Page, path: str, code: str) -> str:
    """Run ``code`` in the notebook's kernel (through JupyterLab) and return its printed output; fail on an error."""
    result = page.evaluate(_EXECUTE_JS, {"path": path, "code": code, "key": None})
    if result["error"]:
        raise AssertionError(f"kernel code raised:\n{code}\n--- error ---\n{result['error']}")
    return str(result["out"])


def start_in_kernel(page: Page, path: str, code: str, key: str) -> None:
    """Start ``code`` in the kernel without waiting (the page keeps working); :func:`finish_in_kernel` collects it."""
    page.evaluate(_EXECUTE_JS, {"path": path, "code": code, "key": key})


def finish_in_kernel(page: Page, key: str, timeout: float = 30.0) -> str:
    """Wait for the code started with ``key`` and return its output; fail on an error."""
    page.wait_for_function(f"() => window.__stageExec[{json.dumps(key)}].done", timeout=timeout * 1000)
    result = page.evaluate(f"() => window.__stageExec[{json.dumps(key)}]")
    if result["error"]:
        raise AssertionError(f"kernel code raised:\n--- error ---\n{result['error']}")
    return str(result["out"])


def wait_in_kernel(page: Page, path: str, condition: str, timeout: float = 15.0) -> None:
    """Poll the Python expression ``condition`` in the kernel, between short cells, until it is true.

    Short cells leave the kernel idle in between, so the browser's widget messages are processed meanwhile.
    """
    page.wait_for_timeout(50)
    deadline_polls = int(timeout / 0.1)
    for _ in range(deadline_polls):
        if run_in_kernel(page, path, f"print(bool({condition}))").strip() == "True":
            return
        page.wait_for_timeout(100)
    raise AssertionError(f"{condition!r} did not become true in the kernel within {timeout} s")


def save_notebook(page: Page, path: str) -> None:
    """Save the notebook through JupyterLab (so the widget state is written too, when enabled)."""
    page.evaluate(
        f"""async (path) => {{
          const panel = ({_PANEL_JS})(path);
          await panel.context.save();
        }}""",
        path,
    )


def emit_timed(page: Page, call: str, message: str) -> tuple[float, float]:
    """Run a stand-in's emit (``call``: JavaScript using ``t``, the message's JSON text) and return the page's
    ``performance.now()`` just before and just after it: the stand-ins deliver synchronously, so a message stamped
    on arrival carries a time inside that window (however long a busy page took to run it)."""
    before, after = page.evaluate(
        f"(t) => {{ const before = performance.now(); {call}; return [before, performance.now()]; }}", message
    )
    return float(before), float(after)


def assert_stamped_within(t_ns: int, window: tuple[float, float]) -> None:
    """``t_ns`` (the recorder's stamp, ns on the page's clock) lies in ``window`` (ms, from :func:`emit_timed`)."""
    before, after = window
    slack = 1e-6  # ms: the ns conversion's rounding
    assert before - slack <= t_ns / 1e6 <= after + slack, f"stamped at {t_ns / 1e6} ms, outside {window}"
