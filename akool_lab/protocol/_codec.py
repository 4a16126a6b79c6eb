"""Bytes to messages and back: liberal when reading, strict when writing (AKOOL_API.md section 12.1)."""

from __future__ import annotations

import itertools
import json
import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from akool_lab.errors import ProtocolError, ValidationError
from akool_lab.protocol._messages import PROTOCOL_VERSION, Ack, ChatChunk, Command, Message, ServerEvent, Unknown

__all__ = ["decode", "dumps", "encode", "new_mid"]

# A per-process counter makes ids unique within the process without reading a clock; a random suffix drawn once
# per process keeps two processes (two kernels on one session) apart without a system call per id. Short on purpose:
# every chat chunk repeats its mid.
_counter = itertools.count(1)
_PROCESS = secrets.token_hex(3)

# The C scanner behind json.loads, called directly for the usual frame (one JSON value and nothing around it):
# json.loads adds a BOM check, two whitespace regex matches and an extra-data check in Python, a third of the cost
# of decoding a small frame. Anything else goes through json.loads itself, which gives the same value or error.
_scan: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _loads(text: str) -> Any:
    try:
        obj, end = _scan(text, 0)
    except Exception:  # not a value at index 0 (whitespace, a BOM, malformed): json.loads says what exactly
        return json.loads(text)
    if end != len(text):  # trailing whitespace, or extra data (an error json.loads raises)
        return json.loads(text)
    return obj


def new_mid() -> str:
    """A fresh message id such as ``"msg-1-9f3a2c"``: unique within the process, and unlikely to collide across
    processes (their random suffixes differ)."""
    return f"msg-{next(_counter):x}-{_PROCESS}"


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON, non-ASCII kept raw (no ``\\u`` escapes): the form every message is sent in."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8")


def encode(message: Message) -> bytes:
    """The wire bytes of one message.

    >>> encode(Command("m1", "interrupt"))
    b'{"v":2,"type":"command","mid":"m1","pld":{"cmd":"interrupt"}}'
    """
    obj: dict[str, Any]
    if isinstance(message, ChatChunk):
        pld: dict[str, Any] = {} if message.sender is None else {"from": message.sender}
        pld["text"] = message.text
        # Key order matches encode_chat's hand-built bytes, so both spell a chunk identically.
        obj = {"v": PROTOCOL_VERSION, "type": "chat", "mid": message.mid, "idx": message.idx, "fin": message.fin}
        obj["pld"] = pld
    elif isinstance(message, Command):
        pld = {"cmd": message.cmd}
        if message.data is not None:
            pld["data"] = dict(message.data)
        obj = {"v": PROTOCOL_VERSION, "type": "command", "mid": message.mid, "pld": pld}
    elif isinstance(message, Ack):
        pld = {} if message.cmd is None else {"cmd": message.cmd}
        pld.update(code=message.code, msg=message.msg)
        obj = {"v": PROTOCOL_VERSION, "type": "command"}
        if message.mid is not None:
            obj["mid"] = message.mid
        obj["pld"] = pld
    elif isinstance(message, ServerEvent):
        obj = {"v": PROTOCOL_VERSION, "type": "event"}
        if message.mid is not None:
            obj["mid"] = message.mid
        obj["pld"] = dict(message.pld)
    elif isinstance(message, Unknown):
        obj = message.obj
    else:
        raise ValidationError("message", f"not a protocol message: {type(message).__name__}")
    try:
        return dumps(obj)
    except (TypeError, ValueError) as exc:
        raise ValidationError("message", f"cannot be encoded as JSON: {exc}") from None


def decode(data: bytes | bytearray | memoryview | str) -> Message:
    """Interpret one received data-channel message.

    Accepts the read-side variants of AKOOL_API.md section 11 and of the official clients: acks with ``type``
    ``"command"``, ``"cmd"`` or ``"ack"`` (the PyPI package's, whose ``pld.original_mid`` names the command), with or
    without a ``mid``; ``fin`` at the top level or inside ``pld``, ``pld.params`` for ``pld.data``, and extra fields
    anywhere (kept in ``raw``). A chat without ``idx`` is chunk 0 (:attr:`ChatChunk.indexed` is then False), without
    ``fin`` not the last.

    Raises:
        ProtocolError: the only exception it raises: invalid UTF-8, not JSON, not a JSON object, or a v2 message
            whose fields have the wrong types. The offending bytes are in the error (truncated).
    """
    try:
        if type(data) is bytes:
            audio = _AUDIO_EVENT.fullmatch(data)
            if audio is not None:
                mid, name = audio.groups()
                event = name.decode("ascii")
                # (Valid UTF-8 is all the JSON string needs here: no quote, backslash or control character in it.)
                return _server_event(None if mid is None else mid.decode("utf-8"), event, {"event": event})
            text = data.decode("utf-8")
        elif isinstance(data, bytes | bytearray | memoryview):
            text = bytes(data).decode("utf-8")
        else:
            text = data
        if not isinstance(text, str):
            raise ProtocolError(f"expected bytes or str, got {type(data).__name__}")
        obj = _loads(text)
    except ProtocolError:
        raise
    except UnicodeDecodeError:
        raise ProtocolError("not valid UTF-8", _as_bytes(data)) from None
    # RecursionError: deeply nested arrays; ValueError: not JSON, or an integer too long to convert.
    except (ValueError, RecursionError):
        raise ProtocolError("not JSON", _as_bytes(data)) from None
    if type(obj) is not dict:  # json gives exactly dict for an object
        raise ProtocolError("not a JSON object", _as_bytes(data))
    try:
        return _interpret(obj)
    except ValidationError as exc:
        # A field of a v2 message has the wrong type: that is the peer's fault, not the caller's.
        raise ProtocolError(f"invalid v2 message ({exc})", _as_bytes(data)) from None


def _as_bytes(data: object) -> bytes | str | None:
    if isinstance(data, bytes | str):
        return data
    if isinstance(data, bytearray | memoryview):
        return bytes(data)
    return None


# Every received frame becomes one of these frozen messages. A frozen dataclass's constructor sets each field through
# object.__setattr__ and then validates it in __post_init__: for the fields of the usual frame, already checked here
# with exact type tests (JSON gives exactly str, int, bool, dict), the object is filled in through its slots instead,
# with the very values the constructor would have stored. Anything unusual goes through the constructor, whose
# ValidationError names the bad field.
_new = object.__new__
_CHAT_FIELDS = tuple(getattr(ChatChunk, name).__set__ for name in ("mid", "idx", "fin", "text", "sender", "raw"))
_EVENT_FIELDS = tuple(getattr(ServerEvent, name).__set__ for name in ("mid", "name", "pld"))


def _chat_chunk(mid: str, idx: int, fin: bool, text: str, sender: str | None, raw: dict[str, Any]) -> ChatChunk:
    chunk: ChatChunk = _new(ChatChunk)
    set_mid, set_idx, set_fin, set_text, set_sender, set_raw = _CHAT_FIELDS
    set_mid(chunk, mid)
    set_idx(chunk, idx)
    set_fin(chunk, fin)
    set_text(chunk, text)
    set_sender(chunk, sender)
    set_raw(chunk, raw)
    return chunk


def _server_event(mid: str | None, name: str, pld: dict[str, Any]) -> ServerEvent:
    # ``pld`` came out of this frame's JSON and is referenced by nothing else: it is the event's own already (the
    # copy the constructor makes protects an object from a caller's dict), and it holds ``"event": name``.
    event: ServerEvent = _new(ServerEvent)
    set_mid, set_name, set_pld = _EVENT_FIELDS
    set_mid(event, mid)
    set_name(event, name)
    set_pld(event, pld)
    return event


# The two frames of every reply besides its text, in the compact form servers write them (the simulator, AKool):
# ``{"v":2,"type":"event","mid":"r-1","pld":{"event":"audio_start"}}`` with or without the ``mid``. Such bytes can
# only mean that object, so they are read without a JSON parse; any other spelling (spaces, other keys, escapes in
# the mid, another order) goes through the general path below, which gives the same event.
_AUDIO_EVENT = re.compile(
    rb'\{"v":2,"type":"event",(?:"mid":"([^"\\\x00-\x1f]+)",)?"pld":\{"event":"(audio_start|audio_end)"\}\}'
)


def _interpret(obj: dict[str, Any]) -> Message:
    version = obj.get("v")
    if type(version) is not int or version != PROTOCOL_VERSION:  # (true is not 2, nor is 2.0)
        return Unknown(obj)
    kind = obj.get("type")
    if kind not in ("chat", "command", "cmd", "ack", "event"):
        return Unknown(obj)
    pld = obj.get("pld")
    if type(pld) is not dict and not isinstance(pld, Mapping):
        raise ValidationError("pld", f"must be an object, got {pld!r}")
    if kind == "event":
        mid = obj.get("mid")
        name = pld.get("event")
        if type(name) is str and name and (mid is None or (type(mid) is str and mid)) and type(pld) is dict:
            return _server_event(mid, name, pld)
        return ServerEvent(mid, name, pld)  # type: ignore[arg-type]
    if kind == "chat":
        mid = obj.get("mid")
        idx = obj.get("idx", 0)
        fin = obj["fin"] if "fin" in obj else pld.get("fin", False)
        text = pld.get("text")
        sender = pld.get("from")
        if (
            type(mid) is str
            and mid
            and type(idx) is int
            and idx >= 0
            and type(fin) is bool
            and type(text) is str
            and (sender is None or type(sender) is str)
        ):
            return _chat_chunk(mid, idx, fin, text, sender, obj)
        return ChatChunk(mid, idx, fin, text, sender, raw=obj)  # type: ignore[arg-type]
    if "code" in pld:
        # An "ack" names its command in pld.original_mid; the others in mid (which some servers leave out).
        mid = pld.get("original_mid") or obj.get("mid") if kind == "ack" else obj.get("mid")
        return Ack(mid or None, pld.get("cmd"), pld["code"], pld.get("msg") or "", raw=obj)
    if kind in ("cmd", "ack"):
        # A legacy "cmd" (or an "ack") without a code is neither an ack nor something this client sends.
        return Unknown(obj)
    data = pld["data"] if "data" in pld else pld.get("params")
    return Command(obj.get("mid"), pld.get("cmd"), data)  # type: ignore[arg-type]
