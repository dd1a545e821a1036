"""Intervals on performance metrics: Wilson for proportions, DeLong for ROC AUC, and a bootstrap.

Every metric comes back as a ``Metric``: the value, a ``confidence`` interval, the interval's method
and a ``status`` (``STATUS_OK``, or why the value is NaN). ROC AUC gets ``delong_logit``: DeLong's
variance on the logit scale with a Student t quantile, which keeps its coverage from 10 positives
up (plain ``delong``, AUC ± z·SE, covers 81-91% there; ``benchmarks/bench_auc_coverage.py``).
The bootstrap resamples rows as weights (how often each row was drawn) in batches of at most
``BATCH_CELLS`` cells, so a statistic on weighted rows is one matrix product per batch rather than
one call per resample.

Example::

    >>> round(float(wilson(8, 10, 0.95, "no trials").lower), 4)
    0.4902
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
from scipy import special, stats

from steward.errors import InvalidInputError

__all__ = [
    "BATCH_CELLS",
    "STATUS_OK",
    "Metric",
    "auc_placements",
    "bootstrap",
    "check_settings",
    "delong",
    "delong_logit",
    "missing_metric",
    "wilson",
    "z_score",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
# A metric on weighted rows: (values, targets, weights of shape (resamples, rows)) -> per resample.
Statistic = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]

#: Bootstrap resamples (and CBPE's label draws) are drawn in batches of at most this many cells
#: (resamples x rows), so a million-row window costs memory in megabytes, not gigabytes.
BATCH_CELLS: Final = 4_000_000
#: The ``status`` of a metric that has a value.
STATUS_OK: Final = "ok"


class Metric(NamedTuple):
    """One metric's value, its interval, the interval's method and a status."""

    value: float
    lower: float
    upper: float
    method: str
    status: str


def missing_metric(status: str, method: str = "") -> Metric:
    """A metric without a value (NaN throughout); ``status`` says why."""
    return Metric(np.nan, np.nan, np.nan, method, status)


def z_score(confidence: float) -> float:
    """The standard normal quantile of a two-sided ``confidence`` interval (1.96 for 0.95)."""
    return float(special.ndtri(0.5 + confidence / 2.0))  # stats.norm.ppf, without its overhead


def check_settings(confidence: float, n_resamples: int, min_samples: int, minimum: int) -> None:
    """Raise ``InvalidInputError`` unless the interval and minimum-count settings make sense.

    ``confidence`` lies in (0, 1), ``n_resamples`` is at least 10, ``min_samples`` at least 2 and
    ``minimum`` (the smallest class count, ``min_per_class``) at least 1.
    """
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence {confidence} must lie in (0, 1), e.g. 0.95")
    if n_resamples < 10:
        raise InvalidInputError(f"n_resamples {n_resamples} is too few; use 200 or more")
    if min_samples < 2 or minimum < 1:
        raise InvalidInputError(
            f"min_samples {min_samples} must be >= 2 and min_per_class {minimum} >= 1"
        )


def wilson(successes: int, trials: int, confidence: float, empty: str) -> Metric:
    """A proportion and its Wilson score interval (good coverage even near 0 or 1).

    With no ``trials`` the metric is missing and its status reads ``"undefined: " + empty``.
    """
    if trials == 0:
        return missing_metric(f"undefined: {empty}", "wilson")
    share = successes / trials
    return Metric(share, *_wilson_bounds(share, trials, z_score(confidence)), "wilson", STATUS_OK)


def _wilson_bounds(share: float, trials: float, z: float) -> tuple[float, float]:
    denominator = 1.0 + z**2 / trials
    center = (share + z**2 / (2 * trials)) / denominator
    half = z / denominator * np.sqrt(share * (1 - share) / trials + z**2 / (4 * trials**2))
    # At a share of exactly 0 or 1 the near bound is exactly 0 or 1; rounding would leave 1 - 1e-16.
    lower = 0.0 if share == 0.0 else max(0.0, float(center - half))
    upper = 1.0 if share == 1.0 else min(1.0, float(center + half))
    return lower, upper


def auc_placements(
    positives: FloatArray, negatives: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """The ROC AUC (Mann–Whitney form) and DeLong's placement values: each positive's share of
    negatives scored below it, each negative's share of positives scored above it (midranks for
    ties). The unpaired interval here and the paired test in ``steward.loop.promotion`` both build on it.
    """
    m, n = len(positives), len(negatives)
    combined = stats.rankdata(np.concatenate([positives, negatives]))
    within_positives, within_negatives = stats.rankdata(positives), stats.rankdata(negatives)
    auc = (combined[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    positive_placements = (combined[:m] - within_positives) / n
    negative_placements = 1.0 - (combined[m:] - within_negatives) / m
    return float(auc), positive_placements, negative_placements


def delong(scores: FloatArray, labels: FloatArray, confidence: float) -> Metric:
    """ROC AUC as a Mann–Whitney statistic, with DeLong's variance (Sun & Xu's midrank form).

    The plain interval AUC ± z·SE, clipped to [0, 1]: right from a few hundred of each class, too
    narrow below (81-91% coverage at 10 positives). ``realized_performance`` uses ``delong_logit``.
    """
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    auc, positive_placements, negative_placements = auc_placements(positives, negatives)
    variance = positive_placements.var(ddof=1) / m + negative_placements.var(ddof=1) / n
    half = z_score(confidence) * np.sqrt(variance)
    return Metric(float(auc), max(0.0, auc - half), min(1.0, auc + half), "delong", STATUS_OK)


def delong_logit(scores: FloatArray, labels: FloatArray, confidence: float) -> Metric:
    """ROC AUC with an interval that keeps its coverage at small samples (method ``delong-logit``).

    DeLong's variance V = S₁₀/m + S₀₁/n, carried to logit(AUC) by the delta method
    (SE / (AUC (1 − AUC))) and back, so the interval stays inside (0, 1) and reaches further
    towards 0.5 than towards the nearer bound, as the AUC's sampling distribution does. The
    quantile is Student's t with the Welch–Satterthwaite degrees of freedom of V, a sum of two
    sample variances (Welch's t-test has the same shape); with many of each class it is the normal
    quantile. When the AUC is exactly 0 or 1, or V is 0 (or a class has one row), the logit is
    undefined and the interval is Wilson's score interval over min(m, n) trials (method
    ``wilson-auc``): Var(AUC) ≤ AUC (1 − AUC) / min(m, n) for any score distributions (Birnbaum &
    McCarty, 1958), so it is conservative.

    Example::

        >>> import numpy as np
        >>> labels = np.array([0.0] * 40 + [1.0] * 10)
        >>> scores = np.r_[np.linspace(0, 1, 40), np.linspace(0.5, 1.5, 10)]
        >>> interval = delong_logit(scores, labels, 0.95)
        >>> interval.method, interval.value, round(interval.lower, 3), round(interval.upper, 3)
        ('delong-logit', 0.8575, 0.654, 0.95)
        >>> delong_logit(np.r_[np.zeros(40), np.ones(10)], labels, 0.95).method
        'wilson-auc'
    """
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    if not (m and n):
        raise InvalidInputError(
            f"ROC AUC needs both classes; got {m} positive and {n} negative labels"
        )
    auc, positive_placements, negative_placements = auc_placements(positives, negatives)
    parts = (
        (positive_placements.var(ddof=1) / m, negative_placements.var(ddof=1) / n)
        if min(m, n) > 1
        else (0.0, 0.0)
    )
    variance = parts[0] + parts[1]
    if not 0.0 < auc < 1.0 or variance <= 0.0:
        bounds = _wilson_bounds(auc, min(m, n), z_score(confidence))
        return Metric(auc, *bounds, "wilson-auc", STATUS_OK)
    freedom = variance**2 / (parts[0] ** 2 / (m - 1) + parts[1] ** 2 / (n - 1))
    quantile = special.stdtrit(freedom, 0.5 + confidence / 2.0)  # stats.t.ppf, minus overhead
    half = quantile * np.sqrt(variance) / (auc * (1 - auc))
    center = special.logit(auc)
    lower, upper = special.expit(center - half), special.expit(center + half)
    return Metric(auc, float(lower), float(upper), "delong-logit", STATUS_OK)


def bootstrap(
    statistics: Mapping[str, Statistic],
    values: FloatArray,
    targets: FloatArray,
    strata: FloatArray | None,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[str, Metric]:
    """Point values and percentile intervals, resampling rows (within each stratum if given).

    A resample is a row of weights (how often each row was drawn) over rows sorted once by
    descending value, so ranking metrics need a cumulative sum per resample, not a sort.
    """
    method = "bootstrap" if strata is None else "stratified bootstrap"
    order = np.argsort(-values, kind="stable")
    values, targets = values[order], targets[order]
    strata = None if strata is None else strata[order]
    draws: dict[str, list[FloatArray]] = {name: [] for name in statistics}
    for weights in _resample_weights(strata, len(values), n_resamples, rng):
        for name, statistic in statistics.items():
            draws[name].append(statistic(values, targets, weights))
    metrics = {}
    for name, statistic in statistics.items():
        value = float(statistic(values, targets, np.ones((1, len(values))))[0])
        if not np.isfinite(value):
            metrics[name] = missing_metric(f"undefined: {name} has a zero denominator here", method)
            continue
        resampled = np.concatenate(draws[name])
        resampled = resampled[np.isfinite(resampled)]
        tail = (1.0 - confidence) / 2.0
        lower, upper = np.quantile(resampled, [tail, 1.0 - tail])
        metrics[name] = Metric(value, float(lower), float(upper), method, STATUS_OK)
    return metrics


def _resample_weights(
    strata: FloatArray | None, n_rows: int, n_resamples: int, rng: np.random.Generator
) -> Iterator[FloatArray]:
    """Batches of resample weights, shape (batch, n_rows): each stratum keeps its size."""
    groups = (
        [np.arange(n_rows)] if strata is None else [np.flatnonzero(strata == v) for v in (1, 0)]
    )
    batch = max(1, min(n_resamples, BATCH_CELLS // max(n_rows, 1)))
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        offsets = n_rows * np.arange(size)[:, None]
        drawn = [g[rng.integers(0, len(g), (size, len(g)))] + offsets for g in groups]
        counts = np.bincount(np.concatenate(drawn, axis=1).ravel(), minlength=size * n_rows)
        yield counts.reshape(size, n_rows).astype(np.float64)
