"""Sorting each group's values by cells of their bins equals numpy's sort of each group, whatever
the cells' sizes; KLL sketches built from the ranks the bulk compaction names equal those built
from the whole sorted run, byte for byte; the edge index that sets the lowest edge apart finds
numpy's bins."""

from __future__ import annotations

import datasketches
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from steward.data.profiles import Binning
from steward.data.profiles.cells import ROW, sort_groups
from steward.data.profiles.counting import EdgeIndex
from steward.data.profiles.kll import compactions, kll_from_items, kll_from_sorted


def sorted_by_cells(values: np.ndarray, edges: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    """Each group's finite values sorted by ``sort_groups``, with bins from ``searchsorted``."""
    n_bins = edges.size + 1
    finite = np.isfinite(values)
    bins = np.searchsorted(edges, np.where(finite, values, 0.0), side="left")
    bins[np.isnan(values)] = n_bins
    bins[np.isinf(values)] = n_bins + 1
    row_starts = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    groups = np.repeat(np.arange(len(sizes)), sizes)
    cells = np.bincount(
        groups[finite] * n_bins + bins[finite], minlength=len(sizes) * n_bins
    ).reshape(len(sizes), n_bins)
    keys = bins.astype(np.uint8 if n_bins + 2 <= 256 else np.uint16)
    ordered = sort_groups(values, keys, row_starts, cells)
    assert ordered.counts.tolist() == cells.sum(axis=1).tolist()
    return [ordered.group(group).copy() for group in range(len(sizes))]


def numpy_sorted(values: np.ndarray, sizes: list[int]) -> list[np.ndarray]:
    parts = np.split(values, np.cumsum(sizes)[:-1])
    return [np.sort(part[np.isfinite(part)]) for part in parts]


def assert_same(got: list[np.ndarray], expected: list[np.ndarray]) -> None:
    assert len(got) == len(expected)
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.tobytes() == theirs.tobytes() or np.array_equal(mine, theirs)


@pytest.mark.parametrize(
    "kind", ["normal", "lognormal", "pareto", "discrete", "constant", "signed_zeros", "huge"]
)
def test_groups_sorted_by_cells_equal_numpy_s_sort(kind: str) -> None:
    rng = np.random.default_rng(20)
    sizes = [0, 1, 7, ROW - 1, ROW, ROW + 1, 3_000, 6_123, 0, 40_000, 2]
    n = sum(sizes)
    values = {
        "normal": rng.normal(3.0, 4.0, n),
        "lognormal": rng.lognormal(0.0, 3.0, n),
        "pareto": rng.pareto(0.3, n),
        "discrete": rng.integers(-3, 4, n).astype(np.float64),
        "constant": np.full(n, 2.5),
        "signed_zeros": rng.choice([-0.0, 0.0, 1.0, -1.0], n),
        "huge": rng.choice([-1.7e308, 1.7e308, 0.0, 5e-324], n) * rng.random(n),
    }[kind]
    values[rng.random(n) < 0.02] = np.nan
    values[rng.random(n) < 0.01] = np.inf
    values[rng.random(n) < 0.01] = -np.inf
    reference = values[np.isfinite(values)][:2_000]
    for bins in (4, 100, 400):  # cells of thousands of values; of dozens; two-byte keys
        edges = Binning(bins=bins).fit(reference).edges_
        assert_same(sorted_by_cells(values, edges, sizes), numpy_sorted(values, sizes))


def test_one_group_of_many_values_sorts_its_long_cells_by_splitting_them() -> None:
    rng = np.random.default_rng(21)
    values = np.concatenate([rng.normal(size=150_000), rng.lognormal(0, 8, 50_000)])
    rng.shuffle(values)
    edges = Binning(bins=20).fit(values[:1_000]).edges_
    assert_same(sorted_by_cells(values, edges, [values.size]), [np.sort(values)])


def test_cells_that_split_badly_are_sorted_all_the_same() -> None:
    rng = np.random.default_rng(22)
    # One outlier per cell: splitting between the extremes leaves nearly all values in one part.
    crowded = np.concatenate([rng.normal(size=5_000) * 1e-9, [1e9, -1e9], rng.random(3_000)])
    rng.shuffle(crowded)
    edges = np.array([-0.5, 0.5])
    assert_same(sorted_by_cells(crowded, edges, [crowded.size]), [np.sort(crowded)])


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.floats(allow_nan=True, allow_infinity=True, width=64), max_size=700),
    edges=st.lists(
        st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=12
    ),
    cut=st.integers(0, 700),
)
def test_any_values_sorted_by_cells_equal_numpy_s_sort(
    values: list[float], edges: list[float], cut: int
) -> None:
    array = np.array(values, dtype=np.float64)
    sizes = [min(cut, array.size), array.size - min(cut, array.size)]
    ordered_edges = np.unique(np.array(edges, dtype=np.float64) + 0.0)
    assert_same(sorted_by_cells(array, ordered_edges, sizes), numpy_sorted(array, sizes))


def reference_kll(values: np.ndarray, k: int, coins: int) -> bytes:
    """The bulk build as first written: halve whole sorted levels, then serialize."""
    levels: list[np.ndarray] = []
    current = values
    while current.size > k:
        levels.append(current[:1] if current.size % 2 else current[:0])
        current = current[1:] if current.size % 2 else current
        current = current[coins & 1 :: 2]
        coins >>= 1
    levels.append(current)
    sizes = [level.size for level in levels]
    return kll_from_items(
        np.concatenate(levels), sizes, k, values.size, float(values[0]), float(values[-1])
    ).serialize()


@pytest.mark.parametrize("k", [8, 200, 1_000])
def test_compacted_ranks_build_the_same_sketch_as_halving_whole_levels(k: int) -> None:
    rng = np.random.default_rng(k)
    counts = np.array([0, 1, k, k + 1, 2 * k + 1, 6_001, 100_003, 1 << 20])
    coins = rng.integers(0, 1 << 62, size=counts.size)
    plans, ranks, kept = compactions(counts, k, coins)
    assert kept.sum() == ranks.size
    cut = 0
    runs = zip(counts.tolist(), coins.tolist(), plans, kept.tolist(), strict=True)
    for count, coin, plan, size in runs:
        values = np.sort(rng.normal(size=count))
        taken = values[ranks[cut : cut + size]]
        cut += size
        if count <= k:
            assert plan is None and np.array_equal(taken, values)
            continue
        assert plan is not None and sum(plan) == size
        built = kll_from_items(taken, plan, k, count, float(values[0]), float(values[-1]))
        assert built.serialize() == reference_kll(values, k, coin)
        assert kll_from_sorted(values, k, coin).serialize() == built.serialize()
        again = datasketches.kll_doubles_sketch.deserialize(built.serialize())
        assert again.n == count and again.get_max_value() == values[-1]


def test_an_edge_index_sets_a_binning_s_lowest_edge_apart_and_finds_numpy_s_bins() -> None:
    rng = np.random.default_rng(23)
    values = rng.normal(size=50_000)
    edges = Binning().fit(values[:5_000]).edges_
    assert edges[1] == np.nextafter(edges[0], np.inf)  # the edge one ulp below the minimum
    index = EdgeIndex(edges)
    probe = np.concatenate(
        [values, edges, np.nextafter(edges, -np.inf), np.nextafter(edges, np.inf), [-1e308, 1e308]]
    )
    assert np.array_equal(index.locate(probe), np.searchsorted(edges, probe, side="left"))


@pytest.mark.parametrize("longest", [64, 200, 500, 1_100, 5_000])
def test_cells_of_every_length_are_sorted_by_row_passes_or_split(longest: int) -> None:
    rng = np.random.default_rng(longest)
    for _ in range(5):
        lengths = rng.integers(0, longest + 1, size=60)
        # Cell b holds values in [b, b + 1); some cells hold only zeros and ones.
        values = np.concatenate(
            [
                cell + (rng.random(size) if cell % 3 else rng.integers(0, 2, size) * 0.5)
                for cell, size in enumerate(lengths.tolist())
            ]
        )
        rng.shuffle(values)
        edges = np.arange(1.0, 60.0) - 1e-9  # bin b is (b - 1e-9, b + 1 - 1e-9]
        sizes = [values.size // 3, values.size - values.size // 3]
        assert_same(sorted_by_cells(values, edges, sizes), numpy_sorted(values, sizes))
