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

// ------------------------------------------------------------------------------------------------ helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Never show a secret in the widget or send it back to Python: keep at most its last four characters.
function scrub(text, secrets) {
  let out = String(text ?? "");
  for (const secret of secrets) {
    if (secret && String(secret).length > 0) out = out.split(String(secret)).join(`…${String(secret).slice(-4)}`);
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
  const code = error.code ? `${error.code}: ` : "";
  return `${code}${error.message || String(error)}`;
}

// An SDK module may export its entry point as `default`, as a named export, or (UMD builds) only as a global.
function pickExport(module, name, looksRight) {
  for (const candidate of [module?.default, module?.[name], module, globalThis[name]]) {
    if (candidate && looksRight(candidate)) return candidate;
  }
  throw new Error(`the module has no usable ${name} export`);
}

class StageFailure extends Error {
  constructor(kind, message) {
    super(message);
    this.kind = kind;
  }
}

// ------------------------------------------------------------------------------------------------ providers

// Each provider joins its room and returns {send(bytes) -> Promise, leave() -> Promise}. `hooks` carries
// onMessage(bytes), onTrack(kind, mediaStreamTrack), onTrackEnded(kind), onFailure(kind, message), trtcView().
const PROVIDERS = {
  agora: {
    label: "Agora",
    async join(sdk, c, hooks) {
      const AgoraRTC = pickExport(sdk, "AgoraRTC", (m) => typeof m.createClient === "function");
      const client = AgoraRTC.createClient({ mode: "rtc", codec: "vp8" });
      let leaving = false;
      // Handlers first: the avatar may publish and talk the moment we are in.
      client.on("user-published", async (user, mediaType) => {
        if (mediaType !== "video" && mediaType !== "audio") return; // "datachannel" needs no subscription
        await client.subscribe(user, mediaType);
        const track = mediaType === "video" ? user.videoTrack : user.audioTrack;
        if (track) hooks.onTrack(mediaType, track.getMediaStreamTrack());
      });
      client.on("user-unpublished", (_user, mediaType) => hooks.onTrackEnded(mediaType));
      client.on("user-left", (user, reason) => {
        if (!leaving) hooks.onFailure("avatar-left", `user ${user?.uid} left the channel (${reason || "quit"})`);
      });
      client.on("stream-message", (_uid, bytes) => hooks.onMessage(bytes));
      client.on("token-privilege-did-expire", () => hooks.onFailure("token-expired", "token-privilege-did-expire"));
      client.on("connection-state-change", (current, previous, reason) => {
        if (current === "DISCONNECTED" && !leaving) {
          hooks.onFailure("disconnected", `connection ${previous} -> ${current} (${reason || "no reason given"})`);
        }
      });
      await client.join(c.app_id, c.channel, c.token || null, c.uid ?? null);
      return {
        // Agora's sendStreamMessage exists at run time but not in its typings; `false`: not a retransmission.
        send: (bytes) => client.sendStreamMessage(bytes, false),
        leave: async () => {
          leaving = true;
          await client.leave();
        },
      };
    },
  },

  livekit: {
    label: "LiveKit",
    async join(sdk, c, hooks) {
      const Room = pickExport(sdk, "Room", (m) => typeof m === "function");
      const RoomEvent = sdk.RoomEvent || sdk.default?.RoomEvent;
      const room = new Room({ adaptiveStream: true, dynacast: true });
      let leaving = false;
      const isAvatar = (participant) => !c.server_identity || !participant || participant.identity === c.server_identity;
      room.on(RoomEvent.TrackSubscribed, (track) => hooks.onTrack(track.kind, track.mediaStreamTrack));
      room.on(RoomEvent.TrackUnsubscribed, (track) => hooks.onTrackEnded(track.kind));
      room.on(RoomEvent.DataReceived, (payload, participant) => {
        if (isAvatar(participant)) hooks.onMessage(payload);
      });
      room.on(RoomEvent.ParticipantDisconnected, (participant) => {
        if (!leaving && isAvatar(participant)) {
          hooks.onFailure("avatar-left", `participant ${participant?.identity} disconnected`);
        }
      });
      room.on(RoomEvent.Disconnected, (reason) => {
        if (!leaving) hooks.onFailure("disconnected", `left the room (reason ${reason ?? "unknown"})`);
      });
      await room.connect(c.url, c.token, { autoSubscribe: true });
      return {
        send: (bytes) => room.localParticipant.publishData(bytes, { reliable: true }),
        leave: async () => {
          leaving = true;
          await room.disconnect();
        },
      };
    },
  },

  trtc: {
    label: "TRTC",
    async join(sdk, c, hooks) {
      const TRTC = pickExport(sdk, "TRTC", (m) => typeof m.create === "function");
      const trtc = TRTC.create();
      const E = TRTC.EVENT;
      let leaving = false;
      // TRTC draws remote video into an element of its own choosing; remote audio plays by itself.
      trtc.on(E.REMOTE_VIDEO_AVAILABLE, ({ userId, streamType }) => {
        trtc.startRemoteVideo({ userId, streamType, view: hooks.trtcView() });
      });
      trtc.on(E.CUSTOM_MESSAGE, (event) => hooks.onMessage(new Uint8Array(event.data)));
      trtc.on(E.REMOTE_USER_EXIT, ({ userId }) => {
        if (!leaving) hooks.onFailure("avatar-left", `user ${userId} left the room`);
      });
      trtc.on(E.KICKED_OUT, ({ reason }) => {
        const kind = /expire/i.test(String(reason)) ? "token-expired" : "disconnected";
        hooks.onFailure(kind, `kicked out of the room (${reason})`);
      });
      await trtc.enterRoom({
        sdkAppId: Number(c.sdk_app_id),
        strRoomId: String(c.room_id),
        userId: c.user_id,
        userSig: c.user_sig,
      });
      return {
        send: (bytes) =>
          trtc.sendCustomMessage({
            cmdId: 1,
            data: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
          }),
        leave: async () => {
          leaving = true;
          await trtc.exitRoom();
          trtc.destroy();
        },
      };
    },
  },
};

// ------------------------------------------------------------------------------------------------ the controller

// One per widget model per page: the room, the send queue and pacer, the received-frame batches.
class StageController {
  constructor(model) {
    this.model = model;
    this.page = pageId();
    this.room = null; // {send, leave} once joined
    this.joining = false;
    this.attempt = 0; // each Join click is one attempt
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
    this.trtcElement = null;
    this.views = new Set(); // callbacks that refresh each view's <video>
    this.captionMid = null;
    this.onCustom = (content, buffers) => this.handle(content || {}, buffers || []);
    model.on("msg:custom", this.onCustom);
  }

  dispose() {
    this.model.off("msg:custom", this.onCustom);
    if (this.room) this.leave("the widget was removed", { tell: false });
  }

  set(changes) {
    for (const [key, value] of Object.entries(changes)) this.model.set(key, value);
    this.model.save_changes();
  }

  // -- messages from Python

  handle(content, buffers) {
    if (content.page_id && content.page_id !== this.page) return; // meant for another tab
    if (content.type === "credentials" && this.credentialsWaiter) {
      this.credentialsWaiter(content);
    } else if (content.type === "send") {
      this.enqueue(content.seq, buffers[0]);
    } else if (content.type === "leave") {
      this.leave("closed from Python", { tell: false });
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
    const provider = this.model.get("provider");
    const adapter = PROVIDERS[provider];
    try {
      if (!adapter) throw new StageFailure("join-refused", `no browser support for the provider ${provider || "(none)"}`);
      this.set({ connection_state: "loading-sdk", error: "", error_kind: "", caption: "" });
      const url = (this.model.get("sdk_urls") || {})[provider];
      this.set({ sdk_url_tried: url || "" });
      let sdk;
      try {
        sdk = await import(/* webpackIgnore: true */ url);
      } catch (error) {
        throw new StageFailure("sdk-load", `could not load the ${adapter.label} SDK from ${url}: ${errorText(error)}`);
      }
      this.set({ connection_state: "joining" });
      const message = await this.requestCredentials();
      const credentials = message.credentials || {};
      this.secrets = [credentials.token, credentials.user_sig].filter(Boolean);
      this.pacer = new Pacer(this.model.get("budget"));
      const hooks = {
        onMessage: (bytes) => current() && this.received(bytes),
        onTrack: (kind, track) => current() && this.addTrack(kind, track),
        onTrackEnded: (kind) => current() && this.removeTracks(kind),
        onFailure: (kind, text) => current() && this.fail(kind, text),
        trtcView: () => this.trtcView(),
      };
      try {
        this.room = await adapter.join(sdk, credentials, hooks);
      } catch (error) {
        if (error instanceof StageFailure) throw error;
        throw new StageFailure("join-refused", `${adapter.label} refused the join: ${errorText(error)}`);
      }
      this.set({ connection_state: "connected", page_id: this.page });
      this.model.send({ type: "joined", page_id: this.page, provider });
      this.pump();
    } catch (error) {
      const failure = error instanceof StageFailure ? error : new StageFailure("join-refused", errorText(error));
      this.fail(failure.kind, failure.message);
    } finally {
      this.joining = false;
    }
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

  async leave(reason, { tell = true } = {}) {
    this.ended = true;
    const room = this.room;
    this.room = null;
    this.failQueued("the stage left the room");
    this.flush();
    this.set({ connection_state: "left", speaking: false });
    if (tell) this.model.send({ type: "left", page_id: this.page, reason });
    if (room) {
      try {
        await room.leave();
      } catch (error) {
        console.warn("akool_lab stage: leaving the room failed", error);
      }
    }
    this.clearTracks();
  }

  fail(kind, text) {
    this.ended = true;
    const message = scrub(text, this.secrets);
    console.warn(`akool_lab stage: ${kind}: ${message}`);
    const room = this.room;
    this.room = null;
    this.failQueued(message);
    this.flush();
    this.set({ connection_state: "failed", error: message, error_kind: kind, speaking: false });
    this.model.send({ type: "failed", page_id: this.page, kind, message });
    if (room) room.leave().catch(() => {});
  }

  // -- media

  addTrack(kind, track) {
    if (!this.mediaStream || !track) return;
    this.removeTracks(kind);
    this.mediaStream.addTrack(track);
    for (const refresh of this.views) refresh();
  }

  removeTracks(kind) {
    if (!this.mediaStream) return;
    for (const track of this.mediaStream.getTracks()) if (track.kind === kind) this.mediaStream.removeTrack(track);
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
          await this.room.send(item.bytes);
          this.acks.push([item.seq, t]);
          this.scheduleFlush();
        } catch (error) {
          this.model.send({ type: "send-failed", page_id: this.page, seq: item.seq, error: errorText(error) });
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

  received(bytes) {
    const t = performance.now();
    const copy = bytes instanceof Uint8Array ? bytes.slice() : new Uint8Array(bytes);
    this.frames.t.push(t);
    this.frames.buffers.push(copy);
    this.scheduleFlush();
    this.watch(copy);
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
  }

  // The speaking light and captions follow the avatar's own messages (AKOOL_API.md 5.4, 5.6).
  watch(bytes) {
    let message;
    try {
      message = JSON.parse(new TextDecoder().decode(bytes));
    } catch {
      return; // not JSON: nothing to show
    }
    if (!message || message.v !== 2) return;
    const pld = message.pld || {};
    if (message.type === "event" && pld.event === "audio_start") this.set({ speaking: true });
    else if (message.type === "event" && pld.event === "audio_end") this.set({ speaking: false });
    else if (message.type === "chat" && pld.from === "bot" && typeof pld.text === "string") {
      const previous = this.captionMid === message.mid ? this.model.get("caption") : "";
      this.captionMid = message.mid;
      this.set({ caption: tail(previous + pld.text) });
    }
  }
}

const controllers = new Map(); // stage id -> StageController (one per model in this page)

// ------------------------------------------------------------------------------------------------ the view

const STATE_TEXT = {
  idle: "not joined",
  "loading-sdk": "loading the SDK…",
  joining: "joining…",
  connected: "connected",
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
  screen.append(video, canvas, overlay);
  const bar = element("div", "akool-stage__bar");
  const join = element("button", "akool-stage__join", "Join");
  join.type = "button";
  const leave = element("button", "akool-stage__leave", "Leave");
  leave.type = "button";
  const state = element("span", "akool-stage__state");
  const speakingLight = element("span", "akool-stage__speaking", "● speaking");
  const providerLabel = element("span", "akool-stage__provider");
  bar.append(join, leave, state, speakingLight, providerLabel);
  const caption = element("div", "akool-stage__caption");
  const error = element("div", "akool-stage__error");
  root.append(screen, bar, caption, error);
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

  function refreshVideo() {
    const stream = controller?.mediaStream;
    const hasVideo = Boolean(stream && stream.getTracks().length);
    if (hasVideo && video.srcObject !== stream) video.srcObject = stream;
    if (hasVideo) video.play().catch(() => {}); // allowed: Join was a click on this page
    if (controller?.trtcElement && controller.trtcElement.parentNode !== screen) screen.append(controller.trtcElement);
    root.dataset.video = hasVideo ? "true" : "false";
  }

  function refresh() {
    const simulated = Boolean(model.get("simulated"));
    const connection = model.get("connection_state") || "idle";
    const speaking = Boolean(model.get("speaking"));
    root.dataset.state = connection;
    root.dataset.speaking = speaking ? "true" : "false";
    root.dataset.provider = model.get("provider") || "";
    root.dataset.simulated = simulated ? "true" : "false";
    state.textContent = STATE_TEXT[connection] || connection;
    providerLabel.textContent = simulated
      ? model.get("note") || "simulated avatar"
      : model.get("provider") ? `via ${model.get("provider")}` : "no session";
    join.hidden = simulated || connection === "connected" || connection === "loading-sdk" || connection === "joining";
    join.disabled = !model.get("provider");
    join.textContent = connection === "failed" || connection === "left" ? "Join again" : "Join";
    leave.hidden = simulated || connection !== "connected";
    canvas.hidden = !simulated;
    video.hidden = simulated;
    overlay.textContent = simulated || connection === "connected" ? "" : STATE_TEXT[connection] || connection;
    caption.textContent = model.get("caption") || "";
    const message = model.get("error") || "";
    error.hidden = !message;
    error.textContent = message ? `${model.get("error_kind") || "error"}: ${message}` : "";
    refreshBackground();
  }

  join.addEventListener("click", () => {
    // Inside the click: this is the user gesture that lets the avatar's audio play with sound.
    video.play().catch(() => {});
    controller?.join();
  });
  leave.addEventListener("click", () => controller?.leave("Leave was clicked"));

  const names = ["simulated", "connection_state", "speaking", "provider", "caption", "error", "error_kind", "background_url", "note"];
  for (const name of names) model.on(`change:${name}`, refresh);
  controller?.views.add(refreshVideo);
  refresh();
  refreshVideo();

  // The simulated face is drawn only while it is shown, at the display's frame rate.
  let frame = 0;
  const ctx = canvas.getContext("2d");
  const tick = (time) => {
    if (model.get("simulated") && ctx) drawFace(ctx, canvas.width, canvas.height, time, Boolean(model.get("speaking")), background);
    frame = requestAnimationFrame(tick);
  };
  frame = requestAnimationFrame(tick);

  return () => {
    cancelAnimationFrame(frame);
    for (const name of names) model.off(`change:${name}`, refresh);
    controller?.views.delete(refreshVideo);
  };
}

export default { initialize, render };
