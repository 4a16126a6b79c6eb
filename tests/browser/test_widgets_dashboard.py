"""The dashboard in a real browser: JupyterLab on loopback, headless chromium, the embedded simulator in the kernel.

A user's whole path: run ``akool_lab.lab(target="sim")``, click Create, wait for live, type into the chat box, Send,
see the avatar's reply in the rendered transcript, type fast and send with Ctrl+Enter (the whole text arrives),
change the language, Apply, see the ack, and see both replies counted by the latency monitor. And notebook 02 as a
newcomer runs it: after Run All its dashboard (and its panels on their own) are still live and answer a click. Then check that no secret (the simulator key, the session's ws_token / ws_url / RTC token) is in the page nor in
the widget state the notebook would save.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import (
    REPO_ROOT,
    JupyterServer,
    open_and_run_notebook,
    screenshot,
    wait_for_text,
    widget_locator,
    write_notebook,
)
from tests.notebooks.test_execute_notebooks import inject_parameters

#: The whole test (JupyterLab load, kernel start, simulator start, clicks, replies, screenshot), in seconds.
TEST_BUDGET_S = 90.0

#: Typed key by key as fast as the browser takes keys, then sent with Ctrl+Enter: its last characters must arrive too.
FAST_TEXT = "Typed quickly and sent at once with the keyboard shortcut, up to the very ending here."

# The notebook under test. The secrets file lets the test know what to look for without printing any secret into
# the notebook's outputs (which would be a leak of its own).
DASHBOARD_CELL = """
import json, akool_lab
dash = akool_lab.lab(target="sim", profile="fast")

def _write_secrets(live):
    creds = dash.session_panel.session.credentials
    secrets = {{"simulator key": dash.target.api_key.reveal(), "ws_token": creds.ws_token, "ws_url": creds.ws_url,
                "rtc token": getattr(creds, "token", None), "session id": live.session_id}}
    with open({secrets_path!r}, "w") as f:
        json.dump(secrets, f)

dash.session_panel.on_live(_write_secrets)
dash
"""

# The state of every widget model in the page, as the notebook would save it: found through the widget manager of
# the first rendered widget output (ipywidgets' ManagerBase.get_state).
WIDGET_STATE_JS = """
async () => {
  const seen = new Set();
  const stack = [...window.jupyterapp.shell.widgets('main')];
  while (stack.length) {
    const w = stack.pop();
    if (!w || seen.has(w)) continue;
    seen.add(w);
    // ipywidgets' WidgetRenderer keeps its manager in a PromiseDelegate (_manager.promise).
    let manager = w._manager && w._manager.promise ? await w._manager.promise : w._manager;
    if (manager && typeof manager.get_state === 'function') {
      const state = await manager.get_state({drop_defaults: false});
      return JSON.stringify(state);
    }
    const children = (w.widgets || (w.layout && w.layout.widgets) || []);
    for (const child of children) stack.push(child);
    if (w.content) stack.push(w.content);
    if (w.outputArea) stack.push(w.outputArea);
  }
  return null;
}
"""


def test_the_dashboard_creates_a_session_chats_and_applies_params_in_the_browser(
    page: Page, jupyter_server: JupyterServer, tmp_path: Path
) -> None:
    started = time.monotonic()
    secrets_path = tmp_path / "secrets.json"
    notebook = write_notebook(tmp_path / "dashboard.ipynb", [DASHBOARD_CELL.format(secrets_path=str(secrets_path))])
    open_and_run_notebook(page, jupyter_server, notebook, timeout=60)

    # Create a session by clicking, as a user does; the status chip follows it to "live".
    create = widget_locator(page, "akool-create")
    expect(create).to_be_enabled(timeout=15_000)  # enabled once the avatar list arrived
    create.click()
    wait_for_text(widget_locator(page, "akool-status"), "live", timeout=20)
    wait_for_text(widget_locator(page, "akool-countdown"), "left")

    # Chat: type, Send, and the avatar's reply (a retelling in mode 1) appears with its timings.
    chat_box = widget_locator(page, "akool-chat-input").locator("textarea")
    send = widget_locator(page, "akool-send")
    expect(send).to_be_enabled(timeout=10_000)
    chat_box.fill("Hello from the browser test.")
    send.click()
    transcript = widget_locator(page, "akool-transcript-view")
    expect(transcript.locator(".akool-line-avatar")).to_contain_text("Hello from the browser test.", timeout=15_000)
    wait_for_text(transcript, "ttfr", timeout=15)

    # Ctrl+Enter in the chat box sends too (and JupyterLab does not take it as "run cell"): typed fast, key by key,
    # the whole text is sent, up to its last characters (the kernel's copy of the box lags behind fast typing).
    chat_box.click()
    chat_box.press_sequentially(FAST_TEXT)
    chat_box.press("Control+Enter")
    expect(transcript.locator(".akool-line-avatar").nth(1)).to_contain_text(FAST_TEXT, timeout=15_000)
    expect(chat_box).to_have_value("")

    # Params: pick a language, Apply, and the ack (code, message, ack_ms) shows in the panel.
    apply = widget_locator(page, "akool-apply")
    expect(apply).to_be_enabled(timeout=10_000)
    widget_locator(page, "akool-param-language").locator("select").select_option(label="French (France) (fr-FR)")
    apply.click()
    params_line = page.locator(".jp-OutputArea-output .akool-params-panel .akool-error-line")
    expect(params_line).to_contain_text("ack 1000 OK in", timeout=15_000)
    expect(params_line).to_contain_text("lang='fr-FR'")

    # The latency monitor has redrawn with both replies (n = 2 in the ttfr row of its table).
    latency_table = widget_locator(page, "akool-latency-table")
    expect(latency_table.locator("tr").nth(1).locator("td").first).to_have_text("2", timeout=20_000)

    # Tall enough to show the whole dashboard (the notebook scrolls inside the page, so full_page alone would not).
    page.set_viewport_size({"width": 1280, "height": 2000})
    page.evaluate("() => document.querySelectorAll('.jp-WindowedPanel-outer').forEach((el) => { el.scrollTop = 0; })")
    shot = screenshot(page, "dashboard")
    assert shot.stat().st_size > 20_000, "the screenshot should show the rendered dashboard"

    # No secret in the page, nor in the widget state that saving the notebook would store.
    secrets = json.loads(secrets_path.read_text())
    session_id = secrets.pop("session id")
    state = page.evaluate(WIDGET_STATE_JS)
    assert state, "the widget manager's state could be read"
    assert session_id in state, "the state read is the dashboard's (it shows the session id)"
    content = page.content()
    for name, secret in secrets.items():
        if secret:
            assert secret not in content, f"the {name} is in the page"
            assert secret not in state, f"the {name} is in the saved widget state"
    assert secrets["simulator key"] and secrets["ws_token"], "the kernel reported the secrets to look for"

    elapsed = time.monotonic() - started
    assert elapsed < TEST_BUDGET_S, f"the browser test took {elapsed:.1f} s"


NOTEBOOK_02 = REPO_ROOT / "notebooks" / "02_dashboard.ipynb"


@pytest.mark.parametrize("drive_from_code", [True, False], ids=["driven-from-code", "clicked"])
def test_after_run_all_of_notebook_02_its_dashboard_is_live_and_answers_a_click(
    page: Page, jupyter_server: JupyterServer, tmp_path: Path, drive_from_code: bool
) -> None:
    # Notebook 02 as a newcomer runs it (Run All, its own defaults), on the fast profile to keep the test short.
    notebook = nbformat.read(NOTEBOOK_02, as_version=4)
    inject_parameters(notebook, {"profile": "fast", "duration": 120, "drive_from_code": drive_from_code})
    path = tmp_path / "02_dashboard.ipynb"
    nbformat.write(notebook, path)
    open_and_run_notebook(page, jupyter_server, path, timeout=120)

    # The dashboard of section 1 is still there after the last cell (nothing closed it), and still works.
    dashboard = page.locator(".jp-OutputArea-output .akool-dashboard")
    expect(dashboard).to_have_count(1)
    expect(dashboard.locator(".akool-banner")).to_contain_text("simulated · profile fast · seed 0")
    status = dashboard.locator(".akool-status")
    if not drive_from_code:
        create = dashboard.locator(".akool-create")
        expect(create).to_be_enabled(timeout=15_000)
        create.click()
    expect(status).to_contain_text("live", timeout=30_000)
    transcript = dashboard.locator(".akool-transcript-view")
    answers_before = transcript.locator(".akool-line-avatar").count()
    dashboard.locator(".akool-chat-input textarea").fill("Still here after Run All?")
    send = dashboard.locator(".akool-send")
    expect(send).to_be_enabled(timeout=10_000)
    send.click()
    # The message is in the transcript, and a new answer (a retelling, or an answer if the notebook left "ask" on).
    expect(transcript.locator(".akool-line-you").last).to_contain_text("Still here after Run All?", timeout=15_000)
    expect(transcript.locator(".akool-line-avatar")).to_have_count(answers_before + 1, timeout=15_000)
    wait_for_text(transcript.locator(".akool-line-avatar").last, "ttfr", timeout=15)

    # The panels of section 2 are live too: their own chat answers a click.
    panels_chat = page.locator(".jp-OutputArea-output .akool-chat-panel").last
    expect(panels_chat.locator(".akool-send")).to_be_enabled(timeout=10_000)
    panels_chat.locator("textarea").fill("And the panels on their own?")
    panels_chat.locator(".akool-send").click()
    expect(panels_chat.locator(".akool-line-avatar").last).to_contain_text(
        "And the panels on their own?", timeout=15_000
    )

    # Tall enough for the whole dashboard, scrolled to its top, as a person would look at it after Run All.
    page.set_viewport_size({"width": 1280, "height": 2000})
    dashboard.evaluate("(el) => el.scrollIntoView({block: 'start'})")
    shot = screenshot(page, f"notebook_02_after_run_all_{'driven' if drive_from_code else 'clicked'}")
    assert shot.stat().st_size > 20_000, "the screenshot should show the rendered dashboard"
