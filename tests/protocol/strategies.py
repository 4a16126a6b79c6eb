"""Hypothesis strategies for the protocol's messages and texts, shared by the property tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from akool_lab.protocol import Ack, ChatChunk, Command, ServerEvent, Unknown

#: Characters that stress the chunker: 2-, 3- and 4-byte UTF-8, combining marks, ZWJ emoji sequences, JSON escapes.
TRICKY = [
    "é", "ß", "中", "文", "。", "！", "？", "😀", "👩\u200d👩\u200d👧", "🎉", "𝄞", "e\u0301", "\u0301", "\u200d",
    '"', "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x01", "\x1f", "\x7f", "\u2028", " ", ".", "a", "Z", "? ",
]  # fmt: skip

any_text = st.text(min_size=1, max_size=3000)
tricky_text = st.lists(st.sampled_from(TRICKY) | st.text(max_size=8), min_size=1, max_size=1500).map("".join)
chat_text = (any_text | tricky_text).filter(lambda text: text.strip() != "")

mids = st.text(min_size=1, max_size=40)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=5)

chat_chunks = st.builds(
    ChatChunk,
    mid=mids,
    idx=st.integers(0, 10**6),
    fin=st.booleans(),
    text=st.text(max_size=200),
    sender=st.none() | st.sampled_from(["bot", "user"]),
)
commands = st.builds(Command, mid=mids, cmd=st.text(min_size=1, max_size=20), data=st.none() | json_objects)
acks = st.builds(
    Ack,
    mid=mids,
    cmd=st.none() | st.sampled_from(["set-params", "interrupt", "set-action"]),
    code=st.integers(-(2**31), 2**31),
    msg=st.text(max_size=40),
)


def _event(mid: str | None, name: str, extra: dict[str, Any]) -> ServerEvent:
    extra.pop("event", None)
    return ServerEvent(mid, name, extra)


events = st.builds(_event, st.none() | mids, st.text(min_size=1, max_size=20), json_objects)
unknowns = st.builds(
    Unknown, json_objects.map(lambda obj: {**obj, "v": 1}) | json_objects.map(lambda obj: {**obj, "v": 2, "type": "x"})
)
messages = chat_chunks | commands | acks | events | unknowns
