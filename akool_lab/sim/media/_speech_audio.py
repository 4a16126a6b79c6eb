"""The avatar's voice, synthesized offline: eSpeak NG when it is there, else a deterministic fallback voice.

Three voices, tried in this order by :func:`synthesize`:

- ``espeak-wheel``: the ``libespeak-ng`` shared library and its data that the ``espeakng-loader`` wheel ships (part
  of the ``media`` extra), driven through :mod:`ctypes` in synchronous mode (no audio device);
- ``espeak-binary``: Debian's ``espeak-ng`` program, asked for a WAV on its standard output;
- ``fallback``: formant-like tones, one short syllable per word, seeded by the text, so the same text always gives
  the same samples (and tests need no synthesizer).

Every voice returns mono 16-bit PCM at :data:`SAMPLE_RATE` with the leading and trailing silence cut off, so that the
first sample of a clip is where the speech starts: the simulator places it at the reply's ``audio_start``.
"""

from __future__ import annotations

import ctypes
import hashlib
import io
import shutil
import subprocess
import threading
import wave
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["SAMPLE_RATE", "VOICES", "Speech", "available_voices", "synthesize"]

#: The rate of every clip (WebRTC's Opus runs at 48 kHz: no resampling on the way out).
SAMPLE_RATE = 48_000
#: The voices, in the order they are tried.
VOICES = ("espeak-wheel", "espeak-binary", "fallback")
#: |sample| above this counts as sound when trimming silence (about -50 dBFS).
TRIM_THRESHOLD = 100
#: How long the synthesizer may take for one text.
SYNTH_TIMEOUT_S = 30.0
#: Longest text synthesized (characters): a reply beyond this is cut, the clip would last minutes anyway.
MAX_CHARS = 2_000

Samples = npt.NDArray[np.int16]


@dataclass(frozen=True, slots=True)
class Speech:
    """One synthesized clip: mono int16 ``samples`` at :data:`SAMPLE_RATE`, and the voice that made it."""

    samples: Samples
    voice: str

    @property
    def duration_ms(self) -> float:
        """How long the clip plays."""
        return 1000.0 * len(self.samples) / SAMPLE_RATE


def synthesize(text: str, *, voice: str | None = None, speed: float = 1.0, lang: str | None = None) -> Speech:
    """``text`` spoken: the first voice of :data:`VOICES` that works, or exactly ``voice`` when it is given.

    ``speed`` scales the speaking rate (1.0 is eSpeak's 175 words a minute); ``lang`` is a language code such as
    ``"en"`` (eSpeak's default English when ``None`` or unknown). Blocks: call it from a worker thread.

    >>> synthesize("hello", voice="fallback").voice
    'fallback'
    """
    if voice is not None and voice not in VOICES:
        raise ValueError(f"voice: expected one of {', '.join(VOICES)}, got {voice!r}")
    text = text.strip()[:MAX_CHARS]
    order = (voice,) if voice is not None else VOICES
    errors: list[str] = []
    for name in order:
        try:
            if name == "espeak-wheel":
                raw, rate = _espeak_wheel(text, speed, lang)
            elif name == "espeak-binary":
                raw, rate = _espeak_binary(text, speed, lang)
            else:
                return Speech(_trim(_fallback(text, speed)), "fallback")
        except _Unavailable as exc:
            errors.append(f"{name}: {exc}")
            continue
        return Speech(_trim(_resample(raw, rate)), name)
    raise RuntimeError("no voice could speak: " + "; ".join(errors))


def available_voices() -> list[str]:
    """The voices that work on this machine (the fallback always does)."""
    out = []
    for name in VOICES:
        try:
            synthesize("a", voice=name)
        except RuntimeError:
            continue
        out.append(name)
    return out


class _Unavailable(Exception):
    """This voice cannot speak here (not installed, or it failed); the next one is tried."""


# --- eSpeak NG through the espeakng-loader wheel -----------------------------------------------------------------

_AUDIO_OUTPUT_SYNCHRONOUS = 2
_POS_CHARACTER = 1
_CHARS_UTF8 = 1
_RATE = 1  # espeakRATE
_EE_OK = 0
_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.c_void_p)


class _EspeakLibrary:
    """The process's one eSpeak NG instance (the library keeps global state: one caller at a time)."""

    def __init__(self) -> None:
        try:
            import espeakng_loader
        except ImportError:
            raise _Unavailable("the espeakng-loader wheel is not installed (pip install 'akool-lab[media]')") from None
        try:
            lib = ctypes.CDLL(espeakng_loader.get_library_path())
            data = espeakng_loader.get_data_path()
        except (OSError, RuntimeError) as exc:
            raise _Unavailable(f"cannot load libespeak-ng ({exc})") from None
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p,
            ctypes.c_size_t,
            ctypes.c_uint,
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint,
            ctypes.c_void_p,
            ctypes.c_void_p,
        ]
        # The data directory is given as its parent folder's path ("espeak-ng-data" is appended by the library).
        rate = lib.espeak_Initialize(_AUDIO_OUTPUT_SYNCHRONOUS, 0, data.encode(), 0)
        if rate <= 0:
            raise _Unavailable(f"espeak_Initialize failed ({rate})")
        self.lib = lib
        self.rate = int(rate)
        self.lock = threading.Lock()
        self._chunks: list[bytes] = []
        self._callback = _CALLBACK(self._collect)  # kept referenced: the library calls it later
        lib.espeak_SetSynthCallback(self._callback)

    def _collect(self, wav: Any, count: int, events: Any) -> int:
        if count > 0 and wav:
            self._chunks.append(ctypes.string_at(wav, count * 2))
        return 0  # go on

    def speak(self, text: str, speed: float, lang: str | None) -> bytes:
        with self.lock:
            self._chunks = []
            voice = (lang or "en").split("-")[0].lower() or "en"
            if self.lib.espeak_SetVoiceByName(voice.encode()) != _EE_OK:
                self.lib.espeak_SetVoiceByName(b"en")
            self.lib.espeak_SetParameter(_RATE, max(80, min(450, round(175 * speed))), 0)
            data = text.encode("utf-8") + b"\0"
            status = self.lib.espeak_Synth(data, len(data), 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != _EE_OK:
                raise _Unavailable(f"espeak_Synth failed ({status})")
            return b"".join(self._chunks)


_library: _EspeakLibrary | None = None
_library_error: str | None = None
_library_lock = threading.Lock()


def _espeak_wheel(text: str, speed: float, lang: str | None) -> tuple[Samples, int]:
    global _library, _library_error
    with _library_lock:
        if _library is None and _library_error is None:
            try:
                _library = _EspeakLibrary()
            except _Unavailable as exc:
                _library_error = str(exc)
        if _library is None:
            raise _Unavailable(_library_error or "unavailable")
        library = _library
    pcm = library.speak(text, speed, lang)
    return np.frombuffer(pcm, dtype="<i2").astype(np.int16), library.rate


# --- eSpeak NG through Debian's program ---------------------------------------------------------------------------


def _espeak_binary(text: str, speed: float, lang: str | None) -> tuple[Samples, int]:
    program = shutil.which("espeak-ng")
    if program is None:
        raise _Unavailable("the espeak-ng program is not on PATH (Debian: apt-get install espeak-ng)")
    voice = (lang or "en").split("-")[0].lower() or "en"
    args = [program, "--stdout", "-v", voice, "-s", str(max(80, min(450, round(175 * speed)))), "--", text]
    try:
        done = subprocess.run(args, capture_output=True, timeout=SYNTH_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise _Unavailable(f"espeak-ng failed ({exc})") from None
    if done.returncode != 0 or not done.stdout:
        raise _Unavailable(f"espeak-ng exited with {done.returncode}: {done.stderr.decode(errors='replace')[:200]}")
    try:
        with wave.open(io.BytesIO(done.stdout)) as wav:
            rate, width, channels = wav.getframerate(), wav.getsampwidth(), wav.getnchannels()
            frames = wav.readframes(wav.getnframes())
    except (wave.Error, EOFError) as exc:
        # espeak-ng writes a WAV header with unknown sizes to a pipe; read the PCM after the 44-byte header then.
        if len(done.stdout) <= 44:
            raise _Unavailable(f"espeak-ng wrote no audio ({exc})") from None
        rate, width, channels, frames = 22_050, 2, 1, done.stdout[44:]
    if width != 2 or channels != 1:
        raise _Unavailable(f"espeak-ng wrote {channels} channel(s) of {8 * width}-bit audio; expected mono 16-bit")
    return np.frombuffer(frames[: len(frames) // 2 * 2], dtype="<i2").astype(np.int16), rate


# --- the deterministic fallback voice -----------------------------------------------------------------------------

# (F1, F2) of a few vowels, Hz: a syllable is a voiced buzz through two resonances, enough to look and sound like
# speech to a level meter and an onset detector.
_VOWELS = ((730, 1090), (270, 2290), (530, 1840), (570, 840), (300, 870), (660, 1720), (440, 1020))


def _fallback(text: str, speed: float) -> Samples:
    """One syllable per word (two for long words), 40 ms of silence between words: about 170 words a minute."""
    seed = int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big")
    rng = np.random.default_rng(seed)
    words = text.split() or ["..."]
    rate = SAMPLE_RATE
    pieces: list[npt.NDArray[np.float64]] = []
    for word in words:
        for _ in range(1 if len(word) < 7 else 2):
            length = int(rate * rng.uniform(0.14, 0.22) / max(speed, 0.1))
            t = np.arange(length) / rate
            pitch = rng.uniform(100, 140) * (1 + 0.08 * np.sin(2 * np.pi * 3 * t))
            phase = 2 * np.pi * np.cumsum(pitch) / rate
            f1, f2 = _VOWELS[int(rng.integers(len(_VOWELS)))]
            # A buzz's harmonics weighted by two resonance peaks (a crude source-filter vowel).
            sound = np.zeros(length)
            for k in range(1, 30):
                freq = k * pitch
                gain = 1 / (1 + ((freq - f1) / 90) ** 2) + 0.5 / (1 + ((freq - f2) / 120) ** 2)
                sound += gain * np.sin(k * phase)
            envelope = np.sin(np.pi * np.arange(length) / length) ** 0.6
            pieces.append(sound * envelope)
        pieces.append(np.zeros(int(rate * 0.04 / max(speed, 0.1))))
    audio = np.concatenate(pieces)
    peak = float(np.max(np.abs(audio))) or 1.0
    return np.asarray(audio / peak * 0.5 * 32767, dtype=np.int16)


# --- shaping --------------------------------------------------------------------------------------------------------


def _resample(samples: Samples, rate: int) -> Samples:
    """To :data:`SAMPLE_RATE` by linear interpolation (speech from eSpeak has little above 5 kHz anyway)."""
    if rate == SAMPLE_RATE or len(samples) == 0:
        return samples
    count = round(len(samples) * SAMPLE_RATE / rate)
    positions = np.arange(count) * (rate / SAMPLE_RATE)
    out = np.interp(positions, np.arange(len(samples)), samples.astype(np.float64))
    return np.asarray(np.clip(np.round(out), -32768, 32767), dtype=np.int16)


def _trim(samples: Samples) -> Samples:
    """Without leading and trailing silence: the clip starts with its first clearly audible sample.

    The start is the first sample within 26 dB of the clip's peak (eSpeak fades its first phoneme in over some
    milliseconds; what comes before is below any listener's or detector's threshold, so it is not the onset).
    """
    magnitude = np.abs(samples.astype(np.int32))
    loud = np.flatnonzero(magnitude > TRIM_THRESHOLD)
    if len(loud) == 0:
        return samples[:0]
    start = int(np.argmax(magnitude > max(TRIM_THRESHOLD, int(magnitude.max()) // 20)))
    return samples[start : loud[-1] + 1]
