"""Live sessions against every dialect of the simulator, on real sockets: the client must work wherever AKool's own
clients work.

Each dialect (:data:`akool_lab.sim.DIALECTS`) answers the way one of AKool's official clients accepts: reply
chunks without ``idx`` or without ``fin``, no text echoed in mode 1, acks without the command's ``mid`` or of
another ``type``, a greeting at join, the demo's TRTC credential names. Every test here runs once per dialect,
through the public API a notebook uses (``akool_lab.start`` and ``AkoolClient.connect``), on real sockets.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

import akool_lab
from akool_lab import sim
from akool_lab.api import AkoolClient
from akool_lab.live import LiveSession
from akool_lab.sim import DIALECTS

AVATAR = "dvp_Tristan_cloth2_1080P"
#: Per call: the fast profile answers within milliseconds, so a client that cannot read a dialect fails in
#: seconds instead of the default timeouts.
TIMEOUT = 8.0
SPEECH = "Hello from the dialect tests. This is the second sentence. And here is the third one."
#: About 3,000 characters: several chunks on the way out (960-byte budget) and dozens of reply chunks.
LONG_SPEECH = " ".join(f"Sentence {i} of a long speech, which the avatar says word for word." for i in range(45))


@pytest.fixture(scope="module", params=DIALECTS)
def server(request: pytest.FixtureRequest) -> Iterator[sim.SimServer]:
    """One simulator per dialect (fast profile)."""
    with sim.start(profile="fast", seed=11, dialect=request.param) as running:
        yield running


@pytest.fixture
def client(server: sim.SimServer) -> Iterator[AkoolClient]:
    with AkoolClient(server.api_key, base_url=server.base_url) as c:
        yield c


def open_live(client: AkoolClient, mode: int, dialect: str) -> LiveSession:
    session = client.sessions.create(AVATAR, duration=120, mode_type=mode)
    client.sessions.wait_until_live(session.id, timeout=10)
    live = client.connect(session, mode=mode)
    greeted(live, dialect)
    return live


def greeted(live: LiveSession, dialect: str) -> None:
    """With dialect ``greeting``, wait until the greeting's first chunk has arrived (it is sent right behind the
    handshake). A message sent before that cannot be told apart from the greeting by any client: the greeting's
    text could be its answer. Sent after it, the message's reply must never be the greeting."""
    if "greeting" not in dialect:
        return
    deadline = time.monotonic() + TIMEOUT
    while not any(entry.role == "avatar" for entry in live.transcript):
        assert time.monotonic() < deadline, "the greeting never arrived"
        time.sleep(0.002)


def dialect_of(server: sim.SimServer) -> str:
    return server.dialect()


def assert_spoken(reply: Any, text: str, dialect: str) -> None:
    """The reply to ``say(text)``: complete, with the text spoken (which ``no-echo`` does not send back)."""
    assert reply.complete, reply.reason
    if "no-echo" in dialect:
        assert reply.text in ("", text)
        assert reply.timings.speak_ms is not None
    else:
        assert reply.text == text


def test_start_and_say_in_mode_1(monkeypatch: pytest.MonkeyPatch, server: sim.SimServer) -> None:
    dialect = dialect_of(server)
    monkeypatch.setenv("AKOOL_SIM_DIALECT", dialect)  # akool_lab.start starts its own simulator
    with akool_lab.start(target="sim", profile="fast", mode_type=1) as live:
        greeted(live, dialect)
        reply = live.say(SPEECH, timeout=TIMEOUT)
    assert_spoken(reply, SPEECH, dialect)


def test_ask_in_mode_2_gets_the_answer_to_the_question(client: AkoolClient, server: sim.SimServer) -> None:
    with open_live(client, mode=2, dialect=dialect_of(server)) as live:
        reply = live.ask("What is a lighthouse for?", timeout=TIMEOUT)
    assert reply.complete, reply.reason
    assert "lighthouse" in reply.text and reply.text != "What is a lighthouse for?"
    assert "welcome" not in reply.text.lower()  # never the greeting of dialect `greeting`


def test_set_params_is_acknowledged_and_the_next_say_works(client: AkoolClient, server: sim.SimServer) -> None:
    with open_live(client, mode=1, dialect=dialect_of(server)) as live:
        ack = live.set_params(lang="de-DE", timeout=TIMEOUT)
        reply = live.say(SPEECH, timeout=TIMEOUT)
        sid = live.session_id
    assert ack.ok and ack.cmd == "set-params"
    assert_spoken(reply, SPEECH, dialect_of(server))
    assert server.truth(sid or "")["messages"][reply.mid]["settings"]["lang"] == "de-DE"


def test_interrupt_stops_the_speech_and_the_session_stays_usable(client: AkoolClient, server: sim.SimServer) -> None:
    with open_live(client, mode=1, dialect=dialect_of(server)) as live:
        sid = live.session_id or ""
        outcome: list[Any] = []

        def speak() -> None:
            try:
                outcome.append(live.say(LONG_SPEECH * 3, timeout=TIMEOUT))
            except Exception as exc:  # the assertion below shows it
                outcome.append(exc)

        speaker = threading.Thread(target=speak)
        speaker.start()
        deadline = time.monotonic() + TIMEOUT
        while not _speaking(server, sid) and time.monotonic() < deadline:
            time.sleep(0.005)
        assert _speaking(server, sid), "the avatar never started speaking"
        ack = live.interrupt(timeout=TIMEOUT)
        speaker.join(TIMEOUT + 2)
        after = live.say(SPEECH, timeout=TIMEOUT)
    assert ack.ok
    assert len(outcome) == 1 and not isinstance(outcome[0], Exception), outcome
    assert outcome[0].interrupted and not outcome[0].complete
    assert_spoken(after, SPEECH, dialect_of(server))


def _speaking(server: sim.SimServer, session_id: str) -> bool:
    """Whether the simulator has sent ``audio_start`` for a message (the greeting excluded)."""
    return any(m["ttfa_ms"] is not None for m in server.truth(session_id)["messages"].values())


def test_a_long_multi_chunk_say_comes_back_whole(client: AkoolClient, server: sim.SimServer) -> None:
    with open_live(client, mode=1, dialect=dialect_of(server)) as live:
        reply = live.say(LONG_SPEECH, timeout=TIMEOUT)
        sid = live.session_id
    assert reply.timings.chunks >= 3
    assert_spoken(reply, LONG_SPEECH, dialect_of(server))
    assert server.truth(sid or "")["messages"][reply.mid]["text"] == LONG_SPEECH
