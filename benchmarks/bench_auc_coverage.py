"""Do the realized ROC AUC interval and the rate intervals cover 95% of the time at small samples?

For each score shape (below) and each count of positives (10, 25, 50, 500 by default; negatives
so that the prevalence is 20%), draws ``--reps`` labeled windows with those exact class counts and
prints, with no asserts:

- the coverage of the true AUC by plain DeLong (AUC ± z·SE, clipped to [0, 1]; what
  ``realized_performance`` used before) and by ``delong_logit`` (what it uses now), each with its
  binomial standard error, and their mean widths;
- for ``delong_logit``, how often the true AUC fell below the interval and above it, and for plain
  DeLong how often above it (above is what would open a false performance alarm, which fires when
  the upper bound is below the registered figure), and how many windows fell back to the
  ``wilson-auc`` bound (an AUC of exactly 0 or 1);
- the coverage of Wilson's interval for recall, FPR, precision and accuracy at the threshold
  halfway between the class means (``realized_performance`` reports the first three with Wilson),
  on a second window per run of as many rows whose labels are drawn at the prevalence (so the
  class counts vary, as they do in production, and each rate is a binomial share given its
  denominator);
- Wilson's exact coverage for a proportion over n trials (binomial sums, no simulation): its mean
  and its minimum over true proportions from 0.1 to 0.9.

Score shapes, each with a known true AUC: binormal (negatives N(0, 1), positives N(d, 1), AUC =
Phi(d / sqrt(2))) at AUC 0.75, 0.90 and 0.95, and an unequal-variance binormal (positives N(d, 2),
AUC = Phi(d / sqrt(5)) = 0.85) whose ROC curve crosses the diagonal.

Run: ``python benchmarks/bench_auc_coverage.py`` (``--reps``, ``--seed``, ``--positives``,
``--prevalence``).
"""

from __future__ import annotations

import argparse
import math
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from steward.monitoring.metrics import delong, delong_logit, wilson

CONFIDENCE = 0.95
Sampler = Callable[[np.random.Generator, int], np.ndarray]


def binormal(auc: float, positive_sd: float = 1.0) -> tuple[float, float, float]:
    """Positive mean d (negatives N(0, 1), positives N(d, positive_sd)) giving ``auc``."""
    return auc, float(stats.norm.ppf(auc) * math.sqrt(1.0 + positive_sd**2)), positive_sd


SHAPES = {
    "binormal AUC 0.75": binormal(0.75),
    "binormal AUC 0.90": binormal(0.90),
    "binormal AUC 0.95": binormal(0.95),
    "unequal-variance AUC 0.85": binormal(0.85, positive_sd=2.0),
}
RATES = ("recall", "fpr", "precision", "accuracy")


def run_cell(
    generator: np.random.Generator,
    shape: tuple[float, float, float],
    n_positive: int,
    n_negative: int,
    reps: int,
) -> dict[str, float]:
    true_auc, mean, positive_sd = shape
    threshold = mean / 2.0
    recall = float(stats.norm.sf((threshold - mean) / positive_sd))
    fpr = float(stats.norm.sf(threshold))
    prevalence = n_positive / (n_positive + n_negative)
    truth = {
        "recall": recall,
        "fpr": fpr,
        "precision": prevalence * recall / (prevalence * recall + (1 - prevalence) * fpr),
        "accuracy": prevalence * recall + (1 - prevalence) * (1 - fpr),
    }
    labels = np.r_[np.ones(n_positive), np.zeros(n_negative)]
    n_rows = n_positive + n_negative
    tallies = dict.fromkeys(
        ("old_covers", "new_covers", "old_width", "new_width", "new_below", "new_above",
         "old_above", "fallback", *RATES),
        0.0,
    )  # fmt: skip
    for _ in range(reps):
        scores = np.r_[
            generator.normal(mean, positive_sd, n_positive), generator.normal(0, 1, n_negative)
        ]
        old, new = delong(scores, labels, CONFIDENCE), delong_logit(scores, labels, CONFIDENCE)
        tallies["old_covers"] += old.lower <= true_auc <= old.upper
        tallies["new_covers"] += new.lower <= true_auc <= new.upper
        tallies["old_width"] += old.upper - old.lower
        tallies["new_width"] += new.upper - new.lower
        tallies["new_below"] += true_auc < new.lower
        tallies["new_above"] += true_auc > new.upper
        tallies["old_above"] += true_auc > old.upper
        tallies["fallback"] += new.method != "delong-logit"
        drawn = generator.random(n_rows) < prevalence
        drawn_scores = np.where(
            drawn, generator.normal(mean, positive_sd, n_rows), generator.normal(0, 1, n_rows)
        )
        decided = drawn_scores >= threshold
        tp, fp = int((decided & drawn).sum()), int((decided & ~drawn).sum())
        positives = int(drawn.sum())
        counts = {
            "recall": (tp, positives),
            "fpr": (fp, n_rows - positives),
            "precision": (tp, tp + fp),
            "accuracy": (tp + n_rows - positives - fp, n_rows),
        }
        for name, (successes, trials) in counts.items():
            interval = wilson(successes, trials, CONFIDENCE, "no trials")
            # A window without a denominator has no interval; it counts as a miss.
            tallies[name] += interval.lower <= truth[name] <= interval.upper
    return {name: total / reps for name, total in tallies.items()}


def wilson_exact(trials: int) -> tuple[float, float]:
    """Wilson's exact coverage over true proportions 0.1 to 0.9: the mean and the minimum."""
    successes = np.arange(trials + 1)
    bounds = np.array([wilson(int(k), trials, CONFIDENCE, "")[1:3] for k in successes])
    coverages = []
    for share in np.linspace(0.1, 0.9, 801):
        holds = (bounds[:, 0] <= share) & (share <= bounds[:, 1])
        coverages.append(float(stats.binom.pmf(successes, trials, share)[holds].sum()))
    return float(np.mean(coverages)), float(np.min(coverages))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=1_000, help="windows per cell")
    parser.add_argument("--seed", type=int, default=20_260_310)
    parser.add_argument("--positives", default="10,25,50,500", help="comma-separated counts")
    parser.add_argument("--prevalence", type=float, default=0.2, help="share of positives")
    arguments = parser.parse_args()
    positives = [int(value) for value in arguments.positives.split(",")]
    generator = np.random.default_rng(arguments.seed)
    print(
        f"{arguments.reps:,} windows per cell, prevalence {arguments.prevalence:.0%}, "
        f"{CONFIDENCE:.0%} intervals; binomial SE of a coverage near 0.95: "
        f"{math.sqrt(0.95 * 0.05 / arguments.reps):.4f}\n"
    )
    header = (
        f"{'shape':<26} {'pos':>4} {'neg':>5} | {'delong':>6} {'±se':>5} {'logit':>6} {'±se':>5} | "
        f"{'width':>6} {'logit':>6} | {'below':>5} {'above':>5} {'old':>5} {'0/1':>4} | "
        + " ".join(f"{name:>9}" for name in RATES)
    )
    print(header)
    print("-" * len(header))
    started = time.perf_counter()
    for name, shape in SHAPES.items():
        for n_positive in positives:
            n_negative = round(n_positive * (1 - arguments.prevalence) / arguments.prevalence)
            cell = run_cell(generator, shape, n_positive, n_negative, arguments.reps)
            errors = [math.sqrt(cell[key] * (1 - cell[key]) / arguments.reps) for key in
                      ("old_covers", "new_covers")]  # fmt: skip
            print(
                f"{name:<26} {n_positive:>4} {n_negative:>5} | {cell['old_covers']:>6.3f} "
                f"{errors[0]:>5.3f} {cell['new_covers']:>6.3f} {errors[1]:>5.3f} | "
                f"{cell['old_width']:>6.3f} {cell['new_width']:>6.3f} | {cell['new_below']:>5.3f} "
                f"{cell['new_above']:>5.3f} {cell['old_above']:>5.3f} "
                f"{cell['fallback'] * arguments.reps:>4.0f} | "
                + " ".join(f"{cell[rate]:>9.3f}" for rate in RATES)
            )
    print(
        "\ndelong / logit: coverage of the true AUC by plain DeLong and by delong_logit, with the "
        "binomial SE;\nwidth: mean interval width (DeLong, logit); below / above: share of "
        "windows whose true AUC lay below /\nabove the logit interval; old: above plain DeLong's; "
        "0/1: windows with an AUC "
        "of exactly 0 or 1 (wilson-auc fallback);\nrates: coverage of Wilson's interval at the "
        f"threshold halfway between the class means. {time.perf_counter() - started:.0f} s.\n"
    )
    print("Wilson's exact coverage for a proportion (true proportion 0.1 to 0.9):")
    for trials in (10, 25, 50, 500):
        mean, minimum = wilson_exact(trials)
        print(f"  n = {trials:>3}: mean {mean:.3f}, minimum {minimum:.3f}")


if __name__ == "__main__":
    main()
