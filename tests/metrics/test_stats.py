"""Statistics: percentiles, bootstrap intervals and grouped tables, against hand-computed values."""

from __future__ import annotations

import sys

import pytest

from akool_lab.metrics import (
    as_rows,
    length_bucket,
    message_timings,
    percentile,
    summarize,
    summary_table,
    to_dataframe,
)

from ._events import ev, one_session


def test_percentiles_interpolate_linearly_between_closest_ranks() -> None:
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 50) == 3.0
    assert percentile(values, 90) == pytest.approx(7.6)  # rank 3.6: 4 + 0.6 * (10 - 4)
    assert percentile(values, 99) == pytest.approx(9.76)  # rank 3.96
    assert percentile(values, 100) == 10.0
    assert percentile([10.0, 20.0, 30.0, 40.0], 50) == 25.0


def test_percentiles_agree_with_numpys_default_method() -> None:
    np = pytest.importorskip("numpy")
    values = sorted([3.1, 0.2, 9.9, 4.4, 4.4, 7.0, 1.5])
    for p in (1, 10, 25, 50, 75, 90, 99):
        assert percentile(values, p) == pytest.approx(float(np.percentile(values, p)))


def test_summarize_gives_the_usual_numbers_and_counts_missing_values() -> None:
    s = summarize([4.0, None, 1.0, 3.0, 2.0, 10.0])
    assert (s.n, s.missing, s.mean, s.min, s.p50, s.max) == (5, 1, 4.0, 1.0, 3.0, 10.0)
    assert s.p90 == pytest.approx(7.6)
    assert s.p99 == pytest.approx(9.76)


def test_the_bootstrap_interval_is_reproducible_with_a_seed_and_contains_the_median() -> None:
    values = [float(v) for v in (12, 15, 11, 19, 30, 14, 13, 16, 18, 22, 17, 25)]
    a = summarize(values, seed=7)
    b = summarize(values, seed=7)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)
    assert a.ci_low is not None and a.ci_high is not None and a.p50 is not None
    assert min(values) <= a.ci_low <= a.p50 <= a.ci_high <= max(values)
    assert a.ci_low < a.ci_high


def test_the_bootstrap_interval_of_a_seed_is_pinned() -> None:
    # Figures of the percentile bootstrap (2000 medians of resamples drawn by numpy's default_rng(seed), then their
    # linear-interpolation percentiles): a change of definition, resampling or seed handling shows here.
    values = [float(v) for v in (12, 15, 11, 19, 30, 14, 13, 16, 18, 22, 17, 25)]
    a = summarize(values, seed=7)
    assert (a.ci_low, a.ci_high) == pytest.approx((13.5, 20.5))
    b = summarize([0.1, 0.2, 0.3, 0.7, 1e-3, 5.5], seed=0, resamples=500, level=0.9)
    assert (b.p90, b.p99, b.ci_low, b.ci_high) == pytest.approx((3.1, 5.26, 0.1, 2.8525))
    assert b.mean == pytest.approx(1.1335)


def test_percentiles_do_not_need_sorted_values() -> None:
    assert percentile([10.0, 1.0, 4.0, 3.0, 2.0], 90) == pytest.approx(7.6)


def test_a_single_value_has_a_degenerate_interval_and_no_values_give_none() -> None:
    one = summarize([5.0])
    assert (one.n, one.p50, one.ci_low, one.ci_high) == (1, 5.0, 5.0, 5.0)
    empty = summarize([None, None])
    assert (empty.n, empty.missing, empty.mean, empty.p50, empty.ci_low) == (0, 2, None, None, None)


def test_summary_table_keeps_cold_apart_from_warm_by_default() -> None:
    table = summary_table(message_timings(one_session()), metrics=("ttfr_ms",))
    assert [(r["intent"], r["phase"], r["metric"], r["n"], r["p50"]) for r in table.rows] == [
        ("ask", "warm", "ttfr_ms", 1, 800.0),
        ("say", "cold", "ttfr_ms", 1, 300.0),
    ]


def test_summary_table_groups_by_any_field_or_callable_and_leaves_out_warmup() -> None:
    records = [
        {"session_id": "a", "text_chars": 5, "ttfr_ms": 100.0, "warmup": True},
        {"session_id": "a", "text_chars": 10, "ttfr_ms": 200.0, "warmup": False},
        {"session_id": "b", "text_chars": 300, "ttfr_ms": 400.0, "warmup": False},
        {"session_id": "b", "text_chars": 400, "ttfr_ms": None, "warmup": False},
    ]
    by_length = summary_table(records, metrics=("ttfr_ms",), by=length_bucket((20, 200)))
    assert by_length.group_by == ("text_length",)
    assert [(r["text_length"], r["n"], r["missing"], r["p50"]) for r in by_length.rows] == [
        ("0-19", 1, 0, 200.0),
        ("200+", 1, 1, 400.0),
    ]
    everything = summary_table(records, metrics=("ttfr_ms",), by=(), include_warmup=True)
    assert [(r["n"], r["p50"]) for r in everything.rows] == [(3, 200.0)]


def test_length_buckets_are_listed_in_numeric_order_not_text_order() -> None:
    records = [{"text_chars": n, "ttfr_ms": 100.0} for n in (600, 90, 5, 30, 250)]

    table = summary_table(records, metrics=("ttfr_ms",), by=length_bucket())

    assert [r["text_length"] for r in table.rows] == ["0-19", "20-79", "80-199", "200-499", "500+"]


def test_summary_table_renders_as_text_csv_and_html() -> None:
    table = summary_table(message_timings(one_session()), metrics=("ttfr_ms", "reply_ms"))
    assert "ttfr_ms" in str(table) and "p50" in str(table)
    csv_lines = table.to_csv().splitlines()
    assert csv_lines[0] == "intent,phase,metric,n,missing,mean,min,p50,p90,p99,max,ci_low,ci_high"
    assert len(csv_lines) == 1 + 4
    assert "<table" in table._repr_html_()


def test_as_rows_gives_plain_dicts_of_records_and_tables() -> None:
    rows = as_rows(message_timings(one_session()))
    assert rows[0]["mid"] == "m1" and rows[0]["phase"] == "cold" and rows[0]["gaps_ms"] == [50.0]
    assert as_rows(summary_table(message_timings(one_session())))[0]["metric"] == "ttfr_ms"


def test_to_dataframe_without_pandas_names_the_extra_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # what Python does for a module that cannot be imported
    with pytest.raises(ImportError, match=r"akool-lab\[pandas\]"):
        to_dataframe(message_timings(one_session()))


def test_to_dataframe_with_pandas_has_one_row_per_record() -> None:
    pytest.importorskip("pandas")
    frame = to_dataframe(message_timings(one_session()))
    assert list(frame["mid"]) == ["m1", "m2"]


def test_records_can_be_grouped_by_voice_and_language() -> None:
    records = message_timings([*one_session().events, ev("chat.sent", 10_000, mid="m3", idx=0, fin=True, bytes=1)])
    table = summary_table(records, metrics=("send_span_ms",), by=("voice", "lang"))
    assert [(r["voice"], r["lang"], r["n"]) for r in table.rows] == [("v1", "fr", 3)]


def test_importing_metrics_and_deriving_timings_does_not_load_matplotlib() -> None:
    import subprocess

    code = (
        "import sys, akool_lab, akool_lab.metrics as m; m.message_timings([]); m.summary_table([]); "
        "print('matplotlib' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
