"""Secrets: with the canary as the API key, the canary never appears in the CLI's output, the demo's output and
files, DEBUG logs of a whole session lifecycle with faults, reprs, exception texts or events files, nor in the
repr, str or headers of any object the API hands out (a walk of everything reachable from what each public call
returns or raises). The simulator refuses its admin routes without the key and binds to loopback by default.
"""

from __future__ import annotations

import asyncio
import dataclasses
import enum
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from akool_lab import errors, sim
from akool_lab.api import AkoolClient, AsyncAkoolClient
from akool_lab.events import Recorder
from tests.conftest import CANARY_KEY
from tests.reliability.conftest import AVATAR, live_session, open_stream

CLI = [sys.executable, "-m", "akool_lab.cli"]


def canary_env() -> dict[str, str]:
    return {**os.environ, "AKOOL_API_KEY": CANARY_KEY, "AKOOL_SIM_API_KEY": CANARY_KEY}


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], env=canary_env(), capture_output=True, text=True, timeout=timeout)


# --- the command line ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [
        ["--help"],
        ["sim", "--help"],
        ["demo", "--help"],
        ["reap", "--help"],
        ["--bogus"],
        ["sim", "--port", "not-a-port"],
        ["sim", "--profile", "nope", "--api-key", CANARY_KEY],
        ["sim", "--faults", "chunk.drop=7", "--api-key", CANARY_KEY],
        ["demo", "--sessions", "0"],
    ],
    ids=lambda a: " ".join(x if x != CANARY_KEY else "CANARY" for x in a),
)
def test_the_cli_never_prints_the_key_for_help_or_bad_flags(args: list[str]) -> None:
    result = run_cli(*args)
    assert CANARY_KEY not in result.stdout + result.stderr
    assert (result.returncode == 0) == (args[-1] == "--help")


@pytest.fixture
def sim_process() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """``akool-lab sim --api-key CANARY --port 0``, and its base URL from the first line."""
    process = subprocess.Popen(
        [*CLI, "sim", "--api-key", CANARY_KEY, "--port", "0", "--profile", "fast"],
        env=canary_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline()
        assert first.startswith("akool-lab sim listening on "), first
        yield process, first.rsplit(" ", 1)[1].strip()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_the_sim_command_with_an_explicit_key_never_prints_it_and_exits_cleanly_on_sigterm(
    sim_process: tuple[subprocess.Popen[str], str],
) -> None:
    process, base_url = sim_process
    answer = httpx.get(base_url + "/api/open/v3/language/list", headers={"x-api-key": CANARY_KEY}, timeout=10)
    assert answer.json()["code"] == 1000
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=20)
    assert process.returncode == 0
    assert CANARY_KEY not in out + err
    assert "generated API key" not in out


def test_the_sim_command_binds_to_loopback_by_default(sim_process: tuple[subprocess.Popen[str], str]) -> None:
    _, base_url = sim_process
    assert base_url.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/_sim/ledger"),
        ("GET", "/_sim/truth?session_id=x"),
        ("GET", "/_sim/stats"),
        ("POST", "/_sim/stats/reset"),
        ("GET", "/_sim/faults"),
        ("POST", "/_sim/faults"),
        ("POST", "/_sim/sessions/x/user-speech"),
    ],
)
@pytest.mark.parametrize(("key", "code"), [(None, 1102), ("wrong-key-0123456789", 1101)])
def test_the_admin_routes_refuse_requests_without_the_right_key(
    server: sim.SimServer, method: str, path: str, key: str | None, code: int
) -> None:
    headers = {"x-api-key": key} if key else {}
    answer = httpx.request(method, server.base_url + path, headers=headers, json={"spec": "chunk.drop=1"}, timeout=10)
    assert answer.json()["code"] == code
    assert server.set_faults(None)["spec"] == ""  # the refused POST changed nothing


def test_the_simulator_binds_to_loopback_by_default(server: sim.SimServer) -> None:
    assert server.host == "127.0.0.1"


# --- the demo ------------------------------------------------------------------------------------------------------


def test_the_demo_never_writes_the_key_to_its_output_reports_or_events(tmp_path: Path) -> None:
    out = tmp_path / "report"
    result = subprocess.run(
        [*CLI, "demo", "--out", str(out), "--sessions", "1", "--messages", "2", "--profile", "fast"],
        env=canary_env(),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert CANARY_KEY not in result.stdout + result.stderr
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name == "events.jsonl" for p in files)
    for path in files:
        assert CANARY_KEY.encode() not in path.read_bytes(), path


# --- logs, reprs, exception texts, events files ------------------------------------------------------------------


def test_debug_logs_of_a_whole_lifecycle_with_faults_never_contain_the_key_or_the_stream_token(
    client: AkoolClient, server: sim.SimServer, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    loggers = ["akool_lab", "httpx", "httpcore", "websockets", "uvicorn"]
    for name in loggers:
        caplog.set_level(logging.DEBUG, logger=name)
    server.set_faults("session.detail=503:0.3,chunk.dup=0.3,chunk.nofin=0.5,ack.drop=0.5")
    session = live_session(client)
    token = session.credentials.ws_token if session.credentials else None
    texts: list[str] = []
    with open_stream(client, session) as live:
        for i in range(3):
            try:
                live.say(f"Sentence {i}. And another one.", timeout=5)
            except errors.AkoolLabError as exc:
                texts.append(str(exc))
            try:
                live.set_params(lang="fr", timeout=0.3)
            except errors.AkoolLabError as exc:
                texts.append(str(exc))
        texts.append(repr(live))
    server.set_faults(None)
    client.recorder.save(tmp_path / "events.jsonl")
    logged = "\n".join([caplog.text, *(r.getMessage() for r in caplog.records), *texts])
    logged += (tmp_path / "events.jsonl").read_text(encoding="utf-8")
    assert caplog.records, "DEBUG logging was captured"
    assert CANARY_KEY not in logged
    assert token and token not in logged


def test_reprs_of_every_object_holding_the_key_never_show_it(
    client: AkoolClient, server: sim.SimServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from akool_lab.target import resolve_target

    monkeypatch.setenv("AKOOL_SIM_API_KEY", CANARY_KEY)
    session = live_session(client)
    with client.connect(session, mode=1) as live, resolve_target("sim") as target:
        shown = [
            repr(client),
            repr(session),
            repr(session.credentials),
            repr(live),
            repr(live.avatar_stream),
            repr(live.avatar_stream.transport),
            live.avatar_stream.transport.describe(),
            repr(server),
            repr(target),
            repr(target.sim),
            repr(client.journal),
            str(client.recorder.events),
        ]
    token = session.credentials.ws_token if session.credentials else None
    for text in shown:
        assert CANARY_KEY not in text
        assert token and token not in text


def test_exception_texts_of_the_error_paths_never_contain_the_key(server: sim.SimServer) -> None:
    texts: list[str] = []
    # The canary as a *wrong* key: the service rejects it, and the error must not echo it.
    with (
        sim.start(profile="fast", api_key="another-key-0123456789") as other,
        AkoolClient(CANARY_KEY, base_url=other.base_url, max_retries=0) as rejected,
        pytest.raises(errors.AuthError) as auth,
    ):
        rejected.languages.list()
    texts.append(str(auth.value))
    with AkoolClient(CANARY_KEY, base_url=server.base_url, max_retries=0, timeout=0.2) as slow:
        server.set_faults("language.list=slow:1000")
        with pytest.raises(errors.TimeoutError) as timeout:
            slow.languages.list()
        server.set_faults(None)
        texts.append(str(timeout.value))
    with AkoolClient(CANARY_KEY, base_url="http://127.0.0.1:9", max_retries=0) as unreachable:
        with pytest.raises(errors.ConnectionError) as refused:
            unreachable.languages.list()
        texts.append(str(refused.value))
    with AkoolClient(CANARY_KEY, base_url=server.base_url, max_retries=0) as c:
        for call in (
            lambda: c.sessions.create(AVATAR, voice_params={"elevenlabs_settings": {"api_key": CANARY_KEY, "x": 1}}),
            lambda: c.sessions.create(AVATAR, background_url=f"ftp://host/?key={CANARY_KEY}"),
            lambda: c.sessions.get("does-not-exist"),
        ):
            with pytest.raises(errors.AkoolLabError) as info:
                call()
            texts.append(str(info.value))
    with pytest.raises(errors.ValidationError) as missing:
        AkoolClient(None)
    texts.append(str(missing.value))
    for text in texts:
        assert CANARY_KEY not in text


def test_a_saved_and_reloaded_events_file_never_contains_the_key(client: AkoolClient, tmp_path: Path) -> None:
    with client.connect(live_session(client), mode=1) as live:
        live.say("Hello.", timeout=10)
        live.set_params(vparams={"speed": 1.1})
    path = client.recorder.save(tmp_path / "events.jsonl")
    assert CANARY_KEY not in path.read_text(encoding="utf-8")
    assert len(Recorder.load(path)) == len(client.recorder)


# --- every object the API hands out ----------------------------------------------------------------------------

#: Plain values: their text is the data itself (a token *is* its text), so only objects' reprs are judged.
VALUES = (str, bytes, bytearray, int, float, bool, type(None), enum.Enum, Path)
#: Objects that would show the request headers (the key) to whoever prints them: the API must never hand one out.
HTTPX_OBJECTS = (httpx.Request, httpx.Response, httpx.Headers, httpx.Client, httpx.AsyncClient)


def public_attributes(obj: object) -> Iterator[tuple[str, object]]:
    """The public data attributes of one of the library's objects (fields, instance dict, slots; not properties)."""
    names: list[str] = []
    if dataclasses.is_dataclass(obj):
        names += [f.name for f in dataclasses.fields(obj)]
    names += list(getattr(obj, "__dict__", {}))
    for cls in type(obj).__mro__:
        slots = getattr(cls, "__slots__", ())
        names += [slots] if isinstance(slots, str) else list(slots)
    for name in dict.fromkeys(names):
        if not name.startswith("_") and hasattr(obj, name):
            yield name, getattr(obj, name)


def walk(root: object, where: str) -> Iterator[tuple[str, object]]:
    """Every object reachable from ``root`` through public attributes and containers, with its path.

    The library's own objects are walked into; anything else (asyncio, threads...) is judged by its repr only.
    """
    seen: set[int] = set()
    stack: list[tuple[str, object, int]] = [(where, root, 0)]
    while stack:
        path, obj, depth = stack.pop()
        if id(obj) in seen or depth > 8:
            continue
        seen.add(id(obj))
        yield path, obj
        if isinstance(obj, VALUES):
            continue
        if isinstance(obj, Mapping):
            stack += [(f"{path}[{k!r}]", v, depth + 1) for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            stack += [(f"{path}[{i}]", v, depth + 1) for i, v in enumerate(obj)]
        elif type(obj).__module__.startswith("akool_lab"):
            stack += [(f"{path}.{name}", value, depth + 1) for name, value in public_attributes(obj)]
            if isinstance(obj, BaseException):
                stack.append((f"{path}.args", obj.args, depth + 1))


def leaks(handed: Mapping[str, object], secrets: list[str]) -> list[str]:
    """Where a secret shows in a repr or str, the key sits in a mapping (headers...), or an httpx object is exposed."""
    found = []
    for name, root in handed.items():
        for path, obj in walk(root, name):
            if isinstance(obj, HTTPX_OBJECTS):
                found.append(f"{path}: an {type(obj).__name__} (its request headers hold the key)")
            elif isinstance(obj, Mapping):
                if any(isinstance(v, str) and CANARY_KEY in v for v in obj.values()):
                    found.append(f"{path}: holds the API key")
            elif not isinstance(obj, (*VALUES, list, tuple, set, frozenset)):  # containers: judged by their items
                text = repr(obj) + str(obj)
                found += [f"{path}: {type(obj).__name__} shows {s[:6]}..." for s in secrets if s in text]
    return found


def call(calls: dict[str, object], name: str, fn: Callable[[], object]) -> None:
    """Record what ``fn`` returns, or the library error it raises."""
    try:
        calls[name] = fn()
    except errors.AkoolLabError as exc:
        calls[name + " (raised)"] = exc


def test_no_object_the_api_hands_out_shows_the_key_or_a_token(
    client: AkoolClient, server: sim.SimServer, tmp_path: Path
) -> None:
    handed: dict[str, object] = {"client": client}
    raw = client.with_raw_response
    session = client.sessions.create(AVATAR, duration=60, mode_type=1)
    handed["sessions.create"] = session
    call(handed, "raw sessions.get", lambda: raw.sessions.get(session.id))
    call(handed, "sessions.wait_until_live", lambda: client.sessions.wait_until_live(session.id, timeout=10))
    call(handed, "raw sessions.wait_until_live", lambda: raw.sessions.wait_until_live(session.id, timeout=10))
    for view_name, view in (("", client), ("raw ", raw)):
        call(handed, view_name + "sessions.list", lambda v=view: v.sessions.list())  # type: ignore[misc]
        call(handed, view_name + "sessions.iter", lambda v=view: list(v.sessions.iter()))  # type: ignore[misc]
        call(handed, view_name + "avatars.list", lambda v=view: v.avatars.list())  # type: ignore[misc]
        call(handed, view_name + "avatars.get", lambda v=view: v.avatars.get(AVATAR))  # type: ignore[misc]
        call(handed, view_name + "voices.list", lambda v=view: v.voices.list())  # type: ignore[misc]
        call(handed, view_name + "languages.list", lambda v=view: v.languages.list())  # type: ignore[misc]
        call(handed, view_name + "knowledge.list", lambda v=view: v.knowledge.list())  # type: ignore[misc]
    knowledge = client.knowledge.create(name="faq", prompt="Be brief.")
    handed["knowledge.create"] = knowledge
    call(handed, "raw knowledge.get", lambda: raw.knowledge.get(knowledge.id))
    call(handed, "raw knowledge.update", lambda: raw.knowledge.update(knowledge.id, prologue="Hi"))
    call(handed, "raw knowledge.delete", lambda: raw.knowledge.delete(knowledge.id))
    call(handed, "raw sessions.get of an unknown id", lambda: raw.sessions.get("does-not-exist"))
    call(handed, "sessions.create with the key in voice_params", lambda: client.sessions.create(
        AVATAR, voice_params={"elevenlabs_settings": {"api_key": CANARY_KEY, "x": 1}}
    ))  # fmt: skip
    with AkoolClient(CANARY_KEY, base_url="http://127.0.0.1:9", max_retries=0) as unreachable:
        call(handed, "unreachable service", lambda: unreachable.with_raw_response.languages.list())
    with client.connect(session, mode=1, close_session=False) as live:
        handed["connect"] = live
        handed["live.avatar_stream"] = live.avatar_stream
        handed["live.avatar_stream.transport"] = live.avatar_stream.transport  # a property: the walk skips those
        call(handed, "live.say", lambda: live.say("Hello there.", timeout=10))
        call(handed, "live.set_params", lambda: live.set_params(lang="fr", timeout=5))
    call(handed, "raw sessions.close", lambda: raw.sessions.close(session.id))
    handed["recorder"] = client.recorder
    handed["events"] = client.recorder.events
    handed["journal"] = client.journal

    async def async_calls() -> None:
        async with AsyncAkoolClient(CANARY_KEY, base_url=server.base_url) as aio:
            handed["async client"] = aio
            created = await aio.sessions.create(AVATAR, duration=60, mode_type=1)
            handed["async sessions.create"] = created
            handed["async raw sessions.get"] = await aio.with_raw_response.sessions.get(created.id)
            handed["async raw languages.list"] = await aio.with_raw_response.languages.list()
            await aio.sessions.close(created.id)

    asyncio.run(async_calls())
    assert any(name.endswith("(raised)") for name in handed), "the error paths were reached"
    tokens = [s.credentials.ws_token for s in (session,) if s.credentials and s.credentials.ws_token]
    assert tokens, "the session has a stream token to look for"
    assert leaks(handed, [CANARY_KEY, *tokens]) == []
    reached = {type(obj).__name__ for name, root in handed.items() for _, obj in walk(root, name)}
    assert reached >= {
        "AkoolClient", "AsyncAkoolClient", "RawResources", "Sessions", "Session", "Page", "RawResponse", "Avatar",
        "AvatarDetail", "Voice", "Language", "Knowledge", "LiveSession", "AvatarStream", "Reply", "Event", "Recorder",
        "Journal", "NotFoundError", "ValidationError", "ConnectionError",
    }, "the walk reached every kind of object the API hands out"  # fmt: skip
    # the walk reached the raw responses' header maps, where the key would be if it were not redacted
    raw_headers = [obj for path, obj in walk(handed["raw sessions.get"], "raw") if path.endswith(".request_headers")]
    assert raw_headers and all(h["x-api-key"] == "…" + CANARY_KEY[-4:] for h in raw_headers)  # type: ignore[index]


def test_the_leak_walk_finds_a_key_or_an_httpx_object_wherever_it_hides() -> None:
    @dataclasses.dataclass
    class Holder:  # stands in for a future object that would leak
        headers: dict[str, str]
        response: object

    Holder.__module__ = "akool_lab.fake"
    leaky = Holder({"x-api-key": CANARY_KEY}, httpx.Response(200, request=httpx.Request("GET", "http://x")))
    assert sorted(found.split(":")[0] for found in leaks({"holder": [leaky]}, [CANARY_KEY])) == [
        "holder[0]",  # its repr
        "holder[0].headers",  # a mapping holding the key
        "holder[0].response",  # an httpx object
    ]
