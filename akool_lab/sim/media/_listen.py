"""The simulated avatar listens: the user's microphone track (WebRTC) -> voice activity -> offline transcription
(PocketSphinx, whose wheel ships an English model) -> ``from: "user"`` messages on the data channel, and in
dialogue mode a reply, as AKool's own ASR does.

Voice activity is an energy detector on 20 ms frames at 16 kHz with a noise floor learnt while the user is quiet: an
utterance starts after 60 ms of speech and ends after :data:`END_SILENCE_MS` of silence (the turn detection).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from akool_lab.sim._state import NS_PER_MS, now_ns

if TYPE_CHECKING:  # pragma: no cover
    from akool_lab.sim.media._peer import MediaPeer

__all__ = ["ASR_RATE", "UserVoice", "transcribe"]

_log = logging.getLogger("akool_lab.sim")

#: PocketSphinx's English model is trained on 16 kHz speech.
ASR_RATE = 16_000
FRAME_MS = 20
#: Speech this long starts an utterance; silence this long ends it.
START_SPEECH_MS = 60
END_SILENCE_MS = 600
#: Audio kept from before the start (the onset of the first word), and the longest utterance.
PRE_ROLL_MS = 200
MAX_UTTERANCE_MS = 15_000
#: A frame is speech when its RMS is this far above the floor (12 dB) and above -42 dBFS.
SPEECH_RATIO = 4.0
SPEECH_MIN_RMS = 260.0

_ASR_POOL = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="akool-media-asr")
_decoder: Any = None
_decoder_lock = threading.Lock()


def transcribe(samples: npt.NDArray[np.int16]) -> str:
    """The words PocketSphinx hears in mono 16 kHz int16 ``samples`` ("" for none). Blocks: call it off the loop.

    Raises ``RuntimeError`` when PocketSphinx is not installed (it is part of the ``media`` extra).
    """
    global _decoder
    with _decoder_lock:
        if _decoder is None:
            try:
                from pocketsphinx import Decoder
            except ImportError:
                raise RuntimeError(
                    "the simulator's speech recognition needs PocketSphinx: pip install 'akool-lab[media]'"
                ) from None
            _decoder = Decoder(samprate=ASR_RATE, loglevel="FATAL")
        decoder = _decoder
        decoder.start_utt()
        decoder.process_raw(samples.astype("<i2").tobytes(), full_utt=True)
        decoder.end_utt()
        hypothesis = decoder.hyp()
    return str(hypothesis.hypstr).strip() if hypothesis is not None else ""


def _to_asr_rate(frame: Any) -> npt.NDArray[np.int16]:
    """A received audio frame as mono int16 at 16 kHz (channels averaged; 48 kHz decimated by 3 after a box filter)."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if data.ndim == 2 and data.shape[0] == 1:  # packed: (1, samples * channels)
        mono = data.reshape(-1, channels).astype(np.float64).mean(axis=1)
    else:  # planar: (channels, samples)
        mono = data.astype(np.float64).mean(axis=0)
    if data.dtype != np.int16:  # float formats: -1..1
        mono = mono * 32767.0
    factor = max(1, round(frame.sample_rate / ASR_RATE))
    usable = len(mono) // factor * factor
    low = mono[:usable].reshape(-1, factor).mean(axis=1)
    return np.asarray(np.clip(low, -32768, 32767), dtype=np.int16)


class UserVoice:
    """Listens to one microphone track for one peer; each utterance it hears is sent as the user's speech."""

    def __init__(self, peer: MediaPeer, track: MediaStreamTrack) -> None:
        self.peer = peer
        self.track = track
        self.floor = 0.0
        self._floor_known = False
        self._pre: deque[npt.NDArray[np.int16]] = deque(maxlen=PRE_ROLL_MS // FRAME_MS)
        self._speech: list[npt.NDArray[np.int16]] = []
        self._run_ms = 0  # consecutive speech (before the start) or silence (during an utterance)
        self._in_utterance = False
        self._started_ns = 0
        self._pending = np.zeros(0, dtype=np.int16)

    async def run(self) -> None:
        """Read the track until it ends."""
        size = ASR_RATE * FRAME_MS // 1000
        while True:
            try:
                frame = await self.track.recv()
            except MediaStreamError:
                return
            self._pending = np.concatenate([self._pending, _to_asr_rate(frame)])
            while len(self._pending) >= size:
                chunk, self._pending = self._pending[:size], self._pending[size:]
                self._on_frame(chunk)

    def _learn(self, rms: float) -> None:
        if not self._floor_known:
            self.floor, self._floor_known = rms, True
        else:
            self.floor += (0.2 if rms < self.floor else 0.01) * (rms - self.floor)

    def _on_frame(self, chunk: npt.NDArray[np.int16]) -> None:
        rms = float(np.sqrt(np.mean(chunk.astype(np.float64) ** 2)))
        speech = rms > max(self.floor * SPEECH_RATIO, SPEECH_MIN_RMS)
        if not self._in_utterance:
            self._pre.append(chunk)
            if not speech:
                self._learn(rms)
                self._run_ms = 0
                return
            self._run_ms += FRAME_MS
            if self._run_ms >= START_SPEECH_MS:
                self._in_utterance = True
                self._started_ns = now_ns() - self._run_ms * 1_000_000
                self._speech = list(self._pre)
                self._pre.clear()
                self._run_ms = 0
            return
        self._speech.append(chunk)
        self._run_ms = 0 if speech else self._run_ms + FRAME_MS
        length_ms = len(self._speech) * FRAME_MS
        if self._run_ms >= END_SILENCE_MS or length_ms >= MAX_UTTERANCE_MS:
            self._in_utterance = False
            silence_ms = self._run_ms
            self._run_ms = 0
            audio = np.concatenate(self._speech)
            self._speech = []
            self.peer.spawn(self._transcribe(audio, length_ms - silence_ms, now_ns(), silence_ms))

    async def _transcribe(self, audio: npt.NDArray[np.int16], speech_ms: int, ended_ns: int, silence_ms: int) -> None:
        session = self.peer.session
        started = time.perf_counter_ns()
        record: dict[str, Any] = {"event": "user_utterance", "speech_ms": speech_ms, "end_silence_ms": silence_ms}
        try:
            text = await asyncio.wrap_future(_ASR_POOL.submit(transcribe, audio))
        except RuntimeError as exc:
            record["error"] = str(exc)
            session.truth_events.append(record)
            self.peer.report(exc)
            return
        record["asr_ms"] = round((time.perf_counter_ns() - started) / NS_PER_MS, 3)
        record["transcript"] = text
        connection = session.connection
        if not text:
            record["dropped"] = "nothing recognised"
        elif connection is None:
            record["dropped"] = "no data channel client is connected"
        else:
            record["mid"] = connection.user_speech(text)
            # From the end of speech (the last voiced frame) to the transcript going out.
            record["turn_ms"] = round((now_ns() - ended_ns) / NS_PER_MS + silence_ms, 3)
        session.truth_events.append(record)
