"""The conversation over the data channel as a sans-IO state machine: which reply, ack and audio event belongs to
which message.

Nothing here reads a clock, sleeps or touches a socket (the h11 way). The events it returns are plain records:
treat them as read-only. The caller tells the machine what it sent
and when (:meth:`Conversation.add_message`, :meth:`~Conversation.chunk_sent`, :meth:`~Conversation.command_sent`),
feeds it every received frame with its arrival time (:meth:`~Conversation.feed`), and calls
:meth:`~Conversation.expire` once :meth:`~Conversation.next_deadline` has passed. Each call returns the events
that happened, in order. Times are integer nanoseconds on one clock (the transport's).

The rules (written for users in ``docs/conversation.md``; each has a test in ``tests/protocol/test_conversation.py``).
They are as tolerant as AKool's official clients, which append an avatar's text per ``mid`` in arrival order and
take any inbound command with ``pld.code`` as an ack:

1. **Chunks.** A reply's chunks are ordered and de-duplicated by ``idx`` when they carry one, else taken in arrival
   order (and never de-duplicated: two equal pieces of text may both be real).
2. **End of a reply's text.** At ``fin`` (once every ``idx`` before it arrived) when the avatar sends it; else at
   the reply's ``audio_end`` (unless rule 10 expects ``fin``); else, when neither comes, after a quiet period
   (``quiet_ns`` without a chunk, while the avatar is not speaking): then the reply is incomplete, ``"no fin
   before timeout"``. Chunks still missing at ``fin`` or ``audio_end`` are waited for during the quiet period,
   then reported in ``missing``.
3. **Mode 1 without echo.** A message sent with ``echo=True`` (retelling: the avatar speaks the text verbatim)
   whose reply brings audio events but no text completes at ``audio_end`` (unless rule 10 expects the echo); its
   reply says ``echoed=False`` and its text is the text that was sent.
4. **Acks.** An ack (``type`` ``command``, ``cmd`` or ``ack``, with ``pld.code``) matches the pending command whose
   ``mid`` it carries (``pld.original_mid`` for ``ack``); else the oldest pending command with the same ``cmd``;
   else, when it names no command, the oldest pending command. A second ack for an already acknowledged ``mid``
   is a duplicate, never taken for another command. A ``command`` without ``pld.code`` is an echo, not an ack.
5. **Attribution.** A reply whose ``mid`` is the ``mid`` of a sent message belongs to it. Otherwise replies answer
   their causes in order: each sent message (once its last chunk is sent) and each utterance of the user (heard
   by the avatar, ``from: "user"``) is a cause, and a reply's first chunk takes the oldest cause that happened
   before it arrived. A reply with no such cause (a knowledge-base greeting at join) is unsolicited, and so is the
   answer to the user's speech: neither ever shifts the replies to sent messages. In mode 1 the text tells them
   apart when the order cannot: a reply that is the echo of a message waiting behind user utterances (and not of
   what the user said) belongs to that message (the avatar does not answer everything it hears), and one that is
   the echo of an utterance queued behind a message (heard by the avatar before the message arrived) answers it.
6. **Audio events.** ``audio_start``/``audio_end`` belong to the reply whose ``mid`` they carry, else to the oldest
   reply that has not started (ended) speaking; an ``audio_start`` with no reply yet opens the reply of the oldest
   cause, which the first chunk of text then joins, unless the ``audio_start`` named another ``mid`` (an audio
   event's ``mid`` is taken to be its reply's, as in the simulator).
7. **Interrupt.** Sending ``interrupt`` cuts every reply in flight (interrupted, with the text that arrived) and
   stops the message being sent. Without an ack, the interrupt completes at the next ``audio_end`` (plus half a
   second for a late ack) or after its timeout and says it was not acknowledged (:attr:`CommandUnacked.fatal` False); ``strict_interrupt=True`` makes
   that an error like any other missing ack.
8. **Frames not understood** (not JSON, ``v`` other than 2, unknown ``type``, unknown event names, echoes, late
   duplicates) become :class:`Ignored` events with the reason. Nothing received ever raises or ends the session.
9. **Every message ends**: complete, incomplete with a reason, or timed out at its deadline.
10. **What this avatar sends, learned** (``expect_fin``/``expect_echo`` ``None``), so that a lost tail is not taken
    for a dialect. Once a bot reply arrived with ``fin`` (any bot reply, even a late chunk; user speech teaches
    nothing), a reply whose text all arrived but without ``fin`` waits the quiet period after its ``audio_end``,
    then is incomplete (``"no fin, although this avatar ends its replies with fin: ..."``), unless it is the
    echo of exactly the words of its mode-1 message. Once the text of a mode-1 message came back, a mode-1 reply
    with audio but no text is incomplete at its ``audio_end`` (``"no text arrived, although this avatar echoes
    say() text: ..."``). Two replies in a row without ``fin`` (resp. mode-1 replies without text) and with no
    sign of loss (a gap in ``idx``, a mode-1 echo cut short: they restart the count and never count) unlearn
    it; the next ``fin`` (resp. echo) teaches it again. ``True`` always expects it, ``False`` never does.
"""

from __future__ import annotations

import bisect
import re
from collections import OrderedDict, deque
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, TypeAlias

from akool_lab.errors import ProtocolError, ValidationError
from akool_lab.protocol._codec import decode
from akool_lab.protocol._messages import Ack, ChatChunk, Command, Message, ServerEvent, Unknown

__all__ = [
    "AckMatched",
    "AudioEvent",
    "CommandUnacked",
    "Conversation",
    "ConversationEvent",
    "ConversationReply",
    "Ignored",
    "OtherEvent",
    "ReplyEnded",
    "ReplyPiece",
    "ServerError",
    "UnmatchedAck",
    "UserSpeech",
]

#: How many finished replies and acked commands are remembered, so that late duplicates are recognised.
_REMEMBERED = 4096
_NS = 1_000_000_000
_WORD = re.compile(r"\w+")
#: Rule 10: after this many replies in a row without what the avatar was seen to send (and no sign of loss), it is
#: taken to have stopped sending it.
_UNLEARN = 2
#: The reasons of rule 10.
_LOST_TAIL = "no fin, although this avatar ends its replies with fin: its last chunks were probably lost"
_NO_ECHO = "no text arrived, although this avatar echoes say() text: it was probably lost"


# ---------------------------------------------------------------------------------------------------------- events


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class ConversationReply:
    """How one reply ended, with every raw timestamp (ns on the caller's clock) needed for its timings."""

    owner: str | None
    """The ``mid`` of the sent message it answers; ``None`` for an unsolicited reply (greeting, user speech)."""
    reply_mid: str | None
    """The ``mid`` the avatar used for its chunks (``None`` when no chunk arrived)."""
    text: str
    """The text: chunks in ``idx`` order (or arrival order), or the sent text when it was not echoed."""
    sent_ns: tuple[int, ...]
    """When each chunk of the owner message was sent."""
    recv_ns: tuple[int, ...]
    """When each distinct reply chunk arrived, in arrival order."""
    final_ns: int | None
    """When the last chunk of a complete text arrived (``None`` if incomplete or not echoed)."""
    audio_start_ns: int | None
    """When its ``audio_start`` arrived (``None`` if none did)."""
    audio_end_ns: int | None
    """When its ``audio_end`` arrived (``None`` if none did)."""
    complete: bool
    """The whole reply arrived (and, for an owner waiting for ``audio_end``, it finished speaking)."""
    interrupted: bool = False
    reason: str | None = None
    """Why it is incomplete; ``None`` when complete."""
    missing: tuple[int, ...] = ()
    """``idx`` values that never arrived."""
    echoed: bool = True
    """False when a mode-1 message completed on its audio events without its text coming back."""
    text_end: str = "fin"
    """What ended the text: ``"fin"``, ``"audio_end"`` (no ``fin`` sent), ``"quiet"`` (gave up waiting),
    ``"interrupt"``, ``"timeout"``, ``"closed"`` or ``"none"`` (no reply at all)."""
    timed_out: bool = False
    """The owner's deadline passed."""
    abandoned: bool = False
    """The owner's caller had given up (:meth:`Conversation.cancel`) before the reply ended."""
    error: tuple[int | None, str] | None = None
    """``(code, msg)`` of an ``error`` event that rejected the owner message."""


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class ReplyPiece:
    """A new (not duplicate) chunk of the avatar's text."""

    owner: str | None
    reply_mid: str
    idx: int | None
    """``None`` when the chunk carried no ``idx``."""
    fin: bool
    text: str
    t_ns: int


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class UserSpeech:
    """A chunk of what the avatar heard the user say (``from: "user"``)."""

    mid: str
    idx: int | None
    fin: bool
    piece: str
    text: str
    """The whole utterance so far, in order."""
    done: bool
    t_ns: int


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class AudioEvent:
    """``audio_start`` or ``audio_end``, attributed when possible."""

    name: str
    owner: str | None
    reply_mid: str | None
    t_ns: int
    attributed: bool


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class ReplyEnded:
    """A reply ended (or a sent message ended without one)."""

    reply: ConversationReply


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class AckMatched:
    """A command's ack."""

    mid: str
    cmd: str
    code: int
    msg: str
    sent_ns: int
    t_ns: int
    matched_by: str
    """``"mid"``, ``"cmd"`` (the ack had no usable ``mid``) or ``"oldest"`` (it named no command either)."""


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class CommandUnacked:
    """A command ended without an ack."""

    mid: str
    cmd: str
    sent_ns: int
    t_ns: int
    """When it was given up, on the caller's clock (``now``), unlike the transport stamps of other events."""
    reason: str
    """``"timeout"`` or ``"audio_end"`` (an interrupt that the avatar obeyed without acknowledging)."""
    fatal: bool
    """True when this is an error for the caller (any command but a non-strict interrupt)."""


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class UnmatchedAck:
    """An ack for no pending command (a duplicate, a late one, or one for another client)."""

    ack: Ack
    t_ns: int
    reason: str


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class ServerError:
    """An ``error`` event; :attr:`rejected` names a sent message it ended (``pld.ref_mid``)."""

    code: int | None
    msg: str
    rejected: str | None
    pld: Mapping[str, Any]
    t_ns: int


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class OtherEvent:
    """An event whose name this package does not interpret (kept whole, ignored for the conversation)."""

    name: str
    mid: str | None
    pld: Mapping[str, Any]
    t_ns: int


@dataclass(slots=True)  # not frozen: built on every frame, and frozen init is several times slower
class Ignored:
    """A frame, or part of one, that changed nothing, and why."""

    reason: str
    t_ns: int
    message: Message | None = None
    data: bytes | str | None = field(default=None, repr=False)
    """The raw bytes when they could not be decoded (truncated to 200)."""


ConversationEvent: TypeAlias = (
    ReplyPiece
    | UserSpeech
    | AudioEvent
    | ReplyEnded
    | AckMatched
    | CommandUnacked
    | UnmatchedAck
    | ServerError
    | OtherEvent
    | Ignored
)


# ---------------------------------------------------------------------------------------------------------- state


class _Msg:
    __slots__ = (
        "abandoned",
        "chunks",
        "deadline",
        "echo",
        "ended",
        "interrupted",
        "mid",
        "sending",
        "sent_ns",
        "slot",
        "text",
        "timeout_ns",
        "until",
    )

    def __init__(self, mid: str, text: str, chunks: int, until: str, echo: bool, deadline: int, timeout_ns: int):
        self.mid = mid
        self.text = text
        self.chunks = chunks
        self.until = until
        self.echo = echo
        self.deadline = deadline
        self.timeout_ns = timeout_ns
        self.sent_ns: list[int] = []
        self.slot: _Slot | None = None
        self.interrupted = False
        self.abandoned = False
        self.ended = False
        self.sending = False

    @property
    def fully_sent(self) -> bool:
        return len(self.sent_ns) >= self.chunks


class _UserTurn:
    __slots__ = ("mid", "utterance")

    def __init__(self, mid: str, utterance: _UserUtterance) -> None:
        self.mid = mid
        self.utterance = utterance


class _Slot:
    """One reply of the avatar, while it is open."""

    __slots__ = (
        "audio_end_ns",
        "audio_mid",
        "audio_start_ns",
        "delivered",
        "fin_idx",
        "fin_seen",
        "indexed",
        "interrupt_deadline",
        "interrupted",
        "last_ns",
        "owner",
        "parts",
        "recv_ns",
        "reply_mid",
        "start_ns",
        "text_done_ns",
        "text_end",
        "text_reason",
        "unindexed",
    )

    def __init__(self, owner: _Msg | None, reply_mid: str | None, now: int) -> None:
        self.owner = owner
        self.reply_mid = reply_mid
        self.audio_mid: str | None = None
        self.start_ns = now
        self.last_ns = now
        self.parts: dict[int, tuple[str, int]] = {}
        self.unindexed: list[tuple[str, int]] = []
        self.indexed = True
        self.recv_ns: list[int] = []
        self.fin_seen = False
        self.fin_idx: int | None = None
        self.audio_start_ns: int | None = None
        self.audio_end_ns: int | None = None
        self.interrupted = False
        self.interrupt_deadline: int | None = None
        self.text_done_ns: int | None = None
        self.text_end = "fin"
        self.text_reason: str | None = None
        self.delivered = False

    @property
    def key(self) -> str | None:
        return self.owner.mid if self.owner is not None else self.reply_mid

    @property
    def has_text(self) -> bool:
        return bool(self.parts or self.unindexed)

    def missing(self) -> tuple[int, ...]:
        parts = self.parts
        if not parts:
            return ()
        top = self.fin_idx if self.fin_idx is not None else max(parts)
        if len(parts) == top + 1 and top in parts:  # the usual case: 0..top all there (and nothing beyond)
            return ()
        return tuple(i for i in range(top + 1) if i not in parts)

    def text(self) -> str:
        if self.indexed:
            parts = self.parts
            if len(parts) == 1:
                ((idx, (text, _)),) = parts.items()
                return text if self.fin_idx is None or idx <= self.fin_idx else ""
            order = sorted(i for i in parts if self.fin_idx is None or i <= self.fin_idx)
            return "".join(parts[i][0] for i in order)
        # Some chunks had no idx: arrival order for all (the official clients' rule).
        return "".join(text for text, _ in self.unindexed)

    def last_chunk_ns(self) -> int | None:
        return max(self.recv_ns) if self.recv_ns else None


class _Cmd:
    __slots__ = ("cmd", "deadline", "mid", "sent_ns", "stopped")

    def __init__(self, mid: str, cmd: str, sent_ns: int, deadline: int) -> None:
        self.mid = mid
        self.cmd = cmd
        self.sent_ns = sent_ns
        self.deadline = deadline
        self.stopped = False  # an interrupt after which the avatar stopped speaking (audio_end)


def _positive(name: str, value: object) -> int:
    if type(value) is int and value > 0:  # the usual case, at once (a bool is not exactly an int)
        return value
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValidationError(name, f"must be a positive integer (ns), got {value!r}", allowed="> 0")
    return value


class Conversation:
    """Which reply, ack and audio event belongs to which message: see the module docstring for the rules.

    >>> conv = Conversation()
    >>> conv.add_message("m1", "Hello", chunks=1, now=0, timeout_ns=30 * 10**9, echo=True)
    >>> conv.chunk_sent("m1", now=1_000)
    []
    >>> events = conv.feed(b'{"v":2,"type":"chat","mid":"r1","idx":0,"fin":true,"pld":{"from":"bot","text":"Hello"}}', 5_000)
    >>> [type(e).__name__ for e in events]
    ['ReplyPiece']
    >>> events = conv.feed(b'{"v":2,"type":"event","pld":{"event":"audio_start"}}', 6_000)
    >>> ended = conv.feed(b'{"v":2,"type":"event","pld":{"event":"audio_end"}}', 9_000)[-1]
    >>> ended.reply.owner, ended.reply.text, ended.reply.complete
    ('m1', 'Hello', True)

    Args:
        quiet_ns: how long a reply may stay silent (no chunk, not speaking) before its text is given up.
        audio_grace_ns: after a reply's text is complete, how long to wait for an ``audio_start`` that never comes.
        interrupt_timeout_ns: how long an interrupted reply that is speaking waits for its ``audio_end``.
        interrupt_ack_grace_ns: how long an interrupt still waits for its ack after the avatar stopped speaking.
        unsolicited_timeout_ns: the longest an unsolicited reply (nobody waits for it) stays open.
        strict_interrupt: an interrupt without an ack is an error (:attr:`CommandUnacked.fatal`).
        expect_fin: whether the avatar ends its replies with ``fin`` (rule 10): ``None`` (default) learns it from
            what the avatar sends; ``True`` requires ``fin`` on every reply (a reply without it is incomplete);
            ``False`` never looks for it (exactly the official clients' tolerance: complete at ``audio_end``).
        expect_echo: whether the avatar sends the text of a mode-1 message back (rule 10): ``None`` (default)
            learns it; ``True`` makes a mode-1 reply without text incomplete; ``False`` completes it on its audio
            events (rule 3), as the official clients do.
    """

    def __init__(
        self,
        *,
        quiet_ns: int = 5 * _NS,
        audio_grace_ns: int = 10 * _NS,
        interrupt_timeout_ns: int = 10 * _NS,
        unsolicited_timeout_ns: int = 120 * _NS,
        interrupt_ack_grace_ns: int = _NS // 2,
        strict_interrupt: bool = False,
        expect_fin: bool | None = None,
        expect_echo: bool | None = None,
    ) -> None:
        self.quiet_ns = _positive("quiet_ns", quiet_ns)
        self.audio_grace_ns = _positive("audio_grace_ns", audio_grace_ns)
        self.interrupt_timeout_ns = _positive("interrupt_timeout_ns", interrupt_timeout_ns)
        self.unsolicited_timeout_ns = _positive("unsolicited_timeout_ns", unsolicited_timeout_ns)
        self.interrupt_ack_grace_ns = _positive("interrupt_ack_grace_ns", interrupt_ack_grace_ns)
        self.strict_interrupt = strict_interrupt
        self.expect_fin = _tristate("expect_fin", expect_fin)
        self.expect_echo = _tristate("expect_echo", expect_echo)
        # What this avatar was seen to send (rule 10): -1 not seen yet; 0 seen, expected; n > 0 that many replies
        # in a row came without it for no visible reason (from _UNLEARN on, it is no longer expected).
        self._fin_run = -1
        self._echo_run = -1
        self._messages: dict[str, _Msg] = {}  # not ended yet (queued, being sent, or waiting for the reply)
        self._causes: list[tuple[int, int, _Msg | _UserTurn]] = []  # (time, seq, cause), sorted
        self._seq = 0
        self._slots: list[_Slot] = []  # open replies, in order of their first sign (chunk or audio)
        self._by_reply_mid: dict[str, _Slot] = {}
        self._finished: OrderedDict[str, None] = OrderedDict()  # reply mids of closed replies
        self._commands: dict[str, _Cmd] = {}
        self._acked: OrderedDict[str, None] = OrderedDict()  # command mids that got an ack or were given up
        self._users: dict[str, _UserUtterance] = {}
        self._users_done: OrderedDict[str, None] = OrderedDict()
        self._interrupts: deque[_Cmd] = deque()  # unacked interrupts that an audio_end completes
        self._stamp = 0  # the transport's time of the frame being fed

    # ------------------------------------------------------------------------------------------------ inputs

    @property
    def pending_messages(self) -> int:
        """How many sent (or queued) messages have not ended."""
        return len(self._messages)

    @property
    def pending_commands(self) -> int:
        """How many commands wait for their ack."""
        return len(self._commands)

    @property
    def open_replies(self) -> int:
        """How many replies are in progress."""
        return len(self._slots)

    @property
    def expects_fin(self) -> bool:
        """Whether a reply without ``fin`` is taken as one whose last chunks were lost (rule 10)."""
        if self.expect_fin is not None:
            return self.expect_fin
        return 0 <= self._fin_run < _UNLEARN

    @property
    def expects_echo(self) -> bool:
        """Whether a mode-1 reply without any text is taken as one whose text was lost (rule 10)."""
        if self.expect_echo is not None:
            return self.expect_echo
        return 0 <= self._echo_run < _UNLEARN

    def add_message(
        self,
        mid: str,
        text: str,
        *,
        chunks: int,
        now: int,
        timeout_ns: int,
        until: str = "audio_end",
        echo: bool = False,
    ) -> None:
        """Register a chat message that will be sent as ``chunks`` chunks; it must end by ``now + timeout_ns``.

        ``until`` is ``"audio_end"`` (it ends when the avatar has finished speaking) or ``"reply"`` (when the text
        is complete); ``echo`` says the avatar repeats the text (mode 1), which rule 3 uses.

        Raises:
            ValidationError: a bad argument, or ``mid`` is already in use.
        """
        if until not in ("audio_end", "reply"):
            raise ValidationError("until", f"got {until!r}", allowed="'audio_end' or 'reply'")
        if not isinstance(mid, str) or not mid:
            raise ValidationError("mid", f"must be a non-empty string, got {mid!r}")
        if mid in self._messages or mid in self._commands:
            raise ValidationError("mid", f"{mid!r} is already in use", allowed="a fresh id (new_mid())")
        _positive("chunks", chunks)
        _positive("timeout_ns", timeout_ns)
        self._messages[mid] = _Msg(mid, text, chunks, until, echo, now + timeout_ns, timeout_ns)

    def begin_sending(self, mid: str) -> None:
        """Message ``mid`` is being sent now: an interrupt from here on stops its remaining chunks."""
        message = self._messages.get(mid)
        if message is not None:
            message.sending = True

    def chunk_sent(self, mid: str, now: int, stamp: int | None = None) -> list[ConversationEvent]:
        """Record that the next chunk of message ``mid`` was handed to the network at ``now``.

        ``stamp`` is the send time as the transport measured it, when that is on another clock than ``now`` (a
        browser's): it is what the reply's timings use. Deadlines only ever use ``now``.
        """
        message = self._messages.get(mid)
        if message is None:
            return []
        sent = message.sent_ns
        if len(sent) >= message.chunks:  # (fully_sent, inline: once per chunk sent)
            return []
        sent.append(now if stamp is None else stamp)
        message.sending = True
        if len(sent) >= message.chunks:
            self._add_cause(now, message)
        return []

    def is_interrupted(self, mid: str) -> bool:
        """Whether an interrupt came while message ``mid`` was being sent (its remaining chunks must not go out)."""
        message = self._messages.get(mid)
        return message is not None and message.interrupted

    def stop_sending(self, mid: str, now: int, reason: str) -> list[ConversationEvent]:
        """Message ``mid`` will not be (fully) sent (interrupted, or the channel closed): it ends now."""
        message = self._messages.get(mid)
        if message is None or message.fully_sent:
            return []
        return [self._end_message(message, now, reason=reason, text_end="none", interrupted=message.interrupted)]

    def cancel(self, mid: str, now: int, reason: str = "the caller cancelled the wait") -> list[ConversationEvent]:
        """The caller of message ``mid`` stopped waiting: it ends now, incomplete with ``reason``.

        A message that was fully sent stays owed its reply, which is consumed silently when it comes (so that it is
        never taken for the next message's reply).
        """
        message = self._messages.get(mid)
        if message is None:
            return []
        if not message.fully_sent:
            return self.stop_sending(mid, now, reason)
        slot = message.slot
        event = self._reply_event(message, slot, now, reason=reason, text_end="none", abandoned=True)
        message.abandoned = True
        message.ended = True
        del self._messages[mid]
        if slot is not None:
            slot.delivered = True
        return [event]

    def command_sent(
        self, mid: str, cmd: str, now: int, timeout_ns: int, stamp: int | None = None
    ) -> list[ConversationEvent]:
        """Record that command ``cmd`` with id ``mid`` was sent at ``now``; its ack is due within ``timeout_ns``.

        Sending ``interrupt`` also interrupts (rule 7).
        """
        if not isinstance(mid, str) or not mid:
            raise ValidationError("mid", f"must be a non-empty string, got {mid!r}")
        if mid in self._commands or mid in self._messages:
            raise ValidationError("mid", f"{mid!r} is already in use", allowed="a fresh id (new_mid())")
        _positive("timeout_ns", timeout_ns)
        command = _Cmd(mid, cmd, now if stamp is None else stamp, now + timeout_ns)
        self._commands[mid] = command
        if cmd == "interrupt":
            self._interrupts.append(command)
            return self.interrupt(now)
        return []

    def interrupt(self, now: int) -> list[ConversationEvent]:
        """Cut every reply in flight and stop the message being sent (called by :meth:`command_sent`)."""
        for message in self._messages.values():
            if message.sending and not message.fully_sent:
                message.interrupted = True
        events: list[ConversationEvent] = []
        for slot in list(self._slots):
            slot.interrupted = True
            if slot.text_done_ns is None:
                slot.text_done_ns = now
                slot.text_end = "interrupt"
            if slot.audio_start_ns is not None and slot.audio_end_ns is None:
                slot.interrupt_deadline = now + self.interrupt_timeout_ns
            self._advance(slot, now, events)
        return events

    def connection_lost(self, reason: str, now: int) -> list[ConversationEvent]:
        """The channel dropped: every reply in flight and every message waiting for one ends incomplete."""
        events: list[ConversationEvent] = []
        for slot in list(self._slots):
            self._close_slot(slot, now, events, reason=reason, text_end="closed")
        for message in list(self._messages.values()):
            if message.fully_sent:
                events.append(self._end_message(message, now, reason=reason, text_end="closed"))
        self._causes.clear()
        return events

    def close(self, reason: str, now: int) -> list[ConversationEvent]:
        """The conversation is over: everything still pending ends (commands as fatal, unacked)."""
        events = self.connection_lost(reason, now)
        for message in list(self._messages.values()):
            events.append(self._end_message(message, now, reason=reason, text_end="closed"))
        for command in list(self._commands.values()):
            events.append(self._unacked(command, now, reason, fatal=True))
        return events

    # ------------------------------------------------------------------------------------------------ receiving

    def feed(self, frame: bytes | str | Message, now: int, stamp: int | None = None) -> list[ConversationEvent]:
        """Take one received frame (raw bytes, or an already decoded message) that arrived at ``now``.

        ``stamp`` is the arrival time as the transport measured it, when that is on another clock than ``now``
        (see :meth:`chunk_sent`). Never raises for anything received: what it cannot use comes back as
        :class:`Ignored`.
        """
        self._stamp = now if stamp is None else stamp
        if type(frame) is bytes or isinstance(frame, bytes | bytearray | memoryview | str):
            try:
                message = decode(frame)
            except ProtocolError as exc:
                raw = bytes(frame) if not isinstance(frame, str) else frame
                return [Ignored(f"undecodable: {exc.args[0] if exc.args else exc}", now, None, raw[:200])]
        else:
            message = frame
        events: list[ConversationEvent] = []
        if type(message) is ServerEvent:  # two frames of every reply are audio events
            self._on_event(message, now, events)
        elif isinstance(message, ChatChunk):
            if message.sender == "user":
                self._on_user(message, now, events)
            else:
                self._on_bot(message, now, events)
        elif isinstance(message, Ack):
            self._on_ack(message, now, events)
        elif isinstance(message, ServerEvent):
            self._on_event(message, now, events)
        elif isinstance(message, Command):
            events.append(Ignored("a command without pld.code (an echo, not an ack)", now, message))
        elif isinstance(message, Unknown):
            events.append(Ignored(_unknown_reason(message.obj), now, message))
        else:  # pragma: no cover - Message is a closed union
            events.append(Ignored(f"not a protocol message: {type(message).__name__}", now, None))
        return events

    def _on_user(self, chunk: ChatChunk, now: int, events: list[ConversationEvent]) -> None:
        if chunk.mid in self._users_done:
            events.append(Ignored("late chunk of a finished user utterance", now, chunk))
            return
        utterance = self._users.get(chunk.mid)
        if utterance is None:
            utterance = self._users[chunk.mid] = _UserUtterance(now)
            # What the user said is a cause: the avatar's answer to it is not the reply to a message sent later.
            self._add_cause(now, _UserTurn(chunk.mid, utterance))
        if not utterance.add(chunk, now):
            events.append(Ignored("duplicate chunk", now, chunk))
            return
        done = utterance.done()
        if done:
            del self._users[chunk.mid]
            _remember(self._users_done, chunk.mid)
        events.append(
            UserSpeech(
                chunk.mid,
                chunk.idx if chunk.indexed else None,
                chunk.fin,
                chunk.text,
                utterance.text(),
                done,
                self._stamp,
            )
        )

    def _on_bot(self, chunk: ChatChunk, now: int, events: list[ConversationEvent]) -> None:
        # (Each field is read once: this runs for every chunk of every reply.)
        mid = chunk.mid
        slot = self._by_reply_mid.get(mid)
        if slot is None:
            if mid in self._finished:
                if chunk.fin:
                    self._fin_run = 0  # too late for its reply, but it shows that this avatar sends fin
                events.append(Ignored("late chunk of a finished reply", now, chunk))
                return
            slot = self._attach(chunk, now)
            slot.reply_mid = mid
            self._by_reply_mid[mid] = slot
            owner = slot.owner
            if owner is not None and owner.echo:
                self._echo_run = 0  # the text of a mode-1 message came back: this avatar echoes (rule 10)
        if slot.text_done_ns is not None:
            # After fin, an interrupt or a timeout, more text changes nothing (a duplicate or a stray chunk).
            if chunk.fin:
                self._fin_run = 0
            events.append(Ignored("chunk after the reply's text ended", now, chunk))
            return
        stamp = self._stamp
        text = chunk.text
        indexed = chunk.indexed
        idx: int | None = chunk.idx if indexed else None
        if idx is not None:
            if idx in slot.parts:
                events.append(Ignored("duplicate chunk", now, chunk))
                return
            slot.parts[idx] = (text, stamp)
        else:
            slot.indexed = False
        slot.unindexed.append((text, stamp))  # arrival order, used when any chunk lacks an idx
        slot.recv_ns.append(stamp)
        if now > slot.last_ns:
            slot.last_ns = now
        fin = chunk.fin
        if fin:
            slot.fin_seen = True
            self._fin_run = 0  # this avatar ends its replies with fin (rule 10)
            if idx is not None and (slot.fin_idx is None or idx < slot.fin_idx):
                slot.fin_idx = idx
        owner = slot.owner
        events.append(ReplyPiece(owner.mid if owner is not None else None, mid, idx, fin, text, stamp))
        self._advance(slot, now, events)

    def _attach(self, chunk: ChatChunk, now: int) -> _Slot:
        """The slot for the first chunk of a reply ``mid`` not seen before (rule 5)."""
        own = self._messages.get(chunk.mid)
        if own is not None and (own.slot is None or own.slot.reply_mid is None):
            # The avatar answered with the message's own mid.
            self._drop_cause(own)
            if own.slot is not None:
                return own.slot
            return self._open(own, now)
        # A reply whose audio_start came first: the one that named this mid, else the oldest that named none (an
        # audio event's mid is its reply's mid, as in the simulator: one naming another mid is another reply's).
        if not self._slots:  # the usual case: no reply is open, so none is waiting for its text
            return self._open(self._take_cause(now, chunk), now)
        waiting = [s for s in self._slots if s.reply_mid is None and not s.has_text]
        for slot in waiting:
            if slot.audio_mid == chunk.mid:
                return slot
        for slot in waiting:
            if slot.audio_mid is None:
                return slot
        cause = self._take_cause(now, chunk)
        return self._open(cause, now)

    def _take_cause(self, now: int, chunk: ChatChunk | None = None) -> _Msg | None:
        """Pop the oldest cause that happened before ``now``; ``None`` for a user turn or no cause (unsolicited)."""
        if not self._causes:
            return None
        at, _, cause = self._causes[0]
        if at > now:
            return None
        if isinstance(cause, _UserTurn) and chunk is not None:
            skipped = self._echo_behind_user_turns(now, chunk)
            if skipped is not None:
                return skipped
        elif (
            isinstance(cause, _Msg) and cause.echo and chunk is not None and self._answers_user_first(now, chunk, cause)
        ):
            return None  # the echo of what the user said, heard just after the message went out
        self._causes.pop(0)
        return cause if isinstance(cause, _Msg) else None

    def _echo_behind_user_turns(self, now: int, chunk: ChatChunk) -> _Msg | None:
        """Rule 5's one use of the text: the avatar does not answer every utterance it hears. When the oldest causes
        are user turns and the reply's text is the echo of the mode-1 message behind them (and not of what the user
        said), it is that message's reply, and those user turns went unanswered."""
        words = _words(chunk.text)
        if not words:
            return None
        for i, (at, _, cause) in enumerate(self._causes):
            if at > now:
                return None
            if isinstance(cause, _UserTurn):
                if words in _words(cause.utterance.text()):
                    return None
                continue
            if cause.echo and words in _words(cause.text):
                del self._causes[: i + 1]
                return cause
            return None
        return None

    def _answers_user_first(self, now: int, chunk: ChatChunk, message: _Msg) -> bool:
        """The mirror case: the oldest cause is a mode-1 message, but the reply is not its echo and is the echo of
        an utterance queued behind it (the avatar heard the user first; its transcript reached us after the send).
        That utterance is taken as answered."""
        if len(self._causes) < 2:
            return False  # the usual case (this message is the only cause), decided without looking at any text
        turns = [(i, c) for i, (at, _, c) in enumerate(self._causes) if at <= now and isinstance(c, _UserTurn)]
        if not turns:
            return False
        words = _words(chunk.text)
        if not words or words in _words(message.text):
            return False
        for i, turn in turns:
            if words in _words(turn.utterance.text()):
                del self._causes[i]
                return True
        return False

    def _open(self, owner: _Msg | None, now: int) -> _Slot:
        slot = _Slot(owner, None, now)
        if owner is not None:
            owner.slot = slot
        self._slots.append(slot)
        return slot

    def _on_ack(self, ack: Ack, now: int, events: list[ConversationEvent]) -> None:
        command: _Cmd | None = None
        how = "mid"
        if ack.mid is not None:
            command = self._commands.get(ack.mid)
            if command is None and ack.mid in self._acked:
                events.append(UnmatchedAck(ack, now, "a duplicate or late ack of a command already ended"))
                return
        if command is None and ack.cmd is not None:
            how = "cmd"
            command = next((c for c in self._commands.values() if c.cmd == ack.cmd), None)
        if command is None and ack.cmd is None:
            how = "oldest"
            command = next(iter(self._commands.values()), None)
        if command is None:
            events.append(UnmatchedAck(ack, now, "no pending command"))
            return
        self._end_command(command)
        events.append(AckMatched(command.mid, command.cmd, ack.code, ack.msg, command.sent_ns, self._stamp, how))

    def _on_event(self, event: ServerEvent, now: int, events: list[ConversationEvent]) -> None:
        if event.name == "audio_start":
            self._on_audio_start(event, now, events)
        elif event.name == "audio_end":
            self._on_audio_end(event, now, events)
        elif event.name == "error":
            code = event.pld.get("code")
            code = code if isinstance(code, int) and not isinstance(code, bool) else None
            msg = str(event.pld.get("msg", "the avatar reported an error"))
            ref = event.pld.get("ref_mid")
            rejected = self._messages.get(ref) if isinstance(ref, str) else None
            events.append(ServerError(code, msg, rejected.mid if rejected else None, event.pld, self._stamp))
            if rejected is not None:
                # The avatar refused this message: no reply will come for it.
                self._drop_cause(rejected)
                slot = rejected.slot
                if slot is not None:
                    self._close_slot(slot, now, events, reason=f"rejected: {msg}", text_end="none", silent=True)
                events.append(
                    self._end_message(rejected, now, reason=f"rejected: {msg}", text_end="none", error=(code, msg))
                )
        else:
            events.append(OtherEvent(event.name, event.mid, event.pld, self._stamp))

    def _slot_for_event_mid(self, mid: str | None) -> _Slot | None:
        if mid is None:
            return None
        slot = self._by_reply_mid.get(mid)
        if slot is not None:
            return slot
        message = self._messages.get(mid)
        if message is not None and message.slot is not None:
            return message.slot
        return next((s for s in self._slots if s.audio_mid == mid), None)

    def _on_audio_start(self, event: ServerEvent, now: int, events: list[ConversationEvent]) -> None:
        slot = self._slot_for_event_mid(event.mid)
        if slot is not None and slot.audio_start_ns is not None:
            events.append(Ignored("duplicate audio_start", now, event))
            return
        if slot is None and event.mid is not None and event.mid in self._finished:
            events.append(Ignored("audio_start of a finished reply", now, event))
            return
        if slot is None:
            slot = next((s for s in self._slots if s.audio_start_ns is None and not s.interrupted), None)
        if slot is None:
            own = self._messages.get(event.mid) if event.mid is not None else None
            if own is not None and own.slot is None:
                self._drop_cause(own)
                slot = self._open(own, now)
            elif self._causes and self._causes[0][0] <= now:
                # Speech can start before the first text chunk: open the reply of the oldest cause.
                slot = self._open(self._take_cause(now), now)
            else:
                slot = self._open(None, now)  # unsolicited speech, nothing to wait for
            slot.audio_mid = event.mid
        slot.audio_start_ns = self._stamp
        slot.last_ns = max(slot.last_ns, now)
        events.append(AudioEvent("audio_start", slot.key, slot.reply_mid, self._stamp, True))
        self._advance(slot, now, events)

    def _on_audio_end(self, event: ServerEvent, now: int, events: list[ConversationEvent]) -> None:
        slot = self._slot_for_event_mid(event.mid)
        if slot is None and event.mid is not None and event.mid in self._finished:
            # The late audio_end of a reply already ended (cut by an interrupt, say): it is nobody else's.
            events.append(Ignored("audio_end of a finished reply", now, event))
            return
        if slot is not None and slot.audio_end_ns is not None:
            slot = None
        if slot is None:
            slot = next((s for s in self._slots if s.audio_start_ns is not None and s.audio_end_ns is None), None)
        # An interrupt that was not acknowledged is complete once the avatar stops speaking (rule 7).
        # (With strict_interrupt, only the ack counts.)
        # Its ack may still be on its way (a server that stops speaking first, then acks): wait a moment for it.
        while self._interrupts and not self.strict_interrupt:
            command = self._interrupts.popleft()
            if command.mid in self._commands:
                command.stopped = True
                command.deadline = min(command.deadline, now + self.interrupt_ack_grace_ns)
        if slot is None:
            events.append(Ignored("audio_end of no reply that is speaking", now, event))
            return
        slot.audio_end_ns = self._stamp
        slot.last_ns = max(slot.last_ns, now)
        events.append(AudioEvent("audio_end", slot.key, slot.reply_mid, self._stamp, True))
        self._advance(slot, now, events)

    # ------------------------------------------------------------------------------------------------ time

    def next_deadline(self) -> int | None:
        """When :meth:`expire` must next be called (ns), or ``None`` when nothing is waiting."""
        # Called after every frame by a driver: kept to plain loops over (almost always) one or two items.
        best: int | None = None
        for message in self._messages.values():
            if best is None or message.deadline < best:
                best = message.deadline
        for command in self._commands.values():
            if best is None or command.deadline < best:
                best = command.deadline
        for slot in self._slots:
            due = self._slot_deadline(slot)
            if due is not None and (best is None or due < best):
                best = due
        if self._users:
            for utterance in self._users.values():
                due = utterance.last_ns + self.quiet_ns
                if best is None or due < best:
                    best = due
        return best

    def expire(self, now: int) -> list[ConversationEvent]:
        """Apply every deadline that has passed at ``now``: quiet replies, missing acks, messages out of time."""
        events: list[ConversationEvent] = []
        for slot in list(self._slots):
            self._advance(slot, now, events)
        for message in list(self._messages.values()):
            if now >= message.deadline:
                owned = message.slot
                reason = f"timeout after {message.timeout_ns / _NS:g} s"
                if owned is not None and owned in self._slots:
                    self._close_slot(owned, now, events, reason=reason, text_end="timeout", timed_out=True)
                else:
                    # A sent message keeps its place among the causes: its reply, if it ever comes, is consumed
                    # silently instead of being taken for the next message's.
                    events.append(
                        self._end_message(
                            message, now, reason=reason, text_end="timeout", timed_out=True, keep_cause=True
                        )
                    )
        for command in list(self._commands.values()):
            if now >= command.deadline:
                fatal = command.cmd != "interrupt" or self.strict_interrupt
                reason = "audio_end" if command.stopped else "timeout"
                events.append(self._unacked(command, now, reason, fatal=fatal))
        for mid, utterance in list(self._users.items()):
            if now >= utterance.last_ns + self.quiet_ns:
                del self._users[mid]
                _remember(self._users_done, mid)
                events.append(UserSpeech(mid, None, False, "", utterance.text(), True, now))
        return events

    # ------------------------------------------------------------------------------------------------ internals

    def _slot_deadline(self, slot: _Slot) -> int | None:
        due: int | None = None
        if slot.owner is None or slot.owner.ended:
            due = slot.start_ns + self.unsolicited_timeout_ns
        if slot.text_done_ns is None:
            if slot.audio_start_ns is None or slot.audio_end_ns is not None:  # not speaking: the quiet period runs
                quiet = slot.last_ns + self.quiet_ns
                due = quiet if due is None or quiet < due else due
        elif slot.audio_end_ns is None:
            wait = slot.interrupt_deadline
            if wait is None and slot.audio_start_ns is None:
                wait = slot.text_done_ns + self.audio_grace_ns
            if wait is not None and (due is None or wait < due):
                due = wait
        return due

    def _advance(self, slot: _Slot, now: int, events: list[ConversationEvent]) -> None:
        """Move one reply forward: end its text, deliver it, close it, as its state and ``now`` allow."""
        if slot not in self._slots:
            return
        owner = slot.owner
        if (owner is None or owner.ended) and now >= slot.start_ns + self.unsolicited_timeout_ns:  # an orphan
            self._close_slot(slot, now, events, reason="unsolicited reply timed out", text_end="timeout")
            return
        if slot.text_done_ns is None:
            parts = slot.parts
            if not slot.indexed or (slot.fin_idx == 0 and len(parts) == 1 and 0 in parts):
                missing: tuple[int, ...] = ()  # (the usual one-chunk reply, without the call)
            else:
                missing = slot.missing()
            if slot.fin_seen and not missing:
                slot.text_done_ns = now  # (_text_done(slot, now, "fin", None), inline: every reply ends so)
            elif slot.audio_end_ns is not None and slot.has_text and not missing and self._ends_without_fin(slot):
                self._text_done(slot, now, "audio_end", None)
            elif slot.audio_end_ns is not None and not slot.has_text and owner is not None and owner.echo:
                if self.expects_echo:  # rule 10: this avatar echoes, so the text was lost
                    if self.expect_echo is None:
                        self._echo_run += 1
                    self._text_done(slot, now, "audio_end", _NO_ECHO)
                else:
                    self._text_done(slot, now, "audio_end", None)  # rule 3: spoken, not echoed
            elif not (slot.audio_start_ns is not None and slot.audio_end_ns is None) and now >= (
                slot.last_ns + self.quiet_ns
            ):
                self._text_done(slot, now, "quiet", self._quiet_reason(slot, missing))
        if slot.text_done_ns is None:
            return
        if owner is not None and owner.until == "reply":
            self._deliver(slot, now, events)  # the caller has its text; the audio events still belong to this reply
        ended = slot.audio_end_ns is not None
        no_audio = slot.audio_start_ns is None and (
            now >= slot.text_done_ns + self.audio_grace_ns or slot.interrupted or slot.text_reason is not None
        )
        cut = slot.interrupt_deadline is not None and now >= slot.interrupt_deadline
        if ended or no_audio or cut:
            self._deliver(slot, now, events)
            self._remove(slot)

    def _ends_without_fin(self, slot: _Slot) -> bool:
        """Whether a reply whose text all arrived, but without ``fin``, is complete at its ``audio_end`` (rule 10).

        Yes when ``fin`` is not expected (rule 2), and when the reply is the echo of exactly what was sent (nothing
        of it can be missing). Otherwise its last chunks are waited for during the quiet period. A learned
        expectation counts a whole echo without ``fin`` towards unlearning it: call this once per reply (the caller
        ends the reply's text when it returns True)."""
        if not self.expects_fin:
            return True
        if self.expect_fin is None and _echo_of(slot) == 0:
            self._fin_run += 1  # the avatar left out fin, and nothing was lost
            return True
        return False

    def _quiet_reason(self, slot: _Slot, missing: tuple[int, ...]) -> str:
        """Why a reply whose quiet period ran out is incomplete; keeps count of what it shows (rule 10)."""
        if not slot.has_text:
            return "no reply text arrived"
        if missing:
            self._loss_seen()
            return "missing chunks before timeout"
        if not self.expects_fin:
            return "no fin before timeout"
        echo = _echo_of(slot)
        if self.expect_fin is None:
            if echo > 0:
                self._loss_seen()  # the echo of a mode-1 message, cut short: its tail was lost
            else:
                self._fin_run += 1  # lost, or the avatar no longer sends fin: two in a row say which
        # (A whole echo lacks nothing but fin and its audio_end: the tail is not what went missing.)
        return "no fin before timeout" if echo == 0 else _LOST_TAIL

    def _loss_seen(self) -> None:
        """A reply showed that the channel loses chunks: replies without ``fin`` so far are not the avatar's doing."""
        if 0 < self._fin_run < _UNLEARN:
            self._fin_run = 0

    def _text_done(self, slot: _Slot, now: int, how: str, reason: str | None) -> None:
        slot.text_done_ns = now
        slot.text_end = how
        slot.text_reason = reason

    def _deliver(self, slot: _Slot, now: int, events: list[ConversationEvent]) -> None:
        if slot.delivered:
            return
        slot.delivered = True
        owner = slot.owner
        if owner is not None and owner.ended:
            return  # its caller gave up; the reply was consumed so that it shifts nothing
        reason = slot.text_reason
        if slot.interrupted:
            reason = "interrupted"
        events.append(ReplyEnded(self._reply(owner, slot, now, reason=reason, text_end=slot.text_end)))
        if owner is not None:
            owner.ended = True
            self._messages.pop(owner.mid, None)

    def _close_slot(
        self,
        slot: _Slot,
        now: int,
        events: list[ConversationEvent],
        *,
        reason: str,
        text_end: str,
        timed_out: bool = False,
        silent: bool = False,
    ) -> None:
        if slot.text_done_ns is None:
            self._text_done(slot, now, text_end, reason)
        if not slot.delivered and not silent:
            slot.delivered = True
            owner = slot.owner
            if owner is None or not owner.ended:
                events.append(
                    ReplyEnded(self._reply(owner, slot, now, reason=reason, text_end=text_end, timed_out=timed_out))
                )
                if owner is not None:
                    owner.ended = True
                    self._messages.pop(owner.mid, None)
        self._remove(slot)

    def _remove(self, slot: _Slot) -> None:
        if slot in self._slots:
            self._slots.remove(slot)
        if slot.reply_mid is not None:
            self._by_reply_mid.pop(slot.reply_mid, None)
            _remember(self._finished, slot.reply_mid)
        if slot.audio_mid is not None:
            _remember(self._finished, slot.audio_mid)

    def _reply(
        self,
        owner: _Msg | None,
        slot: _Slot,
        now: int,
        *,
        reason: str | None,
        text_end: str,
        timed_out: bool = False,
        abandoned: bool = False,
        error: tuple[int | None, str] | None = None,
    ) -> ConversationReply:
        text = slot.text()
        echoed = True
        has_text = slot.has_text
        if not has_text and owner is not None and owner.echo and slot.audio_end_ns is not None and reason is None:
            text, echoed = owner.text, False
        missing = slot.missing() if slot.indexed else ()
        interrupted = slot.interrupted
        complete = reason is None and not interrupted
        recv_ns = slot.recv_ns
        final = (recv_ns[-1] if len(recv_ns) == 1 else max(recv_ns)) if complete and has_text else None
        # (Positional, in field order: one of these is built for every reply.)
        return ConversationReply(
            owner.mid if owner is not None else None,  # owner
            slot.reply_mid,  # reply_mid
            text,
            tuple(owner.sent_ns) if owner is not None else (),  # sent_ns
            tuple(recv_ns),
            final,  # final_ns
            slot.audio_start_ns,
            slot.audio_end_ns,
            complete,
            interrupted,
            None if complete else (reason or "incomplete"),  # reason
            missing,
            echoed,
            text_end,
            timed_out,
            abandoned,
            error,
        )

    def _reply_event(
        self, message: _Msg, slot: _Slot | None, now: int, *, reason: str, text_end: str, **flags: Any
    ) -> ReplyEnded:
        if slot is None:
            slot = _Slot(message, None, now)
        return ReplyEnded(self._reply(message, slot, now, reason=reason, text_end=text_end, **flags))

    def _end_message(
        self,
        message: _Msg,
        now: int,
        *,
        reason: str,
        text_end: str,
        timed_out: bool = False,
        interrupted: bool = False,
        error: tuple[int | None, str] | None = None,
        keep_cause: bool = False,
    ) -> ReplyEnded:
        self._messages.pop(message.mid, None)
        if not keep_cause:
            self._drop_cause(message)
        message.ended = True
        slot = message.slot
        if slot is not None:
            self._remove(slot)
        event = self._reply_event(
            message, slot, now, reason=reason, text_end=text_end, timed_out=timed_out, error=error
        )
        if interrupted and not event.reply.interrupted:
            event = ReplyEnded(_with_interrupted(event.reply))
        return event

    def _add_cause(self, at: int, cause: _Msg | _UserTurn) -> None:
        self._seq += 1
        item = (at, self._seq, cause)
        causes = self._causes
        if not causes or causes[-1][0] <= at:
            causes.append(item)  # the usual case: causes come in time order
        else:
            bisect.insort(causes, item, key=lambda c: (c[0], c[1]))

    def _drop_cause(self, message: _Msg) -> None:
        for i, (_, _, cause) in enumerate(self._causes):
            if cause is message:
                del self._causes[i]
                return

    def _end_command(self, command: _Cmd) -> None:
        self._commands.pop(command.mid, None)
        _remember(self._acked, command.mid)
        if command in self._interrupts:
            self._interrupts.remove(command)

    def _unacked(self, command: _Cmd, now: int, reason: str, *, fatal: bool) -> CommandUnacked:
        self._end_command(command)
        return CommandUnacked(command.mid, command.cmd, command.sent_ns, now, reason, fatal)


class _UserUtterance:
    __slots__ = ("fin_idx", "fin_seen", "last_ns", "order", "parts")

    def __init__(self, now: int) -> None:
        self.parts: dict[int, str] = {}
        self.order: list[str] = []
        self.fin_idx: int | None = None
        self.fin_seen = False
        self.last_ns = now

    def add(self, chunk: ChatChunk, now: int) -> bool:
        if chunk.indexed:
            if chunk.idx in self.parts:
                return False
            self.parts[chunk.idx] = chunk.text
            if chunk.fin and (self.fin_idx is None or chunk.idx < self.fin_idx):
                self.fin_idx = chunk.idx
        self.order.append(chunk.text)
        self.fin_seen = self.fin_seen or chunk.fin
        self.last_ns = max(self.last_ns, now)
        return True

    def done(self) -> bool:
        if not self.fin_seen:
            return False
        if self.fin_idx is None or len(self.parts) != len(self.order):
            return True
        return all(i in self.parts for i in range(self.fin_idx + 1))

    def text(self) -> str:
        if len(self.parts) == len(self.order):
            return "".join(self.parts[i] for i in sorted(self.parts))
        return "".join(self.order)


def _tristate(name: str, value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise ValidationError(name, f"got {value!r}", allowed="None (learn it), True or False")


def _echo_of(slot: _Slot) -> int:
    """How a reply's text compares with the mode-1 message it answers: 0 the same words, 1 the first part of them
    (cut short), -1 neither, or not the reply to a mode-1 message."""
    owner = slot.owner
    if owner is None or not owner.echo:
        return -1
    got, sent = _words(slot.text()), _words(owner.text)
    if got == sent:
        return 0
    return 1 if sent.startswith(got) else -1


def _words(text: str) -> str:
    """The words of ``text``, lowercased, one space apart: what an echo keeps whatever the chunking."""
    return " ".join(_WORD.findall(text.lower()))


def _orphan(slot: _Slot) -> bool:
    """Nobody waits for this reply (unsolicited, or its owner already ended): it must still end on its own."""
    return slot.owner is None or slot.owner.ended


def _with_interrupted(reply: ConversationReply) -> ConversationReply:
    return replace(reply, interrupted=True, complete=False)


def _remember(store: OrderedDict[str, None], key: str) -> None:
    store[key] = None
    store.move_to_end(key)
    if len(store) > _REMEMBERED:
        store.popitem(last=False)


def _unknown_reason(obj: Any) -> str:
    if not isinstance(obj, Mapping):
        return "not a JSON object"
    version = obj.get("v")
    if version != 2 or isinstance(version, bool):
        return f"protocol version {version!r} (only 2 is understood)"
    kind = obj.get("type")
    if kind in ("cmd", "ack"):
        return f"a {kind!r} without pld.code"
    return f"unknown message type {kind!r}"
