"""The simulator's REST face: AKool's paths, envelopes and codes, driven with raw httpx."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import httpx
import pytest

from akool_lab.sim import SimServer, app
from tests.sim.helpers import AVATAR, KEY, V3, V4, call, create_session, wait_status, wait_until

CREATE = f"{V4}/liveAvatar/session/create"
DETAIL = f"{V4}/liveAvatar/session/detail"
CLOSE = f"{V4}/liveAvatar/session/close"
LIST = f"{V4}/liveAvatar/session/list"


# --- auth -------------------------------------------------------------------------------------------------


def test_missing_auth_is_1102_with_http_200(shared_sim: SimServer) -> None:
    assert call(shared_sim, "GET", f"{V3}/language/list", key=None)["code"] == 1102


def test_wrong_api_key_is_1101(shared_sim: SimServer) -> None:
    assert call(shared_sim, "GET", f"{V3}/language/list", key="nope")["code"] == 1101


def test_get_token_gives_a_top_level_bearer_token_when_client_secret_is_the_key(shared_sim: SimServer) -> None:
    answer = call(shared_sim, "POST", f"{V3}/getToken", key=None, json={"clientId": "me", "clientSecret": KEY})
    assert answer["code"] == 1000 and "data" not in answer
    bearer = {"Authorization": f"Bearer {answer['token']}"}
    assert call(shared_sim, "GET", f"{V3}/language/list", key=None, headers=bearer)["code"] == 1000


def test_get_token_rejects_a_wrong_secret_with_1101(shared_sim: SimServer) -> None:
    answer = call(shared_sim, "POST", f"{V3}/getToken", key=None, json={"clientId": "me", "clientSecret": "x"})
    assert answer["code"] == 1101


def test_get_token_without_secret_is_1003_naming_it(shared_sim: SimServer) -> None:
    answer = call(shared_sim, "POST", f"{V3}/getToken", key=None, json={"clientId": "me"})
    assert answer["code"] == 1003 and "clientSecret" in answer["msg"]


def test_authorization_header_wins_over_x_api_key(shared_sim: SimServer) -> None:
    headers = {"Authorization": "Bearer not-a-token"}
    assert call(shared_sim, "GET", f"{V3}/language/list", headers=headers)["code"] == 1101


def test_admin_routes_need_the_key(shared_sim: SimServer) -> None:
    assert call(shared_sim, "GET", "/_sim/ledger", key=None)["code"] == 1102
    assert call(shared_sim, "GET", "/_sim/ledger", key="wrong")["code"] == 1101


# --- sessions ---------------------------------------------------------------------------------------------


def test_create_returns_a_24_hex_id_queueing_status_and_agora_credentials_by_default(shared_sim: SimServer) -> None:
    answer = call(shared_sim, "POST", CREATE, json={"avatar_id": AVATAR})
    data = answer["data"]
    assert answer["code"] == 1000 and re.fullmatch(r"[0-9a-f]{24}", data["_id"])
    assert data["status"] == 1 and data["stream_type"] == "agora"
    creds = data["credentials"]
    assert {"agora_uid", "agora_app_id", "agora_channel", "agora_token", "ws_url", "ws_token"} <= set(creds)
    assert creds["ws_url"] == f"ws://127.0.0.1:{shared_sim.port}/_sim/stream/{data['_id']}?token={creds['ws_token']}"


@pytest.mark.parametrize(
    ("stream_type", "fields"),
    [
        ("livekit", {"livekit_url", "livekit_token", "livekit_room_name", "livekit_client_identity"}),
        ("trtc", {"trtc_sdk_app_id", "trtc_sdk_room_id", "trtc_sdk_user_id", "trtc_sdk_user_sig"}),
        ("websocket", {"ws_url", "ws_token"}),
    ],
)
def test_credentials_have_the_shape_of_the_stream_type(
    shared_sim: SimServer, stream_type: str, fields: set[str]
) -> None:
    data = create_session(shared_sim, stream_type=stream_type)
    assert data["stream_type"] == stream_type
    assert fields | {"ws_url", "ws_token"} == set(data["credentials"]) or fields <= set(data["credentials"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "avatar_id"),
        ({"avatar_id": "no_such_avatar"}, "avatar_id"),
        ({"avatar_id": 12}, "avatar_id"),
        ({"avatar_id": AVATAR, "duration": 0}, "duration"),
        ({"avatar_id": AVATAR, "duration": 3601}, "duration"),
        ({"avatar_id": AVATAR, "duration": "60"}, "duration"),
        ({"avatar_id": AVATAR, "mode_type": 3}, "mode_type"),
        ({"avatar_id": AVATAR, "stream_type": "flv"}, "stream_type"),
        ({"avatar_id": AVATAR, "voice_params": {"speed": 1.5}}, "voice_params.speed"),
        ({"avatar_id": AVATAR, "voice_params": {"stt_type": "whisper"}}, "voice_params.stt_type"),
        ({"avatar_id": AVATAR, "voice_params": {"turn_detection": {"threshold": 2}}}, "threshold"),
        ({"avatar_id": AVATAR, "voice_params": "fast"}, "voice_params"),
        ({"avatar_id": AVATAR, "scene_mode": "fast_dialogue", "voice_params": {"speed": 1}}, "voice_params.speed"),
        ({"avatar_id": AVATAR, "voice_id": "sim_voice_fr_male_1"}, "voice_id"),
        ({"avatar_id": AVATAR, "knowledge_id": "0" * 24}, "knowledge_id"),
        ({"avatar_id": AVATAR, "scene_mode": "boardroom"}, "scene_mode"),
    ],
)
def test_create_validation_errors_are_1003_naming_the_field(
    shared_sim: SimServer, body: dict[str, Any], field: str
) -> None:
    answer = call(shared_sim, "POST", CREATE, json=body)
    assert answer["code"] == 1003 and field in answer["msg"], answer


def test_create_with_a_body_that_is_not_an_object_is_1003(shared_sim: SimServer) -> None:
    assert call(shared_sim, "POST", CREATE, content=b"[1]")["code"] == 1003
    assert call(shared_sim, "POST", CREATE, content=b"{oops")["code"] == 1003


def test_create_with_an_unavailable_avatar_is_1215(shared_sim: SimServer) -> None:
    assert call(shared_sim, "POST", CREATE, json={"avatar_id": "dvp_Sofia_busy_1080P"})["code"] == 1215


def test_status_goes_1_then_2_then_3_when_the_duration_runs_out(sim: SimServer) -> None:
    data = create_session(sim, duration=1)
    assert data["status"] == 1
    wait_status(sim, data["_id"], 2, timeout=0.9)
    wait_status(sim, data["_id"], 3, timeout=2)
    assert call(sim, "POST", CLOSE, json={"id": data["_id"]})["code"] == 1219


def test_close_ends_the_session_and_a_second_close_is_1219(sim: SimServer) -> None:
    session_id = create_session(sim)["_id"]
    answer = call(sim, "POST", CLOSE, json={"id": session_id})
    assert answer["code"] == 1000 and answer["data"]["status"] == "closed"
    assert call(sim, "GET", DETAIL, params={"id": session_id})["data"]["status"] == 3
    assert call(sim, "POST", CLOSE, json={"id": session_id})["code"] == 1219


def test_close_accepts_session_id_as_the_key(sim: SimServer) -> None:
    session_id = create_session(sim)["_id"]
    assert call(sim, "POST", CLOSE, json={"session_id": session_id})["code"] == 1000


def test_close_and_detail_of_an_unknown_id_are_1216(shared_sim: SimServer) -> None:
    assert call(shared_sim, "POST", CLOSE, json={"id": "f" * 24})["code"] == 1216
    assert call(shared_sim, "GET", DETAIL, params={"id": "f" * 24})["code"] == 1216


def test_close_and_detail_without_id_are_1003(shared_sim: SimServer) -> None:
    assert call(shared_sim, "POST", CLOSE, json={})["code"] == 1003
    assert call(shared_sim, "GET", DETAIL)["code"] == 1003


def test_list_pages_and_filters_by_status(sim: SimServer) -> None:
    ids = [create_session(sim)["_id"] for _ in range(3)]
    call(sim, "POST", CLOSE, json={"id": ids[0]})
    everything = call(sim, "GET", LIST)["data"]
    assert everything["count"] == 3 and [s["_id"] for s in everything["result"]] == ids[::-1]
    page = call(sim, "GET", LIST, params={"page": 2, "size": 2})["data"]
    assert page["count"] == 3 and [s["_id"] for s in page["result"]] == [ids[0]]
    closed = call(sim, "GET", LIST, params={"status": 3})["data"]
    assert [s["_id"] for s in closed["result"]] == [ids[0]]


@pytest.mark.parametrize(
    ("params", "field"), [({"page": 0}, "page"), ({"size": "x"}, "size"), ({"status": 5}, "status")]
)
def test_list_rejects_bad_query_with_1003(shared_sim: SimServer, params: dict[str, Any], field: str) -> None:
    answer = call(shared_sim, "GET", LIST, params=params)
    assert answer["code"] == 1003 and field in answer["msg"]


# --- avatars ----------------------------------------------------------------------------------------------


def test_avatar_list_has_tristan_and_names_and_availability(shared_sim: SimServer) -> None:
    data = call(shared_sim, "GET", f"{V4}/liveAvatar/avatar/list")["data"]
    by_id = {a["avatar_id"]: a for a in data["result"]}
    assert by_id[AVATAR]["available"] is True and by_id[AVATAR]["name"] == "Tristan"
    assert data["count"] == len(data["result"]) >= 4
    assert call(shared_sim, "GET", f"{V4}/liveAvatar/avatar/list", params={"size": 101})["code"] == 1003


def test_avatar_detail_and_its_errors(shared_sim: SimServer) -> None:
    detail = call(shared_sim, "GET", f"{V4}/liveAvatar/avatar/detail", params={"avatar_id": AVATAR})["data"]
    assert detail["avatar_id"] == AVATAR and detail["platform"] == "open"
    assert call(shared_sim, "GET", f"{V4}/liveAvatar/avatar/detail")["code"] == 1003
    assert call(shared_sim, "GET", f"{V4}/liveAvatar/avatar/detail", params={"avatar_id": "zz"})["code"] == 1003


def _upload(sim: SimServer, avatar_id: str, url: str = "https://example.com/me.mp4") -> dict[str, Any]:
    body = {"url": url, "avatar_id": avatar_id, "name": "Me", "type": 2, "url_from": 1}
    return call(sim, "POST", f"{V3}/avatar/create", json=body)


def _avatar_status(sim: SimServer, avatar_id: str) -> int:
    detail = call(sim, "GET", f"{V4}/liveAvatar/avatar/detail", params={"avatar_id": avatar_id})
    return int(detail["data"]["status"])


def test_an_upload_goes_1_2_3_and_only_then_can_start_a_session(sim: SimServer) -> None:
    assert _upload(sim, "mine1")["data"]["status"] == 1
    assert call(sim, "POST", CREATE, json={"avatar_id": "mine1"})["code"] == 1003
    seen = set()
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and 3 not in seen:
        seen.add(_avatar_status(sim, "mine1"))
        time.sleep(0.005)
    assert seen == {1, 2, 3}
    assert call(sim, "POST", CREATE, json={"avatar_id": "mine1"})["code"] == 1000


def test_an_upload_whose_url_path_contains_fail_ends_in_status_4(sim: SimServer) -> None:
    _upload(sim, "broken1", "https://example.com/fail/me.mp4")
    wait_until(lambda: _avatar_status(sim, "broken1") in (3, 4), timeout=2, what="the upload's processing")
    assert _avatar_status(sim, "broken1") == 4
    assert call(sim, "POST", CREATE, json={"avatar_id": "broken1"})["code"] == 1003


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"avatar_id": "has space"}, "avatar_id"),
        ({"type": 1}, "type"),
        ({"url_from": 3}, "url_from"),
        ({"url": None}, "url"),
        ({"name": None}, "name"),
    ],
)
def test_upload_validation_is_1003_naming_the_field(shared_sim: SimServer, change: dict[str, Any], field: str) -> None:
    body = {"url": "https://example.com/v.mp4", "avatar_id": "okid", "name": "n", "type": 2, "url_from": 1, **change}
    answer = call(shared_sim, "POST", f"{V3}/avatar/create", json={k: v for k, v in body.items() if v is not None})
    assert answer["code"] == 1003 and field in answer["msg"]


def test_uploading_an_existing_avatar_id_is_1222(sim: SimServer) -> None:
    _upload(sim, "twice")
    assert _upload(sim, "twice")["code"] == 1222


# --- voices, languages ------------------------------------------------------------------------------------


def test_voice_list_filters_by_type_support_stream_and_name(shared_sim: SimServer) -> None:
    path = f"{V4}/voice/list"
    stock = call(shared_sim, "GET", path, params={"type": 2, "size": 100})["data"]
    assert stock["count"] == len(stock["result"]) and stock["page"] == 1 and stock["size"] == 100
    assert any(not v["support_stream"] for v in stock["result"])
    streaming = call(shared_sim, "GET", path, params={"type": 2, "support_stream": 1, "size": 100})["data"]
    assert streaming["count"] < stock["count"] and all(v["support_stream"] for v in streaming["result"])
    named = call(shared_sim, "GET", path, params={"type": 2, "name": "ava"})["data"]["result"]
    assert [v["name"] for v in named] == ["Ava"]
    cloned = call(shared_sim, "GET", path, params={"type": 1})["data"]["result"]
    assert cloned and all("clone" in v["name"] for v in cloned)
    paged = call(shared_sim, "GET", path, params={"type": 2, "size": 2, "page": 2})["data"]
    assert len(paged["result"]) == 2 and paged["page"] == 2


def test_voice_list_needs_a_type_of_1_or_2(shared_sim: SimServer) -> None:
    assert call(shared_sim, "GET", f"{V4}/voice/list")["code"] == 1003
    assert "type" in call(shared_sim, "GET", f"{V4}/voice/list", params={"type": 3})["msg"]


def test_language_list_has_locale_codes_names_and_flags(shared_sim: SimServer) -> None:
    langs = call(shared_sim, "GET", f"{V3}/language/list")["data"]["lang_list"]
    assert {"en-US", "af-ZA"} <= {lang["lang_code"] for lang in langs}
    assert all(set(lang) == {"lang_code", "lang_name", "url"} for lang in langs)


# --- knowledge base ---------------------------------------------------------------------------------------


def test_knowledge_base_create_list_detail_update_delete(sim: SimServer) -> None:
    base = f"{V4}/knowledge"
    record = call(sim, "POST", f"{base}/create", json={"name": "kb", "prompt": "You sell bikes."})["data"]
    assert re.fullmatch(r"[0-9a-f]{24}", record["_id"]) and record["prompt"] == "You sell bikes."
    listed = call(sim, "GET", f"{base}/list")["data"]
    assert listed["count"] == 1 and listed["knowledge_list"][0]["_id"] == record["_id"]
    updated = call(sim, "POST", f"{base}/update", json={"id": record["_id"], "prologue": "Hi!"})["data"]
    assert updated["prologue"] == "Hi!" and updated["name"] == "kb"
    assert call(sim, "GET", f"{base}/detail", params={"id": record["_id"]})["data"]["prologue"] == "Hi!"
    assert call(sim, "DELETE", f"{base}/delete", json={"id": record["_id"]})["code"] == 1000
    assert call(sim, "GET", f"{base}/detail", params={"id": record["_id"]})["code"] == 1232


def test_knowledge_base_errors(sim: SimServer) -> None:
    base = f"{V4}/knowledge"
    call(sim, "POST", f"{base}/create", json={"name": "same"})
    assert call(sim, "POST", f"{base}/create", json={"name": "same"})["code"] == 1233
    assert call(sim, "POST", f"{base}/create", json={"name": "x" * 101})["code"] == 1003
    assert call(sim, "POST", f"{base}/create", json={"urls": "http://a"})["code"] == 1003
    assert call(sim, "POST", f"{base}/update", json={"id": "0" * 24})["code"] == 1232
    assert call(sim, "DELETE", f"{base}/delete", json={"id": "0" * 24})["code"] == 1232
    assert call(sim, "GET", f"{base}/detail")["code"] == 1003


# --- the ASGI app, with no port --------------------------------------------------------------------------


def test_the_asgi_app_serves_rest_and_derives_ws_url_from_the_host_header() -> None:
    async def scenario() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app(api_key=KEY))
        async with httpx.AsyncClient(transport=transport, base_url="http://sim.local:8123") as client:
            response = await client.post(CREATE, json={"avatar_id": AVATAR}, headers={"x-api-key": KEY})
            body: dict[str, Any] = response.json()
            return body

    data = asyncio.run(scenario())["data"]
    assert data["credentials"]["ws_url"].startswith(f"ws://sim.local:8123/_sim/stream/{data['_id']}?token=")


def test_the_asgi_app_uses_base_url_for_ws_url_when_given() -> None:
    async def scenario() -> dict[str, Any]:
        transport = httpx.ASGITransport(app=app(api_key=KEY, base_url="https://public.example:443"))
        async with httpx.AsyncClient(transport=transport, base_url="http://x") as client:
            response = await client.post(CREATE, json={"avatar_id": AVATAR}, headers={"x-api-key": KEY})
            body: dict[str, Any] = response.json()
            return body

    assert asyncio.run(scenario())["data"]["credentials"]["ws_url"].startswith("wss://public.example:443/_sim/")
