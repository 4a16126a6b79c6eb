"""The live session against every dialect of the avatar that AKool's official clients accept (docs/conversation.md),
from the client side: a scripted avatar on an in-memory channel."""

from __future__ import annotations

from typing import Any

import pytest

from akool_lab.events import EventKind
from akool_lab.live import AvatarStream, LiveSession, io_loop

from .._wait import wait_until
from .fakes import DIALECTS, Dialect, DialectAvatar, FakeTransport


def open_dialect(
    dialect: Dialect, *, push: bool = False, **kwargs: Any
) -> tuple[LiveSession, DialectAvatar, FakeTransport]:
    avatar = DialectAvatar(dialect)
    avatar.mode = kwargs.get("mode") or 1  # the mode the session was created in
    # A pushing transport also sends at once (as the WebSocket one does): LiveSession's path without a task.
    fake = FakeTransport(avatar, on_join=avatar.greeting(), push=push, sends_now=push)
    stream = io_loop().run(AvatarStream.open(fake, session_id="s1", **kwargs), 5, "open")
    return LiveSession(stream), avatar, fake


@pytest.mark.parametrize("push", [False, True], ids=["frames", "pushed"])
@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_say_completes_with_the_spoken_text_in_every_dialect(dialect: Dialect, push: bool) -> None:
    live, _, fake = open_dialect(dialect, push=push)
    with live:
        if dialect.greeting:  # the greeting at join comes before any message
            wait_until(lambda: any(e.role == "avatar" and e.done for e in live.transcript), 5, "the greeting")
        first = live.say("The first sentence to speak.", timeout=5)
        second = live.say("And a second one, right after.", timeout=5)
    # The first say() sets the mode first (a task awaits the ack); the second goes out at once when it can.
    assert fake.sent_now == (1 if push else 0)
    for reply, text in ((first, "The first sentence to speak."), (second, "And a second one, right after.")):
        assert reply.complete and reply.text == text
        assert reply.echoed == dialect.echo
        assert reply.completed_on == ("fin" if dialect.fin and dialect.echo else "audio_end")
        assert reply.timings.speak_ms is not None
    if dialect.greeting:
        greeting = [e for e in live.transcript if e.role == "avatar" and e.text == dialect.greeting]
        assert greeting and greeting[0].done  # shown, and never taken for the reply to the first say()


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_ask_gets_the_answer_in_every_dialect(dialect: Dialect) -> None:
    live, _, _ = open_dialect(dialect, mode=2)
    with live:
        if dialect.greeting:
            wait_until(lambda: any(e.role == "avatar" and e.done for e in live.transcript), 5, "the greeting")
        reply = live.ask("What is it?", timeout=5)
    assert reply.complete and reply.text == "Answer: What is it?" and reply.echoed


@pytest.mark.parametrize(
    "dialect",
    [d for d in DIALECTS if d.name in ("documented", "ack-without-mid", "ack-type-cmd", "ack-type-ack")],
    ids=lambda d: d.name,
)
def test_set_params_is_acknowledged_in_every_ack_dialect(dialect: Dialect) -> None:
    live, avatar, _ = open_dialect(dialect)
    with live:
        ack = live.set_params(lang="fr", timeout=2)
        assert ack.ok and ack.acknowledged and ack.cmd == "set-params"
        # The first say() of a stream sets the mode first: that ack must match too, or every say() would fail.
        assert live.say("Bonjour.", timeout=5).text == "Bonjour."
    assert len(avatar.acked) == 2
    matched = [e.data.get("matched_by") for e in live.recorder.filter(EventKind.ACK)]
    assert matched == (["mid", "mid"] if dialect.ack_mid else ["cmd", "cmd"])


def test_a_greeting_at_join_is_unsolicited_and_the_first_reply_is_right() -> None:
    live, _, _ = open_dialect(Dialect("greeting", greeting="Hi! Ask me anything."))
    with live:
        reply = live.say("My first message.", timeout=5)  # sent while the greeting may still be arriving
    assert reply.text == "My first message."
    done = [e for e in live.recorder.filter(EventKind.REPLY_DONE)]
    assert {d.mid for d in done} == {reply.mid, done[0].data["reply_mid"]} and len(done) == 2


@pytest.mark.parametrize("mode", [1, 2])
def test_answers_to_user_speech_interleaved_with_messages_do_not_shift_replies(mode: int) -> None:
    live, avatar, fake = open_dialect(Dialect("user-speech", idx=False, fin=False, event_mid=False), mode=mode)
    heard: list[str] = []
    with live:
        live.on("user_speech", lambda entry: heard.append(entry.text) if entry.done else None)
        io_loop().call_soon(fake.play, avatar.hear("what time is it", mid="u-1"))
        wait_until(lambda: heard, 5, "the user's speech")
        first = live.say("One.", timeout=5) if mode == 1 else live.ask("One?", timeout=5)
        io_loop().call_soon(fake.play, avatar.hear("and the weather", mid="u-2"))
        # In mode 2 only the order tells the answers apart: the transcript must arrive before the next message
        # goes out (in mode 1 the echoes tell them apart whatever the order; see the state machine's tests).
        wait_until(lambda: len(heard) == 2, 5, "the second utterance")
        second = live.say("Two.", timeout=5) if mode == 1 else live.ask("Two?", timeout=5)
        wait_until(
            lambda: len([e for e in live.transcript if e.role == "avatar" and e.done]) == 4, 5, "every answer done"
        )
    assert (first.text, second.text) == (("One.", "Two.") if mode == 1 else ("Answer: One?", "Answer: Two?"))
    answers = [e.text for e in live.transcript if e.role == "avatar" and e.reply is None]
    expected = (
        ["what time is it", "and the weather"]
        if mode == 1
        else ["I heard: what time is it", "I heard: and the weather"]
    )
    assert answers == expected


def test_mode_1_without_echo_reports_the_text_was_not_echoed() -> None:
    live, _, _ = open_dialect(Dialect("mode1-no-echo", echo=False))
    with live:
        reply = live.say("Speak this.", timeout=5)
    assert reply.complete and not reply.echoed and reply.text == "Speak this." and reply.completed_on == "audio_end"
    done = live.recorder.filter(EventKind.REPLY_DONE)[-1]
    assert done.data["echoed"] is False and done.data["completed_on"] == "audio_end"


def test_an_interrupt_the_avatar_does_not_acknowledge_completes_and_the_session_goes_on() -> None:
    class Silent(DialectAvatar):
        def __call__(self, message: dict[str, Any], state: dict[str, Any]) -> list[tuple[float, dict[str, Any]]]:
            if message["type"] == "command" and message["pld"]["cmd"] == "interrupt":
                self._free_at, self.speak = 0.0, 0.01  # it stopped: the next reply is short and need not wait
                return [(0.005, {"v": 2, "type": "event", "pld": {"event": "audio_end"}})]  # stops, says nothing
            return super().__call__(message, state)

    avatar = Silent(Dialect(), speak=5.0)
    stream = io_loop().run(AvatarStream.open(FakeTransport(avatar), mode=1), 5, "open")
    with LiveSession(stream) as live:
        future = io_loop().submit(live.avatar_stream.say("A long speech that will be cut."))
        wait_until(lambda: live.recorder.filter(EventKind.AUDIO_START), 5, "the avatar speaking")
        ack = live.interrupt(timeout=5)
        reply = future.result(5)
        assert not ack.acknowledged and not ack.ok and ack.code is None
        assert reply.interrupted
        assert live.say("Still here.", timeout=5).text == "Still here."  # usable afterwards
    missing = live.recorder.filter(EventKind.ACK_MISSING)
    assert missing and missing[0].data["fatal"] is False


def test_strict_interrupt_raises_when_the_avatar_does_not_acknowledge() -> None:
    from akool_lab.errors import TimeoutError

    stream = io_loop().run(AvatarStream.open(FakeTransport(lambda m, s: []), mode=1, strict_interrupt=True), 5, "open")
    with LiveSession(stream) as live, pytest.raises(TimeoutError, match="ack for interrupt"):
        live.interrupt(timeout=0.2)
