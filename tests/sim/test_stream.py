"""The data channel: v2 JSON frames over the session's WebSocket, driven with raw websockets frames."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
import websockets

from akool_lab.sim import SimServer
from tests.sim.helpers import (
    V4,
    bot_text,
    call,
    chat,
    command,
    create_session,
    is_ack,
    is_event,
    receive_for,
    receive_until,
    wait_status,
    wait_until_connected,
)


def run(coro: Any) -> Any:
    """Run one async scenario."""
    return asyncio.run(coro)


async def _close_code(url: str) -> int | None:
    async with websockets.connect(url) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 2)
        return ws.close_code


# --- who may connect --------------------------------------------------------------------------------------


def test_a_wrong_token_is_refused_with_4001(sim: SimServer) -> None:
    url = create_session(sim)["credentials"]["ws_url"]
    assert run(_close_code(url.split("?")[0] + "?token=wrong")) == 4001


def test_an_unknown_session_is_refused_with_4004(sim: SimServer) -> None:
    assert run(_close_code(f"ws://127.0.0.1:{sim.port}/_sim/stream/{'0' * 24}?token=x")) == 4004


def test_an_ended_session_is_refused_with_4004(sim: SimServer) -> None:
    data = create_session(sim)
    call(sim, "POST", f"{V4}/liveAvatar/session/close", json={"id": data["_id"]})
    assert run(_close_code(data["credentials"]["ws_url"])) == 4004


def test_a_second_client_is_refused_with_4003(sim: SimServer) -> None:
    url = create_session(sim)["credentials"]["ws_url"]

    async def scenario() -> int | None:
        async with websockets.connect(url):
            return await _close_code(url)

    assert run(scenario()) == 4003


# --- replies ----------------------------------------------------------------------------------------------


async def _exchange(url: str, frames: list[str], done: Any, timeout: float = 3.0) -> list[dict[str, Any]]:
    async with websockets.connect(url) as ws:
        for frame in frames:
            await ws.send(frame)
        return await receive_until(ws, done, timeout)


def test_mode_1_speaks_the_text_verbatim_in_tts_chunks_then_audio_start_and_end(sim: SimServer) -> None:
    text = "Hello there. This is a longer sentence that a TTS engine would stream in pieces, word by word! Bye."
    url = create_session(sim, mode_type=1)["credentials"]["ws_url"]
    seen = run(_exchange(url, [chat("m1", text)], is_event("audio_end")))
    chunks = [m for m in seen if m["type"] == "chat"]
    assert len(chunks) >= 3 and {m["mid"] for m in chunks} == {"r-1"}
    assert [m["idx"] for m in chunks] == list(range(len(chunks))) and [m["fin"] for m in chunks][-1] is True
    assert bot_text(seen, "r-1") == text
    events = [m["pld"]["event"] for m in seen if m["type"] == "event"]
    assert events == ["audio_start", "audio_end"]


def test_chunks_of_one_question_are_assembled_by_mid_in_idx_order(sim: SimServer) -> None:
    url = create_session(sim, mode_type=1)["credentials"]["ws_url"]
    frames = [
        chat("q", "world.", idx=1, fin=True),
        chat("other", "x", idx=0, fin=False),
        chat("q", "Hello ", idx=0, fin=False),
    ]
    seen = run(_exchange(url, frames, is_event("audio_end")))
    assert bot_text(seen, "r-1") == "Hello world."
    assert sim.truth(url.split("/")[-1].split("?")[0])["messages"]["q"]["reply_mid"] == "r-1"


def test_mode_2_answers_deterministically_from_the_question(sim: SimServer) -> None:
    first = create_session(sim, mode_type=2)["credentials"]["ws_url"]
    second = create_session(sim, mode_type=2)["credentials"]["ws_url"]
    a = bot_text(run(_exchange(first, [chat("m", "What about bicycles?")], is_event("audio_end"))), "r-1")
    b = bot_text(run(_exchange(second, [chat("m", "What about bicycles?")], is_event("audio_end"))), "r-1")
    c = bot_text(run(_exchange(second, [chat("n", "And trains?")], is_event("audio_end"))), "r-2")
    assert a == b and "bicycles" in a and a != c


def test_mode_2_uses_the_knowledge_base_prompt(sim: SimServer) -> None:
    kb = call(sim, "POST", f"{V4}/knowledge/create", json={"name": "k", "prompt": "You are Captain Flint"})["data"]
    with_kb = create_session(sim, knowledge_id=kb["_id"])["credentials"]["ws_url"]
    without = create_session(sim)["credentials"]["ws_url"]
    a = bot_text(run(_exchange(with_kb, [chat("m", "Who are you?")], is_event("audio_end"))), "r-1")
    b = bot_text(run(_exchange(without, [chat("m", "Who are you?")], is_event("audio_end"))), "r-1")
    assert "Captain Flint" in a and "Captain Flint" not in b


def test_replies_are_spoken_one_after_another_with_their_own_mids(sim: SimServer) -> None:
    url = create_session(sim, mode_type=1)["credentials"]["ws_url"]
    seen = run(
        _exchange(url, [chat("a", "One."), chat("b", "Two."), chat("c", "Three.")], is_event("audio_end", "r-3"))
    )
    order = [(m["mid"], m["pld"].get("event", "chat")) for m in seen]
    assert [mid for mid, kind in order if kind == "audio_end"] == ["r-1", "r-2", "r-3"]
    # r-2 starts only after r-1 has finished speaking
    assert order.index(("r-1", "audio_end")) < order.index(("r-2", "chat"))
    assert [bot_text(seen, f"r-{i}") for i in (1, 2, 3)] == ["One.", "Two.", "Three."]


def test_a_question_sent_while_queueing_is_answered_once_the_session_is_live(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)
    seen = run(_exchange(data["credentials"]["ws_url"], [chat("early", "Hi.")], is_event("audio_end")))
    assert bot_text(seen, "r-1") == "Hi."
    truth = sim.truth(data["_id"])
    assert truth["messages"]["early"]["arrived_ms"] + truth["messages"]["early"]["ttfr_ms"] >= truth["planned_queue_ms"]


# --- commands ---------------------------------------------------------------------------------------------


def test_set_params_is_acked_with_the_request_mid_and_applies_to_the_next_reply(sim: SimServer) -> None:
    data = create_session(sim, mode_type=2)
    params = {
        "mode": 1,
        "lang": "es-ES",
        "vparams": {"vid": "sim_voice_es_female_1", "speed": 1.2},
        "bgurl": "https://b",
    }
    frames = [command("c1", "set-params", params), chat("m", "Repeat exactly this.")]
    seen = run(_exchange(data["credentials"]["ws_url"], frames, is_event("audio_end")))
    ack = next(m for m in seen if is_ack("c1")(m))
    assert ack == {"v": 2, "type": "command", "mid": "c1", "pld": {"cmd": "set-params", "code": 1000, "msg": "OK"}}
    assert bot_text(seen, "r-1") == "Repeat exactly this."
    settings = sim.truth(data["_id"])["messages"]["m"]["settings"]
    assert settings == {
        "mode": 1,
        "lang": "es-ES",
        "voice_id": "sim_voice_es_female_1",
        "voice_url": None,
        "background_url": "https://b",
        "speed": 1.2,
    }


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"volume": 3}, "volume"),
        ({"mode": 3}, "mode"),
        ({"mode": "1"}, "mode"),
        ({"lang": 5}, "lang"),
        ({"vparams": {"speed": 1.5}}, "vparams.speed"),
        ({"vparams": {"speed": 0.5}}, "vparams.speed"),
        ({"vparams": {"pitch": 1}}, "vparams.pitch"),
        ({"vparams": "fast"}, "vparams"),
    ],
)
def test_invalid_set_params_is_acked_with_1003_naming_the_key(sim: SimServer, data: dict[str, Any], key: str) -> None:
    url = create_session(sim)["credentials"]["ws_url"]
    ack = run(_exchange(url, [command("bad", "set-params", data)], is_ack("bad")))[-1]
    assert ack["pld"]["code"] == 1003 and ack["pld"]["msg"].startswith(key + ":"), ack


def test_interrupt_stops_the_reply_sends_audio_end_at_once_and_acks(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)
    wait_status(sim, data["_id"], 2)
    call(sim, "POST", "/_sim/faults", json={"spec": ""})
    long_text = "word " * 400  # 800 ms of speech in the fast profile

    async def scenario() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            for i in range(3):  # three frames, paced under the byte budget (the client's pacing, not a wait)
                await ws.send(chat("long", long_text[i * 600 : (i + 1) * 600], idx=i, fin=i == 2))
                await asyncio.sleep(0.2)
            before = await receive_until(ws, is_event("audio_start"))
            await ws.send(command("stop", "interrupt"))
            after = await receive_until(ws, is_ack("stop"))
            return before, after + await receive_for(ws, 0.3)

    _, after = run(scenario())
    end = next(i for i, m in enumerate(after) if is_event("audio_end", "r-1")(m))
    assert after[end]["pld"].get("interrupted") is True
    assert any(is_ack("stop")(m) and m["pld"]["code"] == 1000 for m in after)
    assert not [m for m in after[end:] if m["type"] == "chat"], "no chunk of the reply after its audio_end"
    truth = sim.truth(data["_id"])["messages"]["long"]
    assert truth["interrupted"] is True and truth["speak_ms"] < truth["planned_speak_ms"] / 2


def test_set_action_is_acked_and_unknown_actions_get_1003(sim: SimServer) -> None:
    url = create_session(sim)["credentials"]["ws_url"]
    frames = [command("a1", "set-action", {"action": "hand_wave"}), command("a2", "set-action", {"action": "moonwalk"})]
    seen = run(_exchange(url, frames, is_ack("a2")))
    codes = {m["mid"]: m["pld"]["code"] for m in seen if m["type"] == "command"}
    assert codes == {"a1": 1000, "a2": 1003}


def test_an_unknown_command_is_acked_with_1003(sim: SimServer) -> None:
    url = create_session(sim)["credentials"]["ws_url"]
    assert run(_exchange(url, [command("x", "dance")], is_ack("x")))[-1]["pld"]["code"] == 1003


# --- the provider's budget --------------------------------------------------------------------------------


def test_a_frame_over_the_byte_limit_gets_an_error_event_and_is_dropped(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)
    seen = run(_exchange(data["credentials"]["ws_url"], [chat("big", "x" * 1100)], is_event("error")))
    assert seen[-1]["pld"]["code"] == 1003 and "1024" in seen[-1]["pld"]["msg"]
    assert "big" not in sim.truth(data["_id"])["messages"]


def test_a_burst_over_the_byte_rate_gets_an_error_event(sim: SimServer) -> None:
    url = create_session(sim, mode_type=1)["credentials"]["ws_url"]
    frames = [chat(f"b{i}", "y" * 900) for i in range(6)]  # 5.7 KB at once, the bucket holds 4 KB
    seen = run(_exchange(url, frames, is_event("error")))
    assert "rate" in seen[-1]["pld"]["msg"]


def test_a_client_pacing_at_the_documented_rate_never_trips_the_limit(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            for i in range(8):
                frame = chat("paced", "z" * 860, idx=i, fin=i == 7)
                await ws.send(frame)
                await asyncio.sleep(len(frame) / 5760)
            return await receive_until(ws, is_event("audio_end"))

    seen = run(scenario())
    assert not [m for m in seen if m["type"] == "event" and m["pld"]["event"] == "error"]
    assert bot_text(seen, "r-1") == "z" * 860 * 8


def test_garbage_frames_get_an_error_event(sim: SimServer) -> None:
    url = create_session(sim)["credentials"]["ws_url"]
    frames = ["not json", json.dumps({"v": 1, "type": "chat"}), json.dumps({"v": 2, "type": "chat", "pld": {}})]
    seen = run(_exchange(url, frames, lambda m: m["pld"].get("msg", "").startswith("mid")))
    assert [m["pld"]["event"] for m in seen] == ["error", "error", "error"]
    assert [m["pld"]["code"] for m in seen] == [1003, 1003, 1003]


# --- user speech, end of session --------------------------------------------------------------------------


def test_user_speech_emits_user_chunks_and_an_answer_in_mode_2(sim: SimServer) -> None:
    data = create_session(sim, mode_type=2)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await asyncio.to_thread(wait_until_connected, sim, data["_id"])
            await asyncio.to_thread(sim.user_speech, data["_id"], "Tell me about rockets.")
            return await receive_until(ws, is_event("audio_end"))

    seen = run(scenario())
    user = [m for m in seen if m["type"] == "chat" and m["pld"]["from"] == "user"]
    assert "".join(m["pld"]["text"] for m in user) == "Tell me about rockets." and user[-1]["fin"] is True
    assert "rockets" in bot_text(seen, "r-1")
    assert sim.truth(data["_id"])["messages"][user[0]["mid"]]["source"] == "user_speech"


def test_user_speech_needs_a_connected_client(sim: SimServer) -> None:
    session_id = create_session(sim)["_id"]
    answer = call(sim, "POST", f"/_sim/sessions/{session_id}/user-speech", json={"text": "hi"})
    assert answer["code"] == 1003
    assert call(sim, "POST", f"/_sim/sessions/{'0' * 24}/user-speech", json={"text": "hi"})["code"] == 1216


def test_when_the_duration_runs_out_the_server_says_session_ended_and_closes(sim: SimServer) -> None:
    url = create_session(sim, duration=1)["credentials"]["ws_url"]

    async def scenario() -> tuple[list[dict[str, Any]], int | None]:
        async with websockets.connect(url) as ws:
            seen = await receive_until(ws, is_event("session_ended"), timeout=3)
            with pytest.raises(websockets.ConnectionClosed):
                await asyncio.wait_for(ws.recv(), 2)
            return seen, ws.close_code

    seen, code = run(scenario())
    assert seen[-1]["pld"]["reason"] == "expired" and code == 1000


def test_closing_the_session_over_rest_ends_its_stream(sim: SimServer) -> None:
    data = create_session(sim)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await asyncio.to_thread(wait_until_connected, sim, data["_id"])
            await asyncio.to_thread(call, sim, "POST", f"{V4}/liveAvatar/session/close", json={"id": data["_id"]})
            return await receive_until(ws, is_event("session_ended"))

    assert run(scenario())[-1]["pld"]["reason"] == "closed"
