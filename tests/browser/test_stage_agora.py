"""The stage joins an Agora room in the browser (a stand-in ``AgoraRTC`` module served from loopback), and is the
data channel of an AvatarStream in the kernel: join arguments, pacing of Python's chunks, browser timestamps of
received messages, failures, and credentials kept out of the saved widget state.
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from akool_lab.protocol import Pacer
from akool_lab.protocol.limits import AGORA
from tests.browser.harness import JupyterServer, open_and_run_notebook, screenshot, widget_locator, write_notebook
from tests.browser.standins import (
    assert_stamped_within,
    emit_timed,
    run_in_kernel,
    save_notebook,
    saved_widget_state,
    serve_standins,
    wait_in_kernel,
)

TOKEN = "agora-SECRET-rtc-token-7f3e9c"
#: Opening + running the notebook, joining, sending, receiving and saving: generous for a loaded 2-CPU machine.
TEST_BUDGET_S = 60.0


@pytest.fixture(scope="module")
def standins() -> Iterator[str]:
    with serve_standins() as base:
        yield base


def stage_notebook(tmp_path: Path, sdk_url: str, name: str = "stage-agora") -> Path:
    # The token comes from a file, as it would from the REST API: the notebook's own text must not hold it, so that
    # finding it in the saved notebook can only mean a leak.
    token_file = tmp_path / "agora-token.txt"
    token_file.write_text(TOKEN, encoding="utf-8")
    setup = f"""
import json
from pathlib import Path
from akool_lab.api import Session
from akool_lab.events import EventKind
from akool_lab.live import AvatarStream, io_loop
from akool_lab.widgets.stage import Stage

session = Session.from_json({{"_id": "sess-agora-1", "status": 2, "stream_type": "agora", "credentials": {{
    "agora_uid": 100001, "agora_app_id": "app-123", "agora_channel": "chan-xyz", "agora_token": Path({str(token_file)!r}).read_text()}}}})
stage = Stage(session, sdk_urls={{"agora": {sdk_url!r}}}).add_class("{name}")
"""
    # Opening the stream over the stage's transport returns at once (the browser joins on the Join click), so
    # even this blocking call in a cell is fine.
    connect = 'stream = io_loop().run(AvatarStream.open(stage.transport, session_id=session.id, mode=1), 10, "open")'
    return write_notebook(tmp_path / f"{name}.ipynb", [setup, "stage", connect])


def join(page: Page, css_class: str) -> Locator:
    stage = widget_locator(page, css_class)
    stage.locator(".akool-stage__join").click()
    expect(stage.locator(".akool-stage")).to_have_attribute("data-state", "connected")
    return stage


def calls(page: Page, name: str) -> list[dict[str, Any]]:
    return [c for c in page.evaluate("() => window.__agoraCalls || []") if c["fn"] == name]


def test_the_stage_joins_agora_paces_python_chunks_and_stamps_replies_on_the_browser_clock(
    page: Page, jupyter_server: JupyterServer, standins: str, tmp_path: Path
) -> None:
    started = time.monotonic()
    with saved_widget_state(jupyter_server):
        run = open_and_run_notebook(page, jupyter_server, stage_notebook(tmp_path, standins + "agora-stub.js"))
        stage = join(page, "stage-agora")

        # The join: the provider's client and call, with the session's credentials (received as a custom message).
        assert [c["args"] for c in calls(page, "createClient")] == [[{"mode": "rtc", "codec": "vp8"}]]
        assert [c["args"] for c in calls(page, "join")] == [["app-123", "chan-xyz", TOKEN, 100001]]
        expect(stage.locator(".akool-stage")).to_have_attribute("data-video", "true")  # avatar's video subscribed
        assert [c["args"] for c in calls(page, "subscribe")] == [[424242, "video"]]
        page_id = page.evaluate("() => window.__akoolLabPageId")

        # Python's chunks reach sendStreamMessage, paced in the browser with the agora token bucket.
        text = "The stage paces every chunk the way Agora wants it. " * 60
        run_in_kernel(page, run.path, f"job = io_loop().submit(stream.say({text!r}, timeout=60, until='reply'))")
        page.wait_for_function(
            "() => (window.__agoraCalls || []).some((c) => c.fn === 'sendStreamMessage' && c.args[0].includes('\"fin\":true'))",
            timeout=20_000,
        )
        sends = calls(page, "sendStreamMessage")
        assert len(sends) >= 3, "the text needs several chunks"
        assert all(c["bytes"] <= AGORA.max_message_bytes for c in sends)
        assert all(c["args"][1] is False for c in sends)
        assert "".join(json.loads(c["args"][0])["pld"]["text"] for c in sends) == text
        check_pacing(sends)

        # The avatar answers: its messages reach Python with their browser arrival time, on the page's clock.
        reply = {"v": 2, "type": "chat", "mid": "r-1", "idx": 0, "fin": True, "pld": {"from": "bot", "text": "Hi!"}}
        arrived = emit_timed(page, "window.__agoraStandin.emitStreamMessage(t)", json.dumps(reply))
        speaking = emit_timed(
            page,
            "window.__agoraStandin.emitStreamMessage(t)",
            json.dumps({"v": 2, "type": "event", "mid": "e-1", "pld": {"event": "audio_start"}}),
        )
        expect(stage.locator(".akool-stage")).to_have_attribute("data-speaking", "true")
        wait_in_kernel(page, run.path, "job.done()")
        report = json.loads(
            run_in_kernel(
                page,
                run.path,
                "r = job.result()\n"
                "print(json.dumps({'text': r.text, 'clock': stream.transport.clock,\n"
                "  'sent': [[e.clock, e.t_ns] for e in stream.recorder.filter(EventKind.CHAT_SENT)],\n"
                "  'recv': [[e.clock, e.t_ns] for e in stream.recorder.filter(EventKind.CHAT_RECV)],\n"
                "  'audio': [[e.clock, e.t_ns] for e in stream.recorder.filter(EventKind.AUDIO_START)]}))",
            )
        )
        clock = f"browser:{page_id}"
        assert report["text"] == "Hi!"
        assert report["clock"] == clock
        assert report["recv"][0][0] == clock and report["audio"][0][0] == clock
        assert_stamped_within(report["recv"][0][1], arrived)  # stamped on arrival in the browser
        assert_stamped_within(report["audio"][0][1], speaking)
        assert [c for c, _ in report["sent"]] == [clock] * len(sends)
        for (_, t_ns), send in zip(report["sent"], sends, strict=True):
            assert t_ns / 1e6 == pytest.approx(send["t"], abs=2.0), "send() resolves with the browser's send time"

        page.evaluate(
            "(t) => window.__agoraStandin.emitStreamMessage(t)",
            json.dumps({"v": 2, "type": "event", "mid": "e-2", "pld": {"event": "audio_end"}}),
        )
        expect(stage.locator(".akool-stage")).to_have_attribute("data-speaking", "false")
        expect(stage.locator(".akool-stage__caption")).to_have_text("Hi!")
        screenshot(page, "stage-agora")

        # Credentials: nowhere in the widget's state, nor in the saved notebook (widget state saved into it).
        state = run_in_kernel(page, run.path, "print(json.dumps(stage.get_state(), default=str))")
        assert TOKEN not in state and "connected" in state
        save_notebook(page, run.path)
    saved = (jupyter_server.root_dir / run.path).read_text(encoding="utf-8")
    widget_state = json.loads(saved)["metadata"]["widgets"]["application/vnd.jupyter.widget-state+json"]
    assert any(m["state"].get("provider") == "agora" for m in widget_state["state"].values()), "stage state saved"
    assert TOKEN not in saved, "the room token must never be saved with the notebook"
    assert time.monotonic() - started < TEST_BUDGET_S


def check_pacing(sends: list[dict[str, Any]]) -> None:
    """Each chunk went out no earlier than the agora token bucket allows, and not much later (the browser waits
    for nothing else than the next chunk from the kernel, one loopback round trip away)."""
    pacer = Pacer(AGORA)
    pacer.delay_for(sends[0]["bytes"], now=round(sends[0]["t"] * 1e6))
    for previous, current in itertools.pairwise(sends):
        # Replay the bucket from the previous actual send: the earliest the current chunk may go.
        earliest_ms = previous["t"] + pacer.delay_for(current["bytes"], now=round(previous["t"] * 1e6)) / 1e6
        gap_ms = current["t"] - previous["t"]
        assert current["t"] >= earliest_ms - 1.0, f"chunk sent {earliest_ms - current['t']:.1f} ms too early"
        assert current["t"] <= earliest_ms + 80.0, f"chunk sent {current['t'] - earliest_ms:.1f} ms late"
        assert gap_ms > 100.0, "full chunks are about 1/6 s apart at 5,760 B/s"
    # From a full bucket of one message: the whole send takes (all bytes - one message) / rate.
    total = sum(c["bytes"] for c in sends) - AGORA.max_message_bytes
    span_ms = sends[-1]["t"] - sends[0]["t"]
    assert span_ms >= 1000 * total / AGORA.bytes_per_second - 1.0
    assert span_ms <= 1000 * total / AGORA.bytes_per_second + 80.0 * (len(sends) - 1)


def test_failures_show_on_the_stage_and_reach_python(
    page: Page, jupyter_server: JupyterServer, standins: str, tmp_path: Path
) -> None:
    # 1. The SDK cannot be loaded: the stage says so, with the URL it tried, and Python gets the error.
    missing = standins + "no-such-sdk.js"
    run = open_and_run_notebook(page, jupyter_server, stage_notebook(tmp_path, missing, "stage-fail"))
    stage = widget_locator(page, "stage-fail")
    stage.locator(".akool-stage__join").click()
    root = stage.locator(".akool-stage")
    expect(root).to_have_attribute("data-state", "failed")
    expect(stage.locator(".akool-stage__error")).to_contain_text(
        f"sdk-load: could not load the Agora SDK from {missing}"
    )
    wait_in_kernel(page, run.path, "stage.errors")
    out = run_in_kernel(
        page, run.path, "print(stage.sdk_url_tried); print(repr(stage.errors[0])); print(stream.close_reason)"
    )
    tried, error, reason = out.splitlines()
    assert tried == missing
    assert error.startswith(
        f"ConnectionError(\"the stage could not load the provider's SDK: could not load the Agora SDK from {missing}"
    )
    assert reason.startswith("the stage could not load the provider's SDK"), "the stream on the stage closed too"

    # 2. Join refused (the stand-in rejects the token): shown, reported, and the token is scrubbed from the text.
    run_in_kernel(page, run.path, f"stage.sdk_urls = {{**stage.sdk_urls, 'agora': {standins + 'agora-stub.js'!r}}}")
    page.evaluate("() => { window.__agoraRefuseJoin = true; }")
    stage.locator(".akool-stage__join").click()
    expect(stage.locator(".akool-stage__error")).to_contain_text("join-refused: Agora refused the join")
    assert TOKEN not in stage.inner_text()
    expect(stage.locator(".akool-stage__error")).to_contain_text(f"…{TOKEN[-4:]}")

    # 3. Joined, then the token expires: the stream over the stage closes with that reason.
    page.evaluate("() => { window.__agoraRefuseJoin = false; }")
    stage.locator(".akool-stage__join").click()
    expect(root).to_have_attribute("data-state", "connected")
    run_in_kernel(
        page,
        run.path,
        'stream = io_loop().run(AvatarStream.open(stage.transport, session_id=session.id, mode=1), 10, "open")',
    )
    page.evaluate("() => window.__agoraStandin.emit('token-privilege-did-expire')")
    expect(root).to_have_attribute("data-state", "failed")
    expect(stage.locator(".akool-stage__error")).to_contain_text("token-expired")
    wait_in_kernel(page, run.path, "stream.closed")
    reason = run_in_kernel(page, run.path, "print(stream.close_reason); print(stage.error_kind)")
    assert reason.splitlines() == ["the room token expired: token-privilege-did-expire", "token-expired"]

    # 4. Join again, then the avatar (the user who published the video) leaves the channel.
    stage.locator(".akool-stage__join").click()
    expect(root).to_have_attribute("data-state", "connected")
    expect(root).to_have_attribute("data-video", "true")
    page.evaluate("() => window.__agoraStandin.emit('user-left', {uid: 424242}, 'Quit')")
    expect(stage.locator(".akool-stage__error")).to_contain_text("avatar-left: user 424242 left the channel (Quit)")
    wait_in_kernel(page, run.path, "len(stage.errors) == 4")
    kinds = run_in_kernel(page, run.path, "print([str(e).split(':')[0] for e in stage.errors])")
    assert kinds.strip() == (
        "[\"the stage could not load the provider's SDK\", 'the provider refused to let the stage join the room', "
        "'the room token expired', 'the avatar left the room']"
    )


def test_the_users_speech_reaches_the_transcript_and_chat_panel_and_its_turn_is_timed(
    page: Page, jupyter_server: JupyterServer, standins: str, tmp_path: Path
) -> None:
    notebook = stage_notebook(tmp_path, standins + "agora-stub.js", "stage-voice")
    cells = json.loads(notebook.read_text(encoding="utf-8"))
    panel = (
        "from akool_lab.live import LiveSession\nfrom akool_lab.widgets import ChatPanel\n"
        "live = LiveSession(stream)\nstage.attach(live)\nChatPanel(live).add_class('voice-chat')"
    )
    cells["cells"].append({**cells["cells"][-1], "source": panel, "outputs": [], "execution_count": None})
    notebook.write_text(json.dumps(cells), encoding="utf-8")
    run = open_and_run_notebook(page, jupyter_server, notebook)
    stage = join(page, "stage-voice")
    expect(stage.locator(".akool-stage__mic-toggle")).to_be_visible()  # the user may speak (the stand-in's mic)

    def emit(message: dict[str, Any]) -> float:
        return float(page.evaluate("(t) => window.__agoraStandin.emitStreamMessage(t)", json.dumps(message)))

    # AKool's ASR answers the microphone with from:"user" text, then the avatar replies and speaks.
    emit({"v": 2, "type": "chat", "mid": "u-1", "idx": 0, "pld": {"from": "user", "text": "What is "}})
    t_heard = emit(
        {"v": 2, "type": "chat", "mid": "u-1", "idx": 1, "fin": True, "pld": {"from": "user", "text": "AKool?"}}
    )
    page.wait_for_timeout(40)
    t_reply = emit(
        {"v": 2, "type": "chat", "mid": "r-1", "idx": 0, "fin": True, "pld": {"from": "bot", "text": "An AI."}}
    )
    t_audio = emit({"v": 2, "type": "event", "mid": "e-1", "pld": {"event": "audio_start"}})

    chat = widget_locator(page, "voice-chat")
    expect(chat.locator(".akool-transcript-view")).to_contain_text("What is AKool?")
    expect(chat.locator(".akool-transcript-view")).to_contain_text("heard")
    wait_in_kernel(page, run.path, "stage.user_turn_summary().get('audio_start_ms')")
    report = json.loads(
        run_in_kernel(
            page,
            run.path,
            "print(json.dumps({'transcript': [[e.role, e.text] for e in live.transcript],\n"
            "  'turns': stage.user_turns(), 'summary': stage.user_turn_summary(),\n"
            "  'kinds': sorted({e.kind for e in live.avatar_stream.recorder if e.kind.startswith('user_turn')})}))",
        )
    )
    assert ["user", "What is AKool?"] in report["transcript"]
    [turn] = report["turns"]
    assert turn["clock"] == "browser:" + page.evaluate("() => window.__akoolLabPageId")
    assert turn["first_reply_ms"] == pytest.approx(t_reply - t_heard, abs=2.0) and turn["first_reply_ms"] >= 40
    assert turn["audio_start_ms"] == pytest.approx(t_audio - t_heard, abs=2.0)
    assert report["summary"]["first_reply_ms"]["n"] == 1
    assert report["kinds"] == ["user_turn.audio_start", "user_turn.first_reply", "user_turn.transcript"]
