"""Split a chat text into v2 chat messages that each fit a provider's byte budget (AKOOL_API.md 5.2 and 12.3).

The official demo assumes 4 bytes per character and halves chunks until they fit, which sends 1.14x to 1.40x the
text's bytes. Here the exact cost is known, so each chunk is filled to the budget:

- the whole text is JSON-escaped and UTF-8 encoded once (both in C), so the wire cost of any slice is its length
  and a chunk's text is a slice of those bytes, copied into its envelope as-is: no re-encoding, O(n) overall;
- a cut is a byte offset that splits neither a UTF-8 character (never before a 10xxxxxx continuation byte) nor a
  JSON escape (``\\"``, ``\\n``, ``\\u001f``...), so every chunk is valid JSON and decodes to whole characters;
- a cut prefers a sentence end, else a word boundary, in the last 20% of the chunk, but only while that does not
  cost an extra message (each extra one costs an envelope and pacing time): the slack between what the fewest
  messages can carry and the text is spread over the cuts, and each chunk may always give back 2% of its capacity
  to reach a word boundary.
"""

from __future__ import annotations

import re
from json.encoder import encode_basestring as _json_string

from akool_lab.errors import ValidationError
from akool_lab.protocol._codec import dumps, new_mid
from akool_lab.protocol._messages import PROTOCOL_VERSION
from akool_lab.protocol.limits import WEBSOCKET, ProviderBudget

__all__ = ["chat_envelope_bytes", "encode_chat"]

#: The least text room a chunk must have: 16 bytes hold any character (6 at most) beside 10 more digits of idx.
_MIN_CAPACITY = 16
_BACKSLASH = 0x5C

# Whitespace as it appears in the escaped stream: a space, or the escapes of tab, newline, carriage return, form feed.
_WS = rb"(?: |\\[tnrf])"
# The last sentence end in a window: ". " "! " "? " (with the whole following whitespace run), or a full-width
# 。！？ (CJK text puts no space after them). The greedy `.*` makes the match end at the last one.
_LAST_SENTENCE_END = re.compile(
    rb".*(?:[.!?]" + _WS + rb"+|(?:" + "。|！|？".encode() + rb")" + _WS + rb"*)", re.DOTALL
)
_LAST_SPACE = re.compile(rb".*" + _WS, re.DOTALL)

_SHORT_ESCAPES = tuple(
    (bytes([c]), b"\\" + e) for c, e in zip(b'\\"\b\f\n\r\t', (b"\\", b'"', b"b", b"f", b"n", b"r", b"t"), strict=True)
)
_OTHER_CONTROL = re.compile(rb"[\x00-\x07\x0b\x0e-\x1f]")
_ALL_BUT_OTHER_CONTROL = bytes(b for b in range(256) if not _OTHER_CONTROL.match(bytes([b])))

_FIN = {True: b',"fin":true,"pld":{"text":"', False: b',"fin":false,"pld":{"text":"'}
_TAIL = b'"}}'


def _head(mid_json: bytes) -> bytes:
    return b'{"v":%d,"type":"chat","mid":%s,"idx":' % (PROTOCOL_VERSION, mid_json)


def chat_envelope_bytes(mid: str, idx: int, fin: bool) -> int:
    """The bytes a chat message of this ``mid``, ``idx`` and ``fin`` costs on top of its JSON-escaped text."""
    return len(_head(dumps(mid))) + len(str(idx)) + len(_FIN[fin]) + len(_TAIL)


def _unicode_escape(match: re.Match[bytes]) -> bytes:
    return b"\\u%04x" % match[0][0]


def json_escape(raw: bytes) -> bytes:
    """UTF-8 text escaped exactly as ``json.dumps(text, ensure_ascii=False)`` escapes it, without the quotes.

    Works on the bytes: a handful of ``bytes.replace`` passes (memchr-fast) beat ``json.dumps`` on non-ASCII text
    several times over, and none of these ASCII bytes can occur inside a multi-byte UTF-8 sequence.
    """
    return _escape(raw)[0]


def _escape(raw: bytes) -> tuple[bytes, bool]:
    """:func:`json_escape`, and whether any ``\\u00XX`` escape was needed (for the chunker's granularity)."""
    # The backslash goes first, so that the backslashes the other escapes add are not doubled.
    for plain, escape in _SHORT_ESCAPES:
        if plain in raw:
            raw = raw.replace(plain, escape)
    # Rare control characters: a C-speed translate tells whether the (slower) regular expression is needed.
    if raw.translate(None, _ALL_BUT_OTHER_CONTROL):
        return _OTHER_CONTROL.sub(_unicode_escape, raw), True
    return raw, False


def encode_chat(text: str, mid: str | None = None, budget: ProviderBudget = WEBSOCKET) -> list[bytes]:
    """Encode ``text`` as the chat messages to send, each at most ``budget.max_message_bytes``.

    The messages share one ``mid`` (a fresh one unless given), have ``idx`` 0..n-1 and ``"fin":true`` only on the
    last; concatenating their texts gives back ``text`` exactly.

    >>> [len(m) for m in encode_chat("Hello. " * 300, mid="m1")]
    [959, 959, 391]

    Raises:
        ValidationError: ``text`` is not a string, is empty or whitespace only, or contains a lone surrogate;
            ``mid`` is empty or so long that no text fits beside it.
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
    escaped, long_escapes = _escape(raw)
    # What dumps(mid) returns for a string, without building a JSONEncoder (the cost of a whole one-chunk encode).
    return _Chunker(escaped, long_escapes, _head(_json_string(mid).encode("utf-8")), budget.max_message_bytes).run()


class _Chunker:
    """One encode_chat call: the escaped text and the greedy cut loop."""

    def __init__(self, escaped: bytes, long_escapes: bool, head: bytes, max_bytes: int) -> None:
        self.escaped = escaped
        self.long_escapes = long_escapes
        self.head = head
        self.max_bytes = max_bytes

    def capacity(self, idx: int, fin: bool) -> int:
        """The escaped text bytes that fit beside the envelope of chunk ``idx``."""
        return self.max_bytes - len(self.head) - len(str(idx)) - len(_FIN[fin]) - len(_TAIL)

    def granularity(self) -> int:
        """The most capacity a chunk can leave unused because the next character or escape does not fit whole.

        Conservative (3 for any non-ASCII text) because it only trims the slack kept for nicer cuts.
        """
        escaped = self.escaped
        if self.long_escapes:
            return 5
        if not escaped.isascii():
            return 3
        return 1 if b"\\" in escaped else 0

    def plan(self) -> tuple[int, int]:
        """The fewest chunks that surely carry the text, and the slack they leave for nicer cuts.

        Solved per band of ``idx`` with the same number of digits (so the same envelope), in closed form.
        """
        loss, total = self.granularity(), len(self.escaped)
        room, room_last = self.capacity(0, False) + 1, self.capacity(0, True) + 1  # + 1: idx 0's digit
        carried, idx, digits, band_end = 0, 0, 1, 10
        while True:
            per_chunk, last = room - digits - loss, room_last - digits
            need = total - last - carried
            more = 0 if need <= 0 else -(-need // per_chunk)
            if idx + more < band_end:
                idx, carried = idx + more, carried + more * per_chunk
                return idx + 1, carried + last - total
            carried += (band_end - idx) * per_chunk
            idx, digits, band_end = band_end, digits + 1, band_end * 10

    def boundary(self, start: int, end: int) -> int:
        """The last offset at or before ``end`` that splits neither a UTF-8 character nor a JSON escape.

        ``start`` must itself be such a boundary.
        """
        escaped = self.escaped
        while start < end < len(escaped) and escaped[end] & 0xC0 == 0x80:
            end -= 1
        backslash = escaped.rfind(b"\\", max(start, end - 5), end)
        if backslash < 0:
            return end
        # Inside a run of backslashes, escapes start at even offsets from a boundary ("\\\\" is two "\\").
        run_start = backslash
        while run_start > start and escaped[run_start - 1] == _BACKSLASH:
            run_start -= 1
        if (backslash - run_start) % 2:
            return end  # the second half of "\\": that escape ends before `end`
        length = 6 if escaped[backslash + 1] == ord("u") else 2
        return end if backslash + length <= end else backslash

    def nice_cut(self, start: int, end: int, allowed: int) -> int:
        """The last sentence end, else word boundary, within ``allowed`` bytes before ``end``; else ``end``."""
        low = max(start + 1, end - allowed)
        window = self.escaped[low:end]
        match = _LAST_SENTENCE_END.match(window) or _LAST_SPACE.match(window)
        # A match ends after a space, a whole 。！？ or the letter of an escape ("\\n"), so between two characters:
        # a window that starts mid-character or mid-escape cannot match there (those bytes are continuation bytes
        # or hex digits). A literal backslash before an "n" may pass for a newline: harmless.
        return low + match.end() if match else end

    def run(self) -> list[bytes]:
        # The hot loop: about a thousand chunks per MB, so the envelope arithmetic is hoisted out of capacity().
        room_last = self.capacity(0, True) + 1  # + 1: capacity() already counted idx 0's one digit
        room = self.capacity(0, False) + 1
        if room - 1 < _MIN_CAPACITY:
            # Also what keeps plan() finite: every chunk must carry something.
            raise ValidationError(
                "mid", "is too long for the budget: no room is left for the text", allowed="ids of a few dozen bytes"
            )
        size = len(self.escaped)
        head, fin_false, fin_true, tail, escaped = self.head, _FIN[False], _FIN[True], _TAIL, self.escaped
        if size <= room_last - 1:  # the usual short message: one chunk, no planning
            return [b"".join((head, b"0", fin_true, escaped, tail))]
        planned, slack = self.plan()
        out: list[bytes] = []
        start, idx, digits, next_digit_at = 0, 0, 1, 10
        while size - start > room_last - digits:
            capacity = room - digits
            end = start + capacity
            # Most cuts land on an ASCII or lead byte with no escape nearby: skip the call then.
            if escaped[end] & 0xC0 == 0x80 or escaped.rfind(b"\\", end - 5, end) >= 0:
                end = self.boundary(start, end)
            # Spread the slack over the remaining cuts, never more than the last 20% of a chunk.
            allowed = min(capacity // 5, max(slack // max(1, planned - 1 - idx), capacity // 50))
            cut = self.nice_cut(start, end, allowed)
            slack -= end - cut
            out.append(b"".join((head, b"%d" % idx, fin_false, escaped[start:cut], tail)))
            start, idx = cut, idx + 1
            if idx == next_digit_at:
                digits, next_digit_at = digits + 1, next_digit_at * 10
        out.append(b"".join((head, b"%d" % idx, fin_true, escaped[start:], tail)))
        return out
