"""``client.with_raw_response``: status, headers, timing and the parsed result of a call's last exchange, with the
credentials redacted, one raw response per call (no shared "last response"), and the User-Agent every request
sends."""

from __future__ import annotations

import asyncio
import random

import httpx
import pytest

from akool_lab import __version__, errors
from akool_lab.api import USER_AGENT, AkoolClient, AsyncAkoolClient, RawResponse, Session
from tests.conftest import CANARY_KEY

from .conftest import Harness, fail, ok, session_json

DETAIL = "/api/open/v4/liveAvatar/session/detail"
LIST = "/api/open/v4/liveAvatar/session/list"
TOKEN = "/api/open/v3/getToken"


def test_a_raw_call_gives_status_headers_timing_and_the_parsed_result(harness: Harness) -> None:
    harness.server.on(
        "GET",
        DETAIL,
        httpx.Response(
            200, json=ok(session_json("s1")), headers={"x-request-id": "req-42", "set-cookie": "sid=abcdef123"}
        ),
    )
    raw = harness.run(harness.client().with_raw_response.sessions.get("s1"))
    assert isinstance(raw, RawResponse)
    assert isinstance(raw.parsed, Session) and raw.parsed.id == "s1"
    assert (raw.status_code, raw.method, raw.http_version) == (200, "GET", "HTTP/1.1")
    assert raw.url.endswith(f"{DETAIL}?id=s1")
    assert raw.headers["x-request-id"] == "req-42"
    assert raw.headers["set-cookie"] == "…f123"  # a cookie is a credential too
    assert raw.elapsed_ms >= 0


def test_raw_request_headers_show_the_api_key_redacted(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok(session_json()))
    raw = harness.run(harness.client(CANARY_KEY).with_raw_response.sessions.get("s1"))
    assert raw.request_headers["x-api-key"] == "…" + CANARY_KEY[-4:]
    for text in (repr(raw), str(raw), str(raw.request_headers), str(raw.headers)):
        assert CANARY_KEY not in text


def test_raw_request_headers_show_the_bearer_token_redacted(harness: Harness) -> None:
    harness.server.on("POST", TOKEN, {"code": 1000, "token": "jwt-secret-token-0123456789"})
    harness.server.on("GET", DETAIL, ok(session_json()))
    client = harness.client(None, client_id="cid", client_secret="csecret-0123456789")
    raw = harness.run(client.with_raw_response.sessions.get("s1"))
    assert raw.url.endswith(DETAIL + "?id=s1")  # the call's own request, not the getToken on the way
    assert "jwt-secret-token-0123456789" not in repr(raw) + str(dict(raw.request_headers))
    assert raw.request_headers["authorization"].startswith("…")


def test_a_raw_url_hides_a_query_parameter_named_like_a_secret() -> None:
    from akool_lab.api._base import _redacted_url

    url = httpx.URL("http://x.invalid/p", params={"id": "s1", "token": "tok-0123456789"})
    assert _redacted_url(url) == "http://x.invalid/p?id=s1&token=%E2%80%A66789"
    assert _redacted_url(httpx.URL("http://x.invalid/p?id=s1")) == "http://x.invalid/p?id=s1"


def test_a_raw_call_that_was_retried_describes_its_last_attempt(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, httpx.Response(503, text="busy"), ok(session_json()))
    raw = harness.run(harness.client().with_raw_response.sessions.get("s1"))
    assert raw.status_code == 200
    assert len(harness.server.calls(DETAIL)) == 2


def test_a_raw_call_raises_the_same_errors_as_a_plain_one(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, fail(1216, "not found"))
    with pytest.raises(errors.NotFoundError):
        harness.run(harness.client().with_raw_response.sessions.get("s1"))
    with pytest.raises(errors.ValidationError, match="id"):
        harness.run(harness.client().with_raw_response.sessions.get(""))
    assert len(harness.server.requests) == 1  # the invalid id was never sent


def test_raw_iter_yields_one_raw_response_per_page(harness: Harness) -> None:
    harness.server.on(
        "GET",
        LIST,
        ok({"result": [session_json("a"), session_json("b")], "count": 3}),
        ok({"result": [session_json("c")], "count": 3}),
    )
    pages = harness.run(harness.client().with_raw_response.sessions.iter(size=2))
    assert [[s.id for s in raw.parsed] for raw in pages] == [["a", "b"], ["c"]]
    assert [raw.url.split("?")[1] for raw in pages] == ["page=1&size=2", "page=2&size=2"]


def test_a_raw_call_that_sends_nothing_says_so(harness: Harness) -> None:
    with pytest.raises(errors.AkoolLabError, match="no HTTP request"):
        harness.run(harness.client().with_raw_response.sessions.reap())


def test_the_clients_keep_no_last_response(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok(session_json()))
    client = harness.client()
    harness.run(client.sessions.get("s1"))
    assert not any(isinstance(value, httpx.Response) for value in vars(client).values())
    assert not hasattr(client, "last_response")


def test_concurrent_raw_calls_of_the_async_client_each_get_their_own_response() -> None:
    # Answers come back in another order than the calls were made: each raw response must still be its own call's.
    rng = random.Random(3)
    delays = {f"s{i}": rng.uniform(0, 0.02) for i in range(20)}

    async def handler(request: httpx.Request) -> httpx.Response:
        session_id = request.url.params["id"]
        await asyncio.sleep(delays[session_id])
        return httpx.Response(200, json=ok(session_json(session_id)), headers={"x-echo": session_id})

    async def main() -> list[RawResponse[Session]]:
        async with AsyncAkoolClient(CANARY_KEY, transport=httpx.MockTransport(handler)) as client:
            return await asyncio.gather(*(client.with_raw_response.sessions.get(sid) for sid in delays))

    for session_id, raw in zip(delays, asyncio.run(main()), strict=True):
        assert raw.parsed.id == session_id
        assert raw.headers["x-echo"] == session_id
        assert raw.url.endswith(f"?id={session_id}")


# --- the user agent ------------------------------------------------------------------------------------------------


def test_every_request_identifies_as_akool_lab_then_httpx(harness: Harness) -> None:
    harness.server.on("POST", TOKEN, {"code": 1000, "token": "t"})
    harness.server.on("GET", DETAIL, ok(session_json()))
    harness.run(harness.client(None, client_id="cid", client_secret="cs").sessions.get("s1"))
    agents = [request.headers["user-agent"] for request in harness.server.requests]
    assert len(agents) == 2  # getToken (no credentials) and the call
    assert agents == [f"akool_lab/{__version__} python-httpx/{httpx.__version__}"] * 2 == [USER_AGENT] * 2


def test_a_caller_supplied_http_client_sends_the_user_agent_too() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=ok(session_json()))

    http = httpx.Client(base_url="http://mock.invalid", transport=httpx.MockTransport(handler))
    with AkoolClient(CANARY_KEY, http_client=http) as client:
        client.sessions.get("s1")
    assert seen[0].headers["user-agent"] == USER_AGENT
    http.close()
