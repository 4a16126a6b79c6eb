"""Your own LLM as the avatar's brain: run it, stream its sentences to the avatar (mode 1), time both.

``fn(user_text)`` may return a ``str``, an iterable of text pieces (tokens), an awaitable of either, or an async
iterable of pieces. Blocking callables and iterators run in a worker thread so the I/O loop never stalls.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from akool_lab.errors import ValidationError
from akool_lab.types import Reply

__all__ = ["ChatTurn", "SentenceSplitter", "llm_pieces"]

# A sentence ends at . ! ? (or their CJK forms) followed by whitespace, or at a newline.
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])\s+|\n+")


@dataclass(frozen=True, slots=True)
class ChatTurn:
    """One turn of ``chat()``: the user's text, your LLM's answer and the avatar's replies, with timings.

    Attributes:
        user_text: what the user said.
        answer: the LLM's whole answer (what the avatar was asked to speak).
        replies: the avatar's :class:`Reply` for each sentence sent, in order.
        llm_first_token_ms: LLM call → its first piece of text (kernel clock).
        llm_total_ms: LLM call → its last piece of text (kernel clock).
        first_sentence_ms: LLM call → the first sentence handed to the avatar (kernel clock).
        to_first_audio_ms: LLM call → the avatar's first ``audio_start``, when the stream's clock is the kernel's
            (``None`` over a browser transport, whose timestamps are on another clock).
    """

    user_text: str
    answer: str
    replies: tuple[Reply, ...]
    llm_first_token_ms: float | None
    llm_total_ms: float
    first_sentence_ms: float | None
    to_first_audio_ms: float | None


class SentenceSplitter:
    """Cuts a stream of text pieces into sentences, as soon as each one ends.

    >>> s = SentenceSplitter()
    >>> s.feed("Hello there. How")
    ['Hello there. ']
    >>> s.feed(" are you?") + s.flush()
    ['How are you?']
    """

    def __init__(self, min_chars: int = 1) -> None:
        self._buffer = ""
        self._min = min_chars

    def feed(self, piece: str) -> list[str]:
        """Add ``piece``; return the sentences it completed (each with its trailing whitespace)."""
        self._buffer += piece
        out: list[str] = []
        start = 0
        for match in _SENTENCE_END.finditer(self._buffer):
            if match.end() - start >= self._min:
                out.append(self._buffer[start : match.end()])
                start = match.end()
        self._buffer = self._buffer[start:]
        return [s for s in out if s.strip()]

    def flush(self) -> list[str]:
        """The rest of the text (the last sentence, possibly without an end mark)."""
        rest, self._buffer = self._buffer, ""
        return [rest] if rest.strip() else []


async def llm_pieces(fn: Callable[[str], Any], text: str) -> AsyncIterator[str]:
    """Call ``fn(text)`` and yield its text pieces, whatever shape it returns, without blocking the loop."""
    loop = asyncio.get_running_loop()
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        result: Any = fn(text)
    else:
        result = await loop.run_in_executor(None, fn, text)  # a blocking call (e.g. httpx sync) off the loop
    if inspect.isawaitable(result):
        result = await result
    if isinstance(result, str):
        yield result
    elif hasattr(result, "__aiter__"):
        async for piece in result:
            yield _check_piece(piece)
    elif isinstance(result, Iterable):
        iterator: Iterator[Any] = iter(result)
        done = object()
        while True:
            piece = await loop.run_in_executor(None, next, iterator, done)
            if piece is done:
                break
            yield _check_piece(piece)
    else:
        raise ValidationError(
            "llm",
            f"the LLM function returned {type(result).__name__}",
            allowed="str, an iterable or async iterable of str",
        )


def _check_piece(piece: object) -> str:
    if not isinstance(piece, str):
        raise ValidationError("llm", f"the LLM yielded {type(piece).__name__}", allowed="str pieces")
    return piece


def now_ns() -> int:
    """The kernel clock (``time.perf_counter_ns``)."""
    return time.perf_counter_ns()
