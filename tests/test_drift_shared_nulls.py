"""The Wasserstein null's draws, made once per grid and shared by the columns of a run.

Sharing must not change what a column's p-value means: each column's null is the same scaled
distance over the same multinomial draws as before, a column's result does not hang on which other
columns ran (or in what order, or on how many threads), and under no drift the alarms keep their
rate when twenty columns share one set of draws.
"""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from steward.data.drift import DriftDetector
from steward.data.drift.wasserstein import GridNulls, scaled_wasserstein, wasserstein_grid


def grid_of(rng: np.random.Generator, n: int = 4_000) -> tuple[np.ndarray, object]:
    pooled = np.sort(rng.lognormal(size=n))
    return pooled, wasserstein_grid(pooled)


def test_shared_draws_score_exactly_as_the_counts_they_were_drawn_from() -> None:
    rng = np.random.default_rng(1)
    _, grid = grid_of(rng)
    nulls = GridNulls(seed=7)
    reference, current = nulls.counts(grid.shares, 1_500, 2_500, 300)
    assert np.all(reference.sum(axis=1) == 1_500) and np.all(current.sum(axis=1) == 2_500)
    expected = scaled_wasserstein(reference, current, grid.support, grid.second_moment)
    scored = nulls.draws(grid.shares, 1_500, 2_500, 300).scored(grid.support, grid.second_moment)
    np.testing.assert_allclose(scored, expected, rtol=1e-12, atol=0.0)


def test_draws_hang_on_their_key_and_seed_alone() -> None:
    rng = np.random.default_rng(2)
    _, grid = grid_of(rng)
    first = GridNulls(seed=3).draws(grid.shares, 2_000, 2_000, 200)
    again = GridNulls(seed=3).draws(grid.shares.copy(), 2_000, 2_000, 200)
    assert np.array_equal(first.gaps, again.gaps)
    for other in (
        GridNulls(seed=4).draws(grid.shares, 2_000, 2_000, 200),
        GridNulls(seed=3).draws(grid.shares, 2_000, 2_001, 200),
    ):
        assert not np.array_equal(first.gaps, other.gaps)


def test_one_set_of_draws_is_made_however_many_threads_ask_at_once() -> None:
    shares = np.full(50, 1 / 50)
    nulls = GridNulls(seed=0)
    found: list[object] = []
    start = threading.Barrier(8)

    def ask() -> None:
        start.wait()
        found.append(nulls.draws(shares, 10_000, 10_000, 500))

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 8 and all(item is found[0] for item in found)


def test_draws_pushed_out_of_the_cache_come_back_the_same() -> None:
    nulls = GridNulls(seed=5)
    first = nulls.draws(np.full(10, 0.1), 5_000, 5_000, 100)
    for bins in range(11, 30):  # more kinds than are kept
        nulls.draws(np.full(bins, 1 / bins), 5_000, 5_000, 100)
    again = nulls.draws(np.full(10, 0.1), 5_000, 5_000, 100)
    assert again is not first and np.array_equal(again.gaps, first.gaps)


def test_a_failed_draw_fails_every_caller_with_the_same_error() -> None:
    nulls = GridNulls(seed=0)
    bad = np.array([0.5, np.nan, 0.5])
    for _ in range(2):
        with pytest.raises(ValueError):
            nulls.draws(bad, 100, 100, 10)


def frame(rng: np.random.Generator, n: int, columns: int, shift: float = 0.0) -> pd.DataFrame:
    return pd.DataFrame(
        {f"x{i}": rng.normal(shift if i == 0 else 0.0, 1.0, n) for i in range(columns)}
    )


def test_a_columns_result_does_not_hang_on_the_other_columns() -> None:
    rng = np.random.default_rng(11)
    reference, current = frame(rng, 3_000, 6), frame(rng, 2_000, 6, shift=0.15)
    methods = ["ks", "wasserstein", "psi"]
    together = DriftDetector(methods=methods).fit_compare(reference, current)
    alone = DriftDetector(methods=methods).fit_compare(reference[["x0"]], current[["x0"]])
    reordered = DriftDetector(methods=methods).fit_compare(
        reference[["x3", "x0", "x5"]], current[["x3", "x0", "x5"]]
    )

    def results(report: object) -> list[tuple[str, float, float]]:
        return sorted(
            (row.method, row.statistic, row.p_value)
            for row in report.results  # type: ignore[attr-defined]
            if row.column == "x0"
        )

    assert results(together) == results(alone) == results(reordered)
    wasserstein = [
        row for row in together.results if (row.column, row.method) == ("x0", "wasserstein")
    ]
    assert wasserstein[0].p_value < 0.01  # the shifted column is found


def test_twenty_columns_sharing_draws_keep_the_false_alarm_rate() -> None:
    # 20 unshifted columns x 25 runs: each column's Wasserstein p-value must stay uniform although
    # the columns share their draws. A shared draw is no evidence of drift in any column.
    rng = np.random.default_rng(12)
    p_values = []
    for run in range(25):
        reference, current = frame(rng, 1_200, 20), frame(rng, 900, 20)
        report = DriftDetector(methods=["wasserstein"], random_state=run).fit_compare(
            reference, current
        )
        p_values += [row.p_value for row in report.results]
    assert len(p_values) == 500
    share = np.mean(np.array(p_values) < 0.05)
    # 5% of 500 is 25; the bound is where a binomial(500, 0.05) count lies 99.9% of the time.
    assert share <= stats.binom.ppf(0.999, 500, 0.05) / 500
    assert stats.kstest(p_values, "uniform").pvalue > 0.001
