"""Confidence-based performance estimation (CBPE): a binary classifier's quality before labels arrive.

``CBPE`` calibrates the scores on a labeled reference and turns the calibrated probabilities of
new, unlabeled scores into an expected confusion matrix and the metrics that follow from it, each
with a band; ``estimate_performance`` does it per group and window of prediction time.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from steward.errors import InvalidInputError, NotFittedError
from steward.monitoring.metrics.intervals import (
    BATCH_CELLS,
    STATUS_OK,
    BoolArray,
    FloatArray,
    check_settings,
    z_score,
)
from steward.monitoring.metrics.join import require_columns
from steward.monitoring.metrics.realized import (
    MIN_PER_CLASS,
    MIN_SAMPLES,
    expected_calibration_error,
)
from steward.monitoring.metrics.windows import iter_groups, with_windows

__all__ = ["CBPE", "ESTIMATED_METRICS", "estimate_performance"]

ESTIMATED_METRICS: Final = ("roc_auc", "precision", "recall", "f1", "fpr", "accuracy")
_BOUNDS: Final = ("", "_lower", "_upper")


class CBPE:
    """Estimate a binary classifier's quality from its scores alone, before labels arrive.

    ``fit`` learns a map from score to probability on a labeled reference (isotonic regression,
    cross-fitted in ``n_folds`` stratified folds: each reference row gets a probability from a
    calibrator that never saw it, and new scores get the mean of the fold calibrators).
    ``estimate`` turns the calibrated probabilities ``p`` of new scores into the expected
    confusion matrix (``TP = sum of p`` over rows with ``score >= threshold``, and so on), the
    metrics that follow from it, and the expected ROC AUC. Each comes with a band for the metric
    the labels will show: the spread of the realized metric over ``n_simulations`` label draws
    from ``p`` (this window's sampling noise), widened by a delete-a-fold jackknife over the
    calibrators (the reference's). All of it holds while the calibration does: under covariate
    shift, not under concept drift.

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> scores = rng.uniform(size=2_000)
        >>> labels = (rng.uniform(size=2_000) < scores).astype(int)
        >>> estimate = CBPE().fit(scores, labels).estimate(rng.uniform(0.4, 0.6, size=500))
        >>> bool(estimate["roc_auc_lower"] < estimate["roc_auc"] < estimate["roc_auc_upper"])
        True
    """

    def __init__(
        self,
        threshold: float = 0.5,
        metrics: Sequence[str] = ESTIMATED_METRICS,
        *,
        n_folds: int = 5,
        n_simulations: int = 500,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.threshold = threshold
        self.metrics = metrics
        self.n_folds = n_folds
        self.n_simulations = n_simulations
        self.confidence = confidence
        self.seed = seed

    def fit(self, reference_scores: npt.ArrayLike, reference_labels: npt.ArrayLike) -> CBPE:
        """Calibrate the scores on a labeled reference, cross-fitted; return ``self``.

        Example::

            >>> cbpe = CBPE().fit([0.1, 0.4, 0.35, 0.8] * 10, [0, 0, 1, 1] * 10)
            >>> len(cbpe.calibrators_), cbpe.n_reference_
            (5, 40)
        """
        unknown = sorted(set(self.metrics) - set(ESTIMATED_METRICS))
        if unknown:
            raise InvalidInputError(
                f"CBPE cannot estimate {', '.join(unknown)}; choose from {', '.join(ESTIMATED_METRICS)}"
            )
        check_settings(self.confidence, self.n_simulations, 2, 1)
        scores, labels = _reference_arrays(reference_scores, reference_labels, self.n_folds)
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.seed)
        probabilities = np.empty_like(scores)
        calibrators = []
        for train, held_out in folds.split(scores, labels):
            calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            calibrator.fit(scores[train], labels[train])
            probabilities[held_out] = calibrator.predict(scores[held_out])
            calibrators.append(calibrator)
        self.calibrators_ = calibrators
        self.reference_probabilities_ = probabilities
        self.reference_calibration_error_ = expected_calibration_error(labels, probabilities)
        self.n_reference_ = len(scores)
        return self

    def calibrate(self, scores: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities of ``scores``: the mean of the fold calibrators.

        Example::

            >>> cbpe = CBPE().fit([0.2, 0.4, 0.6, 0.8] * 10, [0, 0, 1, 1] * 10)
            >>> cbpe.calibrate([0.1, 0.9]).tolist()
            [0.0, 1.0]
        """
        calibrators = self._fitted()
        values = _score_array(scores, "scores")
        return np.mean([calibrator.predict(values) for calibrator in calibrators], axis=0)

    def estimate(self, scores: npt.ArrayLike) -> dict[str, float]:
        """Expected confusion matrix and metrics for unlabeled ``scores``, each with its band.

        Keys: ``n_predictions``, ``expected_tp``/``fp``/``fn``/``tn``, ``expected_positives``
        (the sum of probabilities), and per metric ``name``, ``name_lower`` and ``name_upper``.

        Example::

            >>> cbpe = CBPE(metrics=("precision",)).fit([0.2, 0.4, 0.6, 0.8] * 10, [0, 0, 1, 1] * 10)
            >>> cbpe.estimate([0.9, 0.9, 0.1])["precision"]
            1.0
        """
        values = _score_array(scores, "scores")
        fold_probabilities = [calibrator.predict(values) for calibrator in self._fitted()]
        probabilities = np.mean(fold_probabilities, axis=0)
        decided = values >= self.threshold
        expected = _expected_metrics(values, probabilities, decided)
        # Calibrator error: a delete-a-fold jackknife, each fold's calibrator having left one out.
        per_fold = [
            list(_expected_metrics(values, p, decided).values()) for p in fold_probabilities
        ]
        spread = np.sqrt((len(per_fold) - 1) * np.var(per_fold, axis=0))
        jackknife = dict(zip(expected, spread, strict=True))
        result = {"n_predictions": float(len(values)), **expected}
        simulated = _simulate_realized(
            values, probabilities, decided, self.n_simulations, np.random.default_rng(self.seed)
        )
        z, tail = z_score(self.confidence), (1.0 - self.confidence) / 2.0
        for name in self.metrics:
            draws = simulated[name][np.isfinite(simulated[name])]
            low, high = np.quantile(draws, [tail, 1 - tail]) if len(draws) else (np.nan,) * 2
            value, calibration = result[name], z * jackknife[name]
            # Two independent errors, label draws and calibrator, add in quadrature per side.
            result[f"{name}_lower"] = np.clip(value - np.hypot(value - low, calibration), 0, 1)
            result[f"{name}_upper"] = np.clip(value + np.hypot(high - value, calibration), 0, 1)
        return {key: float(value) for key, value in result.items()}

    def _fitted(self) -> list[IsotonicRegression]:
        if not hasattr(self, "calibrators_"):
            raise NotFittedError(
                "this CBPE is not fitted; call fit(reference_scores, reference_labels) first"
            )
        return list(self.calibrators_)


def _expected_metrics(
    scores: FloatArray, probabilities: FloatArray, decided: BoolArray
) -> dict[str, float]:
    """The expected confusion matrix and every estimated metric, for one set of probabilities."""
    tp = float(probabilities[decided].sum())
    fn = float(probabilities[~decided].sum())
    fp, tn = float(decided.sum()) - tp, float((~decided).sum()) - fn
    counts = {"expected_tp": tp, "expected_fp": fp, "expected_fn": fn, "expected_tn": tn}
    metrics = _confusion_metrics(*(np.array([count]) for count in counts.values()))
    return {
        "expected_positives": tp + fn,
        **counts,
        **{name: float(values[0]) for name, values in metrics.items()},
        "roc_auc": _expected_auc(scores, probabilities),
    }


def _score_array(scores: npt.ArrayLike, what: str) -> FloatArray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise InvalidInputError(
            f"{what} must be a 1-D array of finite numbers; drop rows without a score first"
        )
    return values


def _reference_arrays(
    scores: npt.ArrayLike, labels: npt.ArrayLike, n_folds: int
) -> tuple[FloatArray, FloatArray]:
    score_array = _score_array(scores, "reference_scores")
    label_array = np.asarray(labels, dtype=np.float64)
    if label_array.shape != score_array.shape:
        raise InvalidInputError(
            f"reference_labels has {label_array.size} values and reference_scores "
            f"{score_array.size}; pass one label per score"
        )
    if not np.isin(label_array, (0.0, 1.0)).all():
        raise InvalidInputError("reference_labels must be 0 or 1; map the positive class to 1")
    counts = (int(label_array.sum()), int(len(label_array) - label_array.sum()))
    if min(counts) < n_folds:
        raise InvalidInputError(
            f"the reference has {counts[0]} positive and {counts[1]} negative labels; "
            f"cross-fitting in {n_folds} folds needs at least {n_folds} of each"
        )
    return score_array, label_array


def _confusion_metrics(
    tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
) -> dict[str, FloatArray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "fpr": fp / (fp + tn),
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
        }


def _expected_auc(scores: FloatArray, probabilities: FloatArray) -> float:
    """E[concordant positive-negative pairs] / E[positive x negative pairs], labels ~ Bernoulli(p).

    A row is never paired with itself, which is where this differs (by O(1/n)) from NannyML's
    trapezoid over expected true and false positive rates. Tied scores count half.
    """
    order = np.argsort(scores, kind="stable")
    ranked, positive = scores[order], probabilities[order]
    negative = 1.0 - positive
    _, block = np.unique(ranked, return_inverse=True)
    negative_per_block = np.bincount(block, weights=negative)
    negative_below = np.concatenate([[0.0], np.cumsum(negative_per_block)[:-1]])[block]
    tied_others = negative_per_block[block] - negative
    concordant = (positive * (negative_below + 0.5 * tied_others)).sum()
    pairs = positive.sum() * negative.sum() - (positive * negative).sum()
    return float(concordant / pairs) if pairs > 0 else np.nan


def _simulate_realized(
    scores: FloatArray,
    probabilities: FloatArray,
    decided: BoolArray,
    n_simulations: int,
    rng: np.random.Generator,
) -> dict[str, FloatArray]:
    """The realized metrics under ``n_simulations`` label draws from the calibrated probabilities."""
    n = len(scores)
    ranks = stats.rankdata(scores)
    decided_count = float(decided.sum())
    pieces: dict[str, list[FloatArray]] = {}
    batch = max(1, min(n_simulations, BATCH_CELLS // max(n, 1)))
    for start in range(0, n_simulations, batch):
        size = min(batch, n_simulations - start)
        labels = (rng.random((size, n)) < probabilities).astype(np.float64)
        positives, tp = labels.sum(axis=1), labels @ decided.astype(np.float64)
        drawn = _confusion_metrics(
            tp, decided_count - tp, positives - tp, n - decided_count - positives + tp
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            # Mann–Whitney from midranks: a ranking metric as one matrix product per batch.
            drawn["roc_auc"] = (labels @ ranks - positives * (positives + 1) / 2) / (
                positives * (n - positives)
            )
        for name, values in drawn.items():
            pieces.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in pieces.items()}


def estimate_performance(
    predictions: pd.DataFrame,
    cbpe: CBPE,
    *,
    freq: str | None = None,
    windows: Sequence[tuple[Any, Any]] | None = None,
    by: Sequence[str] = (),
    min_samples: int = MIN_SAMPLES,
    min_per_class: int = MIN_PER_CLASS,
) -> pd.DataFrame:
    """CBPE estimates per group and window of prediction time, one row per metric.

    Pass the predictions of the model version ``cbpe`` was fitted for: its calibration belongs to
    that model. A window with fewer than ``min_samples`` scored predictions, or (for ROC AUC)
    fewer than ``min_per_class`` expected positives or negatives, gets NaN and a ``status``.
    Columns: the group keys, ``n_predictions``, ``metric``, ``value``, ``lower``, ``upper``,
    ``status``.

    Example::

        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> reference = rng.uniform(size=1_000)
        >>> cbpe = CBPE().fit(reference, rng.uniform(size=1_000) < reference)
        >>> frame = pd.DataFrame({"score": rng.uniform(size=110),
        ...     "event_time": pd.date_range("2024-05-01", periods=110, freq="h", tz="UTC")})
        >>> estimate_performance(frame, cbpe, freq="2D")["status"].unique().tolist()
        ['ok', 'not enough data: 14 predictions, minimum 30']
    """
    require_columns(predictions, ("score", *by), "predictions")
    scored = predictions[predictions["score"].notna()]
    frame, window_keys = with_windows(scored, freq, windows)
    rows = []
    for keys, group in iter_groups(frame, [*by, *window_keys]):
        scores = group["score"].to_numpy(dtype=np.float64)
        for metric in _estimated_metrics(scores, cbpe, min_samples, min_per_class):
            rows.append({**keys, "n_predictions": len(scores), **metric})
    columns = [*by, *window_keys, "n_predictions", "metric", "value", "lower", "upper", "status"]
    return pd.DataFrame(rows, columns=columns)


def _estimated_metrics(
    scores: FloatArray, cbpe: CBPE, min_samples: int, min_per_class: int
) -> list[dict[str, Any]]:
    if len(scores) < min_samples:
        status = f"not enough data: {len(scores)} predictions, minimum {min_samples}"
        return [_estimated_row(name, {}, status) for name in cbpe.metrics]
    estimate = cbpe.estimate(scores)
    expected_positives = estimate["expected_positives"]
    smaller_class = min(expected_positives, len(scores) - expected_positives)
    rows = []
    for name in cbpe.metrics:
        status = STATUS_OK
        if name == "roc_auc" and smaller_class < min_per_class:
            status = (
                f"not enough data: {smaller_class:.1f} expected in the smaller class, "
                f"minimum {min_per_class}"
            )
        rows.append(_estimated_row(name, estimate if status == STATUS_OK else {}, status))
    return rows


def _estimated_row(name: str, estimate: Mapping[str, float], status: str) -> dict[str, Any]:
    value, lower, upper = (estimate.get(f"{name}{suffix}", np.nan) for suffix in _BOUNDS)
    return {"metric": name, "value": value, "lower": lower, "upper": upper, "status": status}
