"""The package's foundation: fast import, the error hierarchy, redaction and the event recorder."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import akool_lab
from akool_lab import errors
from akool_lab.events import Event, Recorder
from akool_lab.redaction import Secret, redact, redact_mapping, scrub

HEAVY = ("matplotlib", "ipywidgets", "starlette", "uvicorn", "anywidget", "websockets", "tqdm")


def test_import_akool_lab_imports_none_of_the_heavy_packages() -> None:
    code = f"import sys, akool_lab; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_export_resolves_public_names() -> None:
    assert akool_lab.ValidationError is errors.ValidationError
    assert akool_lab.Recorder is Recorder
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        _ = akool_lab.nope  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (1101, errors.AuthError),
        (1102, errors.AuthError),
        (1003, errors.InvalidParameterError),
        (1008, errors.NotFoundError),
        (1014, errors.NotFoundError),
        (1216, errors.NotFoundError),
        (1009, errors.PermissionDeniedError),
        (1005, errors.RateLimitError),
        (1006, errors.QuotaError),
        (1103, errors.QuotaError),
        (1104, errors.QuotaError),
        (1213, errors.QuotaError),
        (1221, errors.QuotaError),
        (1215, errors.BusyError),
        (1219, errors.SessionClosedError),
        (1201, errors.ProcessingError),
        (1205, errors.ProcessingError),
        (1211, errors.ProcessingError),
        (1214, errors.ProcessingError),
        (1217, errors.ProcessingError),
        (1218, errors.ProcessingError),
        (1999, errors.AkoolError),
    ],
)
def test_each_code_family_maps_to_its_typed_error(code: int, cls: type[errors.AkoolError]) -> None:
    err = errors.error_for_code(code, "message from service", "sessions.create")
    assert type(err) is cls
    assert (err.code, err.msg, err.endpoint) == (code, "message from service", "sessions.create")
    assert str(err).startswith(f"{code} message from service [sessions.create]: ")


def test_akool_errors_survive_pickling_for_cross_thread_and_process_reporting() -> None:
    err = errors.error_for_code(1101, "Invalid authorization", "sessions.get", http_status=200)
    back = pickle.loads(pickle.dumps(err))
    assert type(back) is errors.AuthError and back.code == 1101 and back.http_status == 200


def test_validation_error_names_the_field_and_what_is_allowed() -> None:
    err = errors.ValidationError("duration", "must be a whole number of seconds", allowed="1..3600")
    assert str(err) == "duration: must be a whole number of seconds (allowed: 1..3600)"
    assert isinstance(err, ValueError)


def test_protocol_error_truncates_the_offending_bytes() -> None:
    err = errors.ProtocolError("not JSON", b"x" * 1000)
    assert len(str(err)) < 200 and str(err).endswith("...")


def test_secrets_show_at_most_their_last_four_characters() -> None:
    key = "sk-canary-0123456789abcdef"
    assert redact(key) == "…cdef"
    assert key not in repr(Secret(key)) and key not in str(Secret(key))
    assert Secret(key).reveal() == key
    assert redact("short") == "…"
    red = redact_mapping({"agora_token": key, "nested": {"ws_url": "ws://x?token=" + key}, "agora_uid": 5})
    assert key not in json.dumps(red) and red["agora_uid"] == 5
    assert key not in scrub(f"failed with {key} inside", [key])


def test_recorder_round_trips_through_json_lines(tmp_path: Path) -> None:
    rec = Recorder()
    rec.record("chat.sent", t_ns=10, session_id="s", mid="m", idx=0, fin=True)
    rec.record("chat.recv", t_ns=25, clock="browser:1", session_id="s", mid="m", text_chars=3)
    back = Recorder.load(rec.save(tmp_path / "events.jsonl"))
    assert back.events == rec.events
    assert [e.kind for e in back.filter(session_id="s")] == ["chat.sent", "chat.recv"]


def test_recorder_is_safe_to_append_from_several_threads() -> None:
    rec = Recorder()
    seen: list[Event] = []
    rec.subscribe(seen.append)

    def work() -> None:
        for i in range(1000):
            rec.record("x", t_ns=i)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(rec) == 4000 and len(seen) == 4000


def test_record_fields_from_several_threads_while_others_read_loses_nothing_and_reads_only_events() -> None:
    rec = Recorder()
    stop = threading.Event()
    bad: list[object] = []

    def write(n: int) -> None:
        for i in range(3000):
            rec.record_fields("x", i, "kernel", None, str(n), {"i": i})

    def read() -> None:
        while not stop.is_set():
            bad.extend(e for e in rec.events if type(e) is not Event)
            rec.filter("x", mid="0")

    readers = [threading.Thread(target=read) for _ in range(2)]
    writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()
    events = rec.events
    assert not bad and len(rec) == len(events) == 12_000
    for n in range(4):  # each writer's events all there, in its order
        assert [e.data["i"] for e in events if e.mid == str(n)] == list(range(3000))


def test_record_fields_stores_the_same_event_as_record_in_order() -> None:
    rec = Recorder()
    rec.record("chat.sent", t_ns=10, session_id="s", mid="m", idx=0)
    rec.record_fields("chat.recv", 25, "kernel", "s", "m", {"text_chars": 3})
    rec.record("audio_end", t_ns=30)
    first, second, _ = rec.events
    assert (second.kind, second.t_ns, second.clock, second.session_id, second.mid) == (
        "chat.recv",
        25,
        "kernel",
        "s",
        "m",
    )
    assert dict(second.data) == {"text_chars": 3} and second.wall >= first.wall
    assert [e.kind for e in rec] == ["chat.sent", "chat.recv", "audio_end"] and len(rec) == 3
    assert rec.filter("chat.recv", mid="m") == [second] and rec.events[1] is second  # built once


def test_record_fields_hands_listeners_an_event_at_once() -> None:
    rec = Recorder()
    seen: list[Event] = []
    rec.subscribe(seen.append)
    rec.record_fields("audio_start", 5, "browser:1", None, "r1", {})
    assert [(e.kind, e.t_ns, e.clock, e.mid) for e in seen] == [("audio_start", 5, "browser:1", "r1")]
    assert rec.events == seen


def test_a_failing_listener_is_kept_not_swallowed_and_does_not_stop_recording() -> None:
    rec = Recorder()

    def broken(_: Event) -> None:
        raise RuntimeError("boom")

    rec.subscribe(broken)
    rec.record("x", t_ns=1)
    assert len(rec) == 1 and isinstance(rec.listener_errors[0], RuntimeError)
