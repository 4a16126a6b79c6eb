"""Is a difference real? Bootstrap intervals and the comparison of two runs' headline metrics.

Two runs of the same experiment never give the same percentiles: the question is whether the difference is larger
than what chance alone would give. For each headline metric this module computes the difference of the medians
(B - A) with a seeded bootstrap 95% interval (resampling each run on its own), and the two-sided Mann-Whitney U
test's p-value (normal approximation with tie correction). A difference is called *significant* when the interval
excludes 0; the p-value is given beside it. Percentiles use linear interpolation (numpy's default), like
:func:`akool_lab.metrics.percentile`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

__all__ = ["HEADLINE_METRICS", "Difference", "bootstrap_interval", "compare_metric", "compare_records", "mann_whitney"]

#: The metrics a comparison and a report's headline speak of.
HEADLINE_METRICS = ("ttfr_ms", "ttfa_ms")
RESAMPLES = 2000
LEVEL = 0.95


def _clean(values: Iterable[float | None]) -> np.ndarray[Any, np.dtype[np.float64]]:
    present = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return np.asarray(present, dtype=np.float64)


def bootstrap_interval(
    values: Iterable[float | None], q: float = 50.0, *, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = 0
) -> tuple[float, float] | None:
    """A seeded bootstrap interval of the ``q``-th percentile of ``values`` (``None`` with fewer than 2 values)."""
    data = _clean(values)
    if data.size < 2:
        return None
    rng = np.random.default_rng(seed)
    samples = rng.choice(data, size=(resamples, data.size), replace=True)
    stats = np.percentile(samples, q, axis=1)
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(stats, [tail, 100 - tail])
    return float(low), float(high)


def mann_whitney(a: Iterable[float | None], b: Iterable[float | None]) -> float | None:
    """The two-sided p-value of the Mann-Whitney U test of ``a`` against ``b`` (normal approximation, tie-corrected;
    ``None`` when either side has fewer than 2 values)."""
    x, y = _clean(a), _clean(b)
    n1, n2 = x.size, y.size
    if n1 < 2 or n2 < 2:
        return None
    both = np.concatenate([x, y])
    order = both.argsort(kind="mergesort")
    ranks = np.empty(both.size, dtype=np.float64)
    sorted_values = both[order]
    # Average ranks of ties.
    _, first, counts = np.unique(sorted_values, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2.0
    u1 = ranks[:n1].sum() - n1 * (n1 + 1) / 2.0
    mean = n1 * n2 / 2.0
    n = n1 + n2
    tie_term = float(((counts**3) - counts).sum()) / (n * (n - 1))
    var = n1 * n2 / 12.0 * ((n + 1) - tie_term)
    if var <= 0:
        return 1.0
    z = (abs(u1 - mean) - 0.5) / math.sqrt(var)  # continuity correction
    return float(min(1.0, math.erfc(max(z, 0.0) / math.sqrt(2.0))))


@dataclass(frozen=True, slots=True)
class Difference:
    """The difference of one metric between run A and run B.

    Attributes:
        metric: the metric's name (``ttfr_ms``...).
        n_a, n_b: how many values each run has.
        median_a, median_b: each run's median.
        diff: ``median_b - median_a``.
        ci_low, ci_high: the bootstrap 95% interval of ``diff``.
        p_value: the Mann-Whitney U test's two-sided p-value.
    """

    metric: str
    n_a: int
    n_b: int
    median_a: float | None
    median_b: float | None
    diff: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None

    @property
    def significant(self) -> bool | None:
        """Whether the interval of the difference excludes 0 (``None`` when there is too little data to tell)."""
        if self.ci_low is None or self.ci_high is None:
            return None
        return self.ci_low > 0 or self.ci_high < 0

    @property
    def verdict(self) -> str:
        """The difference in words: ``"B is slower by 120.3 ms (95% CI 80.1 to 161.0; p = 0.001): significant"``."""
        if self.diff is None or self.significant is None:
            return "too few values to compare"
        direction = "slower" if self.diff > 0 else "faster"
        p = "" if self.p_value is None else f"; Mann-Whitney p = {self.p_value:.3g}"
        head = f"B is {direction} by {abs(self.diff):.1f} ms (95% CI {self.ci_low:.1f} to {self.ci_high:.1f}{p})"
        return head + (": significant" if self.significant else ": not significant (the interval contains 0)")

    def as_dict(self) -> dict[str, Any]:
        """A plain dict (for CSV and JSON)."""
        return {
            "metric": self.metric,
            "n_a": self.n_a,
            "n_b": self.n_b,
            "median_a": self.median_a,
            "median_b": self.median_b,
            "diff": self.diff,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "p_value": self.p_value,
            "significant": self.significant,
        }


def compare_metric(
    metric: str,
    a: Iterable[float | None],
    b: Iterable[float | None],
    *,
    resamples: int = RESAMPLES,
    level: float = LEVEL,
    seed: int = 0,
) -> Difference:
    """Compare one metric's values of run A and run B (see the module docstring)."""
    x, y = _clean(a), _clean(b)
    med_a = float(np.median(x)) if x.size else None
    med_b = float(np.median(y)) if y.size else None
    diff = med_b - med_a if med_a is not None and med_b is not None else None
    low = high = None
    if x.size >= 2 and y.size >= 2:
        rng = np.random.default_rng(seed)
        ma = np.median(rng.choice(x, size=(resamples, x.size), replace=True), axis=1)
        mb = np.median(rng.choice(y, size=(resamples, y.size), replace=True), axis=1)
        tail = (1.0 - level) / 2 * 100
        lo, hi = np.percentile(mb - ma, [tail, 100 - tail])
        low, high = float(lo), float(hi)
    return Difference(metric, int(x.size), int(y.size), med_a, med_b, diff, low, high, mann_whitney(x, y))


def compare_records(a: Sequence[Any], b: Sequence[Any], metrics: Sequence[str] = HEADLINE_METRICS) -> list[Difference]:
    """Compare two runs' message records (warm-up messages left out) on each of ``metrics``."""

    def values(records: Sequence[Any], metric: str) -> list[float | None]:
        return [getattr(r, metric, None) for r in records if not getattr(r, "warmup", False)]

    return [compare_metric(m, values(a, m), values(b, m)) for m in metrics]
