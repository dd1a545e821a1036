"""Realized performance: labeled predictions scored per group and window, each metric with an interval.

``realized_performance`` scores what ``join_outcomes`` returns: binary metrics on ``score >=
threshold`` (ROC AUC with ``delong_logit``'s interval, proportions with Wilson's, the rest
bootstrapped) or regression metrics (bootstrapped), with a ``status`` saying "not enough data"
where a group is too small for a number to mean anything. The bootstrapped metrics are written on
weighted rows (``*_rows``): with unit weights each equals scikit-learn's metric.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd

from steward.errors import InvalidInputError
from steward.monitoring.metrics.intervals import (
    STATUS_OK,
    FloatArray,
    Metric,
    Statistic,
    bootstrap,
    check_settings,
    delong_logit,
    missing_metric,
    wilson,
)
from steward.monitoring.metrics.join import require_columns
from steward.monitoring.metrics.windows import iter_groups, with_windows

__all__ = [
    "BINARY_METRICS",
    "CALIBRATION_BINS",
    "MIN_PER_CLASS",
    "MIN_SAMPLES",
    "REGRESSION_METRICS",
    "average_precision_rows",
    "brier_rows",
    "calibration_error_rows",
    "expected_calibration_error",
    "f1_rows",
    "mae_rows",
    "mape_rows",
    "r2_rows",
    "realized_performance",
    "rmse_rows",
]

BINARY_METRICS: Final = (
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "f1",
    "fpr",
    "fnr",
    "brier",
    "ece",
)
REGRESSION_METRICS: Final = ("mae", "rmse", "mape", "r2")
# Below these counts an interval is so wide (or a class so thin) that a number misleads more
# than it informs: 30 labeled rows per group, and 10 of each class for the ranking metrics, the
# smallest class at which the ROC AUC interval was measured to cover 94-96%
# (benchmarks/bench_auc_coverage.py; with 5 positives it spans about half of [0, 1]).
MIN_SAMPLES: Final = 30
MIN_PER_CLASS: Final = 10
CALIBRATION_BINS: Final = 10


class _Settings(NamedTuple):
    threshold: float
    min_samples: int
    min_per_class: int
    confidence: float
    n_resamples: int


def realized_performance(
    joined: pd.DataFrame,
    *,
    task: str = "binary",
    threshold: float = 0.5,
    freq: str | None = None,
    windows: Sequence[tuple[Any, Any]] | None = None,
    by: Sequence[str] = ("model_version",),
    min_samples: int = MIN_SAMPLES,
    min_per_class: int = MIN_PER_CLASS,
    confidence: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Score labeled predictions per group and window, one row per metric, with an interval.

    ``joined`` is what ``join_outcomes`` returns (``score``, ``outcome_value``, ``labeled``).
    Groups are the ``by`` columns and, with ``freq`` (``"1D"``, ``"7D"``, ``"W"``) or explicit
    ``windows`` (``[(start, end), ...]``, half-open), the window of the prediction's event time.
    Binary metrics use ``score >= threshold`` as the positive decision. Columns: the group keys,
    ``n_predictions``, ``n_labeled``, ``unlabeled_share``, ``metric``, ``value``, ``lower``,
    ``upper``, ``ci_method`` and ``status`` (``"ok"``, or why ``value`` is NaN).

    Example::

        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> scores = rng.uniform(size=200)
        >>> joined = pd.DataFrame({"model_version": 1, "score": scores, "labeled": True,
        ...                        "outcome_value": (rng.uniform(size=200) < scores) * 1.0})
        >>> table = realized_performance(joined).set_index("metric")
        >>> bool(table.loc["roc_auc", "lower"] < table.loc["roc_auc", "value"] < 1)
        True
    """
    if task not in ("binary", "regression"):
        raise InvalidInputError(f"task {task!r} is not supported; use 'binary' or 'regression'")
    check_settings(confidence, n_resamples, min_samples, min_per_class)
    settings = _Settings(threshold, min_samples, min_per_class, confidence, n_resamples)
    require_columns(joined, ("score", "outcome_value", "labeled", *by), "joined predictions")
    frame, window_keys = with_windows(joined, freq, windows)
    rows = []
    for keys, group in iter_groups(frame, [*by, *window_keys]):
        usable = group["labeled"].astype(bool).to_numpy() & group["score"].notna().to_numpy()
        scores = group["score"].to_numpy(dtype=np.float64)[usable]
        labels = _labels(group["outcome_value"][usable], task)
        score = _binary_metrics if task == "binary" else _regression_metrics
        metrics = score(scores, labels, settings, np.random.default_rng(seed))
        counts = {
            "n_predictions": len(group),
            "n_labeled": int(usable.sum()),
            "unlabeled_share": 1.0 - usable.sum() / len(group),
        }
        for name, metric in metrics.items():
            rows.append({**keys, **counts, "metric": name, **metric._asdict()})
    columns = [*by, *window_keys, "n_predictions", "n_labeled", "unlabeled_share", "metric"]
    result = pd.DataFrame(rows, columns=[*columns, *Metric._fields])
    return result.rename(columns={"method": "ci_method"})


def _labels(values: pd.Series, task: str) -> FloatArray:
    labels = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(labels) | ((labels != 0.0) & (labels != 1.0) if task == "binary" else False)
    if bad.any():
        first = values[bad].tolist()[0]
        expected = "0 or 1" if task == "binary" else "a finite number"
        raise InvalidInputError(
            f"outcome value {first!r} (and {int(bad.sum()) - 1} more) is not {expected}, as a "
            f"{task} task needs; log outcomes with 'value' set, or pick the right task"
        )
    return labels


def _binary_metrics(
    scores: FloatArray, labels: FloatArray, settings: _Settings, rng: np.random.Generator
) -> dict[str, Metric]:
    threshold, min_samples, min_per_class, confidence, n_resamples = settings
    n_positive, n_negative = int(labels.sum()), int(len(labels) - labels.sum())
    if len(labels) < min_samples:
        status = f"not enough data: {len(labels)} labeled, minimum {min_samples}"
        return {name: missing_metric(status) for name in BINARY_METRICS}
    class_status = STATUS_OK
    if min(n_positive, n_negative) < min_per_class:
        class_status = (
            f"not enough data: {n_positive} positive and {n_negative} negative labels, "
            f"minimum {min_per_class} of each"
        )
    decided = scores >= threshold
    tp = int((decided & (labels == 1)).sum())
    fp, fn = int(decided.sum()) - tp, n_positive - tp
    tn = n_negative - fp
    metrics = {
        "roc_auc": delong_logit(scores, labels, confidence) if class_status == STATUS_OK else None,
        "precision": wilson(tp, tp + fp, confidence, "no predicted positives"),
        "recall": wilson(tp, tp + fn, confidence, "no positive labels"),
        "fpr": wilson(fp, fp + tn, confidence, "no negative labels"),
        "fnr": wilson(fn, fn + tp, confidence, "no positive labels"),
    }
    statistics: dict[str, Statistic] = {"f1": lambda s, y, w: f1_rows(s, y, w, threshold)}
    if class_status == STATUS_OK:
        statistics["pr_auc"] = average_precision_rows
    in_unit_interval = bool(((scores >= 0.0) & (scores <= 1.0)).all())
    if in_unit_interval:
        statistics.update(brier=brier_rows, ece=calibration_error_rows)
    metrics.update(bootstrap(statistics, scores, labels, labels, confidence, n_resamples, rng))
    fallbacks = {
        "roc_auc": missing_metric(class_status, "delong-logit"),
        "pr_auc": missing_metric(class_status, "stratified bootstrap"),
        "brier": missing_metric("undefined: scores outside [0, 1] are not probabilities"),
        "ece": missing_metric("undefined: scores outside [0, 1] are not probabilities"),
    }
    return {name: metrics.get(name) or fallbacks[name] for name in BINARY_METRICS}


def _regression_metrics(
    predicted: FloatArray, observed: FloatArray, settings: _Settings, rng: np.random.Generator
) -> dict[str, Metric]:
    _, min_samples, _, confidence, n_resamples = settings
    if len(observed) < min_samples:
        status = f"not enough data: {len(observed)} labeled, minimum {min_samples}"
        return {name: missing_metric(status) for name in REGRESSION_METRICS}
    statistics = {"mae": mae_rows, "rmse": rmse_rows, "mape": mape_rows, "r2": r2_rows}
    metrics = bootstrap(statistics, predicted, observed, None, confidence, n_resamples, rng)
    if np.ptp(observed) == 0.0:
        metrics["r2"] = missing_metric("undefined: every outcome is the same value", "bootstrap")
    return metrics


# ---------------------------------------------------------------------------------------------
# Metrics on weighted rows: each takes the rows (sorted by descending value), their targets and
# a (resamples, rows) array of weights, and returns one value per resample. With unit weights
# each equals scikit-learn's metric.


def average_precision_rows(
    scores: FloatArray, labels: FloatArray, weights: FloatArray
) -> FloatArray:
    """Average precision as ``sklearn.metrics.average_precision_score``: ties share a threshold."""
    hits = weights * labels
    predicted, true_positives = np.cumsum(weights, axis=1), np.cumsum(hits, axis=1)
    precision = np.divide(
        true_positives, predicted, out=np.zeros_like(predicted), where=predicted > 0
    )
    # Each positive earns the precision at the end of its block of tied scores.
    block_end = np.append(scores[:-1] != scores[1:], True)
    end_index = np.where(block_end, np.arange(len(scores)), len(scores))
    end_index = np.minimum.accumulate(end_index[::-1])[::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits * precision[:, end_index]).sum(axis=1) / hits.sum(axis=1)


def f1_rows(
    scores: FloatArray, labels: FloatArray, weights: FloatArray, threshold: float
) -> FloatArray:
    """F1 of the decision ``score >= threshold``, as ``sklearn.metrics.f1_score``."""
    decided = scores >= threshold
    true_positives = weights @ (decided & (labels == 1)).astype(np.float64)
    wrong = weights @ (decided != (labels == 1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(2.0 * true_positives / (2.0 * true_positives + wrong), dtype=np.float64)


def brier_rows(scores: FloatArray, labels: FloatArray, weights: FloatArray) -> FloatArray:
    """The Brier score (mean squared gap of score and label), as ``brier_score_loss``."""
    return np.asarray(weights @ (scores - labels) ** 2 / len(scores), dtype=np.float64)


def calibration_error_rows(
    scores: FloatArray, labels: FloatArray, weights: FloatArray
) -> FloatArray:
    """Expected calibration error over 10 equal-width bins (as ``calibration_curve`` bins them)."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.searchsorted(edges[1:-1], scores)
    gaps = np.zeros((len(scores), CALIBRATION_BINS))
    gaps[np.arange(len(scores)), bins] = labels - scores
    # sum over bins of (n_bin / n) * |mean label - mean score| = sum |label sum - score sum| / n
    return np.asarray(np.abs(weights @ gaps).sum(axis=1) / len(scores), dtype=np.float64)


def mae_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    """Mean absolute error, as ``sklearn.metrics.mean_absolute_error``."""
    return np.asarray(weights @ np.abs(observed - predicted) / len(observed), dtype=np.float64)


def rmse_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    """Root mean squared error, the square root of ``sklearn.metrics.mean_squared_error``."""
    squared = weights @ (observed - predicted) ** 2 / len(observed)
    return np.asarray(np.sqrt(squared), dtype=np.float64)


def mape_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    """Mean absolute percentage error, as ``mean_absolute_percentage_error`` (a share, not %)."""
    # scikit-learn's guard: a zero outcome divides by machine epsilon, not zero.
    scale = np.maximum(np.abs(observed), np.finfo(np.float64).eps)
    return np.asarray(weights @ (np.abs(observed - predicted) / scale) / len(observed))


def r2_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    """The coefficient of determination, as ``sklearn.metrics.r2_score``; NaN for a constant."""
    residual = weights @ (observed - predicted) ** 2
    # Centred first, so the weighted variance does not cancel catastrophically for large means.
    centred = observed - observed.mean()
    total = weights @ centred**2 - (weights @ centred) ** 2 / len(observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.nan)


def expected_calibration_error(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Expected calibration error: the share-weighted gap between mean label and mean score.

    Bins are 10 equal-width intervals of [0, 1], right-closed (the first also holds 0), exactly
    as ``sklearn.calibration.calibration_curve(..., n_bins=10)`` forms them.

    Example::

        >>> round(expected_calibration_error([0, 1, 1, 0], [0.05, 0.95, 0.95, 0.05]), 6)
        0.05
    """
    score_array = np.asarray(scores, dtype=np.float64)
    label_array = np.asarray(labels, dtype=np.float64)
    if score_array.shape != label_array.shape or score_array.ndim != 1 or not len(score_array):
        raise InvalidInputError(
            f"labels ({label_array.shape}) and scores ({score_array.shape}) must be two "
            "non-empty 1-D arrays of the same length"
        )
    if not ((score_array >= 0) & (score_array <= 1)).all():
        raise InvalidInputError("scores must be probabilities in [0, 1] for a calibration error")
    return float(
        calibration_error_rows(score_array, label_array, np.ones((1, len(score_array))))[0]
    )
