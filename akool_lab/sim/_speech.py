"""What the emulated avatar says: dialogue replies (mode 2) and TTS-like re-chunking of reply text."""

from __future__ import annotations

import hashlib
import random
import re

__all__ = ["STOCK_GREETING", "dialogue_reply", "tts_chunks"]

#: What the avatar says when a client joins (dialect ``greeting``) and its knowledge base has no prologue.
STOCK_GREETING = "Hello, and welcome! I am your AKool avatar. What would you like to talk about today?"

#: The longest piece of reply text in one bot chunk (characters); real TTS pipelines stream short phrases.
MAX_CHUNK_CHARS = 80

_OPENERS = [
    "Good question.",
    "Happy to help with that.",
    "Let me think about it.",
    "Sure.",
    "That is an interesting point.",
]
_BODIES = [
    "The short answer is that it depends on what you need most.",
    "Most people start with the simplest option and adjust from there.",
    "I would try it step by step and check each result before moving on.",
    "There are a few ways to look at it, and each has its trade-offs.",
    "It usually works best when you keep things small and measurable.",
]
_CLOSERS = [
    "Anything else you would like to know?",
    "Does that answer your question?",
    "Tell me if you want more detail.",
    "",
]


def dialogue_reply(question: str, *, seed: int, prompt: str | None = None, lang: str | None = None) -> str:
    """A deterministic reply to ``question``: the same seed, question, prompt and language give the same text.

    The reply echoes the question's topic and, when the session has a knowledge base, quotes its prompt, so that a
    test can see that the knowledge base was used.
    """
    key = f"{seed}\x00{question}\x00{prompt or ''}\x00{lang or ''}".encode()
    rng = random.Random(int.from_bytes(hashlib.sha256(key).digest()[:8], "big"))
    words = re.findall(r"\w+", question)
    topic = " ".join(words[-3:]) if words else "that"
    parts = [rng.choice(_OPENERS), f"You asked about {topic}."]
    if prompt:
        first = " ".join(prompt.split()[:12])
        parts.append(f"Based on my knowledge base ({first}), here is what I can say.")
    parts.append(rng.choice(_BODIES))
    closer = rng.choice(_CLOSERS)
    if closer:
        parts.append(closer)
    if lang and not lang.lower().startswith("en"):
        parts.append(f"[{lang}]")
    return " ".join(parts)


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
