"""False alarms and power of the fairness monitor's rule, on simulated labeled windows.

Two equal groups; scores beta(4, 2) for positives and beta(2, 4) for negatives (TPR about 0.81 at
the 0.5 threshold); a shift lowers group b's true positive rate by pushing some of its positives
under the threshold. Each window is judged by ``steward.monitoring.fairness.fairness_verdict`` with
the default settings (max_gap 0.1, 95% intervals, Bonferroni across the measures checked).

    python benchmarks/bench_fairness_alarms.py --runs 1000
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

from steward.monitoring.fairness import fairness_verdict
from steward.workspace.config import FairnessConfig


def simulate(n: int, rng: np.random.Generator, tpr_drop: float) -> dict[str, object]:
    import json

    import pandas as pd

    group = rng.choice(["a", "b"], n)
    truth = rng.random(n) < 0.3
    score = np.where(truth, rng.beta(4, 2, n), rng.beta(2, 4, n))
    hit = (group == "b") & truth & (rng.random(n) < tpr_drop / 0.81)
    score = np.where(hit, score * 0.5, score)
    return pd.DataFrame(
        {
            "inputs": [json.dumps({"group": g}) for g in group],
            "score": score,
            "outcome_value": truth.astype(int),
        }
    )


def upper_bound(hits: int, runs: int) -> float:
    """Wilson's 95% upper bound on a rate."""
    z, p = 1.96, hits / runs
    centre = p + z * z / (2 * runs)
    spread = z * math.sqrt(p * (1 - p) / runs + z * z / (4 * runs * runs))
    return (centre + spread) / (1 + z * z / runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 2000, 10000])
    parser.add_argument("--drops", type=float, nargs="+", default=[0.0, 0.1, 0.2, 0.3])
    arguments = parser.parse_args()
    config = FairnessConfig(
        attributes=["group"],
        measures=["equalized_odds_difference", "demographic_parity_difference"],
    )
    rng = np.random.default_rng(2026)
    print(f"{'labeled rows':>12} {'TPR drop':>9} {'breaches':>10} {'rate':>7} {'95% upper':>10}")
    for n in arguments.sizes:
        for drop in arguments.drops:
            started = time.perf_counter()
            runs = arguments.runs if drop == 0 else max(100, arguments.runs // 5)
            hits = sum(
                fairness_verdict(simulate(n, rng, drop), config, seed=i)[0] == "breach"
                for i in range(runs)
            )
            print(
                f"{n:>12,} {drop:>9.2f} {hits:>6}/{runs:<4} {hits / runs:>6.1%} "
                f"{upper_bound(hits, runs):>9.2%}   ({time.perf_counter() - started:.1f} s)"
            )


if __name__ == "__main__":
    main()
