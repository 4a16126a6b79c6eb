"""Reports: a run written to a directory (events, summary, figures, a self-contained HTML page), and comparisons.

A report directory holds:

- ``events.jsonl``: every raw event (the source of truth: everything else is derived from it);
- ``params.json``: the run's parameters, the target (kind and base URL, never a key) and the versions used;
- ``summary.csv``: the message timings summary (one row per group and metric);
- one PNG per figure;
- ``report.html``: all of the above in one self-contained page (figures embedded as base64 PNG).

Nothing secret is written: events never carry secrets (a rule of the recorder), parameters are passed through
:func:`~akool_lab.redaction.redact_mapping`, and the target is reduced to its kind and a base URL without
credentials or query string.
"""

from __future__ import annotations

import base64
import io
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from akool_lab.events import Recorder
from akool_lab.redaction import redact_mapping

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from akool_lab.metrics._stats import SummaryTable

__all__ = ["describe_target", "versions", "write_comparison", "write_report"]

EVENTS_FILE = "events.jsonl"
PARAMS_FILE = "params.json"
SUMMARY_FILE = "summary.csv"
REPORT_FILE = "report.html"
COMPARISON_FILE = "comparison.html"
COMPARISON_CSV = "comparison.csv"

_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.6em; } h2 { margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table { border-collapse: collapse; font-size: 0.85em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
figure { margin: 1em 0; } img { max-width: 100%; border: 1px solid #eee; }
pre { background: #f8f8f8; padding: 0.8em; overflow-x: auto; }
.errors li { color: #a00; }
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


def describe_target(target: Any) -> dict[str, Any]:
    """What a report says about the target: its kind and base URL only (never a key).

    ``target``: an :class:`akool_lab.target.Target`, a mapping with ``kind``/``base_url``, a client (its
    ``base_url``), or ``None``.
    """
    if target is None:
        return {"kind": "unknown", "base_url": None}
    if isinstance(target, Mapping):
        kind, base_url = target.get("kind", "unknown"), target.get("base_url")
        extra = {k: target[k] for k in ("profile", "seed") if k in target}
    else:
        kind, base_url = getattr(target, "kind", "unknown"), getattr(target, "base_url", None)
        extra = {}
    return {"kind": str(kind), "base_url": _safe_url(str(base_url)) if base_url else None, **extra}


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


def _figures_html(pngs: Mapping[str, bytes]) -> str:
    parts = []
    for name, data in pngs.items():
        encoded = base64.b64encode(data).decode("ascii")
        parts.append(
            f'<figure><img alt="{escape(name)}" src="data:image/png;base64,{encoded}">'
            f"<figcaption>{escape(name)}</figcaption></figure>"
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
) -> Path:
    """Write the report of ``recorder``'s events to ``directory``; returns the path of ``report.html``.

    Args:
        params: the run's parameters (redacted before writing).
        target: where the run went (see :func:`describe_target`).
        figures: the figures to include (default: :func:`~akool_lab.metrics.standard_figures` of the events).
        errors: failures to list (sessions that failed, messages that failed).
        run_versions: the versions recorded with the run (default: this environment's, see :func:`versions`).
    """
    from akool_lab.metrics._plots import standard_figures
    from akool_lab.metrics._records import command_timings, http_timings, message_timings, session_timings
    from akool_lab.metrics._stats import summary_table

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    events = recorder.events  # one snapshot: every file describes the same events
    snapshot = Recorder(events)
    snapshot.save(out / EVENTS_FILE)
    messages = message_timings(events)
    sessions = session_timings(events)
    commands = command_timings(events)
    http = http_timings(events)
    meta = {
        "title": title,
        "params": _jsonable(redact_mapping(dict(params or {}))),
        "target": describe_target(target),
        "versions": dict(run_versions or versions()),
        "errors": list(errors),
        "counts": {
            "events": len(events),
            "sessions": len(sessions),
            "messages": len(messages),
            "commands": len(commands),
            "http": len(http),
        },
    }
    (out / PARAMS_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    summary = summary_table(messages)
    (out / SUMMARY_FILE).write_text(summary.to_csv(), encoding="utf-8")
    session_summary = summary_table(
        sessions, metrics=("create_ms", "live_ms", "connect_ms", "first_reply_ms", "close_ms"), by=()
    )
    command_summary = summary_table(commands, metrics=("ack_ms", "interrupt_to_audio_end_ms"), by=("cmd",))
    http_summary = summary_table(http, metrics=("ms",), by=("endpoint",))
    pngs = _write_figures(out, figures if figures is not None else standard_figures(messages, sessions, http))
    failed = [m for m in messages if not m.complete and not m.interrupted]
    body = [
        "<h2>Target</h2>",
        _kv_table(meta["target"]),
        "<h2>Messages</h2>",
        f"<p>{len(messages)} messages in {len(sessions)} sessions; {len(failed)} incomplete or failed "
        "(kept in the data, marked). Times in ms; the median's interval is a seeded 95% bootstrap; percentiles "
        "by linear interpolation. Warm-up messages are left out; cold = first message of a session.</p>",
        summary.to_html(),
        "<h2>Sessions</h2>",
        session_summary.to_html(),
        "<h2>Commands</h2>",
        command_summary.to_html(),
        "<h2>HTTP</h2>",
        http_summary.to_html(),
        "<h2>Figures</h2>",
        _figures_html(pngs),
        "<h2>Parameters</h2>",
        f"<pre>{escape(json.dumps(meta['params'], indent=2, ensure_ascii=False))}</pre>",
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
) -> Path:
    """Compare two runs: one side-by-side figure per metric and a two-column summary; returns ``comparison.html``."""
    import csv

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
    body = "\n".join(
        [
            f"<p>A = {escape(labels[0])} ({len(a)} messages), B = {escape(labels[1])} ({len(b)} messages). "
            "Times in ms; warm-up messages left out.</p>",
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
