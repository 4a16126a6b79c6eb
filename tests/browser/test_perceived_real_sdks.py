"""Perceived timings through each provider's real SDK (agora-rtc-sdk-ng 4.24.8, livekit-client 2.23.0, trtc-sdk-v5
5.17.1, bundled and served from loopback: see ``tests/browser/realsdk``).

The stage runs as the widget serves it (perceived.js and stage.js in one module) on the real SDK, joined through
the spy modules, which replace only the calls that need the provider's servers. What the servers would say is fed
in one layer below each SDK's client (its network layer's events), so the client's own handling runs; what the
servers would send as media is a real WebRTC call inside the page (``realsdk/media.mjs``: two RTCPeerConnections on
loopback, so each received track has a real RTCRtpReceiver, jitter buffer and decoder): an oscillator whose gain
opens at a chosen ``performance.now()`` (the truth the onset is held against) and a canvas whose colour changes
every frame.

Real, per provider, and stood in:

* Agora: the gateway's notifications (``on_user_online``, ``on_add_video_stream``, ``on_add_audio_stream``,
  ``on_data_stream``) are emitted on the client's real gateway signal, so the client makes its own remote user and
  fires ``user-published`` and ``stream-message`` itself. Stood in: ``client.subscribe`` (the real one asks the
  gateway and negotiates Agora's peer connection), which gives the user, where the SDK keeps them, tracks the SDK
  made from the received MediaStreamTracks with ``AgoraRTC.createCustomAudioTrack``/``createCustomVideoTrack`` (the
  SDK has no public constructor for its remote tracks, so these are its local track classes), with the loopback's
  transceiver in ``_rtpTransceiver``, the field the real subscribe fills, so that the SDK's
  ``getRTCRtpTransceiver()`` gives the stage a real receiver. Sends go through the real ``sendStreamMessage`` (its
  checks) down to the recorded gateway request.
* LiveKit: everything but the network: the room's engine emits the server's ``ParticipantUpdate`` (the avatar's
  ParticipantInfo and TrackInfos, plain objects in the protocol's shape), each subscriber track (``MediaTrackAdded``,
  with the stream ids the server gives, ``PA_…|TR_…``, written into the loopback's SDP) and each data packet
  (``DataPacketReceived``); the Room builds its own RemoteParticipant, publications, RemoteAudioTrack and
  RemoteVideoTrack (with the real receiver) and fires TrackSubscribed and DataReceived. Sends go through the real
  LocalParticipant down to the recorded ``publishData``. The room is set connected as its connect() leaves it.
* TRTC: the room gets the server's published-user list (``userManager.setRemotePublishedUserList``, with the
  listeners the stubbed ``enterRoom`` would have installed), so the SDK makes its own remote user and tracks, fires
  REMOTE_VIDEO_AVAILABLE/REMOTE_AUDIO_AVAILABLE, auto-receives the audio, and on the stage's ``startRemoteVideo``
  plays the video into its own element and fires AUDIO_PLAY_STATE_CHANGED. Stood in: the remote user's
  ``subscribe`` (signalling and the SDP exchange with Tencent's server), which marks the tracks subscribed and gives
  them the received MediaStreamTracks as its peer connection would. TRTC exposes no receiver: no browser statistics.
  Messages are the room's custom-message events, which the client forwards; sends go through the real
  ``sendCustomMessage`` (its limiter) down to the recorded transport.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.browser.realsdk import page_url
from tests.browser.test_stage_real_sdks import CREDENTIALS, StagePage, real_browser, sdk_base, stage_page

pytestmark = pytest.mark.browser

__all__ = ["real_browser", "sdk_base", "stage_page"]  # the fixtures, shared with test_stage_real_sdks.py

#: The avatar's uid/identity/user id in each provider's room.
AVATAR = {"agora": 4242, "livekit": "avatar-1", "trtc": "avatar-7"}

_PUBLISH_JS = """
async ({base, provider, avatar}) => {
  const { avatarMedia } = await import(base + '/media.mjs');
  // LiveKit's server names each stream "<participant sid>|<track sid>"; the SDK finds the publication by it.
  const streamIds = provider === 'livekit' ? { audio: 'PA_avatar|TR_avatar_audio', video: 'PA_avatar|TR_avatar_video' } : null;
  const media = (window.__media = await avatarMedia({ streamIds }));
  const client = window.__clients[0];
  if (provider === 'agora') {
    const AgoraRTC = (await import(base + '/spy/agora.mjs')).default;
    const audio = AgoraRTC.createCustomAudioTrack({ mediaStreamTrack: media.audio.track });
    const video = AgoraRTC.createCustomVideoTrack({ mediaStreamTrack: media.video.track });
    audio._updateRtpTransceiver(media.audio.transceiver);
    video._updateRtpTransceiver(media.video.transceiver);
    window.__remoteMedia = { [avatar]: { audio, video } };
    // The gateway's notifications: the avatar is online, then publishes video and audio. The client makes its own
    // remote user of them and fires user-published; the stage subscribes.
    const published = [];
    client.on('user-published', (user, kind) => published.push([user, kind]));
    const signal = client._gateway.signal;
    signal.emit('on_user_online', { uid: avatar });
    signal.emit('on_add_video_stream', { uid: avatar, ssrcId: 1111, cname: 'avatar', pt: 96, uint_id: avatar });
    signal.emit('on_add_audio_stream', { uid: avatar, ssrcId: 2222, cname: 'avatar', pt: 111, uint_id: avatar });
    await new Promise((resolve) => setTimeout(resolve, 0));
    const user = client.remoteUsers.find((u) => u.uid === avatar);
    return {
      handed: published.map(([, kind]) => kind).join() === 'video,audio' && published[0][0] === user
        && user.audioTrack === audio && audio.getMediaStreamTrack() === media.audio.track,
    };
  }
  if (provider === 'livekit') {
    const LiveKit = await import(base + '/spy/livekit.mjs');
    const subscribed = [];
    client.on(LiveKit.RoomEvent.TrackSubscribed, (track, publication, participant) => subscribed.push({ track, participant }));
    const tracks = [{ sid: 'TR_avatar_audio', kind: 'audio' }, { sid: 'TR_avatar_video', kind: 'video' }];
    LiveKit.publishRemote(client, { identity: avatar, sid: 'PA_avatar', tracks }, media);
    const audio = subscribed.find((s) => s.track.kind === 'audio');
    return {
      handed: subscribed.length === 2 && audio.track instanceof LiveKit.RemoteAudioTrack
        && audio.participant instanceof LiveKit.RemoteParticipant && audio.track.mediaStreamTrack === media.audio.track
        && audio.track.receiver === media.audio.receiver,
    };
  }
  const { publishRemote } = await import(base + '/spy/trtc.mjs');
  publishRemote(client, avatar, { audio: media.audio.track, video: media.video.track });
  // The SDK subscribes to the audio by itself (autoReceiveAudio), a moment later.
  for (const deadline = performance.now() + 5000; !client.getAudioTrack(avatar) && performance.now() < deadline; ) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { handed: client.getAudioTrack(avatar) === media.audio.track };
}
"""

# The avatar's messages, one layer below the client's event: what each SDK's network layer hands its client (Agora's
# gateway notification, LiveKit's engine data packet, TRTC's room message), so the client's own decoding and event
# run; returns when (page clock) they were handed over.
_DELIVER_JS = """
async ({base, provider, avatar, text}) => {
  const bytes = new TextEncoder().encode(text);
  const client = window.__clients[0];
  const { receiveData } = await import(base + '/spy/livekit.mjs');
  const t = performance.now();
  if (provider === 'agora') {
    // The gateway's data-stream notification (base64 payload), which the client decodes and emits.
    client._gateway.signal.emit('on_data_stream', { uid: avatar, payload: btoa(String.fromCharCode(...bytes)) });
  } else if (provider === 'livekit') {
    receiveData(client, avatar, bytes);
  } else {
    // The room's custom-message manager's message, which the TRTC client forwards as CUSTOM_MESSAGE.
    client._room.emit('custom-message', { userId: avatar, cmdId: 1, seq: 1, data: bytes.buffer });
  }
  return t;
}
"""


def _message(kind: str, mid: str, **pld: Any) -> str:
    return json.dumps({"v": 2, "type": kind, "mid": mid, "pld": pld})


class Conversation:
    """One stage on a real SDK with the avatar's loopback media, and the helpers to talk through it."""

    def __init__(self, stage: StagePage, provider: str, base: str) -> None:
        self.stage = stage
        self.page = stage.page
        self.provider = provider
        self.avatar = AVATAR[provider]
        self.base = base

    def deliver(self, text: str) -> float:
        arg = {"base": self.base, "provider": self.provider, "avatar": self.avatar, "text": text}
        return float(self.page.evaluate(_DELIVER_JS, arg))

    def perceived(self, kind: str | None = None) -> list[dict[str, Any]]:
        return list(self.page.evaluate("(t) => window.__perceived(t)", kind))

    def wait_perceived(self, kind: str, timeout: float = 10.0) -> None:
        self.page.wait_for_function("(t) => window.__perceived(t).length > 0", arg=kind, timeout=timeout * 1000)

    def send(self, seq: int, text: str) -> float:
        """Python's BrowserTransport sending one message; returns the browser send time the stage confirmed."""
        self.page.evaluate(
            "([seq, text]) => window.__model.fromPython({type: 'send', seq, page_id: window.__akoolLabPageId},"
            " [new TextEncoder().encode(text)])",
            [seq, text],
        )
        self.page.wait_for_function(
            "(seq) => window.__sent.some((m) => m.content.type === 'sent' && m.content.items.some(([s]) => s === seq))"
            " || window.__sent.some((m) => m.content.type === 'send-failed')",
            arg=seq,
        )
        assert self.stage.sent("send-failed") == [], self.stage.sent("send-failed")
        items = [item for m in self.stage.sent("sent") for item in m["content"]["items"]]
        return float(next(t for s, t in items if s == seq))

    def say_after(self, audio_start_at: float, delay_ms: float, ms: float) -> float:
        """The avatar's voice ``delay_ms`` after ``audio_start_at`` (page clock); returns the truth of its onset."""
        return float(self.page.evaluate("([at, ms]) => window.__media.tone(at, ms)", [audio_start_at + delay_ms, ms]))


@pytest.fixture
def conversation(stage_page: Any, sdk_base: str) -> Iterator[Any]:
    made: list[Conversation] = []

    def make(provider: str) -> Conversation:
        credentials = dict(CREDENTIALS[provider])
        if provider == "livekit":
            credentials["url"] = sdk_base.replace("http://", "ws://")
        stage = stage_page(provider).open(page_url(sdk_base, provider), credentials, stubNetwork=True, remoteMedia=True)
        stage.join()
        talk = Conversation(stage, provider, sdk_base)
        published = stage.page.evaluate(_PUBLISH_JS, {"base": sdk_base, "provider": provider, "avatar": talk.avatar})
        assert published["handed"], "the SDK hands over the received MediaStreamTrack itself"
        made.append(talk)
        return talk

    yield make
    for talk in made:
        talk.page.evaluate("() => window.__media && window.__media.close()")


@pytest.mark.parametrize("provider", ["agora", "livekit", "trtc"])
def test_a_message_sent_through_the_real_sdk_is_heard_when_the_avatars_received_voice_starts(
    conversation: Any, provider: str
) -> None:
    talk: Conversation = conversation(provider)
    stage = talk.stage
    # The avatar's video: its first frame, on the stage's <video>.
    talk.wait_perceived("first_frame")
    first_frame = talk.perceived("first_frame")[0]
    assert (first_frame["width"], first_frame["height"]) == (320, 240)

    # A question goes out through the SDK (its last chunk starts heard_ms); the avatar answers with audio_start,
    # a reply chunk, and its voice 400 ms later; audio_end when it stops.
    # The question in two chunks: heard_ms starts at the last one's send.
    first_chunk = json.dumps({"v": 2, "type": "chat", "mid": "q-1", "idx": 0, "pld": {"text": "Hello, "}})
    question = json.dumps({"v": 2, "type": "chat", "mid": "q-1", "idx": 1, "fin": True, "pld": {"text": "avatar?"}})
    first_sent_at = talk.send(1, first_chunk)
    sent_at = talk.send(2, question)
    assert sent_at > first_sent_at
    audio_start_at = talk.deliver(_message("event", "r-1", event="audio_start"))
    talk.deliver(_message("chat", "r-1", **{"from": "bot", "text": "Hi there"}))
    truth = talk.say_after(audio_start_at, 400, 600)
    talk.wait_perceived("heard")
    talk.deliver(_message("event", "r-1", event="audio_end"))

    [heard] = talk.perceived("heard")
    assert (heard["mid"], heard["reply_mid"]) == ("q-1", "r-1")
    # One clock: the send time is the one the stage confirmed to Python, audio_start's the one it arrived at,
    # and every figure is a difference of them and the onset.
    assert heard["sent_at"] == pytest.approx(sent_at, abs=1e-6)
    assert heard["audio_start_at"] == pytest.approx(audio_start_at, abs=5)
    assert heard["heard_ms"] == pytest.approx(heard["onset_at"] - sent_at, abs=1e-6)
    assert heard["media_delay_ms"] == pytest.approx(heard["onset_at"] - heard["audio_start_at"], abs=1e-6)
    # The onset is the received voice's: after the truth by what the loopback call adds (its jitter buffer and
    # decoder, tens of ms), never before it by more than the detector's resolution.
    path_ms = heard["onset_at"] - truth
    assert -15 <= path_ms <= 400, (path_ms, heard)
    assert heard["heard_ms"] == pytest.approx(truth - sent_at + path_ms, abs=1e-6)
    assert 400 - 15 <= heard["media_delay_ms"] <= 400 + 400
    onsets = talk.perceived("onset")
    assert len(onsets) == 1 and onsets[0]["at"] == pytest.approx(heard["onset_at"], abs=1e-6), onsets
    if provider == "trtc":
        # TRTC exposes no RTCRtpReceiver: no browser statistics of the track (its STATISTICS event has its own).
        assert talk.perceived("audio_stats") == [] and heard["jitter_buffer_ms"] is None
    else:
        # The SDK exposes the receiver: the browser's own statistics, sampled alongside, and read for this reply.
        talk.wait_perceived("audio_stats")
        stats = talk.perceived("audio_stats")[0]
        assert stats["packets_received"] > 0 and stats["jitter_buffer_emitted"] > 0, stats
        assert heard["jitter_buffer_ms"] is not None and 0 <= heard["jitter_buffer_ms"] < 1000, heard
    # The question went through the SDK's send path (down to the recorded network call).
    network_call = {"agora": "signal", "livekit": "publishData", "trtc": "customMessage"}[provider]
    assert [len(first_chunk.encode()), len(question.encode())] == [
        next(arg for arg in call if arg in (len(first_chunk.encode()), len(question.encode())))
        for call in stage.calls(network_call)
    ], stage.calls(network_call)
    # The video the stage watches is the one received: when the avatar's frames stop it stalls, and when they
    # come again the gap is a freeze.
    talk.page.evaluate("() => window.__media.pauseVideo()")
    talk.wait_perceived("stall", timeout=5)
    talk.page.evaluate("() => window.__media.resumeVideo()")
    talk.wait_perceived("freeze", timeout=5)
    assert talk.perceived("freeze")[0]["duration_ms"] >= 1000

    # The user's spoken turn (AKool's ASR sends the transcript as from: "user" chat): timed from its arrival to the
    # avatar's first reply chunk, its audio_start and its voice, heard; shown on the stage.
    said_at = talk.deliver(json.dumps({"v": 2, "type": "chat", "mid": "u-1", "fin": True,
                                       "pld": {"from": "user", "text": "What is AKool?"}}))  # fmt: skip
    reply_at = talk.deliver(_message("chat", "r-3", **{"from": "bot", "text": "A platform"}))
    answer_at = talk.deliver(_message("event", "r-3", event="audio_start"))
    answer_truth = talk.say_after(answer_at, 300, 400)
    talk.page.wait_for_function("() => window.__perceived('heard').length === 2")
    talk.deliver(_message("event", "r-3", event="audio_end"))
    answer = talk.perceived("heard")[1]
    assert (answer["mid"], answer["reply_mid"], answer["heard_ms"]) == ("u-1", "r-3", None)
    assert answer["transcript_at"] == pytest.approx(said_at, abs=5)
    assert answer["user_heard_ms"] == pytest.approx(answer["onset_at"] - answer["transcript_at"], abs=1e-6)
    assert -15 <= answer["onset_at"] - answer_truth <= 400, (answer, answer_truth)
    [first_reply] = stage.events("user_turn.first_reply")
    [audio_start] = stage.events("user_turn.audio_start")
    assert first_reply["data"]["ms"] == pytest.approx(reply_at - said_at, abs=5)
    assert audio_start["data"]["ms"] == pytest.approx(answer_at - said_at, abs=5)
    shown = stage.stage.locator(".akool-stage__turn")
    expect(shown).to_contain_text("your last turn: reply ")
    expect(shown).to_contain_text(" heard ")
    shown_heard = float(shown.inner_text().split(" heard ")[1].split(" s")[0])
    assert shown_heard == pytest.approx(answer["user_heard_ms"] / 1000, abs=0.006)

    # A reply the avatar never voices is not heard (nothing else on the track counts as its onset): unheard, 3 s
    # after its audio_end.
    talk.deliver(_message("event", "r-2", event="audio_start"))
    talk.deliver(_message("event", "r-2", event="audio_end"))
    talk.wait_perceived("unheard", timeout=6)
    assert [(e["mid"], e["reply_mid"]) for e in talk.perceived("unheard")] == [(None, "r-2")]
    assert len(talk.perceived("onset")) == 2 and len(talk.perceived("heard")) == 2
    # Every time is on this page's clock: after its origin, not after now (an onset is stamped when it is played
    # out, a few ms after it is detected: "now" is taken seconds later).
    now = float(talk.page.evaluate("() => performance.now()"))
    assert all(0 < event["at"] <= now for event in talk.perceived()), talk.perceived()
    assert stage.sent("problem") == []
    print(f"{provider}: heard_ms={heard['heard_ms']:.1f} media_delay_ms={heard['media_delay_ms']:.1f} "
          f"path_ms={path_ms:.1f} jitter_buffer_ms={heard['jitter_buffer_ms']}")  # fmt: skip


_RECONNECTED_JS = """
async ({base}) => {
  const { avatarMedia } = await import(base + '/media.mjs');
  const media = (window.__media2 = await avatarMedia({ frequency: 440 }));
  const audio = Object.values(window.__remoteMedia)[0].audio;
  // What the SDK does to a subscribed track when its media reconnect: a new transceiver, then a new track (each
  // setter fires the track's event: transceiver-updated, track-updated).
  const at = performance.now();
  audio._updateRtpTransceiver(media.audio.transceiver);
  audio._mediaStreamTrack = media.audio.track;
  return { at, replaced: audio.getMediaStreamTrack() === media.audio.track };
}
"""


def test_an_agora_track_whose_media_the_sdk_replaces_after_a_reconnection_is_followed(conversation: Any) -> None:
    talk: Conversation = conversation("agora")
    # (two seconds of packets from the first receiver: the new one's counters start again from 0, at 50 a second,
    # and the stage emits a sample each second)
    talk.page.wait_for_function("() => window.__perceived('audio_stats').some((s) => s.packets_received >= 100)")
    before = max(s["packets_received"] for s in talk.perceived("audio_stats"))
    reconnected = talk.page.evaluate(_RECONNECTED_JS, {"base": talk.base})
    assert reconnected["replaced"]

    # The statistics come from the new receiver (its counters start again)...
    talk.page.wait_for_function(
        "([n, at]) => window.__perceived('audio_stats').some((s) => s.at > at && s.packets_received < n)",
        arg=[before, reconnected["at"]],
        timeout=10_000,
    )
    # ...and the avatar's voice is heard on the new track (the old one stays silent); the two changes restarted
    # the detector without a failure (before, two overlapping restarts stopped one detector twice).
    talk.send(
        1, json.dumps({"v": 2, "type": "chat", "mid": "q-9", "idx": 0, "fin": True, "pld": {"text": "Still there?"}})
    )
    audio_start_at = talk.deliver(_message("event", "r-9", event="audio_start"))
    truth = float(talk.page.evaluate("(at) => window.__media2.tone(at, 500)", audio_start_at + 400))
    talk.wait_perceived("heard")
    [heard] = talk.perceived("heard")
    assert heard["mid"] == "q-9" and -15 <= heard["onset_at"] - truth <= 400, (heard, truth)
    assert heard["jitter_buffer_ms"] is not None
    assert talk.stage.sent("problem") == []
    talk.page.evaluate("() => window.__media2.close()")
