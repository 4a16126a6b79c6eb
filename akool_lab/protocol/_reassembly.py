"""Reassembly of chunked chat replies by ``mid`` (AKOOL_API.md section 5.4), with arrival times for the timings."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from akool_lab.errors import ValidationError
from akool_lab.protocol._messages import ChatChunk

__all__ = ["ReassembledReply", "Reassembler"]

#: How many finished replies are remembered so that late duplicates of their chunks are ignored.
_REMEMBERED = 4096


@dataclass(frozen=True, slots=True)
class ReassembledReply:
    """One chat message put back together from its chunks: a bot reply, or a user-speech transcript."""

    mid: str
    """The message id its chunks shared."""
    sender: str | None
    """``"bot"``, ``"user"``, or ``None`` for chunks without ``from``."""
    text: str
    """The texts of the chunks that arrived, in ``idx`` order."""
    chunk_times: tuple[int, ...]
    """The arrival time (ns) of each chunk that arrived, in ``idx`` order."""
    first_ns: int
    """The earliest arrival time (ns)."""
    last_ns: int
    """The latest arrival time (ns)."""
    complete: bool
    """True when ``fin`` arrived and every chunk before it too."""
    missing: tuple[int, ...] = ()
    """The ``idx`` values that never arrived (up to ``fin``, or up to the highest ``idx`` seen without one)."""
    chunks: int = 0
    """How many distinct chunks arrived."""
    reason: str | None = field(default=None)
    """Why an incomplete reply was given up (``"no fin before timeout"``, ``"missing chunks before timeout"``,
    ``"flushed"``); ``None`` when complete."""


class _Pending:
    __slots__ = ("fin_idx", "last_ns", "parts")

    def __init__(self, now: int) -> None:
        self.parts: dict[int, tuple[str, int]] = {}
        self.fin_idx: int | None = None
        self.last_ns = now

    def reply(self, mid: str, sender: str | None, reason: str | None) -> ReassembledReply:
        # Chunks beyond a known fin are not part of the message (a peer's bug); leave them out.
        order = sorted(i for i in self.parts if self.fin_idx is None or i <= self.fin_idx)
        top = self.fin_idx if self.fin_idx is not None else (order[-1] if order else -1)
        times = tuple(self.parts[i][1] for i in order)
        return ReassembledReply(
            mid=mid,
            sender=sender,
            text="".join(self.parts[i][0] for i in order),
            chunk_times=times,
            first_ns=min(times, default=self.last_ns),
            last_ns=max(times, default=self.last_ns),
            complete=reason is None,
            missing=tuple(i for i in range(top + 1) if i not in self.parts),
            chunks=len(order),
            reason=reason,
        )

    def done(self) -> bool:
        return self.fin_idx is not None and all(i in self.parts for i in range(self.fin_idx + 1))


class Reassembler:
    """Collects incoming chat chunks and hands back each message once all of it has arrived.

    Chunks may come duplicated or out of order (a duplicate keeps its first arrival time). Messages are keyed by
    ``(sender, mid)`` so that user speech and bot replies never mix. A message whose last chunk arrived more than
    ``timeout_ns`` ago without completing is given up by :meth:`expire`, with what did arrive.

    >>> r = Reassembler(timeout_ns=5_000_000_000)
    >>> r.feed(ChatChunk("m", 1, True, "world", "bot"), now=20)
    >>> r.feed(ChatChunk("m", 0, False, "Hello ", "bot"), now=10).text
    'Hello world'
    """

    def __init__(self, timeout_ns: int) -> None:
        if isinstance(timeout_ns, bool) or not isinstance(timeout_ns, int) or timeout_ns <= 0:
            raise ValidationError("timeout_ns", f"must be a positive integer, got {timeout_ns!r}", allowed="> 0")
        self.timeout_ns = timeout_ns
        self._pending: dict[tuple[str | None, str], _Pending] = {}
        self._finished: OrderedDict[tuple[str | None, str], None] = OrderedDict()

    @property
    def pending(self) -> int:
        """How many messages are waiting for chunks."""
        return len(self._pending)

    def feed(self, chunk: ChatChunk, now: int) -> ReassembledReply | None:
        """Add one chunk that arrived at ``now`` (ns); returns the message when this chunk completed it."""
        key = (chunk.sender, chunk.mid)
        if key in self._finished:
            return None  # a late duplicate of a message already handed back
        pending = self._pending.get(key)
        if pending is None:
            pending = self._pending[key] = _Pending(now)
        if chunk.idx not in pending.parts:
            pending.parts[chunk.idx] = (chunk.text, now)
        pending.last_ns = max(pending.last_ns, now)
        if chunk.fin and (pending.fin_idx is None or chunk.idx < pending.fin_idx):
            pending.fin_idx = chunk.idx
        if not pending.done():
            return None
        return self._finish(key, None)

    def expire(self, now: int) -> list[ReassembledReply]:
        """Give up the messages whose last chunk arrived more than ``timeout_ns`` before ``now``, as incomplete."""
        stale = [key for key, pending in self._pending.items() if now - pending.last_ns > self.timeout_ns]
        replies = []
        for key in stale:
            reason = "no fin before timeout" if self._pending[key].fin_idx is None else "missing chunks before timeout"
            replies.append(self._finish(key, reason))
        return replies

    def flush(self, mid: str, sender: str | None = "bot") -> ReassembledReply | None:
        """Give up one message now, as incomplete with what arrived (after an interrupt); ``None`` if not pending."""
        if (sender, mid) not in self._pending:
            return None
        return self._finish((sender, mid), "flushed")

    def _finish(self, key: tuple[str | None, str], reason: str | None) -> ReassembledReply:
        pending = self._pending.pop(key)
        self._finished[key] = None
        if len(self._finished) > _REMEMBERED:
            self._finished.popitem(last=False)
        return pending.reply(key[1], key[0], reason)
