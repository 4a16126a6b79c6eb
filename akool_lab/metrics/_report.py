"""Reports: a run written to a directory (events, summary, figures, a self-contained HTML page), and comparisons.

A report directory holds:

- ``events.jsonl``: every raw event (the source of truth: everything else is derived from it);
- ``params.json``: the run's parameters, the target (kind, base URL, profile and seed; never a key), its label
  (``"simulated · profile realistic · seed 0"`` or ``"AKool"``), its status (``"complete"``, or ``"running"`` /
  ``"interrupted"`` for a partial run) and the versions used;
- ``summary.csv``: the message timings summary (one row per group and metric);
- one PNG per figure;
- ``report.html``: all of the above in one self-contained page (figures embedded as base64 PNG).

Nothing secret is written: events never carry secrets (a rule of the recorder), parameters are passed through
:func:`~akool_lab.redaction.redact_mapping`, and the target is reduced to its kind and a base URL without
credentials or query string.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import os
import platform
import sys
import threading
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from akool_lab.events import Event, Recorder
from akool_lab.redaction import redact_mapping

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from akool_lab.metrics._stats import SummaryTable

__all__ = ["EventSink", "default_run_dir", "target_info", "utc_now", "versions", "write_comparison", "write_report"]

EVENTS_FILE = "events.jsonl"
PARAMS_FILE = "params.json"
SUMMARY_FILE = "summary.csv"
REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.html"
COMPARISON_CSV = "comparison.csv"
SIGNIFICANCE_CSV = "significance.csv"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #444; font-size: 0.9em; max-width: 900px; }
pre { background: #f8f8f8; padding: 0.8em; white-space: pre-wrap; overflow-wrap: anywhere; }
td.text, th.text { text-align: left; white-space: normal; overflow-wrap: anywhere; max-width: 700px; }
.errors li { color: #a00; }
.meta { color: #555; }
.badge { display: inline-block; padding: 2px 10px; border-radius: 10px; font-weight: 600; font-size: 0.9em; }
.badge.sim { background: #fff3cd; color: #7a5a00; border: 1px solid #e8c55a; }
.badge.real { background: #d8f0dc; color: #1d5e2a; border: 1px solid #7cc68a; }
.headline { font-size: 1.05em; line-height: 1.5; background: #f6f8fa; padding: 0.8em 1em; border-left: 4px solid #4a7bd0; }
.partial { background: #fdecea; border: 1px solid #e0a19a; padding: 0.6em 1em; color: #7a1f14; }
"""


def _safe_url(url: str | None) -> str | None:
    """``url`` without user info, query or fragment (where a key could hide)."""
    if not url:
        return url
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def target_info(target: Any) -> dict[str, Any]:
    """What a report says about the target: kind, base URL, and the simulator's profile and seed (never a key).

    ``target``: an :class:`akool_lab.target.Target`, a mapping with ``kind``/``base_url``/``profile``/``seed``, a
    client (its ``base_url``), or ``None``. The ``label`` is :func:`akool_lab.target.describe_target`'s.
    """
    if target is None:
        info: dict[str, Any] = {"kind": "unknown", "base_url": None}
    elif isinstance(target, Mapping):
        info = {"kind": str(target.get("kind", "unknown")), "base_url": target.get("base_url")}
        info.update({k: target[k] for k in ("profile", "seed") if target.get(k) is not None})
    else:
        info = {"kind": str(getattr(target, "kind", "unknown")), "base_url": getattr(target, "base_url", None)}
        info.update({k: getattr(target, k) for k in ("profile", "seed") if getattr(target, k, None) is not None})
    if info["kind"] != "sim":
        info.pop("profile", None)
        info.pop("seed", None)
    info["base_url"] = _safe_url(str(info["base_url"])) if info["base_url"] else None
    from akool_lab.target import describe_target

    info["label"] = describe_target(info)
    return info


def default_run_dir() -> Path:
    """A new folder for a run's events: ``$AKOOL_LAB_HOME/runs/<date>-<time>-<pid>-<n>`` (else under the user data
    dir, beside the session journal); render it with ``akool-lab report DIR``."""
    global _RUNS
    home = os.environ.get("AKOOL_LAB_HOME")
    if home:
        base = Path(home).expanduser()
    else:
        import platformdirs

        base = Path(platformdirs.user_data_dir("akool_lab"))
    with _RUNS_LOCK:
        _RUNS += 1
        number = _RUNS
    stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    return base / "runs" / f"{stamp}-{os.getpid()}-{number}"


_RUNS = 0
_RUNS_LOCK = threading.Lock()


def utc_now() -> str:
    """The current date and time in UTC, ISO 8601 to the second (``2026-11-29T10:40:12Z``)."""
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _write_atomic(path: Path, text: str) -> None:
    # A crash in the middle of a rewrite must never leave a half file where a whole one was.
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _event_line(event: Event) -> str:
    return json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":"), default=str) + "\n"


class EventSink:
    """A run's ``events.jsonl`` written as the run goes: each event appended and flushed as it is recorded, so that
    whatever the process dies of (an exception, Ctrl+C, SIGKILL, a crashed kernel), every event recorded until then
    is on disk. ``params.json`` says ``"status": "running"`` until :meth:`close`.

    Subscribe :meth:`write` to the run's :class:`~akool_lab.events.Recorder`; it is called on the recording thread,
    and only writes one line (no fsync: the data is in the operating system's hands once written, which survives
    the process).
    """

    def __init__(self, directory: str | os.PathLike[str], *, params: Mapping[str, Any], target: Any, title: str):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._meta = _meta(title, params, target_info(target), [], status="running")
        _write_atomic(self.directory / PARAMS_FILE, _json(self._meta))
        self._fh: io.TextIOWrapper | None = (self.directory / EVENTS_FILE).open("w", encoding="utf-8")
        self.count = 0

    def write(self, event: Event) -> None:
        """Append ``event`` and flush."""
        line = _event_line(event)
        with self._lock:
            if self._fh is None:
                return  # the run has ended: its report is written from the recorder
            self._fh.write(line)
            self._fh.flush()
            self.count += 1

    def close(
        self, status: str, *, params: Mapping[str, Any] | None = None, errors: Sequence[str] | None = None
    ) -> None:
        """Stop writing and record the run's ``status`` (``"complete"`` or ``"interrupted"``), and its final
        ``params`` and ``errors`` when given, in ``params.json``."""
        with self._lock:
            if self._fh is not None:
                self._fh.close()
                self._fh = None
        self._meta["status"] = status
        if params is not None:
            self._meta["params"] = _jsonable(redact_mapping(dict(params)))
        if errors is not None:
            self._meta["errors"] = list(errors)
        _write_atomic(self.directory / PARAMS_FILE, _json(self._meta))


def _json(meta: Mapping[str, Any]) -> str:
    return json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n"


def _meta(
    title: str,
    params: Mapping[str, Any] | None,
    target: Mapping[str, Any],
    errors: Sequence[str],
    *,
    status: str,
    run_versions: Mapping[str, str] | None = None,
    counts: Mapping[str, int] | None = None,
) -> dict[str, Any]:
    return {
        "title": title,
        "label": target.get("label") or target_info(target)["label"],
        "status": status,
        "params": _jsonable(redact_mapping(dict(params or {}))),
        "target": dict(target),
        "versions": dict(run_versions or versions()),
        "errors": list(errors),
        "counts": dict(counts or {}),
    }


def versions() -> dict[str, str]:
    """The versions a run used: akool_lab, Python, httpx, matplotlib, numpy and the platform."""
    from akool_lab import __version__

    out = {"akool_lab": __version__, "python": sys.version.split()[0], "platform": platform.platform()}
    for name in ("httpx", "matplotlib", "numpy"):
        try:
            module = __import__(name)
            out[name] = str(getattr(module, "__version__", "?"))
        except ImportError:
            out[name] = "not installed"
    return out


def _png(fig: Figure, dpi: int = 100) -> bytes:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(fig)  # attaches an Agg canvas to this figure only: no pyplot, no global backend
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=dpi)
    return out.getvalue()


def _write_figures(directory: Path, figures: Mapping[str, Figure], prefix: str = "") -> dict[str, bytes]:
    pngs = {}
    for name, fig in figures.items():
        data = _png(fig)
        (directory / f"{prefix}{name}.png").write_bytes(data)
        pngs[name] = data
    return pngs


#: What each standard figure shows, in words (the report's captions).
CAPTIONS: dict[str, str] = {
    "ttfr_histogram": "Time to first reply: how many messages got their first reply chunk after each delay "
    "(from the message's last chunk sent to the avatar's first chunk received).",
    "ttfa_histogram": "Time to audio: how many messages waited each delay from being sent until the avatar "
    "started speaking (audio_start).",
    "latency_cdf": "The share of messages answered within each delay (cumulative): the further left a curve, "
    "the faster; where a curve crosses 0.5 is the median, 0.9 the p90.",
    "message_timeline": "Every message on one time axis, one row per session: when it was sent, when its reply "
    "started and ended, and when the avatar spoke.",
    "session_timeline": "Each session's life: create, queue until live, connect, messages, close.",
    "http_latency": "How long each REST call took, by endpoint.",
    "pacing_cost": "How the length of a message (bytes, sent in paced chunks) adds to the time to send it.",
}


def _figures_html(pngs: Mapping[str, bytes]) -> str:
    parts = []
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode("ascii")
        caption = CAPTIONS.get(name) or CAPTIONS.get(name.removeprefix("compare_")) or name.replace("_", " ")
        parts.append(
            f'<figure><img alt="{escape(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    return "\n".join(parts)


def _kv_table(data: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{escape(str(k))}</th><td>{escape(json.dumps(v, default=str) if not isinstance(v, str) else v)}</td></tr>"
        for k, v in data.items()
    )
    return f"<table>{rows}</table>"


def _page(title: str, body: str) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{_CSS}</style></head><body>\n<h1>{escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _fmt_ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} ms" if value >= 100 else f"{value:.1f} ms"


def headline(messages: Sequence[Any], failure_text: Sequence[str] = ()) -> str:
    """The report's headline in words: time to first reply and to audio (p50, p90, with 95% intervals) and failures.

    >>> headline([])
    'No message was measured.'
    """
    from akool_lab.metrics._compare import bootstrap_interval
    from akool_lab.metrics._stats import summarize

    measured = [m for m in messages if not m.warmup]
    if not measured:
        return "No message was measured."
    parts = []
    for metric, name in (("ttfr_ms", "Time to first reply"), ("ttfa_ms", "Time to audio")):
        values = [getattr(m, metric) for m in measured]
        stats = summarize(values)
        if not stats.n:
            parts.append(f"{name}: not measured.")
            continue
        spans = []
        for q, value in ((50, stats.p50), (90, stats.p90)):
            # The median's interval is the summary table's (the same numbers in both places); p90's is bootstrapped
            # the same way (seeded).
            median_ci = (
                (stats.ci_low, stats.ci_high) if stats.ci_low is not None and stats.ci_high is not None else None
            )
            interval = median_ci if q == 50 else bootstrap_interval(values, q)
            ci = f" (95% CI {_fmt_ms(interval[0])} to {_fmt_ms(interval[1])})" if interval else ""
            spans.append(f"p{q} {_fmt_ms(value)}{ci}")
        parts.append(f"{name}: {', '.join(spans)}, over {stats.n} messages.")
    sessions = len({m.session_id for m in measured if m.session_id})
    failed = "; ".join(failure_text) if failure_text else "no message failed"
    parts.append(f"{len(measured)} messages in {sessions} sessions; {failed}.")
    return " ".join(parts)


def _prompts_html(prompts: Sequence[Any]) -> str:
    rows = "".join(
        f"<tr><td>{i}</td><td>{len(str(text).split())}</td><td>{len(str(text))}</td>"
        f'<td class="text">{escape(str(text))}</td></tr>'
        for i, text in enumerate(prompts)
    )
    return (
        f'<table><thead><tr><th>#</th><th>words</th><th>chars</th><th class="text">text</th></tr></thead>{rows}</table>'
    )


def write_report(
    directory: str | os.PathLike[str],
    recorder: Recorder,
    *,
    params: Mapping[str, Any] | None = None,
    target: Any = None,
    figures: Mapping[str, Figure] | None = None,
    errors: Sequence[str] = (),
    title: str = "akool_lab latency report",
    run_versions: Mapping[str, str] | None = None,
    status: str = "complete",
) -> Path:
    """Write the report of ``recorder``'s events to ``directory``; returns the path of ``report.html``.

    Args:
        params: the run's parameters (redacted before writing).
        target: where the run went (see :func:`target_info`); its label heads the report.
        figures: the figures to include (default: :func:`~akool_lab.metrics.standard_figures` of the events).
        errors: failures to list (sessions that failed, messages that failed).
        run_versions: the versions recorded with the run (default: this environment's, see :func:`versions`).
        status: ``"complete"``, or ``"running"``/``"interrupted"`` for a partial run (the report says so).
    """
    from akool_lab.metrics._failures import failure_counts, failure_lines, plural
    from akool_lab.metrics._plots import standard_figures
    from akool_lab.metrics._records import command_timings, http_timings, message_timings, session_timings
    from akool_lab.metrics._result import measured_metrics
    from akool_lab.metrics._stats import summary_table

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    events = recorder.events  # one snapshot: every file describes the same events
    tmp = out / (EVENTS_FILE + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.writelines(_event_line(e) for e in events)
    os.replace(tmp, out / EVENTS_FILE)
    messages = message_timings(events)
    sessions = session_timings(events)
    commands = command_timings(events)
    http = http_timings(events)
    info = target_info(target)
    failures = failure_lines(failure_counts(events))
    counts = {
        "events": len(events),
        "sessions": len(sessions),
        "messages": len(messages),
        "commands": len(commands),
        "http": len(http),
    }
    meta = _meta(title, params, info, errors, status=status, run_versions=run_versions, counts=counts)
    meta["failures"] = failures
    _write_atomic(out / PARAMS_FILE, _json(meta))
    summary = summary_table(messages, measured_metrics(messages, until=(params or {}).get("until")))
    (out / SUMMARY_FILE).write_text(summary.to_csv(), encoding="utf-8")
    session_summary = summary_table(
        sessions, metrics=("create_ms", "live_ms", "connect_ms", "first_reply_ms", "close_ms"), by=()
    )
    command_summary = summary_table(commands, metrics=("ack_ms", "interrupt_to_audio_end_ms"), by=("cmd",))
    http_summary = summary_table(http, metrics=("ms",), by=("endpoint",))
    pngs = _write_figures(out, figures if figures is not None else standard_figures(messages, sessions, http))
    run_params = meta["params"]
    kind = "sim" if info["kind"] == "sim" else "real" if info["kind"] == "real" else "sim"
    when = run_params.get("started_at") or utc_now()
    facts = [f"run {escape(str(when).replace('T', ' ').replace('Z', ' UTC'))}"]
    facts.append(f"akool_lab {escape(str(meta['versions'].get('akool_lab', '?')))}")
    if info.get("base_url"):
        facts.append(f"target {escape(str(info['base_url']))}")
    stream_types = run_params.get("stream_types") or (
        [run_params["stream_type"]] if run_params.get("stream_type") else []
    )
    if stream_types:
        facts.append(f"stream type {escape(', '.join(map(str, stream_types)))}")
    if run_params.get("until"):
        facts.append(f"each message until {escape(str(run_params['until']))}")
    if run_params.get("elapsed_s") is not None:
        facts.append(f"experiment took {float(run_params['elapsed_s']):.1f} s")
    body = [
        f'<p><span class="badge {kind}">{escape(meta["label"])}</span> '
        f'<span class="meta">{" · ".join(facts)}</span></p>',
    ]
    if status != "complete":
        planned = int(run_params.get("sessions") or 0) * int(run_params.get("messages_per_session") or 0)
        of = f" of {plural(planned, 'planned message')}" if planned else ""
        body.append(
            f'<p class="partial"><b>Partial run</b> ({escape(status)}): the run stopped before its end (killed, '
            f"interrupted or crashed). Below is everything measured until then: {plural(len(messages), 'message')}"
            f"{of}.</p>"
        )
    body.append(f'<p class="headline">{escape(headline(messages, failures))}</p>')
    body += [
        "<h2>Messages</h2>",
        "<p>Times in ms; the median's interval is a seeded 95% bootstrap; percentiles by linear interpolation. "
        "Messages marked warm-up (run_experiment's warmup) are left out; cold = first message of a session. ttfr = time to first reply chunk, "
        "ttfa = time to audio_start, reply = time to the last chunk, speak = audio_start to audio_end.</p>",
        summary.to_html() if len(summary) else "<p>No message was measured.</p>",
    ]
    for heading, table in (("Sessions", session_summary), ("Commands", command_summary), ("HTTP", http_summary)):
        if len(table):  # no empty tables
            body += [f"<h2>{heading}</h2>", table.to_html()]
    body += ["<h2>Figures</h2>", _figures_html(pngs)]
    prompts = run_params.get("prompts")
    if prompts:
        body += ["<h2>Prompts</h2>", _prompts_html(prompts)]
    shown = {k: v for k, v in run_params.items() if k != "prompts"}
    body += [
        "<h2>Parameters</h2>",
        f"<pre>{escape(json.dumps(shown, indent=2, ensure_ascii=False, default=str))}</pre>",
    ]
    if errors:
        body += ["<h2>Errors</h2>", '<ul class="errors">', *(f"<li>{escape(e)}</li>" for e in errors), "</ul>"]
    body += ["<h2>Versions</h2>", _kv_table(meta["versions"])]
    path = out / REPORT_FILE
    path.write_text(_page(title, "\n".join(body)), encoding="utf-8")
    return path


def _comparison_rows(a: SummaryTable, b: SummaryTable) -> list[dict[str, Any]]:
    def key(row: Mapping[str, Any]) -> tuple[str, ...]:
        return tuple(str(row.get(c)) for c in (*a.group_by, "metric"))

    b_rows = {key(r): r for r in b.rows}
    rows = []
    for row in a.rows:
        other = b_rows.get(key(row), {})
        for stat in ("n", "p50", "p90", "p99", "max"):
            left, right = row.get(stat), other.get(stat)
            diff = right - left if isinstance(left, (int, float)) and isinstance(right, (int, float)) else None
            group = {c: row.get(c) for c in a.group_by}
            rows.append({**group, "metric": row["metric"], "stat": stat, "a": left, "b": right, "b_minus_a": diff})
    return rows


def write_comparison(
    directory: str | os.PathLike[str],
    run_a: Recorder,
    run_b: Recorder,
    *,
    labels: tuple[str, str] = ("A", "B"),
    metrics: Sequence[str] | None = None,
    targets: tuple[Any, Any] | None = None,
) -> Path:
    """Compare two runs: whether each headline metric differs significantly (difference of medians with a
    bootstrap 95% interval, and Mann-Whitney's p-value; written to ``significance.csv`` too), one side-by-side figure
    per metric and a two-column summary; returns ``comparison.html``.

    ``targets``: the two runs' targets (their labels head the page).
    """
    import csv

    from akool_lab.metrics._compare import HEADLINE_METRICS, compare_records
    from akool_lab.metrics._plots import plot_comparison
    from akool_lab.metrics._records import message_timings
    from akool_lab.metrics._stats import DEFAULT_METRICS, summary_table

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    names = tuple(metrics or DEFAULT_METRICS)
    a, b = message_timings(run_a), message_timings(run_b)
    rows = _comparison_rows(summary_table(a, names, by=("phase",)), summary_table(b, names, by=("phase",)))
    columns = ["phase", "metric", "stat", "a", "b", "b_minus_a"]
    with (out / COMPARISON_CSV).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if r.get(k) is None else r.get(k)) for k in columns} for r in rows)
    differences = compare_records(a, b, [m for m in names if m in HEADLINE_METRICS] or names[:2])
    sig_columns = list(differences[0].as_dict()) if differences else []
    with (out / SIGNIFICANCE_CSV).open("w", encoding="utf-8", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=sig_columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows({k: ("" if v is None else v) for k, v in d.as_dict().items()} for d in differences)
    figures = {f"compare_{m}": plot_comparison(a, b, m, labels=labels) for m in names}
    pngs = _write_figures(out, figures)

    def cell(value: Any) -> str:
        return "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))

    head = ["phase", "metric", "stat", labels[0], labels[1], f"{labels[1]} - {labels[0]}"]
    table = (
        "<table><thead><tr>"
        + "".join(f"<th>{escape(h)}</th>" for h in head)
        + "</tr></thead><tbody>"
        + "".join("<tr>" + "".join(f"<td>{escape(cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in rows)
        + "</tbody></table>"
    )
    which = ""
    if targets is not None:
        which = " ".join(
            f'<span class="badge {"real" if target_info(t)["kind"] == "real" else "sim"}">'
            f"{escape(side)}: {escape(target_info(t)['label'])}</span>"
            for side, t in zip(("A", "B"), targets, strict=True)
        )
    verdicts = "".join(
        f"<li><b>{escape(d.metric)}</b>: median A {escape(_fmt_ms(d.median_a))}, B {escape(_fmt_ms(d.median_b))}; "
        f"{escape(d.verdict)}</li>"
        for d in differences
    )
    body = "\n".join(
        [
            f"<p>{which}</p>" if which else "",
            f"<p>A = {escape(labels[0])} ({len(a)} messages), B = {escape(labels[1])} ({len(b)} messages). "
            "Times in ms; warm-up messages left out.</p>",
            "<h2>Is the difference significant?</h2>",
            "<p>Difference of the medians (B - A) with a seeded bootstrap 95% interval; significant when the "
            "interval excludes 0. Mann-Whitney's two-sided p-value beside it.</p>",
            f'<ul class="headline">{verdicts}</ul>',
            "<h2>Side by side</h2>",
            table,
            "<h2>Figures</h2>",
            _figures_html(pngs),
            "<h2>Versions</h2>",
            _kv_table(versions()),
        ]
    )
    path = out / COMPARISON_FILE
    path.write_text(_page(f"Comparison: {labels[0]} vs {labels[1]}", body), encoding="utf-8")
    return path
