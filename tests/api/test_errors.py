"""Answers that are not a success: typed AKool errors per code family, and bodies that are not the envelope."""

from __future__ import annotations

import httpx
import pytest

from akool_lab import errors

from .conftest import Harness, fail, ok

DETAIL = "/api/open/v4/liveAvatar/session/detail"


# The table of codes and error classes is tested once, on errors.error_for_code (tests/test_foundation.py); here,
# that the client raises the class of the code it got, with everything the caller needs to act on it.
@pytest.mark.parametrize("code", [1219, 1232])  # a mapped code, and one no family knows
def test_a_code_other_than_1000_raises_the_typed_error_of_its_code_with_msg_endpoint_and_status(
    harness: Harness, code: int
) -> None:
    harness.server.on("GET", DETAIL, fail(code, "nope"))
    with pytest.raises(errors.AkoolError) as info:
        harness.run(harness.client().sessions.get("s1"))
    assert type(info.value) is type(errors.error_for_code(code, "", ""))
    assert (info.value.code, info.value.msg, info.value.endpoint, info.value.http_status) == (
        code,
        "nope",
        "sessions.get",
        200,
    )


@pytest.mark.parametrize(("code", "cls"), [(1005, errors.RateLimitError), (1215, errors.BusyError)])
def test_retryable_codes_raise_their_typed_error_once_retries_are_spent(
    harness: Harness, code: int, cls: type[errors.AkoolError]
) -> None:
    harness.server.on("GET", DETAIL, fail(code))
    with pytest.raises(cls):
        harness.run(harness.client(max_retries=0).sessions.get("s1"))


@pytest.mark.parametrize(
    ("response", "detail"),
    [
        (httpx.Response(200, text="<html><body>Bad gateway</body></html>"), "HTML"),
        (httpx.Response(200, text=""), "empty body"),
        (httpx.Response(200, text="not json at all"), "not JSON"),
        (httpx.Response(200, json=[1, 2]), "no integer 'code'"),
        (httpx.Response(200, json={"code": "1000"}), "no integer 'code'"),
        (httpx.Response(404, text="<html>404</html>"), "HTML"),
    ],
    ids=["html", "empty", "text", "array", "string-code", "404-html"],
)
def test_a_body_that_is_not_the_envelope_raises_response_format_error(
    harness: Harness, response: httpx.Response, detail: str
) -> None:
    harness.server.on("GET", DETAIL, response)
    with pytest.raises(errors.ResponseFormatError, match=detail) as info:
        harness.run(harness.client().sessions.get("s1"))
    assert info.value.endpoint == "sessions.get"


def test_success_without_data_where_data_is_needed_is_a_format_error(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok())
    with pytest.raises(errors.ResponseFormatError, match="no 'data'"):
        harness.run(harness.client().sessions.get("s1"))


def test_a_session_without_id_is_a_format_error(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, ok({"status": 1}))
    with pytest.raises(errors.ResponseFormatError, match="_id"):
        harness.run(harness.client().sessions.get("s1"))


def test_error_text_says_what_to_do(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, fail(1101, "Invalid authorization"))
    with pytest.raises(errors.AuthError, match="check AKOOL_API_KEY"):
        harness.run(harness.client().sessions.get("s1"))
