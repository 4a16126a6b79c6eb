"""On the embedded simulator the stage draws a simulated avatar, driven by events relayed from Python: its mouth
moves while the avatar speaks, even while the cell that asked it to speak is still blocking in ``live.say()``.
"""

from __future__ import annotations

from pathlib import Path

from playwright.sync_api import Page, expect

from tests.browser.harness import (
    JupyterServer,
    open_and_run_notebook,
    screenshot,
    wait_for_text,
    widget_locator,
    write_notebook,
)
from tests.browser.standins import finish_in_kernel, run_in_kernel, start_in_kernel

SETUP = """
from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.target import DEFAULT_AVATAR
from akool_lab.widgets.stage import Stage

server = sim.start(profile="fast")
client = AkoolClient(server.api_key, base_url=server.base_url)
session = client.sessions.wait_until_live(client.sessions.create(DEFAULT_AVATAR, duration=120, mode_type=1).id, timeout=30)
stage = Stage(session, background_url="https://example.invalid/studio.jpg").add_class("stage-sim")
live = stage.connect(client, mode=1)   # the simulator's WebSocket, in the kernel; the stage follows its events
"""

#: The fast profile speaks 2 ms per word: 1,500 words keep the avatar talking for about 3 s.
SPEECH = "Hello from the simulated avatar on stage. " * 214

_CANVAS_JS = "(el) => el.querySelector('canvas.akool-stage__face').toDataURL()"


def test_the_simulated_avatar_moves_its_mouth_while_the_avatar_speaks(
    page: Page, jupyter_server: JupyterServer, tmp_path: Path
) -> None:
    notebook = write_notebook(tmp_path / "stage-sim.ipynb", [SETUP, "stage"])
    run = open_and_run_notebook(page, jupyter_server, notebook)
    stage = widget_locator(page, "stage-sim")
    root = stage.locator(".akool-stage")
    expect(root).to_have_attribute("data-simulated", "true")
    expect(root).to_have_attribute("data-state", "connected")
    expect(root).to_have_attribute("data-speaking", "false")
    expect(stage.locator(".akool-stage__join")).to_be_hidden()  # nothing to join: no credentials reach the page
    idle = [stage.evaluate(_CANVAS_JS)]
    page.wait_for_timeout(150)
    idle.append(stage.evaluate(_CANVAS_JS))

    # A blocking call: on the simulator's kernel-side transport it works, and the relay keeps the stage live.
    start_in_kernel(page, run.path, f"reply = live.say({SPEECH!r}, timeout=60)\nprint(reply.timings.speak_ms)", "say")
    expect(root).to_have_attribute("data-speaking", "true", timeout=20_000)
    frames = []
    for _ in range(3):
        frames.append(stage.evaluate(_CANVAS_JS))
        page.wait_for_timeout(120)
    shot = screenshot(page, "stage-sim")
    speak_ms = float(finish_in_kernel(page, "say", timeout=60).strip())

    expect(root).to_have_attribute("data-speaking", "false")
    assert len(set(frames)) == 3, "the face is animated while speaking (every sampled frame differs)"
    assert not set(frames) & set(idle), "the speaking face differs from the idle one"
    assert speak_ms > 1000, "the avatar spoke for a while (the screenshot caught it speaking)"
    assert shot.stat().st_size > 10_000
    wait_for_text(stage.locator(".akool-stage__caption"), "Hello from the simulated avatar on stage.")

    # Closing the live session shows on the stage.
    run_in_kernel(page, run.path, "live.close()")
    expect(root).to_have_attribute("data-state", "left")
