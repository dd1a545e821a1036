"""Fast profile building keeps every exact field exact: bins found by table lookup equal numpy's
searchsorted, counts, bin counts, bin sums, nulls, extremes and categories equal a plain numpy
profile of the same rows bit for bit, and the KLL sketches built in bulk keep their rank bound."""

from __future__ import annotations

import datetime as dt

import datasketches
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.data.profiles import Binning, ColumnProfile, profile_frame
from steward.data.profiles.counting import EdgeIndex
from steward.data.profiles.kll import kll_from_sorted, level_capacity

START = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)


def plain_numeric_profile(values: np.ndarray, binning: Binning) -> dict[str, object]:
    """The exact fields of a numeric profile, computed the plain way: one searchsorted and one
    bincount over the rows in their order."""
    finite = values[np.isfinite(values)]
    bins = np.searchsorted(binning.edges_, finite, side="left")
    offsets = finite - binning.anchors[bins]
    return {
        "count": values.size,
        "null_count": int(np.isnan(values).sum()),
        "infinite_count": int(np.isinf(values).sum()),
        "finite_count": finite.size,
        "bin_counts": np.bincount(bins, minlength=binning.n_bins),
        "bin_sums": np.bincount(bins, weights=offsets, minlength=binning.n_bins),
        "minimum": float(finite.min()) if finite.size else None,
        "maximum": float(finite.max()) if finite.size else None,
    }


def assert_exact(profile: ColumnProfile, expected: dict[str, object]) -> None:
    for name in ("count", "null_count", "infinite_count", "finite_count", "minimum", "maximum"):
        assert getattr(profile, name) == expected[name], name
    assert np.array_equal(profile.bin_counts, expected["bin_counts"])
    assert profile.bin_sums is not None
    assert profile.bin_sums.tobytes() == np.asarray(expected["bin_sums"]).tobytes()


def skewed_columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    with_specials = rng.normal(1e6, 1.0, n)
    with_specials[rng.random(n) < 0.02] = np.nan
    with_specials[rng.random(n) < 0.01] = np.inf
    with_specials[rng.random(n) < 0.01] = -np.inf
    return {
        "normal": rng.normal(3.0, 4.0, n),
        "lognormal": rng.lognormal(0.0, 3.0, n),
        "pareto": rng.pareto(0.3, n),
        "discrete": rng.integers(-3, 4, n).astype(np.float64),
        "signed_zeros": rng.choice([-0.0, 0.0, 1.0, -1.0], n),
        "specials": with_specials,
    }


def test_bucketed_profiles_equal_a_plain_profile_of_each_bucket_bit_for_bit() -> None:
    rng = np.random.default_rng(7)
    n = 60_000
    columns = skewed_columns(rng, n)
    # Rows out of time order, so the grouping reorders them.
    moments = START + pd.to_timedelta(rng.integers(0, 30 * 3_600_000_000, n), unit="us")
    frame = pd.DataFrame({"event_time": moments, **columns})
    reference = pd.DataFrame({name: values[:5_000] for name, values in columns.items()})
    binnings = {
        name: Binning("numeric").fit(reference[name].replace([np.inf, -np.inf], np.nan).dropna())
        for name in columns
    }
    rows = profile_frame(frame, binnings)
    hours = frame["event_time"].dt.floor("h")
    assert len(rows) == len(columns) * hours.nunique()
    for row in rows:
        inside = frame.loc[hours == pd.Timestamp(row.bucket_start), row.column].to_numpy()
        assert_exact(row.profile, plain_numeric_profile(inside, binnings[row.column]))
        finite = inside[np.isfinite(inside)]
        if finite.size:
            assert row.profile.mean == pytest.approx(np.mean(finite), rel=1e-12, abs=1e-12)
            assert row.profile.variance == pytest.approx(np.var(finite), rel=1e-9, abs=1e-12)


def test_one_window_profile_of_a_long_column_is_exact_and_its_sketch_within_bound() -> None:
    rng = np.random.default_rng(8)
    values = rng.normal(size=300_000)  # several sketch parts, merged
    values[::97] = np.nan
    binning = Binning().fit(values[:10_000][np.isfinite(values[:10_000])])
    profile = ColumnProfile.from_values(values, binning)
    assert_exact(profile, plain_numeric_profile(values, binning))
    finite = np.sort(values[np.isfinite(values)])
    bound = profile.quantile_rank_error
    for q in (0.01, 0.1, 0.5, 0.9, 0.99):
        rank = np.searchsorted(finite, profile.quantile(q), side="right") / finite.size
        assert abs(rank - q) <= bound


def test_categories_counted_by_lookup_equal_a_plain_count() -> None:
    rng = np.random.default_rng(9)
    n = 40_000
    levels = np.array([f"v{index}" for index in range(60)], dtype=object)
    values = levels[rng.zipf(1.4, n) % 60]
    values[rng.random(n) < 0.03] = None
    moments = START + pd.to_timedelta(rng.integers(0, 10 * 3_600_000_000, n), unit="us")
    frame = pd.DataFrame({"event_time": moments, "plan": values})
    binning = Binning("categorical", max_categories=25).fit(pd.Series(values[:3_000]).dropna())
    hours = frame["event_time"].dt.floor("h")
    for row in profile_frame(frame, {"plan": binning}):
        inside = pd.Series(frame.loc[hours == pd.Timestamp(row.bucket_start), "plan"])
        counted = inside.value_counts()
        expected = [int(counted.get(category, 0)) for category in binning.categories_]
        assert row.profile.bin_counts.tolist() == expected
        assert row.profile.null_count == int(inside.isna().sum())
        unseen = inside.dropna()[~inside.dropna().isin(binning.categories_)]
        assert row.profile.unseen_count == len(unseen)
        top = dict(row.profile.unseen_values())
        for value, count in unseen.value_counts().head(3).items():
            assert top[value] >= count  # the frequent-items sketch never undercounts


def test_dictionary_and_numeric_categorical_columns_count_as_text() -> None:
    plain = pa.array(["a", "b", None, "z", "a"])
    binning = Binning("categorical").fit(pa.array(["a", "b", "b"]))
    as_text = ColumnProfile.from_values(plain, binning)
    as_dictionary = ColumnProfile.from_values(plain.dictionary_encode(), binning)
    assert as_text.category_counts == as_dictionary.category_counts == {"b": 1, "a": 2}
    assert as_text.unseen_count == as_dictionary.unseen_count == 1
    numbers = Binning("categorical").fit(pa.array([1, 2, 2]))
    assert ColumnProfile.from_values(pa.array([2, 2, 3]), numbers).category_counts == {
        "2": 2,
        "1": 0,
    }


finite_floats = st.floats(allow_nan=False, allow_infinity=False, width=64)


@settings(max_examples=200, deadline=None)
@given(
    edges=st.lists(finite_floats, min_size=1, max_size=40, unique=True),
    values=st.lists(finite_floats, min_size=1, max_size=200),
)
def test_edge_index_finds_the_same_bins_as_searchsorted(
    edges: list[float], values: list[float]
) -> None:
    ordered = np.unique(np.array(edges, dtype=np.float64) + 0.0)
    probe = np.array(values + edges, dtype=np.float64)  # values on the edges too
    found = EdgeIndex(ordered).locate(probe)
    assert found.tolist() == np.searchsorted(ordered, probe, side="left").tolist()


def test_edge_index_handles_edges_a_few_ulps_apart_and_far_apart() -> None:
    tiny = np.array([np.nextafter(0.0, -np.inf), 0.0, np.nextafter(0.0, np.inf)])
    wide = np.array([-1e308, 0.0, 1e308])
    for edges in (tiny, wide, np.array([5.0, np.nextafter(5.0, np.inf)])):
        probe = np.concatenate([edges, [-np.finfo(float).max, -1.0, -0.0, 0.0, 1.0, 1e300, 5.0]])
        found = EdgeIndex(edges).locate(probe)
        assert found.tolist() == np.searchsorted(edges, probe, side="left").tolist()


@pytest.mark.parametrize("kind", ["normal", "lognormal", "pareto", "discrete", "signed_zeros"])
def test_edge_index_on_fitted_edges_equals_searchsorted(kind: str) -> None:
    rng = np.random.default_rng(10)
    values = skewed_columns(rng, 200_000)[kind]
    edges = Binning().fit(values[:20_000]).edges_
    neighbours = np.concatenate([np.nextafter(edges, -np.inf), edges, np.nextafter(edges, np.inf)])
    probe = np.concatenate([values, neighbours, [-1e308, 1e308, 0.0, -0.0]])
    found = EdgeIndex(edges).locate(probe)
    assert np.array_equal(found, np.searchsorted(edges, probe, side="left"))


def test_level_capacities_equal_the_library_s() -> None:
    for k in (8, 20, 200, 1_000):
        for n in (k + 1, 3 * k, 10_000, 123_457):
            sketch = datasketches.kll_doubles_sketch(k)
            sketch.update(np.random.default_rng(n).normal(size=n))
            data = sketch.serialize()
            num_levels = data[18]
            free = int.from_bytes(data[20:24], "little")  # level 0 starts past the free space
            capacity = sum(level_capacity(k, num_levels, height) for height in range(num_levels))
            assert free + sketch.num_retained == capacity


@pytest.mark.parametrize("k", [8, 50, 200])
def test_kll_built_from_sorted_values_answers_ranks_within_two_over_k(k: int) -> None:
    rng = np.random.default_rng(k)
    for n in (1, 7, k, k + 1, 2 * k + 1, 1_000, 6_001, 100_003):
        values = np.sort(rng.lognormal(size=n))
        sketch = kll_from_sorted(values, k, int(rng.integers(0, 2**62)))
        assert sketch.n == n
        assert (sketch.get_min_value(), sketch.get_max_value()) == (values[0], values[-1])
        probes = values[np.linspace(0, n - 1, 57).astype(int)]
        estimated = np.array([sketch.get_rank(value, True) for value in probes])  # inclusive
        exact = np.searchsorted(values, probes, side="right") / n
        assert np.max(np.abs(estimated - exact)) < 2 / (k + 1)
        assert 2 / (k + 1) < sketch.normalized_rank_error(False) or n <= k
        again = datasketches.kll_doubles_sketch.deserialize(sketch.serialize())
        assert again.serialize() == sketch.serialize()


def test_kll_built_in_bulk_merges_and_updates_as_any_library_sketch() -> None:
    rng = np.random.default_rng(11)
    values = np.sort(rng.normal(size=50_000))
    built = kll_from_sorted(values, 200, int(rng.integers(0, 2**62)))
    streamed = datasketches.kll_doubles_sketch(200)
    streamed.update(rng.normal(size=30_000))
    streamed.merge(built)
    built.update(rng.normal(size=5_000))
    assert streamed.n == 80_000 and built.n == 55_000
    both = np.sort(np.concatenate([values, rng.normal(size=30_000)]))
    median = streamed.get_quantile(0.5)
    rank = np.searchsorted(both, median, side="right") / both.size
    assert abs(rank - 0.5) <= streamed.normalized_rank_error(False)


def test_a_refitted_binning_is_not_binned_with_its_old_edges() -> None:
    binning = Binning(bins=4).fit([0.0, 1.0, 2.0, 3.0, 4.0])
    first = ColumnProfile.from_values([0.5, 3.5], binning)
    binning.fit([10.0, 11.0, 12.0, 13.0, 14.0])
    second = ColumnProfile.from_values([10.5, 13.5], binning)
    assert first.bin_counts.tolist() == [0, 0, 1, 0, 0, 1, 0]
    assert second.bin_counts.tolist() == [0, 0, 1, 0, 0, 1, 0]
