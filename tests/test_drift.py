"""Tests of steward.drift: compare and DriftDetector against scipy, alarms, reports and errors.

The statistics themselves are tested in test_stats.py, the domain classifier in
test_domain_classifier.py and the SVG charts in test_plots.py.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import xml.etree.ElementTree as ElementTree
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import spatial, stats

from steward.data import drift
from steward.data.drift import DriftDetector, compare, hellinger_from_counts, psi_from_counts
from steward.data.drift import classifier as domain_classifier
from steward.data.drift import ks as steward_ks
from steward.data.drift import stats as steward_stats
from steward.errors import InvalidInputError, NotFittedError

TOLERANCE = 1e-9
# A copy ships with the tests (tests/data/README.md says where it comes from); the variable points
# the tests at another one.
ELECTRICITY = Path(
    os.environ.get(
        "STEWARD_ELECTRICITY_CSV", Path(__file__).parent / "data" / "electricity-normalized.csv"
    )
)


def reference_bins(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> tuple[Any, Any]:
    """Counts on bins at the reference quantiles (the inverted CDF: the smallest value whose share
    at or below it reaches k/bins, in exact integer arithmetic), (e[i-1], e[i]]."""
    ordered, n = np.sort(reference), reference.size
    edges = np.unique([ordered[-(-k * n // bins) - 1] for k in range(1, bins)])

    def count(values: np.ndarray) -> np.ndarray:
        return np.bincount(np.searchsorted(edges, values, side="left"), minlength=edges.size + 1)

    return count(reference), count(current)


def mixed_frames(seed: int, n_reference: int, n_current: int, shift: float = 0.0) -> tuple:
    rng = np.random.default_rng(seed)

    def frame(n_rows: int, offset: float) -> pd.DataFrame:
        amount = rng.lognormal(offset, 1.0, size=n_rows)
        amount[rng.random(n_rows) < 0.05] = np.nan
        return pd.DataFrame(
            {
                "amount": amount,
                "score": rng.normal(offset, 1.0, size=n_rows),
                "visits": rng.poisson(3, size=n_rows),
                "plan": rng.choice(["basic", "plus", "pro"], p=[0.5, 0.3, 0.2], size=n_rows),
            }
        )

    return frame(n_reference, 0.0), frame(n_current, shift)


def null_frames(seed: int, n_reference: int, n_current: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """16 numeric and 4 categorical columns, reference and current from one distribution."""
    rng = np.random.default_rng(seed)

    def frame(n_rows: int) -> pd.DataFrame:
        columns: dict[str, Any] = {f"normal_{i}": rng.normal(size=n_rows) for i in range(8)}
        columns.update({f"skewed_{i}": rng.exponential(size=n_rows) for i in range(4)})
        columns.update({f"count_{i}": rng.poisson(2.0, size=n_rows) for i in range(4)})
        columns.update(
            {
                f"category_{i}": rng.choice(
                    list("abcdef"), p=[0.4, 0.2, 0.2, 0.1, 0.07, 0.03], size=n_rows
                )
                for i in range(4)
            }
        )
        return pd.DataFrame(columns)

    return frame(n_reference), frame(n_current)


# --- compare against scipy ---------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_compare_statistics_equal_scipy_on_the_raw_columns(seed: int) -> None:
    reference, current = mixed_frames(seed, 3_000, 2_000, shift=0.1 * seed)
    report = compare(reference, current)
    rows = {(row.column, row.method): row for row in report.results}
    for column in ("amount", "score", "visits"):
        ref = reference[column].dropna().to_numpy(dtype=float)
        cur = current[column].dropna().to_numpy(dtype=float)
        ks = stats.ks_2samp(ref, cur)
        assert rows[column, "ks"].statistic == pytest.approx(ks.statistic, abs=TOLERANCE)
        assert rows[column, "ks"].p_value == pytest.approx(ks.pvalue, abs=TOLERANCE)
        wasserstein = stats.wasserstein_distance(ref, cur) / np.std(ref)
        assert rows[column, "wasserstein"].statistic == pytest.approx(wasserstein, rel=TOLERANCE)
        ref_counts, cur_counts = reference_bins(ref, cur)
        js = spatial.distance.jensenshannon(
            ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum(), base=2
        )
        assert rows[column, "jensen_shannon"].statistic == pytest.approx(js, abs=TOLERANCE)
        assert rows[column, "psi"].statistic == pytest.approx(
            psi_from_counts(ref_counts, cur_counts), abs=TOLERANCE
        )
        assert rows[column, "hellinger"].statistic == pytest.approx(
            hellinger_from_counts(ref_counts, cur_counts), abs=TOLERANCE
        )
    plans = sorted(set(reference["plan"]) | set(current["plan"]))
    table = [
        [int((frame["plan"] == plan).sum()) for plan in plans] for frame in (reference, current)
    ]
    chi_square = stats.chi2_contingency(table, correction=False)
    # The p-value is resampled (the asymptotic one fails on sparse tables); on this dense table
    # it agrees with the asymptotic one within the resampling error of 1,000 draws.
    p_value = rows["plan", "chi_square"].p_value
    assert p_value == pytest.approx(chi_square.pvalue, abs=0.005 + 4 * math.sqrt(0.25 / 1_000))
    assert rows["plan", "chi_square"].statistic == pytest.approx(
        math.sqrt(chi_square.statistic / np.sum(table)), abs=TOLERANCE
    )


def test_report_adjusted_p_values_are_bh_of_its_raw_p_values() -> None:
    report = compare(*mixed_frames(7, 2_000, 2_000, shift=0.2))
    raw = [row.p_value for row in report.results]
    adjusted = [row.adjusted_p_value for row in report.results]
    np.testing.assert_allclose(adjusted, stats.false_discovery_control(raw), atol=TOLERANCE)
    assert all(row.significant == (row.adjusted_p_value <= 0.05) for row in report.results)
    assert all(
        row.alarm == (row.significant and row.statistic > row.threshold) for row in report.results
    )


# --- alarms -----------------------------------------------------------------------------------------


def test_no_drift_rarely_alarms_or_tests_significant_across_seeds() -> None:
    """Reference and current from one distribution, 30 runs of 20 columns, with BH.

    Under BH and no drift, the chance that a run has any significant test is at most alpha; the
    bound allows the count of such runs up to the binomial's 99.9th percentile. With the default
    floors, alarms must be rarer still. Each method's raw p-values must also not fall below 0.05
    more often than a binomial allows. (500 resamples keep the test fast; fewer resamples only
    coarsen the resampled p-values.)
    """
    n_runs, alpha = 30, 0.05
    runs_significant = runs_alarmed = 0
    raw_p_values: dict[str, list[float]] = {}
    for seed in range(n_runs):
        reference, current = null_frames(seed, 1_000, 600)
        report = compare(reference, current, random_state=seed, n_resamples=500)
        runs_significant += any(row.significant for row in report.results)
        runs_alarmed += report.alarmed
        for row in report.results:
            raw_p_values.setdefault(row.method, []).append(row.p_value)
    bound = stats.binom.ppf(0.999, n_runs, alpha)
    assert runs_significant <= bound
    assert runs_alarmed <= runs_significant
    for method, p_values in raw_p_values.items():
        below = int(np.sum(np.array(p_values) < alpha))
        assert below <= stats.binom.ppf(0.999, len(p_values), alpha), method


def test_clear_shift_alarms_on_the_shifted_column_only() -> None:
    rng = np.random.default_rng(11)
    reference = pd.DataFrame({"a": rng.normal(size=3_000), "b": rng.normal(size=3_000)})
    current = pd.DataFrame({"a": rng.normal(size=3_000), "b": rng.normal(1.0, size=3_000)})
    report = compare(reference, current)
    assert report.alarmed
    assert report.alarmed_columns == ["b"]
    assert all(row.alarm for row in report.results if row.column == "b")


def test_tiny_shift_on_a_huge_sample_is_significant_but_under_the_floor() -> None:
    rng = np.random.default_rng(12)
    shift = 0.03  # standard deviations: a third of the smallest default floor's equivalent
    reference = pd.DataFrame({"x": rng.normal(size=200_000)})
    current = pd.DataFrame({"x": rng.normal(shift, size=200_000)})
    report = compare(reference, current)
    rows = {row.method: row for row in report.results}
    assert rows["ks"].significant and rows["wasserstein"].significant
    assert rows["wasserstein"].statistic < rows["wasserstein"].threshold
    assert not report.alarmed


def test_new_category_is_its_own_bucket_reported_and_alarmed() -> None:
    rng = np.random.default_rng(13)
    reference = pd.DataFrame({"plan": rng.choice(["basic", "pro"], size=4_000)})
    current = pd.DataFrame({"plan": rng.choice(["basic", "pro", "enterprise"], size=4_000)})
    report = compare(reference, current)
    summary = report.columns["plan"]
    assert summary.n_unseen == int((current["plan"] == "enterprise").sum())
    assert summary.unseen_categories == {"enterprise": summary.n_unseen}
    assert report.alarmed_columns == ["plan"]
    assert "enterprise" in report.to_text()


def test_constant_reference_column_alarms_once_the_current_varies() -> None:
    rng = np.random.default_rng(14)
    reference = pd.DataFrame({"flag_rate": np.full(2_000, 0.25)})
    current = pd.DataFrame({"flag_rate": rng.uniform(0.0, 0.5, size=2_000)})
    report = compare(reference, current)
    # No standard deviation, no bins: the column is judged by the share of other values (its KS).
    assert [row.method for row in report.results] == ["ks"]
    values = current["flag_rate"].to_numpy()
    larger_side = max(np.mean(values < 0.25), np.mean(values > 0.25))
    assert report.results[0].statistic == pytest.approx(larger_side)
    assert report.alarmed
    assert "2000 of 2000 current values (100.0%) differ" in report.columns["flag_rate"].note
    assert report.to_dict()["columns"]["flag_rate"]["note"] == report.columns["flag_rate"].note
    assert not compare(reference, reference).alarmed


def test_booleans_are_numbers_unless_named_categorical() -> None:
    rng = np.random.default_rng(15)
    reference = pd.DataFrame({"churned": rng.random(3_000) < 0.2})
    current = pd.DataFrame({"churned": rng.random(3_000) < 0.4})
    assert {row.method for row in compare(reference, current).results} == set(drift.NUMERIC_METHODS)
    report = compare(reference, current, categorical=["churned"])
    assert {row.method for row in report.results} == set(drift.CATEGORICAL_METHODS)
    assert report.alarmed


def test_floors_can_be_set_per_method_and_per_column() -> None:
    reference, current = mixed_frames(16, 1_000, 1_000)
    report = compare(reference, current, floors={"psi": 0.25, "score": {"ks": 0.05}})
    thresholds = {(row.column, row.method): row.threshold - row.noise for row in report.results}
    assert (
        thresholds["amount", "psi"]
        == pytest.approx(thresholds["plan", "psi"])
        == pytest.approx(0.25)
    )
    assert thresholds["score", "ks"] == pytest.approx(0.05)
    assert thresholds["amount", "ks"] == pytest.approx(drift.DEFAULT_FLOORS["ks"])


def test_same_random_state_reproduces_the_report_and_columns_do_not_interact() -> None:
    reference, current = mixed_frames(17, 1_500, 1_000, shift=0.05)
    first = compare(reference, current, random_state=3).to_frame()
    pd.testing.assert_frame_equal(first, compare(reference, current, random_state=3).to_frame())
    alone = compare(reference, current, columns=["amount"], random_state=3, n_resamples=1_000)
    together = compare(reference, current, random_state=3, n_resamples=1_000)
    alone_p = [row.p_value for row in alone.results]
    assert alone_p == [row.p_value for row in together.results if row.column == "amount"]


def test_fitted_detector_gives_the_same_report_as_compare() -> None:
    reference, current = mixed_frames(18, 1_500, 1_000, shift=0.3)
    detector = DriftDetector(random_state=5).fit(reference)
    assert set(detector.kinds_) == {"amount", "score", "visits", "plan"}
    pd.testing.assert_frame_equal(
        detector.compare(current).to_frame(), compare(reference, current, random_state=5).to_frame()
    )


def test_arrow_table_and_arrow_stream_inputs_give_the_pandas_report() -> None:
    reference, current = mixed_frames(19, 1_000, 800, shift=0.2)
    expected = compare(reference, current).to_frame()

    class ArrowStream:  # what a polars DataFrame offers, without needing polars installed
        def __init__(self, table: pa.Table) -> None:
            self.table = table

        def __arrow_c_stream__(self, requested_schema: object = None) -> object:
            return self.table.__arrow_c_stream__(requested_schema)

    tables = [pa.Table.from_pandas(frame, preserve_index=False) for frame in (reference, current)]
    pd.testing.assert_frame_equal(compare(*tables).to_frame(), expected)
    streams = [ArrowStream(table) for table in tables]
    pd.testing.assert_frame_equal(compare(*streams).to_frame(), expected)


# --- the electricity data (real drift) ------------------------------------------------------------


@pytest.fixture(scope="module")
def electricity() -> pd.DataFrame:
    return pd.read_csv(ELECTRICITY)


# Half-hourly NSW market data from 7 May 1996 (48 rows a day). "date" is the time index and
# "day"/"period" the calendar position, so they are left out: they move by construction.
MARKET_COLUMNS = ["nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "class"]


def test_electricity_first_tenth_against_the_last_tenth_alarms_on_several_columns(
    electricity: pd.DataFrame,
) -> None:
    tenth = len(electricity) // 10
    reference, current = electricity.iloc[:tenth], electricity.iloc[-tenth:]
    report = compare(reference, current, columns=MARKET_COLUMNS)
    assert len(report.alarmed_columns) >= 3
    # A column constant in the reference (the Victorian series were filled in for the first year)
    # that varies two years later must alarm.
    for column in MARKET_COLUMNS[:-1]:
        if reference[column].nunique() == 1 and current[column].nunique() > 1:
            assert column in report.alarmed_columns


def test_electricity_adjacent_spring_windows_are_quiet(electricity: pd.DataFrame) -> None:
    """Adjacent four-week windows from the spring 1996 demand trough compare as quiet.

    Spring sits between the winter heating peak and the summer cooling peak, so NSW demand is
    low and flat, and the weekly and daily calendar mix of two whole four-week windows is the same.
    Three overlapping pairs starting 17 Sep, 24 Sep and 1 Oct 1996 must all be quiet. The NSW spot
    price is left out: it has no stable stretch in the first year (all 44 pairs of adjacent
    four-week windows, stepped by a week, differ by a KS statistic of 0.11 or more), which is real
    movement of a spot price, not noise.
    """
    columns = ["nswdemand", "class", "period", "day", "vicprice", "vicdemand", "transfer"]
    days, window = 48, 28 * 48
    for first_day in (133, 140, 147):
        start = first_day * days
        reference = electricity.iloc[start : start + window]
        current = electricity.iloc[start + window : start + 2 * window]
        report = compare(reference, current, columns=columns)
        assert not report.alarmed, report.to_text()


# --- the report -------------------------------------------------------------------------------------


def test_to_dict_is_json_safe_and_has_the_documented_shape() -> None:
    report = compare(*mixed_frames(20, 1_000, 1_000, shift=1.0))
    payload = json.loads(json.dumps(report.to_dict(), allow_nan=False))
    assert payload["alarm"] is True
    assert len(payload["results"]) == len(report.results)
    for row in payload["results"]:
        assert {"column", "method", "statistic", "threshold", "alarm"} <= set(row)
        assert isinstance(row["alarm"], bool)
    assert payload["columns"]["plan"]["kind"] == "categorical"


class _ReportParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.svg_columns: list[str] = []
        self.alarm_rows: list[tuple[str, str]] = []
        self.fetching: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "svg":
            self.svg_columns.append(str(values["data-column"]))
        if tag == "tr" and "alarm" in str(values.get("class", "")).split():
            self.alarm_rows.append((str(values["data-column"]), str(values["data-method"])))
        if tag in ("script", "link", "img", "iframe") or "src" in values:
            self.fetching.append(tag)


def test_to_html_draws_an_svg_per_column_and_highlights_the_alarmed_rows(tmp_path: Path) -> None:
    report = compare(*mixed_frames(21, 1_500, 1_500, shift=0.5))
    path = tmp_path / "drift.html"
    page = report.to_html(path)
    assert path.read_text(encoding="utf-8") == page
    parser = _ReportParser()
    parser.feed(page)
    assert parser.svg_columns == list(report.columns)
    expected = [(row.column, row.method) for row in report.results if row.alarm]
    assert expected and parser.alarm_rows == expected
    assert parser.fetching == []  # self-contained: nothing to load


def test_each_plot_of_the_html_page_is_an_svg_with_both_sides_bars() -> None:
    reference, current = mixed_frames(21, 1_500, 1_500, shift=0.5)
    current["plan"] = [f"plan <{index % 20}>" for index in range(len(current))]  # many, escaped
    report = compare(reference, current)
    svgs = re.findall(r"<svg .*?</svg>", report.to_html(), flags=re.DOTALL)
    assert len(svgs) == len(report.columns)
    for svg, summary in zip(svgs, report.columns.values(), strict=True):
        root = ElementTree.fromstring(svg)
        assert root.get("data-column") == summary.column
        bars = [rect for rect in root.iter("{http://www.w3.org/2000/svg}rect")]
        assert len(bars) == 2 * len(summary.plot.labels) + 2  # and the two legend keys
    labels = ElementTree.fromstring(svgs[-1]).iter("{http://www.w3.org/2000/svg}text")
    assert any(str(label.text).startswith("plan <") for label in labels)


def test_to_text_lists_every_result_under_a_verdict() -> None:
    report = compare(*mixed_frames(22, 1_000, 1_000))
    lines = report.to_text().splitlines()
    assert lines[0].startswith("drift: ")
    for row in report.results:
        assert any(line.split()[:2] == [row.column, row.method] for line in lines)


# --- bad input ------------------------------------------------------------------------------------


def test_a_column_missing_from_the_current_data_is_named() -> None:
    reference, current = mixed_frames(25, 100, 100)
    with pytest.raises(InvalidInputError, match="'score'.*missing from the current"):
        compare(reference, current.drop(columns="score"))


@pytest.mark.parametrize("side", ["reference", "current"])
def test_empty_data_is_rejected(side: str) -> None:
    reference, current = mixed_frames(26, 100, 100)
    frames = {"reference": reference, "current": current}
    frames[side] = frames[side].iloc[:0]
    with pytest.raises(InvalidInputError, match=f"the {side} data has no rows"):
        compare(frames["reference"], frames["current"])


def test_non_numeric_values_in_a_numeric_column_are_rejected_by_name() -> None:
    reference = pd.DataFrame({"age": [30.0, 41.0, 52.0]})
    with pytest.raises(InvalidInputError, match="'age' is numeric in the reference.*categorical="):
        compare(reference, pd.DataFrame({"age": ["thirty", "forty", "fifty"]}))
    with pytest.raises(InvalidInputError, match="'age' of the current data mixes types"):
        compare(reference, pd.DataFrame({"age": pd.Series([30.0, "forty"], dtype=object)}))


def test_infinite_and_all_missing_columns_are_rejected_by_name() -> None:
    reference = pd.DataFrame({"ratio": [1.0, 2.0, 3.0]})
    with pytest.raises(InvalidInputError, match="'ratio' holds 1 infinite"):
        compare(reference, pd.DataFrame({"ratio": [1.0, np.inf, 2.0]}))
    with pytest.raises(InvalidInputError, match="'ratio' has no non-missing values in the current"):
        compare(reference, pd.DataFrame({"ratio": [np.nan, np.nan]}))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"methods": ["kolmogorov"]}, "unknown method"),
        ({"correction": "holm"}, "correction='holm' is unknown"),
        ({"alpha": 1.5}, "alpha must be within"),
        ({"floors": {"psi": -1}}, "must be a finite number >= 0"),
        ({"floors": {"tpyo": 0.1}}, "neither a method"),
        ({"floors": {"plan": {"ks": 0.1}}}, "not compared with that method"),
        ({"columns": ["nope"]}, "not in the reference data"),
        ({"n_resamples": 0}, "n_resamples must be an int >= 1"),
    ],
)
def test_bad_settings_are_rejected_with_what_to_do(options: dict, message: str) -> None:
    reference, current = mixed_frames(27, 100, 100)
    with pytest.raises(InvalidInputError, match=message):
        compare(reference, current, **options)


def test_unsupported_input_is_rejected() -> None:
    with pytest.raises(InvalidInputError, match="pass a pandas DataFrame"):
        compare([[1, 2]], [[1, 2]])


def test_an_unfitted_detector_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match=r"call fit\(reference\)"):
        DriftDetector().compare(pd.DataFrame({"x": [1.0]}))


def test_all_lists_every_public_name_of_the_module() -> None:
    public = {
        name
        for name, value in vars(drift).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == drift.__name__
    }
    assert public <= set(drift.__all__)
    assert all(hasattr(drift, name) for name in drift.__all__)


def test_drift_still_offers_the_names_that_moved_to_their_own_modules() -> None:
    moved = {
        "ALL_COLUMNS": domain_classifier,
        "DomainClassifierResult": domain_classifier,
        "domain_classifier_test": domain_classifier,
        "CATEGORICAL_METHODS": steward_stats,
        "NUMERIC_METHODS": steward_stats,
        "PSI_EPSILON": steward_stats,
        "WASSERSTEIN_GRID_BINS": steward_stats,
        "ChiSquareResult": steward_stats,
        "KSResult": steward_ks,
        "adjust_p_values": steward_stats,
        "chi_square_from_counts": steward_stats,
        "hellinger_from_counts": steward_stats,
        "jensen_shannon_from_counts": steward_stats,
        "ks_from_sorted": steward_ks,
        "psi_from_counts": steward_stats,
        "wasserstein_from_counts": steward_stats,
    }
    assert set(moved) <= set(drift.__all__)
    for name, module in moved.items():
        assert getattr(drift, name) is getattr(module, name), name
