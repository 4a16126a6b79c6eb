"""The stage enters a TRTC room in the browser (a stand-in TRTC module served from loopback): the enterRoom
options, sendCustomMessage with cmdId 1 and an ArrayBuffer, paced at TRTC's 7,680 B/s and 30 messages/s, and
the avatar's custom messages back in Python on the browser clock.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from akool_lab.protocol.limits import TRTC
from tests.browser.harness import JupyterServer, open_and_run_notebook, widget_locator, write_notebook
from tests.browser.standins import assert_stamped_within, emit_timed, run_in_kernel, serve_standins, wait_in_kernel

SIG = "trtc-SECRET-user-sig-0c41"


@pytest.fixture(scope="module")
def standins() -> Iterator[str]:
    with serve_standins() as base:
        yield base


def calls(page: Page, name: str) -> list[dict[str, Any]]:
    return [c for c in page.evaluate("() => window.__trtcCalls || []") if c["fn"] == name]


def test_the_stage_enters_trtc_and_sends_paced_custom_messages(
    page: Page, jupyter_server: JupyterServer, standins: str, tmp_path: Path
) -> None:
    sig_file = tmp_path / "trtc-sig.txt"
    sig_file.write_text(SIG, encoding="utf-8")
    setup = f"""
import json
from pathlib import Path
from akool_lab.api import Session
from akool_lab.events import EventKind
from akool_lab.live import AvatarStream, io_loop
from akool_lab.widgets.stage import Stage

session = Session.from_json({{"_id": "sess-trtc-1", "status": 2, "stream_type": "trtc", "credentials": {{
    "trtc_app_id": 1400000001, "trtc_room_id": "room-9", "trtc_user_id": "user-9",
    "trtc_user_sig": Path({str(sig_file)!r}).read_text()}}}})
stage = Stage(session, sdk_urls={{"trtc": {standins + "trtc-stub.js"!r}}}).add_class("stage-trtc")
stream = io_loop().run(AvatarStream.open(stage.transport, session_id=session.id, mode=1), 10, "open")
"""
    run = open_and_run_notebook(page, jupyter_server, write_notebook(tmp_path / "stage-trtc.ipynb", [setup, "stage"]))
    stage = widget_locator(page, "stage-trtc")
    stage.locator(".akool-stage__join").click()
    expect(stage.locator(".akool-stage")).to_have_attribute("data-state", "connected")

    assert [c["args"] for c in calls(page, "enterRoom")] == [
        [{"sdkAppId": 1400000001, "strRoomId": "room-9", "userId": "user-9", "userSig": SIG}]
    ]
    page.wait_for_function("() => (window.__trtcCalls || []).some((c) => c.fn === 'startRemoteVideo')")
    assert calls(page, "startRemoteVideo")[0]["args"] == ["avatar", "main", True]

    text = "TRTC takes 7,680 bytes a second. " * 60
    run_in_kernel(page, run.path, f"job = io_loop().submit(stream.say({text!r}, timeout=60, until='reply'))")
    page.wait_for_function(
        "() => (window.__trtcCalls || []).some((c) => c.fn === 'sendCustomMessage' && c.args[1].includes('\"fin\":true'))",
        timeout=20_000,
    )
    sends = calls(page, "sendCustomMessage")
    assert len(sends) >= 3
    assert all(c["args"][0] == 1 and c["args"][2] is True for c in sends), "cmdId 1, data as an ArrayBuffer"
    assert "".join(json.loads(c["args"][1])["pld"]["text"] for c in sends) == text
    for previous, current in itertools.pairwise(sends[1:]):
        # Past the first message's burst, each chunk waits for its own bytes at 7,680 B/s.
        expected_ms = 1000 * current["bytes"] / TRTC.bytes_per_second
        assert current["t"] - previous["t"] == pytest.approx(expected_ms, abs=40.0)

    reply = {"v": 2, "type": "chat", "mid": "r-1", "idx": 0, "fin": True, "pld": {"from": "bot", "text": "Ni hao!"}}
    arrived = emit_timed(page, "window.__trtcStandin.emitCustomMessage(t)", json.dumps(reply))
    wait_in_kernel(page, run.path, "job.done()")
    out = run_in_kernel(
        page,
        run.path,
        "print(job.result().text); e = stream.recorder.filter(EventKind.CHAT_RECV)[0]; print(e.clock); print(e.t_ns)",
    )
    text_out, clock, t_ns = out.splitlines()
    assert text_out == "Ni hao!"
    assert clock == "browser:" + page.evaluate("() => window.__akoolLabPageId")
    assert_stamped_within(int(t_ns), arrived)
    assert SIG not in run_in_kernel(page, run.path, "print(json.dumps(stage.get_state(), default=str))")
