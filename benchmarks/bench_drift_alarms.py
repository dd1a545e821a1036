"""How often does steward.drift alarm when nothing changed, how often when something did, how fast?

Prints, with no asserts:

1. the false-alarm rate under no drift: reference and current drawn from one distribution, 20
   columns (mixed numeric and categorical), Benjamini–Hochberg across all (column, method) tests;
   and the calibration of raw p-values (share below 0.05 and 0.01 per method);
2. the detection rate of a mean shift of 0.05, 0.1, 0.2 and 0.5 standard deviations in one normal
   column among 20, and of a category shift (mass moved from the commonest category to the rarest,
   and a new category), with the alarm rate of the 19 untouched columns alongside;
3. the wall time of ``compare`` on 1M rows x 25 columns (20 numeric, 5 categorical) per side.

Run: ``python benchmarks/bench_drift_alarms.py`` (``--null-trials``, ``--trials``, ``--rows``,
``--big-rows``, ``--seed``).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from steward.data.drift import DriftDetector, compare

CATEGORIES = np.array(["a", "b", "c", "d", "e"])
CATEGORY_SHARES = np.array([0.4, 0.25, 0.15, 0.12, 0.08])


def draw_frame(rng: np.random.Generator, n_rows: int, change: Callable[..., Any] | None = None):
    """20 columns: 8 normal, 4 lognormal, 4 Poisson counts, 4 categorical; ``change`` edits one."""
    columns: dict[str, Any] = {f"normal_{i}": rng.normal(size=n_rows) for i in range(8)}
    columns.update({f"lognormal_{i}": rng.lognormal(size=n_rows) for i in range(4)})
    columns.update({f"count_{i}": rng.poisson(3.0, size=n_rows) for i in range(4)})
    columns.update(
        {f"category_{i}": rng.choice(CATEGORIES, p=CATEGORY_SHARES, size=n_rows) for i in range(4)}
    )
    if change is not None:
        change(columns, rng, n_rows)
    return pd.DataFrame(columns)


def shift_mean(size: float) -> Callable[..., None]:
    def change(columns: dict[str, Any], rng: np.random.Generator, n_rows: int) -> None:
        columns["normal_0"] = rng.normal(size, 1.0, size=n_rows)

    return change


def move_category_mass(moved: float) -> Callable[..., None]:
    shares = CATEGORY_SHARES.copy()
    shares[0] -= moved
    shares[-1] += moved

    def change(columns: dict[str, Any], rng: np.random.Generator, n_rows: int) -> None:
        columns["category_0"] = rng.choice(CATEGORIES, p=shares, size=n_rows)

    return change


def add_new_category(share: float) -> Callable[..., None]:
    def change(columns: dict[str, Any], rng: np.random.Generator, n_rows: int) -> None:
        values = rng.choice(CATEGORIES, p=CATEGORY_SHARES, size=n_rows).astype(object)
        values[rng.random(n_rows) < share] = "new"
        columns["category_0"] = values

    return change


def run_trials(
    trials: int, n_rows: int, change: Callable[..., Any] | None, target: str | None, seed: int
) -> dict[str, float]:
    """Rates over trials: any alarm, target alarm (and per method), other columns alarm, and the
    same for significance alone (what the practical floors filter out)."""
    counts: dict[str, float] = {}

    def bump(key: str, happened: bool) -> None:
        counts[key] = counts.get(key, 0) + bool(happened)

    for trial in range(trials):
        rng = np.random.default_rng([seed, trial])
        reference = draw_frame(rng, n_rows)
        current = draw_frame(rng, n_rows, change)
        report = compare(reference, current, random_state=trial)
        bump("any alarm", report.alarmed)
        bump("any significant", any(row.significant for row in report.results))
        if target is None:
            continue
        on_target = [row for row in report.results if row.column == target]
        bump("target alarm", any(row.alarm for row in on_target))
        bump("target significant", any(row.significant for row in on_target))
        bump("other columns alarm", any(r.alarm for r in report.results if r.column != target))
        for row in on_target:
            bump(f"  {row.method}", row.alarm)
    return {key: value / trials for key, value in counts.items()}


def print_calibration(trials: int, n_rows: int, seed: int) -> None:
    """Share of raw p-values below 0.05 and 0.01 per method, 20 normal columns per trial, no drift."""
    p_values: dict[str, list[float]] = {}
    for trial in range(trials):
        rng = np.random.default_rng([seed, 10_000 + trial])
        reference, current = (
            pd.DataFrame({f"normal_{i}": rng.normal(size=n_rows) for i in range(20)})
            for _ in range(2)
        )
        report = compare(
            reference,
            current,
            methods=["ks", "psi", "wasserstein"],
            correction="none",
            n_resamples=1_000,
            random_state=trial,
        )
        for row in report.results:
            p_values.setdefault(row.method, []).append(row.p_value)
    print(f"\ncalibration: raw p-values of {trials * 20} normal columns, {n_rows:,} rows a side")
    for method, values in p_values.items():
        share_05, share_01 = np.mean(np.array(values) < 0.05), np.mean(np.array(values) < 0.01)
        print(f"  {method:<12} p < 0.05: {share_05:.4f}   p < 0.01: {share_01:.4f}")


def print_rates(title: str, rates: dict[str, float]) -> None:
    print(f"\n{title}")
    for key, value in rates.items():
        print(f"  {key:<24} {value:6.3f}")


def time_big_compare(n_rows: int, seed: int) -> None:
    rng = np.random.default_rng(seed)

    def big_frame(shift: float) -> pd.DataFrame:
        columns: dict[str, Any] = {f"x{i}": rng.normal(shift, size=n_rows) for i in range(20)}
        labels = np.array([f"k{k}" for k in range(12)])
        columns.update({f"c{j}": rng.choice(labels, size=n_rows) for j in range(5)})
        return pd.DataFrame(columns)

    reference, current = big_frame(0.0), big_frame(0.01)
    print(f"\nwall time on {n_rows:,} rows x 25 columns (20 numeric, 5 categorical) per side")
    print(f"  load average before: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    for label, n_resamples in (
        ("compare, default (resampled nulls)", None),
        ("compare, nulls of 1 resample", 1),
    ):
        wall, cpu = time.perf_counter(), time.process_time()
        report = compare(reference, current, n_resamples=n_resamples)
        print(
            f"  {label:<38} {time.perf_counter() - wall:6.2f} s wall, "
            f"{time.process_time() - cpu:6.2f} s CPU, resamples={report.n_resamples}"
        )
    detector = DriftDetector()
    wall = time.perf_counter()
    detector.fit(reference)
    fitted = time.perf_counter() - wall
    wall = time.perf_counter()
    detector.compare(current)
    print(f"  {'DriftDetector.fit (reference once)':<38} {fitted:6.2f} s wall")
    print(f"  {'DriftDetector.compare (per window)':<38} {time.perf_counter() - wall:6.2f} s wall")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--null-trials", type=int, default=300, help="trials with no drift")
    parser.add_argument("--trials", type=int, default=100, help="trials per drift scenario")
    parser.add_argument("--rows", type=int, default=5_000, help="rows per side in the trials")
    parser.add_argument("--big-rows", type=int, default=1_000_000, help="rows per side, timing")
    parser.add_argument("--seed", type=int, default=2024)
    arguments = parser.parse_args()
    trials, rows, seed = arguments.trials, arguments.rows, arguments.seed
    print(f"steward.data.drift alarms: {rows:,} rows per side, 20 columns, Benjamini-Hochberg at")
    print("alpha=0.05, default floors; rates are fractions of trials")
    null_rates = run_trials(arguments.null_trials, rows, None, None, seed)
    print_rates(f"no drift ({arguments.null_trials} trials)", null_rates)
    print_calibration(100, 1_000, seed)
    print(f"\ndrift scenarios, {trials} trials each")
    for size in (0.05, 0.1, 0.2, 0.5):
        rates = run_trials(trials, rows, shift_mean(size), "normal_0", seed)
        print_rates(f"mean shift of {size} std in normal_0", rates)
    for moved in (0.02, 0.05, 0.1):
        rates = run_trials(trials, rows, move_category_mass(moved), "category_0", seed)
        print_rates(f"category shift: {moved:.0%} of rows moved from 'a' to 'e'", rates)
    rates = run_trials(trials, rows, add_new_category(0.02), "category_0", seed)
    print_rates("new category 'new' in 2% of rows", rates)
    time_big_compare(arguments.big_rows, seed)


if __name__ == "__main__":
    main()
