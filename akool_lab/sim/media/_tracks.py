"""The simulated avatar's media: a speech track (48 kHz mono, 20 ms frames) and a face whose mouth follows it.

The speech track runs on one timeline: frame ``k`` holds the samples of ``[t0 + 20 k ms, t0 + 20 (k + 1) ms)``
(``perf_counter_ns``) and is handed to the sender when that interval starts, like aiortc's own tracks. An utterance
is placed on that timeline so that its first sample falls on the reply's ``audio_start`` (sample-accurate, not
frame-aligned); it ends at ``audio_end``, or when the reply is interrupted. Between utterances the track carries
digital silence. The ground truth records, per reply, when the first sample of speech entered the track.
"""

from __future__ import annotations

import asyncio
import fractions
import functools
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from av import AudioFrame, VideoFrame

from akool_lab.sim._state import NS_PER_MS, now_ns
from akool_lab.sim.media._speech_audio import SAMPLE_RATE, Speech

__all__ = ["FRAME_SAMPLES", "FaceTrack", "SpeechTrack", "Utterance", "codec_delay_ms"]

#: 20 ms of audio per frame, the Opus packet time WebRTC uses.
FRAME_SAMPLES = SAMPLE_RATE // 50
FRAME_NS = 20_000_000
#: When the loop was stalled for longer than this, the track jumps forward instead of sending a burst of frames.
MAX_LAG_NS = 200_000_000
#: The face's size and frame rate: small, so that encoding costs little on a busy machine.
FACE_WIDTH, FACE_HEIGHT, FACE_FPS = 192, 192, 15
#: The short fade at the end of a cut utterance (no click).
FADE_SAMPLES = 240


@dataclass(slots=True)
class Utterance:
    """One reply's speech on the track's timeline."""

    mid: str
    start_ns: int  # when the reply's audio_start is due: the first sample plays then (or as soon as the clip exists)
    end_ns: int  # when its audio_end is due: the speech stops there
    arrived_ns: int  # when the question arrived (the truth's durations count from it)
    clip: Future[Speech]
    truth: dict[str, Any]
    begin_ns: int | None = None  # where the first sample actually went
    cut_ns: int | None = None  # an interrupt
    samples: npt.NDArray[np.int16] | None = field(default=None, repr=False)


class SpeechTrack(MediaStreamTrack):
    """The avatar's voice: silence, and each planned utterance from its ``audio_start``."""

    kind = "audio"

    def __init__(self, on_error: Callable[[BaseException], None] | None = None) -> None:
        super().__init__()
        self._t0_ns: int | None = None
        self._frame = 0
        self._utterances: list[Utterance] = []
        self._on_error = on_error
        #: The loudness of the last frame handed out, 0..1 (RMS against a loud voice), for the face.
        self.level = 0.0
        self._time_base = fractions.Fraction(1, SAMPLE_RATE)
        #: Truths whose first sample was handed out in the last frame: (truth, when that frame was handed out).
        self._awaiting_send: list[tuple[dict[str, Any], int]] = []

    def add(self, utterance: Utterance) -> None:
        """Plan an utterance (its clip may still be synthesizing)."""
        self._utterances.append(utterance)

    def cut(self, mid: str, at_ns: int) -> None:
        """The reply ``mid`` was interrupted at ``at_ns``: its speech stops there."""
        for utterance in self._utterances:
            if utterance.mid == mid and utterance.cut_ns is None:
                utterance.cut_ns = at_ns

    async def recv(self) -> AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = now_ns()
        self._note_sent(now)
        if self._t0_ns is None:
            self._t0_ns = now
        due = self._t0_ns + self._frame * FRAME_NS
        if now - due > MAX_LAG_NS:  # the loop was stalled: resume at the present instead of catching up
            self._frame = (now - self._t0_ns) // FRAME_NS
            due = self._t0_ns + self._frame * FRAME_NS
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        pcm = np.zeros(FRAME_SAMPLES, dtype=np.int32)
        firsts: list[tuple[Utterance, int]] = []
        for utterance in list(self._utterances):
            try:
                first = self._mix(utterance, due, pcm)
            except Exception as exc:  # a failed synthesis: report it, drop the utterance, keep the track alive
                self._utterances.remove(utterance)
                utterance.truth["media"] = {"error": f"{type(exc).__name__}: {exc}"}
                if self._on_error is not None:
                    self._on_error(exc)
                continue
            if first is not None:
                firsts.append((utterance, first))
        samples = np.clip(pcm, -32768, 32767).astype(np.int16)
        frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
        frame.planes[0].update(samples.tobytes())
        frame.sample_rate = SAMPLE_RATE
        frame.pts = self._frame * FRAME_SAMPLES
        frame.time_base = self._time_base
        self._frame += 1
        self.level = min(1.0, float(np.sqrt(np.mean(samples.astype(np.float64) ** 2))) / 6000.0)
        handed = now_ns()
        for utterance, offset in firsts:
            self._record_first_sample(utterance, due, offset, handed, frame.pts)
        return frame

    def _note_sent(self, now: int) -> None:
        # The sender asks for the next frame once it has encoded the last one and handed its packet to the network
        # (aiortc's RTCRtpSender: recv, encode, send, recv...): the frame holding a reply's first sample was on its
        # way to the receiver by now.
        for truth, handed in self._awaiting_send:
            media = truth.get("media")
            if isinstance(media, dict) and "first_sample_ms" in media:
                media["send_delay_ms"] = round((now - handed) / NS_PER_MS, 3)
        self._awaiting_send.clear()

    def _mix(self, utterance: Utterance, frame_ns: int, pcm: npt.NDArray[np.int32]) -> int | None:
        """Add the utterance's part of this frame to ``pcm``; the index of its first sample when it starts here."""
        end = utterance.end_ns if utterance.cut_ns is None else min(utterance.end_ns, utterance.cut_ns)
        frame_end = frame_ns + FRAME_NS
        if utterance.samples is None:
            if frame_end <= utterance.start_ns:
                return None  # not due yet
            if frame_ns >= end:  # its whole time passed before the clip was ready: it is never heard
                self._utterances.remove(utterance)
                utterance.truth["media"] = {"heard": False, "reason": "speech not ready before audio_end"}
                return None
            if not utterance.clip.done():
                return None  # still synthesizing: silence for now, the truth will show how late it started
            utterance.samples = utterance.clip.result().samples
            utterance.begin_ns = max(utterance.start_ns, frame_ns)
        begin = utterance.begin_ns
        assert begin is not None
        samples = utterance.samples
        # Sample j of the clip plays at begin + j / rate; frame sample i at frame_ns + i / rate.
        offset = _samples_between(frame_ns, begin)  # where clip sample 0 falls in this frame (may be negative)
        stop = min(len(samples), max(0, _samples_between(begin, end)))
        if stop == 0:  # interrupted (or its audio_end passed) before its first sample: it is never heard
            self._utterances.remove(utterance)
            utterance.truth["media"] = {"heard": False, "reason": "cut before its first sample"}
            return None
        lo_clip = max(0, -offset)
        hi_clip = min(stop, FRAME_SAMPLES - offset)
        if hi_clip > lo_clip:
            chunk = samples[lo_clip:hi_clip].astype(np.int32)
            if hi_clip == stop and stop < len(samples):  # cut short: fade the last few samples
                fade = min(FADE_SAMPLES, len(chunk))
                chunk[-fade:] = chunk[-fade:] * np.linspace(1.0, 0.0, fade)
            pcm[lo_clip + offset : hi_clip + offset] += chunk
        if frame_end >= begin + stop * 1_000_000_000 // SAMPLE_RATE:
            self._utterances.remove(utterance)  # finished (or cut): its last sample is in this frame
        return offset if 0 <= offset < FRAME_SAMPLES else None

    def _record_first_sample(
        self, utterance: Utterance, frame_ns: int, offset: int, handed_ns: int, frame_pts: int
    ) -> None:
        ms, arrived = NS_PER_MS, utterance.arrived_ns
        nominal = frame_ns + offset * 1_000_000_000 // SAMPLE_RATE
        entered = handed_ns + offset * 1_000_000_000 // SAMPLE_RATE
        clip = utterance.clip.result()
        utterance.truth["media"] = {
            "heard": True,
            "voice": clip.voice,
            "clip_ms": round(clip.duration_ms, 3),
            # (send_delay_ms, added when the sender asks for the next frame: from that hand-over to the frame's
            # packet leaving for the network, its encoding included.)
            # When the first sample of speech entered the track (the frame holding it was handed to the sender, plus
            # the sample's place in that frame), from the question's arrival: the injected time to audio.
            "first_sample_ms": round((entered - arrived) / ms, 3),
            # How much later than the planned audio_start it went in (synthesis not ready, or a late timer).
            "late_ms": round((entered - utterance.start_ns) / ms, 3),
            "timeline_error_ms": round((handed_ns - frame_ns) / ms, 3),
            "first_sample_at_ns": entered,
            "nominal_at_ns": nominal,
            # Where that sample is in the track's sample count (the RTP timestamp's offset from the stream's first
            # sample), and in its 20 ms frame: what ties the truth to the packet a browser receives.
            "frame_pts": frame_pts,
            # The codec's delay: the receiver's decoder plays that sample this much later (see codec_delay_ms).
            "codec_delay_ms": codec_delay_ms(),
            "frame_offset_samples": offset,
        }
        self._awaiting_send.append((utterance.truth, handed_ns))


@functools.cache
def codec_delay_ms() -> float:
    """How much later than its input the Opus stream the peer sends plays each sample, in ms (6.5 for libopus).

    An Opus encoder looks ahead before it encodes (2.5 ms, plus 4 ms of delay compensation): a decoder's output
    lags the encoder's input by that much, so the first sample of speech that entered the track comes out of the
    receiver's decoder that much later than the packet's timestamp says. Read from the encoder aiortc sends with
    (the same class, settings and libopus): its first packet's timestamp is that many samples before its first
    input sample. No receive statistic reports it: the ground truth adds it to the time the speech entered.
    """
    from aiortc.codecs import get_encoder
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    encoder: Any = get_encoder(RTCRtpCodecParameters(mimeType="audio/opus", clockRate=SAMPLE_RATE, channels=2))
    frame = AudioFrame(format="s16", layout="mono", samples=FRAME_SAMPLES)
    frame.planes[0].update(np.zeros(FRAME_SAMPLES, dtype=np.int16).tobytes())
    frame.sample_rate = SAMPLE_RATE
    frame.pts = 0
    frame.time_base = fractions.Fraction(1, SAMPLE_RATE)
    encoder.encode(frame)
    first_pts = getattr(encoder, "first_packet_pts", None)
    return -first_pts * 1000 / SAMPLE_RATE if isinstance(first_pts, int) and first_pts <= 0 else 0.0


def _samples_between(from_ns: int, to_ns: int) -> int:
    """Whole samples from one instant to another (rounded to the nearest sample)."""
    return round((to_ns - from_ns) * SAMPLE_RATE / 1e9)


class FaceTrack(MediaStreamTrack):
    """The simulated avatar's face: a drawn face whose mouth opens with the speech track's loudness."""

    kind = "video"

    def __init__(self, speech: SpeechTrack) -> None:
        super().__init__()
        self._speech = speech
        self._t0_ns: int | None = None
        self._frame = 0
        self._base, self._mouth_box = _draw_face()
        self._time_base = fractions.Fraction(1, 90_000)
        ys, xs = np.mgrid[0 : self._mouth_box[3] - self._mouth_box[1], 0 : self._mouth_box[2] - self._mouth_box[0]]
        self._mouth_grid = (ys, xs)

    async def recv(self) -> VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = now_ns()
        if self._t0_ns is None:
            self._t0_ns = now
        period = 1_000_000_000 // FACE_FPS
        due = self._t0_ns + self._frame * period
        if now - due > MAX_LAG_NS:
            self._frame = (now - self._t0_ns) // period
            due = self._t0_ns + self._frame * period
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        image = self.draw(self._speech.level, blink=(self._frame % (4 * FACE_FPS)) < 2)
        frame = VideoFrame.from_ndarray(image, format="yuv420p")
        frame.pts = (due - self._t0_ns) * 90_000 // 1_000_000_000
        frame.time_base = self._time_base
        self._frame += 1
        return frame

    def draw(self, level: float, *, blink: bool = False) -> npt.NDArray[np.uint8]:
        """One yuv420p frame (planar, ``(H * 3 / 2, W)``) with the mouth open by ``level`` (0..1)."""
        image: npt.NDArray[np.uint8] = self._base.copy()
        x0, y0, x1, y1 = self._mouth_box
        ys, xs = self._mouth_grid
        cx, cy = (x1 - x0) / 2, (y1 - y0) / 2
        half_w = (x1 - x0) / 2 - 1
        half_h = 1.5 + level * ((y1 - y0) / 2 - 2)
        inside = ((xs - cx) / half_w) ** 2 + ((ys - cy) / half_h) ** 2 <= 1.0
        region = image[y0:y1, x0:x1]
        region[inside] = 40  # a dark open mouth
        if blink:
            for ex in (FACE_WIDTH * 3 // 8, FACE_WIDTH * 5 // 8):
                image[FACE_HEIGHT * 2 // 5 - 4 : FACE_HEIGHT * 2 // 5 + 5, ex - 9 : ex + 10] = 170
        return image


def _draw_face() -> tuple[npt.NDArray[np.uint8], tuple[int, int, int, int]]:
    """The still parts of the face, once; and the box the mouth is drawn in (x0, y0, x1, y1)."""
    w, h = FACE_WIDTH, FACE_HEIGHT
    y = np.full((h, w), 60, dtype=np.uint8)  # dark studio background
    ys, xs = np.mgrid[0:h, 0:w]
    head = ((xs - w / 2) / (w * 0.34)) ** 2 + ((ys - h / 2) / (h * 0.42)) ** 2 <= 1.0
    y[head] = 170  # skin
    for ex in (w * 3 // 8, w * 5 // 8):
        eye = ((xs - ex) / 8) ** 2 + ((ys - h * 2 // 5) / 5) ** 2 <= 1.0
        y[eye] = 30
    mouth_box = (w // 2 - 22, int(h * 0.62), w // 2 + 22, int(h * 0.62) + 30)
    # Chroma: a warm skin tone on the head, neutral elsewhere (4:2:0, so half resolution).
    u = np.full((h // 2, w // 2), 128, dtype=np.uint8)
    v = np.full((h // 2, w // 2), 128, dtype=np.uint8)
    head_small = head[::2, ::2]
    u[head_small] = 110
    v[head_small] = 150
    image: npt.NDArray[np.uint8] = np.concatenate([y, u.reshape(h // 4, w), v.reshape(h // 4, w)])
    return image, mouth_box
