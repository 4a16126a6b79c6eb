"""Credentials: API key header, getToken with both token placements, one refresh on 1101, and no credentials."""

from __future__ import annotations

import pytest

from akool_lab import errors
from akool_lab.api import DEFAULT_BASE_URL, AkoolClient, AsyncAkoolClient

from .conftest import Harness, fail, ok, session_json

TOKEN = "/api/open/v3/getToken"
DETAIL = "/api/open/v4/liveAvatar/session/detail"


def test_api_key_is_sent_as_x_api_key(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok(session_json()))
    harness.run(harness.client("key-123456789").sessions.get("s1"))
    request = harness.server.requests[-1]
    assert request.headers["x-api-key"] == "key-123456789"
    assert "authorization" not in request.headers


def test_api_key_is_read_from_the_environment(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKOOL_API_KEY", "env-key-123456")
    harness.server.on("GET", DETAIL, ok(session_json()))
    harness.run(harness.client(None).sessions.get("s1"))
    assert harness.server.requests[-1].headers["x-api-key"] == "env-key-123456"


@pytest.mark.parametrize(
    "reply", [{"code": 1000, "token": "jwt-top-level"}, ok({"token": "jwt-top-level"})], ids=["top-level", "data.token"]
)
def test_client_credentials_fetch_a_token_once_and_send_it_as_bearer(
    harness: Harness, reply: dict[str, object]
) -> None:
    harness.server.on("POST", TOKEN, reply)
    harness.server.on("GET", DETAIL, ok(session_json()))
    client = harness.client(None, client_id="cid", client_secret="csecret")
    harness.run(client.sessions.get("s1"))
    harness.run(client.sessions.get("s1"))
    token_calls = harness.server.calls(TOKEN)
    assert len(token_calls) == 1
    assert harness.server.body(0) == {"clientId": "cid", "clientSecret": "csecret"}
    assert "x-api-key" not in token_calls[0].headers and "authorization" not in token_calls[0].headers
    assert harness.server.requests[-1].headers["authorization"] == "Bearer jwt-top-level"


def test_client_credentials_are_read_from_the_environment(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AKOOL_CLIENT_ID", "cid")
    monkeypatch.setenv("AKOOL_CLIENT_SECRET", "csecret")
    harness.server.on("POST", TOKEN, {"code": 1000, "token": "t1"})
    harness.server.on("GET", DETAIL, ok(session_json()))
    harness.run(harness.client(None).sessions.get("s1"))
    assert harness.server.requests[-1].headers["authorization"] == "Bearer t1"


def test_on_1101_the_token_is_fetched_once_more_and_the_request_repeated_once(harness: Harness) -> None:
    harness.server.on("POST", TOKEN, {"code": 1000, "token": "old"}, {"code": 1000, "token": "new"})
    harness.server.on("GET", DETAIL, fail(1101, "expired"), ok(session_json()))
    session = harness.run(harness.client(None, client_id="cid", client_secret="cs", max_retries=0).sessions.get("s1"))
    assert session.id
    assert len(harness.server.calls(TOKEN)) == 2
    details = harness.server.calls(DETAIL)
    assert [r.headers["authorization"] for r in details] == ["Bearer old", "Bearer new"]


def test_a_second_1101_after_the_refresh_is_raised(harness: Harness) -> None:
    harness.server.on("POST", TOKEN, {"code": 1000, "token": "t"})
    harness.server.on("GET", DETAIL, fail(1101))
    with pytest.raises(errors.AuthError):
        harness.run(harness.client(None, client_id="cid", client_secret="cs").sessions.get("s1"))
    assert len(harness.server.calls(TOKEN)) == 2
    assert len(harness.server.calls(DETAIL)) == 2


def test_1101_with_an_api_key_is_raised_without_any_token_request(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, fail(1101))
    with pytest.raises(errors.AuthError):
        harness.run(harness.client().sessions.get("s1"))
    assert len(harness.server.requests) == 1


def test_a_rejected_client_secret_raises_auth_error(harness: Harness) -> None:
    harness.server.on("POST", TOKEN, fail(1101))
    with pytest.raises(errors.AuthError) as info:
        harness.run(harness.client(None, client_id="cid", client_secret="cs").sessions.get("s1"))
    assert info.value.endpoint == "auth.token"


@pytest.mark.parametrize("cls", [AkoolClient, AsyncAkoolClient])
def test_no_credentials_at_all_is_a_validation_error_naming_akool_api_key(cls: type) -> None:
    with pytest.raises(errors.ValidationError, match="AKOOL_API_KEY") as info:
        cls()
    assert info.value.field == "api_key"


def test_base_url_defaults_to_akool_then_env_then_argument(harness: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    assert harness.client().base_url == DEFAULT_BASE_URL == "https://openapi.akool.com"
    monkeypatch.setenv("AKOOL_BASE_URL", "http://127.0.0.1:9999/")
    assert harness.client().base_url == "http://127.0.0.1:9999"
    harness.server.on("GET", DETAIL, ok(session_json()))
    harness.run(harness.client(base_url="http://sim.local:1").sessions.get("s1"))
    assert str(harness.server.requests[-1].url).startswith("http://sim.local:1/api/open/v4/")


def test_sync_client_is_a_context_manager(sync_harness: Harness) -> None:
    with sync_harness.client() as client:
        assert isinstance(client, AkoolClient)
    assert client._http.is_closed


def test_async_client_is_an_async_context_manager() -> None:
    import asyncio

    async def main() -> AsyncAkoolClient:
        async with AsyncAkoolClient("k" * 12) as client:
            return client

    client = asyncio.run(main())
    assert client._http.is_closed
