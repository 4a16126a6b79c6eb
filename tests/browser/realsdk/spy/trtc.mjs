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

// A remote user publishing audio and main video, as TRTC's server announces it and its media arrive: the room
// gets the server's published-user list (the call its signalling makes, with the listeners its join installs, as
// the stubbed join made none), so the SDK builds its own remote user and tracks and fires its own events; the
// remote user's subscribe (signalling and the SDP exchange with Tencent's server) is replaced by what its peer
// connection then does: each subscribed track gets the received MediaStreamTrack (`media`: {audio, video}).
export function publishRemote(trtc, userId, media) {
  const room = trtc._room;
  const users = room.userManager;
  if (!room.__spyListening) {
    room.__spyListening = true;
    users.on("3", room.createDownlinkConnection, room);
    users.on("5", room.closeDownLinkConnection, room);
    users.on("6", (state) => room.emit("remote-publish-state-changed", { ...state }));
  }
  users.setRemotePublishedUserList([{ userId, tinyId: `tiny-${userId}`, flag: (media.video ? 1 : 0) | (media.audio ? 8 : 0) }]);
  const remote = room.remotePublishedUserMap.get(userId);
  remote.subscribe = async (state, streamType) => {
    record("subscribe", [userId, streamType, { ...state }]);
    const tracks = [state.audio && [remote.remoteAudioTrack, media.audio], state.video && [remote.remoteVideoTrack, media.video]];
    for (const [track, mediaTrack] of tracks.filter((t) => t && t[1])) {
      track.subscribe(Promise.resolve());
      track.setInputMediaStreamTrack(mediaTrack);
    }
  };
  return remote;
}
