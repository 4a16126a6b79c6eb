"""How the emulated avatar streams what it says: TTS-like re-chunking of reply text, and its stock greeting.

Dialogue answers (mode 2) are written in :mod:`akool_lab.sim._dialogue`.
"""

from __future__ import annotations

import re

__all__ = ["STOCK_GREETING", "tts_chunks"]

#: What the avatar says when a client joins (dialect ``greeting``) and its knowledge base has no prologue.
STOCK_GREETING = "Hello, and welcome! I am your AKool avatar. What would you like to talk about today?"

#: The longest piece of reply text in one bot chunk (characters); real TTS pipelines stream short phrases.
MAX_CHUNK_CHARS = 80


def tts_chunks(text: str) -> list[str]:
    """Split reply text into the pieces a TTS pipeline would stream: sentences, long ones cut at word boundaries.

    ``"".join(tts_chunks(text)) == text`` always holds (whitespace stays attached to the piece before it).
    """
    if not text:
        return [""]
    pieces: list[str] = []
    for sentence in re.findall(r".*?(?:[.!?]+\s*|$)", text, flags=re.S):
        if not sentence:
            continue
        if len(sentence) <= MAX_CHUNK_CHARS:
            pieces.append(sentence)
            continue
        current = ""
        for word in re.findall(r"\s*\S+\s*|\s+", sentence):
            if current and len(current) + len(word) > MAX_CHUNK_CHARS:
                pieces.append(current)
                current = ""
            while len(word) > MAX_CHUNK_CHARS:  # one very long "word": cut it
                pieces.append(word[:MAX_CHUNK_CHARS])
                word = word[MAX_CHUNK_CHARS:]
            current += word
        if current:
            pieces.append(current)
    if "".join(pieces) != text:  # pragma: no cover - the regexes cover every character; keep the guarantee anyway
        pieces = [text[i : i + MAX_CHUNK_CHARS] for i in range(0, len(text), MAX_CHUNK_CHARS)]
    return pieces
