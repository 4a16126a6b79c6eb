"""AvatarStream against a scripted in-memory avatar: matching replies, timings, commands and failures."""

from __future__ import annotations

import asyncio
import functools
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

from akool_lab.errors import (
    InvalidParameterError,
    ReplyIncompleteError,
    StreamClosedError,
    TimeoutError,
    ValidationError,
)
from akool_lab.events import EventKind
from akool_lab.live import AvatarStream, LiveSession, io_loop
from akool_lab.live._loop import Handoff
from akool_lab.protocol.limits import LIVEKIT, LIVEKIT_UNPACED

from .._wait import wait_until
from .fakes import FakeTransport, ack, bot_chunk, echo_avatar, event, queued


def open_live(transport: FakeTransport, **kwargs: Any) -> LiveSession:
    stream = io_loop().run(AvatarStream.open(transport, session_id="s1", **kwargs), 5, "open")
    return LiveSession(stream)


def test_say_switches_to_retelling_mode_first_then_returns_the_spoken_text() -> None:
    fake = FakeTransport()
    with open_live(fake) as live:
        reply = live.say("Hello there, friend.")
    kinds = [(m["type"], m["pld"].get("cmd")) for m in fake.sent_messages()]
    assert kinds == [("command", "set-params"), ("chat", None)]
    assert fake.sent_messages()[0]["pld"]["data"] == {"mode": 1}
    assert reply.text == "Hello there, friend." and reply.complete and reply.reply_mid == "r-1"


def test_a_known_mode_is_not_set_again() -> None:
    fake = FakeTransport()
    with open_live(fake, mode=1) as live:
        live.say("One.")
        live.say("Two.")
    assert [m["type"] for m in fake.sent_messages()] == ["chat", "chat"]


def test_reply_timings_are_ordered_and_on_the_kernel_clock() -> None:
    with open_live(FakeTransport(), mode=1) as live:
        t = live.say("Timing check.").timings
    assert t.clock == "kernel" and t.chunks == 1 and t.send_span_ms == 0
    assert t.ttfr_ms is not None and t.ttfa_ms is not None and t.reply_ms is not None and t.speak_ms is not None
    # The fake answers at +5 ms (first chunk), +6 ms (audio), +7 ms (final chunk), +10 ms (audio end).
    assert 4 <= t.ttfr_ms < 200 and t.ttfr_ms <= t.ttfa_ms <= t.reply_ms + 50
    assert 0 < t.speak_ms < 200 and len(t.gaps_ms) == 1


def test_concurrent_says_are_sent_in_call_order() -> None:
    fake = FakeTransport()
    texts = [f"Message number {i}." for i in range(8)]
    with open_live(fake, mode=1) as live:
        replies: dict[str, str] = {}

        def worker(text: str) -> None:
            replies[text] = live.say(text).text

        threads = []
        for n, text in enumerate(texts, 1):
            th = threading.Thread(target=worker, args=(text,))
            th.start()
            threads.append(th)
            # The next call starts once this one is queued (its transcript line exists): a known order, in flight
            # together.
            wait_until(functools.partial(queued, live, n), 5, f"message {n} queued")
        for th in threads:
            th.join(10)
    sent = [m["pld"]["text"] for m in fake.sent_messages() if m["type"] == "chat"]
    assert sent == texts
    assert all(replies[t] == t for t in texts)


def test_long_text_is_chunked_under_the_budget_and_paced() -> None:
    fake = FakeTransport()
    text = "A fairly long sentence that keeps going. " * 60  # ~2.5 KB: three chunks at 960 B
    with open_live(fake, mode=1) as live:
        reply = live.say(text)
    chats = [b for b in fake.sent if b"chat" in b]
    assert len(chats) == reply.timings.chunks >= 3
    assert all(len(b) <= 960 for b in chats)
    # Agora pacing (5,760 B/s): after the first 960 B chunk, each further one waits ~160 ms.
    assert reply.timings.send_span_ms is not None and reply.timings.send_span_ms > 250
    assert reply.text == text


def test_livekit_is_paced_like_the_demo_unless_the_user_opts_out() -> None:
    text = "Word " * 600  # ~3 KB: four 960 B chunks
    fake = FakeTransport(budget=LIVEKIT)
    with open_live(fake, mode=1) as live:
        paced = live.say(text)
    with open_live(FakeTransport(budget=LIVEKIT_UNPACED), mode=1) as live:
        unpaced = live.say(text)
    assert paced.timings.chunks >= 3 and all(len(b) <= 960 for b in fake.sent)  # 960 B chunks kept
    assert paced.timings.send_span_ms is not None and paced.timings.send_span_ms > 250  # ~160 ms per further chunk
    assert unpaced.timings.send_span_ms is not None and unpaced.timings.send_span_ms < 100


def test_livekit_transport_paces_by_default_and_not_when_asked() -> None:
    from akool_lab.transport._livekit import LiveKitTransport

    assert LiveKitTransport("wss://lk.test", "t").budget == LIVEKIT
    assert LiveKitTransport("wss://lk.test", "t", pace=False).budget == LIVEKIT_UNPACED


def test_set_params_drops_empty_fields_and_forwards_unknown_vparams_with_a_warning() -> None:
    fake = FakeTransport()
    with open_live(fake) as live:
        with pytest.warns(UserWarning, match="elevenlabs_settings"):
            ack_ = live.set_params(lang="", bgurl="", vparams={"speed": 1.1, "elevenlabs_settings": {"stability": 0.4}})
        assert ack_.ok
    (sent,) = fake.sent_messages()
    assert sent["pld"]["data"] == {"vparams": {"speed": 1.1, "elevenlabs_settings": {"stability": 0.4}}}


def test_duplicated_and_reordered_reply_chunks_give_the_text_once_in_order() -> None:
    def avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "command":
            return [(0.001, ack(message["mid"], "set-params"))]
        return [
            (0.003, bot_chunk("r", 1, "world", False)),
            (0.004, bot_chunk("r", 0, "Hello ", False)),
            (0.005, bot_chunk("r", 1, "world", False)),
            (0.006, event("audio_start")),
            (0.007, bot_chunk("r", 2, "!", True)),
            (0.009, event("audio_end")),
        ]

    with open_live(FakeTransport(avatar)) as live:
        reply = live.say("Hello world!")
    assert reply.text == "Hello world!" and reply.complete
    assert len(reply.timings.gaps_ms) == 2  # three distinct chunks, the duplicate ignored


def test_audio_start_before_any_text_still_belongs_to_the_message() -> None:
    def avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "command":
            return [(0.001, ack(message["mid"], "set-params"))]
        return [
            (0.002, event("audio_start")),
            (0.004, bot_chunk("zz", 0, "Hi", True)),
            (0.006, event("audio_end")),
        ]

    with open_live(FakeTransport(avatar)) as live:
        reply = live.say("Hi")
    assert reply.text == "Hi" and reply.timings.ttfa_ms is not None
    assert reply.timings.ttfa_ms < reply.timings.ttfr_ms  # type: ignore[operator]


def test_missing_fin_gives_an_incomplete_reply_with_what_arrived() -> None:
    def avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "command":
            return [(0.001, ack(message["mid"], "set-params"))]
        return [(0.002, bot_chunk("r", 0, "Partial", False))]

    stream = io_loop().run(AvatarStream.open(FakeTransport(avatar), fin_timeout=0.2), 5, "open")
    live = LiveSession(stream)
    with pytest.raises(ReplyIncompleteError) as info:
        live.say("Something long", timeout=5)
    partial = info.value.reply
    assert partial is not None and partial.text == "Partial" and not partial.complete  # type: ignore[attr-defined]
    done = [e for e in live.recorder.filter(EventKind.REPLY_DONE) if e.mid == partial.mid]  # type: ignore[attr-defined]
    assert done and done[0].data["complete"] is False
    live.close()


def test_set_params_returns_the_ack_and_a_rejected_one_raises_the_typed_error() -> None:
    def avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        data = message["pld"].get("data", {})
        code = 1003 if data.get("lang") == "xx" else 1000
        return [(0.002, ack(message["mid"], "set-params", code, "lang not supported" if code != 1000 else "OK"))]

    with open_live(FakeTransport(avatar)) as live:
        ok = live.set_params(lang="fr", vparams={"speed": 1.1})
        assert ok.ok and ok.cmd == "set-params" and ok.ack_ms is not None and 0 < ok.ack_ms < 1000
        with pytest.raises(InvalidParameterError) as info:
            live.set_params(lang="xx")
        assert info.value.code == 1003 and "lang not supported" in str(info.value)


def test_invalid_set_params_raise_before_anything_is_sent() -> None:
    fake = FakeTransport()
    with open_live(fake) as live:
        with pytest.raises(ValidationError, match="speed"):
            live.set_params(vparams={"speed": 3})
        with pytest.raises(ValidationError, match="mode"):
            live.set_params(mode=7)
        with pytest.raises(ValidationError, match="text"):
            live.say("   ")
    assert fake.sent == []


def test_a_missing_ack_times_out_with_a_clear_error_and_is_recorded() -> None:
    fake = FakeTransport(responder=lambda m, s: [])
    with open_live(fake) as live:
        with pytest.raises(TimeoutError, match="ack for set-params"):
            live.set_params(lang="en", timeout=0.2)
        assert live.recorder.filter(EventKind.ACK_MISSING)


def test_interrupt_during_a_long_reply_returns_an_interrupted_reply() -> None:
    def avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "command":
            cmd = message["pld"]["cmd"]
            out = [(0.001, ack(message["mid"], cmd))]
            if cmd == "interrupt":
                out.append((0.002, event("audio_end")))
            return out
        return [(0.002, bot_chunk("r", 0, "This will go on and on", False)), (0.003, event("audio_start"))]

    with open_live(FakeTransport(avatar), mode=1) as live:
        future = io_loop().submit(live.avatar_stream.say("Talk for a long time."))
        wait_until(lambda: live.recorder.filter(EventKind.AUDIO_START), 5, "the avatar speaking")
        ack_ = live.interrupt()
        reply = future.result(5)
    assert ack_.ok and reply.interrupted and not reply.complete and reply.reason == "interrupted"
    assert reply.text == "This will go on and on"


def test_server_disconnect_fails_the_waiting_call_and_closes_the_stream() -> None:
    fake = FakeTransport(responder=lambda m, s: [])
    live = open_live(fake, mode=1)
    future = io_loop().submit(live.avatar_stream.say("Are you there?"))
    wait_until(lambda: live.recorder.filter(EventKind.CHAT_SENT), 5, "the message sent")
    io_loop().call_soon(fake.drop, "server went away")
    with pytest.raises(ReplyIncompleteError, match="server went away"):
        future.result(5)
    live.wait_closed(5)  # signalled, not polled
    assert live.closed
    with pytest.raises(StreamClosedError):
        live.say("Hello?")


def test_a_bug_in_an_event_callback_is_reported_not_swallowed() -> None:
    errors: list[BaseException] = []
    with open_live(FakeTransport(), mode=1) as live:
        live.on("error", errors.append)

        def broken(_: object) -> None:
            raise RuntimeError("callback bug")

        live.on("chat", broken)
        reply = live.say("Still works.")
    assert reply.complete
    assert any(isinstance(e, RuntimeError) for e in errors)
    assert live.recorder.filter(EventKind.ERROR)


def test_user_speech_is_kept_apart_from_replies() -> None:
    fake = FakeTransport()
    seen: list[str] = []
    with open_live(fake, mode=1) as live:
        live.on("user_speech", lambda entry: seen.append(entry.text))
        io_loop().call_soon(fake.inject, bot_chunk("u1", 0, "I am the user", True, sender="user"))
        reply = live.say("Reply check.")
        roles = [(e.role, e.text) for e in live.transcript]
    assert ("user", "I am the user") in roles and reply.text == "Reply check."
    assert seen and seen[-1] == "I am the user"


def test_stream_yields_pieces_as_they_arrive() -> None:
    with open_live(FakeTransport(), mode=2) as live:
        pieces = list(live.stream("Streaming text here", intent="say"))
    assert "".join(pieces) == "Streaming text here" and len(pieces) == 2


def test_async_use_from_another_running_loop() -> None:
    async def main() -> str:
        stream = await AvatarStream.open(FakeTransport(), mode=1)
        async with stream:
            reply = await stream.say("From asyncio.")
            return reply.text

    assert asyncio.run(main()) == "From asyncio."


def test_blocking_call_from_the_io_thread_is_refused_not_deadlocked() -> None:
    with open_live(FakeTransport(), mode=1) as live:
        outcome: list[BaseException] = []

        def on_chat(_: object) -> None:
            try:
                live.say("nested")
            except BaseException as exc:
                outcome.append(exc)

        live.on("reply", on_chat)
        live.say("Trigger.")
    assert outcome and "I/O thread" in str(outcome[0])


def test_llm_sentences_are_streamed_to_the_avatar_and_timed() -> None:
    def llm(text: str) -> list[str]:
        return ["First sen", "tence. Second ", "one! Third"]

    fake = FakeTransport()
    with open_live(fake, mode=1) as live:
        live.use_llm(llm)
        turn = live.chat("Hi LLM")
    spoken = [m["pld"]["text"] for m in fake.sent_messages() if m["type"] == "chat"]
    assert spoken == ["First sentence. ", "Second one! ", "Third"]
    assert turn.answer == "First sentence. Second one! Third" and len(turn.replies) == 3
    assert turn.llm_first_token_ms is not None and turn.llm_total_ms >= turn.llm_first_token_ms
    assert turn.to_first_audio_ms is not None and turn.to_first_audio_ms > 0
    assert live.recorder.filter(EventKind.LLM_FIRST_TOKEN)


def test_a_blocking_say_that_can_go_at_once_is_sent_without_a_task_and_gets_its_reply() -> None:
    fake = FakeTransport(push=True, sends_now=True)
    with open_live(fake, mode=1) as live:
        reply = live.say("Sent at once.")
        live.use_llm(lambda text: ["One. ", "Two."])
        turn = live.chat("go")  # (its sentences come from a coroutine: the general path)
    assert fake.sent_now == 1 and [m["type"] for m in fake.sent_messages()] == ["chat"] * 3
    assert reply.text == "Sent at once." and reply.complete and reply.timings.ttfr_ms is not None
    assert [r.text for r in turn.replies] == ["One. ", "Two."]
    sent = live.recorder.filter(EventKind.CHAT_SENT, mid=reply.mid)
    assert len(sent) == 1 and sent[0].data["fin"] is True and sent[0].data["intent"] == "say"
    assert live.recorder.filter(EventKind.REPLY_DONE, mid=reply.mid)[0].data["complete"] is True
    assert [e.role for e in live.transcript][:2] == ["you", "avatar"]


def test_a_blocking_say_goes_through_the_queue_when_it_cannot_go_at_once() -> None:
    declining = FakeTransport(sends_now=False)
    with open_live(declining, mode=1) as live:
        assert live.say("Declined, sent anyway.").text == "Declined, sent anyway."
    paced = FakeTransport(budget=LIVEKIT, sends_now=True)
    with open_live(paced, mode=1) as live:
        first = live.say("x" * 800)  # one chunk, and the bucket is full: at once
        second = live.say("y" * 800)  # its pacing delay runs first: through the send path that waits
    assert declining.sent_now == 0 and paced.sent_now == 1
    assert first.text == "x" * 800 and second.text == "y" * 800
    assert second.timings.chunks == 1


def test_a_blocked_caller_that_stops_waiting_ends_its_message_marked_as_given_up() -> None:
    fake = FakeTransport(responder=lambda m, s: [], sends_now=True)  # an avatar that never answers
    with open_live(fake, mode=1) as live:
        stream = live.avatar_stream

        def start(handoff: Handoff) -> Callable[[], object]:
            return stream.start_blocking("Nobody answers.", "say", 30.0, "audio_end", handoff)

        with pytest.raises(TimeoutError, match="say"):
            io_loop().call(start, 0.1, "say")
        wait_until(lambda: bool(live.recorder.filter(EventKind.REPLY_DONE)), 5, "the message to end")
        done = live.recorder.filter(EventKind.REPLY_DONE)[0]
        assert done.data["complete"] is False and "cancelled" in done.data["reason"]
        assert fake.sent_now == 1 and stream._conv.pending_messages == 0


def test_frames_not_understood_are_recorded_as_ignored_and_the_stream_goes_on() -> None:
    fake = FakeTransport()
    errors: list[BaseException] = []
    with open_live(fake, mode=1) as live:
        live.on("error", errors.append)
        for frame in (
            b"not json",
            {"v": 3, "type": "chat", "mid": "x", "pld": {"text": "future"}},
            {"v": 2, "type": "telemetry", "pld": {}},
            {"v": 2, "type": "command", "mid": "e1", "pld": {"cmd": "set-params", "data": {}}},
        ):
            io_loop().call_soon(fake.inject, frame)
        assert live.say("Still fine.").text == "Still fine."
    ignored = [e.data["reason"] for e in live.recorder.filter(EventKind.SERVER_EVENT) if e.data["event"] == "ignored"]
    assert any("version 3" in r for r in ignored) and any("telemetry" in r for r in ignored)
    assert any("echo" in r for r in ignored)
    assert [type(e).__name__ for e in errors] == ["ProtocolError"]  # the undecodable bytes, reported, not fatal


def test_a_bug_while_handling_a_pushed_frame_fails_the_stream_and_is_not_swallowed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from akool_lab.errors import StreamError

    live = open_live(FakeTransport(push=True), mode=1)
    assert live.say("Pushed frames work.").text == "Pushed frames work."

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("a bug in the conversation")

    monkeypatch.setattr(live.avatar_stream._conv, "feed", broken)
    with pytest.raises(StreamError, match="a bug in the conversation"):
        live.say("This reply cannot be handled.", timeout=5)
    live.wait_closed(5)
    assert [(e.data["where"], e.data["type"]) for e in live.recorder.filter(EventKind.ERROR)] == [
        ("receive", "RuntimeError")
    ]
    live.close()


def test_async_generator_llm_is_supported() -> None:
    async def llm(text: str) -> Any:
        for piece in ["Async ", "answer."]:
            await asyncio.sleep(0.001)
            yield piece

    with open_live(FakeTransport(), mode=1) as live:
        live.use_llm(llm)
        turn = live.chat("go")
    assert turn.answer == "Async answer."


def test_interrupt_while_a_long_message_is_still_being_sent_stops_its_remaining_chunks() -> None:
    fake = FakeTransport()
    text = "A long message that needs many chunks to travel. " * 80  # ~4 KB: 5 chunks, ~0.7 s of Agora pacing
    with open_live(fake, mode=1) as live:
        future = io_loop().submit(live.avatar_stream.say(text))
        wait_until(lambda: any(b"chat" in b for b in fake.sent), 5, "the first chunk sent")
        live.interrupt()
        reply = future.result(5)
    chat_chunks = [b for b in fake.sent if b"chat" in b]
    assert reply.interrupted and not reply.complete and reply.reason == "interrupted before it was fully sent"
    assert 1 <= len(chat_chunks) < 5  # the remaining chunks were never sent


def test_a_message_timeout_keeps_the_partial_reply() -> None:
    def avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "command":
            return [(0.001, ack(message["mid"], "set-params"))]
        return [(0.002, bot_chunk("r", 0, "Half of it", False))]  # and then nothing: no fin, no audio

    fake = FakeTransport(avatar)
    with open_live(fake, mode=1) as live:
        with pytest.raises(ReplyIncompleteError) as info:
            live.say("Tell me everything.", timeout=0.4)  # shorter than the 5 s fin timeout
        partial = info.value.reply
        assert partial is not None and partial.text == "Half of it"  # type: ignore[attr-defined]
        assert "timeout" in (partial.reason or "")  # type: ignore[attr-defined]
        fake.responder = lambda message, state: []  # nothing at all arrives for the next one
        with pytest.raises(TimeoutError):
            live.say("Anyone there?", timeout=0.3)


def test_a_caller_that_gives_up_leaves_one_marked_record_and_no_unretrieved_error() -> None:
    def slow_avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        return [(0.2 + delay, frame) for delay, frame in echo_avatar(message, state)]

    with open_live(FakeTransport(slow_avatar), mode=1) as live:
        future = io_loop().submit(live.avatar_stream.say("I will be abandoned."))
        wait_until(lambda: live.recorder.filter(EventKind.CHAT_SENT), 5, "the message sent")
        future.cancel()  # the caller gives up while the reply is on its way
        assert live.say("Next one.").text == "Next one."  # the stream carries on
        done = live.recorder.filter(EventKind.REPLY_DONE)
    assert len(done) == 2
    assert done[0].data["complete"] is False and "cancelled" in done[0].data["reason"]


def test_a_message_the_avatar_rejects_fails_at_once_and_does_not_take_the_next_reply() -> None:
    def picky_avatar(message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
        if message["type"] == "chat" and "forbidden" in message["pld"]["text"]:
            error: dict[str, Any] = {
                "v": 2,
                "type": "event",
                "pld": {"event": "error", "code": 1003, "msg": "over budget"},
            }
            error["pld"]["ref_mid"] = message["mid"]
            return [(0.002, error)]
        return echo_avatar(message, state)

    with open_live(FakeTransport(picky_avatar), mode=1) as live:
        started = time.monotonic()
        with pytest.raises(InvalidParameterError, match="over budget"):
            live.say("This is forbidden.")
        assert time.monotonic() - started < 2
        assert live.say("This is fine.").text == "This is fine."
