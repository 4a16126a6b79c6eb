"""What a live session hands back: replies with their timings, command acks and transcript entries.

Built by ``akool_lab.live`` and read by the metrics and widget layers (exported from both ``akool_lab.types`` and
``akool_lab.live``).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

__all__ = ["Ack", "Reply", "ReplyTimings", "TranscriptEntry", "default_reply_timeout", "derive_timings"]

#: A reply's default time budget: this much for the avatar to start and finish, plus :data:`_S_PER_WORD` a word.
_BASE_S = 30.0
#: Speech takes time: about 0.5 s a word at the slowest voice speed.
_S_PER_WORD = 0.5


def default_reply_timeout(text: str) -> float:
    """How long ``say``/``ask`` wait for the reply to ``text`` when no timeout is given, in seconds:
    30 s plus 0.5 s a word (speech takes about that long at the slowest speed).

    The one definition: the live stream, its blocking facade and the experiment runner all use it.

    >>> default_reply_timeout("Hello there")
    31.0
    """
    return _BASE_S + _S_PER_WORD * len(str(text).split())


def _ms(a: int | None, b: int | None) -> float | None:
    """``b - a`` in milliseconds, or None when either end is unknown. Both are ns on ONE clock."""
    if a is None or b is None:
        return None
    return (b - a) / 1e6


@dataclass(frozen=True, slots=True)
class ReplyTimings:
    """Timings of one message, all from timestamps on one clock (:attr:`clock`).

    Attributes:
        clock: the clock every timestamp came from (``"kernel"`` or ``"browser:<id>"``).
        chunks: how many chunks the message was split into when sent.
        send_span_ms: first chunk sent → last chunk sent (the cost of chunking and pacing).
        ttfr_ms: last chunk sent → first reply chunk received (time to first reply).
        ttfa_ms: last chunk sent → ``audio_start`` received (time to audio).
        reply_ms: last chunk sent → final reply chunk received.
        speak_ms: ``audio_start`` → ``audio_end`` (how long the avatar spoke).
        gaps_ms: gaps between consecutive reply chunks, in arrival order.
    """

    clock: str
    chunks: int
    send_span_ms: float | None
    ttfr_ms: float | None
    ttfa_ms: float | None
    reply_ms: float | None
    speak_ms: float | None
    gaps_ms: tuple[float, ...] = ()

    def as_dict(self) -> dict[str, object]:
        """The timings as a plain dict (for tables and JSON)."""
        out: dict[str, object] = asdict(self)
        out["gaps_ms"] = list(self.gaps_ms)
        return out


def derive_timings(
    *,
    clock: str,
    sent_ns: Sequence[int],
    recv_ns: Sequence[int],
    final_ns: int | None,
    audio_start_ns: int | None,
    audio_end_ns: int | None,
) -> ReplyTimings:
    """Derive :class:`ReplyTimings` from raw timestamps (all ns on ``clock``).

    This is the one definition of the message timings: :class:`~akool_lab.live.AvatarStream` uses it for each
    :class:`Reply`, and the metrics layer uses it on recorded events, so both always agree.

    Args:
        sent_ns: when each chunk of the message was sent, in send order.
        recv_ns: when each reply chunk arrived, in arrival order (duplicates already removed).
        final_ns: when the reply's final chunk arrived (None if the reply never completed).
    """
    # (Built for every reply: plain expressions, and the fields in their order.)
    if sent_ns:
        last_sent: int | None = sent_ns[-1]
        send_span_ms: float | None = (sent_ns[-1] - sent_ns[0]) / 1e6
    else:
        last_sent = send_span_ms = None
    return ReplyTimings(
        clock,
        len(sent_ns),  # chunks
        send_span_ms,
        _ms(last_sent, recv_ns[0] if recv_ns else None),  # ttfr_ms
        _ms(last_sent, audio_start_ns),  # ttfa_ms
        _ms(last_sent, final_ns),  # reply_ms
        _ms(audio_start_ns, audio_end_ns),  # speak_ms
        tuple((b - a) / 1e6 for a, b in itertools.pairwise(recv_ns)) if len(recv_ns) > 1 else (),  # gaps_ms
    )


@dataclass(frozen=True, slots=True)
class Reply:
    """The avatar's reply to one message.

    Attributes:
        mid: the id of the message that was sent (``say``/``ask``), which keys its timings and events.
        reply_mid: the id the avatar used for its reply chunks (may differ from :attr:`mid`).
        text: the reply's text (in mode 1, what the avatar spoke; in mode 2, its answer).
        prompt: the text that was sent.
        intent: ``"say"`` (mode 1), ``"ask"`` (mode 2) or ``"llm"`` (your own LLM's answer, spoken in mode 1).
        timings: the message's :class:`ReplyTimings`.
        complete: False when the reply was cut short (interrupted, no ``fin``, stream dropped).
        interrupted: True when :meth:`AvatarStream.interrupt` stopped it.
        reason: why it is incomplete, when it is.
        missing: chunk indexes that never arrived.
        echoed: False when, in mode 1, the avatar spoke but did not send the text back: the reply completed on its
            audio events and :attr:`text` is the text that was sent.
        completed_on: what ended the reply's text: ``"fin"`` (the avatar said it was the last chunk),
            ``"audio_end"`` (no ``fin``: the avatar finished speaking), ``"quiet"`` (neither came; given up),
            ``"interrupt"``, ``"timeout"``, ``"closed"`` or ``"none"`` (no reply). See ``docs/conversation.md``.
    """

    mid: str
    reply_mid: str | None
    text: str
    prompt: str
    intent: str
    timings: ReplyTimings
    complete: bool = True
    interrupted: bool = False
    reason: str | None = None
    missing: tuple[int, ...] = ()
    echoed: bool = True
    completed_on: str = "fin"

    def __str__(self) -> str:
        return self.text


@dataclass(frozen=True, slots=True)
class Ack:
    """A command's acknowledgement.

    Attributes:
        mid: the command's message id.
        cmd: the command (``"set-params"``, ``"interrupt"``, ``"set-action"``).
        code: AKool's code (1000 = OK); ``None`` when the avatar did not acknowledge it.
        msg: the service's message (or why there is none).
        ack_ms: command sent → ack received, on the transport's clock (``None`` without an ack).
        acknowledged: False for an ``interrupt`` that the avatar obeyed without acknowledging it (it completed at
            the next ``audio_end`` or at its timeout; see ``docs/conversation.md``, rule 7).
    """

    mid: str
    cmd: str
    code: int | None
    msg: str
    ack_ms: float | None
    acknowledged: bool = True

    @property
    def ok(self) -> bool:
        """Whether the command succeeded (code 1000)."""
        return self.code == 1000


@dataclass(slots=True)
class TranscriptEntry:
    """One line of the conversation, updated in place while the avatar's text streams in.

    Attributes:
        role: ``"you"`` (sent from here), ``"avatar"`` (the avatar's text) or ``"user"`` (speech the avatar heard).
        text: the text so far.
        mid: the message id (for the avatar: the id of the message it answers, when known).
        wall: ``time.time()`` when the entry started (display only).
        done: whether the entry is complete.
        reply: the :class:`Reply` once the avatar's entry is done (its timings).
    """

    role: str
    text: str
    mid: str | None
    wall: float
    done: bool = False
    reply: Reply | None = field(default=None, repr=False)
