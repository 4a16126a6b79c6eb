"""Dialects of the data channel: the ways a real avatar service may answer that AKool's official clients accept.

The simulator speaks the documented v2 protocol by default (``documented``). A dialect changes *how* it answers,
never *what*: the same replies, acks and events on the same schedule, shaped the way another client generation or
server build shapes them. Each variant below is something one of AKool's official clients accepts, so a client
that is as tolerant as they are works against every one of them:

``documented``
    The documented protocol (AKOOL_API.md section 5): reply chunks carry ``idx`` and ``fin`` (``fin: true`` on
    the last one), acks are ``{"type": "command", "mid": <the command's mid>, "pld": {"cmd", "code", "msg"}}``.
    The default; it combines with nothing (it is the absence of variants).
``no-idx``
    Reply chunks (bot and user) carry no ``idx``; the last one still has ``fin: true``. The React demo and the JS
    SDK never read ``idx``: they append chunk texts per ``mid`` in arrival order.
``no-fin``
    Reply chunks carry ``idx`` but no ``fin`` key at all: the end of a reply shows only as its ``audio_end`` event
    (after ``audio_start``). The official clients never read ``fin``.
``no-echo``
    In mode 1 (retelling) the avatar speaks, sending ``audio_start`` and ``audio_end``, but sends no bot chat text
    back. In mode 2 its answer text still arrives. The demo drives its speaking indicator from the audio events.
``ack-no-mid``
    Acks do not carry the command's ``mid``: the 1st, 3rd, 5th... ack of a connection has no ``mid`` at all, the
    2nd, 4th... a fresh one (``ack-<n>``). The demo takes any inbound command carrying ``pld.code`` as an ack
    without looking at its ``mid``.
``ack-cmd``
    Acks have ``type: "cmd"`` (the JS SDK and demo versions up to 2025-08 test for ``"cmd"``).
``ack-type-ack``
    Acks in the style of the PyPI package: ``{"type": "ack", "mid": <fresh>, "pld": {"original_mid": <the
    command's mid>, "cmd", "code", "msg"}}``. With ``ack-no-mid``, ``original_mid`` follows the ``ack-no-mid``
    rule instead (absent, or a fresh id).
``greeting``
    When a client joins a live session, the avatar greets it before any message (a knowledge base's ``prologue``
    when the session has one, else a stock greeting): bot chat chunks with their own ``mid``, the first one at once
    (as the client joins, or as the session goes live), then the audio events; it is spoken like any reply, so a
    question sent meanwhile waits for the greeting to finish.
``trtc-demo-names``
    TRTC credentials under the names the React demo reads (``trtc_app_id``, ``trtc_room_id``, ``trtc_user_id``,
    ``trtc_user_sig``) instead of the OpenAPI file's ``trtc_sdk_*``.

Variants combine with commas (``"no-idx,ack-cmd"``); ``ack-cmd`` and ``ack-type-ack`` both set the ack's ``type``
and so exclude each other. A dialect is chosen for the whole simulator (``akool-lab sim --dialect``,
``akool_lab.sim.start(dialect=...)``, ``$AKOOL_SIM_DIALECT``) and can be changed per session through
``POST /_sim/sessions/{id}/dialect`` (and for sessions created later through ``POST /_sim/dialect``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DIALECTS", "SUMMARIES", "TRTC_DEMO_NAMES", "VARIANTS", "Dialect", "DialectError", "help_text"]

#: Every dialect name, ``documented`` first (what ``--dialect`` and ``dialect=`` accept, alone or combined).
DIALECTS: tuple[str, ...] = (
    "documented",
    "no-idx",
    "no-fin",
    "no-echo",
    "ack-no-mid",
    "ack-cmd",
    "ack-type-ack",
    "greeting",
    "trtc-demo-names",
)
#: The variants (every dialect but ``documented``).
VARIANTS: tuple[str, ...] = DIALECTS[1:]
_EXCLUSIVE = (frozenset({"ack-cmd", "ack-type-ack"}),)
#: The OpenAPI file's TRTC credential names -> the names the React demo reads (``trtc-demo-names``).
TRTC_DEMO_NAMES: dict[str, str] = {
    "trtc_sdk_app_id": "trtc_app_id",
    "trtc_sdk_room_id": "trtc_room_id",
    "trtc_sdk_user_id": "trtc_user_id",
    "trtc_sdk_user_sig": "trtc_user_sig",
}


#: One line per dialect, for ``akool-lab sim --help``.
SUMMARIES: dict[str, str] = {
    "documented": "the documented v2 protocol (default): idx and fin on chunks, acks of type command with the mid",
    "no-idx": "reply chunks without idx (fin on the last one)",
    "no-fin": "reply chunks with idx but no fin: a reply ends at its audio_end",
    "no-echo": "mode 1: the avatar speaks (audio events) but sends no reply text back",
    "ack-no-mid": "acks without the command's mid (every other one with a fresh mid instead)",
    "ack-cmd": 'acks of type "cmd" (the JS SDK, demo <= 2025-08)',
    "ack-type-ack": 'acks of type "ack" with pld.original_mid (the PyPI package)',
    "greeting": "a knowledge-base style greeting (bot text and audio) when a client joins, before any message",
    "trtc-demo-names": "TRTC credentials as trtc_app_id/trtc_room_id/trtc_user_id/trtc_user_sig (the demo's names)",
}


def help_text() -> str:
    """The dialects and what each does, for the command line's help."""
    width = max(map(len, DIALECTS))
    lines = [f"  {name:<{width}}  {SUMMARIES[name]}" for name in DIALECTS]
    return (
        "dialects: how the avatar shapes what it sends, each a variant AKool's official clients accept.\n"
        "Combine them with commas (--dialect no-idx,ack-cmd); ack-cmd and ack-type-ack exclude each other.\n"
        "Default: $AKOOL_SIM_DIALECT, else documented. Per session: POST /_sim/sessions/{id}/dialect.\n\n"
        + "\n".join(lines)
    )


class DialectError(ValueError):
    """A dialect spec names an unknown dialect or variants that exclude each other; the message says which."""


@dataclass(frozen=True, slots=True)
class Dialect:
    """A set of variants of the protocol (empty: ``documented``). Build it with :meth:`parse`.

    >>> Dialect.parse("ack-cmd, no-idx").spec
    'no-idx,ack-cmd'
    """

    variants: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        unknown = sorted(set(self.variants) - set(VARIANTS))
        if unknown:
            raise DialectError(f"dialect: unknown variant {unknown[0]!r} (allowed: {', '.join(VARIANTS)})")

    @classmethod
    def parse(cls, spec: str | Iterable[str] | Dialect | None) -> Dialect:
        """A dialect from ``"no-idx,ack-cmd"``, a list of names, another dialect, or ``None``/``""`` (documented).

        Raises :class:`DialectError` naming the allowed values for an unknown name, and the pair for variants
        that exclude each other.
        """
        if isinstance(spec, Dialect):
            return spec
        if spec is None:
            return cls()
        pieces = spec.split(",") if isinstance(spec, str) else [str(n) for n in spec]
        names = [n.strip() for n in pieces if n.strip()]
        unknown = [n for n in names if n not in DIALECTS]
        if unknown:
            raise DialectError(
                f"dialect: unknown dialect {unknown[0]!r} (allowed, combined with commas: {', '.join(DIALECTS)})"
            )
        variants = frozenset(names) - {"documented"}
        if "documented" in names and variants:
            raise DialectError(
                f"dialect: 'documented' is the protocol without variants; it does not combine with "
                f"{', '.join(sorted(variants))}"
            )
        for group in _EXCLUSIVE:
            both = group & variants
            if len(both) > 1:
                raise DialectError(f"dialect: {' and '.join(sorted(both))} both set the ack's type; choose one")
        return cls(variants)

    @property
    def spec(self) -> str:
        """The canonical spec: variants in the order of :data:`DIALECTS`, or ``"documented"``."""
        return ",".join(n for n in VARIANTS if n in self.variants) or "documented"

    def __contains__(self, name: object) -> bool:
        return name in self.variants

    def __str__(self) -> str:
        return self.spec
