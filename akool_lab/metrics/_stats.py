"""Statistics of timing records: percentiles, bootstrap confidence intervals, grouped summary tables.

Percentiles use linear interpolation between closest ranks (Hyndman & Fan type 7, numpy's default ``"linear"``
method): for sorted values ``x[0..n-1]`` the p-th percentile is at rank ``h = (n - 1) * p / 100``, i.e.
``x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])``.

The median's confidence interval is a percentile bootstrap: ``resamples`` resamples with replacement (seeded, so
a report is reproducible), the median of each, and the 2.5th and 97.5th percentiles of those medians (for 95 %).
"""

from __future__ import annotations

import csv
import importlib
import io
import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

__all__ = [
    "DEFAULT_METRICS",
    "PERCEIVED_METRICS",
    "Stats",
    "SummaryTable",
    "as_rows",
    "length_bucket",
    "percentile",
    "summarize",
    "summary_table",
    "to_dataframe",
]

#: The message timings a summary shows by default.
DEFAULT_METRICS = ("ttfr_ms", "ttfa_ms", "reply_ms", "speak_ms", "send_span_ms")
#: Measured by a stage from the media it played, on the browser's clock (see ``perceived_timings``): in reports when
#: present, beside the data-channel timings.
PERCEIVED_METRICS = ("heard_ms", "media_delay_ms")

GroupKey = str | Callable[[Any], Any]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """The ``p``-th percentile (0..100) of the values, by linear interpolation (numpy's default).

    The values need not be sorted (numpy sorts them); the parameter keeps its name for existing callers.

    >>> percentile([10.0, 20.0, 30.0, 40.0], 90)
    37.0
    """
    if not len(sorted_values):
        raise ValueError("percentile of no values")
    if not 0 <= p <= 100:
        raise ValueError(f"percentile must be within 0..100, got {p}")
    np = _numpy()
    return float(np.percentile(np.asarray(sorted_values, dtype=float), p, method="linear"))


def _numpy() -> Any:
    # imported on first use, so that importing akool_lab.metrics stays light
    import numpy

    return numpy


@dataclass(frozen=True, slots=True)
class Stats:
    """Summary statistics of one metric (all ``None`` when there are no values).

    Attributes:
        n: how many values were summarised.
        missing: how many ``None`` values were skipped (a reply that never came has no ``ttfr_ms``).
        mean, min, p50, p90, p99, max: the usual; percentiles by linear interpolation (numpy's default).
        ci_low, ci_high: the bootstrap confidence interval of the median (``level``, e.g. 0.95).
    """

    n: int
    missing: int
    mean: float | None
    min: float | None
    p50: float | None
    p90: float | None
    p99: float | None
    max: float | None
    ci_low: float | None
    ci_high: float | None
    level: float = 0.95

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for tables)."""
        return asdict(self)


def _bootstrap_median_ci(data: Any, resamples: int, level: float, seed: int) -> tuple[float, float]:
    np = _numpy()
    rng = np.random.default_rng(seed)
    medians = np.empty(resamples)
    # In blocks, so that a large sample never needs a (resamples x n) matrix at once.
    block = max(1, min(resamples, 2_000_000 // max(1, len(data))))
    for start in range(0, resamples, block):
        stop = min(resamples, start + block)
        picks = rng.integers(0, len(data), size=(stop - start, len(data)))
        medians[start:stop] = np.median(data[picks], axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(medians, [tail, 100 - tail], method="linear")
    return float(low), float(high)


def summarize(values: Iterable[float | None], *, resamples: int = 2000, level: float = 0.95, seed: int = 0) -> Stats:
    """Summarise ``values`` (``None`` values are skipped and counted in :attr:`Stats.missing`).

    >>> s = summarize([1.0, 2.0, 3.0, 4.0, None])
    >>> (s.n, s.missing, s.p50, s.max)
    (4, 1, 2.5, 4.0)
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be within (0, 1), got {level}")
    present: list[float] = []
    missing = 0
    for value in values:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            missing += 1
        else:
            present.append(float(value))
    if not present:
        return Stats(0, missing, None, None, None, None, None, None, None, None, level)
    np = _numpy()
    data = np.sort(np.asarray(present, dtype=float))
    p50, p90, p99 = np.percentile(data, [50, 90, 99], method="linear")
    ci_low, ci_high = _bootstrap_median_ci(data, resamples, level, seed)
    return Stats(
        n=len(data),
        missing=missing,
        mean=float(np.mean(data)),
        min=float(data[0]),
        p50=float(p50),
        p90=float(p90),
        p99=float(p99),
        max=float(data[-1]),
        ci_low=ci_low,
        ci_high=ci_high,
        level=level,
    )


# ---------------------------------------------------------------------------------------------------- rows


def _row(record: Any) -> dict[str, Any]:
    if isinstance(record, Mapping):
        return dict(record)
    as_dict = getattr(record, "as_dict", None)
    if callable(as_dict):
        row: dict[str, Any] = as_dict()
        return row
    raise TypeError(f"cannot turn {type(record).__name__} into a row (expected a record or a mapping)")


def as_rows(records: Iterable[Any] | SummaryTable) -> list[dict[str, Any]]:
    """Records (or a :class:`SummaryTable`) as a list of plain dicts: always available, no pandas needed."""
    if isinstance(records, SummaryTable):
        return [dict(row) for row in records.rows]
    return [_row(r) for r in records]


def to_dataframe(records: Iterable[Any] | SummaryTable) -> Any:
    """Records (or a :class:`SummaryTable`) as a ``pandas.DataFrame``.

    Raises ImportError with the install command when pandas is not installed (:func:`as_rows` needs nothing).
    """
    try:
        pd = importlib.import_module("pandas")  # optional: the ``pandas`` extra
    except ImportError as exc:
        raise ImportError(
            "to_dataframe() needs pandas, which is not installed: pip install 'akool-lab[pandas]' "
            "(or use akool_lab.metrics.as_rows(records) for plain lists of dicts)"
        ) from exc
    return pd.DataFrame(as_rows(records))


def _get(record: Any, name: str) -> Any:
    if isinstance(record, Mapping):
        return record.get(name)
    return getattr(record, name, None)


def _key_name(key: GroupKey) -> str:
    if isinstance(key, str):
        return key
    return str(getattr(key, "__name__", "group"))


def length_bucket(edges: Sequence[int] = (20, 80, 200, 500), field: str = "text_chars") -> Callable[[Any], str]:
    """A grouping key for :func:`summary_table`: the record's text length as a labelled bucket.

    >>> bucket = length_bucket((20, 80))
    >>> [bucket({"text_chars": n}) for n in (5, 20, 500)]
    ['0-19', '20-79', '80+']
    """
    bounds = sorted(edges)

    def text_length(record: Any) -> str:
        value = int(_get(record, field) or 0)
        low = 0
        for edge in bounds:
            if value < edge:
                return f"{low}-{edge - 1}"
            low = edge
        return f"{low}+"

    return text_length


def _natural_key(value: Any) -> tuple[Any, ...]:
    """Sorts group labels with their numbers as numbers: ``0-19, 20-79, 80-199, 500+``, not ``500+`` before ``80``.

    >>> sorted(["80-199", "500+", "0-19", "20-79"], key=_natural_key)
    ['0-19', '20-79', '80-199', '500+']
    """
    # re.split with a capturing group alternates text and digits, so every position compares like with like.
    return tuple(int(part) if i % 2 else part for i, part in enumerate(re.split(r"(\d+)", str(value))))


_STAT_COLUMNS = ("n", "missing", "mean", "min", "p50", "p90", "p99", "max", "ci_low", "ci_high")


@dataclass(frozen=True)
class SummaryTable:
    """A summary: one row per group and metric, with the columns of :class:`Stats`.

    Print it, write it with :meth:`to_csv`, show it in a notebook (HTML), or turn it into dicts with
    :func:`as_rows` or into a DataFrame with :func:`to_dataframe`.
    """

    group_by: tuple[str, ...]
    rows: tuple[Mapping[str, Any], ...]

    @property
    def columns(self) -> list[str]:
        """The column names, in display order."""
        return [*self.group_by, "metric", *_STAT_COLUMNS]

    def __len__(self) -> int:
        return len(self.rows)

    def to_csv(self) -> str:
        """The table as CSV text (numbers unrounded, missing values empty)."""
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for row in self.rows:
            writer.writerow({k: ("" if row.get(k) is None else row.get(k)) for k in self.columns})
        return out.getvalue()

    def _cells(self) -> list[list[str]]:
        def fmt(value: Any) -> str:
            if value is None:
                return "-"
            if isinstance(value, float):
                return f"{value:.1f}"
            return str(value)

        return [[fmt(row.get(c)) for c in self.columns] for row in self.rows]

    def __str__(self) -> str:
        cells = [self.columns, *self._cells()]
        widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths, strict=True)) for r in cells]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_html(self) -> str:
        """The table as an HTML ``<table>`` (values escaped)."""
        from html import escape

        head = "".join(f"<th>{escape(c)}</th>" for c in self.columns)
        body = "".join("<tr>" + "".join(f"<td>{escape(v)}</td>" for v in r) + "</tr>" for r in self._cells())
        return f'<table class="summary"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'

    def _repr_html_(self) -> str:
        return self.to_html()


def summary_table(
    records: Iterable[Any],
    metrics: Sequence[str] = DEFAULT_METRICS,
    by: Sequence[GroupKey] | GroupKey = ("intent", "phase"),
    *,
    include_warmup: bool = False,
    resamples: int = 2000,
    seed: int = 0,
) -> SummaryTable:
    """Summarise ``metrics`` of ``records`` per group.

    Args:
        records: :class:`MessageRecord` (or any records / mappings with those fields).
        metrics: the fields to summarise.
        by: grouping keys: field names (``"intent"``, ``"phase"`` (cold/warm), ``"mode"``, ``"voice"``, ``"lang"``,
            ``"session_id"``...) or callables of a record (e.g. :func:`length_bucket`); ``()`` for one group.
        include_warmup: keep records an experiment marked as warm-up (left out by default).

    >>> print(summary_table(message_timings(rec), by=("intent", length_bucket())))   # doctest: +SKIP
    """
    keys: tuple[GroupKey, ...] = (by,) if isinstance(by, str) or callable(by) else tuple(by)
    names = tuple(_key_name(k) for k in keys)
    groups: dict[tuple[Any, ...], list[Any]] = {}
    for record in records:
        if not include_warmup and _get(record, "warmup"):
            continue
        group = tuple(k(record) if callable(k) else _get(record, k) for k in keys)
        groups.setdefault(group, []).append(record)
    rows: list[dict[str, Any]] = []
    for group in sorted(groups, key=lambda g: tuple(_natural_key(v) for v in g)):
        members = groups[group]
        for metric in metrics:
            stats = summarize((_get(r, metric) for r in members), resamples=resamples, seed=seed)
            row: dict[str, Any] = dict(zip(names, group, strict=True))
            row["metric"] = metric
            row.update({c: getattr(stats, c) for c in _STAT_COLUMNS})
            rows.append(row)
    return SummaryTable(names, tuple(rows))
