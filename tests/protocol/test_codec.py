"""decode and encode: liberal reading, strict writing, and nothing but ProtocolError for garbage."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from akool_lab.errors import ProtocolError, ValidationError
from akool_lab.protocol import Ack, ChatChunk, Command, Message, ServerEvent, Unknown, decode, encode, new_mid

from .strategies import acks, chat_chunks, commands, events, unknowns


def _wire(obj: Any) -> bytes:
    return json.dumps(obj).encode()


@pytest.mark.parametrize("strategy", [chat_chunks, commands, acks, events, unknowns], ids=lambda s: repr(s)[:30])
def test_decode_inverts_encode_for_every_message_type(strategy: st.SearchStrategy[Message]) -> None:
    @settings(max_examples=40, deadline=None)
    @given(message=strategy)
    def check(message: Message) -> None:
        assert decode(encode(message)) == message

    check()


def test_encode_uses_compact_separators_and_raw_utf8() -> None:
    assert encode(ChatChunk("m", 0, True, "héllo 😀")) == (
        '{"v":2,"type":"chat","mid":"m","idx":0,"fin":true,"pld":{"text":"héllo 😀"}}'.encode()
    )


def test_invalid_utf8_is_a_protocol_error_that_shows_the_bytes() -> None:
    with pytest.raises(ProtocolError, match="UTF-8") as info:
        decode(b'{"v":2,"type":"chat","pld":{"text":"\xff"}}')
    assert info.value.data is not None and b"\xff" in info.value.data


def test_non_json_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not JSON"):
        decode("hello avatar")


def test_a_json_array_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="not a JSON object"):
        decode("[1, 2]")


@pytest.mark.parametrize(
    "text",
    [
        ' \n{"v":2,"type":"event","pld":{"event":"audio_end"}}\t ',  # whitespace around the object
        '{"v":2,"type":"event","mid":"r","pld":{"event":"audio_start","x":[1,2.5,null,true]}}',
        '{"v":2,"type":"chat","mid":"r","idx":0,"pld":{"text":"\\ud83d"}}',  # a lone surrogate escape
        '{"v":2,"type":"event","pld":{"event":"x","n":NaN}}',  # json.loads accepts NaN, so do we
    ],
)
def test_decode_reads_exactly_what_json_loads_reads(text: str) -> None:
    assert decode(text) == decode(text.encode()) == _from_loads(json.loads(text))


@pytest.mark.parametrize(
    "text",
    [
        '{"v":2,"type":"event","pld":{"event":"a"}} {"v":2}',  # extra data
        '\ufeff{"v":2,"type":"event","pld":{"event":"a"}}',  # a byte order mark
        '{"v":2,"type":"event","pld":{"event":"a"}',  # truncated
        "",
    ],
)
def test_decode_refuses_exactly_what_json_loads_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        json.loads(text)
    with pytest.raises(ProtocolError, match="not JSON"):
        decode(text)


def _from_loads(obj: Any) -> Message:
    # What decode made of the same object before it scanned frames itself: json.loads, then the same reading.
    return decode(json.dumps(obj, allow_nan=True))


def test_deeply_nested_json_is_a_protocol_error_not_a_recursion_error() -> None:
    with pytest.raises(ProtocolError):
        decode("[" * 100_000 + "]" * 100_000)


def test_a_chat_whose_idx_is_not_an_integer_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="idx"):
        decode(_wire({"v": 2, "type": "chat", "mid": "m", "idx": "1", "pld": {"text": "x"}}))


def test_a_chat_whose_idx_is_a_bool_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="idx"):
        decode(_wire({"v": 2, "type": "chat", "mid": "m", "idx": True, "pld": {"text": "x"}}))


def test_a_v2_message_without_a_pld_object_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="pld"):
        decode(_wire({"v": 2, "type": "chat", "mid": "m", "pld": "text"}))


def test_a_bot_chunk_decodes_with_its_sender() -> None:
    chunk = decode(
        _wire({"v": 2, "type": "chat", "mid": "r1", "idx": 2, "fin": True, "pld": {"from": "bot", "text": "ok"}})
    )
    assert chunk == ChatChunk("r1", 2, True, "ok", "bot")


def test_fin_inside_pld_is_accepted() -> None:
    chunk = decode(
        _wire({"v": 2, "type": "chat", "mid": "r1", "idx": 0, "pld": {"from": "bot", "text": "", "fin": True}})
    )
    assert isinstance(chunk, ChatChunk) and chunk.fin


def test_a_chat_without_idx_or_fin_is_chunk_zero_not_final() -> None:
    chunk = decode(_wire({"v": 2, "type": "chat", "mid": "r1", "pld": {"from": "user", "text": "hi"}}))
    assert isinstance(chunk, ChatChunk) and (chunk.idx, chunk.fin) == (0, False)


def test_extra_fields_are_kept_in_raw_and_ignored_by_equality() -> None:
    obj = {
        "v": 2,
        "type": "chat",
        "mid": "r1",
        "idx": 0,
        "fin": True,
        "ts": 5,
        "pld": {"from": "bot", "text": "a", "meta": {}},
    }
    chunk = decode(_wire(obj))
    assert isinstance(chunk, ChatChunk) and chunk.raw == obj
    assert chunk == ChatChunk("r1", 0, True, "a", "bot")


@pytest.mark.parametrize("kind", ["command", "cmd"])
def test_an_ack_is_a_command_or_cmd_with_a_code(kind: str) -> None:
    ack = decode(_wire({"v": 2, "type": kind, "mid": "c1", "pld": {"cmd": "interrupt", "code": 1000, "msg": "OK"}}))
    assert ack == Ack("c1", "interrupt", 1000, "OK")
    assert isinstance(ack, Ack) and ack.ok


def test_a_failed_ack_is_not_ok() -> None:
    ack = decode(
        _wire({"v": 2, "type": "command", "mid": "c1", "pld": {"cmd": "set-params", "code": 1003, "msg": "bad"}})
    )
    assert isinstance(ack, Ack) and not ack.ok and ack.msg == "bad"


def test_a_command_without_a_code_decodes_as_the_command_it_echoes() -> None:
    message = decode(_wire({"v": 2, "type": "command", "mid": "c1", "pld": {"cmd": "set-params", "data": {"mode": 1}}}))
    assert message == Command("c1", "set-params", {"mode": 1})


def test_set_params_under_pld_params_is_read_as_data() -> None:
    message = decode(
        _wire({"v": 2, "type": "command", "mid": "c1", "pld": {"cmd": "set-params", "params": {"lang": "en"}}})
    )
    assert message == Command("c1", "set-params", {"lang": "en"})


def test_a_legacy_cmd_without_a_code_is_unknown() -> None:
    assert isinstance(decode(_wire({"v": 2, "type": "cmd", "mid": "c1", "pld": {"cmd": "interrupt"}})), Unknown)


@pytest.mark.parametrize("name", ["audio_start", "audio_end", "some_future_event"])
def test_events_keep_their_name_as_is(name: str) -> None:
    event = decode(_wire({"v": 2, "type": "event", "mid": "e1", "pld": {"event": name}}))
    assert event == ServerEvent("e1", name, {"event": name})


def test_an_error_event_keeps_its_code_and_msg() -> None:
    event = decode(_wire({"v": 2, "type": "event", "pld": {"event": "error", "code": 1219, "msg": "closed"}}))
    assert isinstance(event, ServerEvent) and event.mid is None and event.pld["code"] == 1219


@pytest.mark.parametrize("version", [1, 3, "2", None, True])
def test_other_versions_are_unknown(version: object) -> None:
    obj = {"v": version, "type": "chat", "mid": "m", "pld": {"text": "x"}}
    assert decode(_wire(obj)) == Unknown(obj)


def test_an_unknown_type_is_kept_whole() -> None:
    obj = {"v": 2, "type": "presence", "pld": {"x": 1}}
    assert decode(_wire(obj)) == Unknown(obj)


def test_new_mids_are_unique() -> None:
    mids = [new_mid() for _ in range(10_000)]
    assert len(set(mids)) == len(mids)


def test_a_message_validates_itself_on_construction() -> None:
    with pytest.raises(ValidationError) as info:
        ChatChunk("m", -1, False, "x")
    assert info.value.field == "idx"


def test_an_event_whose_pld_names_another_event_is_rejected() -> None:
    with pytest.raises(ValidationError, match=r"pld\.event"):
        ServerEvent(None, "audio_start", {"event": "audio_end"})


def test_decode_accepts_bytearray_and_memoryview() -> None:
    data = b'{"v":2,"type":"event","pld":{"event":"audio_end"}}'
    assert decode(bytearray(data)) == decode(memoryview(data)) == ServerEvent(None, "audio_end")


@settings(max_examples=200, deadline=None)
@given(message=st.one_of(chat_chunks, events))
def test_a_decoded_chunk_or_event_is_exactly_what_its_validating_constructor_builds(
    message: ChatChunk | ServerEvent,
) -> None:
    decoded = decode(encode(message))
    rebuilt: ChatChunk | ServerEvent
    if isinstance(decoded, ChatChunk):
        rebuilt = ChatChunk(decoded.mid, decoded.idx, decoded.fin, decoded.text, decoded.sender, raw=decoded.raw)
    else:
        assert isinstance(decoded, ServerEvent)
        rebuilt = ServerEvent(decoded.mid, decoded.name, decoded.pld)
        assert decoded.pld["event"] == decoded.name
    assert decoded == rebuilt and repr(decoded) == repr(rebuilt)
    for name in dataclasses.fields(decoded):
        assert type(getattr(decoded, name.name)) is type(getattr(rebuilt, name.name))
    with pytest.raises(dataclasses.FrozenInstanceError):
        decoded.mid = "changed"  # type: ignore[misc]


@settings(max_examples=300, deadline=None)
@given(
    mid=st.one_of(st.none(), st.text(min_size=0, max_size=12)),
    name=st.sampled_from(["audio_start", "audio_end", "audio_ended", "speak"]),
    extra=st.sampled_from(["", " ", ',"x":1']),
)
def test_an_audio_event_in_compact_form_reads_as_json_would_read_it(mid: str | None, name: str, extra: str) -> None:
    obj: dict[str, Any] = {"v": 2, "type": "event"}
    if mid is not None:
        obj["mid"] = mid
    obj["pld"] = {"event": name}
    wire = json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()
    if extra:
        wire = wire[:-1] + extra.encode() + b"}"
    try:
        expected: Message | str = decode(wire.decode())  # (text: always parsed as JSON)
    except ProtocolError as exc:
        expected = exc.args[0]
    try:
        got: Message | str = decode(wire)
    except ProtocolError as exc:
        got = exc.args[0]
    assert got == expected and type(got) is type(expected)
    if isinstance(got, ServerEvent):
        assert got.pld == {**json.loads(wire)["pld"], "event": name}
