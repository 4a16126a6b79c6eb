// The avatar's media for the perceived-timing tests: a real WebRTC call inside the page (two RTCPeerConnections on
// loopback), so each received track has a real RTCRtpReceiver, a jitter buffer and a decoder behind it.
//
// The audio is an oscillator behind a gain held at 0 (silence, as an avatar that does not speak yet sends); tone()
// opens the gain at a chosen performance.now() for a while: its first sample's time on the page's clock is the
// truth the stage's onset detector is held against. The video is a canvas whose colour changes every frame.
import { contextTimeToPerformance, performanceToContextTime } from "/widget.mjs";

// The stream id of each m-section's track (a=msid, and the legacy a=ssrc ... msid: line), by kind.
function withStreamIds(sdp, ids) {
  return sdp
    .split(/(?=^m=)/m)
    .map((section) => {
      const id = ids[section.slice(2, 7).trim()];
      if (!section.startsWith("m=") || !id) return section;
      return section.replace(/^(a=msid:)\S+/gm, `$1${id}`).replace(/^(a=ssrc:\d+ msid:)\S+/gm, `$1${id}`);
    })
    .join("");
}

async function connect(sender, receiver, count, streamIds) {
  sender.onicecandidate = (e) => e.candidate && receiver.addIceCandidate(e.candidate);
  receiver.onicecandidate = (e) => e.candidate && sender.addIceCandidate(e.candidate);
  const received = {};
  const all = new Promise((resolve) => {
    receiver.ontrack = (event) => {
      const { track, receiver: rtpReceiver, transceiver, streams } = event;
      received[track.kind] = { track, receiver: rtpReceiver, transceiver, stream: streams[0] };
      if (Object.keys(received).length === count) resolve();
    };
  });
  await sender.setLocalDescription(await sender.createOffer());
  const offer = sender.localDescription;
  await receiver.setRemoteDescription({ type: offer.type, sdp: withStreamIds(offer.sdp, streamIds || {}) });
  await receiver.setLocalDescription(await receiver.createAnswer());
  await sender.setRemoteDescription(receiver.localDescription);
  await all;
  return received;
}

// `streamIds`: {audio, video} ids of the streams the receiver sees (as a server names them), else the sender's.
export async function avatarMedia({ frequency = 330, streamIds = null } = {}) {
  const context = new AudioContext({ latencyHint: "interactive" });
  await context.resume();
  const destination = context.createMediaStreamDestination();
  const oscillator = context.createOscillator();
  oscillator.frequency.value = frequency;
  const gain = context.createGain();
  gain.gain.value = 0;
  oscillator.connect(gain).connect(destination);
  oscillator.start();

  const canvas = document.createElement("canvas");
  canvas.width = 320;
  canvas.height = 240;
  const paint = canvas.getContext("2d");
  let frame = 0;
  const painter = setInterval(() => {
    frame += 1;
    paint.fillStyle = `hsl(${(frame * 37) % 360}, 60%, 50%)`;
    paint.fillRect(0, 0, 320, 240);
  }, 40);

  const sender = new RTCPeerConnection();
  const receiver = new RTCPeerConnection();
  const audioTrack = destination.stream.getAudioTracks()[0];
  sender.addTrack(audioTrack, new MediaStream([audioTrack]));
  const videoTrack = canvas.captureStream(25).getVideoTracks()[0];
  sender.addTrack(videoTrack, new MediaStream([videoTrack]));
  const received = await connect(sender, receiver, 2, streamIds);
  const tones = [];
  return {
    audio: received.audio,
    video: received.video,
    peers: [sender, receiver],
    tones,
    // A tone from `at` (performance.now(), in the future) for `ms`: returns its first sample's time on the page's
    // clock (when this context plays it out; the receiving context reports its onsets the same way).
    tone(at, ms, level = 0.3) {
      const start = performanceToContextTime(context, at);
      if (start <= context.currentTime) throw new Error("tone(): the start is not in the future");
      gain.gain.setValueAtTime(level, start);
      gain.gain.setValueAtTime(0, start + ms / 1000);
      const truth = contextTimeToPerformance(context, start);
      tones.push({ at: truth, ms });
      return truth;
    },
    // The video stops coming (the sender sends no frame) until resumeVideo().
    pauseVideo() {
      return sender.getSenders().find((s) => s.track?.kind === "video").replaceTrack(null);
    },
    resumeVideo() {
      const video = sender.getSenders().find((s) => !s.track || s.track.kind === "video");
      return video.replaceTrack(videoTrack);
    },
    close() {
      clearInterval(painter);
      sender.close();
      receiver.close();
      return context.close();
    },
  };
}
