"""Split a chat text into v2 chat messages that each fit a provider's byte budget (AKOOL_API.md 5.2 and 12.3).

The official demo assumes 4 bytes per character and halves chunks until they fit, which sends 1.14x to 1.40x the
text's bytes. Here the exact JSON cost of the text is known up front, so each chunk is filled to the budget:

- the text is encoded to UTF-8 once and every cut is a byte offset on a code point boundary;
- a chunk's wire size is its envelope plus the byte length of its slice plus the extra bytes JSON escaping adds
  (``"`` and ``\\`` cost 2, control characters 2 or 6); the few characters that need escaping are found once by a
  regular expression and summed in a prefix array, so the cost of any slice is two bisections, never a re-encode;
- a cut prefers a sentence end, else a word boundary, in the last 20% of the chunk, but only while that does not cost
  an extra message: the slack between the fewest messages that can carry the text and the text itself is spread over
  the cuts (each chunk may always give back 2% of its capacity to reach a word boundary).
"""

from __future__ import annotations

import json
import re
from bisect import bisect_left

from akool_lab.errors import ValidationError
from akool_lab.protocol._codec import dumps, new_mid
from akool_lab.protocol._messages import PROTOCOL_VERSION
from akool_lab.protocol.limits import WEBSOCKET, ProviderBudget

__all__ = ["chat_envelope_bytes", "encode_chat"]

# Characters that JSON escapes when ensure_ascii=False: all ASCII, so they never occur inside a multi-byte sequence.
_NEEDS_ESCAPE = re.compile(rb'["\\\x00-\x1f]')
# Extra bytes over the raw byte: two-character escapes cost 1 more, \u00XX escapes 5 more.
_EXTRA = [5] * 32 + [0] * 96
for _c in b'"\\\b\f\n\r\t':
    _EXTRA[_c] = 1

#: The least text room a chunk must have: 16 bytes hold any character (6 at most) beside 10 more digits of idx.
_MIN_CAPACITY = 16

_WS = rb"[ \t\n\r\f\v]"
# The last sentence end in a window: ". " "! " "? " (with the whole following whitespace run), or a full-width
# 。！？ (CJK text has no spaces after them). Greedy `.*` makes the match end at the last one.
_LAST_SENTENCE_END = re.compile(
    rb".*(?:[.!?]" + _WS + rb"+|(?:" + "。|！|？".encode() + rb")" + _WS + rb"*)", re.DOTALL
)
_LAST_SPACE = re.compile(rb".*" + _WS, re.DOTALL)


def chat_envelope_bytes(mid: str, idx: int, fin: bool) -> int:
    """The bytes a chat message of this ``mid``, ``idx`` and ``fin`` costs on top of its JSON-escaped text."""
    return len(_head(dumps(mid))) + len(str(idx)) + len(_FIN[fin]) + len(_TAIL)


def _head(mid_json: bytes) -> bytes:
    return b'{"v":%d,"type":"chat","mid":%s,"idx":' % (PROTOCOL_VERSION, mid_json)


_FIN = {True: b',"fin":true,"pld":{"text":"', False: b',"fin":false,"pld":{"text":"'}
_TAIL = b'"}}'


def encode_chat(text: str, mid: str | None = None, budget: ProviderBudget = WEBSOCKET) -> list[bytes]:
    """Encode ``text`` as the chat messages to send, each at most ``budget.max_message_bytes``.

    The messages share one ``mid`` (a fresh one unless given), have ``idx`` 0..n-1 and ``"fin":true`` only on the
    last; concatenating their texts gives back ``text`` exactly.

    >>> [len(m) for m in encode_chat("Hello. " * 300, mid="m1")]
    [959, 959, 391]

    Raises:
        ValidationError: ``text`` is not a string, is empty or whitespace only, or contains a lone surrogate;
            ``mid`` is empty or so long that no character fits beside it.
    """
    if not isinstance(text, str):
        raise ValidationError("text", f"must be a string, got {type(text).__name__}", allowed="non-empty text")
    if not text.strip():
        raise ValidationError("text", "is empty or whitespace only", allowed="non-empty text")
    if mid is None:
        mid = new_mid()
    elif not isinstance(mid, str) or not mid:
        raise ValidationError("mid", f"must be a non-empty string, got {mid!r}", allowed="a non-empty string")
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValidationError("text", "contains a lone surrogate, which UTF-8 cannot carry") from None
    return _Chunker(raw, _head(dumps(mid)), budget.max_message_bytes).run()


class _Chunker:
    """One encode_chat call: the text's bytes, its escape costs, and the greedy cut loop."""

    def __init__(self, raw: bytes, head: bytes, max_bytes: int) -> None:
        self.raw = raw
        self.head = head
        self.max_bytes = max_bytes
        # Positions of the bytes that need escaping and the running sum of their extra cost.
        self.positions: list[int] = []
        self.extra: list[int] = [0]
        for match in _NEEDS_ESCAPE.finditer(raw):
            self.positions.append(match.start())
            self.extra.append(self.extra[-1] + _EXTRA[raw[match.start()]])

    def capacity(self, idx: int, fin: bool) -> int:
        """The text bytes (JSON-escaped) that fit beside the envelope of chunk ``idx``."""
        return self.max_bytes - len(self.head) - len(str(idx)) - len(_FIN[fin]) - len(_TAIL)

    def cost(self, start: int, end: int) -> int:
        """The JSON-escaped byte length of ``raw[start:end]``."""
        if not self.positions:
            return end - start
        return (
            end - start + self.extra[bisect_left(self.positions, end)] - self.extra[bisect_left(self.positions, start)]
        )

    def granularity(self) -> int:
        """The most capacity a chunk can leave unused because the next character does not fit whole."""
        if self.extra[-1] and any(_EXTRA[self.raw[p]] == 5 for p in self.positions):
            return 5
        if re.search(rb"[\xf0-\xf7]", self.raw):
            return 3
        if re.search(rb"[\xe0-\xef]", self.raw):
            return 2
        if self.extra[-1] or re.search(rb"[\xc0-\xdf]", self.raw):
            return 1
        return 0

    def plan(self, total: int) -> tuple[int, int]:
        """The fewest chunks that surely carry ``total`` escaped bytes, and the slack they leave for nicer cuts."""
        loss = self.granularity()
        carried, idx = 0, 0
        while carried + self.capacity(idx, True) < total:
            carried += self.capacity(idx, False) - loss
            idx += 1
        return idx + 1, carried + self.capacity(idx, True) - total

    def hard_cut(self, start: int, capacity: int) -> int:
        """The furthest code point boundary whose slice from ``start`` costs at most ``capacity``."""
        raw = self.raw
        end = min(len(raw), start + capacity)
        if self.cost(start, end) > capacity:
            # Escapes in the way: the cost is increasing in `end`, so bisect for the last end that fits.
            low, high = start, end
            while low < high:
                middle = (low + high + 1) // 2
                if self.cost(start, middle) <= capacity:
                    low = middle
                else:
                    high = middle - 1
            end = low
        # Step back off UTF-8 continuation bytes (10xxxxxx) so that no character is split.
        while start < end < len(raw) and raw[end] & 0xC0 == 0x80:
            end -= 1
        return end

    def nice_cut(self, start: int, end: int, allowed: int) -> int:
        """The last sentence end, else word boundary, within ``allowed`` bytes before ``end``; else ``end``."""
        low = max(start + 1, end - allowed)
        window = self.raw[low:end]
        match = _LAST_SENTENCE_END.match(window) or _LAST_SPACE.match(window)
        return low + match.end() if match else end

    def chunk(self, start: int, end: int, idx: int, fin: bool) -> bytes:
        piece = self.raw[start:end]
        if self.cost(start, end) != end - start:
            piece = json.dumps(piece.decode("utf-8"), ensure_ascii=False)[1:-1].encode("utf-8")
        return b"".join((self.head, b"%d" % idx, _FIN[fin], piece, _TAIL))

    def run(self) -> list[bytes]:
        size = len(self.raw)
        if self.capacity(0, False) < _MIN_CAPACITY:
            # Also what keeps plan() finite: every chunk must carry something.
            raise ValidationError(
                "mid", "is too long for the budget: no room is left for the text", allowed="ids of a few dozen bytes"
            )
        planned, slack = self.plan(self.cost(0, size))
        out: list[bytes] = []
        start, idx = 0, 0
        while self.cost(start, size) > self.capacity(idx, True):
            capacity = self.capacity(idx, False)
            end = self.hard_cut(start, capacity)
            # Spread the slack over the remaining cuts, never more than the last 20% of a chunk.
            allowed = min(capacity // 5, max(slack // max(1, planned - 1 - idx), capacity // 50))
            cut = self.nice_cut(start, end, allowed)
            slack -= self.cost(cut, end)
            out.append(self.chunk(start, cut, idx, False))
            start, idx = cut, idx + 1
        out.append(self.chunk(start, size, idx, True))
        return out
