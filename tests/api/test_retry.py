"""Retry rules, counted in attempts: safe requests are repeated on transient failures; side effects never are."""

from __future__ import annotations

import httpx
import pytest

from akool_lab import errors
from akool_lab.events import EventKind, Recorder

from .conftest import Harness, fail, ok, session_json

DETAIL = "/api/open/v4/liveAvatar/session/detail"
CREATE = "/api/open/v4/liveAvatar/session/create"
CLOSE = "/api/open/v4/liveAvatar/session/close"

TRANSIENT = {
    "http-500": httpx.Response(500, text="<html>oops</html>"),
    "http-503-json": httpx.Response(503, json={"code": 1218, "msg": "down"}),
    "http-429": httpx.Response(429, text=""),
    "code-1005": httpx.Response(200, json=fail(1005)),
    "code-1215": httpx.Response(200, json=fail(1215)),
    "connect-error": httpx.ConnectError("refused"),
    "read-timeout": httpx.ReadTimeout("slow"),
    "read-error": httpx.ReadError("reset"),
}


@pytest.mark.parametrize("failure", list(TRANSIENT.values()), ids=list(TRANSIENT))
def test_a_get_is_retried_on_transient_failures_and_then_succeeds(harness: Harness, failure: object) -> None:
    harness.server.on("GET", DETAIL, failure, failure, ok(session_json()))
    session = harness.run(harness.client(max_retries=2).sessions.get("s1"))
    assert session.id == "66a0c0ffee0000000000abcd"
    assert len(harness.server.requests) == 3
    assert len(harness.sleeps) == 2


@pytest.mark.parametrize("max_retries", [0, 1, 3])
def test_a_get_makes_exactly_max_retries_plus_one_attempts(harness: Harness, max_retries: int) -> None:
    harness.server.on("GET", DETAIL, httpx.Response(502, text="bad gateway"))
    with pytest.raises(errors.ResponseFormatError):
        harness.run(harness.client(max_retries=max_retries).sessions.get("s1"))
    assert len(harness.server.requests) == max_retries + 1


def test_connection_failures_surface_as_the_library_error_types(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, httpx.ConnectError("refused"))
    with pytest.raises(errors.ConnectionError):
        harness.run(harness.client(max_retries=0).sessions.get("s1"))
    harness.server.routes.clear()
    harness.server.on("GET", DETAIL, httpx.ReadTimeout("slow"))
    with pytest.raises(errors.TimeoutError):
        harness.run(harness.client(max_retries=0).sessions.get("s1"))


def test_a_non_transient_error_is_not_retried(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, fail(1003))
    with pytest.raises(errors.InvalidParameterError):
        harness.run(harness.client(max_retries=3).sessions.get("s1"))
    assert len(harness.server.requests) == 1


@pytest.mark.parametrize(
    "failure",
    [
        httpx.Response(500, text="oops"),
        httpx.Response(200, json=fail(1215)),
        httpx.ReadTimeout("slow"),
        httpx.ReadError("reset"),
    ],
    ids=["http-500", "code-1215", "read-timeout", "read-error"],
)
def test_session_create_is_never_retried_once_the_request_may_have_arrived(harness: Harness, failure: object) -> None:
    harness.server.on("POST", CREATE, failure, ok(session_json()))
    with pytest.raises(errors.AkoolLabError):
        harness.run(harness.client(max_retries=5).sessions.create("dvp_Tristan"))
    assert len(harness.server.requests) == 1


def test_avatar_upload_is_never_retried_on_5xx(harness: Harness) -> None:
    harness.server.on("POST", "/api/open/v3/avatar/create", httpx.Response(503, text="down"))
    with pytest.raises(errors.ResponseFormatError):
        harness.run(harness.client(max_retries=5).avatars.upload(url="https://a/v.mp4", avatar_id="A1", name="n"))
    assert len(harness.server.requests) == 1


def test_session_create_is_retried_when_the_connection_could_not_be_opened(harness: Harness) -> None:
    harness.server.on("POST", CREATE, httpx.ConnectError("refused"), ok(session_json()))
    session = harness.run(harness.client(max_retries=2).sessions.create("dvp_Tristan"))
    assert session.id == "66a0c0ffee0000000000abcd"
    assert len(harness.server.requests) == 2


def test_close_is_retried_like_a_read(harness: Harness) -> None:
    harness.server.on("POST", CLOSE, httpx.Response(502, text="x"), ok())
    harness.run(harness.client().sessions.close("s1"))
    assert len(harness.server.requests) == 2


def test_retry_after_seconds_is_honoured(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, httpx.Response(429, headers={"Retry-After": "3"}, text=""), ok(session_json()))
    harness.run(harness.client().sessions.get("s1"))
    assert harness.sleeps == [3.0]


def test_backoff_is_exponential_jittered_and_capped(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, httpx.Response(500, text="x"))
    with pytest.raises(errors.ResponseFormatError):
        harness.run(harness.client(max_retries=6).sessions.get("s1"))
    steps = [min(8.0, 0.5 * 2**i) for i in range(6)]
    assert len(harness.sleeps) == 6
    for slept, step in zip(harness.sleeps, steps, strict=True):
        assert step / 2 <= slept <= step


def test_each_attempt_is_recorded_with_its_number_status_and_code(harness: Harness) -> None:
    recorder = Recorder()
    harness.server.on("GET", DETAIL, fail(1005), ok(session_json()))
    harness.run(harness.client(recorder=recorder).sessions.get("s1"))
    events = recorder.filter(EventKind.HTTP)
    assert [(e.data["attempt"], e.data["code"], e.data["http_status"]) for e in events] == [
        (1, 1005, 200),
        (2, 1000, 200),
    ]
    assert events[0].data["endpoint"] == "sessions.get"
    assert events[0].data["error"] == "RateLimitError"
    assert events[0].session_id == "s1"
    assert all(e.data["ms"] >= 0 for e in events)
