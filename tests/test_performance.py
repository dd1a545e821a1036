"""Tests for steward.performance: joins, realized metrics against scikit-learn, intervals, CBPE."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    confusion_matrix,
    f1_score,
    mean_absolute_error,
    mean_absolute_percentage_error,
    mean_squared_error,
    precision_score,
    r2_score,
    recall_score,
    roc_auc_score,
)
from sklearn.model_selection import StratifiedKFold

from steward.data.events import EventLog
from steward.errors import InvalidInputError, NotFittedError
from steward.monitoring import metrics as performance
from steward.monitoring.metrics import (
    BINARY_METRICS,
    CALIBRATION_BINS,
    CBPE,
    MIN_PER_CLASS,
    MIN_SAMPLES,
    REGRESSION_METRICS,
    estimate_performance,
    expected_calibration_error,
    join_outcomes,
    realized_performance,
)

Z95 = float(stats.norm.ppf(0.975))


def utc(*moments: str) -> pd.DatetimeIndex:
    return pd.to_datetime(list(moments), utc=True)


def prediction_frame(ids: list[str], times: list[str], **columns: object) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "event_time": utc(*times), **columns})


def outcome_frame(
    ids: list[str], times: list[str], values: list[float], **columns: object
) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "event_time": utc(*times), "value": values, **columns})


def labeled_frame(scores: np.ndarray, labels: np.ndarray, **columns: object) -> pd.DataFrame:
    return pd.DataFrame({"score": scores, "outcome_value": labels, "labeled": True, **columns})


def by_metric(table: pd.DataFrame) -> pd.DataFrame:
    return table.set_index("metric")


# ---------------------------------------------------------------------------------------------
# Joining


def test_join_by_prediction_id_keeps_every_prediction_and_marks_the_unlabeled() -> None:
    predictions = prediction_frame(["p1", "p2", "p3"], ["2024-05-01"] * 3, score=[0.9, 0.1, 0.5])
    outcomes = outcome_frame(
        ["o1", "o3"], ["2024-05-09"] * 2, [1.0, 0.0], prediction_id=["p1", "p3"]
    )
    joined = join_outcomes(predictions, outcomes)
    assert joined["id"].tolist() == ["p1", "p2", "p3"]
    assert joined["labeled"].tolist() == [True, False, True]
    assert joined["outcome_id"].tolist()[::2] == ["o1", "o3"]
    assert joined["outcome_value"].tolist()[::2] == [1.0, 0.0]
    assert joined["n_outcomes"].tolist() == [1, 0, 1]


def test_join_by_prediction_id_takes_the_latest_of_several_outcomes_and_counts_them() -> None:
    predictions = prediction_frame(["p1"], ["2024-05-01"])
    outcomes = outcome_frame(
        ["late", "early"], ["2024-05-20", "2024-05-05"], [0.0, 1.0], prediction_id=["p1", "p1"]
    )
    joined = join_outcomes(predictions, outcomes)
    assert joined.loc[0, "outcome_id"] == "late"
    assert joined.loc[0, "outcome_value"] == 0.0
    assert joined.loc[0, "n_outcomes"] == 2


def test_join_counts_a_repeated_outcome_id_once_keeping_the_last_received_copy() -> None:
    predictions = prediction_frame(["p1"], ["2024-05-01"])
    # The correction (sequence 2) back-dates the event time; the log keeps it all the same.
    outcomes = outcome_frame(
        ["o1", "o1"],
        ["2024-05-05", "2024-05-03"],
        [1.0, 0.0],
        prediction_id=["p1", "p1"],
        received_at=utc("2024-05-05", "2024-05-06"),
        sequence=[1, 2],
    )
    joined = join_outcomes(predictions, outcomes)
    assert joined.loc[0, "n_outcomes"] == 1
    assert joined.loc[0, "outcome_value"] == 0.0
    assert joined.loc[0, "outcome_time"] == pd.Timestamp("2024-05-03", tz="UTC")


def test_join_by_prediction_id_ignores_outcomes_beyond_the_horizon() -> None:
    predictions = prediction_frame(["p1", "p2"], ["2024-05-01", "2024-05-01"])
    outcomes = outcome_frame(
        ["o1", "o2"], ["2024-05-10", "2024-07-01"], [1.0, 1.0], prediction_id=["p1", "p2"]
    )
    assert join_outcomes(predictions, outcomes, horizon="30D")["labeled"].tolist() == [True, False]


def test_join_by_entity_key_takes_the_first_outcome_at_or_after_the_prediction() -> None:
    predictions = prediction_frame(
        ["p1", "p2", "p3"],
        ["2024-05-01", "2024-05-10", "2024-05-01"],
        entity_key=["a", "a", "b"],
    )
    outcomes = outcome_frame(
        ["before", "same-time", "later", "b1"],
        ["2024-04-01", "2024-05-10", "2024-05-20", "2024-05-01"],
        [0.0, 1.0, 0.0, 1.0],
        entity_key=["a", "a", "a", "b"],
        prediction_id=[None] * 4,
    )
    joined = join_outcomes(predictions, outcomes, by="entity_key")
    assert joined["outcome_id"].tolist() == ["same-time", "same-time", "b1"]
    assert joined["labeled"].all()


def test_join_by_entity_key_leaves_a_prediction_unlabeled_when_its_outcome_is_too_late() -> None:
    predictions = prediction_frame(["p1"], ["2024-05-01"], entity_key=["a"])
    outcomes = outcome_frame(["o1"], ["2024-06-15"], [1.0], entity_key=["a"])
    assert not join_outcomes(predictions, outcomes, by="entity_key", horizon="30D")["labeled"][0]
    assert join_outcomes(predictions, outcomes, by="entity_key", horizon="60D")["labeled"][0]


def test_join_by_entity_key_matches_string_and_object_keys_alike() -> None:
    predictions = prediction_frame(["p1"], ["2024-05-01"], entity_key=pd.array(["a"], "string"))
    outcomes = outcome_frame(
        ["o1"], ["2024-05-02"], [1.0], entity_key=pd.Series(["a"], dtype=object)
    )
    assert join_outcomes(predictions, outcomes, by="entity_key")["labeled"].tolist() == [True]


def test_join_never_matches_across_systems() -> None:
    predictions = prediction_frame(["p1", "p1"], ["2024-05-01"] * 2, system=["churn", "fraud"])
    outcomes = outcome_frame(["o1"], ["2024-05-02"], [1.0], prediction_id=["p1"], system=["fraud"])
    assert join_outcomes(predictions, outcomes)["labeled"].tolist() == [False, True]


def test_join_reads_the_frames_the_event_log_returns(tmp_path: object) -> None:
    with EventLog(f"{tmp_path}/events") as log:
        log.append(
            [
                {
                    "kind": "prediction",
                    "system": "churn",
                    "id": f"p{i}",
                    "entity_key": f"c{i}",
                    "model_version": 1,
                    "score": i / 10,
                    "event_time": "2024-05-01T00:00:00Z",
                }
                for i in range(3)
            ]
            + [
                {
                    "kind": "outcome",
                    "system": "churn",
                    "id": "o1",
                    "prediction_id": "p1",
                    "value": 1.0,
                    "event_time": "2024-05-03T00:00:00Z",
                },
            ]
        )
        log.flush()
        predictions = log.scan("prediction", "churn").to_pandas()
        outcomes = log.scan("outcome", "churn").to_pandas()
    joined = join_outcomes(predictions, outcomes).set_index("id")
    assert joined["labeled"].to_dict() == {"p0": False, "p1": True, "p2": False}


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"by": "customer"}, "'customer'"),
        ({"horizon": "soon"}, "'soon'"),
        ({"horizon": "-1D"}, "-1D"),
    ],
)
def test_join_rejects_bad_settings_naming_the_value(keywords: dict[str, str], message: str) -> None:
    predictions = prediction_frame(["p1"], ["2024-05-01"], entity_key=["a"])
    outcomes = outcome_frame(["o1"], ["2024-05-02"], [1.0], prediction_id=["p1"], entity_key=["a"])
    with pytest.raises(InvalidInputError, match=message):
        join_outcomes(predictions, outcomes, **keywords)  # type: ignore[arg-type]


def test_join_names_the_missing_column() -> None:
    predictions = prediction_frame(["p1"], ["2024-05-01"])
    with pytest.raises(InvalidInputError, match="'prediction_id'"):
        join_outcomes(predictions, outcome_frame(["o1"], ["2024-05-02"], [1.0]))


# ---------------------------------------------------------------------------------------------
# Realized performance: values against scikit-learn


def tied_binary_sample(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores rounded to 2 decimals (ties, and values on calibration bin edges) and labels."""
    rng = np.random.default_rng(seed)
    scores = np.round(rng.beta(2, 3, size=n), 2)
    labels = (rng.uniform(size=n) < scores).astype(float)
    return scores, labels


def calibration_error_from_sklearn(labels: np.ndarray, scores: np.ndarray) -> float:
    mean_label, mean_score = calibration_curve(labels, scores, n_bins=CALIBRATION_BINS)
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    # calibration_curve's bins are right-closed; histogramming the negated scores gives that.
    counts = np.histogram(-scores, bins=-edges[::-1])[0][::-1]
    weights = counts[counts > 0] / len(scores)
    return float((weights * np.abs(mean_label - mean_score)).sum())


def test_binary_metrics_equal_scikit_learn_per_model_version() -> None:
    rows = []
    for version, seed in ((1, 1), (2, 2)):
        scores, labels = tied_binary_sample(500 + 100 * version, seed)
        rows.append(labeled_frame(scores, labels, model_version=version))
    table = realized_performance(pd.concat(rows), threshold=0.4)
    for (version, group), frame in zip(table.groupby("model_version"), rows, strict=True):
        assert frame["model_version"].iloc[0] == version
        labels, scores = frame["outcome_value"].to_numpy(), frame["score"].to_numpy()
        decided = (scores >= 0.4).astype(int)
        tn, fp, fn, tp = confusion_matrix(labels, decided).ravel()
        expected = {
            "roc_auc": roc_auc_score(labels, scores),
            "pr_auc": average_precision_score(labels, scores),
            "precision": precision_score(labels, decided),
            "recall": recall_score(labels, decided),
            "f1": f1_score(labels, decided),
            "fpr": fp / (fp + tn),
            "fnr": fn / (fn + tp),
            "brier": brier_score_loss(labels, scores),
            "ece": calibration_error_from_sklearn(labels, scores),
        }
        values = by_metric(group)["value"]
        assert set(values.index) == set(BINARY_METRICS)
        for name, value in expected.items():
            assert values[name] == pytest.approx(value, abs=1e-12, rel=1e-12), name
        assert (by_metric(group)["status"] == "ok").all()


def test_regression_metrics_equal_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    observed = rng.gamma(2.0, 10.0, size=400)
    predicted = observed + rng.normal(0, 5, size=400)
    table = by_metric(
        realized_performance(labeled_frame(predicted, observed), task="regression", by=())
    )
    expected = {
        "mae": mean_absolute_error(observed, predicted),
        "rmse": np.sqrt(mean_squared_error(observed, predicted)),
        "mape": mean_absolute_percentage_error(observed, predicted),
        "r2": r2_score(observed, predicted),
    }
    assert set(table.index) == set(REGRESSION_METRICS)
    for name, value in expected.items():
        assert table.loc[name, "value"] == pytest.approx(value, abs=1e-12, rel=1e-12), name


@pytest.mark.parametrize("seed", range(5))
def test_weighted_row_metrics_equal_scikit_learn_on_the_resamples_they_stand_for(seed: int) -> None:
    scores, labels = tied_binary_sample(300, seed)
    order = np.argsort(-scores, kind="stable")
    scores, labels = scores[order], labels[order]
    # A resample is how often each row was drawn; scikit-learn gets the rows repeated that often.
    weights = np.random.default_rng(seed).multinomial(300, np.full(300, 1 / 300), size=4) * 1.0
    checks: dict[str, tuple[Callable[..., np.ndarray], Callable[..., float]]] = {
        "ap": (performance.average_precision_rows, average_precision_score),
        "brier": (performance.brier_rows, lambda y, s: brier_score_loss(y, s)),
        "ece": (performance.calibration_error_rows, calibration_error_from_sklearn),
        "f1": (
            lambda s, y, w: performance.f1_rows(s, y, w, 0.5),
            lambda y, s: f1_score(y, (s >= 0.5).astype(int)),
        ),
    }
    for name, (ours, sklearns) in checks.items():
        values = ours(scores, labels, weights)
        for row, value in zip(weights, values, strict=True):
            rows = np.repeat(np.arange(300), row.astype(int))
            assert value == pytest.approx(sklearns(labels[rows], scores[rows]), abs=1e-12), name


def test_weighted_regression_metrics_equal_scikit_learn_on_the_resamples() -> None:
    rng = np.random.default_rng(30)
    observed = rng.normal(1_000.0, 3.0, size=200)  # a large mean: the variance must not cancel
    predicted = observed + rng.normal(size=200)
    weights = rng.multinomial(200, np.full(200, 1 / 200), size=4) * 1.0
    checks = {
        "mae": (performance.mae_rows, mean_absolute_error),
        "rmse": (performance.rmse_rows, lambda y, p: np.sqrt(mean_squared_error(y, p))),
        "mape": (performance.mape_rows, mean_absolute_percentage_error),
        "r2": (performance.r2_rows, r2_score),
    }
    for name, (ours, sklearns) in checks.items():
        values = ours(predicted, observed, weights)
        for row, value in zip(weights, values, strict=True):
            rows = np.repeat(np.arange(200), row.astype(int))
            assert value == pytest.approx(sklearns(observed[rows], predicted[rows]), abs=1e-9), name


def test_expected_calibration_error_equals_the_calibration_curve_gap() -> None:
    scores, labels = tied_binary_sample(1_000, 9)
    assert expected_calibration_error(labels, scores) == pytest.approx(
        calibration_error_from_sklearn(labels, scores), abs=1e-12
    )


# ---------------------------------------------------------------------------------------------
# Realized performance: intervals


def test_proportion_intervals_equal_scipys_wilson_interval() -> None:
    scores, labels = tied_binary_sample(400, 4)
    table = by_metric(realized_performance(labeled_frame(scores, labels), by=()))
    decided = scores >= 0.5
    counts = {
        "precision": ((decided & (labels == 1)).sum(), decided.sum()),
        "recall": ((decided & (labels == 1)).sum(), (labels == 1).sum()),
        "fpr": ((decided & (labels == 0)).sum(), (labels == 0).sum()),
        "fnr": ((~decided & (labels == 1)).sum(), (labels == 1).sum()),
    }
    for name, (successes, trials) in counts.items():
        interval = stats.binomtest(int(successes), int(trials)).proportion_ci(0.95, "wilson")
        assert table.loc[name, "lower"] == pytest.approx(interval.low, abs=1e-12), name
        assert table.loc[name, "upper"] == pytest.approx(interval.high, abs=1e-12), name
        assert table.loc[name, "ci_method"] == "wilson"


def test_roc_auc_interval_is_the_logit_delong_interval_from_pairwise_placements() -> None:
    scores, labels = tied_binary_sample(300, 5)
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    # DeLong's definition, pair by pair: 1 if the positive ranks higher, 1/2 on a tie.
    kernel = (positives[:, None] > negatives[None, :]) + 0.5 * (positives[:, None] == negatives)
    parts = kernel.mean(axis=1).var(ddof=1) / m, kernel.mean(axis=0).var(ddof=1) / n
    variance = sum(parts)
    # On the logit scale, with Student's t on the Welch-Satterthwaite degrees of freedom.
    freedom = variance**2 / (parts[0] ** 2 / (m - 1) + parts[1] ** 2 / (n - 1))
    auc = roc_auc_score(labels, scores)
    half = stats.t.ppf(0.975, freedom) * np.sqrt(variance) / (auc * (1 - auc))
    row = by_metric(realized_performance(labeled_frame(scores, labels), by=())).loc["roc_auc"]
    assert row["value"] == pytest.approx(auc, abs=1e-12)
    assert row["lower"] == pytest.approx(special.expit(special.logit(auc) - half), abs=1e-12)
    assert row["upper"] == pytest.approx(special.expit(special.logit(auc) + half), abs=1e-12)
    assert row["ci_method"] == "delong-logit"


def test_roc_auc_interval_covers_the_true_auc_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(6)
    trials, n = 300, 200
    # Positives ~ N(1, 1), negatives ~ N(0, 1): the true AUC is Phi(1 / sqrt(2)).
    true_auc = stats.norm.cdf(1 / np.sqrt(2))
    covered = 0
    for _ in range(trials):
        labels = (rng.uniform(size=n) < 0.4).astype(float)
        scores = rng.normal(labels, 1.0)
        interval = performance.delong(scores, labels, 0.95)
        covered += interval.lower <= true_auc <= interval.upper
    # 95% nominal coverage, allowing four binomial standard errors either side.
    assert abs(covered / trials - 0.95) <= 4 * np.sqrt(0.95 * 0.05 / trials)


def test_bootstrap_interval_agrees_with_the_normal_interval_of_a_mean() -> None:
    rng = np.random.default_rng(7)
    observed = rng.normal(size=2_000)
    predicted = observed + rng.normal(size=2_000)
    n_resamples = 400
    table = realized_performance(
        labeled_frame(predicted, observed), task="regression", by=(), n_resamples=n_resamples
    )
    row = by_metric(table).loc["mae"]
    errors = np.abs(observed - predicted)
    standard_error = errors.std(ddof=1) / np.sqrt(len(errors))
    # A 2.5% quantile of 400 resamples has a Monte Carlo error of about this many standard errors.
    quantile_noise = np.sqrt(0.025 * 0.975 / n_resamples) / stats.norm.pdf(Z95)
    tolerance = 3 * quantile_noise * standard_error
    assert row["lower"] == pytest.approx(errors.mean() - Z95 * standard_error, abs=tolerance)
    assert row["upper"] == pytest.approx(errors.mean() + Z95 * standard_error, abs=tolerance)
    assert row["ci_method"] == "bootstrap"


def test_intervals_contain_their_value_and_the_bootstrap_is_reproducible() -> None:
    scores, labels = tied_binary_sample(300, 8)
    first = realized_performance(labeled_frame(scores, labels), by=())
    second = realized_performance(labeled_frame(scores, labels), by=())
    pd.testing.assert_frame_equal(first, second)
    assert ((first["lower"] <= first["value"]) & (first["value"] <= first["upper"])).all()
    stratified = by_metric(first).loc[["pr_auc", "f1", "brier", "ece"], "ci_method"]
    assert set(stratified) == {"stratified bootstrap"}


# ---------------------------------------------------------------------------------------------
# Realized performance: groups, windows, small samples


def test_a_group_below_the_minimum_reports_not_enough_data_with_its_count() -> None:
    scores, labels = tied_binary_sample(MIN_SAMPLES - 1, 10)
    table = realized_performance(labeled_frame(scores, labels), by=())
    assert table["value"].isna().all()
    expected = f"not enough data: {MIN_SAMPLES - 1} labeled, minimum {MIN_SAMPLES}"
    assert (table["status"] == expected).all()


def test_ranking_metrics_need_enough_of_each_class_while_others_still_report() -> None:
    scores, labels = tied_binary_sample(200, 11)
    labels[:] = 0.0
    labels[: MIN_PER_CLASS - 1] = 1.0
    table = by_metric(realized_performance(labeled_frame(scores, labels), by=()))
    for name in ("roc_auc", "pr_auc"):
        assert np.isnan(table.loc[name, "value"])
        assert table.loc[name, "status"] == (
            f"not enough data: {MIN_PER_CLASS - 1} positive and {201 - MIN_PER_CLASS} negative "
            f"labels, minimum {MIN_PER_CLASS} of each"
        )
    assert table.loc["brier", "value"] == pytest.approx(brier_score_loss(labels, scores))


def test_counts_and_unlabeled_share_cover_every_prediction_in_the_group() -> None:
    scores, labels = tied_binary_sample(120, 12)
    frame = labeled_frame(scores, labels)
    frame.loc[:39, "labeled"] = False
    frame.loc[:39, "outcome_value"] = np.nan
    row = realized_performance(frame, by=()).iloc[0]
    assert (row["n_predictions"], row["n_labeled"]) == (120, 80)
    assert row["unlabeled_share"] == pytest.approx(40 / 120)
    assert by_metric(realized_performance(frame, by=())).loc["roc_auc", "value"] == pytest.approx(
        roc_auc_score(labels[40:], scores[40:]), abs=1e-12
    )


def test_frequency_windows_split_predictions_by_their_event_time() -> None:
    scores, labels = tied_binary_sample(480, 13)
    frame = labeled_frame(scores, labels, model_version=1)
    frame["event_time"] = pd.date_range("2024-05-01", periods=480, freq="h", tz="UTC")
    table = realized_performance(frame, freq="7D")
    windows = table.drop_duplicates("window_start")
    assert windows["n_predictions"].sum() == 480
    assert (windows["window_end"] - windows["window_start"] == pd.Timedelta("7D")).all()
    first = windows.sort_values("n_predictions").iloc[-1]
    inside = (frame["event_time"] >= first["window_start"]) & (
        frame["event_time"] < first["window_end"]
    )
    auc = by_metric(table[table["window_start"] == first["window_start"]]).loc["roc_auc", "value"]
    assert auc == pytest.approx(roc_auc_score(labels[inside], scores[inside]), abs=1e-12)


def test_explicit_windows_are_half_open() -> None:
    scores, labels = tied_binary_sample(96, 14)
    frame = labeled_frame(scores, labels)
    frame["event_time"] = pd.date_range("2024-05-01", periods=96, freq="h", tz="UTC")
    windows = [("2024-05-01", "2024-05-02"), ("2024-05-02", "2024-05-05")]
    table = realized_performance(frame, windows=windows, by=()).drop_duplicates("window_start")
    assert table["n_predictions"].tolist() == [24, 72]


def test_calendar_frequencies_use_calendar_bounds() -> None:
    scores, labels = tied_binary_sample(90, 15)
    frame = labeled_frame(scores, labels)
    frame["event_time"] = pd.date_range("2024-05-30", periods=90, freq="h", tz="UTC")
    table = realized_performance(frame, freq="MS", by=()).drop_duplicates("window_start")
    assert table["window_start"].tolist() == list(utc("2024-05-01", "2024-06-01"))
    assert table["n_predictions"].tolist() == [48, 42]


def test_scores_outside_the_unit_interval_leave_probability_metrics_undefined() -> None:
    scores, labels = tied_binary_sample(200, 16)
    table = by_metric(
        realized_performance(labeled_frame(scores * 10 - 5, labels), threshold=0, by=())
    )
    assert table.loc[["brier", "ece"], "value"].isna().all()
    assert table.loc["brier", "status"].startswith("undefined: scores outside [0, 1]")
    assert table.loc["roc_auc", "value"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_a_non_binary_outcome_is_rejected_with_its_value() -> None:
    scores, labels = tied_binary_sample(100, 17)
    labels[3] = 2.0
    with pytest.raises(InvalidInputError, match=r"outcome value 2\.0 .*0 or 1"):
        realized_performance(labeled_frame(scores, labels), by=())


@pytest.mark.parametrize(
    ("keywords", "message"),
    [
        ({"task": "multiclass"}, "'multiclass'"),
        ({"freq": "1D", "windows": [("2024-05-01", "2024-05-02")]}, "not both"),
        ({"freq": "fortnight"}, "'fortnight'"),
        ({"windows": [("2024-05-02", "2024-05-01")]}, "is empty"),
        ({"confidence": 1.5}, "confidence 1.5"),
    ],
)
def test_realized_performance_rejects_bad_settings_naming_the_value(
    keywords: dict[str, object], message: str
) -> None:
    scores, labels = tied_binary_sample(50, 19)
    frame = labeled_frame(scores, labels, event_time=pd.Timestamp("2024-05-01", tz="UTC"))
    with pytest.raises(InvalidInputError, match=message):
        realized_performance(frame, by=(), **keywords)  # type: ignore[arg-type]


def test_realized_performance_runs_on_a_join() -> None:
    scores, labels = tied_binary_sample(100, 18)
    ids = [f"p{i}" for i in range(100)]
    predictions = prediction_frame(ids, ["2024-05-01"] * 100, score=scores, model_version=3)
    outcomes = outcome_frame(
        ids[:60], ["2024-05-02"] * 60, list(labels[:60]), prediction_id=ids[:60]
    )
    table = realized_performance(join_outcomes(predictions, outcomes))
    row = by_metric(table).loc["roc_auc"]
    assert (row["model_version"], row["n_labeled"]) == (3, 60)
    assert row["value"] == pytest.approx(roc_auc_score(labels[:60], scores[:60]), abs=1e-12)


# ---------------------------------------------------------------------------------------------
# CBPE


def covariate_shifted(
    n: int, center: float, spread: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed concept P(y | x) = sigmoid(2x) and a miscalibrated model score sigmoid(3x + 0.5).

    Moving x changes only the covariates, so P(y | score) holds: CBPE's assumption.
    """
    x = rng.normal(center, spread, size=n)
    labels = (rng.uniform(size=n) < special.expit(2 * x)).astype(float)
    return special.expit(3 * x + 0.5), labels


def realized(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    decided = (scores >= threshold).astype(int)
    tn, fp, _, tp = confusion_matrix(labels, decided).ravel()
    return {
        "roc_auc": roc_auc_score(labels, scores),
        "precision": precision_score(labels, decided),
        "recall": recall_score(labels, decided),
        "f1": f1_score(labels, decided),
        "fpr": fp / (fp + tn),
        "accuracy": (tp + tn) / len(labels),
    }


def assert_estimate_near_realized(estimate: dict[str, float], actual: dict[str, float]) -> None:
    for name, value in actual.items():
        # The band is a 95% interval (about 2 standard errors each side) for the realized metric,
        # from this window's size and the reference's; allow twice its half-width.
        tolerance = estimate[f"{name}_upper"] - estimate[f"{name}_lower"]
        assert abs(estimate[name] - value) <= tolerance, (name, estimate[name], value, tolerance)


def test_cbpe_estimates_the_realized_metrics_under_covariate_shift() -> None:
    rng = np.random.default_rng(20)
    reference_scores, reference_labels = covariate_shifted(20_000, 0.0, 1.5, rng)
    cbpe = CBPE(threshold=0.5).fit(reference_scores, reference_labels)
    for center, spread in ((0.0, 1.5), (0.8, 1.0), (-0.5, 2.0)):
        scores, labels = covariate_shifted(5_000, center, spread, rng)
        estimate = cbpe.estimate(scores)
        assert_estimate_near_realized(estimate, realized(scores, labels, 0.5))


def test_cbpe_tracks_the_drop_when_shift_moves_mass_to_uncertain_scores() -> None:
    rng = np.random.default_rng(21)
    cbpe = CBPE().fit(*covariate_shifted(20_000, 0.0, 1.5, rng))
    before_scores, before_labels = covariate_shifted(5_000, 0.0, 1.5, rng)
    # Scores near the threshold (sigmoid(3x + 0.5) = 0.5 at x = -1/6): a harder population.
    after_scores, after_labels = covariate_shifted(5_000, -1 / 6, 0.3, rng)
    before, after = cbpe.estimate(before_scores), cbpe.estimate(after_scores)
    actual_before = realized(before_scores, before_labels, 0.5)
    actual_after = realized(after_scores, after_labels, 0.5)
    assert actual_after["roc_auc"] < actual_before["roc_auc"]
    assert after["roc_auc_upper"] < before["roc_auc_lower"]
    assert after["accuracy_upper"] < before["accuracy_lower"]
    assert_estimate_near_realized(after, actual_after)


def test_cbpe_band_widens_when_the_reference_is_smaller() -> None:
    rng = np.random.default_rng(27)
    scores, _ = covariate_shifted(2_000, 0.3, 1.0, rng)
    small = CBPE().fit(*covariate_shifted(500, 0.0, 1.5, rng)).estimate(scores)
    large = CBPE().fit(*covariate_shifted(50_000, 0.0, 1.5, rng)).estimate(scores)
    for name in ("roc_auc", "precision", "recall", "accuracy"):
        assert small[f"{name}_upper"] - small[f"{name}_lower"] > (
            large[f"{name}_upper"] - large[f"{name}_lower"]
        ), name


@pytest.mark.slow
def test_cbpe_band_covers_the_realized_metric_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(28)
    trials, covered = 80, dict.fromkeys(("roc_auc", "precision", "recall", "f1"), 0)
    for _ in range(trials):
        cbpe = CBPE(n_simulations=200).fit(*covariate_shifted(5_000, 0.0, 1.5, rng))
        scores, labels = covariate_shifted(2_000, 0.3, 1.0, rng)
        estimate, actual = cbpe.estimate(scores), realized(scores, labels, 0.5)
        for name in covered:
            covered[name] += estimate[f"{name}_lower"] <= actual[name] <= estimate[f"{name}_upper"]
    for name, count in covered.items():
        # 95% nominal, allowing four binomial standard errors below (and any excess above).
        assert count / trials >= 0.95 - 4 * np.sqrt(0.95 * 0.05 / trials), name


def test_cbpe_expected_confusion_matrix_sums_calibrated_probabilities() -> None:
    rng = np.random.default_rng(22)
    cbpe = CBPE(threshold=0.3).fit(*covariate_shifted(2_000, 0.0, 1.0, rng))
    scores, _ = covariate_shifted(500, 0.2, 1.0, rng)
    probabilities = cbpe.calibrate(scores)
    decided = scores >= 0.3
    estimate = cbpe.estimate(scores)
    tp, fp = probabilities[decided].sum(), (1 - probabilities[decided]).sum()
    fn, tn = probabilities[~decided].sum(), (1 - probabilities[~decided]).sum()
    assert [estimate[f"expected_{k}"] for k in ("tp", "fp", "fn", "tn")] == pytest.approx(
        [tp, fp, fn, tn], abs=1e-9
    )
    assert estimate["precision"] == pytest.approx(tp / (tp + fp), abs=1e-12)
    assert estimate["recall"] == pytest.approx(tp / (tp + fn), abs=1e-12)
    assert estimate["f1"] == pytest.approx(2 * tp / (2 * tp + fp + fn), abs=1e-12)
    assert estimate["fpr"] == pytest.approx(fp / (fp + tn), abs=1e-12)
    assert estimate["accuracy"] == pytest.approx((tp + tn) / 500, abs=1e-12)


def test_cbpe_expected_auc_is_the_ratio_of_expected_pair_counts() -> None:
    rng = np.random.default_rng(23)
    cbpe = CBPE().fit(*covariate_shifted(2_000, 0.0, 1.0, rng))
    scores, _ = covariate_shifted(300, 0.0, 1.0, rng)
    scores = np.round(scores, 2)  # ties count half
    p = cbpe.calibrate(scores)
    pair_weight = p[:, None] * (1 - p[None, :])
    np.fill_diagonal(pair_weight, 0.0)  # a row is never its own pair
    order = (scores[:, None] > scores[None, :]) + 0.5 * (scores[:, None] == scores[None, :])
    expected = (pair_weight * order).sum() / pair_weight.sum()
    assert cbpe.estimate(scores)["roc_auc"] == pytest.approx(expected, abs=1e-12)


def test_cbpe_calibrates_each_reference_row_with_a_calibrator_that_never_saw_it() -> None:
    rng = np.random.default_rng(24)
    scores, labels = covariate_shifted(1_000, 0.0, 1.0, rng)
    cbpe = CBPE(n_folds=4, seed=5).fit(scores, labels)
    folds = StratifiedKFold(4, shuffle=True, random_state=5).split(scores, labels)
    for calibrator, (_, held_out) in zip(cbpe.calibrators_, folds, strict=True):
        assert (
            cbpe.reference_probabilities_[held_out] == calibrator.predict(scores[held_out])
        ).all()
    in_sample = np.mean([c.predict(scores) for c in cbpe.calibrators_], axis=0)
    assert not np.allclose(in_sample, cbpe.reference_probabilities_)
    assert cbpe.reference_calibration_error_ == pytest.approx(
        expected_calibration_error(labels, cbpe.reference_probabilities_)
    )


def test_cbpe_used_before_fit_says_to_call_fit() -> None:
    with pytest.raises(NotFittedError, match="call fit"):
        CBPE().estimate([0.5])


def test_cbpe_fit_rejects_a_reference_too_thin_to_cross_fit() -> None:
    with pytest.raises(InvalidInputError, match="3 positive and 7 negative"):
        CBPE(n_folds=5).fit(np.linspace(0, 1, 10), [0] * 7 + [1] * 3)


def test_cbpe_fit_rejects_an_unknown_metric() -> None:
    with pytest.raises(InvalidInputError, match="cannot estimate brier"):
        CBPE(metrics=("brier",)).fit([0.1, 0.9] * 10, [0, 1] * 10)


def test_estimate_performance_per_window_equals_the_estimate_of_each_window() -> None:
    rng = np.random.default_rng(25)
    cbpe = CBPE().fit(*covariate_shifted(3_000, 0.0, 1.0, rng))
    scores, _ = covariate_shifted(240, 0.3, 1.0, rng)
    frame = pd.DataFrame(
        {
            "score": scores,
            "event_time": pd.date_range("2024-05-01", periods=240, freq="h", tz="UTC"),
        }
    )
    table = estimate_performance(frame, cbpe, freq="2D")
    assert table["window_start"].nunique() == 5
    # Two-day windows align to the Unix epoch: 2024-05-01 starts one (19,844 days after it).
    second = table[table["window_start"] == pd.Timestamp("2024-05-03", tz="UTC")]
    expected = cbpe.estimate(scores[48:96])
    for row in second.itertuples():
        assert (row.value, row.lower, row.upper) == (
            expected[row.metric],
            expected[f"{row.metric}_lower"],
            expected[f"{row.metric}_upper"],
        )
        assert row.status == "ok"


def test_estimate_performance_marks_small_windows_not_enough_data() -> None:
    rng = np.random.default_rng(26)
    cbpe = CBPE().fit(*covariate_shifted(1_000, 0.0, 1.0, rng))
    frame = pd.DataFrame({"score": covariate_shifted(10, 0.0, 1.0, rng)[0]})
    table = estimate_performance(frame, cbpe)
    assert table["value"].isna().all()
    assert (table["status"] == f"not enough data: 10 predictions, minimum {MIN_SAMPLES}").all()


def test_every_public_name_is_exported() -> None:
    defined = {
        name
        for name, value in vars(performance).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and value.__module__ == performance.__name__
    }
    assert defined <= set(performance.__all__)
    assert all(hasattr(performance, name) for name in performance.__all__)


def test_the_monitors_cbpe_cache_is_bounded_and_safe_across_threads() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from steward.monitoring.performance import FittedCBPECache

    cache = FittedCBPECache(size=4)
    keys = [("sha", version % 6, "ref", 0.5) for version in range(600)]
    with ThreadPoolExecutor(8) as pool:
        fitted = list(pool.map(lambda key: cache.get_or_fit(key, CBPE), keys))
    assert all(isinstance(cbpe, CBPE) for cbpe in fitted)
    assert len(cache) == 4
    kept = cache.get_or_fit(keys[-1], CBPE)
    assert cache.get_or_fit(keys[-1], CBPE) is kept
    with pytest.raises(InvalidInputError, match="size 0 is too small"):
        FittedCBPECache(size=0)
