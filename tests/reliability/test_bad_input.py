"""Bad input everywhere gets a ``ValidationError`` naming the field and what is allowed, before anything is sent:
no HTTP request (counted by a mock transport) and no data-channel message (counted in the recorder)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from akool_lab import errors, sim
from akool_lab.api import AkoolClient
from akool_lab.events import EventKind
from akool_lab.live import LiveSession
from tests.conftest import CANARY_KEY
from tests.reliability.conftest import AVATAR, live_session

A = AVATAR
REST_CASES: list[tuple[str, Callable[[AkoolClient], Any], str]] = [
    ("avatar_id empty", lambda c: c.sessions.create(""), "avatar_id"),
    ("avatar_id not a str", lambda c: c.sessions.create(5), "avatar_id"),  # type: ignore[arg-type]
    ("duration 0", lambda c: c.sessions.create(A, duration=0), "duration"),
    ("duration 3601", lambda c: c.sessions.create(A, duration=3601), "duration"),
    ("duration a str", lambda c: c.sessions.create(A, duration="60"), "duration"),  # type: ignore[arg-type]
    ("duration a bool", lambda c: c.sessions.create(A, duration=True), "duration"),
    ("duration a float", lambda c: c.sessions.create(A, duration=1.5), "duration"),  # type: ignore[arg-type]
    ("mode_type 3", lambda c: c.sessions.create(A, mode_type=3), "mode_type"),
    ("stream_type unknown", lambda c: c.sessions.create(A, stream_type="webrtc"), "stream_type"),
    ("scene_mode unknown", lambda c: c.sessions.create(A, scene_mode="x"), "scene_mode"),
    ("e2e_type without scene", lambda c: c.sessions.create(A, e2e_type="openai"), "e2e_type"),
    ("background_url ftp", lambda c: c.sessions.create(A, background_url="ftp://h/x.png"), "background_url"),
    ("voice_url not a URL", lambda c: c.sessions.create(A, voice_url="voice.mp3"), "voice_url"),
    ("knowledge_id empty", lambda c: c.sessions.create(A, knowledge_id=""), "knowledge_id"),
    ("speed 2", lambda c: c.sessions.create(A, voice_params={"speed": 2}), "voice_params.speed"),
    ("speed a str", lambda c: c.sessions.create(A, voice_params={"speed": "fast"}), "voice_params.speed"),
    ("voice_params key", lambda c: c.sessions.create(A, voice_params={"nope": 1}), "voice_params"),
    ("voice_params a list", lambda c: c.sessions.create(A, voice_params=[1]), "voice_params"),  # type: ignore[arg-type]
    ("credentials a str", lambda c: c.sessions.create(A, credentials="x"), "credentials"),  # type: ignore[arg-type]
    ("get id empty", lambda c: c.sessions.get(""), "id"),
    ("close id None", lambda c: c.sessions.close(None), "id"),  # type: ignore[arg-type]
    ("wait id empty", lambda c: c.sessions.wait_until_live(""), "id"),
    ("list page 0", lambda c: c.sessions.list(page=0), "page"),
    ("list size 101", lambda c: c.sessions.list(size=101), "size"),
    ("list size 0", lambda c: c.sessions.list(size=0), "size"),
    ("list status 5", lambda c: c.sessions.list(status=5), "status"),
    ("list page a str", lambda c: c.sessions.list(page="1"), "page"),  # type: ignore[arg-type]
    ("avatars size 500", lambda c: c.avatars.list(size=500), "size"),
    ("voices type 3", lambda c: c.voices.list(type=3), "type"),
    ("voices size 0", lambda c: c.voices.list(size=0), "size"),
    ("voices support_stream 3", lambda c: c.voices.list(support_stream=3), "support_stream"),
]


@pytest.fixture
def counted() -> Iterator[tuple[AkoolClient, list[httpx.Request]]]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(500)

    with AkoolClient(CANARY_KEY, base_url="http://mock.invalid", transport=httpx.MockTransport(handler)) as c:
        yield c, sent


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in REST_CASES], ids=[n for n, _, _ in REST_CASES])
def test_bad_rest_arguments_are_refused_naming_the_field_before_any_request(
    counted: tuple[AkoolClient, list[httpx.Request]], call: Callable[[AkoolClient], Any], field: str
) -> None:
    client, sent = counted
    with pytest.raises(errors.ValidationError) as info:
        call(client)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert sent == []


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [({"max_retries": -1}, "max_retries"), ({"timeout": 0}, "timeout"), ({"timeout": "5"}, "timeout")],
)
def test_bad_client_settings_are_refused_naming_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(errors.ValidationError) as info:
        AkoolClient(CANARY_KEY, base_url="http://mock.invalid", **kwargs)
    assert info.value.field == field and info.value.allowed


# --- the live session: nothing goes on the data channel ----------------------------------------------------------

LIVE_CASES: list[tuple[str, Callable[[LiveSession], Any], str]] = [
    ("set_params mode 3", lambda s: s.set_params(mode=3), "mode"),
    ("set_params speed 5", lambda s: s.set_params(vparams={"speed": 5}), "speed"),
    ("set_params lang a number", lambda s: s.set_params(lang=5), "lang"),  # type: ignore[arg-type]
    ("set_params bgurl not a URL", lambda s: s.set_params(bgurl="background"), "bgurl"),
    ("set_params nothing", lambda s: s.set_params(), ""),
    ("say empty", lambda s: s.say(""), "text"),
    ("say a number", lambda s: s.say(5), "text"),  # type: ignore[arg-type]
    ("say until unknown", lambda s: s.say("Hi.", until="never"), "until"),
    ("say timeout 0", lambda s: s.say("Hi.", timeout=0), "timeout"),
    ("set_action unknown", lambda s: s.set_action("dance"), "action"),
    ("on unknown event", lambda s: s.on("everything", print), "event"),
]


@pytest.fixture(scope="module")
def quiet_live(server: sim.SimServer) -> Iterator[tuple[LiveSession, AkoolClient]]:
    with AkoolClient(server.api_key, base_url=server.base_url) as client:
        live = client.connect(live_session(client), mode=1)
        yield live, client
        live.close()


@pytest.mark.parametrize(("call", "field"), [(c, f) for _, c, f in LIVE_CASES], ids=[n for n, _, _ in LIVE_CASES])
def test_bad_live_arguments_are_refused_naming_the_field_before_any_message(
    quiet_live: tuple[LiveSession, AkoolClient], call: Callable[[LiveSession], Any], field: str
) -> None:
    live, client = quiet_live
    sent_before = len(client.recorder.filter(EventKind.CHAT_SENT)) + len(client.recorder.filter(EventKind.COMMAND_SENT))
    with pytest.raises(errors.ValidationError) as info:
        call(live)
    assert field in info.value.field
    sent_after = len(client.recorder.filter(EventKind.CHAT_SENT)) + len(client.recorder.filter(EventKind.COMMAND_SENT))
    assert sent_after == sent_before


def test_connect_with_a_bad_mode_is_refused_before_connecting(client: AkoolClient) -> None:
    session = live_session(client)
    with pytest.raises(errors.ValidationError) as info:
        client.connect(session, mode=3)
    client.sessions.close(session.id)
    assert info.value.field == "mode" and info.value.allowed
    assert client.recorder.filter(EventKind.CONNECT_START) == []


def test_start_with_an_unknown_target_is_refused_before_starting_anything() -> None:
    import akool_lab

    with pytest.raises(errors.ValidationError) as info:
        akool_lab.start(target="cloud")
    assert info.value.field == "target" and "sim" in (info.value.allowed or "")


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["sim", "--port", "70000"], "--port"),
        (["sim", "--profile", "turbo"], "--profile"),
        (["sim", "--faults", "chunk.drop=2"], "--faults"),
        (["demo", "--sessions", "0"], "--sessions"),
        (["demo", "--target", "cloud"], "--target"),
    ],
)
def test_bad_cli_flags_exit_2_with_a_message_naming_the_flag(args: list[str], named: str) -> None:
    result = subprocess.run([sys.executable, "-m", "akool_lab.cli", *args], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert named in result.stderr
