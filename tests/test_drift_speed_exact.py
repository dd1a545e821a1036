"""Exact mode's faster paths give what the plain computations give, bit for bit.

The block-wise merge of two sorted samples, the bin sums taken bin by bin, the one-pass
``DriftDetector.fit_compare`` and the column-wise reading of pandas frames (strings
dictionary-encoded) are each checked against the plain computation they replace. No timings: the
speed is measured by ``benchmarks/bench_drift_peers.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy import stats

from steward.data.drift import DriftDetector, compare
from steward.data.drift.bins import sorted_bin_sums, sorted_quantile_edges
from steward.data.drift.inputs import category_counts, read_frame, resolve_kinds
from steward.data.drift.ks import merge_sorted, merge_sorted_area
from steward.errors import InvalidInputError


def one_shot_merge(reference: np.ndarray, current: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The merge as one stable argsort of the pooled values, ties reference first."""
    pooled = np.concatenate([reference, current])
    order = np.argsort(pooled, kind="stable")
    reference_seen = np.cumsum(order < reference.size)
    current_seen = np.arange(1, pooled.size + 1) - reference_seen
    return pooled[order], reference_seen / reference.size - current_seen / current.size


SAMPLES = {
    "shifted_normal": lambda rng, n: rng.normal(0.1, 1.0, n),
    "poisson_ties": lambda rng, n: rng.poisson(3.0, n).astype(float),
    "far_apart": lambda rng, n: rng.normal(50.0, 1.0, n),
    "rounded": lambda rng, n: np.round(rng.normal(size=n), 1),
    "one_value": lambda rng, n: np.ones(n),
}


@pytest.mark.parametrize("shape", SAMPLES)
@pytest.mark.parametrize("sizes", [(1, 1), (7, 100_003), (90_001, 70_000)])
def test_the_block_merge_equals_one_stable_argsort_and_scipys_ks_and_wasserstein(
    shape: str, sizes: tuple[int, int]
) -> None:
    rng = np.random.default_rng(len(shape) * 1_000 + sizes[0])
    reference = np.sort(rng.normal(size=sizes[0]))
    current = np.sort(SAMPLES[shape](rng, sizes[1]))
    merged, gaps, statistic = merge_sorted(reference, current)
    expected_merged, expected_gaps = one_shot_merge(reference, current)
    np.testing.assert_array_equal(merged, expected_merged)
    np.testing.assert_array_equal(gaps, expected_gaps)
    assert statistic == pytest.approx(stats.ks_2samp(reference, current).statistic, abs=1e-12)
    # The area summed block by block, with no gaps held whole, is the area over the whole merge.
    merged_again, statistic_again, area = merge_sorted_area(reference, current)
    np.testing.assert_array_equal(merged_again, expected_merged)
    assert statistic_again == statistic
    whole = float(np.dot(np.abs(gaps[:-1]), np.diff(merged)))
    assert area == pytest.approx(whole, rel=1e-12, abs=1e-300)
    assert area == pytest.approx(stats.wasserstein_distance(reference, current), rel=1e-9)


@pytest.mark.parametrize("power", [1, 2])
@pytest.mark.parametrize("seed", range(4))
def test_bin_sums_equal_reduceat_over_the_whole_sample(power: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    values = np.sort(
        [
            rng.normal(size=50_000),
            np.where(rng.random(40_000) < 0.6, 0.0, rng.exponential(3, 40_000)),
        ][seed % 2]
    )
    edges = np.union1d(
        sorted_quantile_edges(values, 200), np.concatenate([values[:100], values[-100:]])
    )
    if seed >= 2:
        edges = edges[:-5]  # the last bin then holds values, and its sum reaches the end
    bounds = np.concatenate([[0], np.searchsorted(values, edges, side="right"), [values.size]])
    expected = np.add.reduceat(np.append(values**power, 0.0), bounds[:-1])
    expected[bounds[:-1] == bounds[1:]] = 0.0
    np.testing.assert_array_equal(sorted_bin_sums(values, edges, power), expected)


def large_frames(seed: int, n: int, m: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    rng = np.random.default_rng(seed)

    def frame(size: int, shift: float) -> pd.DataFrame:
        amount = rng.lognormal(3.0 + shift, 1.0, size)
        amount[rng.random(size) < 0.05] = np.nan
        plan = rng.choice(np.array(["basic", "pro", "team", None], dtype=object), size=size)
        return pd.DataFrame(
            {
                "amount": amount,
                "score": rng.normal(shift, 1.0, size),
                "visits": rng.poisson(3.0 + shift, size),
                "flag": rng.random(size) < 0.3,
                "level": np.where(rng.random(size) < 0.01 * (shift > 0), 3.0, 2.0),
                "plan": pd.Series(plan, dtype=object),
                "code": pd.Series(rng.integers(0, 4, size), dtype=object),
            }
        )

    return frame(n, 0.0), frame(m, 0.2)


def test_fit_compare_gives_the_report_of_fit_then_compare() -> None:
    reference, current = large_frames(3, 80_000, 70_000)
    one_pass = DriftDetector(random_state=4, categorical=["code"]).fit_compare(reference, current)
    fitted = DriftDetector(random_state=4, categorical=["code"]).fit(reference)
    pd.testing.assert_frame_equal(one_pass.to_frame(), fitted.compare(current).to_frame())
    assert one_pass.to_dict() == fitted.compare(current).to_dict()
    assert one_pass.columns["level"].note  # constant in the reference: judged by KS alone


def test_pandas_and_arrow_inputs_give_the_same_report() -> None:
    reference, current = large_frames(5, 20_000, 30_000)
    from_pandas = compare(reference, current, random_state=2).to_frame()
    tables = [pa.Table.from_pandas(frame, preserve_index=False) for frame in (reference, current)]
    from_arrow = compare(*tables, random_state=2).to_frame()
    pd.testing.assert_frame_equal(from_pandas, from_arrow)


def test_text_in_object_columns_is_dictionary_encoded_and_counted_as_before() -> None:
    plan = pd.Series(["basic", None, "pro", "basic", np.nan, "team", "basic"], dtype=object)
    table = read_frame(pd.DataFrame({"plan": plan, "x": np.arange(7.0)}), "reference")
    assert pa.types.is_dictionary(table.column("plan").type)
    counts, n_missing = category_counts(table.column("plan"), "plan", "reference")
    assert (counts, n_missing) == ({"basic": 3, "pro": 1, "team": 1}, 2)
    as_strings = pa.chunked_array([pa.array(plan, from_pandas=True)])
    assert category_counts(as_strings, "plan", "reference") == (counts, n_missing)


def test_object_columns_of_numbers_or_nothing_keep_their_kind() -> None:
    frame = pd.DataFrame(
        {
            "count": pd.Series([1, 2, 3], dtype=object),
            "empty": pd.Series([None, None, None], dtype=object),
            "plan": pd.Series(["a", "b", "a"], dtype=object),
        }
    )
    kinds, skipped = resolve_kinds(read_frame(frame, "reference"), None, None)
    assert kinds == {"count": "numeric", "plan": "categorical"}
    assert list(skipped) == ["empty"]


def test_only_the_compared_columns_are_read() -> None:
    reference = pd.DataFrame({"x": np.arange(50.0), "mixed": pd.Series([1.0, "a"] * 25)})
    current = reference.assign(x=reference["x"] + 0.5)
    assert compare(reference, current, columns=["x"]).columns["x"].n_current == 50
    with pytest.raises(InvalidInputError, match="'mixed' of the reference data mixes types"):
        compare(reference, current)
