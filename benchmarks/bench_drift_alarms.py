"""How often does a drift check alarm when nothing changed, and how often when something did?

Prints, with no asserts, for exact mode (``steward.data.drift.compare`` on rows) and profile mode
(``steward.data.profiles.compare_profiles`` on binned profiles, as ``steward drift`` and the
monitors run it), default settings throughout:

1. **False alarms under no drift**, per column kind and sample size (rows a side). Reference and
   current are drawn from one distribution. Each run is one 25-column check (three columns of each
   of the eight kinds below and one more normal column, drawn independently); the per-column rate
   re-judges each column of those runs alone, its raw p-values adjusted among its own tests only, as
   a check of that one column would. Each cell gives the rate and its upper 95% bound
   (Clopper–Pearson); the promise is at most 1% per column check and 5% per 25-column check.
2. **Power**: the share of one-column checks that alarm on a change, per sample size: mean shifts
   of 0.05 to 0.5 standard deviations, category mass moved, a new category, and a unit error
   (x100 on 2% of rows).

Kinds: normal; heavy-tailed (Student t, 2 degrees of freedom); discrete with ties (Poisson, mean
3); zero-inflated (70% zeros, else lognormal); sparse (98% zeros, else an integer 1-16);
categorical with 5 levels (shares 0.40/0.25/0.15/0.12/0.08) and with 50 and 200 long-tailed levels
(Zipf, shares proportional to 1/rank^1.1).

Run: ``python benchmarks/bench_drift_alarms.py`` (``--runs`` per false-alarm cell, default 1000;
``--power-runs``, default 200; ``--sizes``; ``--modes``; ``--workers``, default 2; ``--seed``).
Progress goes to stderr. The defaults take about an hour on two cores.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from steward.data.drift import DriftDetector
from steward.data.drift.report import DriftReport
from steward.data.drift.stats import adjust_p_values
from steward.data.profiles import DatasetProfile, compare_profiles, fit_binnings

Draw = Callable[[np.random.Generator, int], np.ndarray]


def _zipf_levels(levels: int) -> tuple[np.ndarray, np.ndarray]:
    shares = 1.0 / np.arange(1, levels + 1) ** 1.1
    return np.array([f"L{index}" for index in range(levels)], dtype=object), shares / shares.sum()


FIVE_LEVELS = np.array(["a", "b", "c", "d", "e"], dtype=object)
FIVE_SHARES = np.array([0.40, 0.25, 0.15, 0.12, 0.08])
LEVELS_50, SHARES_50 = _zipf_levels(50)
LEVELS_200, SHARES_200 = _zipf_levels(200)


def _zero_inflated(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.7, 0.0, rng.lognormal(size=n))


def _sparse(rng: np.random.Generator, n: int) -> np.ndarray:
    return np.where(rng.random(n) < 0.98, 0, rng.integers(1, 17, size=n)).astype(np.int64)


KINDS: dict[str, Draw] = {
    "normal": lambda rng, n: rng.normal(size=n),
    "heavy-tailed": lambda rng, n: rng.standard_t(2, size=n),
    "discrete, ties": lambda rng, n: rng.poisson(3.0, size=n),
    "zero-inflated": _zero_inflated,
    "sparse": _sparse,
    "categorical, 5": lambda rng, n: rng.choice(FIVE_LEVELS, p=FIVE_SHARES, size=n),
    "categorical, 50": lambda rng, n: rng.choice(LEVELS_50, p=SHARES_50, size=n),
    "categorical, 200": lambda rng, n: rng.choice(LEVELS_200, p=SHARES_200, size=n),
}
#: The 25 columns of a check: three of each kind and one more normal one.
COLUMNS: dict[str, str] = {
    **{f"{kind} #{copy}": kind for kind in KINDS for copy in range(3)},
    "normal #3": "normal",
}


def check(mode: str, reference: pd.DataFrame, current: pd.DataFrame, seed: int) -> DriftReport:
    """One drift check at default settings, as a user runs it in either mode."""
    if mode == "exact":
        return DriftDetector(random_state=seed).fit(reference).compare(current)
    binnings = fit_binnings(reference)
    return compare_profiles(
        DatasetProfile.from_frame(reference, binnings),
        DatasetProfile.from_frame(current, binnings),
        random_state=seed,
    )


def column_alarms(report: DriftReport) -> dict[str, bool]:
    """Whether each column alarms when judged alone: its raw p-values adjusted among its own
    tests, each against the threshold the report gave it (floor, noise and, in profile mode,
    the bound: none of them depends on the other columns)."""
    verdicts = {}
    for column in report.columns:
        rows = [row for row in report.results if row.column == column]
        adjusted = adjust_p_values([row.p_value for row in rows], report.correction)
        verdicts[column] = any(
            bool(value <= report.alpha) and row.statistic > row.threshold
            for row, value in zip(rows, adjusted, strict=True)
        )
    return verdicts


def null_runs(task: tuple[str, int, int, int]) -> tuple[int, dict[str, int], int]:
    """Runs of the 25-column check under no drift: (runs, column alarms per kind, check alarms)."""
    mode, n_rows, first, last = task
    per_kind = dict.fromkeys(KINDS, 0)
    alarms = 0
    for run in range(first, last):
        rng = np.random.default_rng([n_rows, run])
        frames = [
            pd.DataFrame({name: KINDS[kind](rng, n_rows) for name, kind in COLUMNS.items()})
            for _ in range(2)
        ]
        report = check(mode, *frames, seed=run)
        alarms += report.alarmed
        for column, alarmed in column_alarms(report).items():
            per_kind[COLUMNS[column]] += alarmed
    return last - first, per_kind, alarms


def upper_bound(successes: int, trials: int) -> float:
    """The upper end of the two-sided 95% Clopper–Pearson interval of a rate."""
    return float(stats.binomtest(successes, trials).proportion_ci(0.95, "exact").high)


def run_parallel(
    function: Callable[[Any], Any], tasks: list[Any], workers: int, label: str
) -> list[Any]:
    started, results = time.perf_counter(), []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for done, result in enumerate(pool.map(function, tasks), start=1):
            results.append(result)
            elapsed = time.perf_counter() - started
            print(f"  {label}: {done}/{len(tasks)} tasks, {elapsed:.0f} s", file=sys.stderr)
    return results


def false_alarm_table(mode: str, sizes: list[int], runs: int, workers: int) -> None:
    print(f"\n## No drift, {mode} mode: false-alarm rate (upper 95% bound), {runs} runs per size")
    print(f"\n| column kind | {' | '.join(f'{size:,} rows' for size in sizes)} |")
    print(f"|---|{'---:|' * len(sizes)}")
    chunk = max(1, runs // (4 * workers))
    tasks = [
        (mode, size, first, min(first + chunk, runs))
        for size in sizes
        for first in range(0, runs, chunk)
    ]
    results = run_parallel(null_runs, tasks, workers, f"{mode} no-drift")
    totals = {size: (0, dict.fromkeys(KINDS, 0), 0) for size in sizes}
    for (_, size, _, _), (count, per_kind, alarms) in zip(tasks, results, strict=True):
        total_runs, total_kinds, total_alarms = totals[size]
        merged = {kind: total_kinds[kind] + per_kind[kind] for kind in KINDS}
        totals[size] = (total_runs + count, merged, total_alarms + alarms)
    copies = {kind: sum(1 for value in COLUMNS.values() if value == kind) for kind in KINDS}
    for kind in KINDS:
        cells = []
        for size in sizes:
            total_runs, per_kind, _ = totals[size]
            trials = total_runs * copies[kind]
            cells.append(_rate_cell(per_kind[kind], trials))
        print(f"| {kind} (per column) | {' | '.join(cells)} |")
    cells = [_rate_cell(totals[size][2], totals[size][0]) for size in sizes]
    print(f"| **25-column check** | {' | '.join(cells)} |")


def _rate_cell(successes: int, trials: int) -> str:
    return f"{successes / trials:.2%} (≤{upper_bound(successes, trials):.2%}, n={trials:,})"


# --- power -------------------------------------------------------------------------------------


def shift_mean(size: float) -> Callable[[np.random.Generator, int], pd.DataFrame]:
    return lambda rng, n: pd.DataFrame({"x": rng.normal(size, 1.0, size=n)})


def move_mass(moved: float) -> Callable[[np.random.Generator, int], pd.DataFrame]:
    shares = FIVE_SHARES.copy()
    shares[0] -= moved
    shares[-1] += moved
    return lambda rng, n: pd.DataFrame({"x": rng.choice(FIVE_LEVELS, p=shares, size=n)})


def new_category(share: float) -> Callable[[np.random.Generator, int], pd.DataFrame]:
    def draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
        values = rng.choice(FIVE_LEVELS, p=FIVE_SHARES, size=n)
        values[rng.random(n) < share] = "new"
        return pd.DataFrame({"x": values})

    return draw


def unit_change(share: float) -> Callable[[np.random.Generator, int], pd.DataFrame]:
    def draw(rng: np.random.Generator, n: int) -> pd.DataFrame:
        values = rng.lognormal(3.0, 0.5, size=n)  # an amount, e.g. in euros
        values[rng.random(n) < share] *= 100.0  # sent in cents
        return pd.DataFrame({"x": values})

    return draw


SCENARIOS: dict[str, tuple[Callable[..., pd.DataFrame], Callable[..., pd.DataFrame]]] = {
    **{
        f"mean shift {size} std": (shift_mean(0.0), shift_mean(size))
        for size in (0.05, 0.1, 0.2, 0.5)
    },
    **{
        f"{moved:.0%} of rows moved between categories": (move_mass(0.0), move_mass(moved))
        for moved in (0.02, 0.05, 0.1)
    },
    **{
        f"new category in {share:.0%} of rows": (move_mass(0.0), new_category(share))
        for share in (0.02, 0.05)
    },
    "unit change (x100) on 2% of rows": (unit_change(0.0), unit_change(0.02)),
}


def power_runs(task: tuple[str, str, int, int]) -> int:
    mode, scenario, n_rows, runs = task
    before, after = SCENARIOS[scenario]
    alarms = 0
    for run in range(runs):
        rng = np.random.default_rng([n_rows, run, 7])
        alarms += check(mode, before(rng, n_rows), after(rng, n_rows), seed=run).alarmed
    return alarms


def power_table(modes: list[str], sizes: list[int], runs: int, workers: int) -> None:
    print(f"\n## Power: share of one-column checks that alarm, {runs} runs per cell")
    header = [f"{mode} {size:,}" for size in sizes for mode in modes]
    print(f"\n| change | {' | '.join(header)} |")
    print(f"|---|{'---:|' * len(header)}")
    tasks = [
        (mode, scenario, size, runs) for scenario in SCENARIOS for size in sizes for mode in modes
    ]
    results = iter(run_parallel(power_runs, tasks, workers, "power"))
    for scenario in SCENARIOS:
        cells = [f"{next(results) / runs:.0%}" for _ in sizes for _ in modes]
        print(f"| {scenario} | {' | '.join(cells)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1_000, help="runs per false-alarm cell")
    parser.add_argument("--power-runs", type=int, default=200, help="runs per power cell")
    parser.add_argument("--sizes", default="200,500,1000,5000,50000", help="rows a side")
    parser.add_argument("--power-sizes", default="1000,10000,50000", help="rows a side")
    parser.add_argument("--modes", default="exact,profile")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-null", action="store_true", help="print the power table only")
    parser.add_argument("--skip-power", action="store_true", help="print the false alarms only")
    arguments = parser.parse_args()
    modes = arguments.modes.split(",")
    sizes = [int(size) for size in arguments.sizes.split(",")]
    power_sizes = [int(size) for size in arguments.power_sizes.split(",")]
    print("steward drift checks at default settings (alpha 0.05, Benjamini-Hochberg, floors 0.1)")
    if not arguments.skip_null:
        for mode in modes:
            false_alarm_table(mode, sizes, arguments.runs, arguments.workers)
    if not arguments.skip_power:
        power_table(modes, power_sizes, arguments.power_runs, arguments.workers)


if __name__ == "__main__":
    main()
