// The real trtc-sdk-v5 module, with a handle on each TRTC instance the stage creates (window.__clients). With
// window.__stubNetwork set, only what needs Tencent's servers is replaced by recorders (window.__calls):
// enterRoom (which then marks the room joined) and the custom-message transport behind sendCustomMessage, so
// sendCustomMessage itself, its checks and its send limiter are the SDK's own.
import TRTC from "/sdk/trtc-sdk-v5.mjs";

const clients = (globalThis.__clients = globalThis.__clients || []);
const calls = (globalThis.__calls = globalThis.__calls || []);
const record = (fn, args) => calls.push({ fn, args, t: performance.now() });

// Stubs the network of one TRTC instance (also used on instances the tests create themselves).
export function stubNetwork(trtc) {
  trtc.enterRoom = async (options) => {
    record("enterRoom", [{ ...options, userSig: options.userSig }]);
    trtc._room.state = "joined";
  };
  trtc.exitRoom = async () => record("exitRoom", []);
  trtc._room._customMessageManager = {
    send: (message) => record("customMessage", [message.cmdId, message.data.byteLength]),
  };
  return trtc;
}

function create(options) {
  const trtc = TRTC.create(options);
  clients.push(trtc);
  if (globalThis.__stubNetwork) stubNetwork(trtc);
  return trtc;
}

export default new Proxy(TRTC, {
  get(target, key) {
    if (key === "create") return create;
    const value = Reflect.get(target, key);
    return typeof value === "function" ? value.bind(target) : value;
  },
});
