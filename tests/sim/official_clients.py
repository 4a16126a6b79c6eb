"""How AKool's official JS clients send chat text, re-implemented from their algorithm (AKOOL_API.md section 5.2).

The React demo (``CommonMessageController``) and the JS SDK (``sendMessageToAvatar``) share one algorithm:

1. ``base`` = the byte length of the encoded chunk ``{text: "", idx: 0, fin: false}``; a chunk first takes
   ``floor((MAX - base) / 4)`` characters of the text (4 bytes per character at worst);
2. while its encoded frame is over ``MAX`` bytes and it has more than one character, keep the first half (rounded
   up); fail when a one-character chunk still does not fit;
3. send the chunks in order with one ``mid``, ``idx`` 0..n-1 and ``fin`` on the last;
4. after each chunk but the last, wait ``ceil(1000 * frame_bytes / BYTES_PER_SECOND)`` ms minus the time the send
   took (measured with ``Date.now()``, whole milliseconds).

JavaScript strings are sequences of UTF-16 code units: ``length`` and ``slice`` count code units, so a character
outside the BMP (an emoji, two code units) can be cut in two. ``JSON.stringify`` then writes each lone surrogate
as a ``\\udXXX`` escape, and ``TextEncoder`` turns the JSON text into UTF-8 bytes. This module reproduces those
three steps in Python so that the simulator's tests send exactly the bytes the official clients send.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass

import websockets

__all__ = ["DEMO", "SDK", "OfficialSender", "js_stringify"]

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def js_stringify(value: object) -> str:
    """``JSON.stringify(value)``: compact, non-ASCII kept as is, lone surrogates escaped (ES2019 well-formed)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def _units(text: str) -> bytes:
    """The UTF-16 code units of ``text`` (2 bytes each, little-endian)."""
    return text.encode("utf-16-le", "surrogatepass")


def _string(units: bytes) -> str:
    """A JS string made of ``units``, as Python text (a cut pair stays as lone surrogates)."""
    return units.decode("utf-16-le", "surrogatepass")


@dataclass(frozen=True, slots=True)
class OfficialSender:
    """One official client's chat settings: the largest frame and the byte rate it paces at."""

    max_encoded_size: int
    bytes_per_second: int

    def encode(self, text: str, idx: int, fin: bool, mid: str) -> bytes:
        """One chat frame as the client's ``encodeMessage`` builds it (``TextEncoder`` bytes)."""
        message = {"v": 2, "type": "chat", "mid": mid, "idx": idx, "fin": fin, "pld": {"text": text}}
        return js_stringify(message).encode("utf-8")

    def first_cut(self, mid: str) -> int:
        """How many UTF-16 code units a chunk takes before any halving (``maxQuestionLength``)."""
        return (self.max_encoded_size - len(self.encode("", 0, False, mid))) // 4

    def split(self, text: str, mid: str) -> list[str]:
        """The chunks of ``text`` (each a JS string: it may start or end with half of a surrogate pair)."""
        max_units = self.first_cut(mid)
        remaining = _units(text)
        chunks: list[str] = []
        while remaining:
            count = max_units
            chunk = _string(remaining[: 2 * count])
            while len(self.encode(chunk, len(chunks), False, mid)) > self.max_encoded_size and count > 1:
                count = math.ceil(count / 2)
                chunk = _string(remaining[: 2 * count])
            if len(self.encode(chunk, len(chunks), False, mid)) > self.max_encoded_size:
                raise ValueError("Message content too large for chunking")
            chunks.append(chunk)
            remaining = remaining[2 * count :]
        return chunks

    def frames(self, text: str, mid: str) -> list[bytes]:
        """Every frame of ``text``, ``fin`` on the last."""
        chunks = self.split(text, mid)
        return [self.encode(chunk, i, i == len(chunks) - 1, mid) for i, chunk in enumerate(chunks)]

    def minimum_ms(self, frame_bytes: int) -> int:
        """The least time between the start of one chunk's send and the next chunk (``minimumTimeMs``)."""
        return math.ceil(1000 * frame_bytes / self.bytes_per_second)

    async def send(self, ws: websockets.ClientConnection, frames: list[bytes]) -> None:
        """Send ``frames`` as text, paced the way the client paces them."""
        loop = asyncio.get_running_loop()
        for i, frame in enumerate(frames):
            started = loop.time()
            await ws.send(frame.decode("utf-8"))
            if i < len(frames) - 1:
                remaining = self.minimum_ms(len(frame)) / 1000 - (loop.time() - started)
                if remaining > 0:
                    await asyncio.sleep(remaining)  # the client's own pacing, not a wait for a condition


#: The React demo's Agora and LiveKit providers: 960-byte frames at 5,760 B/s.
DEMO = OfficialSender(960, 5760)
#: The JS SDK (``akool-streaming-avatar-sdk``): 950-byte frames at 6,000 B/s.
SDK = OfficialSender(950, 6000)
