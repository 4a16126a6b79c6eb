"""The v2 data-channel messages as small value objects that validate themselves (AKOOL_API.md section 5).

Each class is what one JSON message means, not how it is spelled: :func:`akool_lab.protocol.decode` accepts the
read-side variants of section 11 and :func:`akool_lab.protocol.encode` writes the one canonical form.
A constructor raises :class:`~akool_lab.errors.ValidationError` for values that could never go on the wire.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from akool_lab.errors import ValidationError

__all__ = ["Ack", "ChatChunk", "Command", "Message", "ServerEvent", "Unknown"]

#: The only protocol version this package speaks; other versions decode as :class:`Unknown`.
PROTOCOL_VERSION = 2


def _check_mid(mid: object, *, optional: bool = False) -> None:
    if mid is None and optional:
        return
    if not isinstance(mid, str) or not mid:
        raise ValidationError("mid", f"must be a non-empty string, got {mid!r}", allowed="a non-empty string")


def _is_int(value: object) -> bool:
    # bool is a subclass of int, but `"idx": true` is a broken message, not index 1.
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True, slots=True)
class ChatChunk:
    """One chunk of a chat message, in either direction (section 5.2 out, 5.4 in).

    A long text travels as several chunks that share :attr:`mid`, numbered by :attr:`idx` from 0, with
    :attr:`fin` set on the last one.
    """

    mid: str
    """The id shared by every chunk of one logical message."""
    idx: int
    """The chunk's position in its message, from 0."""
    fin: bool
    """True on the last chunk of the message."""
    text: str
    """This chunk's slice of the text (may be empty on an incoming final chunk)."""
    sender: str | None = None
    """``pld.from`` of an incoming chunk: ``"bot"`` (the avatar's reply) or ``"user"`` (speech recognition of the
    user's microphone); ``None`` on outgoing chunks, which carry no ``from``."""
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The whole decoded JSON object, extra fields included; ``None`` for a chunk built in code."""

    @property
    def indexed(self) -> bool:
        """Whether the chunk carried an ``idx`` (a chunk built in code always does; a received one may not, in which
        case :attr:`idx` is 0 and chunks can only be taken in arrival order)."""
        return self.raw is None or "idx" in self.raw

    def __post_init__(self) -> None:
        _check_mid(self.mid)
        if not _is_int(self.idx) or self.idx < 0:
            raise ValidationError("idx", f"must be an integer >= 0, got {self.idx!r}", allowed="0, 1, 2, ...")
        if not isinstance(self.fin, bool):
            raise ValidationError("fin", f"must be a bool, got {self.fin!r}", allowed="true, false")
        if not isinstance(self.text, str):
            raise ValidationError("text", f"must be a string, got {type(self.text).__name__}")
        if self.sender is not None and not isinstance(self.sender, str):
            raise ValidationError("sender", f"must be a string or None, got {self.sender!r}", allowed="bot, user")


@dataclass(frozen=True, slots=True)
class Command:
    """An outgoing command (section 5.3): ``set-params``, ``interrupt``, ``set-action`` or any other ``cmd``.

    An incoming ``"command"`` without ``pld.code`` (an echo of a sent command) also decodes as a ``Command``, which
    is what keeps ``decode(encode(command)) == command``.
    """

    mid: str
    """The id the service echoes in its :class:`Ack`."""
    cmd: str
    """The command name, ``pld.cmd``."""
    data: Mapping[str, Any] | None = None
    """The command's arguments, ``pld.data``; ``None`` when the command has none (``interrupt``)."""

    def __post_init__(self) -> None:
        _check_mid(self.mid)
        if not isinstance(self.cmd, str) or not self.cmd:
            raise ValidationError("cmd", f"must be a non-empty string, got {self.cmd!r}")
        if self.data is not None and not isinstance(self.data, Mapping):
            raise ValidationError("data", f"must be a mapping or None, got {type(self.data).__name__}")


#: The ack code that means success.
ACK_OK = 1000


@dataclass(frozen=True, slots=True)
class Ack:
    """The service's acknowledgement of a command (section 5.5): a ``"command"``, ``"cmd"`` or ``"ack"`` message
    with ``pld.code``."""

    mid: str | None
    """The ``mid`` of the command being acknowledged (``pld.original_mid`` of an ``"ack"``); ``None`` when the ack
    does not say which command it answers (then it is matched by :attr:`cmd`, see
    :class:`~akool_lab.protocol.Conversation`)."""
    cmd: str | None
    """The acknowledged command's name, when the ack says it."""
    code: int
    """1000 for success; anything else is a failure explained by :attr:`msg`."""
    msg: str = ""
    """The service's own words (``"OK"`` or the reason for a failure)."""
    raw: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    """The whole decoded JSON object, extra fields included; ``None`` for an ack built in code."""

    def __post_init__(self) -> None:
        _check_mid(self.mid, optional=True)
        if self.cmd is not None and not isinstance(self.cmd, str):
            raise ValidationError("cmd", f"must be a string or None, got {self.cmd!r}")
        if not _is_int(self.code):
            raise ValidationError("code", f"must be an integer, got {self.code!r}", allowed="1000 or an error code")
        if not isinstance(self.msg, str):
            raise ValidationError("msg", f"must be a string, got {self.msg!r}")

    @property
    def ok(self) -> bool:
        """True when the command succeeded (``code == 1000``)."""
        return self.code == ACK_OK


@dataclass(frozen=True, slots=True)
class ServerEvent:
    """An event from the service (section 5.6): ``{"type": "event", "pld": {"event": name, ...}}``.

    Every event name is kept as-is (``audio_start``, ``audio_end``, ``error`` with ``code``/``msg``, ...), so a
    new event shows up in the recorder instead of vanishing.
    """

    mid: str | None
    """The message id, when the event carries one."""
    name: str
    """The event name, ``pld.event``."""
    pld: Mapping[str, Any] = field(default_factory=dict)
    """The whole payload; it always contains ``"event": name`` (added when missing, so that round trips hold)."""

    def __post_init__(self) -> None:
        _check_mid(self.mid, optional=True)
        if not isinstance(self.name, str) or not self.name:
            raise ValidationError("name", f"must be a non-empty string, got {self.name!r}")
        if type(self.pld) is not dict and not isinstance(self.pld, Mapping):  # (the ABC check is slow: dict first)
            raise ValidationError("pld", f"must be a mapping, got {type(self.pld).__name__}")
        if self.pld.get("event", self.name) != self.name:
            raise ValidationError("pld.event", f"{self.pld.get('event')!r} differs from name {self.name!r}")
        # A private copy: the frozen object must not change when the caller's dict does.
        object.__setattr__(self, "pld", {**self.pld, "event": self.name})


@dataclass(frozen=True, slots=True)
class Unknown:
    """Well-formed JSON of a shape this package does not interpret (another ``v``, another ``type``, a legacy
    ``"cmd"`` without a code...). Kept whole so that it can be recorded and shown."""

    obj: Any
    """The decoded JSON object."""


#: Every message that :func:`~akool_lab.protocol.decode` can return.
Message: TypeAlias = ChatChunk | Command | Ack | ServerEvent | Unknown
