// The real agora-rtc-sdk-ng module, with a handle on each client the stage creates (window.__clients). With
// window.__stubNetwork set, only the calls that need Agora's servers are replaced by recorders (window.__calls):
// join, publish, unpublish, leave.
import AgoraRTC from "/sdk/agora-rtc-sdk-ng.mjs";

const clients = (globalThis.__clients = globalThis.__clients || []);
const calls = (globalThis.__calls = globalThis.__calls || []);
const record = (fn, args) => calls.push({ fn, args, t: performance.now() });

function createClient(config) {
  const client = AgoraRTC.createClient(config);
  clients.push(client);
  if (globalThis.__stubNetwork) {
    client.join = async (appId, channel, token, uid) => {
      record("join", [appId, channel, token ? "<token>" : null, uid]);
      return uid;
    };
    client.publish = async (tracks) => {
      const list = Array.isArray(tracks) ? tracks : [tracks];
      record("publish", list.map((t) => ({ kind: t.trackMediaType, local: typeof t.setMuted === "function", id: t.getTrackId() })));
    };
    client.unpublish = async (tracks) => record("unpublish", (Array.isArray(tracks) ? tracks : [tracks]).map((t) => t.getTrackId()));
    client.leave = async () => record("leave", []);
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
