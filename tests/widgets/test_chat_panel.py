"""ChatPanel against the simulator: send, ask, hear, interrupt, and a transcript redrawn at a bounded rate."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.events import EventKind
from akool_lab.live import LiveSession, Reply, ReplyTimings, TranscriptEntry
from akool_lab.widgets import ChatPanel
from akool_lab.widgets._chat_panel import _render_entries
from tests.widgets.conftest import AVATAR, wait_until


@pytest.fixture
def live(client: AkoolClient) -> Iterator[LiveSession]:
    session = client.sessions.create(AVATAR, duration=120, mode_type=1)
    client.sessions.wait_until_live(session.id, timeout=10)
    with client.connect(session, mode=1) as live_session:
        yield live_session


@pytest.fixture
def chat(live: LiveSession) -> Iterator[ChatPanel]:
    panel = ChatPanel(live)
    yield panel
    panel.close()


def test_send_is_disabled_while_no_session_is_connected(live: LiveSession) -> None:
    panel = ChatPanel()
    try:
        assert panel.send_button.disabled and panel.interrupt_button.disabled
        panel.attach(live)
        assert not panel.send_button.disabled and not panel.interrupt_button.disabled
    finally:
        panel.close()


def test_send_says_the_text_and_the_transcript_shows_the_reply_with_its_timings(
    chat: ChatPanel, live: LiveSession, server: sim.SimServer
) -> None:
    chat.text.value = "Hello from the chat panel."
    assert chat.intent.value == "say", "say (mode 1) is the default"

    chat.send_button.click()

    wait_until(lambda: "ttfr" in chat.transcript.value, what="the reply's timings in the transcript")
    html = chat.transcript.value
    assert html.count("Hello from the chat panel.") == 2, "the line sent and the avatar's retelling of it"
    assert "ttfa" in html and "ms" in html
    assert chat.text.value == "", "the text box is cleared once sent"
    truth = server.truth(live.session_id or "")
    assert [m["text"] for m in truth["messages"].values()] == ["Hello from the chat panel."]


def test_ask_mode_sends_the_text_as_a_dialogue_question(
    chat: ChatPanel, live: LiveSession, server: sim.SimServer
) -> None:
    chat.intent.value = "ask"
    chat.text.value = "What is the capital of France?"

    chat.send_button.click()

    wait_until(lambda: "ttfr" in chat.transcript.value, what="the answer")
    truth = server.truth(live.session_id or "")
    (message,) = truth["messages"].values()
    assert message["mode"] == 2, "the avatar answered in dialogue mode"
    assert message["text"] != "What is the capital of France?", "an answer, not a retelling"
    assert message["text"] in chat.transcript.value


def test_speech_the_avatar_heard_appears_as_heard(chat: ChatPanel, live: LiveSession, server: sim.SimServer) -> None:
    server.user_speech(live.session_id or "", "Can you hear me?")

    wait_until(lambda: "Can you hear me?" in chat.transcript.value, what="the user's speech")
    assert "heard" in chat.transcript.value


def test_ctrl_enter_sends_the_text_the_box_showed_even_when_the_kernel_copy_lags_behind(
    chat: ChatPanel, server: sim.SimServer, live: LiveSession
) -> None:
    # Typing fast, the kernel's copy of the box can miss the last keystrokes (ipywidgets sends one update at a
    # time); the browser-side helper sends what the box showed with the key press, and that is what is sent.
    chat.text.value = "This message is long and keeps going until its ending"

    chat.shortcut._handle_custom_msg(
        {"type": "submit", "text": "This message is long and keeps going until its ending here."}, []
    )

    wait_until(lambda: server.truth(live.session_id or "")["messages"], what="the message to arrive")
    (message,) = server.truth(live.session_id or "")["messages"].values()
    assert message["text"] == "This message is long and keeps going until its ending here."
    assert chat.text.value == "", "the box is emptied once sent"


def test_ctrl_enter_without_a_session_keeps_the_text_in_the_box(client: AkoolClient) -> None:
    panel = ChatPanel()
    try:
        assert not panel.shortcut.enabled, "the browser leaves the box alone while nothing can be sent"

        panel.shortcut._handle_custom_msg({"type": "submit", "text": "Typed before connecting."}, [])

        assert "not connected" in panel.errors.text
        assert panel.text.value == "Typed before connecting.", "nothing typed is lost"
    finally:
        panel.close()


def test_the_shortcut_is_enabled_exactly_while_a_session_is_connected(chat: ChatPanel, live: LiveSession) -> None:
    assert chat.shortcut.enabled

    live.close()

    wait_until(lambda: not chat.shortcut.enabled, what="the shortcut to be disabled")


def test_interrupt_sends_an_interrupt_and_shows_its_ack(chat: ChatPanel, live: LiveSession) -> None:
    chat.text.value = " ".join(f"This is sentence {i} of a long speech." for i in range(30))
    chat.send_button.click()
    wait_until(lambda: live.recorder.filter(EventKind.AUDIO_START, session_id=live.session_id), what="speech")

    chat.interrupt_button.click()

    wait_until(lambda: "interrupted: ack 1000" in chat.errors.text, what="the interrupt's ack")
    sent = [e.data["cmd"] for e in live.recorder.filter(EventKind.COMMAND_SENT, session_id=live.session_id)]
    assert "interrupt" in sent
    wait_until(lambda: "interrupted after" in chat.transcript.value, what="the interrupted reply in the transcript")
    assert 'class="akool-unspoken"' in chat.transcript.value, "what was not spoken is marked so"


def reply_line(text: str, *, interrupted: bool, speak_ms: float | None) -> str:
    """The transcript HTML of one avatar line with the given reply."""
    timings = ReplyTimings("kernel", 1, 0.0, 400.0, 650.0, 900.0, speak_ms)
    reply = Reply("m1", "r1", text, text, "say", timings, complete=not interrupted, interrupted=interrupted)
    return _render_entries([TranscriptEntry("avatar", text, "m1", 0.0, done=True, reply=reply)])


def test_an_interrupted_reply_shows_what_was_spoken_and_strikes_through_the_rest() -> None:
    speech = " ".join(f"word{i}" for i in range(40))

    html = reply_line(speech, interrupted=True, speak_ms=2000.0)  # 2 s at 150 words a minute: 5 words

    spoken, unspoken = html.split('<span class="akool-unspoken"', 1)
    assert "word0 word1 word2 word3 word4" in spoken and "word5" not in spoken
    assert "word5" in unspoken and "word39" in unspoken and "line-through" in unspoken
    assert "interrupted after 2.0 s of speech; about 5 of 40 words spoken" in html


def test_a_reply_interrupted_before_it_spoke_is_marked_as_not_spoken_at_all() -> None:
    html = reply_line("Never said aloud.", interrupted=True, speak_ms=None)

    assert "none of this was spoken" in html
    assert html.index('class="akool-unspoken"') < html.index("Never said aloud.")


def test_a_complete_reply_is_shown_as_spoken() -> None:
    html = reply_line("All of it was said.", interrupted=False, speak_ms=1500.0)

    assert "akool-unspoken" not in html and "All of it was said." in html


def test_an_empty_message_is_refused_in_the_panel_and_nothing_is_sent(chat: ChatPanel, live: LiveSession) -> None:
    chat.text.value = "   "

    chat.send_button.click()

    assert "nothing to send" in chat.errors.text
    assert not live.recorder.filter(EventKind.CHAT_SENT, session_id=live.session_id)


def test_send_is_disabled_once_the_session_closes(chat: ChatPanel, live: LiveSession) -> None:
    live.close()

    wait_until(lambda: chat.send_button.disabled, what="Send to be disabled")
    assert chat.send() is None and "not connected" in chat.errors.text


def test_the_transcript_is_redrawn_at_most_max_hz_times_a_second(live: LiveSession) -> None:
    panel = ChatPanel(live, max_hz=5.0)
    try:
        chunks_before = len(live.recorder.filter(EventKind.CHAT_RECV))
        panel.text.value = " ".join(f"Word{i}" for i in range(600))  # many chunks, streamed back fast
        renders_before = panel._coalescer.renders
        started = time.monotonic()
        future = panel.send()
        assert future is not None
        future.result(30)
        elapsed = time.monotonic() - started
        chunks = len(live.recorder.filter(EventKind.CHAT_RECV)) - chunks_before
        renders = panel._coalescer.renders - renders_before
        assert chunks > 5
        assert renders < chunks, "chunks are batched into fewer redraws"
        assert renders <= 5.0 * elapsed + 2, f"{renders} renders in {elapsed:.2f} s for {chunks} chunks"
        wait_until(lambda: "Word599" in panel.transcript.value, what="the last word")
    finally:
        panel.close()


def test_update_latencies_measure_chunk_arrival_to_widget_update(chat: ChatPanel) -> None:
    chat.text.value = "Measure the transcript update latency."

    chat.send_button.click()

    wait_until(lambda: "ttfr" in chat.transcript.value, what="the reply")
    latencies = list(chat.update_latencies_ms)
    assert latencies, "each redraw that showed a new chunk records its latency"
    assert all(0 <= ms < 1000 for ms in latencies)
