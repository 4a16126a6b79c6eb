// The real agora-rtc-sdk-ng module, with a handle on each client the stage creates (window.__clients). With
// window.__stubNetwork set, only the calls that need Agora's servers are replaced by recorders (window.__calls):
// join, publish, unpublish, leave, the gateway request that carries a data-stream message (sendStreamMessage
// itself, with its checks, is the SDK's), and subscribe (with window.__stubSubscribe, or window.__remoteMedia).
import AgoraRTC from "/sdk/agora-rtc-sdk-ng.mjs";

const clients = (globalThis.__clients = globalThis.__clients || []);
const calls = (globalThis.__calls = globalThis.__calls || []);
const record = (fn, args) => calls.push({ fn, args, t: performance.now() });

function createClient(config) {
  const client = AgoraRTC.createClient(config);
  clients.push(client);
  if (globalThis.__stubNetwork) {
    client.join = async (appId, channel, token, uid) => {
      record("join", [appId, channel, token, uid]);
      return uid;
    };
    client.publish = async (tracks) => {
      const list = Array.isArray(tracks) ? tracks : [tracks];
      record("publish", list.map((t) => ({ kind: t.trackMediaType, local: typeof t.setMuted === "function", id: t.getTrackId() })));
    };
    client.unpublish = async (tracks) => record("unpublish", (Array.isArray(tracks) ? tracks : [tracks]).map((t) => t.getTrackId()));
    client.leave = async () => record("leave", []);
    // sendStreamMessage refuses to send before the gateway's join answered (it keeps the answer as _joinInfo):
    // the stubbed join got none, so the call sees a stand-in for the length of its synchronous checks, and the
    // gateway request at its end (the network) is recorded.
    const sendStreamMessage = client.sendStreamMessage;
    client.sendStreamMessage = function (...args) {
      const joinInfo = this._joinInfo;
      this._joinInfo = joinInfo || { sid: "spy-session" };
      try {
        return sendStreamMessage.apply(this, args);
      } finally {
        this._joinInfo = joinInfo;
      }
    };
    client._gateway.signal.request = async (type, message) =>
      record("signal", [type, message?.payload ? atob(message.payload).length : null]);
  }
  if (globalThis.__stubSubscribe || globalThis.__remoteMedia) {
    // For a remote user the test makes up: the real subscribe refuses users it never saw join. With
    // window.__remoteMedia ({uid: {audio, video}}: tracks the test made with the SDK's createCustom*Track), the
    // subscribed user gets them where the real subscribe puts the track it received (the SDK's remote user keeps
    // it in _audioTrack/_videoTrack behind its audioTrack/videoTrack getters).
    client.subscribe = async (user, mediaType) => {
      record("subscribe", [user.uid, mediaType]);
      const track = globalThis.__remoteMedia?.[user.uid]?.[mediaType];
      if (track) user[`_${mediaType}Track` in user ? `_${mediaType}Track` : `${mediaType}Track`] = track;
      return track;
    };
  }
  return client;
}

// The module's default export, with createClient spied on; every other property is the real SDK's.
export default new Proxy(AgoraRTC, {
  get(target, key) {
    if (key === "createClient") return createClient;
    const value = Reflect.get(target, key);
    return typeof value === "function" ? value.bind(target) : value;
  },
});
