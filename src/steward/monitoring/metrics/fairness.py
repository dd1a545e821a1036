"""Fairness by group: rates per group of a protected attribute, their gaps, and intervals on the gaps.

``fairness_by_group`` takes each labeled prediction's outcome (0/1), decision (0/1: the score at or
over the threshold, or the policy's action) and group, and returns per group: the selection rate,
true and false positive rates, precision and, given scores, calibration in the large (the mean score
against the observed rate). Across the groups with at least ``min_group_size`` rows it returns
Fairlearn's three gap measures, with the same definitions:

- demographic parity difference: the largest selection rate minus the smallest;
- demographic parity ratio: the smallest selection rate over the largest;
- equalized odds difference: the larger of the TPR gap and the FPR gap (``"worst_case"``).

Each gap has a percentile bootstrap interval that resamples rows within each group (stratified:
each group keeps its size, as in a census of fixed groups). Rows are resampled through their four
confusion cells, a multinomial draw per group, which is the same distribution as resampling the rows
themselves and costs nothing per row. A group smaller than ``min_group_size`` is reported with
``enough=False`` and left out of the gaps; with fewer than two groups large enough, the gaps are
None and the result says "not enough data".

>>> import numpy as np
>>> result = fairness_by_group([1, 0, 1, 0, 1, 1], [1, 0, 1, 1, 0, 1], ["a", "a", "a", "b", "b", "b"],
...                            min_group_size=3, n_boot=200)
>>> round(result.demographic_parity_difference, 4)
0.0
>>> [g.group for g in result.groups], round(result.equalized_odds_difference, 4)
(['a', 'b'], 1.0)
"""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from steward.errors import InvalidInputError

__all__ = [
    "GAP_MEASURES",
    "MIN_GROUP_SIZE",
    "FairnessResult",
    "Gap",
    "GroupRates",
    "fairness_by_group",
]

#: Below this many labeled rows a group's rates are shown but not compared.
MIN_GROUP_SIZE: Final = 30
GAP_MEASURES: Final = (
    "demographic_parity_difference",
    "demographic_parity_ratio",
    "equalized_odds_difference",
)


@dataclass(frozen=True)
class GroupRates:
    """One group's counts and rates; a rate whose denominator is 0 is None."""

    group: str
    n: int
    positives: int
    selection_rate: float | None
    tpr: float | None
    fpr: float | None
    precision: float | None
    mean_score: float | None
    observed_rate: float | None
    enough: bool


@dataclass(frozen=True)
class Gap:
    """A gap measure across the groups, with its bootstrap interval."""

    value: float | None
    low: float | None
    high: float | None


@dataclass(frozen=True)
class FairnessResult:
    """Rates per group and the gaps between the groups large enough to compare."""

    attribute: str
    groups: list[GroupRates]
    gaps: dict[str, Gap]
    min_group_size: int
    confidence: float
    reason: str = ""
    compared: list[str] = field(default_factory=list)

    @property
    def demographic_parity_difference(self) -> float | None:
        return self.gaps["demographic_parity_difference"].value

    @property
    def demographic_parity_ratio(self) -> float | None:
        return self.gaps["demographic_parity_ratio"].value

    @property
    def equalized_odds_difference(self) -> float | None:
        return self.gaps["equalized_odds_difference"].value

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict."""
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        """One row per group, as pandas."""
        return pd.DataFrame([asdict(group) for group in self.groups]).set_index("group")

    def _repr_html_(self) -> str:
        """How a notebook shows it: the gaps with their intervals, then the rates per group."""
        gaps = pd.DataFrame({name: asdict(gap) for name, gap in self.gaps.items()}).T.rename_axis(
            f"{self.attribute} ({self.confidence:.0%} interval)"
        )
        note = f"<p>{html.escape(self.reason)}</p>" if self.reason else ""
        return note + gaps.to_html(border=0) + self.to_frame().to_html(border=0)


def fairness_by_group(
    y_true: Sequence[Any] | npt.ArrayLike,
    y_pred: Sequence[Any] | npt.ArrayLike,
    groups: Sequence[Any] | npt.ArrayLike,
    *,
    scores: Sequence[float] | npt.ArrayLike | None = None,
    attribute: str = "group",
    min_group_size: int = MIN_GROUP_SIZE,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> FairnessResult:
    """Rates per group of ``groups`` and the gaps between them, with bootstrap intervals.

    ``y_true`` and ``y_pred`` hold 0/1 (or booleans); ``groups`` any labels (missing ones form the
    group ``"(missing)"``); ``scores``, if given, probabilities for calibration in the large.

    Example::

        result = fairness_by_group(outcomes, decisions, frame["sex"], attribute="sex")
        result.demographic_parity_difference, result.gaps["equalized_odds_difference"].high
    """
    truth, decided, labels, score = _check(y_true, y_pred, groups, scores, attribute)
    _check_settings(min_group_size, n_boot, confidence)
    names, index = _group_codes(labels)
    cells = _cells(truth, decided, index, len(names))  # groups x [tn, fp, fn, tp]
    rates = [
        _rates(names[g], cells[g], score[index == g] if score is not None else None, truth[index == g],
               min_group_size)
        for g in range(len(names))
    ]  # fmt: skip
    compared = [g for g, rate in enumerate(rates) if rate.enough]
    if len(compared) < 2:
        reason = (
            f"not enough data: {len(compared)} group(s) of {attribute!r} have at least "
            f"{min_group_size} labeled rows (need 2 to compare)"
        )
        empty = {name: Gap(None, None, None) for name in GAP_MEASURES}
        return FairnessResult(attribute, rates, empty, min_group_size, confidence, reason)
    point = _gaps(cells[compared][None, :, :])[:, 0]
    draws = _bootstrap_cells(cells[compared], n_boot, np.random.default_rng(seed))
    boot = _gaps(draws)
    tail = (1 - confidence) / 2
    gaps = {}
    for position, name in enumerate(GAP_MEASURES):
        finite = boot[position][np.isfinite(boot[position])]
        low, high = (
            (float(np.quantile(finite, tail)), float(np.quantile(finite, 1 - tail)))
            if finite.size
            else (None, None)
        )
        value = float(point[position]) if math.isfinite(point[position]) else None
        gaps[name] = Gap(value, low, high)
    return FairnessResult(
        attribute, rates, gaps, min_group_size, confidence, compared=[names[g] for g in compared]
    )


# --- counting ------------------------------------------------------------------------------------


def _cells(truth: np.ndarray, decided: np.ndarray, index: np.ndarray, n_groups: int) -> np.ndarray:
    """Confusion counts per group: columns tn, fp, fn, tp."""
    cell = truth * 2 + decided  # 0 tn, 1 fp, 2 fn, 3 tp
    counts = np.bincount(index * 4 + cell, minlength=n_groups * 4)
    return counts.reshape(n_groups, 4).astype(np.int64)


def _rates(
    name: str,
    cells: np.ndarray,
    score: np.ndarray | None,
    truth: np.ndarray,
    min_group_size: int,
) -> GroupRates:
    tn, fp, fn, tp = (int(count) for count in cells)
    n = tn + fp + fn + tp
    return GroupRates(
        group=name,
        n=n,
        positives=tp + fn,
        selection_rate=_ratio(tp + fp, n),
        tpr=_ratio(tp, tp + fn),
        fpr=_ratio(fp, fp + tn),
        precision=_ratio(tp, tp + fp),
        mean_score=float(score.mean()) if score is not None and score.size else None,
        observed_rate=_ratio(tp + fn, n) if score is not None else None,
        enough=n >= min_group_size,
    )


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


def _gaps(cells: np.ndarray) -> np.ndarray:
    """The three gap measures for each draw: ``cells`` is draws x groups x [tn, fp, fn, tp]."""
    tn, fp, fn, tp = (cells[..., k].astype(np.float64) for k in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        selection = (tp + fp) / (tn + fp + fn + tp)
        tpr = tp / (tp + fn)
        fpr = fp / (fp + tn)
        parity_difference = selection.max(axis=1) - selection.min(axis=1)
        parity_ratio = selection.min(axis=1) / selection.max(axis=1)
        odds = np.maximum(tpr.max(axis=1) - tpr.min(axis=1), fpr.max(axis=1) - fpr.min(axis=1))
    return np.stack([parity_difference, parity_ratio, odds])


def _bootstrap_cells(cells: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """``n_boot`` stratified resamples: each group's rows redrawn with replacement, as cell counts."""
    draws = np.empty((n_boot, *cells.shape), dtype=np.int64)
    for g, counts in enumerate(cells):
        n = int(counts.sum())
        draws[:, g, :] = rng.multinomial(n, counts / n, size=n_boot)
    return draws


# --- checking ------------------------------------------------------------------------------------


def _check(
    y_true: Any, y_pred: Any, groups: Any, scores: Any, attribute: str
) -> tuple[np.ndarray, np.ndarray, pd.Series, np.ndarray | None]:
    truth = _binary(y_true, "y_true")
    decided = _binary(y_pred, "y_pred")
    labels = pd.Series(np.asarray(groups, dtype=object))
    sizes = {"y_true": truth.size, "y_pred": decided.size, attribute: len(labels)}
    score = None
    if scores is not None:
        score = np.asarray(scores, dtype=np.float64)
        sizes["scores"] = score.size
        if not np.isfinite(score).all() or ((score < 0) | (score > 1)).any():
            raise InvalidInputError(
                "scores must be probabilities in [0, 1] with no missing values; pass the model's "
                "predicted probability of the positive class"
            )
    if len(set(sizes.values())) != 1:
        raise InvalidInputError(
            f"the inputs differ in length ({sizes}); pass one value per labeled prediction"
        )
    if truth.size == 0:
        raise InvalidInputError("no labeled predictions to measure fairness on")
    return truth, decided, labels, score


def _binary(values: Any, name: str) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype == bool:
        return array.astype(np.int64)
    try:
        numeric = array.astype(np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError(
            f"{name} must hold 0/1 or booleans, got values such as {array[:3].tolist()}; map "
            "labels to 0/1 first (e.g. income == '>50K')"
        ) from None
    bad = ~np.isin(numeric, (0.0, 1.0))
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise InvalidInputError(
            f"{name} must hold 0/1 or booleans; row {first} holds {array.tolist()[first]!r} "
            f"({int(bad.sum())} such rows); threshold scores into decisions first"
        )
    return numeric.astype(np.int64)


def _group_codes(labels: pd.Series) -> tuple[list[str], np.ndarray]:
    named = labels.where(labels.notna(), "(missing)").astype(str)
    codes, uniques = pd.factorize(named, sort=True)
    return [str(name) for name in uniques], codes.astype(np.int64)


def _check_settings(min_group_size: int, n_boot: int, confidence: float) -> None:
    if min_group_size < 1:
        raise InvalidInputError(f"min_group_size must be at least 1, got {min_group_size}")
    if n_boot < 100:
        raise InvalidInputError(f"n_boot must be at least 100 for an interval, got {n_boot}")
    if not 0.5 <= confidence < 1:
        raise InvalidInputError(
            f"confidence must be in [0.5, 1), got {confidence}; e.g. 0.95 for a 95% interval"
        )
