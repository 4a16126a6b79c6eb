"""Figures of timing records: each function takes records and returns a new ``matplotlib.figure.Figure``.

No function touches pyplot or any global matplotlib state: figures are built with ``Figure()`` directly (which
needs no backend), so they are safe in threads, in tests and in notebooks alike. Show one in a notebook by
leaving it as the cell's value; save one with ``fig.savefig("ttfr.png")``.

Cold messages (the first of their session) are drawn apart from warm ones wherever a distribution is shown.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = [
    "METRIC_LABELS",
    "plot_cdf",
    "plot_comparison",
    "plot_histogram",
    "plot_http_latency",
    "plot_message_timeline",
    "plot_pacing_cost",
    "plot_session_timeline",
    "standard_figures",
]

#: Human names of the timings, used in axis labels and titles.
METRIC_LABELS = {
    "ttfr_ms": "time to first reply",
    "ttfa_ms": "time to audio",
    "reply_ms": "reply time",
    "speak_ms": "speech duration",
    "send_span_ms": "send span (chunking and pacing)",
    "heard_ms": "heard (browser: last chunk sent to first audible sample)",
    "media_delay_ms": "media delay (browser: audio_start to first audible sample)",
    "ack_ms": "command ack time",
    "interrupt_to_audio_end_ms": "interrupt to audio end",
    "create_ms": "session create",
    "live_ms": "create to live",
    "connect_ms": "connect",
    "close_ms": "close",
    "ms": "HTTP request",
}

COLD_COLOR = "#d62728"
WARM_COLOR = "#1f77b4"
# Timeline segment colours: one per phase, the same in every figure.
PHASE_COLORS = {
    "send span": "#9467bd",
    "wait": "#c7c7c7",
    "reply": "#1f77b4",
    "speech": "#2ca02c",
    "create": "#8c564b",
    "live wait": "#ff7f0e",
    "connect": "#17becf",
    "first reply": "#1f77b4",
    "active": "#e8e8e8",
    "close": "#d62728",
}


def _label(metric: str) -> str:
    return METRIC_LABELS.get(metric, metric)


def _get(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _records_of(run: Any) -> list[Any]:
    """The message records of a run: an ``ExperimentResult`` (``.records``) or a sequence of records."""
    records = getattr(run, "records", run)
    return list(records)


def _new_figure(width: float = 7.5, height: float = 4.5) -> Figure:
    from matplotlib.figure import Figure  # imported here: importing akool_lab.metrics must stay light

    return Figure(figsize=(width, height), layout="constrained")


def _no_data(ax: Axes, what: str) -> None:
    ax.text(0.5, 0.5, f"no {what} recorded", ha="center", va="center", transform=ax.transAxes, color="0.4")


def _values(
    records: Iterable[Any], metric: str, *, cold: bool | None = None, include_warmup: bool = False
) -> list[float]:
    out = []
    for r in records:
        if not include_warmup and _get(r, "warmup"):
            continue
        if cold is not None and bool(_get(r, "cold")) != cold:
            continue
        value = _get(r, metric)
        if value is not None:
            out.append(float(value))
    return out


def _ecdf(ax: Axes, values: Sequence[float], **style: Any) -> None:
    ordered = sorted(values)
    n = len(ordered)
    ax.step(ordered, [(i + 1) / n for i in range(n)], where="post", **style)


# ---------------------------------------------------------------------------------------------------- distributions


def plot_histogram(
    records: Iterable[Any], metric: str = "ttfr_ms", *, bins: int = 30, include_warmup: bool = False
) -> Figure:
    """A histogram of one message timing, cold and warm messages in two colours.

    >>> fig = plot_histogram(message_timings(rec), "ttfa_ms")     # doctest: +SKIP
    """
    records = list(records)
    fig = _new_figure()
    ax = fig.add_subplot()
    cold = _values(records, metric, cold=True, include_warmup=include_warmup)
    warm = _values(records, metric, cold=False, include_warmup=include_warmup)
    both = cold + warm
    if both:
        lo, hi = min(both), max(both)
        edges = [lo + (hi - lo) * i / bins for i in range(bins + 1)] if hi > lo else [lo - 0.5, lo + 0.5]
        if warm:
            ax.hist(warm, bins=edges, color=WARM_COLOR, alpha=0.75, label=f"warm (n={len(warm)})")
        if cold:
            ax.hist(cold, bins=edges, color=COLD_COLOR, alpha=0.6, label=f"cold: first of a session (n={len(cold)})")
        ax.legend(loc="upper right")
    else:
        _no_data(ax, metric)
    ax.set_xlabel(f"{_label(metric)} (ms)")
    ax.set_ylabel("messages")
    from matplotlib.ticker import MaxNLocator

    ax.yaxis.set_major_locator(MaxNLocator(integer=True))  # counts of messages are whole numbers
    ax.set_title(f"Distribution of {_label(metric)} ({metric}, n={len(both)})")
    return fig


def plot_cdf(
    records: Iterable[Any],
    metrics: str | Sequence[str] = ("ttfr_ms", "ttfa_ms", "reply_ms"),
    *,
    include_warmup: bool = False,
) -> Figure:
    """Empirical CDFs of one or more message timings; warm messages solid, cold ones dashed."""
    records = list(records)
    names = [metrics] if isinstance(metrics, str) else list(metrics)
    fig = _new_figure()
    ax = fig.add_subplot()
    drawn = False
    for i, metric in enumerate(names):
        color = f"C{i}"
        warm = _values(records, metric, cold=False, include_warmup=include_warmup)
        cold = _values(records, metric, cold=True, include_warmup=include_warmup)
        if warm:
            _ecdf(ax, warm, color=color, label=f"{metric} warm (n={len(warm)})")
            drawn = True
        if cold:
            _ecdf(ax, cold, color=color, linestyle="--", label=f"{metric} cold (n={len(cold)})")
            drawn = True
    if drawn:
        ax.legend(loc="lower right")
        ax.set_ylim(0, 1.02)
    else:
        _no_data(ax, ", ".join(names))
    ax.set_xlabel("latency (ms)")
    ax.set_ylabel("fraction of messages at or below")
    ax.set_title("Latency CDF: " + ", ".join(_label(m) for m in names))
    ax.grid(alpha=0.3)
    return fig


# ---------------------------------------------------------------------------------------------------- timelines


def plot_message_timeline(records: Iterable[Any], *, limit: int = 40) -> Figure:
    """A Gantt chart of messages: send span, wait for the first reply chunk, reply streaming, speech.

    Messages are placed on their own clock's time line (x = ms since the first message on that clock); the first
    ``limit`` messages are shown. Cold messages are marked ``*`` in the labels.
    """
    shown = [r for r in records if _get(r, "first_sent_ns") is not None][:limit]
    fig = _new_figure(8.0, max(3.0, 0.32 * len(shown) + 1.6))
    ax = fig.add_subplot()
    origin: dict[Any, int] = {}
    for r in shown:
        clock, t_ns = _get(r, "clock"), int(_get(r, "first_sent_ns"))
        origin[clock] = min(origin.get(clock, t_ns), t_ns)
    labels = []
    used: set[str] = set()
    for y, r in enumerate(shown):
        start = (_get(r, "first_sent_ns") - origin[_get(r, "clock")]) / 1e6
        span = _get(r, "send_span_ms") or 0.0
        last_sent = start + span
        ttfr, reply, ttfa, speak = (_get(r, k) for k in ("ttfr_ms", "reply_ms", "ttfa_ms", "speak_ms"))
        segments: list[tuple[str, float, float]] = [("send span", start, max(span, 1e-3))]
        if ttfr is not None:
            segments.append(("wait", last_sent, ttfr))
            if reply is not None:
                segments.append(("reply", last_sent + ttfr, max(reply - ttfr, 1e-3)))
        if ttfa is not None and speak is not None:
            segments.append(("speech", last_sent + ttfa, speak))
        for phase, x0, width in segments:
            height = 0.35 if phase == "speech" else 0.7
            y0 = y - 0.45 if phase == "speech" else y - 0.35
            ax.broken_barh(
                [(x0, width)],
                (y0, height),
                color=PHASE_COLORS[phase],
                label=None if phase in used else phase,
            )
            used.add(phase)
        session = str(_get(r, "session_id") or "?")[-6:]
        labels.append(f"{'*' if _get(r, 'cold') else ''}{session}#{_get(r, 'index')} {_get(r, 'intent') or ''}")
    if shown:
        ax.set_yticks(range(len(shown)), labels)
        ax.invert_yaxis()
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    else:
        _no_data(ax, "messages")
    ax.set_xlabel("time since the first message (ms, per clock)")
    ax.set_ylabel("message (* = cold)")
    ax.set_title(f"Message timeline ({len(shown)} messages)")
    return fig


def plot_session_timeline(sessions: Iterable[Any]) -> Figure:
    """Each session's life cycle: create → wait until live → connect → first reply → ... → close."""
    shown = list(sessions)
    fig = _new_figure(8.0, max(3.0, 0.45 * len(shown) + 1.6))
    ax = fig.add_subplot()
    used: set[str] = set()
    # (phase, field where it starts, field where it ends); times are ms since session/create was sent.
    steps = (
        ("create", None, "create_ms"),
        ("live wait", "created_at_ms", "live_at_ms"),
        ("connect", "connect_at_ms", "connected_at_ms"),
        ("first reply", "connected_at_ms", "first_reply_at_ms"),
        ("active", "first_reply_at_ms", "close_at_ms"),
        ("close", "close_at_ms", "closed_at_ms"),
    )
    for y, s in enumerate(shown):
        for phase, begin, end in steps:
            a = 0.0 if begin is None else _get(s, begin)
            b = _get(s, end)
            if a is None or b is None:
                continue
            ax.broken_barh(
                [(a, max(b - a, 1e-3))],
                (y - 0.35, 0.7),
                color=PHASE_COLORS[phase],
                label=None if phase in used else phase,
            )
            used.add(phase)
    if shown:
        ax.set_yticks(range(len(shown)), [str(_get(s, "session_id"))[-10:] for s in shown])
        ax.invert_yaxis()
        ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small")
    else:
        _no_data(ax, "sessions")
    ax.set_xlabel("time since session/create was sent (ms)")
    ax.set_ylabel("session")
    ax.set_title(f"Session life cycle ({len(shown)} sessions)")
    return fig


# ---------------------------------------------------------------------------------------------------- HTTP, pacing


def plot_http_latency(http: Iterable[Any]) -> Figure:
    """HTTP request durations by endpoint (box plots); failed attempts are marked with a red ``x``."""
    by_endpoint: dict[str, list[float]] = defaultdict(list)
    failed: dict[str, list[float]] = defaultdict(list)
    for r in http:
        ms = _get(r, "ms")
        if ms is None:
            continue
        endpoint = str(_get(r, "endpoint"))
        (failed if _get(r, "error") else by_endpoint)[endpoint].append(float(ms))
        by_endpoint.setdefault(endpoint, [])
    names = sorted(by_endpoint)
    fig = _new_figure(max(6.0, 1.3 * len(names) + 1.5), 4.5)
    ax = fig.add_subplot()
    if names:
        data = [by_endpoint[n] or [float("nan")] for n in names]
        ax.boxplot(data, showfliers=True)
        for x, name in enumerate(names, start=1):
            if failed[name]:
                ax.plot([x] * len(failed[name]), failed[name], "x", color=COLD_COLOR)
        ax.set_xticks(
            range(1, len(names) + 1),
            [f"{n}\n(n={len(by_endpoint[n]) + len(failed[n])})" for n in names],
            fontsize="small",
        )
    else:
        _no_data(ax, "HTTP requests")
    ax.set_xlabel("endpoint")
    ax.set_ylabel("duration (ms)")
    ax.set_title("HTTP latency by endpoint")
    return fig


def plot_pacing_cost(records: Iterable[Any]) -> Figure:
    """What chunking and pacing cost: send span against text length, coloured by the number of chunks."""
    points = [
        (float(_get(r, "text_chars") or 0), float(_get(r, "send_span_ms")), int(_get(r, "chunks") or 0))
        for r in records
        if _get(r, "send_span_ms") is not None
    ]
    fig = _new_figure()
    ax = fig.add_subplot()
    if points:
        from matplotlib.colors import BoundaryNorm

        # A whole number of chunks: one colour per count, ticks on whole numbers only.
        counts = sorted({p[2] for p in points})
        bounds = [c - 0.5 for c in range(counts[0], counts[-1] + 1)] + [counts[-1] + 0.5]
        norm = BoundaryNorm(bounds, ncolors=256)
        scatter = ax.scatter(
            [p[0] for p in points], [p[1] for p in points], c=[p[2] for p in points], cmap="viridis", norm=norm
        )
        colorbar = fig.colorbar(scatter, ax=ax, label="chunks")
        step = max(1, (counts[-1] - counts[0] + 1) // 8)
        colorbar.set_ticks(list(range(counts[0], counts[-1] + 1, step)))
        ax.set_ylim(0, max(1.0, max(p[1] for p in points) * 1.1))  # a time span: never below 0
    else:
        _no_data(ax, "messages")
    ax.set_xlabel("text length (characters)")
    ax.set_ylabel("send span (ms)")
    ax.set_title("Chunking and pacing cost")
    ax.grid(alpha=0.3)
    return fig


def plot_comparison(
    run_a: Any,
    run_b: Any,
    metric: str = "ttfr_ms",
    *,
    labels: tuple[str, str] = ("A", "B"),
    include_warmup: bool = False,
) -> Figure:
    """Two runs side by side for one timing: box plots (left) and CDFs (right).

    ``run_a``/``run_b``: an ``ExperimentResult`` or a sequence of message records.
    """
    a = _values(_records_of(run_a), metric, include_warmup=include_warmup)
    b = _values(_records_of(run_b), metric, include_warmup=include_warmup)
    fig = _new_figure(10.0, 4.5)
    left, right = fig.subplots(1, 2)
    if a or b:
        left.boxplot([a or [float("nan")], b or [float("nan")]], showfliers=True)
        left.set_xticks([1, 2], [f"{labels[0]} (n={len(a)})", f"{labels[1]} (n={len(b)})"])
        for i, values in enumerate((a, b)):
            if values:
                _ecdf(right, values, color=f"C{i}", label=labels[i])
        right.legend(loc="lower right")
    else:
        _no_data(left, metric)
        _no_data(right, metric)
    left.set_xlabel("run")
    left.set_ylabel(f"{_label(metric)} (ms)")
    left.set_title(f"{metric}: distribution")
    right.set_xlabel(f"{_label(metric)} (ms)")
    right.set_ylabel("fraction of messages at or below")
    right.set_title(f"{metric}: CDF")
    right.grid(alpha=0.3)
    fig.suptitle(f"{_label(metric)}: {labels[0]} vs {labels[1]}")
    return fig


def standard_figures(
    messages: Sequence[Any], sessions: Sequence[Any] = (), http: Sequence[Any] = ()
) -> dict[str, Figure]:
    """The figures of a report, by file-friendly name."""
    return {
        "ttfr_histogram": plot_histogram(messages, "ttfr_ms"),
        "ttfa_histogram": plot_histogram(messages, "ttfa_ms"),
        "latency_cdf": plot_cdf(messages, ("ttfr_ms", "ttfa_ms", "reply_ms")),
        "message_timeline": plot_message_timeline(messages),
        "session_timeline": plot_session_timeline(sessions),
        "http_latency": plot_http_latency(http),
        "pacing_cost": plot_pacing_cost(messages),
    }
