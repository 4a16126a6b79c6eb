"""Dialects of the simulator, checked on the wire: what each one puts in the frames, with raw websockets frames."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
import websockets

from akool_lab import sim
from akool_lab.sim import DIALECTS, Dialect, DialectError, SimServer
from tests.sim.helpers import (
    HTTP,
    KEY,
    V4,
    Message,
    call,
    chat,
    command,
    create_session,
    is_event,
    receive_until,
    wait_status,
    wait_until,
)


def run(coro: Any) -> Any:
    """Run one async scenario."""
    return asyncio.run(coro)


@pytest.fixture
def speaking(request: pytest.FixtureRequest) -> Iterator[SimServer]:
    """A simulator speaking the dialect given by ``@pytest.mark.parametrize("speaking", [...], indirect=True)``."""
    with sim.start(api_key=KEY, seed=7, profile="fast", dialect=request.param) as server:
        yield server


def bot_chunks(messages: list[Message], mid: str | None = None) -> list[Message]:
    """The bot chat frames (of reply ``mid`` when given), in arrival order."""
    return [
        m
        for m in messages
        if m["type"] == "chat" and m["pld"].get("from") == "bot" and (mid is None or m["mid"] == mid)
    ]


def arrival_text(messages: list[Message], mid: str) -> str:
    """The text of reply ``mid`` in arrival order (what the official clients show)."""
    return "".join(m["pld"]["text"] for m in bot_chunks(messages, mid))


def is_ack_frame(m: Message) -> bool:
    """An acknowledgement in any dialect: an inbound command-like frame carrying ``pld.code``."""
    return m["type"] in ("command", "cmd", "ack") and "code" in m["pld"]


async def _exchange(url: str, frames: list[str], done: Any, timeout: float = 3.0) -> list[Message]:
    async with websockets.connect(url) as ws:
        for frame in frames:
            await ws.send(frame)
        return await receive_until(ws, done, timeout)


def nth_ack(n: int) -> Any:
    """A predicate for :func:`receive_until`: true at the ``n``-th ack received."""
    count = 0

    def done(m: Message) -> bool:
        nonlocal count
        count += is_ack_frame(m)
        return count == n

    return done


#: Runs ``akool-lab`` with the arguments after ``-c CLI`` (the console script may not be on PATH in a venv).
CLI = "import sys; from akool_lab.cli import main; sys.exit(main(sys.argv[1:]))"
SPEECH = "First sentence here. A second one follows it. And a third, to end the speech."


# --- choosing a dialect -----------------------------------------------------------------------------------


def test_the_dialects_are_public_with_documented_first() -> None:
    assert DIALECTS[0] == "documented"
    assert set(DIALECTS) == {
        "documented",
        "no-idx",
        "no-fin",
        "no-echo",
        "ack-no-mid",
        "ack-cmd",
        "ack-type-ack",
        "greeting",
        "trtc-demo-names",
    }


def test_a_combined_spec_is_read_in_any_order_and_written_canonically() -> None:
    assert Dialect.parse(" ack-cmd , no-idx ").spec == "no-idx,ack-cmd"
    assert Dialect.parse(["greeting", "no-fin"]).spec == "no-fin,greeting"
    assert Dialect.parse(None).spec == Dialect.parse("").spec == Dialect.parse("documented").spec == "documented"


def test_an_unknown_dialect_is_refused_naming_every_allowed_value() -> None:
    with pytest.raises(DialectError) as caught:
        sim.start(api_key=KEY, dialect="no-idx,no-idz")
    message = str(caught.value)
    assert "'no-idz'" in message and all(name in message for name in DIALECTS)


def test_a_dialect_built_directly_checks_its_variants() -> None:
    with pytest.raises(DialectError, match="'loud'"):
        Dialect(frozenset({"no-idx", "loud"}))


def test_variants_that_set_the_same_field_are_refused() -> None:
    with pytest.raises(DialectError, match="ack-cmd and ack-type-ack"):
        Dialect.parse("ack-cmd,ack-type-ack")
    with pytest.raises(DialectError, match="documented"):
        Dialect.parse("documented,no-idx")


def test_the_environment_chooses_the_dialect_when_start_is_not_told(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKOOL_SIM_DIALECT", "ack-cmd")
    with sim.start(api_key=KEY, profile="fast") as server:
        assert server.dialect() == "ack-cmd"
    with sim.start(api_key=KEY, profile="fast", dialect="no-idx") as server:
        assert server.dialect() == "no-idx"


def test_the_command_line_lists_the_dialects_in_its_help_and_refuses_an_unknown_one() -> None:
    shown = subprocess.run([sys.executable, "-c", CLI, "sim", "--help"], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and all(name in shown.stdout for name in DIALECTS)
    refused = subprocess.run(
        [sys.executable, "-c", CLI, "sim", "--dialect", "chatty", "--api-key", KEY],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.returncode == 2 and "--dialect" in refused.stderr and "no-echo" in refused.stderr


def test_the_command_line_serves_the_dialect_it_was_given_and_says_so() -> None:
    process = subprocess.Popen(
        [sys.executable, "-c", CLI, "sim", "--profile", "fast", "--api-key", KEY, "--dialect", "ack-cmd,no-idx"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip().rsplit(" ", 1)[-1]
        assert process.stdout.readline().startswith("dialect: no-idx,ack-cmd (profile fast")
        answer = HTTP.get(url + "/_sim/dialect", headers={"x-api-key": KEY}).json()
        assert answer["data"] == {"dialect": "no-idx,ack-cmd", "allowed": list(DIALECTS)}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()


def test_a_session_dialect_is_changed_through_the_control_route_and_others_keep_theirs(sim: SimServer) -> None:
    first, second = create_session(sim)["_id"], create_session(sim)["_id"]
    answer = call(sim, "POST", f"/_sim/sessions/{first}/dialect", json={"dialect": "ack-cmd,no-idx"})
    assert answer["code"] == 1000 and answer["data"]["dialect"] == "no-idx,ack-cmd"
    assert sim.dialect(first) == "no-idx,ack-cmd" and sim.dialect(second) == "documented"
    assert sim.truth(first)["dialect"] == "no-idx,ack-cmd"
    refused = call(sim, "POST", f"/_sim/sessions/{first}/dialect", json={"dialect": "loud"})
    assert refused["code"] == 1003 and "trtc-demo-names" in refused["msg"]
    assert call(sim, "POST", f"/_sim/sessions/{'0' * 24}/dialect", json={"dialect": "no-idx"})["code"] == 1216


def test_the_default_dialect_applies_to_sessions_created_after_it_changes(sim: SimServer) -> None:
    before = create_session(sim)["_id"]
    assert sim.set_dialect(["greeting"]) == "greeting"
    after = create_session(sim)["_id"]
    assert sim.dialect(before) == "documented" and sim.dialect(after) == "greeting"


def test_a_session_dialect_applies_to_the_next_reply_of_a_connected_stream(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)

    async def scenario() -> list[Message]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await ws.send(chat("a", "Before."))
            seen = await receive_until(ws, is_event("audio_end"))
            await asyncio.to_thread(sim.set_dialect, "no-idx", data["_id"])
            await ws.send(chat("b", "After."))
            return seen + await receive_until(ws, is_event("audio_end", "r-2"))

    seen = run(scenario())
    assert ["idx" in m for m in bot_chunks(seen)] == [True, False]


# --- what each dialect sends ------------------------------------------------------------------------------


@pytest.mark.parametrize("speaking", ["documented"], indirect=True)
def test_documented_chunks_carry_idx_and_fin_and_acks_echo_the_mid(speaking: SimServer) -> None:
    url = create_session(speaking, mode_type=1)["credentials"]["ws_url"]
    seen = run(_exchange(url, [command("c1", "set-params", {"lang": "en"}), chat("m", SPEECH)], is_event("audio_end")))
    chunks = bot_chunks(seen, "r-1")
    assert [m["idx"] for m in chunks] == list(range(len(chunks))) and len(chunks) == 3
    assert [m["fin"] for m in chunks] == [False, False, True]
    ack = next(m for m in seen if is_ack_frame(m))
    assert ack == {"v": 2, "type": "command", "mid": "c1", "pld": {"cmd": "set-params", "code": 1000, "msg": "OK"}}


@pytest.mark.parametrize("speaking", ["no-idx"], indirect=True)
def test_no_idx_chunks_have_no_idx_and_fin_only_on_the_last(speaking: SimServer) -> None:
    data = create_session(speaking, mode_type=1)
    url = data["credentials"]["ws_url"]
    seen = run(_exchange(url, [chat("m", SPEECH)], is_event("audio_end")))
    chunks = bot_chunks(seen, "r-1")
    assert len(chunks) == 3 and not any("idx" in m for m in chunks)
    assert [m["fin"] for m in chunks] == [False, False, True]
    assert arrival_text(seen, "r-1") == SPEECH


@pytest.mark.parametrize("speaking", ["no-idx"], indirect=True)
def test_no_idx_applies_to_the_users_transcript_too(speaking: SimServer) -> None:
    data = create_session(speaking, mode_type=2)
    wait_status(speaking, data["_id"], 2)

    async def scenario() -> list[Message]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await asyncio.to_thread(_user_speech_when_connected, speaking, data["_id"], "Tell me about rivers.")
            return await receive_until(ws, is_event("audio_end"))

    user = [m for m in run(scenario()) if m["type"] == "chat" and m["pld"]["from"] == "user"]
    assert user and not any("idx" in m for m in user) and user[-1]["fin"] is True


@pytest.mark.parametrize("speaking", ["no-fin"], indirect=True)
def test_no_fin_chunks_have_idx_but_never_fin_and_the_reply_ends_with_audio_end(speaking: SimServer) -> None:
    url = create_session(speaking, mode_type=1)["credentials"]["ws_url"]
    seen = run(_exchange(url, [chat("m", SPEECH)], is_event("audio_end")))
    chunks = bot_chunks(seen, "r-1")
    assert [m["idx"] for m in chunks] == [0, 1, 2] and not any("fin" in m or "fin" in m["pld"] for m in chunks)
    assert [m["pld"]["event"] for m in seen if m["type"] == "event"] == ["audio_start", "audio_end"]
    assert arrival_text(seen, "r-1") == SPEECH


@pytest.mark.parametrize("speaking", ["no-echo"], indirect=True)
def test_no_echo_speaks_in_mode_1_without_sending_text_back(speaking: SimServer) -> None:
    data = create_session(speaking, mode_type=1)
    seen = run(_exchange(data["credentials"]["ws_url"], [chat("m", SPEECH)], is_event("audio_end")))
    assert not bot_chunks(seen)
    assert [(m["mid"], m["pld"]["event"]) for m in seen if m["type"] == "event"] == [
        ("r-1", "audio_start"),
        ("r-1", "audio_end"),
    ]
    truth = speaking.truth(data["_id"])["messages"]["m"]
    assert truth["echo"] is False and truth["speak_ms"] > 0 and truth["text"] == SPEECH


@pytest.mark.parametrize("speaking", ["no-echo"], indirect=True)
def test_no_echo_still_sends_the_answer_text_in_mode_2(speaking: SimServer) -> None:
    url = create_session(speaking, mode_type=2)["credentials"]["ws_url"]
    seen = run(_exchange(url, [chat("q", "What is a lighthouse?")], is_event("audio_end")))
    assert "lighthouse" in arrival_text(seen, "r-1")


@pytest.mark.parametrize("speaking", ["ack-no-mid"], indirect=True)
def test_ack_no_mid_acks_alternately_without_a_mid_and_with_a_fresh_one(speaking: SimServer) -> None:
    url = create_session(speaking)["credentials"]["ws_url"]
    frames = [command("c1", "set-params", {"lang": "en"}), command("c2", "set-params", {"lang": "fr"})]
    seen = run(_exchange(url, frames, nth_ack(2)))
    acks = [m for m in seen if is_ack_frame(m)]
    assert [a["type"] for a in acks] == ["command", "command"]
    assert "mid" not in acks[0] and acks[1]["mid"] not in ("c1", "c2")
    assert all(a["pld"]["cmd"] == "set-params" and a["pld"]["code"] == 1000 for a in acks)


@pytest.mark.parametrize("speaking", ["ack-cmd"], indirect=True)
def test_ack_cmd_acks_have_type_cmd_and_the_mid(speaking: SimServer) -> None:
    url = create_session(speaking)["credentials"]["ws_url"]
    seen = run(_exchange(url, [command("c1", "interrupt")], is_ack_frame))
    assert seen[-1] == {"v": 2, "type": "cmd", "mid": "c1", "pld": {"cmd": "interrupt", "code": 1000, "msg": "OK"}}


@pytest.mark.parametrize("speaking", ["ack-type-ack"], indirect=True)
def test_ack_type_ack_acks_carry_the_mid_as_original_mid(speaking: SimServer) -> None:
    url = create_session(speaking)["credentials"]["ws_url"]
    seen = run(_exchange(url, [command("c1", "set-params", {"mode": 3})], is_ack_frame))
    ack = seen[-1]
    assert ack["type"] == "ack" and ack["mid"] != "c1"
    assert ack["pld"]["original_mid"] == "c1" and ack["pld"]["cmd"] == "set-params" and ack["pld"]["code"] == 1003


@pytest.mark.parametrize("speaking", ["ack-no-mid,ack-type-ack"], indirect=True)
def test_ack_type_ack_without_mid_has_no_original_mid(speaking: SimServer) -> None:
    url = create_session(speaking)["credentials"]["ws_url"]
    ack = run(_exchange(url, [command("c1", "interrupt")], is_ack_frame))[-1]
    assert ack["type"] == "ack" and "original_mid" not in ack["pld"] and ack["pld"]["code"] == 1000


@pytest.mark.parametrize("speaking", ["greeting"], indirect=True)
def test_greeting_comes_at_join_before_any_message_and_a_question_waits_for_it(speaking: SimServer) -> None:
    data = create_session(speaking, mode_type=1)
    seen = run(_exchange(data["credentials"]["ws_url"], [chat("m", "Right away.")], is_event("audio_end", "r-2")))
    first_end = next(i for i, m in enumerate(seen) if is_event("audio_end")(m))
    greeting = seen[: first_end + 1]
    assert {m["mid"] for m in greeting} == {"r-1"} and "welcome" in arrival_text(greeting, "r-1")
    assert [m["pld"]["event"] for m in greeting if m["type"] == "event"] == ["audio_start", "audio_end"]
    assert arrival_text(seen, "r-2") == "Right away."
    truth = speaking.truth(data["_id"])
    assert truth["messages"]["m"]["reply_mid"] == "r-2"
    greetings = [e for e in truth["events"] if e["event"] == "greeting"]
    assert [e["reply_mid"] for e in greetings] == ["r-1"]
    # Its first chunk goes out as the client joins, or (as here) as the session goes live: no answer to think of.
    assert greetings[0]["planned_ttfr_ms"] == greetings[0]["queued_ms"]


@pytest.mark.parametrize("speaking", ["greeting"], indirect=True)
def test_greeting_says_the_knowledge_base_prologue_once_per_session(speaking: SimServer) -> None:
    kb = call(speaking, "POST", f"{V4}/knowledge/create", json={"name": "k", "prologue": "Ahoy, I am Flint."})
    data = create_session(speaking, knowledge_id=kb["data"]["_id"])
    url = data["credentials"]["ws_url"]
    first = run(_exchange(url, [], is_event("audio_end")))
    assert arrival_text(first, "r-1") == "Ahoy, I am Flint."
    again = run(_exchange(url, [chat("m", "Hello?")], is_event("audio_end")))
    assert "Flint" not in "".join(m["pld"].get("text", "") for m in bot_chunks(again))


@pytest.mark.parametrize("speaking", ["trtc-demo-names"], indirect=True)
def test_trtc_demo_names_rename_the_trtc_credentials(speaking: SimServer) -> None:
    data = create_session(speaking, stream_type="trtc")
    names = {"trtc_app_id", "trtc_room_id", "trtc_user_id", "trtc_user_sig"}
    assert names <= set(data["credentials"]) and not any(k.startswith("trtc_sdk_") for k in data["credentials"])
    detail = call(speaking, "GET", f"{V4}/liveAvatar/session/detail", params={"id": data["_id"]})["data"]
    assert names <= set(detail["credentials"])


def test_trtc_names_follow_a_session_dialect_change(sim: SimServer) -> None:
    data = create_session(sim, stream_type="trtc")
    assert "trtc_sdk_app_id" in data["credentials"]
    sim.set_dialect("trtc-demo-names", data["_id"])
    detail = call(sim, "GET", f"{V4}/liveAvatar/session/detail", params={"id": data["_id"]})["data"]
    assert detail["credentials"]["trtc_app_id"] == data["credentials"]["trtc_sdk_app_id"]


@pytest.mark.parametrize("speaking", ["no-idx,no-fin,ack-cmd"], indirect=True)
def test_dialects_combine(speaking: SimServer) -> None:
    url = create_session(speaking, mode_type=1)["credentials"]["ws_url"]
    seen = run(_exchange(url, [command("c", "set-params", {"lang": "en"}), chat("m", SPEECH)], is_event("audio_end")))
    chunks = bot_chunks(seen, "r-1")
    assert chunks and not any("idx" in m or "fin" in m for m in chunks)
    assert next(m for m in seen if is_ack_frame(m))["type"] == "cmd"
    assert arrival_text(seen, "r-1") == SPEECH


def _user_speech_when_connected(server: SimServer, session_id: str, text: str) -> str:
    """The avatar hears ``text`` once the client's connection is registered (waits for it, 3 s at most)."""
    wait_until(lambda: server.truth(session_id)["connected"], timeout=3.0)
    return server.user_speech(session_id, text)
