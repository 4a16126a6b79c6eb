"""perceived.js in Chromium: the onset detector against onsets scheduled at known times, and the video watcher.

The tight figures are benchmarks (``benchmarks/bench_media.py``); these tests hold loose bounds that still fail
when the detector is wrong (a missed onset, a false one, or an error of tens of milliseconds).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page

from benchmarks.bench_media import measure_onsets, percentile, serve_pages

VIDEO_HTML = """<!doctype html>
<meta charset="utf-8"><title>video watcher</title>
<video id="v" autoplay muted playsinline width="64" height="64"></video>
<script type="module">
import { watchVideo } from "./perceived.js";
window.runVideo = async () => {
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 64;
  const g = canvas.getContext("2d");
  const video = document.getElementById("v");
  video.srcObject = canvas.captureStream(30);
  const events = { first: null, freezes: [], stalls: [] };
  const watcher = watchVideo(video, {
    freezeMs: 500, stallMs: 900,
    onFirstFrame: (e) => (events.first = e),
    onFreeze: (e) => events.freezes.push(e),
    onStall: (e) => events.stalls.push(e),
  });
  const draw = (i) => { g.fillStyle = `rgb(${(i * 37) % 255}, ${(i * 91) % 255}, 80)`; g.fillRect(0, 0, 64, 64); };
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  for (let i = 0; i < 30; i++) { draw(i); await sleep(33); }       // one second of motion
  const pausedAt = performance.now();
  await sleep(1400);                                                 // the picture stops: a freeze, a stall
  for (let i = 30; i < 45; i++) { draw(i); await sleep(33); }       // and moves again
  await sleep(200);
  watcher.stop();
  return { ...events, pausedAt, frames: watcher.frames, motion: watcher.motionFrames };
};
window.pageReady = true;
</script>
"""


@pytest.fixture(scope="module")
def pages() -> Iterator[str]:
    with serve_pages({"/video.html": VIDEO_HTML}) as base:
        yield base


def test_the_onset_detector_finds_200_onsets_through_a_media_stream_track(media_page: Page, pages: str) -> None:
    result = measure_onsets(media_page, pages, 200, seed=11)
    assert result["method"] == "audioworklet"
    assert result["matched"] >= 198, result["missed"]
    assert result["false_onsets"] <= 2
    errors = result["errors_ms"]
    # Through a MediaStreamTrack Chromium adds a steady delay (the track's 10 ms buffers, ~20 ms); around it the
    # detector is sample-accurate, so the spread stays small.
    bias = percentile(errors, 50)
    assert 0 <= bias < 60
    assert percentile([abs(e - bias) for e in errors], 99) < 30


def test_the_onset_detector_is_sample_accurate_on_the_signal_it_sees(media_page: Page, pages: str) -> None:
    result = measure_onsets(media_page, pages, 60, seed=12, path="direct")
    assert result["matched"] == 60 and result["false_onsets"] == 0
    assert abs(result["bias_ms"]) < 5
    assert result["abs_p99_ms"] < 30


def test_the_track_frames_detector_stamps_onsets_when_the_track_carries_them(media_page: Page, pages: str) -> None:
    # A local WebAudio track's frames are stamped when its context renders them: the scheduled times are when that
    # context plays them out, its reported latency (base + output) later. The detector reads the frames themselves.
    result = measure_onsets(media_page, pages, 40, seed=14, method="track", window_ms=(-150.0, 100.0))
    assert result["method"] == "track"
    assert result["matched"] >= 39 and result["false_onsets"] <= 1
    assert abs(result["bias_ms"] + result["context_latency_ms"]) < 15, result["bias_ms"]
    errors = result["errors_ms"]
    assert percentile([abs(e - result["bias_ms"]) for e in errors], 99) < 15


def test_without_audio_worklet_the_analyser_fallback_still_finds_onsets(media_page: Page, pages: str) -> None:
    result = measure_onsets(media_page, pages, 30, seed=13, path="direct", forceAnalyser=True)
    assert result["method"] == "analyser"
    assert result["matched"] >= 27 and result["false_onsets"] <= 1
    assert result["abs_p99_ms"] < 30


def test_the_video_watcher_reports_first_frame_motion_freezes_and_stalls(media_page: Page, pages: str) -> None:
    media_page.goto(f"{pages}/video.html")
    media_page.wait_for_function("window.pageReady === true")
    result = media_page.evaluate("() => window.runVideo()")
    assert result["first"] is not None and result["first"]["width"] == 64
    assert result["frames"] >= 20
    assert result["motion"] >= 15  # the picture changed on (almost) every frame
    assert len(result["freezes"]) == 1
    assert 1000 < result["freezes"][0]["duration_ms"] < 3000
    assert result["freezes"][0]["at"] <= result["pausedAt"] + 100
    assert len(result["stalls"]) == 1


_ASSOCIATE_JS = """async () => {
  const { PerceivedTimings } = await import("./perceived.js");
  const events = [];
  const p = new PerceivedTimings({ emit: (e) => events.push(e) });
  const ev = (name, mid) => ({ v: 2, type: "event", mid, pld: { event: name } });
  // A typed question, its reply heard 80 ms after audio_start; its send was relayed (a round trip of 12.5 ms).
  p.sent("m-1", 1000);
  p.relayed("m-1", 12.5, 1013);
  p.received(ev("audio_start", "r-1"), 1300);
  p.onOnset({ at: 1380, level_db: -30, floor_db: -70, method: "test" });
  p.received(ev("audio_end", "r-1"), 2000);
  // The user's voice: its transcript, then the answer, whose sound comes 20 ms before the event that announces it.
  p.received({ v: 2, type: "chat", mid: "u-1", idx: 0, fin: true, pld: { from: "user", text: "hi" } }, 3000);
  p.onOnset({ at: 3480, level_db: -30, floor_db: -70, method: "test" });
  p.received(ev("audio_start", "r-2"), 3500);
  // A short reply whose sound arrives after its audio_end (the media path is slower than the reply is long).
  p.sent("m-2", 5000);
  p.received(ev("audio_start", "r-3"), 5100);
  p.received(ev("audio_end", "r-3"), 5140);
  p.onOnset({ at: 5250, level_db: -30, floor_db: -70, method: "test" });
  // A reply never heard: given up when the next one starts.
  p.sent("m-3", 6000);
  p.received(ev("audio_start", "r-4"), 6100);
  p.received(ev("audio_end", "r-4"), 6110);
  p.sent("m-4", 7000);
  p.received(ev("audio_start", "r-5"), 7100);
  await p.stop();
  return events;
}"""


def test_perceived_timings_give_each_reply_its_heard_and_media_delay(media_page: Page, pages: str) -> None:
    media_page.goto(f"{pages}/onsets.html")
    events = media_page.evaluate(_ASSOCIATE_JS)
    heard = [e for e in events if e["type"] == "heard"]
    assert [(h["mid"], h["reply_mid"]) for h in heard] == [("m-1", "r-1"), ("u-1", "r-2"), ("m-2", "r-3")]
    assert heard[0]["heard_ms"] == 380 and heard[0]["media_delay_ms"] == 80 and heard[0]["user_heard_ms"] is None
    assert heard[0]["relay_rtt_ms"] == 12.5 and heard[2]["relay_rtt_ms"] is None
    assert [e for e in events if e["type"] == "relay"] == [{"type": "relay", "mid": "m-1", "at": 1013, "rtt_ms": 12.5}]
    assert heard[1]["heard_ms"] is None and heard[1]["user_heard_ms"] == 480 and heard[1]["media_delay_ms"] == -20
    assert heard[2]["heard_ms"] == 250 and heard[2]["media_delay_ms"] == 150
    assert [e for e in events if e["type"] == "unheard"] == [
        {"type": "unheard", "mid": "m-3", "reply_mid": "r-4", "at": 7100}
    ]
    assert sum(e["type"] == "onset" for e in events) == 3


# Two tracks handed over back to back (an SDK replacing its track at a reconnection), and a page that stops
# measuring while an attach is still being made: each detector is stopped exactly once, and none outlives stop().
_ATTACH_RACE_JS = """async () => {
  const { PerceivedTimings } = await import("./perceived.js");
  const ctx = new AudioContext();
  const track = () => ctx.createMediaStreamDestination().stream.getAudioTracks()[0];
  const errors = [];
  window.addEventListener("unhandledrejection", (e) => errors.push(String(e.reason)));
  const counted = (detector) => {
    const stop = detector.stop;
    detector.stops = 0;
    detector.stop = () => { detector.stops += 1; return stop(); };
    return detector;
  };
  const events = [];
  const perceived = new PerceivedTimings({ emit: (e) => events.push(e), method: "audioworklet", context: ctx });
  const [first, second] = await Promise.all([perceived.attachAudio(track()), perceived.attachAudio(track())]);
  const firstStopped = first !== second && perceived.detector === second;
  counted(second);
  const third = perceived.attachAudio(track());  // in flight...
  await perceived.stop();                          // ...when the page stops measuring
  const last = await third;
  await second.stop();                             // a second stop of a stopped detector is harmless
  await new Promise((r) => setTimeout(r, 50));
  return { firstStopped, secondStops: second.stops, lastIsCurrent: perceived.detector === last,
           detectors: events.filter((e) => e.type === "detector").length,
           errors: errors.concat(events.filter((e) => e.type === "detector_error").map((e) => e.message)) };
}"""


def test_attaches_run_one_after_another_and_none_outlives_stop(media_page: Page, pages: str) -> None:
    media_page.goto(f"{pages}/onsets.html")
    result = media_page.evaluate(_ATTACH_RACE_JS)
    assert result["firstStopped"], "the second attach must replace the first detector"
    assert result["errors"] == []
    # stop() stopped the second detector, then the test stopped it again: the wrapper counts both calls, and the
    # detector's teardown (which would throw "not connected" on a second disconnect) ran once without error.
    assert result["secondStops"] == 2
    assert result["lastIsCurrent"]
    # Only the two attaches made before stop() announced a detector; the one in flight stopped itself silently.
    assert result["detectors"] == 2
