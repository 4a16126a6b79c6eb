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
