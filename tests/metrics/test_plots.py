"""Every figure renders with the Agg canvas, to PNG bytes, with labelled axes and a title; no pyplot state."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any

import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from akool_lab.metrics import (
    http_timings,
    message_timings,
    plot_cdf,
    plot_comparison,
    plot_histogram,
    plot_http_latency,
    plot_message_timeline,
    plot_pacing_cost,
    plot_session_timeline,
    session_timings,
    standard_figures,
)

from ._events import one_session


def render(fig: Figure) -> bytes:
    """Draw ``fig`` on an Agg canvas into PNG bytes (a low resolution keeps the suite fast)."""
    FigureCanvasAgg(fig)
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=40)
    return out.getvalue()


def labels(fig: Figure) -> tuple[str, str, str]:
    ax = fig.axes[0]
    return ax.get_xlabel(), ax.get_ylabel(), ax.get_title()


MESSAGES = message_timings(one_session())
SESSIONS = session_timings(one_session())
HTTP = http_timings(one_session())

CASES: list[tuple[str, Callable[[], Figure], tuple[str, str, str]]] = [
    (
        "histogram",
        lambda: plot_histogram(MESSAGES, "ttfr_ms"),
        ("time to first reply (ms)", "messages", "Distribution of time to first reply (ttfr_ms, n=2)"),
    ),
    (
        "cdf",
        lambda: plot_cdf(MESSAGES, ["ttfr_ms", "ttfa_ms"]),
        ("latency (ms)", "fraction of messages at or below", "Latency CDF: time to first reply, time to audio"),
    ),
    (
        "message timeline",
        lambda: plot_message_timeline(MESSAGES),
        ("time since the first message (ms, per clock)", "message (* = cold)", "Message timeline (2 messages)"),
    ),
    (
        "session timeline",
        lambda: plot_session_timeline(SESSIONS),
        ("time since session/create was sent (ms)", "session", "Session life cycle (1 sessions)"),
    ),
    ("http", lambda: plot_http_latency(HTTP), ("endpoint", "duration (ms)", "HTTP latency by endpoint")),
    (
        "pacing",
        lambda: plot_pacing_cost(MESSAGES),
        ("text length (characters)", "send span (ms)", "Chunking and pacing cost"),
    ),
    (
        "comparison",
        lambda: plot_comparison(MESSAGES, MESSAGES[:1], "ttfr_ms", labels=("before", "after")),
        ("run", "time to first reply (ms)", "ttfr_ms: distribution"),
    ),
]


@pytest.mark.parametrize(("name", "make", "expected"), CASES, ids=[c[0] for c in CASES])
def test_each_figure_renders_to_png_with_its_labels_and_title(
    name: str, make: Callable[[], Figure], expected: tuple[str, str, str]
) -> None:
    fig = make()
    assert isinstance(fig, Figure)
    assert render(fig).startswith(b"\x89PNG")
    assert labels(fig) == expected


@pytest.mark.parametrize(
    "make",
    [
        lambda: plot_histogram([], "ttfr_ms"),
        lambda: plot_cdf([]),
        lambda: plot_message_timeline([]),
        lambda: plot_session_timeline([]),
        lambda: plot_http_latency([]),
        lambda: plot_pacing_cost([]),
        lambda: plot_comparison([], []),
    ],
)
def test_figures_of_no_data_still_render_and_say_so(make: Callable[[], Figure]) -> None:
    fig = make()
    render(fig)
    assert any("no " in t.get_text() for ax in fig.axes for t in ax.texts)


def test_the_histogram_keeps_cold_and_warm_messages_apart() -> None:
    legend = plot_histogram(MESSAGES, "ttfr_ms").axes[0].get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == ["warm (n=1)", "cold: first of a session (n=1)"]


def test_the_cdf_draws_cold_messages_dashed() -> None:
    lines = plot_cdf(MESSAGES, "ttfr_ms").axes[0].get_lines()
    assert [(line.get_label(), line.get_linestyle()) for line in lines] == [
        ("ttfr_ms warm (n=1)", "-"),
        ("ttfr_ms cold (n=1)", "--"),
    ]


def test_the_comparison_puts_both_runs_side_by_side() -> None:
    fig = plot_comparison(MESSAGES, MESSAGES[:1], labels=("before", "after"))
    assert len(fig.axes) == 2
    assert fig.get_suptitle() == "time to first reply: before vs after"


def test_standard_figures_names_every_report_figure() -> None:
    figures = standard_figures(MESSAGES, SESSIONS, HTTP)
    assert set(figures) == {
        "ttfr_histogram",
        "ttfa_histogram",
        "latency_cdf",
        "message_timeline",
        "session_timeline",
        "http_latency",
        "pacing_cost",
    }


def test_plotting_leaves_pyplot_alone() -> None:
    before: Any = sys.modules.get("matplotlib.pyplot")
    standard_figures(MESSAGES, SESSIONS, HTTP)
    if before is None:
        assert "matplotlib.pyplot" not in sys.modules
    else:
        assert before.get_fignums() == []
