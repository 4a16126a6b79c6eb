"""Helpers that keep secrets (API keys, client secrets, tokens, RTC credentials) out of text.

The rule of the project: a secret never appears in a repr, an error text, a log line, a widget trait, a notebook
output, a report or an events file. Objects that hold a secret show at most its last four characters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["SECRET_KEYS", "Secret", "redact", "redact_mapping", "scrub"]

#: Keys whose values are secrets wherever they appear (request bodies, credentials, headers, query strings).
SECRET_KEYS = frozenset(
    {
        "api_key",
        "apikey",
        "x-api-key",
        "authorization",
        "token",
        "clientsecret",
        "client_secret",
        "agora_token",
        "livekit_token",
        "trtc_user_sig",
        "trtc_sdk_user_sig",
        "ws_token",
        "ws_url",
        "usersig",
        "user_sig",
    }
)


def redact(value: str | None) -> str:
    """Show at most the last four characters of a secret: ``redact("abcdef123") == "…f123"``.

    Short secrets (8 characters or fewer) are hidden entirely.
    """
    if not value:
        return "<unset>"
    if len(value) <= 8:
        return "…"
    return "…" + value[-4:]


class Secret:
    """A string that never shows itself in ``repr`` or ``str``; :meth:`reveal` returns it.

    >>> s = Secret("sk-live-0123456789")
    >>> s
    Secret('…6789')
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """Return the secret itself (for a header or a request body, never for display)."""
        return self._value

    def __repr__(self) -> str:
        return f"Secret({redact(self._value)!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


def redact_mapping(data: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``data`` (nested) with the value of every key in :data:`SECRET_KEYS` redacted."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        if key.lower() in SECRET_KEYS and isinstance(value, str):
            out[key] = redact(value)
        elif isinstance(value, Mapping):
            out[key] = redact_mapping(value)
        elif isinstance(value, list):
            out[key] = [redact_mapping(v) if isinstance(v, Mapping) else v for v in value]
        else:
            out[key] = value
    return out


def scrub(text: str, secrets: Iterable[str | None]) -> str:
    """Replace every occurrence of each (non-trivial) secret in ``text`` by its redacted form."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = re.sub(re.escape(secret), redact(secret), text)
    return text
