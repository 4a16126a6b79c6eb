"""Perceived latency, calibrated: how exact the browser's onset detector is, and what the media path adds.

* ``onset_error_p99_ms``: ``akool_lab/widgets/static/perceived.js``'s onset detector against onsets scheduled at
  known ``performance.now()`` times in Chromium: speech-like bursts (a buzz through a vowel-like filter, with
  attacks of 0 to 5 ms, or a burst of band-limited noise) at -35 to -15 dBFS over a steady background noise at
  -55 dBFS. Error = detected onset - scheduled onset, both on the page's clock (the scheduled time is when the
  AudioContext plays the sample out, mapped through its output timestamp). Target p99 of |error| <= 5 ms for the
  detector itself (``direct``: the signal fed straight to its AudioWorklet, which maps each sample's frame to the
  page's clock). Beside it, two paths through a local ``MediaStreamTrack`` (``MediaStreamAudioDestinationNode``):
  ``track`` (back into WebAudio: Chromium's track-to-WebAudio path adds a steady delay, ``bias_ms``) and
  ``frames`` (the detector reading the track's own frames, as it does on a received track: a local WebAudio
  track's frames are stamped when the context renders them, so ``bias_ms`` is about minus the context's reported
  latency, ``context_latency_ms``: a check that those timestamps are on the page's clock). The detector is also
  scored on the context's own timeline (``context_abs_p99_ms``: the detected frame against the scheduled context
  time, no clock mapping); the difference, ``slip_abs_p99_ms``, is the context's clock slipping against the page's
  between scheduling and detection: a render that fell behind on a busy machine plays the onset later than it was
  scheduled for, the detector reports when it played, and the page-clock figure counts the slip as error.

* ``heard_error_p99_ms``: a page joins the simulator's WebRTC avatar (plain RTCPeerConnection, fast profile,
  loopback) and asks 100 questions on the WebRTC data channel; for each reply, heard_ms (last chunk sent -> first
  audible sample at the receiver's playout point, ``PerceivedTimings`` reading the received track's frames) minus
  (the simulator's injected time to audio + the jitter buffer delay Chromium reports for the 10 ms in which that
  sample left it). The injected time is the simulator's ground truth, on its own clock, from the question's arrival:
  to the first sample of speech entering its track (``first_sample_ms``), plus the sender's encoding and hand-off to
  the network (``send_delay_ms``: until the sender asks for the next frame), plus the Opus encoder's look-ahead
  (``codec_delay_ms``, 6.5 ms: the decoder plays that sample that much later). What remains is what nobody
  reports: the data channel's way from the page to the simulator, the loopback network, Chromium's receive path
  before its jitter buffer, and the detector's own error. Target p99 of |error| <= 20 ms.
  Reported beside it, all on the page's clock: ``webaudio_delay_ms`` (the same onsets through an AudioWorklet
  minus the track's: Chromium's track-to-WebAudio path plus the AudioContext's latency, what heard_ms included
  before it read the track's frames), ``frames.lag_ms`` (how long after its timestamp each frame reached the page:
  a fraction of a millisecond, never negative), the context's reported latencies and the receiver's reported
  ``playout_delay_ms`` (the audio device after the playout point: not in heard_ms).
* ``media_delay_ms``: audio_start's arrival -> the first audible sample, p50 and p99: what the media path adds.

Run on its own: ``python benchmarks/bench_media.py [--quick]``. Needs Debian's chromium (``make chromium``); the
keys are in ``akool-lab bench``'s table (``akool_lab/bench.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

ROOT = Path(__file__).resolve().parents[1]
PERCEIVED_JS = ROOT / "akool_lab" / "widgets" / "static" / "perceived.js"

#: Chromium's flags for media pages: headless, fake capture devices, audio that may start without a gesture.
MEDIA_ARGS: tuple[str, ...] = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    # Loopback WebRTC: the page's own addresses in its ICE candidates, not mDNS names the simulator cannot resolve.
    "--disable-features=WebRtcHideLocalIpsWithMdns",
)

ONSETS_HTML = """<!doctype html>
<meta charset="utf-8"><title>onset calibration</title>
<script type="module">
import { detectOnsets, detectOnsetsOnNode, performanceToContextTime } from "./perceived.js";

// A deterministic generator (mulberry32), so a seed gives the same onsets.
function random(seed) {
  return () => {
    seed |= 0; seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

window.runOnsets = async ({ count, seed, noiseDb = -55, gapMs = 250, forceAnalyser = false, path = "track",
                            method = "audioworklet" }) => {
  const rnd = random(seed);
  const ctx = new AudioContext({ latencyHint: "interactive" });
  await ctx.resume();
  // "track": through a MediaStreamTrack (what a received track is); "direct": the same signal straight into the
  // detector (the detector's own error, without the MediaStream hop); "context2": the track into another context.
  // `method`: how the detector listens to the track ("audioworklet", or "track": the track's own frames).
  const out = path === "direct" ? ctx.createGain() : ctx.createMediaStreamDestination();
  // Background: steady noise, low-passed, looping.
  const noise = ctx.createBuffer(1, ctx.sampleRate * 2, ctx.sampleRate);
  const data = noise.getChannelData(0);
  const amp = 10 ** (noiseDb / 20) * Math.sqrt(3);
  for (let i = 0; i < data.length; i++) data[i] = (rnd() * 2 - 1) * amp;
  const bed = ctx.createBufferSource();
  bed.buffer = noise; bed.loop = true;
  const bedFilter = ctx.createBiquadFilter(); bedFilter.type = "lowpass"; bedFilter.frequency.value = 4000;
  bed.connect(bedFilter).connect(out);
  bed.start();
  const burstNoise = ctx.createBuffer(1, ctx.sampleRate, ctx.sampleRate);
  const bd = burstNoise.getChannelData(0);
  for (let i = 0; i < bd.length; i++) bd[i] = rnd() * 2 - 1;

  const options = { noSink: true, hangoverMs: 60, forceAnalyser, method };
  const detector = path === "direct"
    ? await detectOnsetsOnNode(ctx, out, options)
    : await detectOnsets(out.stream.getAudioTracks()[0], path === "track" ? { context: ctx, ...options } : options);
  await detector.ready;

  const scheduled = [];
  let previous = performance.now();
  for (let k = 0; k < count; k++) {
    // Each onset is scheduled 100 to 140 ms ahead, with the clock mapping of that moment, and at least gapMs after
    // the previous one: a page timer that wakes late (a busy machine) delays the onset, never misplaces it.
    const wait = previous + gapMs - 120 - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const due = Math.max(previous + gapMs, performance.now() + 100) + rnd() * 40;
    previous = due;
    const t0 = performanceToContextTime(ctx, due);
    const level = 10 ** ((-35 + rnd() * 20) / 20);
    const length = 0.05 + rnd() * 0.06; // with the release and the hangover, over before the next onset
    const attack = rnd() < 0.3 ? 0 : rnd() * 0.005;
    const gain = ctx.createGain();
    gain.gain.setValueAtTime(0, 0);
    gain.gain.setValueAtTime(0, t0);
    if (attack > 0) gain.gain.linearRampToValueAtTime(level, t0 + attack);
    else gain.gain.setValueAtTime(level, t0);
    gain.gain.setValueAtTime(level, t0 + length);
    gain.gain.linearRampToValueAtTime(0, t0 + length + 0.01);
    gain.connect(out);
    let node;
    const kind = rnd() < 0.7 ? "voice" : "noise";
    if (kind === "voice") {
      // A voiced vowel: harmonics of f0 weighted by two formant peaks.
      const f0 = 100 + rnd() * 150;
      const f1 = 300 + rnd() * 600, f2 = 900 + rnd() * 1500;
      const harmonics = Math.floor(4000 / f0);
      const real = new Float32Array(harmonics + 1), imag = new Float32Array(harmonics + 1);
      for (let h = 1; h <= harmonics; h++) {
        const f = h * f0;
        const amplitude = 1 / (1 + ((f - f1) / 100) ** 2) + 0.5 / (1 + ((f - f2) / 150) ** 2);
        const phase = rnd() * 2 * Math.PI; // spread over the period, as a voice's energy is
        real[h] = amplitude * Math.cos(phase);
        imag[h] = amplitude * Math.sin(phase);
      }
      node = ctx.createOscillator();
      node.setPeriodicWave(ctx.createPeriodicWave(real, imag));
      node.frequency.value = f0;
      node.connect(gain);
    } else {
      node = ctx.createBufferSource();
      node.buffer = burstNoise;
      const band = ctx.createBiquadFilter();
      band.type = "bandpass"; band.frequency.value = 1500 + rnd() * 3000; band.Q.value = 0.8;
      node.connect(band).connect(gain);
    }
    node.start(t0);
    node.stop(t0 + length + 0.02);
    scheduled.push({ at: due, t0, kind, attack_ms: attack * 1000, level_db: 20 * Math.log10(level) });
  }
  await new Promise((r) => setTimeout(r, gapMs + 300));
  const onsets = detector.onsets.map((o) => o.at);
  const frames = detector.onsets.map((o) => o.frame);
  const latency_ms = (ctx.baseLatency + (ctx.outputLatency || 0)) * 1000;
  await detector.stop();
  await ctx.close();
  return { path, scheduled, onsets, frames, rate: ctx.sampleRate, method: detector.method, floor_db: detector.floorDb,
           latency_ms };
};
window.pageReady = true;
</script>
"""


#: A browser page that talks to the simulator's WebRTC avatar with a plain RTCPeerConnection (no provider SDK):
#: it plays the avatar's audio and video, sends chat messages on the data channel, and times each reply on its own
#: clock: heard_ms (last chunk sent -> first audible sample) and media_delay_ms (audio_start's arrival -> that
#: sample), with the receiver's statistics sampled at each onset.
AVATAR_HTML = """<!doctype html>
<meta charset="utf-8"><title>simulated avatar over WebRTC</title>
<video id="face" autoplay muted playsinline></video>
<audio id="voice" autoplay></audio>
<script type="module">
import { PerceivedTimings, detectOnsets } from "./perceived.js";

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function until(condition, timeoutMs, what) {
  const end = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

window.connectAvatar = async ({ simUrl, sessionId, token, microphone = false }) => {
  const pc = new RTCPeerConnection({ iceServers: [] });
  if (microphone) {
    // The user's voice, as the official demo captures it for AKool's ASR (here the raw signal: the simulator's
    // voice activity detector and recogniser take it as it is).
    const mic = await navigator.mediaDevices.getUserMedia({
      audio: { echoCancellation: false, noiseSuppression: false, autoGainControl: false },
    });
    pc.addTransceiver(mic.getAudioTracks()[0], { direction: "sendrecv" });
  } else {
    pc.addTransceiver("audio", { direction: "recvonly" });
  }
  pc.addTransceiver("video", { direction: "recvonly" });
  const channel = pc.createDataChannel("akool");
  const heard = [];
  const perceived = new PerceivedTimings({ emit: (event) => event.type === "heard" && heard.push(event) });
  const state = { pc, channel, messages: [], heard, perceived, detector: null, webaudio: null, video: null };
  window.avatar = state;
  channel.onmessage = (event) => {
    const at = performance.now();
    const message = JSON.parse(event.data);
    state.messages.push({ at, message });
    perceived.received(message, at);
  };
  pc.ontrack = async (event) => {
    if (event.track.kind === "audio") {
      const voice = document.getElementById("voice");
      voice.srcObject = new MediaStream([event.track]);
      voice.play().catch(() => {});
      state.detector = await perceived.attachAudio(event.track, event.receiver);
      // The same track through WebAudio (an AudioWorklet), beside it: how much later that path hears each onset.
      if (state.detector.method === "track") state.webaudio = await detectOnsets(event.track, { method: "audioworklet" });
    } else {
      const face = document.getElementById("face");
      face.srcObject = new MediaStream([event.track]);
      face.play().catch(() => {});
      state.video = perceived.attachVideo(face);
    }
  };
  await pc.setLocalDescription(await pc.createOffer());
  // The simulator takes no trickled candidates: send the offer once gathering is complete.
  await until(() => pc.iceGatheringState === "complete", 10000, "ICE gathering");
  const response = await fetch(`${simUrl}/_sim/sessions/${sessionId}/webrtc/offer`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, token }),
  });
  const answer = await response.json();
  if (answer.code !== 1000) throw new Error(`offer refused: ${answer.code} ${answer.msg}`);
  await pc.setRemoteDescription(answer.data);
  await until(() => channel.readyState === "open", 20000, "the data channel");
  await until(() => state.detector !== null, 20000, "the audio track");
  await state.detector.ready;
  await until(() => state.video && state.video.firstFrameAt !== null, 20000, "the first video frame");
  return { firstFrameAt: state.video.firstFrameAt };
};

// Send `count` chat messages one after another; for each, the timings on this page's clock.
window.askAvatar = async ({ count, text, timeoutMs = 20000 }) => {
  const state = window.avatar;
  const results = [];
  for (let i = 0; i < count; i++) {
    const mid = `m-${Date.now().toString(36)}-${i}`;
    const heardBefore = state.heard.length;
    const seen = state.messages.length;
    state.channel.send(JSON.stringify({ v: 2, type: "chat", mid, idx: 0, fin: true, pld: { text } }));
    state.perceived.sent(mid, performance.now()); // the last (only) chunk was handed to the data channel
    const event = (name) =>
      state.messages.slice(seen).find((m) => m.message.type === "event" && m.message.pld.event === name);
    await until(() => state.heard.length > heardBefore, timeoutMs, `reply ${i} heard`);
    await until(() => event("audio_end"), timeoutMs, `audio_end ${i}`);
    const heard = state.heard[heardBefore];
    if (heard.mid !== mid) throw new Error(`reply heard for ${heard.mid}, expected ${mid}`);
    // The WebAudio path's onset of the same sound: the first one after the track's, within 200 ms.
    const late = state.webaudio?.onsets.find((o) => o.at >= heard.onset_at - 5 && o.at < heard.onset_at + 200);
    results.push({ ...heard, ttfa_ms: heard.audio_start_at - heard.sent_at,
                   webaudio_delay_ms: late ? late.at - heard.onset_at : null });
    // Let the detector see the silence again before the next question (its hangover).
    await until(() => state.detector.offsets.length >= state.detector.onsets.length, timeoutMs, `silence ${i}`);
  }
  return results;
};

// The user's turn: their transcript (from: "user") arriving, to the avatar's first reply chunk and audio_start.
window.waitForUserTurn = async ({ timeoutMs = 60000 }) => {
  const state = window.avatar;
  const find = (test) => state.messages.find((m) => test(m.message));
  await until(() => find((m) => m.type === "chat" && m.pld.from === "user"), timeoutMs, "the user's transcript");
  const first = find((m) => m.type === "chat" && m.pld.from === "user");
  const userMid = first.message.mid;
  const userChunks = state.messages.filter((m) => m.message.type === "chat" && m.message.mid === userMid);
  await until(() => find((m) => m.type === "event" && m.pld.event === "audio_start"), timeoutMs, "the answer");
  const reply = find((m) => m.type === "chat" && m.pld.from === "bot");
  const start = find((m) => m.type === "event" && m.pld.event === "audio_start");
  const transcriptAt = userChunks[userChunks.length - 1].at;
  await until(() => state.heard.some((h) => h.transcript_at !== null), timeoutMs, "the answer heard");
  const heard = state.heard.find((h) => h.transcript_at !== null);
  return {
    user_heard_ms: heard.user_heard_ms,
    heard_mid: heard.mid,
    media_delay_ms: heard.media_delay_ms,
    transcript: userChunks.map((m) => m.message.pld.text).join(""),
    user_mid: userMid,
    transcript_at: transcriptAt,
    first_reply_chunk_ms: reply ? reply.at - transcriptAt : null,
    audio_start_ms: start.at - transcriptAt,
  };
};

window.avatarSummary = () => {
  const s = window.avatar;
  return {
    video: { frames: s.video.frames, motion: s.video.motionFrames, freezes: s.video.freezes.length,
             stalls: s.video.stalls.length, firstFrameAt: s.video.firstFrameAt },
    stats: s.perceived.stats.latest(),
    heard: s.heard.length,
    method: s.detector.method,
    frames: s.detector.frames ? { count: s.detector.frames.count, gaps: s.detector.frames.gaps, lag_ms: s.detector.frames.lag_ms } : null,
    context: s.webaudio ? { sample_rate: s.webaudio.context.sampleRate, base_latency_ms: s.webaudio.context.baseLatency * 1000,
                            output_latency_ms: s.webaudio.context.outputLatency * 1000 } : null,
  };
};

window.closeAvatar = async () => {
  const s = window.avatar;
  await s.perceived.stop();
  await s.webaudio?.stop();
  s.pc.close();
};
window.pageReady = true;
</script>
"""


class _Pages(http.server.BaseHTTPRequestHandler):
    pages: ClassVar[dict[str, tuple[str, bytes]]] = {}

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/perceived.js":
            body, kind = PERCEIVED_JS.read_bytes(), "text/javascript"
        elif path in self.pages:
            kind, body = self.pages[path]
        else:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def serve_pages(extra: dict[str, str] | None = None) -> Iterator[str]:
    """Serve the calibration pages and ``perceived.js`` on 127.0.0.1 (a secure context, as AudioWorklet needs)."""
    pages = {"/onsets.html": ONSETS_HTML, "/avatar.html": AVATAR_HTML, **(extra or {})}
    handler = type("Pages", (_Pages,), {"pages": {k: ("text/html", v.encode()) for k, v in pages.items()}})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, name="media-pages", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (nearest rank, as ``akool_lab.metrics.percentile``)."""
    from akool_lab.metrics import percentile as metrics_percentile

    return float(metrics_percentile(sorted(values), q))


def match_onsets(scheduled: list[float], detected: list[float], window_ms: tuple[float, float]) -> dict[str, Any]:
    """Pair each scheduled onset with the first detection in ``[at + window[0], at + window[1]]``."""
    errors: list[float] = []
    used: set[int] = set()
    missed: list[int] = []
    errors_at: list[tuple[int, int, float]] = []
    for k, at in enumerate(scheduled):
        hit = next(
            (i for i, d in enumerate(detected) if i not in used and window_ms[0] <= d - at <= window_ms[1]), None
        )
        if hit is None:
            missed.append(k)
            continue
        used.add(hit)
        errors.append(detected[hit] - at)
        errors_at.append((k, hit, detected[hit] - at))
    absolute = [abs(e) for e in errors]
    return {
        "n": len(scheduled),
        "matched": len(errors),
        "missed": len(missed),
        "missed_at": missed,
        "errors_at": errors_at,
        "false_onsets": len(detected) - len(used),
        "errors_ms": errors,
        "abs_p50_ms": percentile(absolute, 50) if absolute else None,
        "abs_p99_ms": percentile(absolute, 99) if absolute else None,
        "abs_max_ms": max(absolute) if absolute else None,
        "bias_ms": percentile(errors, 50) if errors else None,
    }


#: Page calls are bounded: Playwright's evaluate itself waits forever for a promise.
_WITH_TIMEOUT = (
    "(o) => Promise.race([{call}, new Promise((_, reject) => "
    "setTimeout(() => reject(new Error('timed out after ' + o.timeoutMs + ' ms')), o.timeoutMs))])"
)


def measure_onsets(
    page: Any, base_url: str, count: int, seed: int = 1, window_ms: tuple[float, float] = (-30.0, 150.0), **options: Any
) -> dict[str, Any]:
    """Run the onset calibration page in ``page`` (a Playwright page); the matched errors and their percentiles
    (a detection counts for a scheduled onset within ``window_ms`` of it)."""
    page.goto(f"{base_url}/onsets.html")
    page.wait_for_function("window.pageReady === true", timeout=30_000)
    result: dict[str, Any] = page.evaluate("(o) => window.runOnsets(o)", {"count": count, "seed": seed, **options})
    summary = match_onsets([s["at"] for s in result["scheduled"]], result["onsets"], window_ms)
    pairs = summary.pop("errors_at")
    if result["method"] != "track" and options.get("path", "track") in ("track", "direct"):
        # The same onsets on the context's own timeline (the detected frame against the scheduled context time):
        # the detector alone. What separates the two is the context's clock slipping against the page's between
        # the scheduling and the detection (a render that fell behind on a busy machine: ``slip_ms``).
        rate = result["rate"]
        on_context = [(result["frames"][i] / rate - result["scheduled"][k]["t0"]) * 1000 for k, i, _ in pairs]
        slips = [e - c for (_, _, e), c in zip(pairs, on_context, strict=True)]
        summary["context_abs_p99_ms"] = percentile([abs(c) for c in on_context], 99) if on_context else None
        summary["context_abs_max_ms"] = max((abs(c) for c in on_context), default=None)
        summary["slip_abs_p99_ms"] = percentile([abs(x) for x in slips], 99) if slips else None
        summary["slipped_over_1ms"] = sum(abs(x) > 1 for x in slips)
    # The worst few, with what was scheduled (to tell a detector's fault from a busy machine's).
    worst = sorted(pairs, key=lambda pair: -abs(pair[2]))[:5]
    summary["worst"] = [{**result["scheduled"][k], "error_ms": e} for k, _, e in worst]
    summary["worst"] += [{**result["scheduled"][k], "error_ms": None} for k in summary.pop("missed_at")[:5]]
    summary["method"] = result["method"]
    summary["floor_db"] = result["floor_db"]
    summary["context_latency_ms"] = result["latency_ms"]
    summary["scheduled"] = result["scheduled"]
    return summary


def create_session(sim: Any, *, mode: int = 1) -> dict[str, Any]:
    """A live session on the simulator ``sim`` (REST): its ``_id`` and ``credentials`` (with ``ws_token``)."""
    import time

    import httpx

    from akool_lab.target import DEFAULT_AVATAR

    with httpx.Client(base_url=sim.base_url, headers={"x-api-key": sim.api_key}, timeout=10) as http:
        created = http.post(
            "/api/open/v4/liveAvatar/session/create",
            json={"avatar_id": DEFAULT_AVATAR, "duration": 900, "mode_type": mode, "stream_type": "livekit"},
        ).json()
        if created.get("code") != 1000:
            raise RuntimeError(f"session/create answered {created.get('code')} {created.get('msg')}")
        session: dict[str, Any] = created["data"]
        deadline = time.monotonic() + 30
        while True:
            detail = http.get("/api/open/v4/liveAvatar/session/detail", params={"id": session["_id"]}).json()
            if detail["data"]["status"] == 2:
                return session
            if time.monotonic() > deadline:
                raise TimeoutError("the simulated session did not go live within 30 s")
            time.sleep(0.01)


#: Sixty words: 120 ms of speech on the fast profile (2 ms a word).
REPLY_TEXT = " ".join(["Hello from the simulated avatar, speaking on a real WebRTC track."] * 6)


def measure_heard(page: Any, base_url: str, sim: Any, count: int) -> dict[str, Any]:
    """Connect ``page`` to a new session on ``sim`` over WebRTC, ask ``count`` questions; per-reply timings with
    the simulator's truth beside them, and ``heard_error_ms`` = heard_ms - (the injected time to audio: first sample
    into the track + its send + the codec's look-ahead, on the simulator's clock; + the jitter buffer delay the
    browser reports for that sample). See the module's docstring."""
    session = create_session(sim)
    page.goto(f"{base_url}/avatar.html")
    page.wait_for_function("window.pageReady === true", timeout=30_000)
    token = session["credentials"]["ws_token"]
    connected = page.evaluate(
        _WITH_TIMEOUT.format(call="window.connectAvatar(o)"),
        {"simUrl": sim.base_url, "sessionId": session["_id"], "token": token, "timeoutMs": 60_000},
    )
    try:
        replies: list[dict[str, Any]] = page.evaluate(
            _WITH_TIMEOUT.format(call="window.askAvatar(o)"),
            {"count": count, "text": REPLY_TEXT, "timeoutMs": count * 5_000 + 30_000},
        )
        summary = page.evaluate("() => window.avatarSummary()")
    finally:
        page.evaluate("() => window.closeAvatar()")
    truth = sim.truth(session["_id"])["messages"]
    for reply in replies:
        media = truth[reply["mid"]].get("media") or {}
        reply["truth_first_sample_ms"] = media.get("first_sample_ms")
        reply["truth_late_ms"] = media.get("late_ms")
        reply["truth_ttfa_ms"] = truth[reply["mid"]]["ttfa_ms"]
        reply["truth_codec_delay_ms"] = media.get("codec_delay_ms")
        reply["truth_send_delay_ms"] = media.get("send_delay_ms")
        # What the browser says the media path held this reply back before its playout point: the jitter buffer
        # (per emitted sample, over the stats interval in which the onset left it).
        reported = reply["jitter_buffer_ms"] or 0.0
        reply["reported_delay_ms"] = reported
        if reply["truth_first_sample_ms"] is not None:
            injected = (
                reply["truth_first_sample_ms"]
                + (reply["truth_send_delay_ms"] or 0.0)
                + (reply["truth_codec_delay_ms"] or 0.0)
            )
            reply["heard_error_ms"] = reply["heard_ms"] - (injected + reported)
    errors = [r["heard_error_ms"] for r in replies if "heard_error_ms" in r]
    delays = [r["media_delay_ms"] for r in replies]
    heard = [r["heard_ms"] for r in replies]
    jitter = [r["jitter_buffer_ms"] for r in replies if r["jitter_buffer_ms"] is not None]
    webaudio = [r["webaudio_delay_ms"] for r in replies if r.get("webaudio_delay_ms") is not None]
    playout = [r["playout_delay_ms"] for r in replies if r["playout_delay_ms"] is not None]
    send = [r["truth_send_delay_ms"] for r in replies if r.get("truth_send_delay_ms") is not None]

    def spread(values: list[float]) -> dict[str, float | None]:
        if not values:
            return {"n": 0, "min": None, "p50": None, "p99": None, "max": None}
        return {
            "n": len(values),
            "min": min(values),
            "p50": percentile(values, 50),
            "p99": percentile(values, 99),
            "max": max(values),
        }

    keys = (
        "mid", "heard_ms", "heard_error_ms", "truth_first_sample_ms", "truth_late_ms", "truth_send_delay_ms",
        "jitter_buffer_ms", "stats_interval_ms", "concealed", "media_delay_ms", "webaudio_delay_ms",
    )  # fmt: skip
    worst = sorted((r for r in replies if "heard_error_ms" in r), key=lambda r: -abs(r["heard_error_ms"]))[:5]
    return {
        "session_id": session["_id"],
        "first_frame_after_connect": connected,
        # The worst few replies, with what the truth and the browser said of each (to tell what went wrong).
        "worst": [{key: r.get(key) for key in keys} for r in worst],
        "replies": replies,
        "summary": summary,
        "heard_ms": spread(heard),
        "media_delay_ms": spread(delays),
        "jitter_buffer_ms": spread(jitter),
        "heard_error_ms": spread(errors),
        "heard_error_abs_ms": spread([abs(e) for e in errors]),
        # Around its median: how consistent the unreported part of the path is.
        "heard_error_spread_ms": spread([abs(e - percentile(errors, 50)) for e in errors] if errors else []),
        "send_delay_ms": spread(send),
        "webaudio_delay_ms": spread(webaudio),
        "playout_delay_ms": spread(playout),
        "codec_delay_ms": replies[0].get("truth_codec_delay_ms") if replies else None,
    }


#: Messages per heard_error run (quick: a few, so that ``akool-lab bench --quick`` in ``make test`` stays short).
HEARD_MESSAGES = 100
HEARD_MESSAGES_QUICK = 8
#: One heard_error run per mode, shared by its figures (heard_error_p99_ms, media_delay_p50_ms/p99_ms).
_HEARD_RUNS: dict[bool, dict[str, Any]] = {}


def heard_error_p99_ms(quick: bool = False) -> dict[str, Any]:
    """p99 of |heard_ms - (injected time to audio + browser-reported jitter buffer delay)|, 100 messages (quick:
    8), on the simulator's WebRTC avatar on loopback; target <= 20 ms (see the module's docstring). Also media_delay_ms p50/p99 (the floor of
    what the media path adds on loopback)."""
    if quick not in _HEARD_RUNS:
        from akool_lab import sim

        with serve_pages() as base, media_browser() as page, sim.start(profile="fast") as server:
            result = measure_heard(page, base, server, HEARD_MESSAGES_QUICK if quick else HEARD_MESSAGES)
        result.pop("replies")
        result["ratio"] = result["heard_error_abs_ms"]["p99"]
        _HEARD_RUNS[quick] = result
    return _HEARD_RUNS[quick]


def media_delay_ms(quick: bool = False) -> dict[str, Any]:
    """What the media path adds on loopback: audio_start's arrival -> first audible sample, p50 and p99 (ms)."""
    result = heard_error_p99_ms(quick)
    return {"ratio": result["media_delay_ms"]["p50"], **result["media_delay_ms"]}


def media_delay_p50_ms(quick: bool = False) -> dict[str, Any]:
    """The median of what the media path adds on loopback (the same run as :func:`heard_error_p99_ms`)."""
    return media_delay_ms(quick)


def media_delay_p99_ms(quick: bool = False) -> dict[str, Any]:
    """The p99 of what the media path adds on loopback (the same run as :func:`heard_error_p99_ms`)."""
    delays = media_delay_ms(quick)
    return {**delays, "ratio": delays["p99"]}


@contextlib.contextmanager
def media_browser() -> Iterator[Any]:
    """Debian's chromium through Playwright (sync API), with :data:`MEDIA_ARGS`; yields a fresh page."""
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True, args=list(MEDIA_ARGS))
        try:
            yield browser.new_page()
        finally:
            browser.close()


#: Onsets per path (quick: a few, for ``make test``; the figure itself needs at least 200).
ONSETS = 400
ONSETS_QUICK = 30


def onset_error_p99_ms(quick: bool = False) -> dict[str, Any]:
    """p99 of |detected - scheduled onset| in ms, 400 onsets (quick: 30) at speech-like levels; target <= 5 ms.

    The figure is the detector's own error: the generated signal goes straight into the detector's AudioWorklet.
    Reported apart, through a local MediaStreamTrack: ``track`` (back into WebAudio: Chromium adds a steady delay of
    its own) and ``frames`` (the track's own frames, stamped when the context renders them: about minus the
    context's latency), each with ``bias_ms`` (median error) and ``spread_p99_ms`` (p99 of |error - median|).
    ``direct.context_abs_p99_ms`` is the same detector on the context's timeline, ``direct.slip_abs_p99_ms`` the
    context's clock slipping against the page's meanwhile (see the module's docstring).
    """
    count = ONSETS_QUICK if quick else ONSETS
    with serve_pages() as base, media_browser() as page:
        direct = measure_onsets(page, base, count, seed=7, path="direct")
        track = measure_onsets(page, base, count, seed=8, path="track")
        frames = measure_onsets(page, base, count, seed=9, path="track", method="track", window_ms=(-150.0, 100.0))
    for result in (track, frames):
        errors = result.pop("errors_ms")
        result["spread_p99_ms"] = percentile([abs(e - result["bias_ms"]) for e in errors], 99) if errors else None
    for result in (direct, track, frames):
        result.pop("scheduled")
    direct.pop("errors_ms")
    return {"ratio": direct["abs_p99_ms"], "direct": direct, "track": track, "frames": frames}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    print(json.dumps({"onset_error_p99_ms": onset_error_p99_ms(args.quick)}, indent=2), flush=True)
    print(json.dumps({"heard_error_p99_ms": heard_error_p99_ms(args.quick)}, indent=2), flush=True)


if __name__ == "__main__":
    main()
