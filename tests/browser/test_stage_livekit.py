"""The stage joins a LiveKit room in the browser (a stand-in ``livekit-client`` module served from loopback): the
Room options and connect call, reliable publishData without pacing, the avatar's data packets back in Python on the
browser clock (other participants' packets ignored), and the token kept out of the saved widget state.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.harness import JupyterServer, open_and_run_notebook, widget_locator, write_notebook
from tests.browser.standins import (
    assert_stamped_within,
    emit_timed,
    run_in_kernel,
    save_notebook,
    saved_widget_state,
    serve_standins,
    wait_in_kernel,
)

TOKEN = "lk-SECRET-access-token-51d2aa"


@pytest.fixture(scope="module")
def standins() -> Iterator[str]:
    with serve_standins() as base:
        yield base


def calls(page: Page, name: str) -> list[dict[str, Any]]:
    return [c for c in page.evaluate("() => window.__livekitCalls || []") if c["fn"] == name]


def test_the_stage_joins_livekit_publishes_reliably_and_stamps_data_on_the_browser_clock(
    page: Page, jupyter_server: JupyterServer, standins: str, tmp_path: Path
) -> None:
    token_file = tmp_path / "livekit-token.txt"
    token_file.write_text(TOKEN, encoding="utf-8")
    setup = f"""
import json
from pathlib import Path
from akool_lab.api import Session
from akool_lab.events import EventKind
from akool_lab.live import AvatarStream, io_loop
from akool_lab.widgets.stage import Stage

session = Session.from_json({{"_id": "sess-lk-1", "status": 2, "stream_type": "livekit", "credentials": {{
    "livekit_url": {standins.replace("http://", "ws://")!r}, "livekit_token": Path({str(token_file)!r}).read_text(),
    "livekit_room_name": "room-1", "livekit_client_identity": "client-1", "livekit_server_identity": "avatar-1"}}}})
stage = Stage(session, sdk_urls={{"livekit": {standins + "livekit-stub.js"!r}}}).add_class("stage-livekit")
"""
    connect = 'stream = io_loop().run(AvatarStream.open(stage.transport, session_id=session.id, mode=1), 10, "open")'
    notebook = write_notebook(tmp_path / "stage-livekit.ipynb", [setup, "stage", connect])

    with saved_widget_state(jupyter_server):
        run = open_and_run_notebook(page, jupyter_server, notebook)
        stage = widget_locator(page, "stage-livekit")
        root = stage.locator(".akool-stage")
        stage.locator(".akool-stage__join").click()
        expect(root).to_have_attribute("data-state", "connected")
        expect(root).to_have_attribute("data-video", "true")

        assert [c["args"] for c in calls(page, "Room")] == [[{"adaptiveStream": True, "dynacast": True}]]
        assert [c["args"] for c in calls(page, "connect")] == [
            [standins.replace("http://", "ws://"), TOKEN, {"autoSubscribe": True}]
        ]

        # Chunks go out with publishData(reliable), paced like the official demo on LiveKit (960 B at 5,760 B/s).
        text = "LiveKit takes every chunk, paced. " * 80
        run_in_kernel(page, run.path, f"job = io_loop().submit(stream.say({text!r}, timeout=60, until='reply'))")
        page.wait_for_function(
            "() => (window.__livekitCalls || []).some((c) => c.fn === 'publishData' && c.args[0].includes('\"fin\":true'))",
            timeout=20_000,
        )
        sends = calls(page, "publishData")
        assert len(sends) >= 3
        assert all(c["args"][1] == {"reliable": True} for c in sends)
        assert "".join(json.loads(c["args"][0])["pld"]["text"] for c in sends) == text
        gaps = [b["t"] - a["t"] for a, b in itertools.pairwise(sends)]
        # Each full 960 B chunk waits ~166 ms for the next (the last, short one may go sooner).
        assert min(gaps[:-1]) > 120.0, f"not paced like the demo (166 ms per full chunk): gaps {gaps}"

        # Another participant's packet is ignored; the avatar's reply reaches Python with its browser time.
        page.evaluate(
            "(t) => window.__livekitStandin.emitData(t, 'someone-else')",
            json.dumps(
                {"v": 2, "type": "chat", "mid": "x", "idx": 0, "fin": True, "pld": {"from": "bot", "text": "no"}}
            ),
        )
        reply = {"v": 2, "type": "chat", "mid": "r-1", "idx": 0, "fin": True, "pld": {"from": "bot", "text": "Hey!"}}
        arrived = emit_timed(page, "window.__livekitStandin.emitData(t, 'avatar-1')", json.dumps(reply))
        wait_in_kernel(page, run.path, "job.done()")
        report = json.loads(
            run_in_kernel(
                page,
                run.path,
                "r = job.result()\n"
                "print(json.dumps({'text': r.text, 'clock': stream.transport.clock,\n"
                "  'recv': [[e.clock, e.t_ns] for e in stream.recorder.filter(EventKind.CHAT_RECV)]}))",
            )
        )
        page_id = page.evaluate("() => window.__akoolLabPageId")
        assert report["text"] == "Hey!"
        assert report["clock"] == f"browser:{page_id}"
        assert len(report["recv"]) == 1, "only the avatar's packet counts"
        assert report["recv"][0][0] == f"browser:{page_id}"
        assert_stamped_within(report["recv"][0][1], arrived)

        # The avatar participant leaves: shown, reported, and the stream closes with the reason.
        page.evaluate("() => window.__livekitStandin.emit('participantDisconnected', {identity: 'avatar-1'})")
        expect(stage.locator(".akool-stage__error")).to_contain_text("avatar-left: participant avatar-1 disconnected")
        wait_in_kernel(page, run.path, "stream.closed")
        assert run_in_kernel(page, run.path, "print(stream.close_reason)").strip() == (
            "the avatar left the room: participant avatar-1 disconnected"
        )

        state = run_in_kernel(page, run.path, "print(json.dumps(stage.get_state(), default=str))")
        assert TOKEN not in state
        save_notebook(page, run.path)
    saved = (jupyter_server.root_dir / run.path).read_text(encoding="utf-8")
    assert "application/vnd.jupyter.widget-state+json" in saved
    assert TOKEN not in saved
