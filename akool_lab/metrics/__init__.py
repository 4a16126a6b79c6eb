"""Measure avatars: timings derived from recorded events, statistics, figures, experiments and reports.

>>> from akool_lab import metrics
>>> records = metrics.message_timings(live.recorder)                 # doctest: +SKIP
>>> print(metrics.summary_table(records))                            # doctest: +SKIP
>>> fig = metrics.plot_cdf(records, ["ttfr_ms", "ttfa_ms"])          # doctest: +SKIP
>>> result = metrics.run_experiment(client, sessions=3, messages_per_session=8)   # doctest: +SKIP
>>> result.save("report/")                                           # doctest: +SKIP

Names are exported lazily (PEP 562): matplotlib and numpy are imported only when a figure or a statistic is made.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> private module that defines it
_EXPORTS: dict[str, str] = {
    "MessageRecord": "_records",
    "CommandRecord": "_records",
    "SessionRecord": "_records",
    "HttpRecord": "_records",
    "message_timings": "_records",
    "perceived_timings": "_records",
    "command_timings": "_records",
    "session_timings": "_records",
    "http_timings": "_records",
    "Stats": "_stats",
    "SummaryTable": "_stats",
    "DEFAULT_METRICS": "_stats",
    "summarize": "_stats",
    "summary_table": "_stats",
    "percentile": "_stats",
    "length_bucket": "_stats",
    "as_rows": "_stats",
    "to_dataframe": "_stats",
    "plot_histogram": "_plots",
    "plot_cdf": "_plots",
    "plot_message_timeline": "_plots",
    "plot_session_timeline": "_plots",
    "plot_http_latency": "_plots",
    "plot_pacing_cost": "_plots",
    "plot_comparison": "_plots",
    "standard_figures": "_plots",
    "ExperimentResult": "_result",
    "run_experiment": "_runner",
    "Progress": "_runner",
    "DEFAULT_PROMPTS": "_runner",
    "write_report": "_report",
    "load_run": "_result",
    "measured_metrics": "_result",
    "write_comparison": "_report",
    "UNTIL": "_plan",
    "plan_session": "_plan",
    "Difference": "_compare",
    "bootstrap_interval": "_compare",
    "compare_metric": "_compare",
    "compare_records": "_compare",
}

__all__ = [
    "DEFAULT_METRICS",
    "DEFAULT_PROMPTS",
    "UNTIL",
    "CommandRecord",
    "Difference",
    "ExperimentResult",
    "HttpRecord",
    "MessageRecord",
    "Progress",
    "SessionRecord",
    "Stats",
    "SummaryTable",
    "as_rows",
    "bootstrap_interval",
    "command_timings",
    "compare_metric",
    "compare_records",
    "http_timings",
    "length_bucket",
    "load_run",
    "measured_metrics",
    "message_timings",
    "perceived_timings",
    "percentile",
    "plan_session",
    "plot_cdf",
    "plot_comparison",
    "plot_histogram",
    "plot_http_latency",
    "plot_message_timeline",
    "plot_pacing_cost",
    "plot_session_timeline",
    "run_experiment",
    "session_timings",
    "standard_figures",
    "summarize",
    "summary_table",
    "to_dataframe",
    "write_comparison",
    "write_report",
]

if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from akool_lab.metrics._compare import Difference, bootstrap_interval, compare_metric, compare_records
    from akool_lab.metrics._plan import UNTIL, plan_session
    from akool_lab.metrics._plots import (
        plot_cdf,
        plot_comparison,
        plot_histogram,
        plot_http_latency,
        plot_message_timeline,
        plot_pacing_cost,
        plot_session_timeline,
        standard_figures,
    )
    from akool_lab.metrics._records import (
        CommandRecord,
        HttpRecord,
        MessageRecord,
        SessionRecord,
        command_timings,
        http_timings,
        message_timings,
        perceived_timings,
        session_timings,
    )
    from akool_lab.metrics._report import write_comparison, write_report
    from akool_lab.metrics._result import ExperimentResult, load_run, measured_metrics
    from akool_lab.metrics._runner import DEFAULT_PROMPTS, Progress, run_experiment
    from akool_lab.metrics._stats import (
        DEFAULT_METRICS,
        Stats,
        SummaryTable,
        as_rows,
        length_bucket,
        percentile,
        summarize,
        summary_table,
        to_dataframe,
    )


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'akool_lab.metrics' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"akool_lab.metrics.{module}"), name)
    globals()[name] = value  # cache: the next access does not come here
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
