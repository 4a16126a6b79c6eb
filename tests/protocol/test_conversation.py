"""The conversation state machine, rule by rule (the rules of docs/conversation.md), with no event loop.

Times are plain integers in ms turned into ns; nothing here sleeps.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from akool_lab.errors import ValidationError
from akool_lab.protocol import (
    AckMatched,
    AudioEvent,
    CommandUnacked,
    Conversation,
    ConversationEvent,
    ConversationReply,
    Ignored,
    OtherEvent,
    ReplyEnded,
    ReplyPiece,
    ServerError,
    UnmatchedAck,
    UserSpeech,
)

MS = 1_000_000
S = 1000 * MS


def chat(mid: str, text: str, idx: int | None = None, fin: bool | None = None, sender: str = "bot") -> bytes:
    obj: dict[str, Any] = {"v": 2, "type": "chat", "mid": mid}
    if idx is not None:
        obj["idx"] = idx
    if fin is not None:
        obj["fin"] = fin
    obj["pld"] = {"from": sender, "text": text}
    return json.dumps(obj).encode()


def ev(name: str, mid: str | None = None, **extra: Any) -> bytes:
    obj: dict[str, Any] = {"v": 2, "type": "event", "pld": {"event": name, **extra}}
    if mid is not None:
        obj["mid"] = mid
    return json.dumps(obj).encode()


def ack(mid: str | None, cmd: str | None, code: int = 1000, kind: str = "command", **pld: Any) -> bytes:
    obj: dict[str, Any] = {"v": 2, "type": kind}
    if mid is not None:
        obj["mid"] = mid
    body: dict[str, Any] = {} if cmd is None else {"cmd": cmd}
    obj["pld"] = {**body, "code": code, "msg": "OK" if code == 1000 else "bad", **pld}
    return json.dumps(obj).encode()


def send(conv: Conversation, mid: str, text: str, at_ms: int, **kwargs: Any) -> None:
    kwargs.setdefault("timeout_ns", 30 * S)
    conv.add_message(mid, text, chunks=1, now=at_ms * MS, **kwargs)
    conv.begin_sending(mid)
    conv.chunk_sent(mid, at_ms * MS)


def ended(events: list[ConversationEvent]) -> list[ConversationReply]:
    return [e.reply for e in events if isinstance(e, ReplyEnded)]


class Script:
    """Feeds frames at increasing times and keeps every event."""

    def __init__(self, conv: Conversation) -> None:
        self.conv = conv
        self.events: list[ConversationEvent] = []

    def feed(self, at_ms: int, *frames: bytes) -> list[ConversationEvent]:
        out: list[ConversationEvent] = []
        for frame in frames:
            out += self.conv.feed(frame, at_ms * MS)
        self.events += out
        return out

    def expire(self, at_ms: int) -> list[ConversationEvent]:
        out = self.conv.expire(at_ms * MS)
        self.events += out
        return out

    def replies(self) -> dict[str | None, ConversationReply]:
        return {r.owner: r for r in ended(self.events)}


# --- rule 1: chunks -----------------------------------------------------------------------------------------------


def test_reply_chunks_with_idx_are_ordered_and_deduplicated() -> None:
    conv = Conversation()
    send(conv, "m1", "Hello world!", 0)
    s = Script(conv)
    s.feed(10, chat("r", "world", 1, False), chat("r", "Hello ", 0, False), chat("r", "world", 1, False))
    s.feed(12, chat("r", "!", 2, True), ev("audio_start"), ev("audio_end"))
    reply = s.replies()["m1"]
    assert reply.text == "Hello world!" and reply.complete and len(reply.recv_ns) == 3
    assert any(isinstance(e, Ignored) and e.reason == "duplicate chunk" for e in s.events)


def test_reply_without_idx_is_taken_in_arrival_order() -> None:
    conv = Conversation()
    send(conv, "m1", "one two three", 0)
    s = Script(conv)
    s.feed(10, chat("r", "one "), chat("r", "two "), chat("r", "two "))
    s.feed(11, ev("audio_start"), chat("r", "three"), ev("audio_end"))
    reply = s.replies()["m1"]
    # Without idx nothing can be told a duplicate: the official clients append every piece.
    assert reply.text == "one two two three" and reply.complete and reply.text_end == "audio_end"
    assert reply.missing == ()


def test_reply_without_idx_ends_at_fin_when_sent() -> None:
    conv = Conversation()
    send(conv, "m1", "Hi", 0, until="reply")
    s = Script(conv)
    s.feed(10, chat("r", "Hi", fin=True))
    assert s.replies()["m1"].text == "Hi" and s.replies()["m1"].text_end == "fin"


# --- rule 2: end of text ------------------------------------------------------------------------------------------


def test_reply_with_idx_but_no_fin_is_complete_at_its_audio_end() -> None:
    conv = Conversation()
    send(conv, "m1", "Hello there", 0)
    s = Script(conv)
    s.feed(10, chat("r", "Hello ", 0), chat("r", "there", 1), ev("audio_start"))
    assert not ended(s.events)
    s.feed(500, ev("audio_end"))
    reply = s.replies()["m1"]
    assert reply.complete and reply.text == "Hello there" and reply.text_end == "audio_end"
    assert reply.final_ns == 10 * MS and reply.audio_end_ns == 500 * MS


def test_reply_with_neither_fin_nor_audio_is_incomplete_after_the_quiet_period() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    send(conv, "m1", "x", 0)
    s = Script(conv)
    s.feed(10, chat("r", "Partial", 0))
    assert conv.next_deadline() == 210 * MS
    assert not s.expire(209)
    reply = ended(s.expire(210))[0]
    assert not reply.complete and reply.reason == "no fin before timeout" and reply.text == "Partial"


def test_the_quiet_period_does_not_run_while_the_avatar_speaks() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    send(conv, "m1", "long speech", 0)
    s = Script(conv)
    s.feed(10, chat("r", "long ", 0), ev("audio_start"))
    assert not ended(s.expire(5000))  # speaking for 5 s: the text is not given up
    s.feed(6000, chat("r", "speech", 1), ev("audio_end"))
    assert s.replies()["m1"].complete and s.replies()["m1"].text == "long speech"


def test_a_gap_at_fin_is_waited_for_then_reported_missing() -> None:
    conv = Conversation(quiet_ns=100 * MS)
    send(conv, "m1", "abc", 0, until="reply")
    s = Script(conv)
    s.feed(10, chat("r", "a", 0), chat("r", "c", 2, True))
    assert not ended(s.events)
    reply = ended(s.expire(200))[0]
    assert reply.missing == (1,) and reply.reason == "missing chunks before timeout" and reply.text == "ac"


def test_a_late_missing_chunk_completes_the_reply() -> None:
    conv = Conversation()
    send(conv, "m1", "abc", 0, until="reply")
    s = Script(conv)
    s.feed(10, chat("r", "a", 0), chat("r", "c", 2, True))
    s.feed(20, chat("r", "b", 1))
    assert s.replies()["m1"].text == "abc" and s.replies()["m1"].complete


def test_text_complete_but_no_audio_start_ends_after_the_grace() -> None:
    conv = Conversation(audio_grace_ns=300 * MS)
    send(conv, "m1", "Hi", 0)
    s = Script(conv)
    s.feed(10, chat("r", "Hi", 0, True))
    assert conv.next_deadline() == 310 * MS
    reply = ended(s.expire(310))[0]
    assert reply.complete and reply.audio_start_ns is None


# --- rule 3: mode 1 without echo ----------------------------------------------------------------------------------


def test_mode_1_without_echoed_text_completes_on_the_audio_events() -> None:
    conv = Conversation()
    send(conv, "m1", "Say exactly this.", 0, echo=True)
    s = Script(conv)
    s.feed(50, ev("audio_start"))
    s.feed(900, ev("audio_end"))
    reply = s.replies()["m1"]
    assert reply.complete and not reply.echoed and reply.text == "Say exactly this."
    assert reply.audio_start_ns == 50 * MS and reply.final_ns is None and reply.text_end == "audio_end"


def test_mode_2_without_any_text_is_incomplete() -> None:
    conv = Conversation(quiet_ns=100 * MS)
    send(conv, "m1", "A question?", 0, echo=False)
    s = Script(conv)
    s.feed(50, ev("audio_start"), ev("audio_end"))
    reply = ended(s.expire(200))[0]
    assert not reply.complete and reply.reason == "no reply text arrived" and reply.echoed


# --- rule 4: acks -------------------------------------------------------------------------------------------------


def test_an_ack_matches_by_mid() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, 10 * S)
    conv.command_sent("c2", "set-params", 1 * MS, 10 * S)
    out = conv.feed(ack("c2", "set-params"), 5 * MS)
    assert out == [AckMatched("c2", "set-params", 1000, "OK", 1 * MS, 5 * MS, "mid")]


def test_an_ack_without_mid_takes_the_oldest_pending_command_with_its_cmd() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-action", 0, 10 * S)
    conv.command_sent("c2", "set-params", 1 * MS, 10 * S)
    conv.command_sent("c3", "set-params", 2 * MS, 10 * S)
    first = conv.feed(ack(None, "set-params"), 5 * MS)
    second = conv.feed(ack("someone-else", "set-params"), 6 * MS)
    assert [(e.mid, e.matched_by) for e in first + second if isinstance(e, AckMatched)] == [
        ("c2", "cmd"),
        ("c3", "cmd"),
    ]


def test_an_ack_naming_no_command_takes_the_oldest_pending() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, 10 * S)
    out = conv.feed(ack(None, None), 3 * MS)
    assert isinstance(out[0], AckMatched) and out[0].mid == "c1" and out[0].matched_by == "oldest"


@pytest.mark.parametrize("kind", ["command", "cmd"])
def test_acks_of_type_command_and_cmd_are_understood(kind: str) -> None:
    conv = Conversation()
    conv.command_sent("c1", "interrupt", 0, 10 * S)
    out = conv.feed(ack("c1", "interrupt", kind=kind), 3 * MS)
    assert isinstance(out[0], AckMatched) and out[0].mid == "c1"


def test_an_ack_of_type_ack_names_its_command_in_original_mid() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, 10 * S)
    conv.command_sent("c2", "set-params", 0, 10 * S)
    out = conv.feed(ack("ack-77", None, kind="ack", original_mid="c2"), 3 * MS)
    assert isinstance(out[0], AckMatched) and out[0].mid == "c2" and out[0].matched_by == "mid"


def test_a_command_without_code_is_an_echo_not_an_ack() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, 10 * S)
    echo = json.dumps({"v": 2, "type": "command", "mid": "c1", "pld": {"cmd": "set-params", "data": {}}})
    out = conv.feed(echo.encode(), 1 * MS)
    assert isinstance(out[0], Ignored) and "echo" in out[0].reason and conv.pending_commands == 1


def test_a_duplicate_ack_is_not_taken_for_another_command() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, 10 * S)
    conv.command_sent("c2", "set-params", 0, 10 * S)
    conv.feed(ack("c1", "set-params"), 3 * MS)
    out = conv.feed(ack("c1", "set-params"), 4 * MS)
    assert isinstance(out[0], UnmatchedAck) and conv.pending_commands == 1


def test_a_missing_ack_ends_the_command_at_its_timeout_as_an_error() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, 200 * MS)
    assert conv.next_deadline() == 200 * MS
    out = conv.expire(200 * MS)
    assert out == [CommandUnacked("c1", "set-params", 0, 200 * MS, "timeout", True)]


# --- rule 5: attribution ------------------------------------------------------------------------------------------


def test_a_greeting_at_join_is_unsolicited_and_does_not_shift_replies() -> None:
    conv = Conversation()
    s = Script(conv)
    s.feed(5, chat("g", "Welcome! How can I help?", 0, True), ev("audio_start", "g"))
    send(conv, "m1", "Question one?", 100)
    s.feed(200, ev("audio_end", "g"))
    s.feed(300, chat("r1", "Answer one.", 0, True), ev("audio_start"), ev("audio_end"))
    replies = s.replies()
    assert replies[None].text == "Welcome! How can I help?" and replies[None].reply_mid == "g"
    assert replies["m1"].text == "Answer one." and replies["m1"].reply_mid == "r1"


def test_a_reply_cannot_belong_to_a_message_sent_after_its_first_chunk() -> None:
    conv = Conversation()
    s = Script(conv)
    s.feed(100, chat("g", "Hello there, ", 0))  # a greeting has begun...
    send(conv, "m1", "Hi", 150)  # ...when the first message goes out
    s.feed(160, chat("g", "welcome.", 1, True), ev("audio_start"), ev("audio_end"))
    s.feed(400, chat("r1", "Hi", 0, True), ev("audio_start"), ev("audio_end"))
    assert s.replies()[None].text == "Hello there, welcome."
    assert s.replies()["m1"].text == "Hi"


def test_a_reply_reusing_the_message_mid_belongs_to_it() -> None:
    conv = Conversation()
    send(conv, "m1", "First", 0, until="reply")
    send(conv, "m2", "Second", 1, until="reply")
    s = Script(conv)
    s.feed(10, chat("m2", "to second", 0, True))
    s.feed(11, chat("x", "to first", 0, True))
    assert s.replies()["m2"].text == "to second" and s.replies()["m1"].text == "to first"


def test_answers_to_user_speech_do_not_shift_replies() -> None:
    conv = Conversation()
    s = Script(conv)
    s.feed(10, chat("u1", "what time is it", 0, True, sender="user"))
    send(conv, "m1", "Tell me a joke", 20)
    # The avatar answers in order: first the user's spoken question, then the message.
    s.feed(100, chat("a1", "It is noon.", 0, True), ev("audio_start"), ev("audio_end"))
    s.feed(300, chat("a2", "A joke.", 0, True), ev("audio_start"), ev("audio_end"))
    replies = s.replies()
    assert replies[None].text == "It is noon." and replies["m1"].text == "A joke."
    speech = [e for e in s.events if isinstance(e, UserSpeech)]
    assert speech[-1].text == "what time is it" and speech[-1].done


def test_in_mode_1_an_unanswered_utterance_does_not_take_the_echo_of_the_next_message() -> None:
    conv = Conversation()
    s = Script(conv)
    s.feed(10, chat("u1", "I am the user", 0, True, sender="user"))  # the avatar never answers this
    send(conv, "m1", "Reply check.", 20, echo=True)
    s.feed(30, chat("r1", "Reply ", 0), chat("r1", "check.", 1, True), ev("audio_start"), ev("audio_end"))
    assert s.replies()["m1"].text == "Reply check."


def test_in_mode_1_the_echo_of_what_the_user_said_stays_the_answer_to_it() -> None:
    conv = Conversation()
    s = Script(conv)
    s.feed(10, chat("u1", "hello avatar", 0, True, sender="user"))
    send(conv, "m1", "hello avatar and more", 20, echo=True)
    s.feed(30, chat("a1", "hello avatar", 0, True), ev("audio_start"), ev("audio_end"))
    s.feed(60, chat("r1", "hello avatar and more", 0, True), ev("audio_start"), ev("audio_end"))
    assert s.replies()[None].text == "hello avatar" and s.replies()["m1"].text == "hello avatar and more"


def test_in_mode_1_the_echo_of_speech_heard_before_the_message_arrived_answers_the_speech() -> None:
    conv = Conversation()
    send(conv, "m1", "Two.", 0, echo=True)
    s = Script(conv)
    s.feed(5, chat("u2", "and the weather", 0, True, sender="user"))  # transcribed before the message was read
    s.feed(30, chat("a2", "and the weather", 0, True), ev("audio_start"), ev("audio_end"))
    s.feed(60, chat("r1", "Two.", 0, True), ev("audio_start"), ev("audio_end"))
    assert s.replies()[None].text == "and the weather" and s.replies()["m1"].text == "Two."


def test_user_speech_after_a_message_is_answered_after_it() -> None:
    conv = Conversation()
    send(conv, "m1", "Tell me a joke", 0)
    s = Script(conv)
    s.feed(10, chat("u1", "and the weather", 0, True, sender="user"))
    s.feed(100, chat("a1", "A joke.", 0, True), ev("audio_start"), ev("audio_end"))
    s.feed(300, chat("a2", "Sunny.", 0, True), ev("audio_start"), ev("audio_end"))
    assert s.replies()["m1"].text == "A joke." and s.replies()[None].text == "Sunny."


def test_replies_to_several_messages_in_flight_follow_the_send_order() -> None:
    conv = Conversation()
    for i in range(3):
        send(conv, f"m{i}", f"q{i}", i, until="reply")
    s = Script(conv)
    for i in range(3):
        s.feed(10 + i, chat(f"r{i}", f"a{i}", 0, True))
    assert {k: r.text for k, r in s.replies().items()} == {"m0": "a0", "m1": "a1", "m2": "a2"}


# --- rule 6: audio events -----------------------------------------------------------------------------------------


def test_audio_start_before_any_text_opens_the_reply_of_the_oldest_message() -> None:
    conv = Conversation()
    send(conv, "m1", "Hi", 0)
    s = Script(conv)
    s.feed(5, ev("audio_start"))
    s.feed(8, chat("zz", "Hi", 0, True))
    s.feed(20, ev("audio_end"))
    reply = s.replies()["m1"]
    assert reply.text == "Hi" and reply.audio_start_ns == 5 * MS and reply.reply_mid == "zz"


def test_audio_events_carrying_the_reply_mid_go_to_that_reply() -> None:
    conv = Conversation()
    send(conv, "m1", "a", 0, until="reply")
    send(conv, "m2", "b", 1, until="reply")
    s = Script(conv)
    s.feed(10, chat("r1", "A", 0, False), chat("r2", "B", 0, False))
    s.feed(11, ev("audio_start", "r2"))
    starts = [e for e in s.events if isinstance(e, AudioEvent) and e.name == "audio_start"]
    assert starts[0].owner == "m2" and starts[0].reply_mid == "r2"


def test_audio_end_without_a_speaking_reply_is_ignored() -> None:
    out = Conversation().feed(ev("audio_end"), 1)
    assert isinstance(out[0], Ignored) and "audio_end" in out[0].reason


def test_with_until_reply_the_later_audio_still_belongs_to_the_reply() -> None:
    conv = Conversation()
    send(conv, "m1", "a", 0, until="reply")
    send(conv, "m2", "b", 1, until="reply")
    s = Script(conv)
    s.feed(10, chat("r1", "A", 0, True))
    assert s.replies()["m1"].text == "A"
    s.feed(11, ev("audio_start"))
    starts = [e for e in s.events if isinstance(e, AudioEvent)]
    assert starts[0].owner == "m1"  # not m2, whose reply has not begun


# --- rule 7: interrupt --------------------------------------------------------------------------------------------


def test_interrupt_cuts_the_reply_in_flight_and_ends_it_at_audio_end() -> None:
    conv = Conversation()
    send(conv, "m1", "Talk", 0)
    s = Script(conv)
    s.feed(10, chat("r", "This goes on", 0), ev("audio_start"))
    s.events += conv.command_sent("i1", "interrupt", 20 * MS, 10 * S)
    assert not ended(s.events)  # still speaking
    s.feed(25, ack("i1", "interrupt"), ev("audio_end"))
    reply = s.replies()["m1"]
    assert reply.interrupted and not reply.complete and reply.reason == "interrupted"
    assert reply.text == "This goes on" and reply.audio_end_ns == 25 * MS


def test_an_unacknowledged_interrupt_completes_at_audio_end_and_the_session_goes_on() -> None:
    conv = Conversation()
    send(conv, "m1", "Talk", 0)
    s = Script(conv)
    s.feed(10, chat("r", "Talking", 0), ev("audio_start"))
    s.events += conv.command_sent("i1", "interrupt", 20 * MS, 10 * S)
    s.feed(30, ev("audio_end"))
    assert conv.next_deadline() == 530 * MS  # a moment for a late ack
    s.expire(530)
    unacked = [e for e in s.events if isinstance(e, CommandUnacked)]
    assert unacked == [CommandUnacked("i1", "interrupt", 20 * MS, 530 * MS, "audio_end", False)]
    send(conv, "m2", "Next", 40)
    s.feed(50, chat("r2", "Next", 0, True), ev("audio_start"), ev("audio_end"))
    assert s.replies()["m2"].complete


def test_an_interrupt_acked_just_after_audio_end_is_acknowledged() -> None:
    conv = Conversation()
    send(conv, "m1", "Talk", 0)
    s = Script(conv)
    s.feed(10, chat("r", "Talking", 0), ev("audio_start"))
    s.events += conv.command_sent("i1", "interrupt", 20 * MS, 10 * S)
    s.feed(30, ev("audio_end"))
    s.feed(31, ack("i1", "interrupt"))
    assert [e.mid for e in s.events if isinstance(e, AckMatched)] == ["i1"]
    assert not [e for e in s.events + s.expire(10_000) if isinstance(e, CommandUnacked)]


def test_an_unacknowledged_interrupt_with_nothing_speaking_completes_at_its_timeout() -> None:
    conv = Conversation()
    conv.command_sent("i1", "interrupt", 0, 500 * MS)
    out = conv.expire(500 * MS)
    assert out == [CommandUnacked("i1", "interrupt", 0, 500 * MS, "timeout", False)]


def test_strict_interrupt_makes_a_missing_ack_an_error() -> None:
    conv = Conversation(strict_interrupt=True)
    conv.command_sent("i1", "interrupt", 0, 500 * MS)
    assert conv.feed(ev("audio_end"), 1) == [Ignored("audio_end of no reply that is speaking", 1, conv_event())]
    out = conv.expire(500 * MS)
    assert isinstance(out[0], CommandUnacked) and out[0].fatal


def conv_event() -> Any:
    from akool_lab.protocol import decode

    return decode(ev("audio_end"))


def test_interrupt_while_sending_stops_the_message() -> None:
    conv = Conversation()
    conv.add_message("m1", "long", chunks=3, now=0, timeout_ns=10 * S)
    conv.begin_sending("m1")
    conv.chunk_sent("m1", 1)
    conv.command_sent("i1", "interrupt", 2, 10 * S)
    assert conv.is_interrupted("m1")
    reply = ended(conv.stop_sending("m1", 3, "interrupted before it was fully sent"))[0]
    assert reply.interrupted and reply.reason == "interrupted before it was fully sent"
    assert reply.sent_ns == (1,)


def test_an_interrupted_reply_that_never_ends_speaking_ends_at_the_interrupt_timeout() -> None:
    conv = Conversation(interrupt_timeout_ns=300 * MS)
    send(conv, "m1", "Talk", 0)
    s = Script(conv)
    s.feed(10, chat("r", "Talking", 0), ev("audio_start"))
    s.events += conv.command_sent("i1", "interrupt", 20 * MS, 10 * S)
    assert ended(s.expire(320))[0].interrupted


# --- rule 8: frames not understood ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        (b"not json at all", "undecodable"),
        (b"\xff\xfe", "undecodable"),
        (b"[1, 2]", "undecodable"),
        (b'{"v": 1, "type": "chat"}', "protocol version 1"),
        (b'{"v": 2, "type": "telemetry", "pld": {}}', "unknown message type"),
        (b'{"v": 2, "type": "cmd", "mid": "x", "pld": {"cmd": "y"}}', "without pld.code"),
        (b'{"v": 2, "type": "chat", "mid": "x", "idx": "one", "pld": {"text": "t"}}', "undecodable"),
    ],
)
def test_frames_not_understood_are_ignored_with_the_reason(frame: bytes, reason: str) -> None:
    conv = Conversation()
    send(conv, "m1", "Hi", 0)
    out = conv.feed(frame, 5 * MS)
    assert len(out) == 1 and isinstance(out[0], Ignored) and reason in out[0].reason
    assert conv.pending_messages == 1  # nothing ended


def test_unknown_event_names_are_kept_and_change_nothing() -> None:
    conv = Conversation()
    send(conv, "m1", "Hi", 0)
    out = conv.feed(ev("viseme", frame=3), 5 * MS)
    assert isinstance(out[0], OtherEvent) and out[0].name == "viseme" and conv.pending_messages == 1


def test_an_error_event_naming_a_message_rejects_it_and_frees_its_place() -> None:
    conv = Conversation()
    send(conv, "m1", "forbidden", 0, until="reply")
    send(conv, "m2", "fine", 1, until="reply")
    s = Script(conv)
    s.feed(5, ev("error", code=1003, msg="over budget", ref_mid="m1"))
    s.feed(10, chat("r", "fine", 0, True))
    errors = [e for e in s.events if isinstance(e, ServerError)]
    assert errors[0].rejected == "m1" and errors[0].code == 1003
    assert s.replies()["m1"].error == (1003, "over budget") and s.replies()["m2"].text == "fine"


# --- rule 9: every message ends ---------------------------------------------------------------------------------


def test_a_message_without_any_reply_times_out_and_its_late_reply_shifts_nothing() -> None:
    conv = Conversation()
    send(conv, "m1", "first", 0, timeout_ns=100 * MS, until="reply")
    s = Script(conv)
    reply = ended(s.expire(100))[0]
    assert reply.timed_out and reply.reason == "timeout after 0.1 s" and reply.text == ""
    send(conv, "m2", "second", 150, until="reply")
    s.feed(200, chat("late", "to first", 0, True))
    s.feed(210, chat("r2", "to second", 0, True))
    assert [r.text for r in ended(s.events) if r.owner == "m2"] == ["to second"]


def test_a_cancelled_message_keeps_its_reply_from_shifting_the_next() -> None:
    conv = Conversation()
    send(conv, "m1", "first", 0, until="reply")
    first = ended(conv.cancel("m1", 5 * MS))
    assert first[0].abandoned and "cancelled" in (first[0].reason or "")
    send(conv, "m2", "second", 10, until="reply")
    s = Script(conv)
    s.feed(20, chat("r1", "to first", 0, True))
    s.feed(30, chat("r2", "to second", 0, True))
    assert [(r.owner, r.text) for r in ended(s.events)] == [("m2", "to second")]


def test_the_connection_dropping_ends_every_reply_in_flight() -> None:
    conv = Conversation()
    send(conv, "m1", "a", 0)
    send(conv, "m2", "b", 1)
    conv.feed(chat("r1", "par", 0), 5 * MS)
    replies = ended(conv.connection_lost("server went away", 6 * MS))
    assert {r.owner: (r.text, r.reason) for r in replies} == {
        "m1": ("par", "server went away"),
        "m2": ("", "server went away"),
    }


def test_close_ends_commands_as_errors() -> None:
    conv = Conversation()
    conv.command_sent("c1", "set-params", 0, S)
    out = conv.close("closed by the user", 1)
    assert isinstance(out[0], CommandUnacked) and out[0].fatal and conv.pending_commands == 0


def test_pieces_are_reported_as_they_arrive() -> None:
    conv = Conversation()
    send(conv, "m1", "x", 0)
    out = conv.feed(chat("r", "piece", 0), 3 * MS)
    assert out == [ReplyPiece("m1", "r", 0, False, "piece", 3 * MS)]


def test_bad_arguments_raise_validation_errors() -> None:
    conv = Conversation()
    with pytest.raises(ValidationError, match="until"):
        conv.add_message("m", "t", chunks=1, now=0, timeout_ns=1, until="never")
    with pytest.raises(ValidationError, match="quiet_ns"):
        Conversation(quiet_ns=0)
    conv.add_message("m", "t", chunks=1, now=0, timeout_ns=1)
    with pytest.raises(ValidationError, match="already in use"):
        conv.command_sent("m", "interrupt", 0, 1)


# --- rule 10: what this avatar sends, learned -----------------------------------------------------------------

LOST_TAIL = "no fin, although this avatar ends its replies with fin: its last chunks were probably lost"
NO_ECHO = "no text arrived, although this avatar echoes say() text: it was probably lost"


def answer(s: Script, at_ms: int, mid: str, *pieces: str, fin: bool) -> None:
    """A reply of ``pieces`` (with idx), fin on the last one when ``fin``, spoken right after."""
    for i, piece in enumerate(pieces):
        s.feed(at_ms, chat(mid, piece, i, fin and i == len(pieces) - 1))
    s.feed(at_ms + 1, ev("audio_start"))
    s.feed(at_ms + 2, ev("audio_end"))


def test_once_the_avatar_has_ended_a_reply_with_fin_a_reply_without_fin_lost_its_tail() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m1", "First?", 0)
    answer(s, 10, "r1", "One ", "two.", fin=True)
    assert conv.expects_fin
    send(conv, "m2", "Second?", 100)
    answer(s, 110, "r2", "Three ", "four ", fin=False)  # the last chunk ("five.", with fin) was lost
    assert "m2" not in s.replies()  # its tail may still come: the quiet period runs from its audio_end
    assert conv.next_deadline() == 312 * MS
    reply = ended(s.expire(312))[0]
    assert (reply.owner, reply.complete, reply.reason) == ("m2", False, LOST_TAIL)
    assert reply.text == "Three four " and reply.text_end == "quiet" and reply.missing == () and reply.final_ns is None


def test_a_tail_that_comes_after_audio_end_still_completes_the_reply() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m1", "First?", 0)
    answer(s, 10, "r1", "One.", fin=True)
    send(conv, "m2", "Second?", 100)
    answer(s, 110, "r2", "Three ", fin=False)
    s.feed(150, chat("r2", "four.", 1, True))
    reply = s.replies()["m2"]
    assert reply.complete and reply.text == "Three four." and reply.text_end == "fin"


def test_an_avatar_that_never_sends_fin_completes_every_reply_at_its_audio_end() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    for i in range(4):
        send(conv, f"m{i}", f"Question {i}?", 100 * i)
        answer(s, 100 * i + 10, f"r{i}", "An ", "answer.", fin=False)
    assert all(r.complete and r.text_end == "audio_end" for r in s.replies().values()) and len(s.replies()) == 4
    assert not conv.expects_fin


def test_once_say_text_has_come_back_a_say_reply_without_any_text_lost_it() -> None:
    conv = Conversation()
    s = Script(conv)
    send(conv, "m1", "Say this.", 0, echo=True)
    answer(s, 10, "r1", "Say this.", fin=True)
    assert conv.expects_echo
    send(conv, "m2", "And this.", 100, echo=True)
    s.feed(110, ev("audio_start"), ev("audio_end"))  # spoken, but every chunk of its text was lost
    reply = s.replies()["m2"]
    assert (reply.complete, reply.reason, reply.text, reply.text_end) == (False, NO_ECHO, "", "audio_end")


def test_two_replies_in_a_row_without_fin_and_no_sign_of_loss_unlearn_it_and_fin_teaches_it_again() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m0", "q0", 0)
    answer(s, 10, "r0", "a0", fin=True)
    for i in (1, 2, 3):  # the avatar changed its ways (or the last chunks of two replies in a row were lost)
        send(conv, f"m{i}", f"q{i}", 1000 * i)
        answer(s, 1000 * i + 10, f"r{i}", "no ", "fin", fin=False)
        s.expire(1000 * i + 500)
    replies = s.replies()
    assert [replies[f"m{i}"].reason for i in (1, 2, 3)] == [LOST_TAIL, LOST_TAIL, None]
    assert replies["m3"].text_end == "audio_end" and not conv.expects_fin
    send(conv, "m4", "q4", 4000)
    answer(s, 4010, "r4", "a4", fin=True)  # it sends fin again: a reply without it lost its tail again
    send(conv, "m5", "q5", 5000)
    answer(s, 5010, "r5", "no ", "fin", fin=False)
    s.expire(5500)
    assert conv.expects_fin and s.replies()["m5"].reason == LOST_TAIL


def test_a_sign_of_loss_in_between_keeps_fin_expected() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m0", "q0", 0)
    answer(s, 10, "r0", "a0", fin=True)
    send(conv, "m1", "q1", 1000)
    answer(s, 1010, "r1", "no ", "fin", fin=False)
    s.expire(1500)
    send(conv, "m2", "q2", 2000)
    s.feed(2010, chat("r2", "a", 0), chat("r2", "c", 2))  # chunk 1 was lost: the channel loses chunks
    s.feed(2011, ev("audio_start"), ev("audio_end"))
    s.expire(2500)
    send(conv, "m3", "q3", 3000)
    answer(s, 3010, "r3", "no ", "fin", fin=False)
    s.expire(3500)
    replies = s.replies()
    assert replies["m2"].missing == (1,) and replies["m2"].reason == "missing chunks before timeout"
    assert replies["m3"].reason == LOST_TAIL and conv.expects_fin  # one without fin since the loss, not two


def test_a_say_reply_that_echoes_the_whole_text_without_fin_is_complete() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m0", "q0", 0)
    answer(s, 10, "r0", "a0", fin=True)
    send(conv, "m1", "Hello there, friend.", 100, echo=True)
    answer(s, 110, "r1", "Hello ", "there, ", "friend.", fin=False)
    reply = s.replies()["m1"]  # nothing of it can be missing: complete at its audio_end, at once
    assert reply.complete and reply.text_end == "audio_end" and reply.text == "Hello there, friend."


def test_say_replies_cut_short_are_lost_tails_and_never_unlearn_fin() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m0", "q0", 0)
    answer(s, 10, "r0", "a0", fin=True)
    for i in (1, 2, 3):
        send(conv, f"m{i}", f"Alpha {i}. Beta {i}. Gamma {i}.", 1000 * i, echo=True)
        answer(s, 1000 * i + 10, f"r{i}", f"Alpha {i}. ", "Bet", fin=False)  # the rest was lost
        s.expire(1000 * i + 500)
    assert [s.replies()[f"m{i}"].reason for i in (1, 2, 3)] == [LOST_TAIL] * 3 and conv.expects_fin


def test_two_say_replies_in_a_row_without_text_unlearn_the_echo_and_an_echo_teaches_it_again() -> None:
    conv = Conversation()
    s = Script(conv)
    send(conv, "m0", "Echo me.", 0, echo=True)
    answer(s, 10, "r0", "Echo me.", fin=True)
    for i in (1, 2, 3):
        send(conv, f"m{i}", f"Say {i}.", 100 * i, echo=True)
        s.feed(100 * i + 10, ev("audio_start"), ev("audio_end"))
    replies = s.replies()
    assert [replies[f"m{i}"].reason for i in (1, 2, 3)] == [NO_ECHO, NO_ECHO, None]
    assert not replies["m3"].echoed and replies["m3"].text == "Say 3." and not conv.expects_echo
    send(conv, "m4", "Echo again.", 400, echo=True)
    answer(s, 410, "r4", "Echo again.", fin=True)
    send(conv, "m5", "Say 5.", 500, echo=True)
    s.feed(510, ev("audio_start"), ev("audio_end"))
    assert conv.expects_echo and s.replies()["m5"].reason == NO_ECHO


def test_expect_fin_true_requires_fin_from_the_first_reply_and_false_never_looks_for_it() -> None:
    strict = Conversation(quiet_ns=200 * MS, expect_fin=True)
    s = Script(strict)
    send(strict, "m1", "Hello there.", 0, echo=True)
    answer(s, 10, "r1", "Hello ", "there.", fin=False)
    s.expire(500)
    assert s.replies()["m1"].reason == "no fin before timeout"  # the whole echo: only fin is missing
    for i in (2, 3, 4):
        send(strict, f"m{i}", f"q{i}", 1000 * i)
        answer(s, 1000 * i + 10, f"r{i}", "no ", "fin", fin=False)
        s.expire(1000 * i + 500)
    assert [s.replies()[f"m{i}"].reason for i in (2, 3, 4)] == [LOST_TAIL] * 3 and strict.expects_fin
    tolerant = Conversation(quiet_ns=200 * MS, expect_fin=False)
    t = Script(tolerant)
    send(tolerant, "m1", "q1", 0)
    answer(t, 10, "r1", "a1", fin=True)
    send(tolerant, "m2", "q2", 100)
    answer(t, 110, "r2", "no ", "fin", fin=False)
    assert t.replies()["m2"].complete and t.replies()["m2"].text_end == "audio_end" and not tolerant.expects_fin


def test_expect_echo_true_requires_the_text_and_false_never_looks_for_it() -> None:
    strict = Conversation(expect_echo=True)
    s = Script(strict)
    send(strict, "m1", "Say this.", 0, echo=True)
    s.feed(10, ev("audio_start"), ev("audio_end"))
    assert s.replies()["m1"].reason == NO_ECHO
    tolerant = Conversation(expect_echo=False)
    t = Script(tolerant)
    send(tolerant, "m1", "Echo me.", 0, echo=True)
    answer(t, 10, "r1", "Echo me.", fin=True)
    send(tolerant, "m2", "Say this.", 100, echo=True)
    t.feed(110, ev("audio_start"), ev("audio_end"))
    assert t.replies()["m2"].complete and not t.replies()["m2"].echoed


@pytest.mark.parametrize("option", ["expect_fin", "expect_echo"])
def test_expectations_are_none_true_or_false(option: str) -> None:
    with pytest.raises(ValidationError, match=option):
        Conversation(**{option: "yes"})  # type: ignore[arg-type]


def test_a_greeting_with_fin_teaches_it_and_an_unsolicited_reply_is_held_to_it() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    answer(s, 5, "g", "Welcome!", fin=True)  # a greeting at join: the same avatar, over the same channel
    s.feed(100, chat("u1", "what time is it", 0, True, sender="user"))
    answer(s, 110, "a1", "It is ", "no", fin=False)  # the answer to the user, its tail lost
    send(conv, "m1", "q1", 200)
    answer(s, 210, "r1", "An ", "answer", fin=False)
    s.expire(1000)
    unsolicited = [r for r in ended(s.events) if r.owner is None]
    assert [(r.reply_mid, r.reason) for r in unsolicited] == [("g", None), ("a1", LOST_TAIL)]
    assert s.replies()["m1"].reason == LOST_TAIL


def test_user_speech_with_fin_teaches_nothing_about_the_avatars_replies() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    s.feed(10, chat("u1", "hello", 0, True, sender="user"))  # the speech recognizer's transcript, not the avatar
    answer(s, 20, "a1", "I heard ", "you", fin=False)
    send(conv, "m1", "q1", 100)
    answer(s, 110, "r1", "An ", "answer.", fin=False)
    assert not conv.expects_fin
    assert [(r.owner, r.complete, r.text_end) for r in ended(s.events)] == [
        (None, True, "audio_end"),
        ("m1", True, "audio_end"),
    ]


def test_a_fin_too_late_for_its_reply_still_shows_that_the_avatar_sends_fin() -> None:
    conv = Conversation(quiet_ns=200 * MS)
    s = Script(conv)
    send(conv, "m1", "q1", 0)
    answer(s, 10, "r1", "One ", fin=False)  # nothing learned yet: complete at its audio_end...
    late = s.feed(20, chat("r1", "two.", 1, True))  # ...and then its last chunk, with fin, came after all
    assert isinstance(late[0], Ignored) and s.replies()["m1"].complete and conv.expects_fin
    send(conv, "m2", "q2", 100)
    answer(s, 110, "r2", "Three ", fin=False)
    s.expire(500)
    assert s.replies()["m2"].reason == LOST_TAIL
