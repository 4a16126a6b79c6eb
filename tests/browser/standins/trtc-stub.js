// A stand-in for the TRTC web SDK (trtc-sdk-v5) ES module, served from loopback in the browser tests.
// It records every call on window.__trtcCalls; window.__trtcStandin.emitCustomMessage(text) plays the avatar.

const calls = (globalThis.__trtcCalls = globalThis.__trtcCalls || []);
const instances = (globalThis.__trtcInstances = globalThis.__trtcInstances || []);
const record = (fn, args, extra = {}) => calls.push({ fn, args, t: performance.now(), ...extra });

const EVENT = {
  REMOTE_VIDEO_AVAILABLE: "remote-video-available",
  CUSTOM_MESSAGE: "custom-message",
  REMOTE_USER_EXIT: "remote-user-exit",
  KICKED_OUT: "kicked-out",
};

class Trtc {
  constructor() {
    this.handlers = {};
    instances.push(this);
  }
  on(event, handler) {
    (this.handlers[event] = this.handlers[event] || []).push(handler);
  }
  emit(event, ...args) {
    for (const handler of this.handlers[event] || []) handler(...args);
  }
  async enterRoom(options) {
    record("enterRoom", [options]);
    setTimeout(() => this.emit(EVENT.REMOTE_VIDEO_AVAILABLE, { userId: "avatar", streamType: "main" }), 50);
  }
  async startRemoteVideo({ userId, streamType, view }) {
    record("startRemoteVideo", [userId, streamType, view instanceof HTMLElement]);
  }
  async sendCustomMessage({ cmdId, data }) {
    const isArrayBuffer = data instanceof ArrayBuffer;
    record("sendCustomMessage", [cmdId, new TextDecoder().decode(data), isArrayBuffer], { bytes: data.byteLength });
  }
  async exitRoom() {
    record("exitRoom", []);
  }
  destroy() {
    record("destroy", []);
  }
}

const TRTC = {
  EVENT,
  create() {
    record("create", []);
    return new Trtc();
  },
};

globalThis.__trtcStandin = {
  emitCustomMessage(text) {
    const data = new TextEncoder().encode(text).buffer;
    const t = performance.now();
    for (const trtc of instances) trtc.emit(EVENT.CUSTOM_MESSAGE, { userId: "avatar", cmdId: 1, seq: 1, data });
    return t;
  },
};

export default TRTC;
