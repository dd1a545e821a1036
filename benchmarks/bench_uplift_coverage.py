"""Does steward.uplift's 95% interval cover the true uplift 95% of the time, and how does Wald do?

For every control rate (0.05, 0.2, 0.5), true uplift (0, 0.02, 0.05) and population (2,000 and
20,000 entities with the intended action, 10% held out: 1,800 vs 200 and 18,000 vs 2,000), draws
``--reps`` experiments with 0/1 outcomes, runs ``uplift()`` on each frame, and prints with no asserts:

- the empirical coverage of the uplift's 95% interval (Newcombe's hybrid score) and, from the same
  draws, of the textbook Wald interval ``d ± z sqrt(p1 q1 / n1 + p0 q0 / n0)``, with the Monte
  Carlo standard error of a coverage near 0.95;
- their mean widths;
- the share of experiments declared significant: by the pooled z-test's p < 0.05, by Newcombe's
  interval excluding 0 and by Wald's; at uplift 0 this is the false-positive rate, otherwise power.

Run: ``python benchmarks/bench_uplift_coverage.py`` (``--reps``, ``--seed``).
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pandas as pd
from scipy import stats

from steward.monitoring.uplift import uplift

BASELINES = (0.05, 0.2, 0.5)
UPLIFTS = (0.0, 0.02, 0.05)
POPULATIONS = (2_000, 20_000)
HOLDOUT = 0.1
CONFIDENCE = 0.95


def run_cell(
    generator: np.random.Generator, baseline: float, lift: float, population: int, reps: int
) -> dict[str, float]:
    n_control = round(population * HOLDOUT)
    n_treated = population - n_control
    frame = pd.DataFrame(
        {
            "intended_action": np.full(population, "contact", dtype=object),
            "holdout": np.r_[np.zeros(n_treated, dtype=bool), np.ones(n_control, dtype=bool)],
            "value": np.zeros(population),
        }
    )
    z = float(stats.norm.ppf(0.5 + CONFIDENCE / 2))
    tallies = dict.fromkeys(
        ("newcombe_covers", "wald_covers", "newcombe_width", "wald_width", "p_rejects",
         "newcombe_rejects", "wald_rejects"),
        0.0,
    )  # fmt: skip
    for _ in range(reps):
        treated = generator.random(n_treated) < baseline + lift
        control = generator.random(n_control) < baseline
        frame["value"] = np.r_[treated, control].astype(float)
        result = uplift(frame, confidence=CONFIDENCE)
        low, high = result.uplift_interval or (math.nan, math.nan)
        rate_treated, rate_control = treated.mean(), control.mean()
        difference = rate_treated - rate_control
        half_width = z * math.sqrt(
            rate_treated * (1 - rate_treated) / n_treated
            + rate_control * (1 - rate_control) / n_control
        )
        tallies["newcombe_covers"] += low <= lift <= high
        tallies["wald_covers"] += difference - half_width <= lift <= difference + half_width
        tallies["newcombe_width"] += high - low
        tallies["wald_width"] += 2 * half_width
        tallies["p_rejects"] += (result.p_value if result.p_value is not None else 1.0) < 0.05
        tallies["newcombe_rejects"] += bool(result.significant)
        tallies["wald_rejects"] += abs(difference) > half_width
    return {name: total / reps for name, total in tallies.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=2_000, help="experiments per cell")
    parser.add_argument("--seed", type=int, default=20_260_302)
    arguments = parser.parse_args()
    generator = np.random.default_rng(arguments.seed)
    standard_error = math.sqrt(0.95 * 0.05 / arguments.reps)
    print(
        f"{arguments.reps:,} experiments per cell, {HOLDOUT:.0%} held out, {CONFIDENCE:.0%} "
        f"intervals; Monte Carlo SE of a coverage near 0.95: {standard_error:.4f}\n"
    )
    header = (
        f"{'control':>7} {'uplift':>6} {'treated/held out':>16} | {'coverage':>8} {'wald':>6} | "
        f"{'width':>6} {'wald':>6} | {'p<0.05':>6} {'excl.0':>6} {'wald':>6}"
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for population in POPULATIONS:
        n_control = round(population * HOLDOUT)
        arms = f"{population - n_control:,}/{n_control:,}"
        for baseline in BASELINES:
            for lift in UPLIFTS:
                cell = run_cell(generator, baseline, lift, population, arguments.reps)
                print(
                    f"{baseline:>7.2f} {lift:>6.2f} {arms:>16} | {cell['newcombe_covers']:>8.3f} "
                    f"{cell['wald_covers']:>6.3f} | {cell['newcombe_width']:>6.4f} "
                    f"{cell['wald_width']:>6.4f} | {cell['p_rejects']:>6.3f} "
                    f"{cell['newcombe_rejects']:>6.3f} {cell['wald_rejects']:>6.3f}"
                )
    print(
        "\ncoverage: share of intervals holding the true uplift (Newcombe, then Wald); width: mean "
        "interval width;\np<0.05 / excl.0 / wald: share declared significant by the pooled z-test, "
        "by Newcombe's interval\nexcluding 0, and by Wald's (false-positive rate at uplift 0, "
        f"power otherwise). {time.perf_counter() - started:.0f} s."
    )


if __name__ == "__main__":
    main()
