"""The main job (``akool-lab demo``, command line in :mod:`akool_lab.cli.demo`).

It walks the whole lifecycle of a streaming-avatar session (avatars, voices, languages, create, wait until live,
connect, set-params, say, ask, interrupt, close), then runs a latency experiment, writes the report (events,
summary, figures, ``report.html``) and prints the summary. By default everything runs on the embedded simulator
with the ``realistic`` profile (timings like a real service's; about 40 s in all); ``--target real`` uses AKool
with the key from the environment, through LiveKit (checked before any session is created).

The experiment stops each message at ``audio_start`` (then interrupts it): time to first reply and to audio are
measured without paying for the speech.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO, TypeVar

from akool_lab.target import DEFAULT_AVATAR, DEFAULT_PROFILE, Target, choose_stream_type, resolve_target

if TYPE_CHECKING:
    from akool_lab.api import AkoolClient
    from akool_lab.metrics import ExperimentResult

__all__ = ["DemoOutcome", "run_demo"]

T = TypeVar("T")

LONG_SPEECH = " ".join(
    f"This is sentence number {i} of a long speech that the demo interrupts before it ends." for i in range(1, 25)
)


class _Printer:
    """Prints the demo's steps, each with how long it took (wall time of the step, for the reader only)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.step = 0

    def line(self, text: str = "") -> None:
        print(text, file=self.out, flush=True)

    def run(self, title: str, fn: Callable[[], T], describe: Callable[[T], str]) -> T:
        self.step += 1
        started = time.perf_counter()
        value = fn()
        took = (time.perf_counter() - started) * 1000
        self.line(f"{self.step:>2}. {title:<34} {describe(value)}  ({took:.0f} ms)")
        return value


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f} ms"


@dataclass
class DemoOutcome:
    """What the demo leaves: the report, the experiment's result and what failed (empty when all went well).

    Attributes:
        report: the path of ``report.html``.
        result: the latency experiment's result.
        failures: the failed messages by kind (``"2 messages incomplete: session ended"``) and failed sessions.
        elapsed_s: the demo's wall time.
    """

    report: Path
    result: ExperimentResult
    failures: list[str] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def ok(self) -> bool:
        """Whether every message and session succeeded."""
        return not self.failures


def _lifecycle(
    client: AkoolClient, target: Target, avatar_id: str | None, stream_type: str | None, p: _Printer
) -> None:
    avatars = p.run(
        "list avatars",
        lambda: client.avatars.list(),
        lambda page: f"{page.count} avatars, e.g. " + ", ".join(a.name or a.avatar_id for a in list(page)[:3]),
    )
    chosen = avatar_id or next((a.avatar_id for a in avatars if a.available is not False), DEFAULT_AVATAR)
    p.run(
        "list streaming voices",
        lambda: client.voices.list(type=2, support_stream=True, size=100),
        lambda page: f"{page.count} voices",
    )
    p.run("list languages", lambda: client.languages.list(), lambda langs: f"{len(langs)} languages")
    session = p.run(
        "create a session",
        lambda: client.sessions.create(chosen, duration=120, mode_type=1, stream_type=stream_type),
        lambda s: f"{s.id} on {chosen} (status {int(s.status)}, {s.stream_type})",
    )
    try:
        p.run(
            "wait until it is live",
            lambda: client.sessions.wait_until_live(session.id, timeout=120),
            lambda s: f"status {int(s.status)} ({s.status.name.lower()})",
        )
        with client.connect(session, mode=1) as live:
            p.line(f"    connected through {live.avatar_stream.transport.describe().split('(')[0]}")
            p.run(
                "set-params (language, speed)",
                lambda: live.set_params(lang="en", vparams={"speed": 1.0}),
                lambda a: f"ack {a.code} {a.msg} in {a.ack_ms:.1f} ms",
            )
            p.run(
                "say (mode 1, retelling)",
                lambda: live.say("Hello! I am a streaming avatar, and this is the akool_lab demo."),
                lambda r: (
                    f"ttfr {_ms(r.timings.ttfr_ms)}, ttfa {_ms(r.timings.ttfa_ms)}, spoke {_ms(r.timings.speak_ms)}"
                ),
            )
            p.run(
                "ask (mode 2, dialogue)",
                lambda: live.ask("What can you tell me about latency?"),
                lambda r: f"ttfr {_ms(r.timings.ttfr_ms)}: {r.text[:50]!r}...",
            )

            def interrupt_long_speech() -> Any:
                from akool_lab.events import EventKind
                from akool_lab.live import io_loop

                def audio_starts() -> int:
                    return len(live.recorder.filter(EventKind.AUDIO_START, session_id=session.id))

                before = audio_starts()
                pending = io_loop().submit(live.avatar_stream.say(LONG_SPEECH))
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and audio_starts() == before:
                    time.sleep(0.005)  # interrupt once the avatar has started to speak
                ack = live.interrupt()
                return ack, pending.result(60)

            p.run(
                "interrupt a long speech",
                interrupt_long_speech,
                lambda pair: (
                    f"ack in {pair[0].ack_ms:.1f} ms; reply interrupted={pair[1].interrupted} "
                    f"after {len(pair[1].text)} of {len(LONG_SPEECH)} characters"
                ),
            )
            p.line(f"    transcript: {len(live.transcript)} entries ({', '.join(e.role for e in live.transcript)})")
        p.run(
            "close the session",
            lambda: client.sessions.get(session.id),
            lambda s: f"status {int(s.status)} ({s.status.name.lower()})",
        )
    finally:
        client.close_all()
    if target.sim is not None:
        entry = next(e for e in target.sim.ledger()["sessions"] if e["session_id"] == session.id)
        p.line(
            f"    ledger: charged {entry['charged']} credits for {entry['duration_s']} s, refunded "
            f"{entry['refunded']} for unused time (net {entry['net']})"
        )


def run_demo(
    *,
    out: str | Path = "report",
    target: str = "sim",
    sessions: int = 3,
    messages: int = 8,
    profile: str = DEFAULT_PROFILE,
    seed: int = 0,
    avatar_id: str | None = None,
    stdout: TextIO | None = None,
    progress: bool = True,
    faults: str | None = None,
) -> DemoOutcome:
    """Run the demo (see the module docstring); returns its :class:`DemoOutcome` (report path, result, failures).

    ``faults``: a simulator fault plan (``akool-lab sim --faults`` grammar), to see how failures are reported.
    """
    p = _Printer(stdout or sys.stdout)
    started = time.perf_counter()
    tgt = resolve_target(target, profile=profile, seed=seed, faults=faults)
    try:
        # Checked before anything is created: on AKool, a session whose data channel Python cannot join costs
        # credits for nothing.
        stream_type = choose_stream_type(tgt.kind)
        where = "the embedded simulator" if tgt.kind == "sim" else "AKool"
        p.line(f"akool-lab demo on {where}: {tgt.label} ({tgt.base_url or 'default base URL'})")
        p.line()
        p.line("The lifecycle of one session:")
        with tgt.client() as client:
            _lifecycle(client, tgt, avatar_id, stream_type, p)
            p.line()
            p.line(
                f"A latency experiment: {sessions} sessions x {messages} messages (mode 1, say; each message is "
                "interrupted once the avatar starts speaking, so the run measures without paying for speech):"
            )
            from akool_lab.metrics import run_experiment

            result = run_experiment(
                client,
                sessions=sessions,
                messages_per_session=messages,
                concurrency=min(sessions, 3),
                mode=1,
                warmup=0,
                until="audio_start",
                avatar_id=avatar_id or DEFAULT_AVATAR,
                progress=progress,
                target=tgt,
                stream_type=stream_type,
                out=out,
                title="akool_lab demo",
            )
    finally:
        tgt.close()
    report = Path(out) / "report.html"
    failures = result.failures() + [e for e in result.errors if e.startswith(("closing session", "close_all"))]
    elapsed = time.perf_counter() - started
    p.line()
    p.line(result.report_text())
    p.line()
    p.line(f"Report: {report}")
    p.line(f"Done in {elapsed:.1f} s; every session created was closed.")
    return DemoOutcome(report, result, failures, elapsed)
