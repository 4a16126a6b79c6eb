"""Fuzzing with Hypothesis (bounded example counts): the protocol decoder, the REST response parsers and the
simulator's request validation meet malformed JSON, wrong types, huge strings, deep nesting and invalid UTF-8.
Only the documented error types come out, nothing hangs, and the simulator keeps serving a healthy session.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akool_lab import protocol, sim
from akool_lab.api import AkoolClient
from akool_lab.errors import AkoolLabError, ProtocolError
from akool_lab.live import LiveSession
from tests.conftest import CANARY_KEY
from tests.reliability.conftest import AVATAR, live_session

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
FUZZ_NET = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
    | st.sampled_from(["", "x" * 5000, "\udcff".encode("utf-8", "surrogatepass").decode("utf-8", "replace")])
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5),
    max_leaves=20,
)
#: Keys the parsers and validators look for, so that the fuzzer reaches past the first check.
KNOWN_KEYS = st.sampled_from(
    ["code", "msg", "data", "_id", "id", "status", "credentials", "result", "count", "lang_list", "avatar_id",
     "duration", "mode_type", "stream_type", "voice_params", "speed", "voice_id", "scene_mode", "url", "name",
     "type", "url_from", "docs", "urls", "prompt", "spec", "text", "token", "clientSecret", "knowledge_list"]
)  # fmt: skip
shaped_objects = st.recursive(
    json_scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KNOWN_KEYS, children, max_size=6),
    max_leaves=25,
)


def deep(depth: int, kind: str = "array") -> bytes:
    return (b"[" * depth + b"]" * depth) if kind == "array" else (b'{"a":' * depth + b"1" + b"}" * depth)


# --- the protocol decoder ---------------------------------------------------------------------------------------


@FUZZ
@given(st.binary(max_size=2000) | st.text(max_size=2000))
def test_decoding_arbitrary_bytes_or_text_raises_only_protocol_error(data: bytes | str) -> None:
    with contextlib.suppress(ProtocolError):
        protocol.decode(data)


@FUZZ
@given(
    st.fixed_dictionaries(
        {"v": st.just(2), "type": st.sampled_from(["chat", "command", "cmd", "event"]) | shaped_objects},
        optional={key: shaped_objects for key in ("mid", "idx", "fin", "pld")},
    )
)
def test_decoding_v2_shaped_objects_with_wrong_types_returns_a_message_or_raises_protocol_error(
    obj: dict[str, Any],
) -> None:
    try:
        message = protocol.decode(json.dumps(obj).encode())
    except ProtocolError:
        return
    assert isinstance(
        message, protocol.ChatChunk | protocol.Command | protocol.Ack | protocol.ServerEvent | protocol.Unknown
    )


@pytest.mark.parametrize(
    "data",
    [
        deep(100_000),
        deep(100_000, "object"),
        b'{"v":2,"type":"chat","mid":"m","idx":' + b"9" * 50_000 + b',"pld":{"text":"x"}}',
        b'{"v":2,"type":"chat","mid":"m","pld":{"text":"' + b"\xff\xfe" * 1000 + b'"}}',
        b'{"v":2,"type":"chat","mid":"m","pld":{"text":"' + b"x" * 5_000_000 + b'"}}',
        b'{"v":2,"type":"chat","mid":"m","idx":NaN,"pld":{"text":"x"}}',
        b'{"v":2,"type":"command","mid":"m","pld":{"code":Infinity}}',
    ],
    ids=["deep-array", "deep-object", "huge-int", "invalid-utf8", "huge-string", "nan-idx", "infinite-code"],
)
def test_decoding_hostile_frames_raises_only_protocol_error_or_returns_a_message(data: bytes) -> None:
    started = time.monotonic()
    try:
        message = protocol.decode(data)
    except ProtocolError as exc:
        assert len(str(exc)) < 400  # the offending bytes are shown truncated
    else:
        assert message is not None
    assert time.monotonic() - started < 2


# --- the REST response parsers ----------------------------------------------------------------------------------


def _mock_client(status: int, body: bytes, seen: list[httpx.Request]) -> AkoolClient:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(status, content=body, headers={"content-type": "application/json"})

    return AkoolClient(
        CANARY_KEY, base_url="http://mock.invalid", transport=httpx.MockTransport(handler), max_retries=0
    )


CALLS = {
    "sessions.get": lambda c: c.sessions.get("abc"),
    "sessions.list": lambda c: c.sessions.list(),
    "sessions.close": lambda c: c.sessions.close("abc"),
    "sessions.create": lambda c: c.sessions.create(AVATAR),
    "avatars.list": lambda c: c.avatars.list(),
    "avatars.get": lambda c: c.avatars.get(AVATAR),
    "voices.list": lambda c: c.voices.list(),
    "languages.list": lambda c: c.languages.list(),
    "knowledge.list": lambda c: c.knowledge.list(),
}
statuses = st.sampled_from([200, 200, 200, 201, 204, 301, 400, 401, 404, 429, 500, 502, 503])


@FUZZ
@given(
    call=st.sampled_from(sorted(CALLS)),
    status=statuses,
    body=st.one_of(
        shaped_objects.map(lambda v: json.dumps(v).encode()),
        st.fixed_dictionaries({"code": st.just(1000)}, optional={"data": shaped_objects, "msg": json_values}).map(
            lambda v: json.dumps(v).encode()
        ),
        st.binary(max_size=200),
        st.sampled_from([b"", b"<html>502 Bad Gateway</html>", b"null", b"[]", b'{"code":true}', b'{"code":1e999}']),
    ),
)
def test_any_response_body_and_status_gives_a_result_or_a_documented_error(call: str, status: int, body: bytes) -> None:
    seen: list[httpx.Request] = []
    with _mock_client(status, body, seen) as client:
        try:
            CALLS[call](client)
        except AkoolLabError as exc:
            assert CANARY_KEY not in str(exc)
    assert len(seen) == 1


@pytest.mark.parametrize("kind", ["array", "object"])
def test_a_deeply_nested_response_body_raises_response_format_error(kind: str) -> None:
    from akool_lab.errors import ResponseFormatError

    with _mock_client(200, deep(100_000, kind), []) as client:
        try:
            with pytest.raises(ResponseFormatError):
                client.sessions.get("abc")
        except RecursionError:
            # re-raised without its 100 000-frame traceback, which pytest cannot render
            pytest.fail("RecursionError escaped sessions.get()", pytrace=False)


# --- the simulator's request validation --------------------------------------------------------------------------

POST_ROUTES = [
    "/api/open/v3/getToken",
    "/api/open/v4/liveAvatar/session/create",
    "/api/open/v4/liveAvatar/session/close",
    "/api/open/v3/avatar/create",
    "/api/open/v4/knowledge/create",
    "/api/open/v4/knowledge/update",
    "/_sim/faults",
    "/_sim/sessions/0123456789abcdef01234567/user-speech",
]


@pytest.fixture(scope="module")
def fuzz_server() -> Iterator[sim.SimServer]:
    """A simulator of its own: fuzzed bodies create sessions and change the fault plan."""
    with sim.start(profile="fast", seed=5, api_key=CANARY_KEY) as s:
        yield s


@pytest.fixture(scope="module")
def http(fuzz_server: sim.SimServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fuzz_server.base_url, headers={"x-api-key": CANARY_KEY}, timeout=10) as c:
        yield c


@pytest.fixture
def healthy(fuzz_server: sim.SimServer) -> Iterator[LiveSession]:
    """A live session of a well-behaved client on the fuzzed simulator; it must keep working throughout."""
    with AkoolClient(CANARY_KEY, base_url=fuzz_server.base_url) as client:
        live = client.connect(live_session(client, duration=600), mode=1)
        assert live.say("Before the fuzzing.", timeout=10).complete
        yield live
        fuzz_server.set_faults(None)
        assert live.say("After the fuzzing.", timeout=10).complete
        live.close()


def assert_business_answer(response: httpx.Response) -> None:
    assert response.status_code != 500, response.text
    body = response.json()
    assert isinstance(body.get("code"), int)


@FUZZ_NET
@given(route=st.sampled_from(POST_ROUTES), body=shaped_objects)
def test_fuzzed_json_bodies_get_business_answers_never_http_500(
    http: httpx.Client, healthy: LiveSession, route: str, body: object
) -> None:
    if route == "/_sim/faults" and isinstance(body, dict):
        body = {k: v for k, v in body.items() if k != "spec"}  # keep the plan empty: the healthy session runs on
    assert_business_answer(http.post(route, json=body))


@pytest.mark.parametrize("route", POST_ROUTES)
@pytest.mark.parametrize("body", [b"\xff\xfe{", b"{", b"", b"[1, 2]", b'"text"', b"null"])
def test_bodies_that_are_not_a_json_object_get_an_error_code(http: httpx.Client, route: str, body: bytes) -> None:
    response = http.post(route, content=body, headers={"content-type": "application/json"})
    assert_business_answer(response)
    assert response.json()["code"] != 1000


@pytest.mark.parametrize("route", POST_ROUTES)
def test_a_megabyte_string_in_every_field_gets_a_business_answer(http: httpx.Client, route: str) -> None:
    huge = "x" * 1_000_000
    keys = ["avatar_id", "id", "name", "prompt", "url", "text", "clientSecret", "voice_id", "language"]
    response = http.post(route, json=dict.fromkeys(keys, huge))
    assert_business_answer(response)


@pytest.mark.parametrize("route", POST_ROUTES)
def test_a_deeply_nested_body_gets_a_1003_answer_not_http_500(http: httpx.Client, route: str) -> None:
    response = http.post(
        route, content=deep(100_000), headers={"content-type": "application/json", "connection": "close"}
    )
    assert_business_answer(response)
    # The user-speech route looks its (unknown) session up before it reads the body: 1216 is as right there.
    assert response.json()["code"] in ({1003, 1216} if "user-speech" in route else {1003})


def test_an_unhashable_fast_dialogue_voice_id_gets_a_1003_answer(http: httpx.Client) -> None:
    body = {"avatar_id": AVATAR, "scene_mode": "fast_dialogue", "voice_params": {"voice_id": ["alloy"]}}
    response = http.post("/api/open/v4/liveAvatar/session/create", json=body, headers={"connection": "close"})
    assert_business_answer(response)
    assert response.json()["code"] == 1003


# --- garbage on the simulator's WebSocket ------------------------------------------------------------------------


def _ws_url(fuzz_server: sim.SimServer, http: httpx.Client) -> str:
    body = {"avatar_id": AVATAR, "stream_type": "websocket", "mode_type": 1, "duration": 60}
    data = http.post("/api/open/v4/liveAvatar/session/create", json=body).json()["data"]
    deadline = time.monotonic() + 5
    while http.get("/api/open/v4/liveAvatar/session/detail", params={"id": data["_id"]}).json()["data"]["status"] != 2:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    return str(data["credentials"]["ws_url"])


async def _still_answers(ws: websockets.ClientConnection) -> bool:
    """A ping gets its pong (retried while the garbage has used up the rate budget), within 3 s."""
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        await ws.send(json.dumps({"v": 2, "type": "ping", "mid": "alive?", "pld": {}}))
        try:
            while True:
                frame = json.loads(await asyncio.wait_for(ws.recv(), 0.3))
                if frame.get("type") == "pong" and frame.get("mid") == "alive?":
                    return True
        except asyncio.TimeoutError:
            continue
    return False


async def _send_garbage(url: str, frames: list[str | bytes]) -> bool:
    async with websockets.connect(url, max_size=2**22) as ws:
        for frame in frames:
            await ws.send(frame)
        alive = await _still_answers(ws)
        return alive


ws_frames = st.one_of(
    st.binary(max_size=120),
    st.text(max_size=120),
    st.dictionaries(st.sampled_from(["v", "type", "mid", "idx", "fin", "pld"]), shaped_objects, max_size=6).map(
        lambda o: json.dumps({"v": 2, **o})
    ),
    st.fixed_dictionaries(
        {"v": st.just(2), "type": st.sampled_from(["command", "cmd"]), "mid": json_values},
        optional={"pld": st.fixed_dictionaries({"cmd": st.sampled_from(["set-params", "interrupt", "x"])},
                                               optional={"data": shaped_objects, "params": shaped_objects})},
    ).map(json.dumps),
)  # fmt: skip


@FUZZ_NET
@given(frames=st.lists(ws_frames, min_size=1, max_size=5))
def test_garbage_websocket_frames_get_error_events_and_the_connection_keeps_serving(
    fuzz_server: sim.SimServer, http: httpx.Client, healthy: LiveSession, frames: list[str | bytes]
) -> None:
    alive = asyncio.run(_send_garbage(_ws_url(fuzz_server, http), frames))
    assert alive


@pytest.mark.parametrize("data", [{"action": ["nod"]}, {"expression": {"a": 1}}])
def test_an_unhashable_set_action_value_gets_a_1003_ack_and_the_connection_keeps_serving(
    fuzz_server: sim.SimServer, http: httpx.Client, data: dict[str, Any]
) -> None:
    frame = json.dumps({"v": 2, "type": "command", "mid": "act", "pld": {"cmd": "set-action", "data": data}})

    async def scenario() -> tuple[dict[str, Any] | None, bool]:
        async with websockets.connect(_ws_url(fuzz_server, http)) as ws:
            await ws.send(frame)
            try:
                ack = json.loads(await asyncio.wait_for(ws.recv(), 2))
            except (asyncio.TimeoutError, websockets.ConnectionClosed):
                return None, False
            return ack, await _still_answers(ws)

    ack, alive = asyncio.run(scenario())
    assert ack is not None and ack["pld"]["code"] == 1003 and alive
