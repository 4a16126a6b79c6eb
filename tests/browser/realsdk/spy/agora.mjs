// The real agora-rtc-sdk-ng module, with a handle on each client the stage creates (window.__clients). With
// window.__stubNetwork set, only the calls that need Agora's servers are replaced by recorders (window.__calls):
// join, publish, unpublish, leave (and subscribe, with window.__stubSubscribe).
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
  }
  if (globalThis.__stubSubscribe) {
    // For a remote user the test makes up: the real subscribe refuses users it never saw join.
    client.subscribe = async (user, mediaType) => record("subscribe", [user.uid, mediaType]);
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
