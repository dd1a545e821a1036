"""Champion against challenger: the paired DeLong test, comparisons, promotion and approvals."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from scipy import stats
from sklearn.compose import make_column_transformer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from steward import Steward
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.loop import playbooks, promotion
from steward.monitoring.metrics import delong as _delong

from .conftest import CONFIG


@pytest.fixture(scope="module")
def split(telco: tuple[pd.DataFrame, pd.Series]) -> dict[str, Any]:
    frame, target = telco
    train, golden, y_train, y_golden = train_test_split(
        frame, target, test_size=0.3, stratify=target, random_state=0
    )
    weak = make_pipeline(
        make_column_transformer((StandardScaler(), ["MonthlyCharges"])), LogisticRegression()
    ).fit(train, y_train)
    return {
        "golden": golden,
        "y_golden": y_golden,
        "strong": train_churn_model(train, y_train),
        "weak": weak,
    }


def configure(steward: Steward, **system: Any) -> None:
    config = yaml.safe_load(CONFIG)
    config["systems"][0].update(system)
    steward.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    steward.apply()


def write_golden(steward: Steward, split: dict[str, Any]) -> str:
    """The golden set as the Telco CSV has it: the target spelled Yes/No."""
    path = steward.settings.workspace / "golden.csv"
    labels = np.where(split["y_golden"].to_numpy() == 1, "Yes", "No")
    split["golden"].assign(Churn=labels).to_csv(path, index=False)
    return "golden.csv"


def register(steward: Steward, champion: Any, challenger: Any) -> None:
    steward.register_model(champion, system="churn")
    steward.register_model(challenger, system="churn")
    steward.move_alias("churn", "champion", 1)
    steward.move_alias("churn", "challenger", 2)


@pytest.fixture
def events(tmp_path: Path) -> Iterator[EventLog]:
    log = EventLog(tmp_path / "events", fsync=False)
    yield log
    log.close()


# The paired DeLong test


def brute_force_delong(labels: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The 2x2 covariance of two AUCs straight from DeLong et al. (1988): psi over every pair."""
    covariances = []
    v10s, v01s = [], []
    for scores in (a, b):
        positives, negatives = scores[labels == 1], scores[labels == 0]
        psi = (positives[:, None] > negatives[None, :]) + 0.5 * (
            positives[:, None] == negatives[None, :]
        )
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
    m, n = len(v10s[0]), len(v01s[0])
    covariances = np.cov(np.vstack(v10s)) / m + np.cov(np.vstack(v01s)) / n
    return covariances


def test_paired_delong_aucs_equal_scikit_learn_and_variances_the_unpaired_delong() -> None:
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 2, 600).astype(float)
    # Rounded scores, so there are ties within and across the classes.
    a = np.round(labels * 0.6 + rng.normal(size=600), 1)
    b = np.round(labels * 0.9 + rng.normal(size=600), 1)
    test = promotion.paired_delong(labels, a, b)
    assert abs(test.auc_a - roc_auc_score(labels, a)) < 1e-12
    assert abs(test.auc_b - roc_auc_score(labels, b)) < 1e-12
    z = stats.norm.ppf(0.975)
    for scores, variance in ((a, test.variance_a), (b, test.variance_b)):
        unpaired = _delong(scores, labels, 0.95)
        assert unpaired.lower > 0 and unpaired.upper < 1  # not clipped, so the width is exact
        assert variance == pytest.approx(((unpaired.upper - unpaired.lower) / (2 * z)) ** 2, 1e-9)


def test_paired_delong_covariance_and_p_value_follow_the_definition() -> None:
    rng = np.random.default_rng(3)
    labels = np.array([1] * 15 + [0] * 20, dtype=float)
    a = np.round(labels + rng.normal(size=35), 0)
    b = np.round(1.5 * labels + rng.normal(size=35), 1)
    test = promotion.paired_delong(labels, a, b)
    expected = brute_force_delong(labels, a, b)
    assert test.variance_a == pytest.approx(expected[0, 0], abs=1e-12)
    assert test.variance_b == pytest.approx(expected[1, 1], abs=1e-12)
    assert test.covariance == pytest.approx(expected[0, 1], abs=1e-12)
    variance = expected[0, 0] + expected[1, 1] - 2 * expected[0, 1]
    assert test.variance_of_difference == pytest.approx(variance, abs=1e-12)
    assert test.p_value == pytest.approx(stats.norm.sf(test.difference / np.sqrt(variance)))


def test_identical_models_have_zero_variance_of_difference(split: dict[str, Any]) -> None:
    scores = split["strong"].predict_proba(split["golden"])[:, 1]
    test = promotion.paired_delong(split["y_golden"], scores, scores)
    assert test.variance_of_difference == 0.0
    assert test.difference == 0.0
    assert test.p_value == 1.0 and test.z is None
    assert test.variance_a > 0


def test_paired_delong_needs_both_classes() -> None:
    with pytest.raises(InvalidInputError, match="both classes"):
        promotion.paired_delong([1, 1, 1], [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])


# Comparing versions


def test_a_truly_better_challenger_wins_on_the_golden_set(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    configure(workspace, retrain={"command": "true", "golden_set": write_golden(workspace, split)})
    register(workspace, split["weak"], split["strong"])
    comparison = promotion.compare_models(workspace, events, "churn")
    golden = comparison.sources[0]
    assert golden.source == "golden" and golden.enough_data and golden.test is not None
    y = split["y_golden"]
    assert golden.test.auc_a == pytest.approx(
        roc_auc_score(y, split["weak"].predict_proba(split["golden"])[:, 1]), abs=1e-12
    )
    assert golden.test.auc_b == pytest.approx(
        roc_auc_score(y, split["strong"].predict_proba(split["golden"])[:, 1]), abs=1e-12
    )
    assert golden.test.p_value < 0.05 and golden.better
    shadow = comparison.sources[1]
    assert not shadow.enough_data and "no shadow scores" in shadow.note
    assert comparison.better
    assert "is better" in comparison.summary()
    json.dumps(promotion.json_safe(comparison.to_dict()))  # storable as it is


def test_a_worse_challenger_is_not_better(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    configure(workspace, retrain={"command": "true", "golden_set": write_golden(workspace, split)})
    register(workspace, split["strong"], split["weak"])
    comparison = promotion.compare_models(workspace, events, "churn")
    assert comparison.sources[0].enough_data
    assert comparison.sources[0].test is not None and comparison.sources[0].test.difference < 0
    assert not comparison.better


def test_no_source_with_enough_data_is_not_better(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    register(workspace, split["weak"], split["strong"])
    comparison = promotion.compare_models(workspace, events, "churn")
    assert not comparison.counted and not comparison.better
    assert "no source has enough labeled data" in comparison.summary()


def log_shadow_traffic(
    events: EventLog, split: dict[str, Any], n: int, labeled: int, champion: int, challenger: int
) -> None:
    rows = split["golden"].iloc[:n]
    champion_scores = split["weak"].predict_proba(rows)[:, 1]
    challenger_scores = split["strong"].predict_proba(rows)[:, 1]
    when = datetime.now(UTC) - timedelta(days=1)
    ids = [f"p{index}" for index in range(n)]
    events.append(
        [
            {"kind": "prediction", "system": "churn", "id": ids[i], "event_time": when,
             "model_version": champion, "score": float(champion_scores[i])}
            for i in range(n)
        ]
        + [
            {"kind": "shadow", "system": "churn", "id": ids[i], "event_time": when,
             "model_version": challenger, "score": float(challenger_scores[i])}
            for i in range(n)
        ]
        + [
            {"kind": "outcome", "system": "churn", "id": f"o{i}", "prediction_id": ids[i],
             "event_time": when + timedelta(hours=1),
             "value": float(split["y_golden"].iloc[i])}
            for i in range(labeled)
        ]
    )  # fmt: skip


def test_shadow_traffic_counts_when_it_has_enough_labeled_rows(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    register(workspace, split["weak"], split["strong"])
    log_shadow_traffic(events, split, n=800, labeled=700, champion=1, challenger=2)
    comparison = promotion.compare_models(workspace, events, "churn")
    shadow = comparison.sources[1]
    assert shadow.enough_data and shadow.n == 700 and shadow.test is not None
    y = split["y_golden"].iloc[:700]
    rows = split["golden"].iloc[:700]
    assert shadow.test.auc_b == pytest.approx(
        roc_auc_score(y, split["strong"].predict_proba(rows)[:, 1]), abs=1e-12
    )
    assert comparison.better


def test_thin_shadow_traffic_does_not_count(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    register(workspace, split["weak"], split["strong"])
    log_shadow_traffic(events, split, n=50, labeled=10, champion=1, challenger=2)
    shadow = promotion.compare_models(workspace, events, "churn").sources[1]
    assert not shadow.enough_data and shadow.n == 10 and "not enough data" in shadow.note


def test_comparing_a_version_with_itself_is_refused(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    register(workspace, split["weak"], split["strong"])
    with pytest.raises(InvalidInputError, match="both v1"):
        promotion.compare_models(workspace, events, "churn", challenger=1, champion="champion")


# Promotion and approvals


def better_setup(steward: Steward, split: dict[str, Any], risk_tier: str) -> None:
    golden = write_golden(steward, split)
    configure(steward, risk_tier=risk_tier, retrain={"command": "true", "golden_set": golden})
    register(steward, split["weak"], split["strong"])


def test_a_high_risk_promotion_waits_for_approval_and_approving_moves_champion(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    better_setup(workspace, split, "high")
    action = playbooks.run_step(workspace, events, "churn", "promote_if_better")
    assert action.status == "pending_approval"
    assert workspace.version("churn", "champion").version == 1
    pending = promotion.list_approvals(workspace, "churn")
    assert [item.id for item in pending] == [action.details["approval_id"]]
    assert pending[0].subject["challenger"] == 2 and pending[0].subject["champion"] == 1
    # Asking again while it waits does not open a second approval.
    again = playbooks.run_step(workspace, events, "churn", "promote_if_better")
    assert again.details["approval_id"] == pending[0].id
    assert len(promotion.list_approvals(workspace, state="all")) == 1

    approved = promotion.approve(workspace, pending[0].id, "ana", "figures look right")
    assert approved.state == "approved" and approved.decided_by == "ana"
    assert workspace.version("churn", "champion").version == 2
    latest = playbooks.list_actions(workspace, "churn", 1)[0]
    assert (latest.kind, latest.status, latest.actor) == ("promote", "done", "ana")
    assert promotion.list_approvals(workspace, "churn") == []
    with pytest.raises(ConflictError, match="already approved by ana"):
        promotion.approve(workspace, pending[0].id, "bob")
    with pytest.raises(ConflictError):
        promotion.reject(workspace, pending[0].id, "bob")
    history = workspace.history("churn", "champion")
    assert history[-1].moved_by == "ana" and "approval #" in history[-1].reason
    assert workspace.verify_audit().ok


def test_rejecting_keeps_the_champion(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    better_setup(workspace, split, "high")
    action = playbooks.run_step(workspace, events, "churn", "promote_if_better")
    rejected = promotion.reject(workspace, action.details["approval_id"], "ana", "wait for Q3")
    assert rejected.state == "rejected" and rejected.decision_note == "wait for Q3"
    assert workspace.version("churn", "champion").version == 1
    assert [item.state for item in promotion.list_approvals(workspace, state="rejected")] == [
        "rejected"
    ]
    with pytest.raises(NotFoundError, match="no approval #999"):
        promotion.approve(workspace, 999, "ana")
    with pytest.raises(NotFoundError):  # beyond any INTEGER id: not found, not an overflow
        promotion.reject(workspace, 2**63, "ana")


def test_approving_after_the_champion_moved_is_refused(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    better_setup(workspace, split, "high")
    action = playbooks.run_step(workspace, events, "churn", "promote_if_better")
    workspace.register_model(split["strong"].set_params(logisticregression__C=0.5), system="churn")
    workspace.move_alias("churn", "champion", 2)
    with pytest.raises(ConflictError, match="not the v1 it was compared with"):
        promotion.approve(workspace, action.details["approval_id"], "ana")


def test_a_medium_risk_better_challenger_is_promoted_at_once(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    better_setup(workspace, split, "medium")
    action = playbooks.run_step(workspace, events, "churn", "promote_if_better")
    assert action.status == "done"
    assert "from v1 to v2" in action.reason and "ROC AUC" in action.reason
    assert workspace.version("churn", "champion").version == 2
    assert promotion.list_approvals(workspace, state="all") == []


def test_a_challenger_that_is_not_better_is_skipped_with_the_figures(
    workspace: Steward, events: EventLog, split: dict[str, Any]
) -> None:
    golden = write_golden(workspace, split)
    configure(workspace, risk_tier="low", retrain={"command": "true", "golden_set": golden})
    register(workspace, split["strong"], split["weak"])
    action = playbooks.run_step(workspace, events, "churn", "promote_if_better")
    assert action.status == "skipped"
    assert "kept the champion" in action.reason and "ROC AUC" in action.reason
    assert (
        action.details["sources"][0]["test"]["auc_a"]
        > action.details["sources"][0]["test"]["auc_b"]
    )
    assert workspace.version("churn", "champion").version == 1
