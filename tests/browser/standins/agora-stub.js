// A stand-in for the agora-rtc-sdk-ng ES module, served from loopback in the browser tests in place of the CDN.
// It records every call (with performance.now()) on window.__agoraCalls, and lets the test play the avatar:
// window.__agoraStandin.emitStreamMessage(text) delivers a data-channel message, .emit(event, ...args) any event.

const calls = (globalThis.__agoraCalls = globalThis.__agoraCalls || []);
const clients = (globalThis.__agoraClients = globalThis.__agoraClients || []);
const record = (fn, args, extra = {}) => calls.push({ fn, args, t: performance.now(), ...extra });

// A moving test picture, so the stage's <video> shows something (and the screenshot proves it plays).
function fakeVideoTrack(label) {
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = 240;
  const ctx = canvas.getContext("2d");
  const draw = () => {
    const t = performance.now() / 1000;
    ctx.fillStyle = "#2d6a4f";
    ctx.fillRect(0, 0, 320, 240);
    ctx.fillStyle = "#ffd166";
    ctx.beginPath();
    ctx.arc(160 + 60 * Math.sin(t * 2), 120, 40, 0, 2 * Math.PI);
    ctx.fill();
    ctx.fillStyle = "#fff";
    ctx.font = "20px sans-serif";
    ctx.fillText(label, 12, 28);
    requestAnimationFrame(draw);
  };
  draw();
  return canvas.captureStream(15).getVideoTracks()[0];
}

const AVATAR_UID = 424242;

class Client {
  constructor(config) {
    this.config = config;
    this.handlers = {};
    this.connectionState = "DISCONNECTED";
  }
  on(event, handler) {
    (this.handlers[event] = this.handlers[event] || []).push(handler);
  }
  emit(event, ...args) {
    for (const handler of this.handlers[event] || []) handler(...args);
  }
  async join(appId, channel, token, uid) {
    record("join", [appId, channel, token, uid]);
    if (globalThis.__agoraRefuseJoin) {
      const error = new Error(`invalid token, authorized failed (token ${token})`);
      error.code = "CAN_NOT_GET_GATEWAY_SERVER";
      throw error;
    }
    this.connectionState = "CONNECTED";
    this.uid = uid;
    // The avatar publishes its video shortly after we are in.
    const avatar = { uid: AVATAR_UID, videoTrack: { getMediaStreamTrack: () => fakeVideoTrack("Agora stand-in") } };
    setTimeout(() => this.emit("user-published", avatar, "video"), 50);
    return uid;
  }
  async subscribe(user, mediaType) {
    record("subscribe", [user.uid, mediaType]);
  }
  async sendStreamMessage(bytes, retransmit) {
    record("sendStreamMessage", [new TextDecoder().decode(bytes), retransmit], { bytes: bytes.byteLength });
  }
  // Statistics as the real client reports them (getRTCStats and per-uid remote track stats).
  getRTCStats() {
    return { RTT: 38, RecvBitrate: 850_000, SendBitrate: 12_000, Duration: 3, UserCount: 2 };
  }
  getRemoteVideoStats() {
    return { [AVATAR_UID]: { packetLossRate: 0.4, receiveBitrate: 800_000, renderFrameRate: 25, receiveDelay: 70 } };
  }
  getRemoteAudioStats() {
    return { [AVATAR_UID]: { packetLossRate: 0, receiveBitrate: 48_000, receiveDelay: 55, end2EndDelay: 120 } };
  }
  async leave() {
    record("leave", []);
    this.connectionState = "DISCONNECTED";
  }
}

const AgoraRTC = {
  createClient(config) {
    record("createClient", [config]);
    const client = new Client(config);
    clients.push(client);
    return client;
  },
};

globalThis.__agoraStandin = {
  AVATAR_UID,
  // Returns the performance.now() at which the message was handed to the stage.
  emitStreamMessage(text) {
    const bytes = new TextEncoder().encode(text);
    const t = performance.now();
    for (const client of clients) client.emit("stream-message", AVATAR_UID, bytes);
    return t;
  },
  emit(event, ...args) {
    for (const client of clients) client.emit(event, ...args);
  },
};

export default AgoraRTC;
