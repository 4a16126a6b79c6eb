"""Liberal parsing of the models (AKOOL_API.md section 11): both spellings, unknown values and fields kept."""

from __future__ import annotations

import pytest

from akool_lab.api import (
    AgoraCredentials,
    Credentials,
    LiveKitCredentials,
    Page,
    Session,
    SessionStatus,
    TrtcCredentials,
)
from akool_lab.types import parse_credentials


@pytest.mark.parametrize(
    "raw",
    [
        {
            "trtc_sdk_app_id": 1400,
            "trtc_sdk_room_id": "r",
            "trtc_sdk_user_id": "u",
            "trtc_sdk_user_sig": "sig-123456789",
        },
        {"trtc_app_id": 1400, "trtc_room_id": "r", "trtc_user_id": "u", "trtc_user_sig": "sig-123456789"},
    ],
    ids=["trtc_sdk_", "trtc_"],
)
def test_trtc_credentials_accept_both_spellings(raw: dict[str, object]) -> None:
    creds = parse_credentials("trtc", raw)
    assert creds == TrtcCredentials(provider="trtc", app_id=1400, room_id="r", user_id="u", user_sig="sig-123456789")
    assert creds is not None and creds.raw == raw


def test_livekit_credentials_are_typed() -> None:
    raw = {
        "livekit_url": "wss://lk.example",
        "livekit_token": "tok-abcdefghij",
        "livekit_room_name": "room",
        "livekit_client_identity": "me",
        "livekit_server_identity": "avatar",
    }
    creds = parse_credentials("livekit", raw)
    assert isinstance(creds, LiveKitCredentials)
    assert (creds.url, creds.room_name, creds.server_identity) == ("wss://lk.example", "room", "avatar")


def test_websocket_stream_type_gives_base_credentials_with_the_simulator_fields() -> None:
    creds = parse_credentials("websocket", {"ws_url": "ws://127.0.0.1:5/ws", "ws_token": "t-0123456789"})
    assert type(creds) is Credentials
    assert creds is not None and (creds.provider, creds.ws_url, creds.ws_token) == (
        "websocket",
        "ws://127.0.0.1:5/ws",
        "t-0123456789",
    )


def test_provider_credentials_may_carry_the_simulator_extension() -> None:
    creds = parse_credentials("agora", {"agora_token": "a" * 20, "ws_url": "ws://x/ws", "ws_token": "w" * 20})
    assert isinstance(creds, AgoraCredentials)
    assert creds.ws_url == "ws://x/ws"


def test_provider_is_inferred_from_the_keys_when_stream_type_is_missing() -> None:
    assert isinstance(parse_credentials(None, {"livekit_url": "wss://x"}), LiveKitCredentials)


def test_a_session_without_credentials_has_none() -> None:
    assert Session.from_json({"_id": "s", "status": 1}).credentials is None


def test_an_unknown_status_is_kept_rather_than_rejected() -> None:
    status = Session.from_json({"_id": "s", "status": 9}).status
    assert status == 9
    assert not status.is_open


def test_processing_is_an_alias_of_live() -> None:
    assert SessionStatus.PROCESSING is SessionStatus.LIVE
    assert SessionStatus(2).is_open and SessionStatus(1).is_open and not SessionStatus(3).is_open


def test_models_are_frozen() -> None:
    session = Session.from_json({"_id": "s", "status": 1})
    with pytest.raises(AttributeError):
        session.id = "other"  # type: ignore[misc]


def test_a_page_is_iterable_and_knows_whether_more_follow() -> None:
    page = Page(items=(1, 2), count=5, page=1, size=2)
    assert list(page) == [1, 2] and len(page) == 2 and page[1] == 2
    assert page.has_more
    assert not Page(items=(5,), count=5, page=3, size=2).has_more
