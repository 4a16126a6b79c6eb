// The real livekit-client module, with a handle on each Room the stage creates (window.__clients). With
// window.__stubNetwork set, only the calls that need a LiveKit server are replaced by recorders (window.__calls):
// connect, disconnect and publishing a local track.
import * as LiveKit from "/sdk/livekit-client.mjs";

export * from "/sdk/livekit-client.mjs";

const clients = (globalThis.__clients = globalThis.__clients || []);
const calls = (globalThis.__calls = globalThis.__calls || []);
const record = (fn, args) => calls.push({ fn, args, t: performance.now() });

export class Room extends LiveKit.Room {
  constructor(options) {
    super(options);
    clients.push(this);
    if (globalThis.__stubNetwork) {
      this.connect = async (url, token, opts) => {
        record("connect", [url, token, opts]);
      };
      this.disconnect = async () => record("disconnect", []);
      const participant = this.localParticipant;
      participant.publishTrack = async (track, options) => {
        record("publishTrack", [{ kind: track.kind, source: track.source, local: track instanceof LiveKit.LocalAudioTrack }]);
        // What the real publish ends with: the track is the participant's, under its source.
        const publication = new LiveKit.LocalTrackPublication(track.kind, { sid: "TR_local", name: "mic", source: 2 }, track);
        participant.addTrackPublication(publication);
        return publication;
      };
      participant.publishData = async (bytes, options) => record("publishData", [bytes.byteLength, options]);
    }
  }
}

// The avatar's participant publishing audio and video, as LiveKit's server tells the client and its media arrive:
// the room's engine emits the server's ParticipantUpdate (the avatar's ParticipantInfo with its TrackInfos) and then
// each track of the subscriber peer connection (MediaTrackAdded, with the stream id "<participant sid>|<track sid>"
// the server gives it), as the real engine does; the Room builds its RemoteParticipant, publications and remote
// tracks itself and fires TrackSubscribed. `received`: {audio, video} of {track, receiver, stream}.
export function publishRemote(room, { identity, sid, tracks }, received) {
  // Connected, as the real connect() leaves the room (the stubbed one did not): the Room ignores tracks otherwise.
  room.setAndEmitConnectionState(LiveKit.ConnectionState.Connected);
  room.engine.emit("participantUpdate", [
    {
      sid, identity, name: identity, metadata: "", attributes: {}, state: 2 /* ACTIVE */, kind: 0, version: 1,
      joinedAt: 0n, joinedAtMs: 0n, permission: undefined, region: "", isPublisher: true, dataTracks: [],
      tracks: tracks.map(({ sid: trackSid, kind }) => ({
        sid: trackSid, type: kind === "audio" ? 0 : 1, name: kind, muted: false, width: kind === "video" ? 320 : 0,
        height: kind === "video" ? 240 : 0, simulcast: false, source: kind === "audio" ? 2 : 1, layers: [],
        mimeType: kind === "audio" ? "audio/opus" : "video/VP8", mid: "", codecs: [], stereo: false,
        disableDtx: false, encryption: 0, stream: "", version: undefined, audioFeatures: [],
      })),
    },
  ]);  // prettier-ignore
  for (const kind of ["video", "audio"]) {
    const { track, stream, receiver } = received[kind];
    room.engine.emit("mediaTrackAdded", track, stream, receiver);
  }
}

// A data packet from `identity`, as the engine hands the room what its data channel received.
export function receiveData(room, identity, payload) {
  const packet = { participantIdentity: identity, kind: 0 /* RELIABLE */, destinationIdentities: [],
    value: { case: "user", value: { participantIdentity: identity, payload, destinationIdentities: [] } } };  // prettier-ignore
  room.engine.emit("dataPacketReceived", packet, 0 /* no encryption */);
}
