// Perceived timings, measured from the media a page receives: when the avatar is heard and seen.
//
// A standalone ES module (no build step, no other file served): the stage imports it, tests load it directly.
//
//   * detectOnsets(track, options): an onset detector on an audio MediaStreamTrack. It learns the noise floor while
//     the track is silent and reports each onset (the first audible sample after silence) and offset, stamped on
//     the page's clock, performance.now(). Where the browser hands the page the track's own frames
//     (MediaStreamTrackProcessor, Chromium), it reads them: a received frame's timestamp is when the receiver took
//     it out of its jitter buffer for playout, so an onset is the time of the sound at the receiver's playout
//     point, to the sample. Elsewhere it listens through WebAudio (an AudioWorklet created from a Blob URL, or an
//     AnalyserNode): an onset is then when the AudioContext plays that sample out (the worklet's currentFrame plus
//     the sample's index, mapped to performance.now() through AudioContext.getOutputTimestamp()), which comes
//     after the path from the track into WebAudio and the context's own latency.
//   * watchVideo(video, options): first frame, frames with motion, freezes and stalls (requestVideoFrameCallback).
//   * sampleAudioReceiverStats(source, options): the browser's own receive statistics of an audio track
//     (jitter buffer delay per emitted sample, concealed samples...), sampled periodically.
//
// Every time here is a performance.now() value of this page (never mixed with another clock).

const WORKLET_NAME = "akool-lab-onset";

// The detector itself, on a mono stream of samples numbered by frame (a running sample count). The AudioWorklet and
// the track reader both run it: its source text is copied into the worklet's module, so it refers to nothing outside
// itself. push() reports {type: "ready"|"onset"|"offset"|"level", frame, ...} through `post`; frames are turned into
// times by the caller, which knows where its samples come from.
class OnsetCore {
  constructor(o, rate) {
    this.ratio = 10 ** (o.thresholdDb / 20); // a sample this far above the floor's RMS starts a candidate
    this.confirmRatio = 10 ** (o.confirmDb / 20); // and the RMS of the next confirm window must be this far
    this.quietRatio = 10 ** (o.quietDb / 20); // below this, the signal counts as silent again
    this.minAmp = 10 ** (o.minLevelDb / 20);
    this.learnFrames = Math.round((o.learnMs * rate) / 1000);
    this.confirmFrames = Math.max(32, Math.round((o.confirmMs * rate) / 1000));
    this.hangFrames = Math.round((o.hangoverMs * rate) / 1000);
    this.backFrames = Math.round((o.lookBackMs * rate) / 1000);
    this.levelEvery = Math.round((o.levelEveryMs * rate) / 1000);
    this.size = 8192; // samples kept for look-back and confirmation (170 ms at 48 kHz)
    this.history = new Float32Array(this.size);
    this.floor = 0; // RMS of the background, learnt while silent
    this.floorKnown = false;
    this.seen = 0; // frames processed since the first input arrived
    this.firstFrame = -1; // frame of the first input sample
    this.end = 0;
    this.state = "learning";
    this.candidate = -1;
    this.quietSince = -1;
    this.lastLevel = 0;
  }
  sample(frame) {
    return this.history[frame % this.size];
  }
  rms(from, to) {
    let sum = 0;
    for (let f = from; f < to; f++) {
      const x = this.sample(f);
      sum += x * x;
    }
    return Math.sqrt(sum / Math.max(1, to - from));
  }
  learn(r) {
    if (!this.floorKnown) {
      this.floor = r;
      this.floorKnown = true;
      return;
    }
    // Falls fast, rises slowly: a burst that is not (yet) an onset barely moves it.
    this.floor += (r < this.floor ? 0.2 : 0.01) * (r - this.floor);
  }
  threshold() {
    return Math.max(this.floor * this.ratio, this.minAmp);
  }
  // The onset is where the rise began: walk back from the threshold crossing in 0.5 ms steps while the RMS of
  // the millisecond before is clearly above the background (a ramped onset crosses the threshold some
  // milliseconds after it starts), then take the first sample of that stretch that stands out of the noise.
  lookBack(crossing) {
    const step = 24;
    const window = 48;
    const level = Math.max(this.floor * 2, this.minAmp / 16);
    let start = crossing;
    const limit = Math.max(crossing - this.backFrames, this.firstFrame + window, this.end - this.size + window);
    while (start - step >= limit && this.rms(start - window, start) >= level) start -= step;
    const peak = Math.max(this.floor * 3.5, this.minAmp / 8);
    for (let f = Math.max(start - window, this.firstFrame); f <= crossing; f++) {
      if (Math.abs(this.sample(f)) >= peak) return f;
    }
    return crossing;
  }
  // Samples `mono` (a Float32Array) are frames base, base + 1, ...
  push(mono, base, post) {
    const n = mono.length;
    if (n === 0) return;
    if (this.firstFrame < 0) this.firstFrame = base;
    let sum = 0;
    for (let i = 0; i < n; i++) {
      const x = mono[i];
      this.history[(base + i) % this.size] = x;
      sum += x * x;
    }
    this.end = base + n;
    this.seen += n;
    const r = Math.sqrt(sum / n);
    if (this.state === "learning") {
      this.learn(r);
      if (this.seen >= this.learnFrames) {
        this.state = "silent";
        post({ type: "ready", frame: this.end, floor: this.floor });
      }
    } else if (this.state === "silent") {
      const t = this.threshold();
      let crossing = -1;
      for (let i = 0; i < n; i++) {
        if (Math.abs(mono[i]) > t) {
          crossing = base + i;
          break;
        }
      }
      if (crossing < 0) this.learn(r);
      else {
        this.state = "candidate";
        this.candidate = crossing;
      }
    }
    if (this.state === "candidate" && this.end >= this.candidate + this.confirmFrames) {
      const level = this.rms(this.candidate, this.candidate + this.confirmFrames);
      if (level >= Math.max(this.floor * this.confirmRatio, this.minAmp / 2)) {
        const frame = this.lookBack(this.candidate);
        this.state = "active";
        this.quietSince = -1;
        post({ type: "onset", frame, crossing: this.candidate, level, floor: this.floor });
      } else {
        this.state = "silent"; // a click or a noise peak: not an onset
      }
    }
    if (this.state === "active") {
      if (r < Math.max(this.floor * this.quietRatio, this.minAmp / 4)) {
        if (this.quietSince < 0) this.quietSince = base;
        if (this.end - this.quietSince >= this.hangFrames) {
          this.state = "silent";
          post({ type: "offset", frame: this.quietSince, floor: this.floor });
        }
      } else {
        this.quietSince = -1;
      }
    }
    if (this.levelEvery > 0 && this.end - this.lastLevel >= this.levelEvery) {
      this.lastLevel = this.end;
      post({ type: "level", frame: this.end, rms: r, floor: this.floor, state: this.state });
    }
  }
}

// The worklet's code, as text: it is turned into a Blob URL so that no extra file has to be served. Its frames are
// the context's (currentFrame): one render quantum (128 frames) per call, each sample at its own index.
const WORKLET_SOURCE = `
${OnsetCore.toString()}
class OnsetProcessor extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.core = new OnsetCore(options.processorOptions, sampleRate);
    this.mono = new Float32Array(128);
    this.stopped = false;
    this.port.onmessage = (event) => { if (event.data === "stop") this.stopped = true; };
  }
  process(inputs) {
    if (this.stopped) return false;
    const input = inputs[0];
    if (!input || input.length === 0 || input[0].length === 0) return true; // no track data yet
    const n = input[0].length;
    if (this.mono.length !== n) this.mono = new Float32Array(n);
    for (let i = 0; i < n; i++) {
      let x = 0;
      for (let c = 0; c < input.length; c++) x += input[c][i];
      this.mono[i] = x / input.length;
    }
    this.core.push(this.mono, currentFrame, (message) => this.port.postMessage(message));
    return true;
  }
}
registerProcessor("${WORKLET_NAME}", OnsetProcessor);
`;

/** Defaults of detectOnsets' options (levels in dB relative to full scale or to the learnt floor). */
export const ONSET_DEFAULTS = Object.freeze({
  thresholdDb: 20, // a sample 20 dB above the floor's RMS is a candidate onset
  confirmDb: 12, // confirmed when the next confirmMs are 12 dB above the floor on average
  quietDb: 8, // silent again below floor + 8 dB, after hangoverMs
  minLevelDb: -50, // never an onset below -50 dBFS, however quiet the floor
  learnMs: 300, // the floor is learnt for this long before the first onset can be reported
  confirmMs: 3,
  hangoverMs: 120,
  lookBackMs: 15,
  levelEveryMs: 0, // > 0: also report the level this often (for a meter)
  playout: false, // true: also play the track through an AudioContext (the detector's, or options.context)
  method: "auto", // "track" (the track's own frames), "audioworklet" or "analyser"; "auto": the first available
});

/** Whether this browser hands a track's own audio frames to the page (MediaStreamTrackProcessor, Chromium). */
export function canReadTrackFrames() {
  return typeof MediaStreamTrackProcessor === "function" && typeof AudioData === "function";
}

/** The performance.now() at which the AudioContext plays out the sample at context time `t` (seconds). */
export function contextTimeToPerformance(context, t) {
  const stamp = typeof context.getOutputTimestamp === "function" ? context.getOutputTimestamp() : null;
  if (stamp && stamp.performanceTime > 0 && stamp.contextTime > 0) {
    return stamp.performanceTime + (t - stamp.contextTime) * 1000;
  }
  // No output clock yet: the context renders currentTime now, and plays it out after its latencies.
  const latency = (context.baseLatency || 0) + (context.outputLatency || 0);
  return performance.now() + (t - context.currentTime + latency) * 1000;
}

/** The context time (seconds) at which the AudioContext plays out what is due at performance.now() `p`. */
export function performanceToContextTime(context, p) {
  const stamp = typeof context.getOutputTimestamp === "function" ? context.getOutputTimestamp() : null;
  if (stamp && stamp.performanceTime > 0 && stamp.contextTime > 0) {
    return stamp.contextTime + (p - stamp.performanceTime) / 1000;
  }
  const latency = (context.baseLatency || 0) + (context.outputLatency || 0);
  return context.currentTime + (p - performance.now()) / 1000 - latency;
}

let workletUrl = null;
function workletModuleUrl() {
  if (!workletUrl) {
    workletUrl = URL.createObjectURL(new Blob([WORKLET_SOURCE], { type: "text/javascript" }));
  }
  return workletUrl;
}

/**
 * Attach an onset detector to an audio MediaStreamTrack.
 *
 * Where the browser hands the page a track's own frames (MediaStreamTrackProcessor: Chromium), the detector reads
 * them ("track" method): each frame of a received WebRTC track carries, as its timestamp, the moment the receiver
 * took it out of its jitter buffer for playout, on this page's performance.now() timeline; an onset is that
 * moment plus the sample's place in the frame: the time of the sound at the receiver's playout point, before the
 * audio device's own output delay (which the receiver reports as its playout delay). Elsewhere it listens through
 * WebAudio ("audioworklet", or "analyser" without AudioWorklet): an onset is then the time the detector's
 * AudioContext would play that sample out, which is later than the receiver's playout point by the path from the
 * track into WebAudio and the context's own output latency (in Chromium headless, measured: about 45 ms).
 *
 * options: ONSET_DEFAULTS' keys, plus
 *   context: an AudioContext to use for the WebAudio methods and for playout (default: a new one, closed by stop());
 *   onOnset({at, frame, level_db, floor_db, method}), onOffset({at, ...}), onReady({at, floor_db}),
 *   onLevel({at, rms_db, floor_db, state}), onError(error);
 *   forceAnalyser: true to use the AnalyserNode fallback (same as method: "analyser");
 *   noSink: true not to attach the track to a muted <audio> element (Chromium needs one for remote tracks).
 * Returns {context, method, onsets, offsets, ready, stop()}; `ready` resolves once the floor is learnt. With the
 * "track" method it also has `frames` {count, gaps, lag_ms: {min, p50, max}}: how long after its timestamp each
 * frame reached the page (the check that the timestamps are on this page's clock).
 */
export async function detectOnsets(track, options = {}) {
  if (!track || track.kind !== "audio") throw new TypeError("detectOnsets: expected an audio MediaStreamTrack");
  const o = { ...ONSET_DEFAULTS, ...options };
  const method = o.forceAnalyser ? "analyser" : o.method;
  const useFrames = method === "track" || (method === "auto" && canReadTrackFrames());
  if (method === "track" && !canReadTrackFrames()) {
    throw new TypeError("detectOnsets: this browser does not hand a track's frames to the page (method: \"track\")");
  }
  const ownContext = !options.context && (!useFrames || o.playout);
  const context = options.context || (ownContext ? new AudioContext({ latencyHint: "interactive" }) : null);
  const stream = new MediaStream([track]);
  // Chromium delivers a remote WebRTC track (to WebAudio and to a track reader) only while a media element also
  // consumes it.
  let sink = null;
  if (typeof document !== "undefined" && !options.noSink) {
    sink = document.createElement("audio");
    sink.muted = true;
    sink.srcObject = stream;
    sink.play?.().catch(() => {});
  }
  const source = context ? context.createMediaStreamSource(stream) : null;
  const detector = useFrames
    ? await detectOnsetsOnFrames(track, options)
    : await detectOnsetsOnNode(context, source, { ...options, method: method === "auto" ? "audioworklet" : method });
  detector.context = context;
  if (o.playout && source) {
    if (context.state === "suspended") await context.resume().catch((error) => o.onError?.(error));
    source.connect(context.destination);
  }
  const stopDetector = detector.stop;
  // Idempotent: a second stop() (a replaced track racing a page's stop) waits for the first instead of
  // disconnecting nodes that are no longer connected or closing a closed context.
  let stopping = null;
  detector.stop = () =>
    (stopping ??= (async () => {
      await stopDetector();
      source?.disconnect();
      if (sink) sink.srcObject = null;
      if (ownContext) await context.close();
    })());
  return detector;
}

// The detector's raw messages, turned into events on this page's clock (`timeOf(frame)`).
function onsetHandler(detector, o, method, timeOf, markReady) {
  const db = (x) => (x > 0 ? 20 * Math.log10(x) : -Infinity);
  return (data) => {
    if (data.type === "onset") {
      const event = {
        at: timeOf(data.frame),
        frame: data.frame,
        crossing_at: timeOf(data.crossing ?? data.frame),
        level_db: db(data.level),
        floor_db: db(data.floor),
        method,
      };
      detector.onsets.push(event);
      o.onOnset?.(event);
    } else if (data.type === "offset") {
      const event = { at: timeOf(data.frame), frame: data.frame, floor_db: db(data.floor), method };
      detector.offsets.push(event);
      o.onOffset?.(event);
    } else if (data.type === "ready") {
      detector.floorDb = db(data.floor);
      const event = { at: timeOf(data.frame), floor_db: detector.floorDb };
      markReady(event);
      o.onReady?.(event);
    } else if (data.type === "level") {
      detector.floorDb = db(data.floor);
      o.onLevel?.({ at: timeOf(data.frame), rms_db: db(data.rms), floor_db: db(data.floor), state: data.state });
    }
  };
}

// A frame whose timestamp is further than this from where the previous one ended is after a gap (frames dropped).
const FRAME_GAP_MS = 5;
// The timestamps are taken as this page's clock only if frames reach the page at most this long after them.
const FRAME_LAG_LIMIT_MS = 1000;

/**
 * The detector on a track's own frames (MediaStreamTrackProcessor): the "track" method of detectOnsets. Each
 * AudioData's timestamp (microseconds) is, in Chromium, on the page's performance timeline: for a received track,
 * when the receiver's playout took the frame from its jitter buffer (delivered to the track's sinks at once, so a
 * frame reaches the page a fraction of a millisecond after its timestamp; `frames.lag_ms` shows it). A frame's
 * samples follow its timestamp at the sample rate. Same options and result as detectOnsets.
 */
export async function detectOnsetsOnFrames(track, options = {}) {
  const o = { ...ONSET_DEFAULTS, ...options };
  const detector = { context: null, method: "track", onsets: [], offsets: [], floorDb: -Infinity, ready: null, stop: null };
  const lags = [];
  detector.frames = {
    count: 0,
    gaps: 0,
    get lag_ms() {
      if (!lags.length) return { min: null, p50: null, max: null };
      const sorted = [...lags].sort((x, y) => x - y);
      return { min: sorted[0], p50: sorted[Math.floor(sorted.length / 2)], max: sorted[sorted.length - 1] };
    },
  };
  let markReady;
  detector.ready = new Promise((resolve) => (markReady = resolve));
  const spans = []; // the last frames read: {start, n, at, rate}, to turn a frame number into a time
  const timeOf = (frame) => {
    for (let k = spans.length - 1; k >= 0; k--) {
      const span = spans[k];
      if (frame >= span.start || k === 0) return span.at + ((frame - span.start) / span.rate) * 1000;
    }
    return NaN;
  };
  const handle = onsetHandler(detector, o, "track", timeOf, markReady);
  const processor = new MediaStreamTrackProcessor({ track });
  const reader = processor.readable.getReader();
  let stopped = false;
  let core = null;
  let rate = 0;
  let frame = 0;
  let mono = new Float32Array(0);
  let plane = new Float32Array(0);
  const read = async () => {
    while (!stopped) {
      const { value, done } = await reader.read();
      if (done) break;
      try {
        const received = performance.now();
        const at = value.timestamp / 1000;
        const n = value.numberOfFrames;
        lags.push(received - at);
        if (lags.length > 4096) lags.splice(0, 2048);
        if (detector.frames.count < 20 && !(received - at > -1 && received - at < FRAME_LAG_LIMIT_MS)) {
          throw new Error(`audio frame timestamps are not on this page's clock (a frame ${(received - at).toFixed(1)} ms after its timestamp)`);
        }
        if (value.sampleRate !== rate) {
          rate = value.sampleRate;
          core = new OnsetCore(o, rate);
        }
        const last = spans[spans.length - 1];
        if (last && Math.abs(at - (last.at + (last.n / last.rate) * 1000)) > FRAME_GAP_MS) detector.frames.gaps += 1;
        if (mono.length !== n) {
          mono = new Float32Array(n);
          plane = new Float32Array(n);
        }
        mono.fill(0);
        const channels = value.numberOfChannels;
        for (let c = 0; c < channels; c++) {
          value.copyTo(plane, { planeIndex: c, format: "f32-planar" });
          for (let i = 0; i < n; i++) mono[i] += plane[i] / channels;
        }
        spans.push({ start: frame, n, at, rate });
        if (spans.length > 64) spans.shift();
        core.push(mono, frame, handle);
        frame += n;
        detector.frames.count += 1;
      } finally {
        value.close();
      }
    }
  };
  const running = read().catch((error) => {
    if (!stopped) o.onError?.(error);
  });
  detector.stop = async () => {
    stopped = true;
    await reader.cancel().catch(() => {});
    await running;
  };
  return detector;
}

/**
 * The same detector on any AudioNode of `context` (what detectOnsets uses once it has the track's source node).
 * Same options and result as detectOnsets; stop() disconnects the detector only.
 */
export async function detectOnsetsOnNode(context, source, options = {}) {
  const o = { ...ONSET_DEFAULTS, ...options };
  if (context.state === "suspended") {
    try {
      await context.resume();
    } catch (error) {
      o.onError?.(error);
    }
  }
  const detector = { context, method: "", onsets: [], offsets: [], floorDb: -Infinity, ready: null, stop: null };
  let markReady;
  detector.ready = new Promise((resolve) => (markReady = resolve));
  const onsetAt = (frame) => contextTimeToPerformance(context, frame / context.sampleRate);
  const handlers = {};
  const handle = (data, method) => (handlers[method] ??= onsetHandler(detector, o, method, onsetAt, markReady))(data);

  const analyser = o.forceAnalyser || o.method === "analyser";
  if (context.audioWorklet && typeof AudioWorkletNode !== "undefined" && !analyser) {
    await context.audioWorklet.addModule(workletModuleUrl());
    const node = new AudioWorkletNode(context, WORKLET_NAME, {
      numberOfInputs: 1,
      numberOfOutputs: 1,
      outputChannelCount: [1],
      processorOptions: Object.fromEntries(Object.keys(ONSET_DEFAULTS).map((key) => [key, o[key]])),
    });
    detector.method = "audioworklet";
    node.port.onmessage = (event) => handle(event.data, "audioworklet");
    source.connect(node);
    // A worklet is only processed while it is pulled: connect it to the destination through a muted gain.
    const mute = context.createGain();
    mute.gain.value = 0;
    node.connect(mute).connect(context.destination);
    detector.stop = async () => {
      node.port.postMessage("stop");
      source.disconnect(node);
      node.disconnect();
      mute.disconnect();
    };
  } else {
    detector.method = "analyser";
    const teardown = analyserFallback(context, source, o, (data) => handle(data, "analyser"));
    detector.stop = async () => teardown();
  }
  return detector;
}

// Where AudioWorklet is missing: read the last 2,048 samples every few milliseconds from an AnalyserNode and run
// the same detection on them. Frames are estimated from currentTime (the analyser's buffer ends at it), so the
// timing is only as good as the context's render quantum and the timer (a few milliseconds).
function analyserFallback(context, source, o, emit) {
  const analyser = context.createAnalyser();
  analyser.fftSize = 2048;
  const buffer = new Float32Array(analyser.fftSize);
  source.connect(analyser);
  const rate = context.sampleRate;
  const ratio = 10 ** (o.thresholdDb / 20);
  const quietRatio = 10 ** (o.quietDb / 20);
  const minAmp = 10 ** (o.minLevelDb / 20);
  let floor = 0;
  let known = false;
  let state = "learning";
  let started = -1;
  let lastEnd = -1;
  let quietSince = -1;
  const learn = (r) => {
    if (!known) {
      floor = r;
      known = true;
    } else floor += (r < floor ? 0.2 : 0.01) * (r - floor);
  };
  const tick = () => {
    analyser.getFloatTimeDomainData(buffer);
    const end = Math.round(context.currentTime * rate);
    if (end === lastEnd) return;
    const fresh = lastEnd < 0 ? buffer.length : Math.min(buffer.length, end - lastEnd);
    lastEnd = end;
    const from = buffer.length - fresh;
    let sum = 0;
    for (let i = from; i < buffer.length; i++) sum += buffer[i] * buffer[i];
    const r = Math.sqrt(sum / Math.max(1, fresh));
    if (started < 0) started = end;
    if (state === "learning") {
      learn(r);
      if ((end - started) / rate >= o.learnMs / 1000) {
        state = "silent";
        emit({ type: "ready", frame: end, floor });
      }
      return;
    }
    if (state === "silent") {
      const t = Math.max(floor * ratio, minAmp);
      let crossing = -1;
      for (let i = from; i < buffer.length; i++)
        if (Math.abs(buffer[i]) > t) {
          crossing = i;
          break;
        }
      if (crossing < 0) {
        learn(r);
        return;
      }
      state = "active";
      quietSince = -1;
      emit({ type: "onset", frame: end - (buffer.length - crossing), level: r, floor });
      return;
    }
    if (r < Math.max(floor * quietRatio, minAmp / 4)) {
      if (quietSince < 0) quietSince = end - fresh;
      if ((end - quietSince) / rate >= o.hangoverMs / 1000) {
        state = "silent";
        emit({ type: "offset", frame: quietSince, floor });
      }
    } else quietSince = -1;
  };
  const timer = setInterval(tick, 5);
  return () => {
    clearInterval(timer);
    source.disconnect(analyser);
  };
}

/**
 * Watch a <video> element's frames with requestVideoFrameCallback.
 *
 * options: onFirstFrame({at, width, height}), onMotion({at}) for each frame that differs from the previous one,
 *   onFreeze({at, duration_ms}) when a frame stays on screen longer than freezeMs (reported when the next frame
 *   comes), onStall({at, since}) when no frame came for stallMs (reported once per stall), motionThreshold (mean
 *   absolute difference of a 32x32 grey thumbnail, 0..255).
 * Returns {frames, motionFrames, freezes, stalls, firstFrameAt, stop()}.
 */
export function watchVideo(video, options = {}) {
  const o = { freezeMs: 500, stallMs: 1000, motionThreshold: 1.5, ...options };
  const state = { frames: 0, motionFrames: 0, freezes: [], stalls: [], firstFrameAt: null, lastFrameAt: null };
  const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(32, 32) : null;
  const ctx = canvas ? canvas.getContext("2d", { willReadFrequently: true }) : null;
  let previous = null;
  let handle = null;
  let stopped = false;
  let stalled = false;
  const onFrame = (now, metadata) => {
    if (stopped) return;
    const at = metadata?.presentationTime ?? now;
    state.frames += 1;
    if (state.firstFrameAt === null) {
      state.firstFrameAt = at;
      o.onFirstFrame?.({ at, width: metadata?.width ?? video.videoWidth, height: metadata?.height ?? video.videoHeight });
    } else if (at - state.lastFrameAt > o.freezeMs) {
      const freeze = { at: state.lastFrameAt, duration_ms: at - state.lastFrameAt };
      state.freezes.push(freeze);
      o.onFreeze?.(freeze);
    }
    state.lastFrameAt = at;
    stalled = false;
    if (ctx) {
      ctx.drawImage(video, 0, 0, 32, 32);
      const pixels = ctx.getImageData(0, 0, 32, 32).data;
      if (previous) {
        let diff = 0;
        for (let i = 0; i < pixels.length; i += 4) diff += Math.abs(pixels[i + 1] - previous[i + 1]);
        if (diff / (pixels.length / 4) > o.motionThreshold) {
          state.motionFrames += 1;
          o.onMotion?.({ at });
        }
      }
      previous = pixels;
    }
    handle = video.requestVideoFrameCallback(onFrame);
  };
  handle = video.requestVideoFrameCallback(onFrame);
  const stallTimer = setInterval(() => {
    const since = state.lastFrameAt;
    if (since !== null && !stalled && performance.now() - since > o.stallMs) {
      stalled = true;
      const stall = { at: performance.now(), since };
      state.stalls.push(stall);
      o.onStall?.(stall);
    }
  }, 100);
  state.stop = () => {
    stopped = true;
    clearInterval(stallTimer);
    if (handle !== null) video.cancelVideoFrameCallback?.(handle);
  };
  return state;
}

/**
 * Sample the receive statistics of an audio track: `source` is an RTCRtpReceiver, or an RTCPeerConnection (with
 * options.track, or its first audio receiver). Each sample: {at, jitter_buffer_delay_s, jitter_buffer_emitted,
 * jitter_buffer_target_delay_s, jitter_buffer_minimum_delay_s, concealed_samples, total_samples_received,
 * packets_received, packets_lost, jitter_s, playout_delay_s, playout_samples, and, from the previous sample:
 * jitter_buffer_ms (mean jitter buffer delay of the samples emitted since), concealed (samples concealed since)}.
 * Returns {samples, latest(), sample(), fast(until), stop()}; `sample()` takes one now (a promise of it);
 * `fast(until)` samples every options.fastIntervalMs (10) until performance.now() `until`. The last few thousand
 * samples are kept.
 */
export function sampleAudioReceiverStats(source, options = {}) {
  const o = { intervalMs: 250, fastIntervalMs: 10, ...options };
  const samples = [];
  let stopped = false;
  const receiver = () => {
    if (typeof source.getStats === "function" && typeof source.getReceivers !== "function") return source;
    const receivers = source.getReceivers().filter((r) => r.track && r.track.kind === "audio");
    return (o.track && receivers.find((r) => r.track === o.track)) || receivers[0] || null;
  };
  const sample = async () => {
    const target = receiver();
    if (!target) return null;
    const report = await target.getStats();
    const at = performance.now();
    let inbound = null;
    let playout = null;
    report.forEach((stat) => {
      if (stat.type === "inbound-rtp" && (stat.kind === "audio" || stat.mediaType === "audio")) inbound = stat;
      if (stat.type === "media-playout") playout = stat;
    });
    if (!inbound) return null;
    const s = {
      at,
      jitter_buffer_delay_s: inbound.jitterBufferDelay ?? null,
      jitter_buffer_emitted: inbound.jitterBufferEmittedCount ?? null,
      jitter_buffer_target_delay_s: inbound.jitterBufferTargetDelay ?? null,
      jitter_buffer_minimum_delay_s: inbound.jitterBufferMinimumDelay ?? null,
      concealed_samples: inbound.concealedSamples ?? null,
      total_samples_received: inbound.totalSamplesReceived ?? null,
      packets_received: inbound.packetsReceived ?? null,
      packets_lost: inbound.packetsLost ?? null,
      jitter_s: inbound.jitter ?? null,
      playout_delay_s: playout?.totalPlayoutDelay ?? null,
      playout_samples: playout?.totalSamplesCount ?? null,
      jitter_buffer_ms: null,
      concealed: null,
    };
    const prev = samples[samples.length - 1];
    if (prev && s.jitter_buffer_emitted > prev.jitter_buffer_emitted) {
      s.jitter_buffer_ms =
        ((s.jitter_buffer_delay_s - prev.jitter_buffer_delay_s) / (s.jitter_buffer_emitted - prev.jitter_buffer_emitted)) *
        1000;
    } else if (!prev && s.jitter_buffer_emitted > 0) {
      s.jitter_buffer_ms = (s.jitter_buffer_delay_s / s.jitter_buffer_emitted) * 1000;
    }
    if (prev && s.concealed_samples !== null) s.concealed = s.concealed_samples - prev.concealed_samples;
    samples.push(s);
    if (samples.length > 4000) samples.splice(0, 2000);
    options.onSample?.(s);
    return s;
  };
  // One getStats at a time: a slow one (a busy page) is not piled up behind.
  let busy = false;
  const tick = () => {
    if (stopped || busy) return;
    busy = true;
    sample()
      .catch((error) => options.onError?.(error))
      .finally(() => (busy = false));
  };
  const timer = setInterval(tick, o.intervalMs);
  // Faster sampling for a while (fast(until)): WebRTC refreshes a report at most every 50 ms (measured in
  // Chromium: the counters move in steps of 20 to 60 ms of audio, 50 ms apart; a getStats in between returns the
  // cached report in under a millisecond), so sampling every 10 ms around a reply's first sound catches the refresh
  // right after it: the delay is then read over the ~50 ms in which that sound left the jitter buffer, no wider.
  let fastUntil = -Infinity;
  let fastTimer = null;
  const fastTick = () => {
    fastTimer = null;
    if (stopped || performance.now() > fastUntil) return;
    tick();
    fastTimer = setTimeout(fastTick, o.fastIntervalMs);
  };
  return {
    samples,
    sample,
    latest: () => samples[samples.length - 1] ?? null,
    fast: (until) => {
      fastUntil = until;
      if (fastTimer === null && performance.now() < until) fastTimer = setTimeout(fastTick, 0);
    },
    stop: () => {
      stopped = true;
      clearInterval(timer);
      clearTimeout(fastTimer);
    },
  };
}

/**
 * Perceived timings of a session, on this page's clock: what the stage wires to its room.
 *
 *   const perceived = new PerceivedTimings({ emit: (event) => sendToPython(event) });
 *   await perceived.attachAudio(remoteAudioTrack, receiver);   // receiver (RTCRtpReceiver) when the SDK exposes it
 *   perceived.attachVideo(videoElement);
 *   perceived.sent(mid, performance.now());                   // when a message's last chunk was handed over
 *   perceived.received(message, arrivedAt);                   // every v2 message from the avatar, parsed
 *
 * emit() gets raw events, each with `at` (performance.now()): {type: "detector" (its method), "onset"|"offset"|
 * "first_frame"|"freeze"|"stall"|"audio_stats"|"relay"|"detector_error", ...}, and one {type: "heard", mid,
 * reply_mid, sent_at, audio_start_at, onset_at, onset_method, heard_ms, media_delay_ms, jitter_buffer_ms,
 * playout_delay_ms, concealed, stats_interval_ms, relay_rtt_ms, transcript_at, user_heard_ms} per reply once its
 * first audible sample is heard; {type: "unheard"} when nothing was heard of a reply 3 s after its audio_end (or
 * when the next reply starts).
 *
 * What heard_ms includes: from the message's last chunk handed to the data channel (sent_at; relayed sends: their
 * arrival here) to the reply's first audible sample at the onset time (onset_at), all on this page's clock: the
 * network both ways, the service, the sender's encoding (its codec's look-ahead included), the jitter buffer, and
 * nothing after it. With onset_method "track" (Chromium: the received track's own frames), onset_at is when the
 * receiver took that sample out of its jitter buffer for playout (the receiver's playout point); the audio device
 * then adds its own output delay, which the receiver reports as playout_delay_ms (the sound reaches the speaker
 * that much later; kept apart, not added). With "audioworklet"/"analyser" (other browsers), onset_at is when the
 * detector's AudioContext would play the sample out: later than the receiver's playout point by the track-to-
 * WebAudio path and the context's latency (about 45 ms in Chromium headless; bench_media measures it). A reply to
 * the user's voice has heard_ms null and user_heard_ms from its transcript's arrival instead; media_delay_ms is from
 * audio_start's arrival. jitter_buffer_ms (and playout_delay_ms) are the receiver's statistics over the interval in
 * which that sample left the jitter buffer (WebRTC refreshes them every 50 ms; they are read every 10 ms from
 * audio_start to the onset, so that interval is the one refresh that covers it): a mean over ~50 ms of audio.
 */
// An onset heard at most this long before a reply's audio_start event is that reply's.
const EARLY_ONSET_MS = 1500;
// A reply not heard this long after its audio_end event was not heard at all.
const UNHEARD_MS = 3000;

export class PerceivedTimings {
  constructor({ emit = () => {}, statsIntervalMs = 25, statsEveryMs = 1000, emitLeadMs = 45, ...onset } = {}) {
    this.emit = emit;
    this.statsIntervalMs = statsIntervalMs;
    this.statsEveryMs = statsEveryMs;
    this.emitLeadMs = emitLeadMs;
    this.onsetOptions = onset;
    this.pending = []; // sent messages waiting for their reply's audio_start: {mid, at}
    this.reply = null; // the reply whose first audible sample is awaited: {mid, reply_mid, sent_at, audio_start_at}
    this.detector = null;
    this.video = null;
    this.stats = null;
    this.lastStatsEmit = -Infinity;
    this.stopped = false;
    this.unclaimed = null; // the last onset no reply has claimed yet
    this.relays = new Map(); // mid -> round trip (ms) to whoever relayed its send (the simulator's kernel)
  }

  attachAudio(track, receiver = null) {
    // One attach at a time: a second one (an SDK replacing its track) waits for the first, then replaces the
    // detector it made, so no detector is stopped twice nor left running unreferenced.
    const attached = (this.attaching || Promise.resolve()).catch(() => {}).then(() => this.attachNow(track, receiver));
    this.attaching = attached;
    return attached;
  }

  async attachNow(track, receiver) {
    if (this.detector) await this.detector.stop();
    this.stats?.stop();
    if (receiver) {
      this.stats = sampleAudioReceiverStats(receiver, {
        intervalMs: this.statsIntervalMs,
        onSample: (s) => {
          if (s.at - this.lastStatsEmit >= this.statsEveryMs) {
            this.lastStatsEmit = s.at;
            this.emit({ type: "audio_stats", ...s });
          }
        },
      });
    }
    this.detector = await detectOnsets(track, {
      ...this.onsetOptions,
      onOnset: (o) => this.onOnset(o),
      onOffset: (o) => this.emit({ type: "offset", at: o.at }),
      onError: (error) => this.emit({ type: "detector_error", at: performance.now(), message: String(error?.message ?? error) }),
    });
    // The page stopped measuring while this detector was being made: it must not outlive stop().
    if (this.stopped) {
      this.stats?.stop();
      await this.detector.stop();
    } else this.emit({ type: "detector", at: performance.now(), method: this.detector.method });
    return this.detector;
  }

  attachVideo(video) {
    this.video?.stop();
    this.video = watchVideo(video, {
      onFirstFrame: (e) => this.emit({ type: "first_frame", ...e }),
      onFreeze: (e) => this.emit({ type: "freeze", ...e }),
      onStall: (e) => this.emit({ type: "stall", ...e }),
    });
    return this.video;
  }

  sent(mid, at = performance.now()) {
    this.pending.push({ mid, at });
    if (this.pending.length > 64) this.pending.shift();
  }

  received(message, at = performance.now()) {
    if (!message || !message.pld) return;
    if (message.type === "chat" && message.pld.from === "user") {
      // The user's transcript: the avatar answers it in its turn (timed from its last chunk's arrival).
      const entry = this.pending.find((p) => p.user && p.mid === message.mid);
      if (entry) entry.at = at;
      else this.pending.push({ mid: message.mid ?? null, at, user: true });
      return;
    }
    if (message.type !== "event") return;
    const event = message.pld.event;
    if (event === "audio_start") {
      // A reply still unheard when the next one starts never will be.
      if (this.reply && !this.reply.heard) this.giveUp(this.reply, at);
      // Replies are spoken one after another, in the order of the questions sent and the user's turns heard.
      const question = this.pending.shift() ?? null;
      // Its first sound is due within the media path's delay: read the receiver's counters often until then.
      this.stats?.fast(at + EARLY_ONSET_MS);
      this.reply = {
        mid: question?.mid ?? null,
        reply_mid: message.mid ?? null,
        sent_at: question && !question.user ? question.at : null,
        transcript_at: question?.user ? question.at : null,
        audio_start_at: at,
      };
      // On a real service the sound can come before the event that announces it: an onset heard just before
      // audio_start, and not yet claimed, is this reply's (its media_delay_ms is then negative).
      const early = this.unclaimed;
      this.unclaimed = null;
      if (early && at - early.at < EARLY_ONSET_MS) this.onOnset(early, false);
    } else if (event === "audio_end" && this.reply && this.reply.reply_mid === message.mid && !this.reply.heard) {
      // The sound may still be on its way (the media path can take longer than a short reply lasts): wait a while.
      const reply = this.reply;
      reply.timer = setTimeout(() => this.reply === reply && !reply.heard && this.giveUp(reply, performance.now()), UNHEARD_MS);
    }
  }

  /**
   * Where a message's send is relayed to this page (the simulator's kernel runs its data channel) rather than seen
   * here, the page stamps it on arrival and heard_ms leaves out that relay. `relayed(mid, rttMs)`: a round trip to
   * the relay (this page -> kernel -> this page) timed on this page's clock just after the relayed send arrived.
   * It is reported as it is (a "relay" event, and relay_rtt_ms on that message's heard event when it came back in
   * time), never subtracted: the relay's own delay is at most about that (its way back is the same path as the
   * relay's). A kernel answers only between cells: while a cell blocks (a live.say(...)), the round trip waits for
   * it and bounds nothing (seconds; measured 2.9 s in the stage's browser test, whose say blocks).
   */
  relayed(mid, rttMs, at = performance.now()) {
    this.relays.set(mid, rttMs);
    if (this.relays.size > 64) this.relays.delete(this.relays.keys().next().value);
    this.emit({ type: "relay", mid, at, rtt_ms: rttMs });
  }

  giveUp(reply, at) {
    clearTimeout(reply.timer);
    if (this.reply === reply) this.reply = null;
    this.emit({ type: "unheard", mid: reply.mid, reply_mid: reply.reply_mid, at });
  }

  onOnset(onset, fresh = true) {
    if (fresh) {
      this.emit({ type: "onset", at: onset.at, level_db: onset.level_db, floor_db: onset.floor_db, method: onset.method });
    }
    const reply = this.reply;
    if (!reply || reply.heard) {
      this.unclaimed = onset;
      return;
    }
    reply.heard = true;
    clearTimeout(reply.timer);
    this.reply = null;
    const finish = (delays) =>
      this.emit({
        type: "heard",
        mid: reply.mid,
        reply_mid: reply.reply_mid,
        sent_at: reply.sent_at,
        audio_start_at: reply.audio_start_at,
        onset_at: onset.at,
        at: onset.at,
        onset_method: onset.method,
        heard_ms: reply.sent_at === null ? null : onset.at - reply.sent_at,
        transcript_at: reply.transcript_at,
        user_heard_ms: reply.transcript_at === null ? null : onset.at - reply.transcript_at,
        media_delay_ms: onset.at - reply.audio_start_at,
        relay_rtt_ms: this.relays.get(reply.mid) ?? null,
        ...delays,
      });
    if (!this.stats) return finish({ jitter_buffer_ms: null, playout_delay_ms: null });
    // When that sample left the jitter buffer: the onset itself with the track's frames (their timestamps are that
    // moment); through WebAudio, the path from the track into the context (emitLeadMs) earlier.
    const left = onset.method === "track" ? onset.at : onset.at - this.emitLeadMs;
    const deadline = performance.now() + 2000;
    const read = () => {
      const samples = this.stats.samples;
      const latest = samples[samples.length - 1];
      if ((!latest || latest.at <= left + 20) && performance.now() < deadline && !this.stopped) {
        setTimeout(read, 5);
        return;
      }
      this.stats.fast(-Infinity);
      finish(delaysAround(samples, left));
    };
    read();
  }

  async stop() {
    this.stopped = true;
    if (this.reply) clearTimeout(this.reply.timer);
    this.stats?.stop();
    this.video?.stop();
    await this.attaching?.catch(() => {}); // (an attach in flight stops its own detector once it sees `stopped`)
    if (this.detector) await this.detector.stop();
  }
}

// The jitter buffer and playout delays (ms per sample) over the stats interval that contains `at`: from the last
// sample before it with different counts (Chromium refreshes its statistics every few tens of ms) to the first
// sample after it.
export function delaysAround(samples, at) {
  const b = samples.findIndex((x) => x.at >= at);
  const s1 = b >= 0 ? samples[b] : null;
  let s0 = null;
  for (let k = b - 1; k >= 0 && s1; k--) {
    if (samples[k].jitter_buffer_emitted < s1.jitter_buffer_emitted) {
      s0 = samples[k];
      break;
    }
  }
  if (!s0 || !s1) return { jitter_buffer_ms: null, playout_delay_ms: null, concealed: null, stats_interval_ms: null };
  const emitted = s1.jitter_buffer_emitted - s0.jitter_buffer_emitted;
  const played = s1.playout_samples !== null && s0.playout_samples !== null ? s1.playout_samples - s0.playout_samples : 0;
  return {
    jitter_buffer_ms: emitted > 0 ? ((s1.jitter_buffer_delay_s - s0.jitter_buffer_delay_s) / emitted) * 1000 : null,
    playout_delay_ms: played > 0 ? ((s1.playout_delay_s - s0.playout_delay_s) / played) * 1000 : null,
    concealed: s1.concealed_samples !== null ? s1.concealed_samples - s0.concealed_samples : null,
    stats_interval_ms: s1.at - s0.at,
  };
}
