// A stand-in for the livekit-client ES module, served from loopback in the browser tests in place of the CDN.
// It records every call on window.__livekitCalls; window.__livekitStandin.emitData(text, identity) plays the avatar.

const calls = (globalThis.__livekitCalls = globalThis.__livekitCalls || []);
const rooms = (globalThis.__livekitRooms = globalThis.__livekitRooms || []);
const record = (fn, args, extra = {}) => calls.push({ fn, args, t: performance.now(), ...extra });

export const RoomEvent = {
  TrackSubscribed: "trackSubscribed",
  TrackUnsubscribed: "trackUnsubscribed",
  DataReceived: "dataReceived",
  ParticipantDisconnected: "participantDisconnected",
  Disconnected: "disconnected",
};

function fakeVideoTrack() {
  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = 240;
  const ctx = canvas.getContext("2d");
  ctx.fillStyle = "#3a0ca3";
  ctx.fillRect(0, 0, 320, 240);
  ctx.fillStyle = "#fff";
  ctx.font = "20px sans-serif";
  ctx.fillText("LiveKit stand-in", 12, 28);
  return canvas.captureStream(5).getVideoTracks()[0];
}

export class Room {
  constructor(options) {
    record("Room", [options]);
    this.handlers = {};
    this.localParticipant = {
      publishData: async (bytes, options) => {
        record("publishData", [new TextDecoder().decode(bytes), options], { bytes: bytes.byteLength });
      },
    };
    rooms.push(this);
  }
  on(event, handler) {
    (this.handlers[event] = this.handlers[event] || []).push(handler);
    return this;
  }
  emit(event, ...args) {
    for (const handler of this.handlers[event] || []) handler(...args);
  }
  async connect(url, token, options) {
    record("connect", [url, token, options]);
    const avatar = { identity: globalThis.__livekitAvatarIdentity || "avatar-1" };
    const track = { kind: "video", mediaStreamTrack: fakeVideoTrack() };
    setTimeout(() => this.emit(RoomEvent.TrackSubscribed, track, {}, avatar), 50);
  }
  async disconnect() {
    record("disconnect", []);
  }
}

globalThis.__livekitStandin = {
  emitData(text, identity = "avatar-1") {
    const bytes = new TextEncoder().encode(text);
    const t = performance.now();
    for (const room of rooms) room.emit(RoomEvent.DataReceived, bytes, { identity });
    return t;
  },
  emit(event, ...args) {
    for (const room of rooms) room.emit(event, ...args);
  },
};
