"""The client against AKool's own OpenAPI file (skipped when ../shared is absent; see ``spec`` in conftest)."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from akool_lab.api import AvatarDetail, Session
from akool_lab.api import _endpoints as ep

from .conftest import Harness, ok


def schema(spec: dict[str, Any], name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}", "components": spec["components"]}


def operation(spec: dict[str, Any], method: str, path: str) -> dict[str, Any]:
    op: dict[str, Any] = spec["paths"][path][method.lower()]
    return op


def test_every_endpoint_in_the_spec_is_defined_with_the_same_method(spec: dict[str, Any]) -> None:
    defined = {(e.method, e.path) for e in ep.ENDPOINTS}
    for path, methods in spec["paths"].items():  # type: ignore[attr-defined]
        for method in methods:
            assert (method.upper(), path) in defined


def test_the_create_session_example_passes_validation_and_is_sent_unchanged(
    harness: Harness, spec: dict[str, Any]
) -> None:
    op = operation(spec, "POST", ep.SESSIONS_CREATE.path)
    example = op["requestBody"]["content"]["application/json"]["example"]
    harness.server.on("POST", ep.SESSIONS_CREATE.path, ok({"_id": "s1", "status": 1}))
    harness.run(harness.client().sessions.create(**example))
    sent = harness.server.body()
    assert sent == example
    jsonschema.validate(sent, schema(spec, "CreateSessionRequest"))


def test_a_minimal_create_request_matches_the_schema(spec: dict[str, Any]) -> None:
    request = ep.create_session("dvp_Tristan", stream_type="livekit", voice_params={"speed": 0.9})
    jsonschema.validate(request.json, schema(spec, "CreateSessionRequest"))


def test_close_sends_the_spec_example_shape(spec: dict[str, Any]) -> None:
    op = operation(spec, "POST", ep.SESSIONS_CLOSE.path)
    example = op["requestBody"]["content"]["application/json"]["example"]
    assert ep.close_session(example["id"]).json == example


def test_the_avatar_upload_examples_round_trip(harness: Harness, spec: dict[str, Any]) -> None:
    op = operation(spec, "POST", ep.AVATARS_UPLOAD.path)
    request_example = op["requestBody"]["content"]["application/json"]["example"]
    response_example = op["responses"]["200"]["content"]["application/json"]["example"]
    harness.server.on("POST", ep.AVATARS_UPLOAD.path, response_example)
    args = {k: v for k, v in request_example.items() if k != "type"}
    detail = harness.run(harness.client().avatars.upload(**args))
    assert harness.server.body() == request_example
    assert isinstance(detail, AvatarDetail)
    assert detail.avatar_id == response_example["data"]["avatar_id"]
    assert detail.raw == response_example["data"]


@pytest.mark.parametrize("name", ["SessionResponse", "SessionDetail"])
def test_a_session_with_every_schema_property_parses(spec: dict[str, Any], name: str) -> None:
    props = spec["components"]["schemas"][name]["properties"]  # type: ignore[index]
    assert set(props) <= {"_id", "uid", "type", "status", "stream_type", "credentials"}
    data = {"_id": "s1", "uid": 1, "type": 1, "status": 2, "stream_type": "trtc", "credentials": {"trtc_sdk_app_id": 7}}
    jsonschema.validate(data, schema(spec, name))
    assert Session.from_json(data).credentials.app_id == 7  # type: ignore[union-attr]


def test_list_query_parameters_are_the_documented_ones(spec: dict[str, Any]) -> None:
    for endpoint, request in [
        (ep.SESSIONS_LIST, ep.list_sessions(1, 100, 2)),
        (ep.AVATARS_LIST, ep.list_avatars(1, 100)),
        (ep.SESSIONS_GET, ep.get_session("s")),
        (ep.AVATARS_GET, ep.get_avatar("a")),
    ]:
        documented = {p["name"] for p in operation(spec, "GET", endpoint.path)["parameters"]}
        assert set(request.params or {}) <= documented
