"""``LatencyMonitor``: a live plot of recent ttfr/ttfa (and heard), their histogram, and a percentile table.

>>> monitor = LatencyMonitor(client.recorder)     # doctest: +SKIP
>>> monitor                                       # redraws itself as replies arrive

Timings come from :func:`akool_lab.metrics.message_timings` (the same derivation as every report), so what the
monitor shows always agrees with the numbers a notebook computes afterwards. The figure is drawn with matplotlib's
Agg canvas (no pyplot, no backend state) into PNG bytes shown by an ``ipywidgets.Image``, which renders the same in
every front-end; drawing runs in a worker thread, at most ``max_hz`` times a second (a draw takes 0.2-0.5 s of CPU
and holds the GIL much of that time, so the rate is kept low: the I/O thread, which stamps arriving frames, shares
the process).
"""

from __future__ import annotations

import html
import io
from typing import TYPE_CHECKING

import ipywidgets as widgets

from akool_lab.events import Event, EventKind, Recorder
from akool_lab.widgets._common import Coalescer, ErrorLine

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LatencyMonitor"]

#: Event kinds after which a timing may have changed (a reply finished, its audio started, or a stage heard it).
_REDRAW_ON = frozenset({EventKind.REPLY_DONE, EventKind.AUDIO_START, "perceived.heard"})
#: ``heard_ms`` is what a stage measured from the media it played, on the browser's clock (see
#: :func:`akool_lab.metrics.perceived_timings`): shown next to ``ttfa_ms``, never combined with it.
METRICS = ("ttfr_ms", "ttfa_ms", "heard_ms")
#: The fewest values from which each percentile is shown. A p90 from fewer than ~10 values, or a p99 from fewer than
#: ~100, is only the largest value or an interpolation towards it: the table shows "–" (with the reason) instead.
MIN_SAMPLES = {50: 1, 90: 10, 99: 100}
_COLORS = {"ttfr_ms": "#1565c0", "ttfa_ms": "#e65100", "heard_ms": "#2e7d32"}


class LatencyMonitor(widgets.VBox):  # type: ignore[misc]
    """Recent ttfr/ttfa (and heard_ms, when a stage plays the avatar) as a line plot and a histogram, plus n / p50 /
    p90 / p99 / max.

    A percentile is shown only when the sample can support it (:data:`MIN_SAMPLES`: p90 from 10 values, p99 from
    100); below that its cell says "–" and why.

    Args:
        recorder: the events to watch (``client.recorder``, shared by every session of that client).
        window: how many recent messages to show (100, so that a p99 can appear).
        max_hz: the most redraws per second, however fast events come.

    Attributes:
        values: the ``{"ttfr_ms": [...], "ttfa_ms": [...], "heard_ms": [...]}`` shown by the last redraw (recent
            first-to-last; ``heard_ms`` only for messages a stage heard).
        errors: the panel's error line.
    """

    def __init__(self, recorder: Recorder, *, window: int = 100, max_hz: float = 2.0) -> None:
        self.recorder = recorder
        self.window = window
        self.values: dict[str, list[float]] = {name: [] for name in METRICS}
        self.errors = ErrorLine()
        self.image = widgets.Image(format="png", layout=widgets.Layout(width="100%", max_width="760px")).add_class(
            "akool-latency-plot"
        )
        self.table = widgets.HTML(_table({name: [] for name in METRICS})).add_class("akool-latency-table")
        self._coalescer = Coalescer(self._redraw, max_hz=max_hz, errors=self.errors, what="latency plot", offload=True)
        super().__init__(
            [widgets.HTML('<div class="akool-panel-title">Latency</div>'), self.image, self.table, self.errors.widget],
            layout=widgets.Layout(padding="4px"),
        )
        self.add_class("akool-latency-monitor")
        self._unsubscribe = recorder.subscribe(self._on_event)
        self._coalescer.poke()  # the first (empty) figure

    @property
    def renders(self) -> int:
        """How many times the figure was redrawn."""
        return self._coalescer.renders

    def refresh(self) -> None:
        """Redraw soon (thread-safe; coalesced with any redraw already pending)."""
        self._coalescer.poke()

    def close(self) -> None:
        """Stop watching the recorder and close the widgets."""
        self._unsubscribe()
        self._coalescer.close()
        for child in (self.image, self.table, self.errors.widget):
            child.close()
        super().close()

    def _on_event(self, event: Event) -> None:
        # Runs on the recording thread (often the I/O loop): only mark dirty, never draw here.
        if event.kind in _REDRAW_ON:
            self._coalescer.poke()

    def _redraw(self) -> None:
        from akool_lab.metrics import message_timings

        records = [r for r in message_timings(self.recorder) if r.mid is not None][-self.window :]
        values = {name: [v for r in records if (v := getattr(r, name)) is not None] for name in METRICS}
        png = _figure_png(values)
        self.image.value = png
        self.table.value = _table(values)
        self.values = values  # last: whoever sees the new values sees the figure and table drawn from them


def _figure_png(values: dict[str, list[float]]) -> bytes:
    """The two-panel figure (recent values, histogram) as PNG bytes."""
    fig = _figure(values)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def _figure(values: dict[str, list[float]]) -> Figure:
    # Agg directly: no pyplot, so no global figure registry and no GUI backend touched from a worker thread.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    # Fixed margins rather than constrained layout, which would double the drawing time (it measures every label).
    fig = Figure(figsize=(9.0, 2.6))
    FigureCanvasAgg(fig)
    recent, hist = fig.subplots(1, 2, width_ratios=(3, 2))
    fig.subplots_adjust(left=0.07, right=0.98, bottom=0.18, top=0.88, wspace=0.18)
    anything = False
    for name in METRICS:
        data = values.get(name, [])
        if not data:
            continue
        anything = True
        label = name.removesuffix("_ms")
        recent.plot(range(1, len(data) + 1), data, marker="o", markersize=3, color=_COLORS[name], label=label)
        hist.hist(data, bins=min(20, max(5, len(data) // 2)), alpha=0.55, color=_COLORS[name], label=label)
    recent.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # message numbers, not 1.2, 1.4...
    # Half a message of room each side: with one or two messages the axis would otherwise zoom into 0.95..1.05.
    shown = max((len(values.get(name, [])) for name in METRICS), default=0)
    recent.set_xlim(0.5, max(shown, 1) + 0.5)
    recent.set_title("recent messages", fontsize=10)
    recent.set_xlabel("message", fontsize=9)
    recent.set_ylabel("ms", fontsize=9)
    hist.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))  # counts of messages: 1, 2, 3, never 0.5
    hist.set_title("distribution", fontsize=10)
    hist.set_xlabel("ms", fontsize=9)
    hist.set_ylabel("messages", fontsize=9)
    if anything:
        recent.legend(fontsize=8, loc="upper left")
        hist.legend(fontsize=8)
    else:
        for ax in (recent, hist):
            ax.text(0.5, 0.5, "no replies yet", ha="center", va="center", transform=ax.transAxes, color="#999")
    for ax in (recent, hist):
        ax.tick_params(labelsize=8)
        ax.grid(alpha=0.3)
    return fig


def _table(values: dict[str, list[float]]) -> str:
    """n, p50, p90, p99 and max of each metric as a small HTML table."""
    from akool_lab.metrics import percentile

    rows = []
    for name, data in values.items():
        ordered = sorted(data)
        cells: list[str] = [f"<td>{len(ordered)}</td>"]
        for p, needed in MIN_SAMPLES.items():
            if ordered and len(ordered) >= needed:
                cells.append(f"<td>{percentile(ordered, p):.1f}</td>")
            else:
                why = f"p{p} needs at least {needed} values" if ordered else "no values yet"
                cells.append(f'<td title="{html.escape(why)}">–</td>')
        cells.append(f"<td>{ordered[-1]:.1f}</td>" if ordered else "<td>–</td>")
        rows.append(f"<tr><th>{html.escape(name)}</th>" + "".join(cells) + "</tr>")
    head = "<tr><th></th><th>n</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr>"
    note = (
        '<div class="akool-table-note" style="color:#777;font-size:11px">'
        "p90 is shown from 10 values, p99 from 100: a percentile from fewer is just the largest value</div>"
    )
    return f'<table class="akool-table">{head}{"".join(rows)}</table>{note}'
