"""Profiles: merges equal profiles of concatenations, windows read from Parquet, drift bounds hold.

Exact fields are compared exactly; moments against numpy within rounding; KLL quantiles within the
sketch's own rank error; profile-mode drift within its stated bound of scipy on the raw rows.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import steward.data.profiles as profiles_module
from steward.data import drift
from steward.data.drift.ks import ks_from_sorted
from steward.data.drift.stats import quantile_edges
from steward.data.events import PREDICTION_SCHEMA, EventLog
from steward.data.profiles import (
    Binning,
    ColumnProfile,
    DatasetProfile,
    ProfileStore,
    build_profiles,
    compare_profiles,
    drift_from_profiles,
    fit_binnings,
    merge_profiles,
    profile_frame,
)
from steward.data.profiles import store as profile_store
from steward.errors import InvalidInputError, NotFittedError

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
_TIMESTAMP = pa.timestamp("us", tz="UTC")
EPSILON = sys.float_info.epsilon

NUMERIC_BINNING = Binning(bins=20).fit(np.linspace(-100.0, 100.0, 401))
CATEGORICAL_BINNING = Binning("categorical").fit(["a", "a", "b", "c"])

# Finite numbers, missing values and infinities, so every counter of a profile is exercised.
numeric_values = st.lists(
    st.one_of(
        st.floats(min_value=-1e3, max_value=1e3, allow_nan=False),
        st.sampled_from([None, math.nan, math.inf, -math.inf, 0.0, 100.0, -100.0]),
    ),
    max_size=60,
)
category_values = st.lists(st.sampled_from(["a", "b", "c", "d", "e", None]), max_size=60)
MERGE_SETTINGS = settings(max_examples=80, deadline=None)


# --- helpers --------------------------------------------------------------------------------------


def finite(values: list[Any]) -> np.ndarray:
    array = np.array([math.nan if value is None else value for value in values], dtype=float)
    return array[np.isfinite(array)]


def assert_moments_match_numpy(profile: ColumnProfile, values: list[Any]) -> None:
    kept = finite(values)
    assert profile.finite_count == kept.size
    if kept.size == 0:
        assert math.isnan(profile.mean) and math.isnan(profile.variance)
        return
    # A mean near m is rounded to about EPSILON * |m| (numpy's too: it finds a variance of
    # about (EPSILON * m)² for constant data), and a merge multiplies that rounding by the
    # spread of the part means; the allowance is a thousand times that forward error.
    rounding = 1e3 * EPSILON * max(1.0, float(np.max(np.abs(kept))))
    assert profile.mean == pytest.approx(np.mean(kept), rel=1e-9, abs=rounding)
    assert profile.variance == pytest.approx(
        np.var(kept), rel=1e-9, abs=rounding * (float(np.ptp(kept)) + rounding)
    )


def assert_same_exact_fields(left: ColumnProfile, right: ColumnProfile) -> None:
    for name in ("count", "null_count", "violation_count", "unseen_count", "infinite_count"):
        assert getattr(left, name) == getattr(right, name), name
    assert left.finite_count == right.finite_count
    assert left.bin_counts.tolist() == right.bin_counts.tolist()
    assert (left.minimum, left.maximum) == (right.minimum, right.maximum)


def assert_same_bin_sums(left: ColumnProfile, right: ColumnProfile) -> None:
    """Bin sums agree up to rounding, and are exactly 0 (every value on the edge) alike."""
    if left.bin_sums is None or right.bin_sums is None:
        assert left.bin_sums is right.bin_sums is None
        return
    assert ((left.bin_sums == 0) == (right.bin_sums == 0)).all()
    scale = 1e-9 * max(1.0, float(np.max(np.abs(right.bin_sums), initial=0.0)))
    assert np.allclose(left.bin_sums, right.bin_sums, rtol=1e-9, atol=scale)


def rank_distance(sorted_values: np.ndarray, value: float, q: float) -> float:
    """How far q lies from the ranks that `value` occupies in the data."""
    low = np.searchsorted(sorted_values, value, side="left") / sorted_values.size
    high = np.searchsorted(sorted_values, value, side="right") / sorted_values.size
    return max(0.0, low - q, q - high)


def right_closed_counts(values: np.ndarray, edges: tuple[float, ...]) -> np.ndarray:
    """Counts on (-inf, e1], (e1, e2], ..., (ek, inf), computed by pandas as a cross-check."""
    bins = pd.cut(values, [-np.inf, *edges, np.inf], right=True, labels=False)
    return np.bincount(np.asarray(bins, dtype=int), minlength=len(edges) + 1)


def prediction_events(
    rng: np.random.Generator, n: int, received_at: dt.datetime, first_id: int = 0
) -> pa.Table:
    """Prediction events as EventLog.scan returns them, with JSON inputs and violations."""
    times = [START + dt.timedelta(minutes=int(m)) for m in rng.integers(0, 3 * 24 * 60, size=n)]
    inputs = [
        json.dumps({"tenure": float(t), "plan": str(p)})
        for t, p in zip(rng.normal(20, 5, n), rng.choice(["basic", "pro", "max"], n), strict=True)
    ]
    violations = [
        json.dumps([{"column": "tenure", "rule": "min"}]) if flag else None
        for flag in rng.random(n) < 0.1
    ]
    columns = {
        "kind": ["prediction"] * n,
        "system": ["churn"] * n,
        "id": [f"p{first_id + i}" for i in range(n)],
        "event_time": times,
        "received_at": [received_at] * n,
        "writer": ["w1"] * n,
        "sequence": list(range(first_id, first_id + n)),
        "model_version": [1 + i % 2 for i in range(n)],
        "inputs": inputs,
        "score": rng.random(n).tolist(),
        "decision": rng.choice(["call", "skip"], n).tolist(),
        "violations": violations,
    }
    return pa.table(
        {name: columns.get(name, [None] * n) for name in PREDICTION_SCHEMA.names},
        schema=PREDICTION_SCHEMA,
    )


EVENT_BINNINGS = {
    "tenure": Binning(bins=30).fit(np.random.default_rng(9).normal(20, 5, 5_000)),
    "plan": Binning("categorical").fit(["basic", "pro"]),
    "score": Binning(bins=10).fit(np.linspace(0.0, 1.0, 101)),
    "decision": Binning("categorical").fit(["call", "skip"]),
}


def expected_from_events(table: pa.Table) -> dict[str, ColumnProfile]:
    """Profiles of decoded events, built row by row with json.loads as the independent path."""
    inputs = [json.loads(text) for text in table.column("inputs").to_pylist()]
    broken = [
        any(item["column"] == "tenure" for item in json.loads(text)) if text else False
        for text in table.column("violations").to_pylist()
    ]
    return {
        "tenure": ColumnProfile.from_values(
            [row["tenure"] for row in inputs], EVENT_BINNINGS["tenure"], violation_count=sum(broken)
        ),
        "plan": ColumnProfile.from_values([row["plan"] for row in inputs], EVENT_BINNINGS["plan"]),
        "score": ColumnProfile.from_values(table.column("score"), EVENT_BINNINGS["score"]),
        "decision": ColumnProfile.from_values(table.column("decision"), EVENT_BINNINGS["decision"]),
    }


# --- API surface ----------------------------------------------------------------------------------


def test_every_exported_name_exists() -> None:
    assert all(hasattr(profiles_module, name) for name in profiles_module.__all__)
    public = {name for name in vars(profiles_module) if not name.startswith("_")}
    defined_here = {
        name
        for name in public
        if getattr(getattr(profiles_module, name), "__module__", None) == profiles_module.__name__
    }
    assert defined_here <= set(profiles_module.__all__)


# --- binning --------------------------------------------------------------------------------------


def test_numeric_edges_are_the_reference_quantiles_and_one_edge_below_the_minimum() -> None:
    # 2,003 rows, a prime, so no quantile position k/50 · n falls on a whole row by rounding.
    reference = np.random.default_rng(0).poisson(3.0, size=2_003).astype(float)
    binning = Binning(bins=50).fit(reference)
    positions = np.arange(51) / 50
    assert binning.quantiles_ is not None
    assert (
        binning.quantiles_.tolist()
        == np.quantile(reference, positions, method="inverted_cdf").tolist()
    )
    below = np.nextafter(reference.min(), -np.inf)
    assert binning.edges_.tolist() == [below, *np.unique(binning.quantiles_).tolist()]
    assert binning.n_bins == binning.edges_.size + 1
    profile = ColumnProfile.from_values(reference, binning)
    # The open end bins hold nothing of the reference; the next bin holds its minimum alone.
    assert profile.bin_counts[0] == profile.bin_counts[-1] == 0
    assert profile.bin_counts[1] == np.sum(reference == reference.min())


@pytest.mark.parametrize("bins", [2, 4, 5, 10, 20, 25, 50])
def test_coarse_edges_are_exact_modes_quantile_edges_of_the_same_reference(bins: int) -> None:
    rng = np.random.default_rng(bins)
    for reference in (
        rng.normal(size=3_001),
        rng.choice([0.0, 1.0], p=[0.7, 0.3], size=2_000),
        rng.poisson(2.0, size=1_999).astype(float),
        np.where(rng.random(2_500) < 0.6, 0.0, rng.exponential(size=2_500)),
    ):
        binning = Binning(bins=100).fit(reference)
        coarse = binning.coarse_edges(bins)
        assert coarse is not None
        assert coarse.tolist() == quantile_edges(np.sort(reference), bins).tolist()
        assert set(coarse.tolist()) <= set(binning.edges_.tolist())
    assert Binning(bins=100).fit([1.0, 2.0]).coarse_edges(7) is None  # 7 does not divide 100


def test_values_outside_the_reference_range_land_in_the_open_end_bins() -> None:
    profile = ColumnProfile.from_values([-1e9, -101.0, 0.0, 101.0, 1e9], NUMERIC_BINNING)
    assert profile.bin_counts[0] == 2 and profile.bin_counts[-1] == 2
    assert profile.bin_counts.sum() == 5


def test_a_value_on_an_edge_counts_in_the_bin_that_edge_closes() -> None:
    edge = float(NUMERIC_BINNING.edges_[3])
    profile = ColumnProfile.from_values([edge], NUMERIC_BINNING)
    assert np.flatnonzero(profile.bin_counts).tolist() == [3]


def test_categorical_binning_keeps_the_most_frequent_categories_up_to_the_cap() -> None:
    reference = ["x"] * 5 + ["y"] * 4 + ["z"] * 3 + ["w"] * 1 + [None] * 7
    binning = Binning("categorical", max_categories=2).fit(reference)
    assert binning.categories_ == ("x", "y")
    profile = ColumnProfile.from_values(reference, binning)
    assert profile.category_counts == {"x": 5, "y": 4}
    assert (profile.unseen_count, profile.null_count) == (4, 7)


def test_binnings_round_trip_through_json() -> None:
    for binning in (NUMERIC_BINNING, CATEGORICAL_BINNING):
        restored = Binning.from_dict(json.loads(json.dumps(binning.to_dict())))
        assert restored.to_dict() == binning.to_dict()
        assert restored.fingerprint_ == binning.fingerprint_


def test_an_unfitted_binning_says_to_call_fit() -> None:
    binning = Binning()
    for use in (lambda: binning.n_bins, binning.to_dict):
        with pytest.raises(NotFittedError, match=r"call fit\(reference_column\)"):
            use()
    with pytest.raises(NotFittedError, match="not fitted"):
        ColumnProfile.from_values([1.0], binning)
    frame = pd.DataFrame({"event_time": [START], "amount": [1.0]})
    with pytest.raises(NotFittedError):
        profile_frame(frame, {"amount": binning})


def test_fit_binnings_picks_the_kind_from_the_column_type() -> None:
    frame = pd.DataFrame({"amount": [1.0, 2.0], "count": [1, 2], "plan": ["a", "b"]})
    binnings = fit_binnings(frame, categorical=["count"])
    assert {name: binning.kind_ for name, binning in binnings.items()} == {
        "amount": "numeric",
        "count": "categorical",
        "plan": "categorical",
    }


def test_fit_binnings_names_the_column_it_cannot_bin() -> None:
    reference = pd.DataFrame({"amount": [1.0, 2.0], "empty": [math.nan, math.nan]})
    with pytest.raises(
        InvalidInputError, match="column 'empty': the reference column has no finite"
    ):
        fit_binnings(reference)


def test_a_malformed_binning_dict_is_rejected_with_the_fix() -> None:
    data = NUMERIC_BINNING.to_dict()
    with pytest.raises(InvalidInputError, match="Binning.to_dict"):
        Binning.from_dict({**data, "edges": [2.0, 1.0]})
    with pytest.raises(InvalidInputError, match="malformed"):
        Binning.from_dict({"kind": "numeric"})
    with pytest.raises(InvalidInputError, match="quantiles"):
        Binning.from_dict({**data, "quantiles": data["quantiles"][::-1]})


# A numeric binning as stored before the quantiles were kept (inner edges interpolated by
# np.quantile, no edge at the extremes), written by that version of Binning.to_dict.
OLD_BINNING = {
    "kind": "numeric",
    "bins": 4,
    "max_categories": 1000,
    "sketch_k": 200,
    "edges": [1.0, 2.5, 5.75],
    "categories": [],
    "fingerprint": "0a94dc77e863360d",
}


def test_a_binning_stored_before_the_quantiles_were_kept_loads_unchanged() -> None:
    binning = Binning.from_dict(OLD_BINNING)
    assert binning.quantiles_ is None and binning.coarse_edges(2) is None
    # The same fingerprint, so its stored profiles still merge and compare with new ones.
    assert binning.to_dict() == OLD_BINNING
    profile = ColumnProfile.from_values([0.0, 1.0, 2.0, 3.0, 6.0, 9.0], binning)
    assert profile.bin_counts.tolist() == [2, 1, 1, 2]
    assert profile.bin_means is not None and profile.bin_means.tolist() == [0.5, 2.0, 3.0, 7.5]


# --- merging --------------------------------------------------------------------------------------


@MERGE_SETTINGS
@given(numeric_values, numeric_values, st.integers(0, 5), st.integers(0, 5))
def test_merging_numeric_profiles_equals_profiling_the_concatenation(
    first: list[Any], second: list[Any], first_violations: int, second_violations: int
) -> None:
    first_violations *= bool(first)
    second_violations *= bool(second)
    merged = ColumnProfile.from_values(
        first, NUMERIC_BINNING, violation_count=first_violations
    ).merge(ColumnProfile.from_values(second, NUMERIC_BINNING, violation_count=second_violations))
    whole = ColumnProfile.from_values(
        first + second, NUMERIC_BINNING, violation_count=first_violations + second_violations
    )
    assert_same_exact_fields(merged, whole)
    assert_same_bin_sums(merged, whole)
    assert_moments_match_numpy(merged, first + second)
    kept = finite(first + second)
    # Each bin's mean from its sum lies within the bin, and equals numpy's mean of its values.
    edges = np.concatenate([[-np.inf], NUMERIC_BINNING.edges_, [np.inf]])
    assert whole.bin_means is not None
    for index in np.flatnonzero(whole.bin_counts):
        inside = kept[(kept > edges[index]) & (kept <= edges[index + 1])]
        assert whole.bin_means[index] == pytest.approx(np.mean(inside), rel=1e-12, abs=1e-9)
    assert merged.count == len(first + second)
    assert merged.null_count == sum(value is None or value != value for value in first + second)
    if kept.size:
        assert (merged.minimum, merged.maximum) == (kept.min(), kept.max())


@MERGE_SETTINGS
@given(category_values, category_values)
def test_merging_categorical_profiles_equals_profiling_the_concatenation(
    first: list[str | None], second: list[str | None]
) -> None:
    merged = ColumnProfile.from_values(first, CATEGORICAL_BINNING).merge(
        ColumnProfile.from_values(second, CATEGORICAL_BINNING)
    )
    whole = ColumnProfile.from_values(first + second, CATEGORICAL_BINNING)
    assert_same_exact_fields(merged, whole)
    both = first + second
    assert merged.category_counts == {name: both.count(name) for name in ("a", "b", "c")}
    assert merged.unseen_count == sum(value in ("d", "e") for value in both)
    assert dict(merged.unseen_values()) == {
        name: both.count(name) for name in ("d", "e") if both.count(name)
    }


@MERGE_SETTINGS
@given(numeric_values, numeric_values, numeric_values)
def test_merge_is_associative_and_commutative(
    first: list[Any], second: list[Any], third: list[Any]
) -> None:
    a, b, c = (ColumnProfile.from_values(part, NUMERIC_BINNING) for part in (first, second, third))
    orders = [
        a.merge(b).merge(c),
        a.merge(b.merge(c)),
        c.merge(a).merge(b),
        merge_profiles([b, c, a]),
    ]
    for other in orders[1:]:
        assert_same_exact_fields(orders[0], other)
        assert_same_bin_sums(orders[0], other)
        assert other.mean == pytest.approx(orders[0].mean, rel=1e-12, abs=1e-12, nan_ok=True)
        assert other.variance == pytest.approx(orders[0].variance, rel=1e-9, abs=1e-9, nan_ok=True)
        assert other.sketch.n == orders[0].sketch.n
    assert_moments_match_numpy(orders[0], first + second + third)


def test_merged_variance_equals_numpy_for_a_large_offset() -> None:
    # Chan's formula keeps the merged variance accurate where a sum of squares would lose it all.
    rng = np.random.default_rng(3)
    values = 1e6 + rng.normal(size=40_000)
    parts = [ColumnProfile.from_values(part, NUMERIC_BINNING) for part in np.array_split(values, 7)]
    merged = merge_profiles(parts)
    assert merged.variance == pytest.approx(np.var(values), rel=1e-9)
    assert merged.std == pytest.approx(np.std(values), rel=1e-9)
    assert merged.mean == pytest.approx(np.mean(values), rel=1e-12)


def test_merging_profiles_of_different_binnings_names_both_and_the_fix() -> None:
    other = Binning(bins=20).fit(np.linspace(-50.0, 50.0, 401))
    left = ColumnProfile.from_values([1.0], NUMERIC_BINNING)
    with pytest.raises(InvalidInputError, match="first differing edge #0") as caught:
        left.merge(ColumnProfile.from_values([1.0], other))
    assert NUMERIC_BINNING.fingerprint_ in str(caught.value)
    assert "same fitted Binning" in str(caught.value)
    with pytest.raises(
        InvalidInputError, match=f"numeric with {NUMERIC_BINNING.n_bins} bins vs categorical"
    ):
        left.merge(ColumnProfile.from_values(["a"], CATEGORICAL_BINNING))


# --- sketches and serialization -------------------------------------------------------------------


@pytest.mark.parametrize("seed", range(5))
def test_kll_quantiles_are_within_the_sketch_rank_error_of_the_exact_ones(seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = rng.lognormal(size=30_000)
    binning = Binning().fit(values[:1_000])
    parts = [ColumnProfile.from_values(part, binning) for part in np.array_split(values, 4)]
    ordered = np.sort(values)
    for profile in (ColumnProfile.from_values(values, binning), merge_profiles(parts)):
        error = profile.quantile_rank_error
        assert 0 < error < 0.02
        for q in np.linspace(0.0, 1.0, 21):
            assert rank_distance(ordered, profile.quantile(q), q) <= error
    assert profile.quantile(0.0) == values.min() and profile.quantile(1.0) == values.max()


def test_profiles_round_trip_through_json_with_their_sketches() -> None:
    rng = np.random.default_rng(1)
    numeric = ColumnProfile.from_values(
        [*rng.normal(size=5_000), None, math.inf], NUMERIC_BINNING, violation_count=3
    )
    categorical = ColumnProfile.from_values(["a", "d", "d", "e", None], CATEGORICAL_BINNING)
    for profile in (numeric, categorical):
        restored = ColumnProfile.from_dict(json.loads(json.dumps(profile.to_dict())))
        assert restored.to_dict() == profile.to_dict()
        assert_same_exact_fields(restored, profile)
    restored = ColumnProfile.from_dict(json.loads(json.dumps(numeric.to_dict())))
    assert [restored.quantile(q) for q in (0.1, 0.5, 0.9)] == [
        numeric.quantile(q) for q in (0.1, 0.5, 0.9)
    ]
    assert restored.unseen_sketch is None and numeric.violation_count == 3
    assert ColumnProfile.from_dict(categorical.to_dict()).unseen_values() == [("d", 2), ("e", 1)]


def test_a_profile_stored_before_the_bin_sums_were_kept_loads_without_them() -> None:
    data = ColumnProfile.from_values([1.0, 2.0, 50.0], NUMERIC_BINNING).to_dict()
    del data["bin_sums"]
    old = ColumnProfile.from_dict(data)
    assert old.bin_sums is None and old.bin_means is None
    new = ColumnProfile.from_values([3.0], NUMERIC_BINNING)
    assert new.bin_sums is not None
    merged = merge_profiles([old, new])  # a window mixing old and new buckets has no sums
    assert merged.bin_sums is None and merged.count == 4


def test_a_malformed_profile_dict_is_rejected() -> None:
    data = ColumnProfile.from_values([1.0], NUMERIC_BINNING).to_dict()
    with pytest.raises(InvalidInputError, match="malformed"):
        ColumnProfile.from_dict({**data, "sketch": "not base64!"})
    with pytest.raises(InvalidInputError, match="bin counts"):
        ColumnProfile.from_dict({**data, "bin_counts": [1, 2]})
    with pytest.raises(InvalidInputError, match="bin sums"):
        ColumnProfile.from_dict({**data, "bin_sums": [0.0]})


def test_histogram_gives_the_edges_with_open_ends_and_the_counts() -> None:
    values = np.random.default_rng(2).uniform(-150, 150, size=1_000)
    edges, counts = ColumnProfile.from_values(values, NUMERIC_BINNING).histogram()
    assert edges[0] == -np.inf and edges[-1] == np.inf
    assert counts.tolist() == right_closed_counts(values, tuple(edges[1:-1])).tolist()
    categories, category_counts = ColumnProfile.from_values(
        ["b", "b"], CATEGORICAL_BINNING
    ).histogram()
    assert dict(zip(categories, category_counts.tolist(), strict=True)) == {"a": 0, "b": 2, "c": 0}


def test_numeric_only_operations_refuse_a_categorical_profile() -> None:
    profile = ColumnProfile.from_values(["a"], CATEGORICAL_BINNING)
    with pytest.raises(InvalidInputError, match="needs a numeric profile"):
        profile.quantile(0.5)
    with pytest.raises(InvalidInputError, match="outside"):
        ColumnProfile.from_values([1.0], NUMERIC_BINNING).quantile(1.5)


# --- profiling frames -----------------------------------------------------------------------------


def hourly_frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    amount = rng.normal(size=n)
    amount[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame(
        {
            "event_time": START + pd.to_timedelta(rng.integers(0, 72 * 3600, size=n), unit="s"),
            "amount": amount,
            "plan": rng.choice(["a", "b", "c", "new"], size=n),
            "model_version": rng.choice([1, 2], size=n),
        }
    )


def test_profile_frame_buckets_by_hour_as_a_pandas_groupby() -> None:
    frame = hourly_frame(np.random.default_rng(4), 20_000)
    binnings = {"amount": NUMERIC_BINNING, "plan": CATEGORICAL_BINNING}
    rows = profile_frame(frame, binnings, bucket="1h")
    grouped = frame.groupby(frame["event_time"].dt.floor("h"))
    expected = pd.DataFrame(
        {
            "count": grouped.size(),
            "nulls": grouped["amount"].apply(lambda column: int(column.isna().sum())),
            "mean": grouped["amount"].mean(),
            "unseen": grouped["plan"].apply(lambda column: int((column == "new").sum())),
        }
    )
    amount = {row.bucket_start: row.profile for row in rows if row.column == "amount"}
    plan = {row.bucket_start: row.profile for row in rows if row.column == "plan"}
    assert sorted(amount) == [moment.to_pydatetime() for moment in expected.index]
    for moment, truth in expected.iterrows():
        profile = amount[moment.to_pydatetime()]
        assert (profile.count, profile.null_count) == (truth["count"], truth["nulls"])
        assert profile.mean == pytest.approx(truth["mean"], rel=1e-9)
        assert plan[moment.to_pydatetime()].unseen_count == truth["unseen"]


def test_profile_frame_reads_arrow_tables_and_naive_times_as_utc() -> None:
    frame = hourly_frame(np.random.default_rng(5), 2_000)
    naive = frame.assign(event_time=frame["event_time"].dt.tz_localize(None))
    binnings = {"amount": NUMERIC_BINNING}
    from_pandas = profile_frame(frame, binnings, bucket="1D")
    from_arrow = profile_frame(pa.Table.from_pandas(naive), binnings, bucket="1D")
    assert [row.bucket_start for row in from_arrow] == [row.bucket_start for row in from_pandas]
    assert [row.bucket_start for row in from_pandas] == [
        START + dt.timedelta(days=d) for d in range(3)
    ]
    for left, right in zip(from_pandas, from_arrow, strict=True):
        assert_same_exact_fields(left.profile, right.profile)


def test_profile_frame_keeps_model_versions_apart_and_sums_violations_per_bucket() -> None:
    frame = hourly_frame(np.random.default_rng(6), 5_000)
    flags = (np.random.default_rng(7).random(len(frame)) < 0.2).astype(int)
    rows = profile_frame(
        frame,
        {"amount": NUMERIC_BINNING},
        bucket="1D",
        violations={"amount": flags},
        model_version_column="model_version",
    )
    days = frame["event_time"].dt.floor("D")
    expected = (
        frame.assign(flags=flags).groupby([days, "model_version"])["flags"].agg(["sum", "size"])
    )
    found = {
        (pd.Timestamp(row.bucket_start), row.model_version): (
            row.profile.violation_count,
            row.profile.count,
        )
        for row in rows
    }
    assert found == {key: (int(s), int(n)) for key, (s, n) in expected.iterrows()}


def test_profile_frame_rejects_bad_buckets_times_and_violations() -> None:
    frame = hourly_frame(np.random.default_rng(8), 10)
    binnings = {"amount": NUMERIC_BINNING}
    with pytest.raises(InvalidInputError, match="fixed duration"):
        profile_frame(frame, binnings, bucket="1 fortnight")
    with pytest.raises(InvalidInputError, match="needs timestamps"):
        profile_frame(frame.assign(event_time="yesterday"), binnings)
    with pytest.raises(InvalidInputError, match=r"columns \['missing'\]"):
        profile_frame(frame, {"missing": NUMERIC_BINNING})
    with pytest.raises(InvalidInputError, match="one count >= 0 per row"):
        profile_frame(frame, binnings, violations={"amount": [1, 2]})
    with pytest.raises(InvalidInputError, match="binned as numeric"):
        profile_frame(frame, {"plan": NUMERIC_BINNING})


# --- streamed profiles ----------------------------------------------------------------------------


def test_profile_parquet_a_batch_at_a_time_equals_profile_frame_of_the_whole_table(
    tmp_path: Path,
) -> None:
    """Rows in random time order, so each hour's profile merges partials of several batches."""
    frame = hourly_frame(np.random.default_rng(41), 30_000)
    binnings = {"amount": NUMERIC_BINNING, "plan": CATEGORICAL_BINNING}
    table = pa.Table.from_pandas(frame, preserve_index=False)
    (tmp_path / "table").mkdir()
    for part in range(2):
        half = table.slice(part * 15_000, 15_000)
        pq.write_table(half, tmp_path / "table" / f"part-{part}.parquet", row_group_size=4_000)
    (tmp_path / "table" / "_SUCCESS").write_text("")  # skipped, as Spark skips it
    batches: list[int] = []
    streamed = profiles_module.profile_parquet(
        tmp_path / "table",
        binnings,
        model_version_column="model_version",
        batch_rows=5_000,
        on_batch=batches.append,
    )
    whole = profile_frame(table, binnings, model_version_column="model_version")
    assert sum(batches) == 30_000 and len(batches) >= 6
    # One row per column (in binnings order), hour and model version, in that order.
    keys = [(row.column, row.bucket_start, row.model_version) for row in streamed]
    order = [(list(binnings).index(column), start, version) for column, start, version in keys]
    assert order == sorted(order) and len(set(keys)) == len(keys)
    expected = {(row.column, row.bucket_start, row.model_version): row.profile for row in whole}
    assert set(keys) == set(expected)
    hours = frame["event_time"].dt.floor("h")
    for row in streamed:
        profile, truth = row.profile, expected[row.column, row.bucket_start, row.model_version]
        assert_same_exact_fields(profile, truth)
        if row.column == "plan":
            assert profile.category_counts == truth.category_counts
            continue
        assert_same_bin_sums(profile, truth)
        assert profile.finite_mean == pytest.approx(truth.finite_mean, rel=1e-9, abs=1e-12)
        assert profile.finite_m2 == pytest.approx(truth.finite_m2, rel=1e-9, abs=1e-9)
        mask = (hours == pd.Timestamp(row.bucket_start)) & (
            frame["model_version"] == row.model_version
        )
        values = np.sort(frame.loc[mask, "amount"].dropna().to_numpy())
        for q in (0.1, 0.5, 0.9):
            assert rank_distance(values, profile.quantile(q), q) <= profile.quantile_rank_error


def test_profile_batches_takes_pandas_and_arrow_frames_alike() -> None:
    frame = hourly_frame(np.random.default_rng(42), 3_000)
    binnings = {"amount": NUMERIC_BINNING}
    parts = [frame.iloc[:1_000], pa.Table.from_pandas(frame.iloc[1_000:], preserve_index=False)]
    streamed = profiles_module.profile_batches(parts, binnings, bucket="1D")
    whole = profile_frame(frame, binnings, bucket="1D")
    assert [row.bucket_start for row in streamed] == [row.bucket_start for row in whole]
    for left, right in zip(streamed, whole, strict=True):
        assert_same_exact_fields(left.profile, right.profile)


def test_profile_parquet_names_what_it_cannot_read(tmp_path: Path) -> None:
    binnings = {"amount": NUMERIC_BINNING}
    with pytest.raises(InvalidInputError, match="'.*nowhere' does not exist"):
        profiles_module.profile_parquet(tmp_path / "nowhere", binnings)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InvalidInputError, match="holds no files"):
        profiles_module.profile_parquet(tmp_path / "empty", binnings)
    (tmp_path / "text.parquet").write_text("not parquet")
    with pytest.raises(InvalidInputError, match="could not read .*text.parquet' as Parquet"):
        profiles_module.profile_parquet(tmp_path / "text.parquet", binnings)
    pq.write_table(pa.table({"event_time": pa.array([START], _TIMESTAMP)}), tmp_path / "t.parquet")
    with pytest.raises(InvalidInputError, match=r"columns \['amount'\] are not in the frame"):
        profiles_module.profile_parquet(tmp_path / "t.parquet", binnings)
    with pytest.raises(InvalidInputError, match="batch_rows=0 must be at least 1"):
        profiles_module.profile_parquet(tmp_path / "t.parquet", binnings, batch_rows=0)


def test_a_profile_merge_refuses_rows_of_another_column() -> None:
    frame = hourly_frame(np.random.default_rng(43), 100)
    rows = profile_frame(frame, {"amount": NUMERIC_BINNING})
    merge = profiles_module.ProfileMerge(["plan"])
    with pytest.raises(InvalidInputError, match="column 'amount' does not belong to this merge"):
        merge.add(rows)


# --- incremental builds ---------------------------------------------------------------------------


def test_incremental_builds_with_a_watermark_count_each_event_once() -> None:
    rng = np.random.default_rng(10)
    batches = [
        prediction_events(rng, 400, START + dt.timedelta(days=3, hours=k), first_id=400 * k)
        for k in range(3)
    ]
    all_rows, watermark = [], None
    for k in range(3):
        # Each run sees the whole log so far, as EventLog.scan returns it.
        seen = pa.concat_tables(batches[: k + 1])
        rows, watermark = build_profiles(seen, EVENT_BINNINGS, watermark)
        assert watermark == START + dt.timedelta(days=3, hours=k)
        assert sum(row.profile.count for row in rows if row.column == "score") == 400
        all_rows += rows
    again, unchanged = build_profiles(pa.concat_tables(batches), EVENT_BINNINGS, watermark)
    assert again == [] and unchanged == watermark
    window = DatasetProfile.from_rows(all_rows)
    expected = expected_from_events(pa.concat_tables(batches))
    for name, profile in expected.items():
        assert_same_exact_fields(window[name], profile)
    assert window["tenure"].mean == pytest.approx(expected["tenure"].mean, rel=1e-12)
    assert window["tenure"].violation_count > 0


def test_until_leaves_the_newest_events_for_the_next_run() -> None:
    rng = np.random.default_rng(11)
    early = prediction_events(rng, 50, START + dt.timedelta(days=4))
    late = prediction_events(rng, 70, START + dt.timedelta(days=5), first_id=50)
    both = pa.concat_tables([early, late])
    cutoff = START + dt.timedelta(days=4, hours=12)
    rows, watermark = build_profiles(both, EVENT_BINNINGS, None, until=cutoff)
    assert watermark == cutoff
    assert sum(row.profile.count for row in rows if row.column == "score") == 50
    rows, watermark = build_profiles(both, EVENT_BINNINGS, watermark)
    assert sum(row.profile.count for row in rows if row.column == "score") == 70


def test_inputs_that_are_not_numbers_or_json_count_as_missing() -> None:
    events = prediction_events(np.random.default_rng(12), 4, START)
    inputs = ['{"tenure": "oops"}', "not json", None, '{"tenure": 3, "score": 99}']
    events = events.set_column(
        events.schema.get_field_index("inputs"), "inputs", pa.array(inputs, pa.string())
    )
    binnings = {
        "tenure": EVENT_BINNINGS["tenure"],
        "score": EVENT_BINNINGS["score"],
        "inputs.score": Binning().fit([0.0, 100.0]),
    }
    rows, _ = build_profiles(events, binnings, None, bucket="30D")
    window = DatasetProfile.from_rows(rows)
    assert (window["tenure"].count, window["tenure"].null_count) == (4, 3)
    assert window["inputs.score"].maximum == 99.0  # the input, not the event's score column
    assert window["score"].maximum == pytest.approx(max(events.column("score").to_pylist()))


def test_a_row_counts_once_in_each_column_its_violations_name() -> None:
    events = prediction_events(np.random.default_rng(15), 3, START)
    violations = [
        json.dumps([{"column": "tenure"}, {"column": "tenure"}, {"column": "plan"}]),
        json.dumps([{"column": "plan"}]),
        "[]",
    ]
    events = events.set_column(
        events.schema.get_field_index("violations"),
        PREDICTION_SCHEMA.field("violations"),
        pa.array(violations, pa.string()),
    )
    rows, _ = build_profiles(events, EVENT_BINNINGS, None, bucket="30D")
    window = DatasetProfile.from_rows(rows)
    found = {name: window[name].violation_count for name in EVENT_BINNINGS}
    assert found == {"tenure": 1, "plan": 2, "score": 0, "decision": 0}


def test_unseen_counts_stay_exact_for_many_distinct_unseen_values() -> None:
    values = [f"id-{index}" for index in range(2_000)] + ["frequent"] * 50 + ["a"] * 7
    profile = ColumnProfile.from_values(values, CATEGORICAL_BINNING)
    assert profile.unseen_count == 2_050 and profile.category_counts["a"] == 7
    assert profile.unseen_values()[0] == ("frequent", 50)


# --- storage --------------------------------------------------------------------------------------


def test_a_window_read_from_the_store_equals_profiling_its_rows(tmp_path: Path) -> None:
    frame = hourly_frame(np.random.default_rng(13), 30_000)
    binnings = {"amount": NUMERIC_BINNING, "plan": CATEGORICAL_BINNING}
    rows = profile_frame(frame, binnings, model_version_column="model_version")
    store = ProfileStore(tmp_path / "profiles")
    store.write("churn", rows[::2], watermark=START)
    store.write("churn", rows[1::2], watermark=START + dt.timedelta(hours=1))
    store.write("fraud", rows, watermark=START)
    start, end = START + dt.timedelta(hours=6), START + dt.timedelta(hours=42)
    window = store.read("churn", start, end)
    inside = frame[(frame["event_time"] >= start) & (frame["event_time"] < end)]
    for name, binning in binnings.items():
        expected = ColumnProfile.from_values(inside[name], binning)
        assert_same_exact_fields(window[name], expected)
    assert window["amount"].variance == pytest.approx(inside["amount"].var(ddof=0), rel=1e-9)
    assert store.watermark("churn") == START + dt.timedelta(hours=1)
    only_one = store.read("churn", start, end, columns=["plan"], model_versions=[2])
    assert only_one.columns == ["plan"]
    assert only_one["plan"].count == int((inside["model_version"] == 2).sum())


def test_profiles_stored_before_the_bin_sums_were_kept_still_read(tmp_path: Path) -> None:
    frame = hourly_frame(np.random.default_rng(14), 2_000)
    binnings = {"amount": NUMERIC_BINNING, "plan": CATEGORICAL_BINNING}
    rows = profile_frame(frame, binnings)
    store = ProfileStore(tmp_path / "profiles")
    old_file = store.write("churn", rows[::2], watermark=START)
    assert old_file is not None
    table = pq.read_table(old_file)
    pq.write_table(table.drop_columns(["bin_sums"]), old_file)  # as an older version wrote it
    end = START + dt.timedelta(days=4)
    old_only = store.read("churn", START, end)
    assert old_only["amount"].bin_sums is None
    store.write("churn", rows[1::2], watermark=START + dt.timedelta(hours=1))
    mixed = store.read_rows("churn", START, end)
    with_sums = {row.profile.bin_sums is not None for row in mixed if row.column == "amount"}
    assert with_sums == {False, True}
    window = store.read("churn", START, end)
    expected = ColumnProfile.from_values(frame["amount"], NUMERIC_BINNING)
    assert_same_exact_fields(window["amount"], expected)
    assert window["amount"].bin_sums is None  # one old bucket leaves the window without sums
    reference = DatasetProfile({"amount": expected})
    report = compare_profiles(reference, window, columns=["amount"], n_resamples=200)
    assert not report.alarmed  # the same rows: quiet, by the bounds of profiles without sums


def test_an_empty_store_has_no_watermark_and_empty_windows(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles")
    assert store.watermark("churn") is None
    assert store.read("churn", START, START + dt.timedelta(days=1)).columns == []
    assert store.write("churn", [], watermark=START) is None
    with pytest.raises(InvalidInputError, match="not a valid name"):
        store.write("../escape", [])


def test_late_events_add_a_partial_row_that_the_merge_on_read_absorbs(tmp_path: Path) -> None:
    rng = np.random.default_rng(14)
    store = ProfileStore(tmp_path / "profiles")
    first = prediction_events(rng, 200, START + dt.timedelta(days=3))
    rows, watermark = build_profiles(first, EVENT_BINNINGS, None, bucket="1D")
    store.write("churn", rows, watermark=watermark)
    # A day later an event for the first day arrives: its bucket gets a second partial row.
    late = prediction_events(rng, 1, START + dt.timedelta(days=4), first_id=200)
    late = late.set_column(3, PREDICTION_SCHEMA.field("event_time"), pa.array([START], _TIMESTAMP))
    everything = pa.concat_tables([first, late])
    rows, watermark = build_profiles(
        everything, EVENT_BINNINGS, store.watermark("churn"), bucket="1D"
    )
    assert [(row.bucket_start, row.column) for row in rows if row.column == "score"] == [
        (START, "score")
    ]
    store.write("churn", rows, watermark=watermark)
    day = store.read_rows("churn", START, START + dt.timedelta(days=1), columns=["score"])
    # One row per model version from the first build, and the late event's partial row.
    assert sorted(row.model_version for row in day) == [1, 1, 2]
    window = store.read("churn", START, START + dt.timedelta(days=3))
    for name, profile in expected_from_events(everything).items():
        assert_same_exact_fields(window[name], profile)


def test_refresh_profiles_a_real_event_log_once_per_event(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path / "profiles")
    with EventLog(tmp_path / "events") as log:
        for batch in range(3):
            log.append(
                [
                    {
                        "kind": "prediction",
                        "system": "churn",
                        "id": f"p{batch}-{i}",
                        "event_time": START + dt.timedelta(hours=i),
                        "model_version": 1,
                        "inputs": {"tenure": float(i), "plan": "pro"},
                        "score": i / 10,
                        "decision": "call",
                    }
                    for i in range(10)
                ]
            )
            # With no settle time the whole log so far is profiled, then nothing is left.
            settle = dt.timedelta(0)
            written = store.refresh(log, "churn", EVENT_BINNINGS, settle=settle)
            assert written == 10 * len(EVENT_BINNINGS)
            assert store.refresh(log, "churn", EVENT_BINNINGS, settle=settle) == 0
    window = store.read("churn", START, START + dt.timedelta(days=1))
    assert window["tenure"].count == 30
    assert window["tenure"].mean == pytest.approx(4.5)
    assert window["decision"].category_counts == {"call": 30, "skip": 0}


# --- profile-mode drift ---------------------------------------------------------------------------

SCENARIOS = {
    "same": lambda rng, n: rng.normal(size=n),
    "shifted": lambda rng, n: rng.normal(0.4, size=n),
    "wider": lambda rng, n: rng.normal(0.0, 2.0, size=n),
    "skewed": lambda rng, n: rng.exponential(size=n) - 1.0,
    "ties": lambda rng, n: np.round(rng.normal(size=n), 1),
}


def drift_case(
    seed: int, scenario: str, bins: int = 100
) -> tuple[np.ndarray, np.ndarray, Any, Any]:
    rng = np.random.default_rng(seed)
    reference = (
        np.round(rng.normal(size=3_000), 1) if scenario == "ties" else rng.normal(size=3_000)
    )
    current = SCENARIOS[scenario](rng, int(rng.integers(500, 5_000)))
    binning = Binning(bins=bins).fit(reference)
    return (
        reference,
        current,
        ColumnProfile.from_values(reference, binning),
        ColumnProfile.from_values(current, binning),
    )


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", range(4))
def test_profile_ks_brackets_scipy_ks_2samp(seed: int, scenario: str) -> None:
    reference, current, reference_profile, current_profile = drift_case(seed, scenario)
    result = drift_from_profiles(reference_profile, current_profile, "ks")
    exact = stats.ks_2samp(reference, current).statistic
    assert result.lower - 1e-12 <= exact <= result.upper + 1e-12
    largest_share = max(
        (reference_profile.bin_counts / reference.size).max(),
        (current_profile.bin_counts / current.size).max(),
    )
    assert result.bound <= largest_share / 2 + 1e-12


@pytest.mark.parametrize("seed", range(6))
def test_profile_ks_brackets_scipy_on_counts_and_is_exact_for_a_constant_column(seed: int) -> None:
    # Counts sit on the bin edges and a constant column's one bin shrinks to a point: the bins
    # clipped to the observed extremes hold a single value, where F − G can only step.
    rng = np.random.default_rng(seed)
    reference = rng.poisson(rng.uniform(0.2, 4.0), size=2_000).astype(float)
    current = rng.poisson(rng.uniform(0.2, 4.0), size=int(rng.integers(100, 3_000))).astype(float)
    binning = Binning().fit(reference)
    for first, second in ((reference, current), (np.full(50, 3.0), np.full(70, 3.0))):
        first_binning = binning if first is reference else Binning().fit(first)
        result = drift_from_profiles(
            ColumnProfile.from_values(first, first_binning),
            ColumnProfile.from_values(second, first_binning),
            "ks",
        )
        exact = stats.ks_2samp(first, second).statistic
        assert result.lower - 1e-12 <= exact <= result.upper + 1e-12
    assert result.statistic == exact and result.bound == 0.0


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("seed", range(4))
def test_profile_wasserstein_brackets_scipy_wasserstein_distance(seed: int, scenario: str) -> None:
    reference, current, reference_profile, current_profile = drift_case(seed, scenario)
    result = drift_from_profiles(reference_profile, current_profile, "wasserstein")
    exact = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert abs(exact - result.statistic) <= result.bound + 1e-9
    # The bound is at most the bin-width-weighted mass, the end bins closed by the extremes.
    low, high = min(reference.min(), current.min()), max(reference.max(), current.max())
    edges = np.clip([low, *reference_profile.binning.edges_, high], low, high)
    shares = (
        reference_profile.bin_counts / reference.size + current_profile.bin_counts / current.size
    )
    assert result.bound <= np.dot(np.diff(edges), shares) / np.std(reference) + 1e-9


@pytest.mark.parametrize("method", ["psi", "jensen_shannon", "hellinger", "chi_square"])
@pytest.mark.parametrize("bins", [None, 10])
def test_binned_methods_equal_steward_drift_on_raw_rows_binned_alike(
    method: str, bins: int | None
) -> None:
    reference, current, reference_profile, current_profile = drift_case(20, "shifted")
    result = drift_from_profiles(reference_profile, current_profile, method, bins=bins)
    assert result.bound == 0.0
    assert len(result.edges) == (9 if bins == 10 else reference_profile.binning.edges_.size)
    reference_counts = right_closed_counts(reference, result.edges)
    current_counts = right_closed_counts(current, result.edges)
    if method == "chi_square":
        table = np.vstack([reference_counts, current_counts])
        chi2, p_value, _, _ = stats.chi2_contingency(
            table[:, table.sum(axis=0) > 0], correction=False
        )
        assert result.statistic == pytest.approx(math.sqrt(chi2 / table.sum()), rel=1e-9)
        assert result.p_value == pytest.approx(p_value, rel=1e-9, abs=1e-300)
    else:
        function = getattr(drift, f"{method}_from_counts")
        assert result.statistic == pytest.approx(
            function(reference_counts, current_counts), rel=1e-12
        )


def old_style_binning(reference: np.ndarray) -> Binning:
    """A binning as stored before the quantiles were kept: interpolated inner edges only."""
    data = {key: value for key, value in Binning().fit(reference).to_dict().items()}
    del data["quantiles"]
    data["edges"] = np.unique(np.quantile(reference, np.arange(1, 100) / 100)).tolist()
    return Binning.from_dict(data)


def test_binnings_without_quantiles_group_bins_of_about_equal_reference_mass() -> None:
    reference = np.random.default_rng(21).normal(size=3_000)
    binning = old_style_binning(reference)
    current = np.random.default_rng(22).normal(0.3, size=2_000)
    reference_profile = ColumnProfile.from_values(reference, binning)
    current_profile = ColumnProfile.from_values(current, binning)
    result = drift_from_profiles(reference_profile, current_profile, "psi", bins=10)
    shares = right_closed_counts(reference, result.edges) / reference.size
    assert np.allclose(shares, 0.1, atol=0.011)
    # KS and Wasserstein keep their bounds without the bin sums, which these profiles have.
    for method, exact in (
        ("ks", stats.ks_2samp(reference, current).statistic),
        ("wasserstein", stats.wasserstein_distance(reference, current) / np.std(reference)),
    ):
        old = drift_from_profiles(
            dataclasses.replace(reference_profile, bin_sums=None),
            dataclasses.replace(current_profile, bin_sums=None),
            method,
        )
        assert abs(exact - old.statistic) <= old.bound + 1e-9
        new = drift_from_profiles(reference_profile, current_profile, method)
        assert abs(exact - new.statistic) <= new.bound + 1e-9 and new.bound <= old.bound + 1e-12


# Column shapes on which profile mode's binned statistics must equal exact mode's bit for bit.
SHAPES = {
    "normal": lambda rng, n, moved: rng.normal(moved, 1.0, size=n),
    "two_valued": lambda rng, n, moved: rng.choice(
        [0.0, 1.0], p=[0.7 - moved, 0.3 + moved], size=n
    ),
    "poisson": lambda rng, n, moved: rng.poisson(2.0 + moved, n).astype(float),
    "zero_inflated": lambda rng, n, moved: np.where(
        rng.random(n) < 0.6 - moved, 0.0, rng.exponential(3.0, n)
    ),
}


@pytest.mark.parametrize("moved", [0.0, 0.2])
@pytest.mark.parametrize("shape", SHAPES)
def test_psi_jensen_shannon_and_hellinger_equal_exact_mode_bit_for_bit(
    shape: str, moved: float
) -> None:
    rng = np.random.default_rng(30)
    reference = pd.DataFrame({"x": SHAPES[shape](rng, 5_003, 0.0)})
    current = pd.DataFrame({"x": SHAPES[shape](rng, 3_997, moved)})
    methods = ["psi", "jensen_shannon", "hellinger"]
    exact = drift.compare(reference, current, methods=methods, n_resamples=100)
    profiled = compare_profiles(
        *profile_windows(reference, current), methods=methods, n_resamples=100
    )
    for mine, theirs in zip(profiled.results, exact.results, strict=True):
        assert (mine.method, mine.statistic) == (theirs.method, theirs.statistic)
        assert mine.threshold - mine.noise == theirs.threshold - theirs.noise  # bound 0
    result = drift_from_profiles(
        *(window["x"] for window in profile_windows(reference, current)), "psi"
    )
    assert list(result.edges) == quantile_edges(np.sort(reference["x"].to_numpy()), 10).tolist()


def test_a_two_valued_column_gets_exact_modes_psi_and_an_exact_ks() -> None:
    # The case that once gave PSI 17.0 in profile mode against 8.5 in exact mode.
    rng = np.random.default_rng(3)
    reference = rng.choice([0.0, 1.0], p=[0.9, 0.1], size=5_000)
    current = rng.choice([0.0, 1.0], p=[0.1, 0.9], size=5_000)
    frames = pd.DataFrame({"flag": reference}), pd.DataFrame({"flag": current})
    windows = profile_windows(*frames)
    psi = drift_from_profiles(windows[0]["flag"], windows[1]["flag"], "psi")
    exact_edges = quantile_edges(np.sort(reference), 10)
    assert psi.statistic == drift.psi_from_counts(
        right_closed_counts(reference, tuple(exact_edges)),
        right_closed_counts(current, tuple(exact_edges)),
    )
    exact_report = drift.compare(*frames, methods=["psi"], n_resamples=100)
    assert psi.statistic == exact_report.results[0].statistic
    ks = drift_from_profiles(windows[0]["flag"], windows[1]["flag"], "ks")
    assert ks.bound == 0.0
    assert ks.statistic == ks_from_sorted(np.sort(reference), np.sort(current)).statistic


@pytest.mark.parametrize("seed", range(6))
def test_ks_is_exact_on_discrete_columns_whose_levels_each_hold_a_percent(seed: int) -> None:
    # Every level the reference holds in 1% or more of its rows is an edge, and its bin's values
    # all sit on that edge: F − G only steps there.
    rng = np.random.default_rng(seed)
    levels = np.sort(
        rng.choice(np.arange(-20, 60) / 4, size=int(rng.integers(2, 12)), replace=False)
    )
    reference = rng.choice(levels, p=rng.dirichlet(np.full(levels.size, 5.0)), size=4_000)
    current = rng.choice(levels, p=rng.dirichlet(np.full(levels.size, 5.0)), size=2_500)
    assert np.min(np.unique(reference, return_counts=True)[1]) >= 40, "a level under 1%: reseed"
    binning = Binning().fit(reference)
    result = drift_from_profiles(
        ColumnProfile.from_values(reference, binning),
        ColumnProfile.from_values(current, binning),
        "ks",
    )
    assert result.bound == 0.0
    assert result.statistic == ks_from_sorted(np.sort(reference), np.sort(current)).statistic


def random_column(rng: np.random.Generator) -> np.ndarray:
    """A column of a random shape and size: continuous, rounded, counts, zero-inflated,
    two-valued, with a unit error on a few rows, heavy-tailed, constant or uniform."""
    kind, n = int(rng.integers(0, 8)), int(rng.integers(20, 4_000))
    location, scale = rng.normal(0.0, 2.0), rng.uniform(0.1, 5.0)
    if kind == 0:
        return rng.normal(location, scale, n)
    if kind == 1:
        return np.round(rng.normal(location, scale, n), int(rng.integers(0, 2)))
    if kind == 2:
        return rng.poisson(rng.uniform(0.1, 6.0), n).astype(float)
    if kind == 3:
        return np.where(rng.random(n) < rng.uniform(0.2, 0.9), 0.0, rng.exponential(scale, n))
    if kind == 4:
        return rng.choice([location, location + scale], p=[0.3, 0.7], size=n)
    if kind == 5:
        values = rng.normal(location, scale, n)
        values[rng.random(n) < 0.02] *= 100.0
        return values
    if kind == 6:
        return rng.lognormal(0.0, rng.uniform(0.2, 2.0), n) * scale
    return (
        np.full(n, location) if rng.random() < 0.5 else rng.uniform(location, location + scale, n)
    )


@pytest.mark.parametrize("block", range(4))
def test_ks_and_wasserstein_bounds_hold_on_random_shapes(block: int) -> None:
    """|exact − statistic| <= bound against scipy, on 50 random pairs per block: binnings of 10,
    50 or 100 bins fitted on the reference or on other data, current profiles merged from parts."""
    for seed in range(block * 50, block * 50 + 50):
        rng = np.random.default_rng(seed)
        fitted = random_column(rng)
        reference = fitted if rng.random() < 0.6 else random_column(rng)
        current = random_column(rng)
        binning = Binning(bins=int(rng.choice([10, 50, 100]))).fit(fitted)
        parts = np.array_split(current, int(rng.integers(1, 5)))
        current_profile = merge_profiles(
            [ColumnProfile.from_values(part, binning) for part in parts]
        )
        reference_profile = ColumnProfile.from_values(reference, binning)
        ks = drift_from_profiles(reference_profile, current_profile, "ks")
        exact_ks = stats.ks_2samp(reference, current).statistic
        assert abs(exact_ks - ks.statistic) <= ks.bound + 1e-12, seed
        if reference.min() == reference.max():
            continue  # no standard deviation to measure in; see the constant-column test
        wasserstein = drift_from_profiles(reference_profile, current_profile, "wasserstein")
        exact = stats.wasserstein_distance(reference, current) / np.std(reference)
        assert abs(exact - wasserstein.statistic) <= wasserstein.bound + 1e-9 * max(1.0, exact), (
            seed
        )


def test_wasserstein_measures_a_unit_error_beyond_the_reference_range_exactly() -> None:
    rng = np.random.default_rng(40)
    reference = rng.normal(size=10_000)
    current = rng.normal(size=10_000)
    current[rng.random(10_000) < 0.02] *= 100.0  # a unit error on 2% of the rows
    binning = Binning().fit(reference)
    result = drift_from_profiles(
        ColumnProfile.from_values(reference, binning),
        ColumnProfile.from_values(current, binning),
        "wasserstein",
    )
    exact = stats.wasserstein_distance(reference, current) / np.std(reference)
    assert abs(exact - result.statistic) <= result.bound
    # The far rows sit beyond the reference extremes, where F is 0 or 1: only the few bins inside
    # the reference range where F − G may change sign leave room.
    assert result.bound < 0.02 < 1.0 < exact


def test_categorical_chi_square_counts_unseen_categories_as_one_more_bucket() -> None:
    reference = ColumnProfile.from_values(["a"] * 50 + ["b"] * 30 + ["c"] * 20, CATEGORICAL_BINNING)
    current = ColumnProfile.from_values(
        ["a"] * 40 + ["b"] * 30 + ["d"] * 15 + ["e"] * 5, CATEGORICAL_BINNING
    )
    result = drift_from_profiles(reference, current, "chi_square")
    table = np.array([[50, 30, 20, 0], [40, 30, 0, 20]])
    chi2, p_value, _, _ = stats.chi2_contingency(table, correction=False)
    assert result.statistic == pytest.approx(math.sqrt(chi2 / table.sum()))
    assert result.p_value == pytest.approx(p_value)


def test_profile_drift_refuses_unknown_methods_and_mismatched_binnings() -> None:
    profile = ColumnProfile.from_values([1.0, 2.0], NUMERIC_BINNING)
    with pytest.raises(InvalidInputError, match="choose one of ks, wasserstein"):
        drift_from_profiles(profile, profile, "energy")
    other = ColumnProfile.from_values([1.0], Binning().fit([0.0, 5.0]))
    with pytest.raises(InvalidInputError, match="cannot compare profiles with different binnings"):
        drift_from_profiles(profile, other, "ks")
    with pytest.raises(InvalidInputError, match="needs a numeric profile"):
        categorical = ColumnProfile.from_values(["a"], CATEGORICAL_BINNING)
        drift_from_profiles(categorical, categorical, "ks")
    empty = ColumnProfile.from_values([None], NUMERIC_BINNING)
    with pytest.raises(InvalidInputError, match="no finite values"):
        drift_from_profiles(profile, empty, "wasserstein")


# --- profile-mode comparison of whole windows -----------------------------------------------------


def window_frames(seed: int, n_rows: int, shift: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames; with a shift, `amount`, `spend` and `plan` move, `age` not."""
    rng = np.random.default_rng(seed)
    shares = np.array([0.5, 0.3, 0.15, 0.05])

    def frame(moved: float) -> pd.DataFrame:
        plan_shares = shares[::-1] if moved else shares
        return pd.DataFrame(
            {
                "amount": rng.normal(moved, 1.0, n_rows),
                "spend": rng.exponential(1.0 + moved, n_rows),
                "age": rng.normal(40.0, 10.0, n_rows),
                "plan": rng.choice(["basic", "plus", "pro", "team"], p=plan_shares, size=n_rows),
            }
        )

    return frame(0.0), frame(shift)


def profile_windows(
    reference: pd.DataFrame, current: pd.DataFrame
) -> tuple[DatasetProfile, DatasetProfile]:
    binnings = fit_binnings(reference)
    return DatasetProfile.from_frame(reference, binnings), DatasetProfile.from_frame(
        current, binnings
    )


@pytest.mark.parametrize("shift", [0.0, 1.0])
@pytest.mark.parametrize("seed", range(4))
def test_profile_mode_alarms_on_the_columns_exact_mode_alarms_on(seed: int, shift: float) -> None:
    reference, current = window_frames(seed, 3_000, shift)
    exact = drift.compare(reference, current)
    profiled = compare_profiles(*profile_windows(reference, current))
    assert profiled.alarmed_columns == exact.alarmed_columns
    moved = ["amount", "spend", "plan"] if shift else []
    assert profiled.alarmed_columns == moved


def changed_frames(seed: int, n_rows: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Reference and current frames where `amount` carries a unit error (x100) on 2% of the rows,
    `plan` a new category in 5% of them, `score` a 0.2-standard-deviation shift; `age` is as
    before."""
    rng = np.random.default_rng(seed)

    def frame(score_shift: float) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "amount": rng.lognormal(3.0, 0.5, n_rows),
                "plan": rng.choice(["basic", "plus", "pro"], p=[0.5, 0.3, 0.2], size=n_rows),
                "score": rng.normal(score_shift, 1.0, n_rows),
                "age": rng.normal(40.0, 10.0, n_rows),
            }
        )

    reference, current = frame(0.0), frame(0.2)
    current.loc[rng.random(n_rows) < 0.02, "amount"] *= 100.0
    current.loc[rng.random(n_rows) < 0.05, "plan"] = "enterprise"
    return reference, current


@pytest.mark.slow
def test_profile_mode_catches_what_exact_mode_catches_at_10000_rows() -> None:
    """20 seeds: both modes alarm on the three changed columns in every seed, never on `age`."""
    for seed in range(20):
        reference, current = changed_frames(seed, 10_000)
        exact = drift.compare(reference, current, random_state=seed, n_resamples=400)
        profiled = compare_profiles(
            *profile_windows(reference, current), random_state=seed, n_resamples=400
        )
        assert exact.alarmed_columns == ["amount", "plan", "score"], seed
        assert profiled.alarmed_columns == exact.alarmed_columns, seed


def null_frame(rng: np.random.Generator, n_rows: int) -> pd.DataFrame:
    """16 numeric and 4 categorical columns, the same distribution for every call."""
    columns: dict[str, Any] = {f"normal_{i}": rng.normal(size=n_rows) for i in range(8)}
    columns |= {f"skewed_{i}": rng.exponential(size=n_rows) for i in range(4)}
    columns |= {f"count_{i}": rng.poisson(2.0, size=n_rows) for i in range(4)}
    shares = [0.4, 0.2, 0.2, 0.1, 0.07, 0.03]
    columns |= {
        f"category_{i}": rng.choice(list("abcdef"), p=shares, size=n_rows) for i in range(4)
    }
    return pd.DataFrame(columns)


@pytest.mark.slow
def test_no_drift_rarely_alarms_in_profile_mode_across_seeds() -> None:
    """30 runs of 20 columns from one distribution; as exact mode's test in test_drift.py.

    Under BH the chance that a run has any significant test is at most alpha, so the count of such
    runs must stay under the binomial's 99.9th percentile; alarms, which also need the floor plus
    the error bound, must be rarer still. Each method's raw p-values must not fall under alpha more
    often than a binomial allows. (500 resamples keep it fast; fewer only coarsen the p-values.)
    """
    n_runs, alpha = 30, 0.05
    runs_significant = runs_alarmed = 0
    raw_p_values: dict[str, list[float]] = {}
    for seed in range(n_runs):
        rng = np.random.default_rng(seed)
        windows = profile_windows(null_frame(rng, 1_000), null_frame(rng, 600))
        report = compare_profiles(*windows, random_state=seed, n_resamples=500)
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


def test_profile_thresholds_are_the_floors_plus_each_bound_plus_each_noise() -> None:
    reference, current = profile_windows(*window_frames(5, 2_000, 0.3))
    report = compare_profiles(reference, current, floors={"ks": 0.05})
    for row in report.results:
        single = drift_from_profiles(reference[row.column], current[row.column], row.method)
        floor = 0.05 if row.method == "ks" else drift.DEFAULT_FLOORS[row.method]
        assert row.statistic == pytest.approx(single.statistic, rel=1e-12)
        assert row.threshold == pytest.approx(floor + single.bound + row.noise, rel=1e-12)
        assert row.alarm == (row.significant and row.statistic > row.threshold)
    assert {row.method for row in report.results} == set(drift.NUMERIC_METHODS) | set(
        drift.CATEGORICAL_METHODS
    )


def test_profile_p_values_are_adjusted_together_and_reproducible() -> None:
    windows = profile_windows(*window_frames(6, 1_500, 0.1))
    report = compare_profiles(*windows, correction="bonferroni", random_state=3)
    raw = [row.p_value for row in report.results]
    adjusted = [row.adjusted_p_value for row in report.results]
    assert adjusted == pytest.approx(drift.adjust_p_values(raw, "bonferroni").tolist())
    resampled = [row.p_value for row in report.results if row.method != "chi_square"]
    assert min(resampled) >= 1 / (1 + report.n_resamples)  # (1 + exceed) / (1 + B), never 0
    again = compare_profiles(*windows, correction="bonferroni", random_state=3)
    assert again.to_dict() == report.to_dict()


def test_categorical_columns_get_exact_modes_results_bit_for_bit() -> None:
    reference, current = window_frames(7, 800, 0.0)
    current["plan"] = current["plan"].replace({"team": "enterprise"})  # a category never seen
    windows = profile_windows(reference, current)
    profiled = compare_profiles(*windows, columns=["plan"], random_state=4)
    exact = drift.compare(reference, current, columns=["plan"], random_state=4)
    assert [row.method for row in profiled.results] == [row.method for row in exact.results]
    for mine, theirs in zip(profiled.results, exact.results, strict=True):
        assert (mine.statistic, mine.p_value, mine.noise) == (
            theirs.statistic,
            theirs.p_value,
            theirs.noise,
        )
        assert mine.threshold == theirs.threshold  # the bound is 0
    assert profiled.columns["plan"].n_unseen == exact.columns["plan"].n_unseen > 0
    # Cramér's V is scipy's chi-square on the table, the unseen category its own column.
    plans = sorted(set(reference["plan"]) | set(current["plan"]))
    table = np.array(
        [[(frame["plan"] == plan).sum() for plan in plans] for frame in (reference, current)]
    )
    chi2, _, _, _ = stats.chi2_contingency(table, correction=False)
    row = next(row for row in profiled.results if row.method == "chi_square")
    assert row.statistic == pytest.approx(math.sqrt(chi2 / table.sum()))


def test_reference_categories_past_the_binning_are_one_more_category() -> None:
    rng = np.random.default_rng(12)
    levels = [f"level_{index}" for index in range(8)]
    reference = pd.DataFrame({"plan": rng.choice(levels, size=2_000)})
    current = pd.DataFrame({"plan": rng.choice(levels, size=1_500)})
    binnings = {"plan": Binning("categorical", max_categories=5).fit(reference["plan"])}
    windows = [DatasetProfile.from_frame(frame, binnings) for frame in (reference, current)]
    assert windows[0]["plan"].unseen_count > 0
    profiled = compare_profiles(*windows, random_state=2)
    known = set(binnings["plan"].categories_)
    lumped = [
        frame.assign(plan=frame["plan"].where(frame["plan"].isin(known), "other"))
        for frame in (reference, current)
    ]
    exact = drift.compare(*lumped, random_state=2)
    for mine, theirs in zip(profiled.results, exact.results, strict=True):
        assert mine.statistic == pytest.approx(theirs.statistic, rel=1e-12)


def test_a_constant_reference_column_is_tested_by_ks_alone_and_says_so() -> None:
    rng = np.random.default_rng(8)
    reference = pd.DataFrame({"price": np.full(1_000, 0.25), "amount": rng.normal(size=1_000)})
    moved = rng.uniform(0.0, 0.5, 1_000)
    current = pd.DataFrame({"price": moved, "amount": rng.normal(size=1_000)})
    report = compare_profiles(*profile_windows(reference, current))
    rows = [row for row in report.results if row.column == "price"]
    assert [row.method for row in rows] == ["ks"]  # no distance in a zero standard deviation
    assert math.isfinite(rows[0].statistic) and rows[0].alarm
    assert rows[0].statistic == stats.ks_2samp(reference["price"], moved).statistic
    assert rows[0].threshold == drift.DEFAULT_FLOORS["ks"] + rows[0].noise  # exact: bound 0
    note = report.columns["price"].note
    assert (
        "constant in the reference" in note
        and "1000 of 1000 current values (100.0%) differ" in note
    )
    assert report.to_dict()["columns"]["price"]["note"] == note
    assert report.columns["amount"].note == ""
    assert report.alarmed_columns == ["price"]
    quiet = compare_profiles(*profile_windows(reference, reference.copy()))
    assert not quiet.alarmed
    assert "0 of 1000 current values (0.0%)" in quiet.columns["price"].note
    with pytest.raises(InvalidInputError, match="constant"):
        windows = profile_windows(reference, current)
        drift_from_profiles(windows[0]["price"], windows[1]["price"], "wasserstein")


def test_profile_report_renders_as_text_json_and_html_with_a_plot_per_column() -> None:
    reference, current = window_frames(9, 1_000, 1.0)
    report = compare_profiles(*profile_windows(reference, current))
    assert report.to_text().startswith("drift: ALARM on ")
    loaded = json.loads(json.dumps(report.to_dict()))
    assert loaded["alarm"] is True
    assert set(loaded["columns"]) == set(reference.columns)
    page = report.to_html()
    starts: list[str] = []
    parser = HTMLParser()
    parser.handle_starttag = lambda tag, attributes: starts.append(tag)  # type: ignore[method-assign]
    parser.feed(page)
    assert starts.count("svg") == len(reference.columns)


def test_compare_profiles_names_what_it_cannot_compare() -> None:
    reference, current = profile_windows(*window_frames(10, 200, 0.0))
    with pytest.raises(InvalidInputError, match="domain classifier needs raw rows"):
        compare_profiles(reference, current, methods=["ks", "domain_classifier"])
    partial = DatasetProfile({"amount": current["amount"]})
    with pytest.raises(InvalidInputError, match=r"\['age'\] have no profile in the current window"):
        compare_profiles(reference, partial, columns=["amount", "age"])
    refitted = DatasetProfile(
        {"amount": ColumnProfile.from_values([1.0], Binning().fit([0.0, 5.0]))}
    )
    with pytest.raises(InvalidInputError, match="column 'amount': cannot compare profiles"):
        compare_profiles(reference, refitted, columns=["amount"])
    binning = reference["amount"].binning
    empty = DatasetProfile({"amount": ColumnProfile.from_values([None, math.inf], binning)})
    with pytest.raises(InvalidInputError, match="'amount' has no values to compare in the current"):
        compare_profiles(reference, empty, columns=["amount"])
    with pytest.raises(InvalidInputError, match="alpha must be within"):
        compare_profiles(reference, current, alpha=1.5)


def test_dataset_profile_from_frame_profiles_each_binned_column() -> None:
    reference, _ = window_frames(11, 500, 0.0)
    binnings = fit_binnings(reference)
    window = DatasetProfile.from_frame(reference, binnings)
    assert list(window.profiles) == list(reference.columns)
    for name, binning in binnings.items():
        assert_same_exact_fields(window[name], ColumnProfile.from_values(reference[name], binning))
    with pytest.raises(InvalidInputError, match=r"columns \['plan'\] are not in the frame"):
        DatasetProfile.from_frame(reference.drop(columns="plan"), binnings)


def test_the_profile_store_names_are_still_importable_from_profiles() -> None:
    for name in profile_store.__all__:
        assert getattr(profiles_module, name) is getattr(profile_store, name)
        assert name in profiles_module.__all__
    defined_there = {
        name
        for name, value in vars(profile_store).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == profile_store.__name__
    }
    assert defined_there <= set(profile_store.__all__)
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = profiles_module.nothing


def test_a_large_frame_fits_its_columns_on_threads_as_it_would_one_by_one() -> None:
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({f"x{i}": rng.gamma(1.0 + i, size=60_000) for i in range(6)})
    frame["plan"] = rng.choice(["basic", "pro", "team"], size=60_000)
    together = fit_binnings(frame)  # 420,000 values: fitted on threads
    for name, binning in together.items():
        alone = fit_binnings(frame[[name]])[name]
        assert binning.fingerprint_ == alone.fingerprint_
        assert np.array_equal(binning.edges_, alone.edges_)


def test_on_threads_the_first_failing_column_in_order_is_the_one_named() -> None:
    rng = np.random.default_rng(5)
    frame = pd.DataFrame({f"x{i}": rng.normal(size=60_000) for i in range(4)})
    frame["x1"] = np.nan
    frame["x3"] = np.nan
    with pytest.raises(InvalidInputError, match=r"column 'x1': the reference column has no finite"):
        fit_binnings(frame)
