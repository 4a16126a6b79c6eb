"""The simulator as a WebRTC avatar (the ``media`` extra): speech synthesized offline, a face whose mouth follows it,
a WebRTC peer (aiortc) that publishes both and can carry the v2 data channel, and an ear for the user's microphone.

Nothing here is imported by ``import akool_lab`` or ``import akool_lab.sim``: the simulator loads it when a client
first asks for media.

- Signalling: ``POST /_sim/sessions/{id}/webrtc/offer`` with ``{"type": "offer", "sdp", "token": WS_TOKEN}``
  answers ``{"type": "answer", "sdp"}`` (:mod:`._routes`). ICE uses one host candidate on 127.0.0.1, no STUN.
  Offer to receive audio and video; open a data channel to carry the v2 messages over WebRTC instead of the
  simulator's WebSocket (one client per session, either way); send an audio track to talk to the avatar.
- The avatar's voice (:mod:`._speech_audio`): eSpeak NG from the ``espeakng-loader`` wheel, Debian's ``espeak-ng``,
  or a deterministic fallback. Each reply's speech starts on the audio track at its ``audio_start`` (as soon as it
  is synthesized, when that is later) and stops at its ``audio_end`` or at an interrupt (:mod:`._tracks`).
- The user's voice (:mod:`._listen`): voice activity, then PocketSphinx, then ``from: "user"`` messages and, in
  dialogue mode, an answer.

Ground truth (``GET /_sim/truth``), added to each question's record: ``media`` = ``{heard, voice, clip_ms,
first_sample_ms (question's arrival -> the first sample of speech entered the track), late_ms (after the planned
audio_start), timeline_error_ms, first_sample_at_ns}``, or ``{heard: false, reason}``; session events
``media_connected``, ``media_closed``, ``media_error``, ``microphone_received`` and ``user_utterance`` (``speech_ms``,
``end_silence_ms``, ``asr_ms``, ``transcript``, ``mid``, ``turn_ms``, or why it was dropped).
"""
