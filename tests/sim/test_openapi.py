"""Every simulator answer conforms to AKool's own OpenAPI file (a schemathesis run, skipped without ../shared)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from akool_lab.sim import SimServer, start
from tests.sim.helpers import AVATAR, KEY, V3, V4, call, create_session

schemathesis = pytest.importorskip("schemathesis")
from schemathesis.checks import not_a_server_error, response_schema_conformance  # noqa: E402

CHECKS = [not_a_server_error, response_schema_conformance]


@pytest.fixture(scope="module")
def seeded_sim() -> Iterator[SimServer]:
    """A simulator with a session, an upload and a knowledge base, so the generated requests can hit real ids."""
    with start(api_key=KEY, seed=1, profile="fast") as server:
        create_session(server)
        call(
            server,
            "POST",
            f"{V3}/avatar/create",
            json={"url": "https://e/v.mp4", "avatar_id": "up1", "name": "n", "type": 2, "url_from": 1},
        )
        yield server


def test_generated_requests_get_schema_conformant_answers_and_no_server_error(
    openapi_spec: dict[str, Any], seeded_sim: SimServer
) -> None:
    schema = schemathesis.openapi.from_dict(openapi_spec)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) == 7
    for operation in operations:

        @settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        @given(case=operation.as_strategy(), auth=st.sampled_from([True, True, False]))
        def check(case: Any, auth: bool) -> None:
            headers = {"x-api-key": KEY} if auth else {}
            response = case.call(base_url=seeded_sim.base_url, headers=headers)
            case.validate_response(response, checks=CHECKS)

        check()


def test_successful_answers_of_every_operation_conform(openapi_spec: dict[str, Any], seeded_sim: SimServer) -> None:
    schema = schemathesis.openapi.from_dict(openapi_spec)
    session_id = create_session(seeded_sim, stream_type="trtc")["_id"]
    inputs: dict[tuple[str, str], dict[str, Any]] = {
        ("POST", f"{V3}/avatar/create"): {
            "body": {"url": "https://e/v.mp4", "avatar_id": "up2", "name": "n", "type": 2, "url_from": 1}
        },
        ("GET", f"{V4}/liveAvatar/avatar/list"): {"query": {"page": 1, "size": 100}},
        ("GET", f"{V4}/liveAvatar/avatar/detail"): {"query": {"avatar_id": AVATAR}},
        ("POST", f"{V4}/liveAvatar/session/create"): {"body": {"avatar_id": AVATAR, "stream_type": "livekit"}},
        ("GET", f"{V4}/liveAvatar/session/detail"): {"query": {"id": session_id}},
        ("POST", f"{V4}/liveAvatar/session/close"): {"body": {"id": session_id}},
        ("GET", f"{V4}/liveAvatar/session/list"): {"query": {"page": 1, "size": 10}},
    }
    for result in schema.get_all_operations():
        operation = result.ok()
        case = operation.Case(**inputs[(operation.method.upper(), operation.path)])
        response = case.call(base_url=seeded_sim.base_url, headers={"x-api-key": KEY})
        assert response.json()["code"] == 1000, (operation.path, response.text)
        case.validate_response(response, checks=CHECKS)
