"""Liberal readers of the service's JSON, shared by every model built from it.

AKool's responses vary (AKOOL_API.md section 11): ids arrive as strings or numbers, flags as booleans or 0/1, a
field under one of several names. These readers accept every variant and never raise: a value that is absent or of
no usable type reads as ``None``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import IntEnum
from typing import Any

__all__ = ["LenientIntEnum", "read_bool", "read_int", "read_str"]


class LenientIntEnum(IntEnum):
    """An IntEnum that turns an unknown value into a pseudo-member instead of failing (liberal parsing)."""

    @classmethod
    def _missing_(cls, value: object) -> Any:
        if isinstance(value, int) and not isinstance(value, bool):
            member = int.__new__(cls, value)
            member._name_ = f"UNKNOWN_{value}"
            member._value_ = value
            return member
        return None


def read_str(raw: Mapping[str, Any], *keys: str) -> str | None:
    """The first of ``keys`` present in ``raw``, as a string (ids sometimes arrive as numbers)."""
    for key in keys:
        value = raw.get(key)
        if value is not None:
            return str(value)
    return None


def read_int(raw: Mapping[str, Any], *keys: str) -> int | None:
    """The first of ``keys`` holding an integer (a whole float or a string of digits counts; a bool does not)."""
    for key in keys:
        value = raw.get(key)
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value)
    return None


def read_bool(raw: Mapping[str, Any], key: str) -> bool | None:
    """``raw[key]`` as a flag: a bool as is, a number as ``== 1``; None otherwise."""
    value = raw.get(key)
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value == 1
    return None
