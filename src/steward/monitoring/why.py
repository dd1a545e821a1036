"""When quality drops, which features explain it? Drift weighted by what the model relies on.

A drift report says which columns moved; it does not say whether the model cares. A column the
model ignores can move a lot and change nothing, while a small move in the one column the model
leans on can cost most of its quality. :func:`rank_drift_by_importance` puts the two together:

* **importance**: permutation importance on the reference window, the mean drop in ROC AUC
  (``task="binary"``) or the mean rise in mean absolute error (``task="regression"``) when one
  column is shuffled, over ``n_repeats`` shuffles;
* **drift_score**: per column, the largest ``statistic / threshold`` among its drift methods (above
  1 means the change is bigger than its practical floor), with ``alarm`` from the drift report;
* **weighted** = ``max(importance, 0) * drift_score``, the sort key.

A drifted but unimportant column ranks low, and so does an important column that barely moved.
``docs/why.md`` explains the method and its limits.

Example::

    >>> import numpy as np, pandas as pd
    >>> reference, target, current = _example_problem()
    >>> table = rank_drift_by_importance(_ExampleModel(), reference, target, current)
    >>> table["column"].tolist(), table["rank"].tolist()
    (['x1', 'x2'], [1, 2])
"""

from __future__ import annotations

from typing import Final, Protocol

import numpy as np
import pandas as pd
from sklearn.metrics import mean_absolute_error, roc_auc_score

from steward.data.drift import DriftReport, compare
from steward.errors import InvalidInputError

__all__ = ["TASKS", "Predictor", "permutation_importance", "rank_drift_by_importance"]

#: The tasks whose quality metric is defined here: ROC AUC for binary, MAE for regression.
TASKS: Final = ("binary", "regression")

_OUTPUT_COLUMNS: Final = (
    "rank",
    "column",
    "importance",
    "importance_std",
    "drift_score",
    "alarm",
    "weighted",
)


class Predictor(Protocol):
    """Anything with ``predict(frame, task)`` returning one score per row, like ``LoadedModel``."""

    def predict(self, frame: pd.DataFrame, task: str) -> np.ndarray: ...


def permutation_importance(
    model: Predictor,
    reference: pd.DataFrame,
    target: pd.Series | np.ndarray,
    *,
    task: str = "binary",
    n_repeats: int = 5,
    random_state: int = 0,
    max_rows: int = 5000,
) -> pd.DataFrame:
    """Permutation importance of each column of ``reference``: mean and std of the quality lost.

    Quality is ROC AUC for ``task="binary"`` and minus the mean absolute error for
    ``"regression"``, so a positive importance always means shuffling the column hurt. Rows beyond
    ``max_rows`` are subsampled (seeded by ``random_state``). The shuffles follow the random stream
    of ``sklearn.inspection.permutation_importance`` with the same ``random_state``, so on the same
    rows the two agree exactly.

    >>> reference, target, _ = _example_problem()
    >>> importance = permutation_importance(_ExampleModel(), reference, target)
    >>> importance.index.tolist(), bool(importance.loc["x1", "importance"] > 0.1)
    (['x1', 'x2'], True)
    """
    _check_settings(task, n_repeats, max_rows)
    frame, labels = _checked_rows(reference, target, task, max_rows, random_state)
    baseline = _score(model, frame, labels, task)
    # sklearn draws one seed, then restarts the same stream for every column; matching it lets the
    # tests check this implementation against sklearn to floating-point precision.
    seed = np.random.RandomState(random_state).randint(np.iinfo(np.int32).max + 1)
    rows: dict[str, tuple[float, float]] = {}
    for column in frame.columns:
        drops = baseline - _permuted_scores(model, frame, labels, task, column, seed, n_repeats)
        rows[str(column)] = (float(np.mean(drops)), float(np.std(drops)))
    return pd.DataFrame.from_dict(
        rows, orient="index", columns=["importance", "importance_std"]
    ).rename_axis("column")


def rank_drift_by_importance(
    model: Predictor,
    reference: pd.DataFrame,
    target: pd.Series | np.ndarray,
    current: pd.DataFrame,
    *,
    task: str = "binary",
    report: DriftReport | None = None,
    n_repeats: int = 5,
    random_state: int = 0,
    max_rows: int = 5000,
) -> pd.DataFrame:
    """Rank the columns of ``reference`` by ``max(importance, 0) * drift_score``, largest first.

    ``target`` holds the reference labels (positionally). Drift comes from ``report`` when given,
    else from ``steward.data.drift.compare(reference, current, columns=reference.columns)``. Columns a
    report skipped get a NaN drift score and rank last. Returns one row per column with ``rank``,
    ``column``, ``importance``, ``importance_std``, ``drift_score``, ``alarm`` and ``weighted``.

    >>> reference, target, current = _example_problem()
    >>> table = rank_drift_by_importance(_ExampleModel(), reference, target, current)
    >>> table.loc[0, "column"], bool(table.loc[0, "alarm"])
    ('x1', True)
    """
    columns = [str(column) for column in reference.columns]
    _check_columns(columns, current, "current")
    importance = permutation_importance(
        model,
        reference,
        target,
        task=task,
        n_repeats=n_repeats,
        random_state=random_state,
        max_rows=max_rows,
    )
    if report is None:
        report = compare(reference, current, columns=columns, random_state=random_state)
    drift = _drift_by_column(report, columns)
    table = importance.join(drift).reset_index()
    table["weighted"] = table["importance"].clip(lower=0.0) * table["drift_score"]
    table = table.sort_values(
        ["weighted", "importance"], ascending=False, kind="stable", na_position="last"
    ).reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return table[list(_OUTPUT_COLUMNS)]


# --- checks ----------------------------------------------------------------------------------------


def _check_settings(task: str, n_repeats: int, max_rows: int) -> None:
    if task not in TASKS:
        raise InvalidInputError(
            f"task {task!r} is not supported for importance; use one of {', '.join(TASKS)}"
        )
    if n_repeats < 1:
        raise InvalidInputError(f"n_repeats must be at least 1, got {n_repeats}; pass e.g. 5")
    if max_rows < 2:
        raise InvalidInputError(f"max_rows must be at least 2, got {max_rows}; pass e.g. 5000")


def _check_columns(columns: list[str], frame: pd.DataFrame, name: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{name} frame lacks column(s) {', '.join(map(repr, missing))} that the reference has; "
            f"pass a {name} frame with the same columns as the reference"
        )


def _checked_rows(
    reference: pd.DataFrame,
    target: pd.Series | np.ndarray,
    task: str,
    max_rows: int,
    random_state: int,
) -> tuple[pd.DataFrame, np.ndarray]:
    """The reference rows and labels to score, subsampled to ``max_rows`` and checked."""
    labels = np.asarray(target)
    if labels.ndim != 1 or len(labels) != len(reference):
        raise InvalidInputError(
            f"target has shape {labels.shape} but the reference has {len(reference)} rows; "
            "pass one label per reference row"
        )
    if len(reference.columns) == 0:
        raise InvalidInputError("the reference frame has no columns; pass the model's inputs")
    if pd.isna(labels).any():
        raise InvalidInputError(
            f"target has {int(pd.isna(labels).sum())} missing values; drop those rows first"
        )
    frame = reference.reset_index(drop=True)
    if len(frame) > max_rows:
        chosen = np.sort(np.random.default_rng(random_state).choice(len(frame), max_rows, False))
        frame, labels = frame.iloc[chosen].reset_index(drop=True), labels[chosen]
    if task == "binary" and len(np.unique(labels)) != 2:
        raise InvalidInputError(
            f"task 'binary' needs two classes in target, got {np.unique(labels).tolist()[:5]}; "
            "pass labels with both classes or use task='regression'"
        )
    return frame, labels


# --- scoring ---------------------------------------------------------------------------------------


def _score(model: Predictor, frame: pd.DataFrame, labels: np.ndarray, task: str) -> float:
    """Quality where higher is better: ROC AUC, or minus the mean absolute error."""
    scores = np.asarray(model.predict(frame, task), dtype=float)
    if scores.shape != (len(frame),):
        raise InvalidInputError(
            f"model.predict returned shape {scores.shape} for {len(frame)} rows; "
            "importance needs one score per row (a binary or regression model)"
        )
    if task == "binary":
        return float(roc_auc_score(labels, scores))
    return -float(mean_absolute_error(labels, scores))


def _permuted_scores(
    model: Predictor,
    frame: pd.DataFrame,
    labels: np.ndarray,
    task: str,
    column: object,
    seed: int,
    n_repeats: int,
) -> np.ndarray:
    """Quality after each of ``n_repeats`` shuffles of one column (shuffles compose, as in sklearn)."""
    generator = np.random.RandomState(seed)
    permuted = frame.copy()
    order = np.arange(len(frame))
    scores = []
    for _ in range(n_repeats):
        generator.shuffle(order)
        # .iloc keeps the column's dtype (categoricals stay categorical); set_axis realigns rows
        permuted[column] = permuted[column].iloc[order].set_axis(permuted.index)
        scores.append(_score(model, permuted, labels, task))
    return np.asarray(scores)


# --- drift -----------------------------------------------------------------------------------------


def _drift_by_column(report: DriftReport, columns: list[str]) -> pd.DataFrame:
    """Per column: the largest statistic/threshold over its methods, and whether any alarmed."""
    ratios: dict[str, float] = {}
    alarms: dict[str, bool] = {}
    for result in report.results:
        if result.column not in columns:
            continue  # e.g. the whole-table domain classifier
        ratio = _ratio(result.statistic, result.threshold)
        ratios[result.column] = max(ratios.get(result.column, -np.inf), ratio)
        alarms[result.column] = alarms.get(result.column, False) or result.alarm
    absent = [c for c in columns if c not in ratios and c not in report.skipped_columns]
    if absent:
        raise InvalidInputError(
            f"the drift report has no results for column(s) {', '.join(map(repr, absent))}; "
            "compare with columns=reference.columns, or leave report=None"
        )
    return pd.DataFrame(
        {
            "drift_score": [ratios.get(c, np.nan) for c in columns],
            "alarm": [alarms.get(c, False) for c in columns],
        },
        index=pd.Index(columns, name="column"),
    )


def _ratio(statistic: float, threshold: float) -> float:
    if threshold > 0:
        return float(statistic / threshold)
    return float("inf") if statistic > 0 else 0.0


# --- docstring examples ----------------------------------------------------------------------------


class _ExampleModel:
    """A fixed logistic score that leans on ``x1`` only, for the docstring examples."""

    def predict(self, frame: pd.DataFrame, task: str) -> np.ndarray:
        return np.asarray(1.0 / (1.0 + np.exp(-3.0 * frame["x1"].to_numpy())))


def _example_problem() -> tuple[pd.DataFrame, np.ndarray, pd.DataFrame]:
    """A reference whose label follows ``x1``, and a current window where both columns moved."""
    rng = np.random.default_rng(0)
    reference = pd.DataFrame({"x1": rng.normal(size=1_000), "x2": rng.normal(size=1_000)})
    target = (rng.random(1_000) < _ExampleModel().predict(reference, "binary")).astype(int)
    current = reference + 1.0
    return reference, target, current
