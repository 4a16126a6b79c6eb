"""The API key never shows: not in reprs, not in error texts, not in DEBUG logs, not in event records."""

from __future__ import annotations

import json
import logging

import httpx
import pytest

from akool_lab import errors
from akool_lab.api import AgoraCredentials, Credentials, LiveKitCredentials, Session, TrtcCredentials
from akool_lab.events import Recorder
from akool_lab.types import parse_credentials
from tests.conftest import CANARY_KEY

from .conftest import Harness, fail, ok, session_json

DETAIL = "/api/open/v4/liveAvatar/session/detail"
CREATE = "/api/open/v4/liveAvatar/session/create"


def test_client_repr_shows_at_most_the_last_four_characters_of_the_key(harness: Harness) -> None:
    client = harness.client()
    assert CANARY_KEY not in repr(client)
    assert CANARY_KEY not in str(client)
    assert CANARY_KEY[-4:] in repr(client)


def test_client_secret_and_token_are_absent_from_repr(harness: Harness) -> None:
    harness.server.on("POST", "/api/open/v3/getToken", {"code": 1000, "token": CANARY_KEY + "-tok"})
    harness.server.on("GET", DETAIL, ok(session_json()))
    client = harness.client(None, client_id="cid-0001", client_secret=CANARY_KEY)
    harness.run(client.sessions.get("s1"))
    assert CANARY_KEY not in repr(client)
    assert CANARY_KEY not in repr(vars(client).get("_token"))


@pytest.mark.parametrize(
    ("stream_type", "raw", "secret_field"),
    [
        ("agora", {"agora_uid": 1, "agora_channel": "c", "agora_token": CANARY_KEY}, "token"),
        ("livekit", {"livekit_url": "wss://lk", "livekit_token": CANARY_KEY}, "token"),
        ("trtc", {"trtc_sdk_app_id": 1, "trtc_sdk_user_sig": CANARY_KEY}, "user_sig"),
        ("websocket", {"ws_url": f"ws://127.0.0.1:1/ws?token={CANARY_KEY}", "ws_token": CANARY_KEY}, "ws_token"),
    ],
)
def test_credentials_and_sessions_never_show_their_secrets(
    stream_type: str, raw: dict[str, object], secret_field: str
) -> None:
    session = Session.from_json({"_id": "s1", "status": 2, "stream_type": stream_type, "credentials": raw})
    assert session.credentials is not None
    assert getattr(session.credentials, secret_field) == CANARY_KEY
    assert CANARY_KEY not in repr(session.credentials)
    assert CANARY_KEY not in repr(session)
    assert CANARY_KEY not in str(session)
    assert CANARY_KEY[-4:] in repr(session.credentials)


def test_session_raw_keeps_every_field_but_is_not_in_repr() -> None:
    raw = session_json(voice_params={"elevenlabs_settings": {"api_key": CANARY_KEY}}, future_field=1)
    session = Session.from_json(raw)
    assert session.raw["future_field"] == 1
    assert session.raw["voice_params"]["elevenlabs_settings"]["api_key"] == CANARY_KEY
    assert CANARY_KEY not in repr(session)


def test_an_akool_error_does_not_contain_the_key(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, fail(1101, "Invalid authorization"))
    with pytest.raises(errors.AuthError) as info:
        harness.run(harness.client().sessions.get("s1"))
    assert CANARY_KEY not in str(info.value)
    assert CANARY_KEY not in repr(info.value)


def test_a_connection_error_does_not_contain_the_key(harness: Harness) -> None:
    harness.server.on("GET", DETAIL, httpx.ConnectError("refused"))
    with pytest.raises(errors.ConnectionError) as info:
        harness.run(harness.client(max_retries=0).sessions.get("s1"))
    assert CANARY_KEY not in str(info.value)


def test_a_validation_error_does_not_echo_the_elevenlabs_key(harness: Harness) -> None:
    params = {"elevenlabs_settings": {"api_key": CANARY_KEY, "stability": 7}}
    with pytest.raises(errors.ValidationError) as info:
        harness.run(harness.client().sessions.create("a", voice_params=params))
    assert CANARY_KEY not in str(info.value)


def test_debug_logs_redact_the_key_and_secret_body_fields(harness: Harness, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="akool_lab")
    harness.server.on("POST", CREATE, ok(session_json(credentials={"agora_token": CANARY_KEY})))
    harness.server.on("POST", "/api/open/v4/liveAvatar/session/close", ok())
    client = harness.client()
    session = harness.run(client.sessions.create("a", voice_params={"elevenlabs_settings": {"api_key": CANARY_KEY}}))
    harness.run(client.sessions.close(session.id))
    assert "session/create" in caplog.text
    assert CANARY_KEY not in caplog.text


def test_events_and_journal_hold_no_secret(harness: Harness) -> None:
    recorder = Recorder()
    harness.server.on("POST", CREATE, ok(session_json(credentials={"agora_token": CANARY_KEY})))
    client = harness.client(recorder=recorder)
    harness.run(client.sessions.create("a"))
    dumped = json.dumps([e.to_json() for e in recorder.events])
    assert CANARY_KEY not in dumped
    assert CANARY_KEY not in client.journal.path.read_text()


def test_unknown_provider_credentials_keep_raw_and_hide_it() -> None:
    creds = parse_credentials("newrtc", {"secret_thing": CANARY_KEY})
    assert isinstance(creds, Credentials)
    assert creds.provider == "newrtc"
    assert CANARY_KEY not in repr(creds)


def test_typed_credentials_classes_are_exported() -> None:
    assert issubclass(AgoraCredentials, Credentials)
    assert issubclass(LiveKitCredentials, Credentials)
    assert issubclass(TrtcCredentials, Credentials)
