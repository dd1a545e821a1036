"""Fairness by group, checked against Fairlearn on the adult census data (tests/data/adult.test)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steward.errors import InvalidInputError
from steward.monitoring.metrics.fairness import fairness_by_group

COLUMNS = [
    "age", "workclass", "fnlwgt", "education", "education-num", "marital-status", "occupation",
    "relationship", "race", "sex", "capital-gain", "capital-loss", "hours-per-week",
    "native-country", "income",
]  # fmt: skip
NUMERIC = ["age", "education-num", "capital-gain", "capital-loss", "hours-per-week"]


@pytest.fixture(scope="module")
def adult() -> pd.DataFrame:
    """The census test file, scored out of fold by a logistic regression on its numeric columns."""
    path = Path(__file__).parent / "data" / "adult.test"
    frame = pd.read_csv(path, names=COLUMNS, skipinitialspace=True, na_values="?", skiprows=1)
    frame["y"] = (frame["income"].str.rstrip(".") == ">50K").astype(int)
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    frame["score"] = cross_val_predict(
        model, frame[NUMERIC], frame["y"], cv=5, method="predict_proba"
    )[:, 1]
    frame["decision"] = (frame["score"] >= 0.3).astype(int)
    return frame


@pytest.mark.parametrize("attribute", ["sex", "race"])
def test_rates_and_gaps_equal_fairlearns(adult: pd.DataFrame, attribute: str) -> None:
    from fairlearn.metrics import (
        MetricFrame,
        demographic_parity_difference,
        demographic_parity_ratio,
        equalized_odds_difference,
        false_positive_rate,
        selection_rate,
        true_positive_rate,
    )
    from sklearn.metrics import precision_score

    y, decided, groups = adult["y"], adult["decision"], adult[attribute]
    ours = fairness_by_group(y, decided, groups, attribute=attribute, min_group_size=1)
    frame = MetricFrame(
        metrics={
            "selection_rate": selection_rate,
            "tpr": true_positive_rate,
            "fpr": false_positive_rate,
            "precision": precision_score,
        },
        y_true=y,
        y_pred=decided,
        sensitive_features=groups,
    )
    by_group = frame.by_group
    assert [g.group for g in ours.groups] == sorted(by_group.index)
    for rates in ours.groups:
        for metric in ("selection_rate", "tpr", "fpr", "precision"):
            assert getattr(rates, metric) == pytest.approx(
                by_group.loc[rates.group, metric], abs=1e-9
            )
    kwargs = {"sensitive_features": groups}
    assert ours.demographic_parity_difference == pytest.approx(
        demographic_parity_difference(y, decided, **kwargs), abs=1e-9
    )
    assert ours.demographic_parity_ratio == pytest.approx(
        demographic_parity_ratio(y, decided, **kwargs), abs=1e-9
    )
    assert ours.equalized_odds_difference == pytest.approx(
        equalized_odds_difference(y, decided, **kwargs), abs=1e-9
    )
    for gap in ours.gaps.values():
        assert gap.low is not None and gap.high is not None
        assert gap.low <= gap.value <= gap.high


def test_the_interval_covers_the_true_gap_about_as_often_as_it_claims() -> None:
    # Two groups whose selection rates differ by 0.1 exactly; 200 samples of 400 + 200 rows.
    rng = np.random.default_rng(11)
    covered = 0
    runs = 200
    for run in range(runs):
        groups = np.repeat(["a", "b"], [400, 200])
        rate = np.where(groups == "a", 0.3, 0.4)
        decided = (rng.random(600) < rate).astype(int)
        truth = (rng.random(600) < 0.5).astype(int)
        result = fairness_by_group(truth, decided, groups, n_boot=400, seed=run)
        gap = result.gaps["demographic_parity_difference"]
        covered += gap.low <= 0.1 <= gap.high
    # Percentile bootstrap at 95%: coverage near 0.95; 200 runs give about +-3 points.
    assert 0.89 <= covered / runs <= 0.99


def test_small_groups_are_shown_but_not_compared() -> None:
    groups = ["a"] * 50 + ["b"] * 50 + ["c"] * 5
    truth = [0, 1] * 52 + [1]
    decided = [1, 0, 0] * 35
    result = fairness_by_group(truth, decided, groups, min_group_size=30)
    assert [g.enough for g in result.groups] == [True, True, False]
    assert result.compared == ["a", "b"]
    alone = fairness_by_group(truth[:55], decided[:55], groups[:50] + ["c"] * 5)
    assert alone.demographic_parity_difference is None
    assert "not enough data: 1 group(s)" in alone.reason
    assert alone.to_frame().loc["c", "n"] == 5


def test_calibration_in_the_large_per_group(adult: pd.DataFrame) -> None:
    result = fairness_by_group(
        adult["y"], adult["decision"], adult["sex"], scores=adult["score"], attribute="sex"
    )
    for rates in result.groups:
        inside = adult[adult["sex"] == rates.group]
        assert rates.mean_score == pytest.approx(inside["score"].mean(), abs=1e-12)
        assert rates.observed_rate == pytest.approx(inside["y"].mean(), abs=1e-12)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: fairness_by_group([0, 1], [0, 0.7], ["a", "b"]), "row 1 holds 0.7"),
        (lambda: fairness_by_group([0, 1], [0, 1], ["a"]), "differ in length"),
        (lambda: fairness_by_group(["no", "yes"], [0, 1], ["a", "b"]), "map labels to 0/1"),
        (lambda: fairness_by_group([0], [0], ["a"], confidence=95), "confidence must be"),
        (lambda: fairness_by_group([0], [1], ["a"], scores=[1.5]), "probabilities in"),
    ],
)
def test_bad_inputs_are_named(call: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call()  # type: ignore[operator]
