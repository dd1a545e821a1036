"""Tests for steward.why: permutation importance weighted by drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.inspection import permutation_importance as sklearn_permutation_importance
from sklearn.metrics import mean_absolute_error, roc_auc_score

from steward.data.drift import compare
from steward.errors import InvalidInputError
from steward.monitoring.why import permutation_importance, rank_drift_by_importance

N_ROWS = 2_000


class LinearModel:
    """A fixed model: a logistic (binary) or linear (regression) score of x1 and x2."""

    def __init__(self, weight_x1: float, weight_x2: float) -> None:
        self.weight_x1 = weight_x1
        self.weight_x2 = weight_x2

    def predict(self, frame: pd.DataFrame, task: str) -> np.ndarray:
        linear = self.weight_x1 * frame["x1"].to_numpy() + self.weight_x2 * frame["x2"].to_numpy()
        return 1.0 / (1.0 + np.exp(-linear)) if task == "binary" else linear


class SklearnWrapper:
    """The same predict behind the estimator interface sklearn's permutation_importance expects."""

    def __init__(self, model: LinearModel, task: str) -> None:
        self.model = model
        self.task = task

    def fit(self, frame: pd.DataFrame, target: np.ndarray) -> SklearnWrapper:
        return self

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.model.predict(frame, self.task)


def auc_scorer(estimator: SklearnWrapper, frame: pd.DataFrame, target: np.ndarray) -> float:
    return float(roc_auc_score(target, estimator.predict(frame)))


def negative_mae_scorer(
    estimator: SklearnWrapper, frame: pd.DataFrame, target: np.ndarray
) -> float:
    return -float(mean_absolute_error(target, estimator.predict(frame)))


def make_problem(model: LinearModel, task: str, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    reference = pd.DataFrame({"x1": rng.normal(size=N_ROWS), "x2": rng.normal(size=N_ROWS)})
    scores = model.predict(reference, task)
    if task == "binary":
        return reference, (rng.random(N_ROWS) < scores).astype(int)
    return reference, scores + rng.normal(scale=0.5, size=N_ROWS)


def shifted(reference: pd.DataFrame, columns: list[str], seed: int = 1) -> pd.DataFrame:
    """A fresh draw from the reference distribution, with ``columns`` moved by one standard deviation."""
    rng = np.random.default_rng(seed)
    current = pd.DataFrame({name: rng.normal(size=N_ROWS) for name in reference.columns})
    for name in columns:
        current[name] += 1.0
    return current


def by_column(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index("column")


def test_shifting_both_columns_ranks_the_important_one_first() -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    table = rank_drift_by_importance(model, reference, target, shifted(reference, ["x1", "x2"]))
    assert table["column"].tolist()[0] == "x1"
    assert table["rank"].tolist() == [1, 2]
    assert table["alarm"].all()


def test_unimportant_drift_alarms_but_ranks_below_the_important_column() -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    rows = by_column(rank_drift_by_importance(model, reference, target, shifted(reference, ["x2"])))
    assert bool(rows.loc["x2", "alarm"])
    assert not bool(rows.loc["x1", "alarm"])
    assert rows.loc["x2", "importance"] < rows.loc["x1", "importance"]
    # Less than a tenth of what the same drift would score on x1: the model does not use x2.
    same_drift_on_x1 = rows.loc["x1", "importance"] * rows.loc["x2", "drift_score"]
    assert rows.loc["x2", "weighted"] < 0.1 * same_drift_on_x1
    assert rows.loc["x2", "rank"] > rows.loc["x1", "rank"]


def test_weighted_is_clipped_importance_times_drift_score_and_sorted() -> None:
    model = LinearModel(3.0, 0.5)
    reference, target = make_problem(model, "binary")
    table = rank_drift_by_importance(model, reference, target, shifted(reference, ["x2"]))
    expected = table["importance"].clip(lower=0.0) * table["drift_score"]
    np.testing.assert_allclose(table["weighted"], expected)
    assert table["weighted"].is_monotonic_decreasing


def test_drift_score_is_the_largest_statistic_over_threshold_of_the_report() -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    current = shifted(reference, ["x1"])
    report = compare(reference, current, columns=["x1", "x2"])
    rows = by_column(rank_drift_by_importance(model, reference, target, current, report=report))
    frame = report.to_frame()
    ratios = (frame["statistic"] / frame["threshold"]).groupby(frame["column"]).max()
    for name in ["x1", "x2"]:
        assert rows.loc[name, "drift_score"] == pytest.approx(ratios[name])
        assert bool(rows.loc[name, "alarm"]) == (name in report.alarmed_columns)


@pytest.mark.parametrize(
    ("task", "scorer"), [("binary", auc_scorer), ("regression", negative_mae_scorer)]
)
def test_importance_agrees_with_sklearn_permutation_importance(task: str, scorer: object) -> None:
    # Our shuffles follow sklearn's random stream (one seed drawn from RandomState(random_state),
    # the stream restarted per column, shuffles composing across repeats), so with the same rows,
    # the same predict and a matching scorer the two agree to floating-point precision.
    model = LinearModel(3.0, 0.5)
    reference, target = make_problem(model, task)
    ours = permutation_importance(model, reference, target, task=task, n_repeats=7, random_state=3)
    theirs = sklearn_permutation_importance(
        SklearnWrapper(model, task), reference, target, scoring=scorer, n_repeats=7, random_state=3
    )
    np.testing.assert_allclose(ours["importance"], theirs.importances_mean, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours["importance_std"], theirs.importances_std, rtol=0, atol=1e-9)
    assert ours.index.tolist() == ["x1", "x2"]


def test_subsampling_to_max_rows_keeps_the_ranking() -> None:
    model = LinearModel(3.0, 0.5)
    reference, target = make_problem(model, "binary")
    full = permutation_importance(model, reference, target)
    sampled = permutation_importance(model, reference, target, max_rows=N_ROWS // 2)
    assert sampled["importance"].idxmax() == full["importance"].idxmax() == "x1"


def test_missing_current_column_raises_naming_it() -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    current = shifted(reference, []).drop(columns=["x2"])
    with pytest.raises(InvalidInputError, match="'x2'"):
        rank_drift_by_importance(model, reference, target, current)


def test_report_without_a_column_raises_naming_it() -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    current = shifted(reference, ["x1"])
    report = compare(reference, current, columns=["x1"])
    with pytest.raises(InvalidInputError, match="'x2'"):
        rank_drift_by_importance(model, reference, target, current, report=report)


@pytest.mark.parametrize(
    ("keyword", "value", "message"),
    [("task", "multiclass", "'multiclass'"), ("n_repeats", 0, "got 0"), ("max_rows", 1, "got 1")],
)
def test_invalid_settings_raise_naming_the_value(keyword: str, value: object, message: str) -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    with pytest.raises(InvalidInputError, match=message):
        permutation_importance(model, reference, target, **{keyword: value})  # type: ignore[arg-type]


def test_target_of_the_wrong_length_raises() -> None:
    model = LinearModel(3.0, 0.0)
    reference, target = make_problem(model, "binary")
    with pytest.raises(InvalidInputError, match=f"{N_ROWS} rows"):
        permutation_importance(model, reference, target[:-1])


def test_single_class_target_raises_for_binary() -> None:
    model = LinearModel(3.0, 0.0)
    reference, _ = make_problem(model, "binary")
    with pytest.raises(InvalidInputError, match="two classes"):
        permutation_importance(model, reference, np.zeros(N_ROWS, dtype=int))
