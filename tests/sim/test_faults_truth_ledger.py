"""Faults (seeded and reproducible), the ground truth, the credit ledger, and instance independence."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from typing import Any

import pytest
import websockets

from akool_lab.sim import FaultPlan, FaultSpecError, SimServer, start
from tests.sim.helpers import (
    AVATAR,
    HTTP,
    KEY,
    V3,
    V4,
    call,
    chat,
    command,
    create_session,
    is_ack,
    is_event,
    receive_for,
    receive_until,
    wait_status,
    wait_until,
)

CREATE = f"{V4}/liveAvatar/session/create"


def run(coro: Any) -> Any:
    """Run one async scenario."""
    return asyncio.run(coro)


# --- the fault grammar ------------------------------------------------------------------------------------


def test_a_fault_spec_round_trips_through_its_string() -> None:
    spec = "session.create=1215:0.5,session.detail=slow:30,*=5xx:0.1,chunk.drop=0.2,ack.delay=50:0.5,stream.disconnect_after=9"
    plan = FaultPlan.parse(spec)
    assert plan.chunk_drop == 0.2 and plan.ack_delay_ms == 50 and plan.disconnect_after == 9
    assert [f.code for f in plan.endpoints["session.create"]] == [1215, 500]
    assert FaultPlan.parse(plan.spec).to_json() == plan.to_json()


@pytest.mark.parametrize("spec", ["chunk.drop=2", "nonsense=1", "session.create=1215", "session.create=99:0.5", "x"])
def test_a_bad_fault_spec_is_refused_naming_the_rule(spec: str) -> None:
    with pytest.raises(FaultSpecError, match=spec.split("=")[0]):
        FaultPlan.parse(spec)


def test_post_faults_with_a_bad_spec_is_1003(sim: SimServer) -> None:
    assert call(sim, "POST", "/_sim/faults", json={"spec": "chunk.drop=7"})["code"] == 1003


# --- REST faults ------------------------------------------------------------------------------------------


def test_an_endpoint_error_fault_answers_with_its_code(sim: SimServer) -> None:
    sim.set_faults("session.create=1215:1")
    assert call(sim, "POST", CREATE, json={"avatar_id": AVATAR})["code"] == 1215
    assert call(sim, "GET", f"{V3}/language/list")["code"] == 1000


def test_an_http_5xx_fault_answers_with_that_http_status(sim: SimServer) -> None:
    sim.set_faults({"language.list": "503:1"})
    response = HTTP.get(sim.base_url + f"{V3}/language/list", headers={"x-api-key": KEY})
    assert response.status_code == 503


def test_a_slow_fault_delays_the_answer(sim: SimServer) -> None:
    sim.set_faults("language.list=slow:150")
    started = time.perf_counter()
    call(sim, "GET", f"{V3}/language/list")
    assert time.perf_counter() - started >= 0.15


def test_error_faults_are_reproducible_for_the_same_seed() -> None:
    def outcomes() -> list[int]:
        with start(api_key=KEY, seed=3, faults="session.create=1005:0.5") as server:
            return [call(server, "POST", CREATE, json={"avatar_id": AVATAR})["code"] for _ in range(12)]

    first = outcomes()
    assert first == outcomes() and {1000, 1005} == set(first)


def test_a_failing_session_goes_to_status_4_and_its_stream_says_so() -> None:
    # The realistic profile queues a session for 1 to 3 s: the client is connected before the session fails
    # (in the fast profile's 15 to 25 ms a loaded machine may connect too late, and be refused with 4004).
    with start(api_key=KEY, seed=7, profile="realistic", faults="session.fail=1") as sim:
        _a_failing_session_goes_to_status_4_and_its_stream_says_so(sim)


def _a_failing_session_goes_to_status_4_and_its_stream_says_so(sim: SimServer) -> None:
    data = create_session(sim)

    async def scenario() -> list[dict[str, Any]]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            return await receive_until(ws, is_event("session_ended"))

    seen = run(scenario())
    assert seen[0]["pld"] == {"event": "error", "code": 1218, "msg": seen[0]["pld"]["msg"]}
    assert seen[-1]["pld"]["reason"] == "failed"
    wait_status(sim, data["_id"], 4)
    assert call(sim, "GET", f"{V4}/liveAvatar/session/list", params={"status": 4})["data"]["count"] == 1


# --- stream faults ----------------------------------------------------------------------------------------

TEXT = "One. Two. Three. Four. Five. Six. Seven. Eight. Nine. Ten."


async def _reply(url: str, frames: list[str], done: Any) -> list[dict[str, Any]]:
    async with websockets.connect(url) as ws:
        for frame in frames:
            await ws.send(frame)
        return await receive_until(ws, done)


def _bot_idx(seen: list[dict[str, Any]]) -> list[int]:
    return [m["idx"] for m in seen if m["type"] == "chat"]


@pytest.mark.parametrize(
    ("spec", "check"),
    [
        ("chunk.drop=1", lambda idx, seen: idx == []),
        ("chunk.dup=1", lambda idx, seen: idx == sorted(list(range(10)) * 2)),
        ("chunk.reorder=1", lambda idx, seen: sorted(idx) == list(range(10)) and idx != list(range(10))),
        ("chunk.nofin=1", lambda idx, seen: not any(m.get("fin") for m in seen if m["type"] == "chat")),
    ],
)
def test_chunk_faults_change_what_is_sent_and_the_truth_says_so(sim: SimServer, spec: str, check: Any) -> None:
    sim.set_faults(spec)
    data = create_session(sim, mode_type=1)
    seen = run(_reply(data["credentials"]["ws_url"], [chat("m", TEXT)], is_event("audio_end")))
    assert check(_bot_idx(seen), seen), _bot_idx(seen)
    assert sim.truth(data["_id"])["messages"]["m"]["faults"]


def test_a_dropped_ack_never_comes_and_a_delayed_one_comes_late(sim: SimServer) -> None:
    sim.set_faults("ack.drop=1")
    url = create_session(sim)["credentials"]["ws_url"]

    async def dropped() -> list[dict[str, Any]]:
        async with websockets.connect(url) as ws:
            await ws.send(command("c", "set-params", {"lang": "en"}))
            return await receive_for(ws, 0.3)

    assert not [m for m in run(dropped()) if m["type"] == "command"]
    sim.set_faults("ack.delay=200")
    data = create_session(sim)

    async def delayed() -> float:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            started = time.perf_counter()
            await ws.send(command("c", "set-params", {"lang": "en"}))
            await receive_until(ws, is_ack("c"))
            return time.perf_counter() - started

    assert run(delayed()) >= 0.2
    assert sim.truth(data["_id"])["commands"]["c"]["ack_ms"] >= 200


def test_the_server_disconnects_after_n_messages(sim: SimServer) -> None:
    sim.set_faults("stream.disconnect_after=3")
    data = create_session(sim, mode_type=1)

    async def scenario() -> tuple[int, int | None]:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await ws.send(chat("m", TEXT))
            seen = await receive_for(ws, 1.0)
            return len(seen), ws.close_code

    assert run(scenario()) == (3, 1011)
    assert {"event": "disconnect", "after_messages": 3} in sim.truth(data["_id"])["events"]


def test_a_disconnect_rate_of_one_drops_the_stream_after_the_first_message(sim: SimServer) -> None:
    sim.set_faults("stream.disconnect=1")
    data = create_session(sim, mode_type=1)

    async def scenario() -> int:
        async with websockets.connect(data["credentials"]["ws_url"]) as ws:
            await ws.send(chat("m", TEXT))
            return len(await receive_for(ws, 1.0))

    assert run(scenario()) == 1


# --- truth ------------------------------------------------------------------------------------------------


def test_the_truth_maps_each_question_to_its_reply_with_planned_and_actual_delays(sim: SimServer) -> None:
    data = create_session(sim, mode_type=1)
    wait_status(sim, data["_id"], 2)
    run(_reply(data["credentials"]["ws_url"], [chat("q1", TEXT)], is_event("audio_end")))
    truth = sim.truth(data["_id"])
    entry = truth["messages"]["q1"]
    assert entry["reply_mid"] == "r-1" and entry["chunks"] == entry["chunks_sent"] == 10
    for name in ("ttfr_ms", "ttfa_ms", "reply_ms", "speak_ms"):
        assert entry[name] == pytest.approx(entry[f"planned_{name}"], abs=5), name
    assert entry["ttfr_ms"] <= entry["reply_ms"] and entry["faults"] == [] and entry["interrupted"] is False
    assert truth["sched_error_ms"]["n"] == 12 and truth["sched_error_ms"]["p99"] < 20
    assert call(sim, "GET", "/_sim/truth", params={"session_id": "0" * 24})["code"] == 1216


def test_the_same_seed_gives_the_same_planned_delays() -> None:
    def planned() -> list[float]:
        with start(api_key=KEY, seed=11, profile="realistic") as server:
            data = create_session(server, mode_type=1)
            url = data["credentials"]["ws_url"]
            # realistic queueing is 1-3 s, so read the plan, not the outcome
            run(_reply(url, [command("c", "set-params", {"mode": 1})], is_ack("c")))
            truth = server.truth(data["_id"])
            return [truth["planned_queue_ms"], truth["commands"]["c"]["planned_ack_ms"]]

    assert planned() == planned()


# --- ledger -----------------------------------------------------------------------------------------------


def test_the_ledger_charges_the_duration_at_create_and_refunds_unused_time_at_close(sim: SimServer) -> None:
    session_id = create_session(sim, duration=600)["_id"]
    entry = sim.ledger()["sessions"][0]
    assert entry == {
        "session_id": session_id,
        "duration_s": 600,
        "state": "open",
        "charged": 10.0,
        "refunded": 0.0,
        "net": 10.0,
    }
    call(sim, "POST", f"{V4}/liveAvatar/session/close", json={"id": session_id})
    ledger = sim.ledger()
    closed = ledger["sessions"][0]
    assert closed["state"] == "closed" and 9.99 < closed["refunded"] <= 10.0
    assert ledger["totals"]["charged"] == 10.0 and ledger["totals"]["net"] == pytest.approx(10.0 - closed["refunded"])


def test_an_expired_session_is_not_refunded_and_a_failed_one_fully(sim: SimServer) -> None:
    create_session(sim, duration=1)
    sim.set_faults("session.fail=1")
    create_session(sim, duration=60)
    wait_until(lambda: sim.ledger()["sessions"][0]["state"] != "open", timeout=3, what="the 1 s session's expiry")
    expired, failed = sim.ledger()["sessions"]
    assert expired["state"] == "expired" and expired["refunded"] == 0.0
    assert failed["state"] == "failed" and failed["net"] == 0.0


# --- independence -----------------------------------------------------------------------------------------


def test_two_instances_share_nothing() -> None:
    with start(api_key=KEY) as one, start(api_key="another-key-123") as two:
        session_id = create_session(one)["_id"]
        one.set_faults("chunk.drop=1")
        assert two.ledger()["totals"]["sessions"] == 0
        assert (
            call(two, "GET", f"{V4}/liveAvatar/session/detail", key="another-key-123", params={"id": session_id})[
                "code"
            ]
            == 1216
        )
        assert call(two, "GET", "/_sim/faults", key="another-key-123")["data"]["spec"] == ""
        assert call(two, "GET", f"{V3}/language/list")["code"] == 1101


def test_the_handle_never_shows_its_key_and_stop_is_idempotent() -> None:
    server = start(api_key="sim-secret-key-abcdef")
    assert "sim-secret-key" not in repr(server) and server.base_url.startswith("http://127.0.0.1:")
    server.stop()
    server.stop()


def test_without_a_key_the_env_key_is_used_else_one_is_generated(monkeypatch: pytest.MonkeyPatch) -> None:
    with start() as generated:
        assert len(generated.api_key) > 20
    monkeypatch.setenv("AKOOL_SIM_API_KEY", "from-the-environment")
    with start() as from_env:
        assert from_env.api_key == "from-the-environment"


# --- the command line -------------------------------------------------------------------------------------


def test_the_cli_prints_its_url_first_serves_and_exits_0_on_sigterm() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "akool_lab.cli", "sim", "--port", "0", "--profile", "fast"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        assert first.startswith("akool-lab sim listening on http://127.0.0.1:")
        second = process.stdout.readline()
        assert "generated" in second
        key = second.rsplit(" ", 1)[-1].strip()
        response = HTTP.get(first.rsplit(" ", 1)[-1] + f"{V3}/language/list", headers={"x-api-key": key})
        assert response.json()["code"] == 1000
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=10) == 0
    finally:
        process.kill()
