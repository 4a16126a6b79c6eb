"""The stage on the simulator with the media extra: it shows the simulated avatar's real video (its WebRTC peer),
plays its speech, and a message's ``heard_ms`` (the last chunk sent to the first audible sample, on the browser's
clock) reaches Python next to its data-channel timings.

Chromium runs with its fake capture devices and autoplay allowed, so the avatar's audio plays without a click.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, Playwright, expect

from tests.browser.conftest import DEFAULT_TIMEOUT_MS, VIEWPORT
from tests.browser.harness import (
    CHROMIUM_ARGS,
    JupyterServer,
    open_and_run_notebook,
    screenshot,
    widget_locator,
    write_notebook,
)
from tests.browser.standins import finish_in_kernel, run_in_kernel, start_in_kernel, wait_in_kernel

pytest.importorskip("aiortc")

MEDIA_FLAGS = (
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
)

# The realistic profile: its speech lasts long enough to be synthesized and heard (the fast one gives a word 2 ms).
SETUP = """
from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.metrics import message_timings, perceived_timings
from akool_lab.target import DEFAULT_AVATAR
from akool_lab.widgets.stage import Stage

server = sim.start(profile="realistic")
client = AkoolClient(server.api_key, base_url=server.base_url)
session = client.sessions.wait_until_live(client.sessions.create(DEFAULT_AVATAR, duration=300, mode_type=1).id, timeout=60)
stage = Stage(session).add_class("stage-sim-media")
live = stage.connect(client, mode=1)
"""


@pytest.fixture(scope="module")
def media_browser(playwright: Playwright, chromium_executable: str) -> Iterator[Browser]:
    browser = playwright.chromium.launch(
        executable_path=chromium_executable, headless=True, args=[*CHROMIUM_ARGS, *MEDIA_FLAGS]
    )
    yield browser
    browser.close()


@pytest.fixture
def media_page(media_browser: Browser, jupyter_server: JupyterServer) -> Iterator[Page]:
    context = media_browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    yield context.new_page()
    context.close()
    jupyter_server.shutdown_kernels()


def test_the_stage_shows_the_simulators_video_and_a_message_gets_its_heard_ms(
    media_page: Page, jupyter_server: JupyterServer, tmp_path: Path
) -> None:
    page = media_page
    notebook = write_notebook(tmp_path / "stage-sim-media.ipynb", [SETUP, "stage"])
    run = open_and_run_notebook(page, jupyter_server, notebook, timeout=180)
    stage = widget_locator(page, "stage-sim-media", timeout=60)
    root = stage.locator(".akool-stage")
    expect(root).to_have_attribute("data-simulated", "true")
    # The simulator's WebRTC video replaces the drawn face.
    expect(root).to_have_attribute("data-sim-media", "true", timeout=60_000)
    expect(stage.locator("video.akool-stage__video")).to_be_visible()
    expect(stage.locator("canvas.akool-stage__face")).to_be_hidden()
    # Its speech plays: the <video> holds the avatar's audio track too, unmuted and playing.
    playing = "(el) => { const v = el.querySelector('video.akool-stage__video'); return !v.paused && !v.muted && "
    playing += "v.srcObject instanceof MediaStream && v.srcObject.getAudioTracks().length === 1 }"
    page.wait_for_function(f"() => ({playing})(document.querySelector('.stage-sim-media'))", timeout=60_000)
    wait_in_kernel(page, run.path, "len(stage.recorder.filter('perceived.first_frame')) > 0", timeout=60)
    frame = run_in_kernel(page, run.path, "print(stage.recorder.filter('perceived.first_frame')[0].clock)").strip()
    assert frame.startswith("browser:")

    start_in_kernel(
        page, run.path, "reply = live.say('Hello, I am the simulated avatar.', timeout=90)\nprint(reply.mid)", "say"
    )
    mid = finish_in_kernel(page, "say", timeout=120).strip()
    assert mid
    wait_in_kernel(page, run.path, f"perceived_timings(live.avatar_stream.recorder).get({mid!r}) is not None", 60)
    out = run_in_kernel(
        page,
        run.path,
        f"[r] = [r for r in message_timings(live.avatar_stream.recorder) if r.mid == {mid!r}]\n"
        "print(r.ttfa_ms, r.heard_ms, r.media_delay_ms, r.perceived_clock)",
    ).split()
    ttfa_ms, heard_ms, media_delay_ms = (float(x) for x in out[:3])
    assert out[3].startswith("browser:")
    # Heard after the avatar said it started speaking (the media path takes time), within seconds on loopback.
    assert 0 < media_delay_ms < 3000
    assert 0 < heard_ms < 20_000
    assert ttfa_ms > 0
    assert run_in_kernel(page, run.path, f"print(stage.heard()[{mid!r}]['heard_ms'])").strip() == out[1]
    print(f"ttfa_ms={ttfa_ms:.1f} heard_ms={heard_ms:.1f} media_delay_ms={media_delay_ms:.1f}")
    # The send reached the page through the kernel's relay, which heard_ms leaves out: the page timed a round trip
    # to the kernel just after it (its own figure, never subtracted; here it waited for the blocking say to end).
    wait_in_kernel(page, run.path, f"any(e.mid == {mid!r} for e in stage.recorder.filter('perceived.relay'))", 60)
    rtt = run_in_kernel(
        page,
        run.path,
        f"print([e.data['rtt_ms'] for e in stage.recorder.filter('perceived.relay') if e.mid == {mid!r}][0])",
    )
    assert 0 < float(rtt) < 120_000
    print(f"relay_rtt_ms={float(rtt):.1f}")
    run_in_kernel(page, run.path, "live.close()")


# The same, on a simulator whose media extra cannot load (aiortc is blocked from importing in the kernel).
SETUP_WITHOUT_MEDIA = (
    "import sys\nsys.modules['aiortc'] = None  # as if the media extra were not installed\n"
    + SETUP.replace('add_class("stage-sim-media")', 'add_class("stage-sim-nomedia")')
)


def test_without_the_media_extra_the_stage_says_so_and_draws_the_face(
    media_page: Page, jupyter_server: JupyterServer, tmp_path: Path
) -> None:
    page = media_page
    notebook = write_notebook(tmp_path / "stage-sim-nomedia.ipynb", [SETUP_WITHOUT_MEDIA, "stage"])
    run = open_and_run_notebook(page, jupyter_server, notebook, timeout=180)
    stage = widget_locator(page, "stage-sim-nomedia", timeout=60)
    root = stage.locator(".akool-stage")
    notice = stage.locator(".akool-stage__notice")
    expect(notice).to_contain_text("no simulated media", timeout=60_000)
    expect(notice).to_contain_text("media extra")
    expect(root).to_have_attribute("data-sim-media", "false")
    expect(stage.locator("canvas.akool-stage__face")).to_be_visible()
    expect(stage.locator(".akool-stage__error")).to_be_hidden()  # a notice, not a failure
    wait_in_kernel(page, run.path, "len(stage.recorder.filter('stage.sim-media')) > 0", timeout=30)
    out = run_in_kernel(page, run.path, "print(stage.recorder.filter('stage.sim-media')[0].data['state'])")
    assert out.strip() == "unavailable"
    assert not run_in_kernel(page, run.path, "print(stage.errors)").strip().strip("[]")
    run_in_kernel(page, run.path, "live.close()")


SAID = "hello avatar what is the weather like today"

# The first user turn the browser timed, its transcript events, and the same step timed by the kernel: the user's
# last transcript chunk to the avatar's first reply chunk, both arrivals on the kernel's clock.
USER_TURN = """
import json
from akool_lab.events import KERNEL_CLOCK, EventKind
turn = next(t for t in stage.user_turns() if None not in (t['first_reply_ms'], t['audio_start_ms'], t['heard_ms']))
kernel = [e for e in live.avatar_stream.recorder if e.clock == KERNEL_CLOCK and e.kind == EventKind.CHAT_RECV]
said = [e for e in kernel if e.data.get('sender') == 'user' and e.mid == turn['user_mid']][-1]
answer = next(e for e in kernel if e.data.get('sender') == 'bot' and e.t_ns > said.t_ns)
print(json.dumps({
    'turn': turn,
    'kernel_first_reply_ms': (answer.t_ns - said.t_ns) / 1e6,
    'transcript_chars': [e.data['chars'] for e in stage.recorder.filter('user_turn.transcript')
                         if e.data.get('user_mid') == turn['user_mid']],
    'summary': stage.user_turn_summary(),
    'user_mids': [t.mid for t in live.transcript if t.role == 'user'],
    'heard': {e.mid: e.data['user_heard_ms'] for e in stage.recorder.filter('perceived.heard')
              if e.data.get('user_heard_ms') is not None},
}))
"""


@pytest.fixture(scope="module")
def talking_browser(
    playwright: Playwright, chromium_executable: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Browser]:
    import wave

    import numpy as np

    pytest.importorskip("pocketsphinx")
    from akool_lab.sim.media._speech_audio import SAMPLE_RATE, synthesize

    # Chromium's fake microphone plays this file: a second of silence, the sentence, then silence for the turn to end.
    samples = synthesize(SAID).samples
    audio = np.concatenate([np.zeros(SAMPLE_RATE, np.int16), samples, np.zeros(4 * SAMPLE_RATE, np.int16)])
    path = tmp_path_factory.mktemp("voice") / "said.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        out.writeframes(audio.tobytes())
    args = [*CHROMIUM_ARGS, *MEDIA_FLAGS, f"--use-file-for-fake-audio-capture={path}"]
    browser = playwright.chromium.launch(executable_path=chromium_executable, headless=True, args=args)
    yield browser
    browser.close()


def test_talking_into_the_stages_microphone_on_the_simulator_gives_a_transcript_a_heard_reply_and_user_turn_timings(
    talking_browser: Browser, jupyter_server: JupyterServer, tmp_path: Path
) -> None:
    context = talking_browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
    context.set_default_timeout(DEFAULT_TIMEOUT_MS)
    page = context.new_page()
    try:
        setup = SETUP.replace("mode_type=1", "mode_type=2").replace("mode=1", "mode=2")
        setup = setup.replace('add_class("stage-sim-media")', 'add_class("stage-sim-voice")')
        notebook = write_notebook(tmp_path / "stage-sim-voice.ipynb", [setup, "stage"])
        run = open_and_run_notebook(page, jupyter_server, notebook, timeout=180)
        stage = widget_locator(page, "stage-sim-voice", timeout=60)
        root = stage.locator(".akool-stage")
        expect(root).to_have_attribute("data-sim-media", "true", timeout=60_000)
        stage.locator(".akool-stage__mic-toggle").click()
        expect(root).to_have_attribute("data-mic", "on", timeout=30_000)
        heard_user_turn = "any(e.data.get('user_heard_ms') is not None for e in live.avatar_stream.recorder.filter('perceived.heard'))"
        wait_in_kernel(page, run.path, heard_user_turn, timeout=90)
        out = run_in_kernel(
            page,
            run.path,
            "said = [t.text for t in live.transcript if t.role == 'user']\n"
            "[h] = [e for e in live.avatar_stream.recorder.filter('perceived.heard') if e.data.get('user_heard_ms') is not None][:1]\n"
            "print(repr(' '.join(said)), h.data['user_heard_ms'], h.data['media_delay_ms'])",
        )
        text, user_heard_ms, media_delay_ms = out.rsplit(maxsplit=2)
        assert text.strip("'\"").strip(), "the simulator transcribed the user's speech"
        assert 0 < float(user_heard_ms) < 20_000 and 0 < float(media_delay_ms) < 3000
        print(f"user_heard_ms={float(user_heard_ms):.1f} media_delay_ms={float(media_delay_ms):.1f} said={text}")

        # The user's turn, timed in the browser (the kernel relays the transcript and the reply's first chunk):
        # Stage.user_turns() and its summary, next to the same turn timed by the kernel on its own clock.
        replied = (
            "any(None not in (t['first_reply_ms'], t['audio_start_ms'], t['heard_ms']) for t in stage.user_turns())"
        )
        wait_in_kernel(page, run.path, replied, timeout=60)
        turn = json.loads(run_in_kernel(page, run.path, USER_TURN))
        first = turn["turn"]
        assert first["clock"].startswith("browser:") and first["user_mid"] in turn["user_mids"], turn
        assert turn["transcript_chars"] and turn["transcript_chars"][-1] > 0, turn
        assert 0 < first["first_reply_ms"] < 20_000 and 0 < first["audio_start_ms"] < 20_000, turn
        # Heard after the avatar said it speaks (the media path), from the same transcript arrival as perceived.js.
        assert (
            first["audio_start_ms"] < first["heard_ms"] < 20_000
            and turn["heard"][first["user_mid"]] == first["heard_ms"]
        )
        # The same step on the kernel's clock (its own arrivals): the relay's delay is about the same for both
        # relayed messages, so the browser's figure stays close to it (never a difference across the clocks).
        assert abs(first["first_reply_ms"] - turn["kernel_first_reply_ms"]) < 500, turn
        summary = turn["summary"]
        assert all(summary[step]["n"] >= 1 for step in ("first_reply_ms", "audio_start_ms", "heard_ms")), summary
        assert summary["first_reply_ms"]["min"] <= first["first_reply_ms"] <= summary["first_reply_ms"]["max"]
        # And on the stage, for the person talking: the last turn's figures.
        shown = stage.locator(".akool-stage__turn")
        expect(shown).to_contain_text("your last turn: reply ")
        expect(shown).to_contain_text(" heard ")
        stage.scroll_into_view_if_needed()
        screenshot(page, "stage-sim-voice")
        print(f"user turn: first_reply_ms={first['first_reply_ms']:.1f} (kernel {turn['kernel_first_reply_ms']:.1f})"
              f" audio_start_ms={first['audio_start_ms']:.1f} heard_ms={first['heard_ms']:.1f}")  # fmt: skip
        run_in_kernel(page, run.path, "live.close()")
    finally:
        context.close()
        jupyter_server.shutdown_kernels()
