// The avatar stage: an anywidget ES module (plain JavaScript, no build step).
//
// Two ways to bring the avatar on stage:
//   * "room" mode: this browser page joins the session's Agora, LiveKit or TRTC room, shows the avatar's video and
//     plays its audio, and is the data channel of Python's AvatarStream (see akool_lab/transport/_browser.py for
//     the message protocol). The provider SDK is imported at run time from a URL the user can override.
//   * "simulated" mode (the embedded simulator, or a data channel that runs in Python): nothing is joined here;
//     Python relays the avatar's events into synced traits and this module draws an animated face.
//
// One controller per widget model per page holds the room, so that several views of one widget (the same
// output shown twice) share one connection; each view only draws.

const BATCH_MS = 10; // received frames and send confirmations go back to Python at most this often
const CREDENTIALS_TIMEOUT_MS = 30_000; // the kernel must answer a join request within this (it may be busy)
const MAX_CAPTION = 300;
const ICE_GATHERING_TIMEOUT_MS = 10_000; // the simulator takes no trickled candidates: the offer waits for all
const SIM_OFFER_TIMEOUT_MS = 30_000; // the simulator answers an offer within this (it may be busy)

// This module is served after perceived.js (stage.py joins both into one module): PerceivedTimings is its class.

// ------------------------------------------------------------------------------------------------ page identity

// performance.now() counts from this page's time origin: the id names that clock ("browser:<id>").
function pageId() {
  if (!globalThis.__akoolLabPageId) {
    const random = globalThis.crypto?.randomUUID
      ? globalThis.crypto.randomUUID()
      : `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    globalThis.__akoolLabPageId = random;
  }
  return globalThis.__akoolLabPageId;
}

// ------------------------------------------------------------------------------------------------ pacing

// A token bucket of `capacity` tokens refilled at `rate` per second; it keeps the time (ms) at which it is full
// again, like akool_lab/protocol/_pacing.py, so both sides pace identically.
class Bucket {
  constructor(rate, capacity) {
    this.msPerToken = 1000 / rate;
    this.capacity = capacity;
    this.fullAt = null; // null: full since forever
  }
  earliest(cost, now) {
    if (this.fullAt === null) return now;
    return Math.max(now, this.fullAt - (this.capacity - cost) * this.msPerToken);
  }
  take(cost, at) {
    const base = this.fullAt === null ? at : Math.max(this.fullAt, at);
    this.fullAt = base + cost * this.msPerToken;
  }
}

// The provider's pacing: bytes per second with a burst of one full message; messages per second with no burst.
// The first message goes at once. delayFor() reserves the slot, so calling it once per message gives the schedule.
export class Pacer {
  constructor(budget) {
    const b = budget || {};
    this.bytes = b.bytes_per_second ? new Bucket(b.bytes_per_second, b.max_message_bytes || 960) : null;
    this.messages = b.messages_per_second ? new Bucket(b.messages_per_second, 1) : null;
  }
  delayFor(nbytes, now) {
    let at = now;
    if (this.bytes) at = Math.max(at, this.bytes.earliest(nbytes, now));
    if (this.messages) at = Math.max(at, this.messages.earliest(1, now));
    if (this.bytes) this.bytes.take(nbytes, at);
    if (this.messages) this.messages.take(1, at);
    return at - now;
  }
}

// The TRTC SDK's own limiter on sendCustomMessage (trtc-sdk-v5 5.17): a fixed window opened by a call and closed
// by the first call more than 1,000 ms (Date.now()) later; a call less than 1,000 ms into it is refused when the
// window already holds 30 calls or its bytes would pass 8,000 (the size is counted before the check). The pacer keeps well inside it; this mirror of the SDK's rule catches what the pacer
// cannot see (a timer that fired late, so two sends land closer than they were planned).
export class WindowGuard {
  constructor({ windowMs = 1000, maxCalls = 30, maxBytes = 8000 } = {}) {
    this.windowMs = windowMs;
    this.maxCalls = maxCalls;
    this.maxBytes = maxBytes;
    this.start = 0;
    this.calls = 0;
    this.bytes = 0;
  }
  // How long (ms) to wait before a call of `nbytes` at `now` (Date.now()) is accepted; 0: send now.
  waitFor(nbytes, now) {
    if (this.start === 0 || now - this.start > this.windowMs) return 0;
    if (this.calls + 1 <= this.maxCalls && this.bytes + nbytes <= this.maxBytes) return 0;
    return this.start + this.windowMs + 1 - now;
  }
  record(nbytes, now) {
    if (this.start === 0 || now - this.start > this.windowMs) {
      this.start = now;
      this.calls = 0;
      this.bytes = 0;
    }
    this.calls += 1;
    this.bytes += nbytes;
  }
}

// ------------------------------------------------------------------------------------------------ helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Never show a secret in the widget or send it back to Python: keep at most its last four characters.
function scrub(text, secrets) {
  let out = String(text ?? "");
  for (const secret of secrets) {
    // (a value this short is no real credential, and replacing it would garble every message)
    if (secret && String(secret).length >= 8) out = out.split(String(secret)).join(`…${String(secret).slice(-4)}`);
  }
  return out;
}

// The end of a long caption, starting at a word: subtitles show what is being said now.
function tail(text) {
  if (text.length <= MAX_CAPTION) return text;
  const end = text.slice(-MAX_CAPTION);
  const space = end.indexOf(" ");
  return space >= 0 ? `…${end.slice(space + 1)}` : end;
}

function errorText(error) {
  if (!error) return "unknown error";
  const code = error.code !== undefined && error.code !== null && error.code !== "" ? `${error.code}: ` : "";
  const extra = error.extraCode ? ` (extra code ${error.extraCode})` : "";
  return `${code}${error.message || String(error)}${extra}`;
}

// An SDK module may export its entry point as `default`, as a named export, or (UMD builds) only as a global.
function pickExport(module, name, looksRight) {
  for (const candidate of [module?.default, module?.[name], module, globalThis[name]]) {
    if (candidate && looksRight(candidate)) return candidate;
  }
  throw new Error(`the module has no usable ${name} export`);
}

// The mid of a chat message's last chunk (fin: true), or null for anything else: its send starts heard_ms.
function lastChunkMid(bytes) {
  try {
    const message = JSON.parse(new TextDecoder().decode(bytes));
    return message && message.type === "chat" && message.fin === true && message.mid ? message.mid : null;
  } catch {
    return null;
  }
}

class StageFailure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

// When a credential stops being valid, in ms since the epoch, or null when it does not say.
// LiveKit: a JWT (its `exp` claim). TRTC: a TLS user sig (base64 of zlib-deflated JSON with TLS.time and
// TLS.expire). Agora tokens say it with an event instead (token-privilege-will-expire).
async function credentialExpiry(provider, c) {
  try {
    if (provider === "livekit" && typeof c.token === "string") {
      const part = c.token.split(".")[1];
      if (!part) return null;
      const claims = JSON.parse(atob(part.replace(/-/g, "+").replace(/_/g, "/")));
      return typeof claims.exp === "number" ? claims.exp * 1000 : null;
    }
    if (provider === "trtc" && typeof c.user_sig === "string" && typeof DecompressionStream === "function") {
      const b64 = c.user_sig.replace(/\*/g, "+").replace(/-/g, "/").replace(/_/g, "=");
      const bytes = Uint8Array.from(atob(b64), (ch) => ch.charCodeAt(0));
      const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
      const sig = JSON.parse(await new Response(stream).text());
      const time = Number(sig["TLS.time"]);
      const expire = Number(sig["TLS.expire"]);
      return Number.isFinite(time) && Number.isFinite(expire) ? (time + expire) * 1000 : null;
    }
  } catch {
    return null; // not the format we know: nothing to warn about in advance (the SDK still reports the expiry)
  }
  return null;
}

// A level meter for any MediaStreamTrack (LiveKit and TRTC give the microphone's track; Agora has its own meter).
class LevelMeter {
  constructor(track) {
    const Context = globalThis.AudioContext || globalThis.webkitAudioContext;
    this.context = Context ? new Context() : null;
    this.data = null;
    if (!this.context || !track) return;
    const source = this.context.createMediaStreamSource(new MediaStream([track]));
    this.analyser = this.context.createAnalyser();
    this.analyser.fftSize = 512;
    source.connect(this.analyser);
    this.data = new Float32Array(this.analyser.fftSize);
    this.context.resume().catch(() => {}); // created inside a click: allowed; otherwise the meter reads 0
  }
  level() {
    if (!this.data) return 0;
    this.analyser.getFloatTimeDomainData(this.data);
    let sum = 0;
    for (const x of this.data) sum += x * x;
    return Math.min(1, Math.sqrt(sum / this.data.length) * 4); // RMS, scaled so speech fills most of the bar
  }
  close() {
    this.context?.close().catch(() => {});
  }
}

// The SDKs log a lot, and some log the join parameters (TRTC printed the user sig in full) or upload their logs to
// the vendor by default. Errors reach the user through the stage instead; the SDKs stay quiet and keep their logs.
function quietSdk(provider, sdk) {
  if (provider === "agora") {
    const AgoraRTC = pickExport(sdk, "AgoraRTC", (m) => typeof m.createClient === "function");
    if (typeof AgoraRTC.disableLogUpload === "function") AgoraRTC.disableLogUpload();
    if (typeof AgoraRTC.setLogLevel === "function") AgoraRTC.setLogLevel(4); // 4: NONE
    // Its event reports (to its statistics collector) carry the join token: off, through the SDK's parameter.
    if (typeof AgoraRTC.setParameter === "function") AgoraRTC.setParameter("ENABLE_EVENT_REPORT", false);
  } else if (provider === "livekit") {
    const setLogLevel = sdk.setLogLevel || sdk.default?.setLogLevel;
    if (typeof setLogLevel === "function") setLogLevel("silent");
  } else if (provider === "trtc") {
    const TRTC = pickExport(sdk, "TRTC", (m) => typeof m.create === "function");
    if (typeof TRTC.setLogLevel === "function") TRTC.setLogLevel(5, false); // 5: NONE; false: no log upload
  }
}

// The RTCRtpReceiver of an Agora remote track, or null (an SDK without getRTCRtpTransceiver, or none yet).
function agoraReceiver(track) {
  try {
    const receiver = track.getRTCRtpTransceiver?.()?.receiver;
    return typeof receiver?.getStats === "function" ? receiver : null;
  } catch {
    return null;
  }
}

// LiveKit puts the access token in the WebSocket URL, and Chromium prints a failed WebSocket's whole URL in the
// console. Ask the server's origin first (without the token): an unreachable server is then a clear failure and
// the token is never written into a failing URL.
async function probeReachable(url, timeoutMs) {
  const origin = new URL(url.replace(/^ws(s?):/, "http$1:")).origin;
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), timeoutMs);
  try {
    await fetch(origin, { mode: "no-cors", cache: "no-store", signal: controller.signal });
  } catch (error) {
    const why = controller.signal.aborted ? `no answer within ${Math.round(timeoutMs / 1000)} s` : errorText(error);
    throw new StageFailure("unreachable", `cannot reach ${origin} (${why})`);
  } finally {
    clearTimeout(timer);
  }
}

// ------------------------------------------------------------------------------------------------ providers

// Each provider joins its room and returns a room:
//   {send(bytes) -> Promise, leave() -> Promise, stats() -> Promise<object|null>,
//    mic: {start(deviceId), mute(bool), device(id), level() -> 0..1, stop(), devices() -> Promise<[...]>}}
// `hooks`: onMessage(bytes, sender), onTrack(kind, mediaStreamTrack, sdkTrack, receiver?), onTrackEnded(kind),
//   onWatch(kind, mediaStreamTrack, receiver?) (a track the SDK plays itself: only measured), onFailure(kind, text),
//   onState(state, detail), onNotice(kind, text), onProblem(kind, text) (not fatal),
//   onAutoplayBlocked(resume), trtcView(), onCleanup(fn) (runs if the join is abandoned: timeout or Leave).
const PROVIDERS = {
  agora: {
    label: "Agora",
    async join(sdk, c, hooks) {
      const AgoraRTC = pickExport(sdk, "AgoraRTC", (m) => typeof m.createClient === "function");
      const client = AgoraRTC.createClient({ mode: "rtc", codec: "vp8" });
      let leaving = false;
      let joined = false;
      let avatarUid = null; // the remote user that publishes media: the avatar (AKool gives no uid for it)
      const followed = new WeakSet(); // the SDK's remote tracks whose replaced media the stage follows
      hooks.onCleanup(() => {
        leaving = true;
        return client.leave();
      });
      // The SDK calls this when a remote track cannot play before a user gesture (one call until one happens).
      AgoraRTC.onAutoplayFailed = () => hooks.onAutoplayBlocked(null);
      // Handlers first: the avatar may publish and talk the moment we are in.
      client.on("user-published", (user, mediaType) => {
        if (mediaType !== "video" && mediaType !== "audio") return; // "datachannel" needs no subscription
        if (avatarUid === null) avatarUid = user.uid;
        client.subscribe(user, mediaType).then(
          () => {
            const subscribed = () => (mediaType === "video" ? user.videoTrack : user.audioTrack);
            const track = subscribed();
            if (!track) return;
            // Its RTCRtpReceiver (through the SDK's public getRTCRtpTransceiver): the browser's receive statistics.
            const hand = () => subscribed() === track && hooks.onTrack(mediaType, track.getMediaStreamTrack(), track, agoraReceiver(track));
            hand();
            // After a reconnection the SDK gives the track a new MediaStreamTrack (track-updated) or, for the
            // audio's statistics, a new transceiver (transceiver-updated): the stage follows them, once for the
            // changes the SDK makes together.
            if (typeof track.on === "function" && !followed.has(track)) {
              followed.add(track);
              let queued = null;
              const follow = () => {
                if (queued === null) queued = setTimeout(() => ((queued = null), hand()), 0);
              };
              track.on("track-updated", follow);
              if (mediaType === "audio") track.on("transceiver-updated", follow);
            }
          },
          (error) => hooks.onProblem("subscribe-failed", `could not subscribe to user ${user.uid}'s ${mediaType}: ${errorText(error)}`),
        );
      });
      client.on("user-unpublished", (user, mediaType) => {
        if (user?.uid === avatarUid) hooks.onTrackEnded(mediaType);
      });
      client.on("user-left", (user, reason) => {
        if (leaving) return;
        if (avatarUid !== null && user?.uid === avatarUid) {
          hooks.onFailure("avatar-left", `user ${user?.uid} left the channel (${reason || "quit"})`);
        } else {
          hooks.onNotice("user-left", `user ${user?.uid} left the channel (${reason || "quit"})`);
        }
      });
      client.on("stream-message", (uid, bytes) => hooks.onMessage(bytes, uid));
      client.on("token-privilege-will-expire", () =>
        hooks.onNotice("token-will-expire", "the room token expires in about 30 s; the room closes then"),
      );
      client.on("token-privilege-did-expire", () => hooks.onFailure("token-expired", "token-privilege-did-expire"));
      const avatarMedia = (uid) => avatarUid === null || uid === avatarUid;
      client.on("media-reconnect-start", (uid) => avatarMedia(uid) && hooks.onState("reconnecting", `media of user ${uid} reconnecting`));
      client.on("media-reconnect-end", (uid) => avatarMedia(uid) && hooks.onState("connected", `media of user ${uid} reconnected`));
      client.on("exception", (event) => hooks.onNotice("sdk-exception", `${event?.code}: ${event?.msg}`));
      client.on("connection-state-change", (current, previous, reason) => {
        if (leaving) return;
        const detail = `connection ${previous} -> ${current}${reason ? ` (${reason})` : ""}`;
        if (current === "RECONNECTING") hooks.onState("reconnecting", detail);
        else if (current === "CONNECTED" && previous === "RECONNECTING") hooks.onState("connected", detail);
        else if (current === "DISCONNECTED" && joined) hooks.onFailure("disconnected", detail);
        else hooks.onNotice("connection", detail); // the cause a join timeout names
      });
      await client.join(c.app_id, c.channel, c.token || null, c.uid ?? null);
      joined = true;
      let mic = null;
      return {
        // Agora's sendStreamMessage exists at run time but not in its typings; `false`: not a retransmission.
        send: (bytes) => client.sendStreamMessage(bytes, false),
        leave: async () => {
          leaving = true;
          await client.leave();
        },
        isAvatar: (uid) => avatarUid === null || uid === avatarUid,
        async stats() {
          const rtc = client.getRTCStats();
          const video = avatarUid !== null ? client.getRemoteVideoStats()[avatarUid] : undefined;
          const audio = avatarUid !== null ? client.getRemoteAudioStats()[avatarUid] : undefined;
          return {
            rtt_ms: rtc.RTT,
            recv_kbps: rtc.RecvBitrate / 1000,
            send_kbps: rtc.SendBitrate / 1000,
            video_loss_pct: video?.packetLossRate,
            audio_loss_pct: audio?.packetLossRate,
            video_kbps: video ? video.receiveBitrate / 1000 : undefined,
            fps: video?.renderFrameRate ?? video?.receiveFrameRate,
            video_delay_ms: video?.receiveDelay,
            audio_delay_ms: audio?.receiveDelay,
            end_to_end_ms: audio?.end2EndDelay,
          };
        },
        mic: {
          async devices() {
            return AgoraRTC.getMicrophones();
          },
          // The official demo's settings: speech quality, echo cancellation, noise suppression, gain control.
          async start(deviceId) {
            const config = { encoderConfig: "speech_low_quality", AEC: true, ANS: true, AGC: true };
            if (deviceId) config.microphoneId = deviceId;
            mic = await AgoraRTC.createMicrophoneAudioTrack(config);
            await client.publish([mic]);
            return mic.getMediaStreamTrack();
          },
          mute: (muted) => mic.setMuted(muted),
          device: (deviceId) => mic.setDevice(deviceId),
          level: () => (mic ? mic.getVolumeLevel() : 0),
          async stop() {
            const track = mic;
            mic = null;
            if (!track) return;
            if (joined && !leaving) await client.unpublish([track]);
            track.close();
          },
        },
      };
    },
  },

  livekit: {
    label: "LiveKit",
    async join(sdk, c, hooks, { timeoutMs }) {
      const Room = pickExport(sdk, "Room", (m) => typeof m === "function");
      const RoomEvent = sdk.RoomEvent || sdk.default?.RoomEvent;
      const Track = sdk.Track || sdk.default?.Track;
      const room = new Room({ adaptiveStream: true, dynacast: true });
      let leaving = false;
      let joined = false;
      hooks.onCleanup(() => {
        leaving = true;
        return room.disconnect();
      });
      // Data only from the avatar (livekit_server_identity) when the credentials name it.
      const isAvatar = (identity) => !c.server_identity || identity === c.server_identity;
      const avatarTracks = new Set(); // the avatar's subscribed tracks (their receivers' statistics)
      room.on(RoomEvent.TrackSubscribed, (track, _publication, participant) => {
        if (participant && !isAvatar(participant.identity)) return;
        avatarTracks.add(track);
        // The track object too: with adaptiveStream a video track the SDK never sees attach()ed to a visible
        // element counts as hidden, and the server is asked to pause it.
        hooks.onTrack(track.kind, track.mediaStreamTrack, track);
      });
      room.on(RoomEvent.TrackUnsubscribed, (track, _publication, participant) => {
        avatarTracks.delete(track);
        if (!participant || isAvatar(participant.identity)) hooks.onTrackEnded(track.kind);
      });
      room.on(RoomEvent.TrackSubscriptionFailed, (trackSid, participant, reason) =>
        hooks.onProblem("subscribe-failed", `could not subscribe to ${participant?.identity}'s track ${trackSid}: ${reason ?? "no reason given"}`),
      );
      room.on(RoomEvent.DataReceived, (payload, participant) => {
        if (isAvatar(participant?.identity)) hooks.onMessage(payload, participant?.identity);
        else hooks.onNotice("foreign-data", `ignored a data packet from ${participant?.identity ?? "the server"}`);
      });
      room.on(RoomEvent.ParticipantDisconnected, (participant) => {
        if (leaving) return;
        if (c.server_identity && participant?.identity === c.server_identity) {
          hooks.onFailure("avatar-left", `participant ${participant?.identity} disconnected`);
        } else {
          hooks.onNotice("user-left", `participant ${participant?.identity} disconnected`);
        }
      });
      room.on(RoomEvent.Reconnecting, () => hooks.onState("reconnecting", "the room is reconnecting"));
      room.on(RoomEvent.SignalReconnecting, () => hooks.onState("reconnecting", "the signalling connection is reconnecting"));
      room.on(RoomEvent.Reconnected, () => hooks.onState("connected", "the room reconnected"));
      room.on(RoomEvent.AudioPlaybackStatusChanged, () => {
        if (!room.canPlaybackAudio) hooks.onAutoplayBlocked(() => room.startAudio());
      });
      // Before connect() resolves, a failed join fires Disconnected and then rejects connect(): only the
      // rejection reports it (once).
      room.on(RoomEvent.Disconnected, (reason) => {
        if (!leaving && joined) hooks.onFailure("disconnected", `left the room (reason ${reason ?? "unknown"})`);
      });
      await probeReachable(c.url, Math.min(timeoutMs, 10_000));
      await room.connect(c.url, c.token, { autoSubscribe: true });
      joined = true;
      let meter = null;
      let previous = null; // the last statistics sample's byte counters
      const micTrack = () => room.localParticipant.getTrackPublication(Track.Source.Microphone)?.track;
      return {
        send: (bytes) => room.localParticipant.publishData(bytes, { reliable: true }),
        leave: async () => {
          leaving = true;
          await room.disconnect();
        },
        // The browser's own WebRTC statistics of each of the avatar's tracks (its RTCRtpReceiver's report, which
        // holds the transport's candidate pair too).
        async stats() {
          const out = {};
          for (const track of avatarTracks) {
            const report = typeof track.getRTCStatsReport === "function" ? await track.getRTCStatsReport() : undefined;
            if (!report) continue;
            readInbound(report, track.kind, out);
            readTransport(report, out);
          }
          // Bitrates from the byte counters between two samples.
          const now = performance.now();
          if (previous && now > previous.t) {
            for (const kind of ["video", "audio"]) {
              const bytes = out[`${kind}_bytes`];
              if (bytes !== undefined && previous[kind] !== undefined) {
                out[`${kind}_kbps`] = (8 * (bytes - previous[kind])) / (now - previous.t);
              }
            }
          }
          previous = { t: now, video: out.video_bytes, audio: out.audio_bytes };
          return Object.keys(out).length ? out : null;
        },
        mic: {
          async devices() {
            return Room.getLocalDevices("audioinput");
          },
          async start(deviceId) {
            const options = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
            if (deviceId) options.deviceId = deviceId;
            await room.localParticipant.setMicrophoneEnabled(true, options);
            const track = micTrack();
            meter = new LevelMeter(track?.mediaStreamTrack);
            return track?.mediaStreamTrack;
          },
          mute: (muted) => (muted ? micTrack()?.mute() : micTrack()?.unmute()),
          device: (deviceId) => room.switchActiveDevice("audioinput", deviceId),
          level: () => meter?.level() ?? 0,
          async stop() {
            meter?.close();
            meter = null;
            const track = micTrack();
            if (track) await room.localParticipant.unpublishTrack(track, true);
          },
        },
      };
    },
  },

  trtc: {
    label: "TRTC",
    async join(sdk, c, hooks) {
      const TRTC = pickExport(sdk, "TRTC", (m) => typeof m.create === "function");
      // No dialog of the SDK's own when autoplay is blocked: the stage shows its "click to start audio".
      const trtc = TRTC.create({ enableAutoPlayDialog: false });
      const E = TRTC.EVENT;
      let leaving = false;
      let joined = false;
      let reconnecting = false;
      let avatarId = null; // the remote user that publishes media: the avatar
      hooks.onCleanup(async () => {
        leaving = true;
        try {
          await trtc.exitRoom();
        } finally {
          trtc.destroy();
        }
      });
      const claim = (userId) => {
        if (avatarId === null) avatarId = userId;
        return userId === avatarId;
      };
      // TRTC draws remote video into an element of its own choosing and plays remote audio by itself: the stage
      // only watches them (the perceived timings), once the SDK plays them.
      trtc.on(E.REMOTE_VIDEO_AVAILABLE, ({ userId, streamType }) => {
        if (!claim(userId)) return;
        trtc.startRemoteVideo({ userId, streamType, view: hooks.trtcView() }).then(
          () => hooks.onWatch("video", null), // (the stage watches the <video> TRTC plays it in)
          (error) => hooks.onProblem("subscribe-failed", `could not show user ${userId}'s video: ${errorText(error)}`),
        );
      });
      trtc.on(E.REMOTE_AUDIO_AVAILABLE, ({ userId }) => claim(userId));
      let heardTrack = null; // the avatar's audio track the stage listens to
      trtc.on(E.AUDIO_PLAY_STATE_CHANGED, ({ userId, state }) => {
        if (!userId || userId !== avatarId || state !== "PLAYING" || typeof trtc.getAudioTrack !== "function") return;
        const track = trtc.getAudioTrack({ userId });
        if (track && track !== heardTrack) {
          heardTrack = track;
          hooks.onWatch("audio", track);
        }
      });
      trtc.on(E.CUSTOM_MESSAGE, (event) => hooks.onMessage(new Uint8Array(event.data), event.userId));
      trtc.on(E.REMOTE_USER_EXIT, ({ userId }) => {
        if (leaving) return;
        if (avatarId !== null && userId === avatarId) hooks.onFailure("avatar-left", `user ${userId} left the room`);
        else hooks.onNotice("user-left", `user ${userId} left the room`);
      });
      trtc.on(E.KICKED_OUT, ({ reason }) => {
        const kind = /expire/i.test(String(reason)) ? "token-expired" : "disconnected";
        hooks.onFailure(kind, `kicked out of the room (${reason})`);
      });
      trtc.on(E.AUTOPLAY_FAILED, (event) => hooks.onAutoplayBlocked(typeof event?.resume === "function" ? () => event.resume() : null));
      trtc.on(E.ERROR, (error) => {
        if (leaving) return;
        const why = { 5501: "a firewall blocks the media (UDP)", 5502: "rejoining the room failed" }[error?.extraCode];
        const text = `${why ? `${why}: ` : ""}${errorText(error)}`;
        if (joined) hooks.onFailure("disconnected", text);
        else hooks.onNotice("sdk-error", text);
      });
      trtc.on(E.CONNECTION_STATE_CHANGED, ({ prevState, state }) => {
        if (leaving) return;
        const detail = `connection ${prevState} -> ${state}`;
        if (!joined) return hooks.onNotice("connection", detail);
        if (state === "CONNECTING") {
          reconnecting = true;
          hooks.onState("reconnecting", detail);
        } else if (state === "CONNECTED" && reconnecting) {
          reconnecting = false;
          hooks.onState("connected", detail);
        } else if (state === "DISCONNECTED") {
          hooks.onFailure("disconnected", detail);
        }
      });
      let last = null;
      trtc.on(E.STATISTICS, (statistics) => {
        last = statistics;
      });
      trtc.on(E.NETWORK_QUALITY, (quality) => {
        last = { ...(last || {}), quality };
      });
      await trtc.enterRoom({
        sdkAppId: Number(c.sdk_app_id),
        strRoomId: String(c.room_id),
        userId: c.user_id,
        userSig: c.user_sig,
      });
      joined = true;
      const guard = new WindowGuard();
      let meter = null;
      return {
        send: async (bytes) => {
          // The pacer keeps inside the SDK's window; wait here only if timers bunched two sends together.
          for (let wait = guard.waitFor(bytes.byteLength, Date.now()); wait > 0; wait = guard.waitFor(bytes.byteLength, Date.now())) {
            await sleep(wait);
          }
          guard.record(bytes.byteLength, Date.now());
          const sentAt = performance.now(); // after any wait: the moment TRTC has it
          trtc.sendCustomMessage({
            cmdId: 1,
            data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
          });
          return sentAt;
        },
        leave: async () => {
          leaving = true;
          try {
            await trtc.exitRoom();
          } finally {
            trtc.destroy();
          }
        },
        async stats() {
          if (!last) return null;
          const remote = (last.remoteStatistics || []).find((r) => r.userId === avatarId) || {};
          const video = (remote.video || [])[0];
          return {
            rtt_ms: last.rtt,
            loss_pct: last.downLoss,
            up_loss_pct: last.upLoss,
            downlink_rtt_ms: last.quality?.downlinkRTT,
            downlink_quality: last.quality?.downlinkNetworkQuality,
            audio_kbps: remote.audio?.bitrate,
            video_kbps: video?.bitrate,
            fps: video?.frameRate,
            audio_jitter_buffer_ms: remote.audio?.jitterBufferDelay,
            video_jitter_buffer_ms: video?.jitterBufferDelay,
          };
        },
        mic: {
          async devices() {
            return TRTC.getMicrophoneList();
          },
          async start(deviceId) {
            const option = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };
            if (deviceId) option.microphoneId = deviceId;
            await trtc.startLocalAudio({ option });
            const track = trtc.getAudioTrack();
            meter = new LevelMeter(track);
            return track;
          },
          mute: (muted) => trtc.updateLocalAudio({ mute: muted }),
          device: (deviceId) => trtc.updateLocalAudio({ option: { microphoneId: deviceId } }),
          level: () => meter?.level() ?? 0,
          async stop() {
            meter?.close();
            meter = null;
            await trtc.stopLocalAudio();
          },
        },
      };
    },
  },
};

// WebRTC statistics of one inbound track (LiveKit hands out the browser's own RTCStatsReport).
function readInbound(report, kind, out) {
  report.forEach((stat) => {
    if (stat.type !== "inbound-rtp") return;
    const lost = stat.packetsLost ?? 0;
    const received = stat.packetsReceived ?? 0;
    const loss = received + lost > 0 ? (100 * lost) / (received + lost) : undefined;
    const jitterMs = stat.jitterBufferEmittedCount ? (1000 * stat.jitterBufferDelay) / stat.jitterBufferEmittedCount : undefined;
    if (kind === "video") {
      out.video_loss_pct = loss;
      out.fps = stat.framesPerSecond;
      out.video_jitter_buffer_ms = jitterMs;
      out.video_bytes = stat.bytesReceived;
    } else {
      out.audio_loss_pct = loss;
      out.audio_jitter_buffer_ms = jitterMs;
      out.audio_bytes = stat.bytesReceived;
    }
  });
}

function readTransport(report, out) {
  report.forEach((stat) => {
    if (stat.type === "candidate-pair" && stat.nominated && stat.currentRoundTripTime !== undefined) {
      out.rtt_ms = 1000 * stat.currentRoundTripTime;
      if (stat.availableIncomingBitrate) out.recv_kbps = stat.availableIncomingBitrate / 1000;
    }
  });
}

const STATS_INTERVAL_MS = 2_000;
const EXPIRY_WARNING_MS = 60_000;

// ------------------------------------------------------------------------------------------------ the controller

// One per widget model per page: the room, the send queue and pacer, the received-frame batches.
class StageController {
  constructor(model) {
    this.model = model;
    this.page = pageId();
    this.room = null; // the provider room once joined
    this.joining = false;
    this.attempt = 0; // each Join click is one attempt
    this.failedAttempt = 0; // the attempt whose failure was reported (each attempt reports at most one)
    this.ended = false; // the current attempt failed or left: its late events are ignored
    this.secrets = [];
    this.pacer = null;
    this.queue = []; // [{seq, bytes, sendAt}]
    this.pumping = false;
    this.frames = { t: [], buffers: [] };
    this.acks = [];
    this.flushTimer = null;
    this.credentialsWaiter = null;
    this.mediaStream = typeof MediaStream === "function" ? new MediaStream() : null;
    this.sdkTracks = {}; // kind -> the SDK's track object (LiveKit: attached to each view's <video>)
    this.trtcElement = null;
    this.views = new Set(); // callbacks that refresh each view's <video>
    this.captionMid = null;
    this.resumeAudio = null; // what the "click to start audio" button calls (besides playing the <video>)
    this.statsTimer = null;
    this.expiryTimers = [];
    this.cleanups = [];
    this.mic = null; // {track, muted, device} while the microphone is on
    this.turn = null; // the user's current spoken turn (see watch())
    this.lastCause = "";
    this.perceived = null; // PerceivedTimings while a room (or the simulator's media) is on
    this.audioAttached = null; // the last attachAudio() of the avatar's audio (they run one after the other)
    this.perceivedEvents = []; // its raw events, sent to Python in batches like the frames
    this.sim = null; // the simulator's WebRTC peer: {pc, offerUrl, token, room: {mic}}
    this.simMicTrack = null; // the microphone sent to the simulator: {track, meter}
    this.videos = new Set(); // each view's <video> (the first one is watched for frames)
    this.onCustom = (content, buffers) => this.handle(content || {}, buffers || []);
    model.on("msg:custom", this.onCustom);
    // On the simulator, ask Python for its media (it also sends them when a stream is attached later).
    this.onSimulated = () => {
      if (this.model.get("simulated") && this.model.get("provider") === "simulator") this.model.send({ type: "sim-media-request", page_id: this.page });
    };
    model.on("change:provider", this.onSimulated);
    this.onSimulated();
  }

  dispose() {
    this.model.off("msg:custom", this.onCustom);
    this.model.off("change:provider", this.onSimulated);
    if (this.room || this.joining) this.leave("the widget was removed", { tell: false });
    this.closeSimMedia();
  }

  set(changes) {
    for (const [key, value] of Object.entries(changes)) this.model.set(key, value);
    this.model.save_changes();
  }

  // A raw event for Python's recorder, stamped on this page's clock.
  event(name, data = {}, t = performance.now()) {
    this.model.send({ type: "event", page_id: this.page, name, t, data: JSON.parse(scrub(JSON.stringify(data), this.secrets)) });
  }

  // -- messages from Python

  handle(content, buffers) {
    if (content.page_id && content.page_id !== this.page) return; // meant for another tab
    // A relayed send (the simulator): time a round trip to the kernel now, the bound of the relay's delay (perceived.js).
    if (content.type === "sim-sent" && this.perceived) this.model.send({ type: "relay-ping", page_id: this.page, mid: content.mid, t: performance.now() });
    if (content.type === "relay-pong") return void this.perceived?.relayed(content.mid, performance.now() - content.t);
    if (content.type === "credentials" && this.credentialsWaiter) {
      this.credentialsWaiter(content);
    } else if (content.type === "send") {
      this.enqueue(content.seq, buffers[0]);
    } else if (content.type === "leave") {
      this.leave("closed from Python", { tell: false });
    } else if (content.type === "sim-media") {
      this.connectSimMedia(content).catch((error) => this.problem("sim-media-failed", `the simulator's media: ${errorText(error)}`));
    } else if (content.type === "sim-media-stop") {
      this.closeSimMedia();
    } else if (content.type === "sim-sent") {
      // The simulator's data channel runs in the kernel: its sends and messages are relayed, stamped on arrival.
      this.perceived?.sent(content.mid, performance.now());
    } else if (content.type === "sim-message") {
      // (the kernel shows them itself: the speaking light and caption; here they are only timed)
      this.observe(content.message, performance.now(), content.chars);
    }
  }

  // -- joining

  async join() {
    if (this.room || this.joining || this.model.get("simulated")) return;
    this.joining = true;
    // Events of an earlier attempt's client (a refused join, a room we left) must not touch this one.
    const attempt = ++this.attempt;
    const current = () => attempt === this.attempt && !this.ended;
    this.ended = false;
    this.cleanups = [];
    this.lastCause = "";
    const provider = this.model.get("provider");
    const adapter = PROVIDERS[provider];
    const label = adapter?.label || provider;
    const timeoutMs = Math.max(1, Number(this.model.get("join_timeout") || 20) * 1000);
    try {
      if (!adapter) throw new StageFailure("join-refused", `no browser support for the provider ${provider || "(none)"}`);
      this.set({ connection_state: "loading-sdk", error: "", error_kind: "", caption: "", notice: "", audio_blocked: false });
      const url = (this.model.get("sdk_urls") || {})[provider];
      this.set({ sdk_url_tried: url || "" });
      let sdk;
      try {
        sdk = await import(/* webpackIgnore: true */ url);
        quietSdk(provider, sdk);
      } catch (error) {
        throw new StageFailure("sdk-load", `could not load the ${label} SDK from ${url}: ${errorText(error)}`);
      }
      this.set({ connection_state: "joining" });
      const message = await this.requestCredentials();
      const credentials = message.credentials || {};
      this.secrets = [credentials.token, credentials.user_sig].filter(Boolean);
      this.pacer = new Pacer(this.model.get("budget"));
      this.startPerceived();
      const hooks = {
        onMessage: (bytes, sender) => current() && this.received(bytes, sender),
        onTrack: (kind, track, sdkTrack, receiver) => current() && this.addTrack(kind, track, sdkTrack, receiver),
        onTrackEnded: (kind) => current() && this.removeTracks(kind),
        onWatch: (kind, track, receiver) => current() && this.watchTrack(kind, track, receiver || null),
        onFailure: (kind, text) => current() && this.fail(kind, text, attempt),
        onState: (state, detail) => current() && this.roomState(state, detail),
        onNotice: (kind, text) => current() && this.notice(kind, text),
        onProblem: (kind, text) => current() && this.problem(kind, text),
        onAutoplayBlocked: (resume) => current() && this.autoplayBlocked(resume),
        onCleanup: (fn) => this.cleanups.push(fn),
        trtcView: () => this.trtcView(),
      };
      const t0 = performance.now();
      let timer = null;
      const timeout = new Promise((_resolve, reject) => {
        timer = setTimeout(() => {
          const cause = this.lastCause ? `last from the SDK: ${this.lastCause}` : "no answer (is the network reachable?)";
          reject(new StageFailure("join-timeout", `${label} did not join the room within ${timeoutMs / 1000} s; ${cause}`));
        }, timeoutMs);
      });
      const joining = adapter.join(sdk, credentials, hooks, { timeoutMs });
      let room;
      try {
        room = await Promise.race([joining, timeout]);
      } catch (error) {
        this.abandon(joining);
        if (error instanceof StageFailure) throw new StageFailure(error.kind, error.kind === "join-timeout" ? error.message : `${label}: ${error.message}`);
        throw new StageFailure("join-refused", `${label} refused the join: ${errorText(error)}`);
      } finally {
        clearTimeout(timer);
      }
      if (!current()) {
        // Left (or failed) while joining: do not stay in the room.
        room.leave().catch((error) => console.warn("akool_lab stage: leaving after an abandoned join failed", errorText(error)));
        return;
      }
      this.room = room;
      this.set({ connection_state: "connected", page_id: this.page });
      this.model.send({ type: "joined", page_id: this.page, provider });
      this.event("stage.joined", { provider, join_ms: performance.now() - t0 });
      this.watchExpiry(provider, credentials, room);
      this.statsTimer = setInterval(() => this.sampleStats(), STATS_INTERVAL_MS);
      this.pump();
    } catch (error) {
      const failure = error instanceof StageFailure ? error : new StageFailure("join-refused", errorText(error));
      this.fail(failure.kind, failure.message, attempt);
    } finally {
      this.joining = false;
    }
  }

  // A join given up (timeout, refused, Leave): stop the SDK from trying on, and leave if it gets in later.
  abandon(joining) {
    const cleanups = this.cleanups.splice(0);
    for (const cleanup of cleanups) {
      Promise.resolve()
        .then(cleanup)
        .catch((error) => console.warn("akool_lab stage: stopping an abandoned join failed:", scrub(errorText(error), this.secrets)));
    }
    joining.then(
      (room) => room.leave().catch(() => {}), // already cleaned up above; a second leave may reject
      () => {}, // its rejection is this failure, already reported
    );
  }

  // The credentials come from Python only now, as a one-shot custom message, and are kept only in this closure.
  requestCredentials() {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.credentialsWaiter = null;
        reject(new StageFailure("join-refused", "the kernel did not send the room's credentials (is it busy?)"));
      }, CREDENTIALS_TIMEOUT_MS);
      this.credentialsWaiter = (message) => {
        clearTimeout(timer);
        this.credentialsWaiter = null;
        if (message.error) reject(new StageFailure("join-refused", message.error));
        else resolve(message);
      };
      this.model.send({ type: "join-request", page_id: this.page });
    });
  }

  stopTimers() {
    if (this.statsTimer !== null) clearInterval(this.statsTimer);
    this.statsTimer = null;
    for (const timer of this.expiryTimers.splice(0)) clearTimeout(timer);
  }

  async leave(reason, { tell = true } = {}) {
    this.ended = true;
    this.stopTimers();
    const room = this.room;
    this.room = null;
    if (!room && this.joining) this.abandon(Promise.reject(new Error("left")));
    this.failQueued("the stage left the room");
    this.flush();
    await this.stopMic();
    await this.stopPerceived();
    this.set({ connection_state: "left", speaking: false, notice: "", audio_blocked: false });
    if (tell) this.model.send({ type: "left", page_id: this.page, reason });
    if (room) {
      try {
        await room.leave();
      } catch (error) {
        this.problem("leave-failed", `leaving the room failed: ${errorText(error)}`);
      }
    }
    this.clearTracks();
  }

  // Each attempt reports one failure: the first (a refused join may also fire a disconnect event).
  fail(kind, text, attempt = this.attempt) {
    if (this.failedAttempt === attempt || attempt !== this.attempt) return;
    this.failedAttempt = attempt;
    this.ended = true;
    this.stopTimers();
    const message = scrub(text, this.secrets);
    const room = this.room;
    this.room = null;
    this.failQueued(message);
    this.flush();
    this.stopMic();
    this.stopPerceived();
    this.set({ connection_state: "failed", error: message, error_kind: kind, speaking: false, notice: "" });
    this.model.send({ type: "failed", page_id: this.page, kind, message });
    this.clearTracks(); // the room is gone: no frozen last frame of the avatar
    if (room) room.leave().catch((error) => console.warn("akool_lab stage: leaving after a failure failed:", scrub(errorText(error), this.secrets)));
  }

  // Not fatal (a track that could not be subscribed, a blocked play()): shown, and reported to Python.
  problem(kind, text) {
    const message = scrub(text, this.secrets);
    this.set({ error: message, error_kind: kind });
    this.model.send({ type: "problem", page_id: this.page, kind, message });
  }

  notice(kind, text) {
    const message = scrub(text, this.secrets);
    this.lastCause = message;
    this.event(`stage.${kind}`, { message });
    if (kind === "token-will-expire" || kind === "token-expiring") this.set({ notice: message });
  }

  roomState(state, detail) {
    const previous = this.model.get("connection_state");
    if (previous === state) return;
    this.set({ connection_state: state, notice: state === "reconnecting" ? scrub(detail, this.secrets) : "" });
    this.event(state === "reconnecting" ? "stage.reconnecting" : "stage.reconnected", { detail: scrub(detail, this.secrets) });
  }

  autoplayBlocked(resume) {
    if (resume) this.resumeAudio = resume;
    if (!this.model.get("audio_blocked")) {
      this.set({ audio_blocked: true });
      this.event("stage.autoplay-blocked", {});
    }
  }

  // The "click to start audio" button (a user gesture): play again, and let the SDK resume what it holds.
  async startAudio(play) {
    const resume = this.resumeAudio;
    this.resumeAudio = null;
    try {
      await Promise.all([play(), resume ? resume() : null]);
      this.set({ audio_blocked: false });
      this.event("stage.audio-started", {});
    } catch (error) {
      this.problem("autoplay-blocked", `the browser still blocks the avatar's audio: ${errorText(error)}`);
    }
  }

  watchExpiry(provider, credentials, room) {
    credentialExpiry(provider, credentials).then((expiresAt) => {
      if (!expiresAt || this.room !== room) return;
      const warnIn = expiresAt - EXPIRY_WARNING_MS - Date.now();
      const say = (text) => this.room === room && this.notice("token-expiring", text);
      const when = new Date(expiresAt).toLocaleTimeString();
      if (warnIn <= 0) say(`the room token expires at ${when}; a reconnect after that fails`);
      else this.expiryTimers.push(setTimeout(() => say(`the room token expires at ${when}; a reconnect after that fails`), warnIn));
    });
  }

  async sampleStats() {
    const room = this.room;
    if (!room?.stats) return;
    try {
      const t = performance.now();
      const sample = await room.stats();
      if (!sample || this.room !== room) return;
      const clean = {};
      for (const [key, value] of Object.entries(sample)) {
        if (typeof value === "number" && Number.isFinite(value)) clean[key] = Math.round(value * 100) / 100;
      }
      this.set({ network: clean });
      this.event("stage.network", clean, t);
    } catch (error) {
      // Reported once: sampling stops (the room itself is fine).
      if (this.statsTimer !== null) clearInterval(this.statsTimer);
      this.statsTimer = null;
      this.problem("stats-failed", `reading the provider's statistics failed: ${errorText(error)}`);
    }
  }

  // -- the user's microphone

  // The microphone goes to the room; on the simulator, to its WebRTC peer (the voice loop).
  micRoom() {
    return this.room || this.sim?.room || null;
  }

  async startMic(deviceId) {
    const room = this.micRoom();
    if (!room || this.mic) return;
    this.set({ mic_state: "starting" });
    try {
      const track = await room.mic.start(deviceId || this.model.get("mic_device") || "");
      this.mic = { muted: false, device: track?.getSettings?.().deviceId || deviceId || "" };
      this.set({ mic_state: "on", mic_device: this.mic.device });
      this.event("stage.mic", { state: "on", device: this.mic.device });
      this.listDevices();
    } catch (error) {
      this.mic = null;
      this.set({ mic_state: "failed" });
      this.problem("mic-failed", `the microphone could not start: ${errorText(error)}`);
    }
  }

  async listDevices() {
    try {
      const devices = await this.micRoom().mic.devices();
      this.set({ mic_devices: devices.map((d) => ({ id: d.deviceId, label: d.label || d.deviceId })) });
    } catch (error) {
      this.problem("mic-failed", `listing the microphones failed: ${errorText(error)}`);
    }
  }

  async muteMic(muted) {
    if (!this.mic || !this.micRoom()) return;
    try {
      await this.micRoom().mic.mute(muted);
      this.mic.muted = muted;
      this.set({ mic_state: muted ? "muted" : "on" });
      this.event("stage.mic", { state: muted ? "muted" : "on" });
    } catch (error) {
      this.problem("mic-failed", `${muted ? "muting" : "unmuting"} the microphone failed: ${errorText(error)}`);
    }
  }

  async switchMic(deviceId) {
    if (!this.mic || !this.micRoom()) {
      this.set({ mic_device: deviceId });
      return;
    }
    try {
      await this.micRoom().mic.device(deviceId);
      this.mic.device = deviceId;
      this.set({ mic_device: deviceId });
      this.event("stage.mic", { state: "device", device: deviceId });
    } catch (error) {
      this.problem("mic-failed", `switching the microphone failed: ${errorText(error)}`);
    }
  }

  async stopMic() {
    const room = this.micRoom();
    const wasOn = Boolean(this.mic);
    this.mic = null;
    if (this.model.get("mic_state") !== "off") this.set({ mic_state: "off" });
    if (!wasOn || !room) return;
    try {
      await room.mic.stop();
      this.event("stage.mic", { state: "off" });
    } catch (error) {
      this.problem("mic-failed", `stopping the microphone failed: ${errorText(error)}`);
    }
  }

  micLevel() {
    if (!this.mic || !this.micRoom() || this.mic.muted) return 0;
    return this.micRoom().mic.level();
  }

  // -- media

  // `receiver`: the track's RTCRtpReceiver when known (the simulator; LiveKit's RemoteAudioTrack.receiver; Agora's
  // getRTCRtpTransceiver()), for the browser's receive statistics; TRTC does not expose it.
  addTrack(kind, track, sdkTrack, receiver = null) {
    if (!this.mediaStream || !track) return;
    this.removeTracks(kind);
    this.mediaStream.addTrack(track);
    this.sdkTracks[kind] = sdkTrack || null;
    for (const refresh of this.views) refresh();
    this.watchTrack(kind, track, receiver || (typeof sdkTrack?.receiver?.getStats === "function" ? sdkTrack.receiver : null));
  }

  // -- perceived timings (perceived.js): from the media as this page receives and plays it

  startPerceived() {
    if (this.perceived || typeof PerceivedTimings !== "function") return;
    this.perceived = new PerceivedTimings({
      emit: (event) => {
        this.perceivedEvents.push(event);
        this.scheduleFlush();
        if (event.type === "heard" && typeof event.user_heard_ms === "number" && this.model.get("user_turn")?.user_mid === event.mid) {
          this.showTurn(event.mid, { heard_ms: event.user_heard_ms });
        }
      },
    });
  }

  async stopPerceived() {
    const perceived = this.perceived;
    this.perceived = null;
    if (!perceived) return;
    try {
      await perceived.stop();
    } catch (error) {
      console.warn("akool_lab stage: stopping the perceived timings failed:", errorText(error));
    }
    this.flush();
  }

  watchTrack(kind, track, receiver) {
    const perceived = this.perceived;
    if (!perceived) return;
    if (kind === "audio") {
      // One attach at a time: a new track replaces the detector of the previous one once that one is up.
      const previous = this.audioAttached || Promise.resolve();
      this.audioAttached = previous
        .then(() => this.perceived === perceived && perceived.attachAudio(track, receiver))
        .catch((error) =>
          this.problem("perceived-failed", `the onset detector could not start on the avatar's audio: ${errorText(error)}`),
        );
    } else if (kind === "video") {
      // The <video> that shows it: TRTC plays into its own view (never into the stage's, which stays empty);
      // otherwise each view's (the first is watched).
      const deadline = performance.now() + 10_000;
      const find = () => {
        if (this.perceived !== perceived) return;
        const video = this.trtcElement ? this.trtcElement.querySelector("video") : [...this.videos][0];
        if (video) perceived.attachVideo(video);
        else if (performance.now() < deadline) setTimeout(find, 100);
      };
      find();
    }
  }

  // -- the simulator's media: its avatar as a WebRTC peer (the data channel stays on the kernel's WebSocket)

  async connectSimMedia({ offer_url: offerUrl, token }, { again = false } = {}) {
    if (!again && this.sim && this.sim.offerUrl === offerUrl) return; // already connected (asked, and pushed on attach)
    await this.closeSimMedia({ keepMic: again });
    if (typeof RTCPeerConnection !== "function") {
      this.set({ notice: "this browser has no WebRTC: the simulated avatar is drawn instead" });
      return;
    }
    const pc = new RTCPeerConnection({ iceServers: [] });
    const sim = { pc, offerUrl, token, room: { mic: this.simMic() } };
    this.sim = sim;
    this.startPerceived();
    const mine = () => this.sim === sim;
    // The user's voice, when the microphone is on: sent raw (the simulator's voice activity detector and recogniser
    // take it as it is), as the official demo captures it for AKool's ASR.
    if (this.simMicTrack) pc.addTransceiver(this.simMicTrack.track, { direction: "sendrecv" });
    else pc.addTransceiver("audio", { direction: "recvonly" });
    pc.addTransceiver("video", { direction: "recvonly" });
    pc.ontrack = (event) => mine() && this.addTrack(event.track.kind, event.track, null, event.receiver);
    pc.onconnectionstatechange = () => {
      if (mine() && pc.connectionState === "failed") this.problem("sim-media-failed", "the simulator's media connection failed");
    };
    await pc.setLocalDescription(await pc.createOffer());
    const deadline = performance.now() + ICE_GATHERING_TIMEOUT_MS;
    while (pc.iceGatheringState !== "complete") {
      if (!mine()) return;
      if (performance.now() > deadline) throw new Error(`ICE gathering did not complete within ${ICE_GATHERING_TIMEOUT_MS / 1000} s`);
      await sleep(20);
    }
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(), SIM_OFFER_TIMEOUT_MS);
    let response;
    let body = null;
    try {
      response = await fetch(offerUrl, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp, token }),
        signal: controller.signal,
      });
      body = await response.json().catch(() => null);
    } finally {
      clearTimeout(timer);
    }
    if (!mine()) return;
    if (body?.code === 1500) {
      // The media extra is not installed: the drawn face stands in, and the stage says why.
      this.set({ notice: `no simulated media: ${body.msg}` });
      this.event("stage.sim-media", { state: "unavailable", message: String(body.msg || "") });
      await this.closeSimMedia();
      return;
    }
    if (!response.ok || body?.code !== 1000 || !body?.data?.sdp) {
      throw new Error(`the simulator refused the offer (HTTP ${response.status}, code ${body?.code}: ${body?.msg || "no message"})`);
    }
    await pc.setRemoteDescription(body.data);
    this.event("stage.sim-media", { state: "connected" });
  }

  // The microphone on the simulator: what the providers' mic objects do, over the simulator's peer (a new offer
  // with the track, or without it, replaces the peer: the simulator takes one offer at a time).
  simMic() {
    const capture = async (deviceId) => {
      const stream = await navigator.mediaDevices.getUserMedia({
        audio: { deviceId: deviceId ? { exact: deviceId } : undefined, echoCancellation: false, noiseSuppression: false, autoGainControl: false },
      });
      const track = stream.getAudioTracks()[0];
      return { track, meter: new LevelMeter(track) };
    };
    const renegotiate = async (next) => {
      const previous = this.simMicTrack;
      this.simMicTrack = next;
      if (previous && previous !== next) {
        previous.track.stop();
        previous.meter.close();
      }
      if (this.sim) await this.connectSimMedia({ offer_url: this.sim.offerUrl, token: this.sim.token }, { again: true });
    };
    return {
      start: async (deviceId) => {
        const next = await capture(deviceId);
        await renegotiate(next);
        return next.track;
      },
      mute: async (muted) => {
        if (this.simMicTrack) this.simMicTrack.track.enabled = !muted;
      },
      device: async (deviceId) => renegotiate(await capture(deviceId)),
      level: () => this.simMicTrack?.meter.level() ?? 0,
      stop: async () => renegotiate(null),
      devices: async () => (await navigator.mediaDevices.enumerateDevices()).filter((d) => d.kind === "audioinput"),
    };
  }

  async closeSimMedia({ keepMic = false } = {}) {
    const sim = this.sim;
    this.sim = null;
    if (!keepMic && this.simMicTrack) {
      this.simMicTrack.track.stop();
      this.simMicTrack.meter.close();
      this.simMicTrack = null;
      this.mic = null;
      if (this.model.get("mic_state") !== "off") this.set({ mic_state: "off" });
    }
    if (!sim) return;
    sim.pc.close();
    await this.stopPerceived();
    this.clearTracks();
  }

  removeTracks(kind) {
    if (!this.mediaStream) return;
    for (const track of this.mediaStream.getTracks()) if (track.kind === kind) this.mediaStream.removeTrack(track);
    delete this.sdkTracks[kind];
    for (const refresh of this.views) refresh();
  }

  clearTracks() {
    for (const kind of ["video", "audio"]) this.removeTracks(kind);
  }

  trtcView() {
    if (!this.trtcElement) {
      this.trtcElement = document.createElement("div");
      this.trtcElement.className = "akool-stage__trtc";
    }
    for (const refresh of this.views) refresh();
    return this.trtcElement;
  }

  // -- sending: Python's messages, paced here, confirmed with their browser send time

  enqueue(seq, buffer) {
    const bytes = buffer instanceof DataView
      ? new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength).slice()
      : new Uint8Array(buffer);
    this.queue.push({ seq, bytes, sendAt: null });
    this.pump();
  }

  async pump() {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (this.queue.length && this.room) {
        const item = this.queue[0];
        if (item.sendAt === null) {
          const now = performance.now();
          item.sendAt = now + this.pacer.delayFor(item.bytes.byteLength, now);
        }
        const wait = item.sendAt - performance.now();
        if (wait > 0) {
          await sleep(wait);
          continue; // the room may have gone meanwhile
        }
        this.queue.shift();
        const t = performance.now(); // handed to the provider now: the send time on this page's clock
        try {
          const sentAt = await this.room.send(item.bytes); // a number when the adapter had to hold it back
          this.acks.push([item.seq, typeof sentAt === "number" ? sentAt : t]);
          const last = lastChunkMid(item.bytes);
          if (last !== null) this.perceived?.sent(last, typeof sentAt === "number" ? sentAt : t);
          this.scheduleFlush();
        } catch (error) {
          this.model.send({ type: "send-failed", page_id: this.page, seq: item.seq, error: scrub(errorText(error), this.secrets) });
        }
      }
    } finally {
      this.pumping = false;
    }
  }

  failQueued(reason) {
    for (const item of this.queue.splice(0)) {
      this.model.send({ type: "send-failed", page_id: this.page, seq: item.seq, error: reason });
    }
  }

  // -- receiving: stamped on arrival, sent to Python in batches

  received(bytes, sender) {
    const t = performance.now();
    if (this.room?.isAvatar && !this.room.isAvatar(sender)) {
      // Agora: data from a user other than the one publishing the avatar's media: kept (AKool may send from
      // another uid), but noted.
      this.event("stage.foreign-data", { sender: String(sender) }, t);
    }
    const copy = bytes instanceof Uint8Array ? bytes.slice() : new Uint8Array(bytes);
    this.frames.t.push(t);
    this.frames.buffers.push(copy);
    this.scheduleFlush();
    this.watch(copy, t);
  }

  scheduleFlush() {
    if (this.flushTimer === null) this.flushTimer = setTimeout(() => this.flush(), BATCH_MS);
  }

  flush() {
    if (this.flushTimer !== null) clearTimeout(this.flushTimer);
    this.flushTimer = null;
    if (this.acks.length) {
      this.model.send({ type: "sent", page_id: this.page, items: this.acks.splice(0) });
    }
    if (this.frames.t.length) {
      const { t, buffers } = this.frames;
      this.frames = { t: [], buffers: [] };
      this.model.send({ type: "frames", page_id: this.page, t }, undefined, buffers);
    }
    if (this.perceivedEvents.length) {
      this.model.send({ type: "perceived", page_id: this.page, events: this.perceivedEvents.splice(0) });
    }
  }

  // The speaking light and captions follow the avatar's own messages (AKOOL_API.md 5.4, 5.6); observe() times
  // them.
  watch(bytes, t) {
    let message;
    try {
      message = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return; // not JSON: nothing to show
    }
    if (!message || message.v !== 2) return;
    this.observe(message, t);
    const pld = message.pld || {};
    if (message.type === "event" && pld.event === "audio_start") this.set({ speaking: true });
    else if (message.type === "event" && pld.event === "audio_end") this.set({ speaking: false });
    else if (message.type === "chat" && pld.from === "bot" && typeof pld.text === "string") {
      const previous = this.captionMid === message.mid ? this.model.get("caption") : "";
      this.captionMid = message.mid;
      this.set({ caption: tail(previous + pld.text) });
    }
  }

  // What is timed on this page's clock from the avatar's messages, received here (a room) or relayed by the kernel
  // (the simulator, whose data channel runs there: its messages come without their text, `chars` then gives the
  // transcript's length): the perceived timings, and the user's spoken turns, from the user's transcript arriving
  // to the avatar's first reply chunk and to its audio_start.
  observe(message, t, chars = 0) {
    if (!message || typeof message !== "object") return;
    this.perceived?.received(message, t);
    const pld = message.pld || {};
    if (message.type === "event" && pld.event === "audio_start") {
      this.turnStep("audio_start", t, message.mid);
    } else if (message.type === "chat" && pld.from === "user") {
      if (!this.turn || this.turn.replied) {
        this.turn = { mid: message.mid, first: t, last: t, chars: 0, replied: false, audio: false };
        this.set({ user_turn: { user_mid: message.mid } });
      }
      this.turn.last = t;
      this.turn.chars += typeof pld.text === "string" ? pld.text.length : Number(chars) || 0;
      this.event("user_turn.transcript", { user_mid: message.mid, fin: Boolean(message.fin), chars: this.turn.chars }, t);
    } else if (message.type === "chat" && pld.from === "bot") {
      this.turnStep("first_reply", t, message.mid);
    }
  }

  turnStep(step, t, mid) {
    const turn = this.turn;
    if (!turn) return;
    if (step === "first_reply" && !turn.replied) {
      turn.replied = true;
      this.event("user_turn.first_reply", { user_mid: turn.mid, reply_mid: mid, ms: t - turn.last, ms_from_first: t - turn.first }, t);
      this.showTurn(turn.mid, { first_reply_ms: t - turn.last });
    } else if (step === "audio_start" && !turn.audio) {
      turn.audio = true;
      this.event("user_turn.audio_start", { user_mid: turn.mid, ms: t - turn.last, ms_from_first: t - turn.first }, t);
      this.showTurn(turn.mid, { audio_start_ms: t - turn.last });
    }
  }

  // The user's last spoken turn on the stage (the user_turn trait): its reply, the avatar's audio_start and when
  // its voice was heard, each from the user's transcript arriving.
  showTurn(mid, figures) {
    const current = this.model.get("user_turn") || {};
    const base = current.user_mid === mid ? current : { user_mid: mid };
    const rounded = Object.fromEntries(Object.entries(figures).map(([key, value]) => [key, Math.round(value * 10) / 10]));
    this.set({ user_turn: { ...base, ...rounded } });
  }
}

const controllers = new Map(); // stage id -> StageController (one per model in this page)

// ------------------------------------------------------------------------------------------------ the view

const STATE_TEXT = {
  idle: "not joined",
  "loading-sdk": "loading the SDK…",
  joining: "joining…",
  connected: "connected",
  reconnecting: "reconnecting…",
  left: "left",
  failed: "failed",
};

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}

// A hue from a string, so each background URL gets its own colour even when the image cannot load.
function hueOf(text) {
  let hash = 0;
  for (const char of String(text)) hash = (hash * 31 + char.charCodeAt(0)) | 0;
  return Math.abs(hash) % 360;
}

// The simulated avatar: a face whose mouth moves while the avatar speaks, blinking now and then when idle.
function drawFace(ctx, width, height, time, speaking, background) {
  const hue = background.hue;
  const gradient = ctx.createLinearGradient(0, 0, 0, height);
  gradient.addColorStop(0, `hsl(${hue}, 45%, 82%)`);
  gradient.addColorStop(1, `hsl(${(hue + 40) % 360}, 40%, 58%)`);
  ctx.fillStyle = gradient;
  ctx.fillRect(0, 0, width, height);
  if (background.image?.complete && background.image.naturalWidth) {
    ctx.drawImage(background.image, 0, 0, width, height);
  }
  const cx = width / 2;
  const cy = height * 0.52;
  const r = Math.min(width, height) * 0.3;
  const sway = Math.sin(time / 900) * r * 0.03 + (speaking ? Math.sin(time / 160) * r * 0.02 : 0);
  // shoulders, head
  ctx.fillStyle = "#34495e";
  ctx.beginPath();
  ctx.ellipse(cx, cy + r * 1.75, r * 1.35, r * 0.8, 0, Math.PI, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#f1c9a5";
  ctx.beginPath();
  ctx.ellipse(cx + sway, cy, r * 0.82, r, 0, 0, 2 * Math.PI);
  ctx.fill();
  ctx.fillStyle = "#5b3a29";
  ctx.beginPath();
  ctx.ellipse(cx + sway, cy - r * 0.62, r * 0.86, r * 0.45, 0, Math.PI, 2 * Math.PI);
  ctx.fill();
  // eyes: a blink of 120 ms every 3.7 s
  const blink = time % 3700 < 120;
  ctx.fillStyle = "#2c3e50";
  for (const side of [-1, 1]) {
    ctx.beginPath();
    ctx.ellipse(cx + sway + side * r * 0.33, cy - r * 0.15, r * 0.09, blink ? r * 0.015 : r * 0.11, 0, 0, 2 * Math.PI);
    ctx.fill();
  }
  // mouth: opens and closes with a syllable-like rhythm while speaking, a calm smile otherwise
  const mouthY = cy + r * 0.45;
  ctx.strokeStyle = "#8e3b46";
  ctx.fillStyle = "#8e3b46";
  ctx.lineWidth = Math.max(2, r * 0.04);
  if (speaking) {
    const open = 0.25 + 0.75 * Math.abs(Math.sin(time / 95) * Math.sin(time / 233 + 1));
    ctx.beginPath();
    ctx.ellipse(cx + sway, mouthY, r * 0.24, r * 0.2 * open + r * 0.02, 0, 0, 2 * Math.PI);
    ctx.fill();
  } else {
    ctx.beginPath();
    ctx.arc(cx + sway, mouthY - r * 0.12, r * 0.22, Math.PI * 0.2, Math.PI * 0.8);
    ctx.stroke();
  }
}

function initialize({ model }) {
  const id = model.get("_stage_id");
  const controller = new StageController(model);
  controllers.set(id, controller);
  return () => {
    controller.dispose();
    if (controllers.get(id) === controller) controllers.delete(id);
  };
}

function render({ model, el }) {
  const controller = controllers.get(model.get("_stage_id"));
  const root = element("div", "akool-stage");
  const screen = element("div", "akool-stage__screen");
  const video = element("video", "akool-stage__video");
  video.autoplay = true;
  video.playsInline = true;
  const canvas = element("canvas", "akool-stage__face");
  canvas.width = 480;
  canvas.height = 360;
  const overlay = element("div", "akool-stage__overlay");
  const startAudio = element("button", "akool-stage__start-audio", "🔊 click to start audio");
  startAudio.type = "button";
  screen.append(video, canvas, overlay, startAudio);
  const bar = element("div", "akool-stage__bar");
  const join = element("button", "akool-stage__join", "Join");
  join.type = "button";
  const leave = element("button", "akool-stage__leave", "Leave");
  leave.type = "button";
  const state = element("span", "akool-stage__state");
  const speakingLight = element("span", "akool-stage__speaking", "● speaking");
  const providerLabel = element("span", "akool-stage__provider");
  bar.append(join, leave, state, speakingLight, providerLabel);
  // The user's voice: the microphone published into the room (AKool's ASR answers with from:"user" text).
  const micBar = element("div", "akool-stage__mic");
  const micButton = element("button", "akool-stage__mic-toggle", "🎤 Microphone");
  micButton.type = "button";
  const muteButton = element("button", "akool-stage__mic-mute", "Mute");
  muteButton.type = "button";
  const devices = element("select", "akool-stage__mic-device");
  devices.title = "microphone";
  const meter = element("meter", "akool-stage__mic-level");
  meter.min = 0;
  meter.max = 1;
  meter.value = 0;
  micBar.append(micButton, muteButton, devices, meter);
  const notice = element("div", "akool-stage__notice");
  const network = element("div", "akool-stage__network");
  const turn = element("div", "akool-stage__turn");
  turn.style.cssText = "color: var(--jp-ui-font-color2, #666); font-size: 0.9em;"; // as the network line
  const caption = element("div", "akool-stage__caption");
  const error = element("div", "akool-stage__error");
  root.append(screen, bar, micBar, notice, network, turn, caption, error);
  el.append(root);

  const background = { url: null, hue: 210, image: null };

  function refreshBackground() {
    const url = model.get("background_url") || "";
    if (url === background.url) return;
    background.url = url;
    background.hue = url ? hueOf(url) : 210;
    background.image = null;
    if (url) {
      const image = new Image();
      image.src = url; // may never load offline: the colour stands in for it
      background.image = image;
    }
    screen.style.backgroundImage = url ? `url("${url.replace(/"/g, "%22")}")` : "";
  }

  // A play() the browser refuses (no user gesture yet) becomes the "click to start audio" button; an AbortError
  // only means a newer source replaced this one.
  const play = () =>
    video.play().catch((reason) => {
      if (reason?.name === "NotAllowedError") controller?.autoplayBlocked(null);
      else if (reason?.name !== "AbortError") controller?.problem("play-failed", `the avatar's video cannot play: ${errorText(reason)}`);
    });

  const attached = new Set(); // LiveKit tracks attached to this view's <video>
  function refreshVideo() {
    const stream = controller?.mediaStream;
    const hasVideo = Boolean(stream && stream.getTracks().length);
    const sdkTracks = Object.values(controller?.sdkTracks || {}).filter((t) => t && typeof t.attach === "function");
    if (model.get("provider") === "livekit" && sdkTracks.length) {
      // LiveKit: attach() tells its adaptive stream that a visible element shows the track (else it pauses it).
      for (const track of attached) if (!sdkTracks.includes(track)) track.detach(video);
      attached.clear();
      for (const track of sdkTracks) {
        track.attach(video);
        attached.add(track);
      }
    } else if (hasVideo && video.srcObject !== stream) {
      video.srcObject = stream;
    }
    if (hasVideo) play();
    if (controller?.trtcElement && controller.trtcElement.parentNode !== screen) screen.append(controller.trtcElement);
    root.dataset.video = hasVideo ? "true" : "false";
    refresh(); // on the simulator, its real video replaces the drawn face
  }

  function refreshDevices() {
    const list = model.get("mic_devices") || [];
    const chosen = model.get("mic_device") || "";
    const key = JSON.stringify(list);
    if (devices.dataset.key !== key) {
      devices.dataset.key = key;
      devices.replaceChildren(...list.map((d) => {
        const option = element("option", "", d.label || d.id);
        option.value = d.id;
        return option;
      }));
    }
    if (chosen && devices.value !== chosen) devices.value = chosen;
    devices.hidden = list.length === 0;
  }

  function refresh() {
    const simulated = Boolean(model.get("simulated"));
    const connection = model.get("connection_state") || "idle";
    const speaking = Boolean(model.get("speaking"));
    const live = connection === "connected" || connection === "reconnecting";
    root.dataset.state = connection;
    root.dataset.speaking = speaking ? "true" : "false";
    root.dataset.provider = model.get("provider") || "";
    root.dataset.simulated = simulated ? "true" : "false";
    state.textContent = STATE_TEXT[connection] || connection;
    providerLabel.textContent = simulated
      ? model.get("note") || "simulated avatar"
      : model.get("provider") ? `via ${model.get("provider")}` : "no session";
    join.hidden = simulated || live || connection === "loading-sdk" || connection === "joining";
    join.disabled = !model.get("provider");
    join.textContent = connection === "failed" || connection === "left" ? "Join again" : "Join";
    leave.hidden = simulated || !live;
    // The simulator's WebRTC media (when the media extra is installed) shows its real video instead of the face.
    const simVideo = simulated && Boolean(controller?.sim && controller.mediaStream?.getVideoTracks().length);
    root.dataset.simMedia = simVideo ? "true" : "false";
    canvas.hidden = !simulated || simVideo;
    video.hidden = simulated && !simVideo;
    overlay.textContent = simulated || connection === "connected" ? "" : STATE_TEXT[connection] || connection;
    startAudio.hidden = !model.get("audio_blocked");
    const mic = model.get("mic_state") || "off";
    root.dataset.mic = mic;
    micBar.hidden = simulated ? !simVideo : !live; // on the simulator: once its media are on
    micButton.textContent = mic === "off" || mic === "failed" ? "🎤 Microphone" : "🎤 Stop microphone";
    micButton.disabled = mic === "starting";
    muteButton.hidden = mic !== "on" && mic !== "muted";
    muteButton.textContent = mic === "muted" ? "Unmute" : "Mute";
    meter.hidden = mic !== "on" && mic !== "muted";
    refreshDevices();
    notice.textContent = model.get("notice") || "";
    const stats = model.get("network") || {};
    const parts = [];
    if (stats.rtt_ms !== undefined) parts.push(`rtt ${Math.round(stats.rtt_ms)} ms`);
    const loss = stats.video_loss_pct ?? stats.loss_pct ?? stats.audio_loss_pct;
    if (loss !== undefined) parts.push(`loss ${loss.toFixed(1)} %`);
    const kbps = stats.video_kbps ?? stats.recv_kbps;
    if (kbps !== undefined) parts.push(`${Math.round(kbps)} kbit/s`);
    if (stats.fps !== undefined) parts.push(`${Math.round(stats.fps)} fps`);
    const jitter = stats.audio_jitter_buffer_ms ?? stats.audio_delay_ms;
    if (jitter !== undefined) parts.push(`jitter buffer ${Math.round(jitter)} ms`);
    network.textContent = live && parts.length ? `network: ${parts.join(" · ")}` : "";
    const spoken = model.get("user_turn") || {};
    const seconds = (ms) => `${(ms / 1000).toFixed(2)} s`;
    const steps = [];
    if (typeof spoken.first_reply_ms === "number") steps.push(`reply ${seconds(spoken.first_reply_ms)}`);
    if (typeof spoken.audio_start_ms === "number") steps.push(`audio_start ${seconds(spoken.audio_start_ms)}`);
    if (typeof spoken.heard_ms === "number") steps.push(`heard ${seconds(spoken.heard_ms)}`);
    turn.textContent = steps.length ? `your last turn: ${steps.join(" · ")} after your words` : "";
    turn.hidden = !steps.length;
    caption.textContent = model.get("caption") || "";
    const message = model.get("error") || "";
    error.hidden = !message;
    error.textContent = message ? `${model.get("error_kind") || "error"}: ${message}` : "";
    refreshBackground();
  }

  join.addEventListener("click", () => {
    // Inside the click: this is the user gesture that lets the avatar's audio play with sound.
    play();
    controller?.join();
  });
  leave.addEventListener("click", () => controller?.leave("Leave was clicked"));
  // (a <video> without a source yet has nothing to play: only the SDK's own resume then)
  startAudio.addEventListener("click", () => controller?.startAudio(() => (video.srcObject ? video.play() : null)));
  micButton.addEventListener("click", () => {
    const mic = model.get("mic_state") || "off";
    if (mic === "off" || mic === "failed") controller?.startMic(devices.value);
    else controller?.stopMic();
  });
  muteButton.addEventListener("click", () => controller?.muteMic(model.get("mic_state") !== "muted"));
  devices.addEventListener("change", () => controller?.switchMic(devices.value));

  const names = ["simulated", "connection_state", "speaking", "provider", "caption", "error", "error_kind",
    "background_url", "note", "notice", "audio_blocked", "mic_state", "mic_devices", "mic_device", "network", "user_turn"];
  for (const name of names) model.on(`change:${name}`, refresh);
  controller?.views.add(refreshVideo);
  controller?.videos.add(video);
  refresh();
  refreshVideo();

  // The simulated face is drawn only while it is shown, at the display's frame rate; the level meter too.
  let frame = 0;
  const ctx = canvas.getContext("2d");
  const tick = (time) => {
    if (model.get("simulated") && ctx) drawFace(ctx, canvas.width, canvas.height, time, Boolean(model.get("speaking")), background);
    if (!meter.hidden) meter.value = controller?.micLevel() ?? 0;
    frame = requestAnimationFrame(tick);
  };
  frame = requestAnimationFrame(tick);

  return () => {
    cancelAnimationFrame(frame);
    for (const name of names) model.off(`change:${name}`, refresh);
    controller?.views.delete(refreshVideo);
    controller?.videos.delete(video);
    for (const track of attached) track.detach(video);
  };
}

export default { initialize, render };
