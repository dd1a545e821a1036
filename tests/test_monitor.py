"""Monitors over time on the electricity market data, which drifts for real."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from steward import Steward
from steward._util.times import parse_window
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.errors import InvalidInputError
from steward.monitoring.result import MonitorResult
from steward.monitoring.runner import monitor_history, run_monitors

ELECTRICITY = Path(__file__).parent / "data" / "electricity-normalized.csv"
START = datetime(1996, 5, 7, tzinfo=UTC)  # the series is half-hourly from 7 May 1996
DAY = 48
FEATURES = ["nswdemand", "vicprice", "vicdemand", "transfer", "period", "day"]


@pytest.fixture(scope="module")
def electricity() -> pd.DataFrame:
    frame = pd.read_csv(ELECTRICITY)
    frame["event_time"] = [START + timedelta(minutes=30 * i) for i in range(len(frame))]
    return frame


def workspace_with(tmp_path: Path, reference: pd.DataFrame, features: list[str]) -> Steward:
    root = tmp_path / "workspace"
    root.mkdir()
    config = {
        "version": 1,
        "systems": [
            {
                "name": "electricity",
                "task": "binary",
                "target": "class",
                "owner": "grid@example.com",
            }
        ],
    }
    (root / "steward.yaml").write_text(yaml.safe_dump(config))
    steward = Steward.open(root, user="monitor-test")
    steward.init()
    steward.apply()
    model = LogisticRegression(max_iter=500).fit(reference[features], reference["class"] == "UP")
    steward.register_model(model, system="electricity", data=reference[[*features, "class"]])
    steward.move_alias("electricity", "champion", 1)
    return steward


def log_rows(events: EventLog, rows: pd.DataFrame, features: list[str]) -> None:
    events.append(
        [
            {
                "kind": "prediction",
                "system": "electricity",
                "id": f"row-{index}",
                "event_time": row["event_time"],
                "model_version": 1,
                "inputs": json.dumps({column: row[column] for column in features}),
            }
            for index, row in rows.iterrows()
        ]
    )


def test_a_monitor_run_over_time_flags_the_change_in_the_first_part(
    tmp_path: Path, electricity: pd.DataFrame
) -> None:
    reference = electricity.iloc[: 28 * DAY]  # trained on the first four weeks
    steward = workspace_with(tmp_path, reference, FEATURES)
    with EventLog(tmp_path / "events") as events:
        log_rows(events, electricity.iloc[: 150 * DAY], FEATURES)
        statuses = {}
        for week in range(5, 21):
            at = START + timedelta(days=7 * week)
            drift = run_monitors(steward, events, "electricity", window=timedelta(days=7), at=at)[0]
            statuses[week] = drift
    breaches = [week for week, result in statuses.items() if result.status == "breach"]
    assert breaches, {week: r.summary for week, r in statuses.items()}
    first = statuses[breaches[0]]
    assert first.summary.startswith("drift in ")
    assert any(column in first.summary for column in FEATURES)
    stored = monitor_history(steward, "electricity", limit=100)
    assert len([r for r in stored if r.monitor == "drift"]) == len(statuses)
    assert steward.verify_audit().ok
    steward.close()


def test_a_window_from_the_same_stable_period_flags_nothing(
    tmp_path: Path, electricity: pd.DataFrame
) -> None:
    # Spring 1996, a demand trough (see tests/test_drift.py); the NSW spot price is left out of the
    # model's inputs because it has no stable stretch in that year.
    start = 133 * DAY
    reference = electricity.iloc[start : start + 28 * DAY]
    steward = workspace_with(tmp_path, reference, FEATURES)
    with EventLog(tmp_path / "events") as events:
        log_rows(events, electricity.iloc[: start + 56 * DAY], FEATURES)
        at = START + timedelta(days=133 + 56)
        results = {
            r.monitor: r
            for r in run_monitors(steward, events, "electricity", window=timedelta(days=28), at=at)
        }
    assert results["drift"].status == "ok", results["drift"].summary
    assert results["data_quality"].status == "ok", results["data_quality"].summary
    steward.close()


def test_monitor_run_command_exits_1_on_breach(tmp_path: Path, electricity: pd.DataFrame) -> None:
    steward = workspace_with(tmp_path, electricity.iloc[: 28 * DAY], FEATURES)
    with EventLog(steward.settings.events_dir) as events:
        log_rows(events, electricity.iloc[: 140 * DAY], FEATURES)
    root = str(steward.settings.workspace)
    steward.close()
    runner = CliRunner()
    at = (START + timedelta(days=140)).isoformat()
    result = runner.invoke(
        cli, ["--workspace", root, "monitor", "run", "--window", "7d", "--at", at]
    )
    assert result.exit_code == 1, result.output
    assert "breach" in result.output and "drift" in result.output
    quiet = runner.invoke(
        cli,
        [
            "--workspace",
            root,
            "monitor",
            "run",
            "--window",
            "7d",
            "--at",
            (START + timedelta(days=3000)).isoformat(),
        ],
    )
    assert quiet.exit_code == 0, quiet.output
    assert "not_enough_data" in quiet.output


def test_window_must_be_a_duration() -> None:
    assert parse_window("24h") == timedelta(hours=24)
    with pytest.raises(InvalidInputError, match="window '7 days' is not a duration"):
        parse_window("7 days")


def test_performance_and_uplift_monitors_read_outcomes_joined_to_the_window(
    workspace: Steward,
    telco_model: object,
) -> None:
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0]["policy"] = {
        "thresholds": [{"at": 0.5, "action": "contact"}],
        "holdout": 0.2,
        "salt": "monitor-test",
    }
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    workspace.register_model(telco_model, system="churn", metrics={"roc_auc": 0.99})
    workspace.move_alias("churn", "champion", 1)
    from steward.model.policy import Policy, decide_batch

    policy = Policy.from_dict(config["systems"][0]["policy"])
    rng = np.random.default_rng(7)
    n = 3000
    scores = rng.random(n)
    keys = [f"c{i}" for i in range(n)]
    decisions = decide_batch(policy, scores, keys)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    times = [start + timedelta(minutes=3 * i) for i in range(n)]
    treated = (~decisions["holdout"].to_numpy()) & (
        decisions["intended_action"] == "contact"
    ).to_numpy()
    churned = rng.random(n) < np.clip(scores - 0.15 * treated, 0, 1)
    with EventLog(workspace.settings.events_dir) as events:
        events.append(
            [
                {
                    "kind": "prediction",
                    "system": "churn",
                    "id": f"p{i}",
                    "event_time": times[i],
                    "entity_key": keys[i],
                    "model_version": 1,
                    "score": float(scores[i]),
                    "decision": decisions["action"][i],
                    "holdout": bool(decisions["holdout"][i]),
                    "intended_action": decisions["intended_action"][i],
                    "inputs": "{}",
                }
                for i in range(n)
            ]
        )
        events.append(
            [
                {
                    "kind": "outcome",
                    "system": "churn",
                    "id": f"o{i}",
                    "prediction_id": f"p{i}",
                    "entity_key": keys[i],
                    "event_time": times[i] + timedelta(days=20),
                    "value": float(churned[i]),
                }
                for i in range(n)
            ]
        )
        results = {
            r.monitor: r
            for r in run_monitors(
                workspace, events, "churn", window=timedelta(days=7), at=start + timedelta(days=7)
            )
        }
    performance = results["performance"]
    assert performance.status == "breach", performance.summary
    assert "below the 0.990 it was registered with" in performance.summary
    realized = roc_auc_score(
        churned[: len(times)][[t < start + timedelta(days=7) for t in times]],
        scores[[t < start + timedelta(days=7) for t in times]],
    )
    assert f"ROC AUC {realized:.3f}" in performance.summary
    lift = results["uplift"]
    # Outcome 1 is churn here, so contacting lowers it: a significant negative "uplift" of churn.
    assert lift.details["uplift"] < 0
    assert lift.details["n_control"] > 0 and lift.details["n_treated"] > 0


# --- profile mode, estimated performance, segments, lateness and why -------------------------------


def stable_workspace(tmp_path: Path, database_url: str, reference: pd.DataFrame) -> Steward:
    steward = workspace_with(tmp_path, reference, FEATURES)
    steward.close()
    return steward if database_url.startswith("sqlite") else _moved(steward, database_url)


def _moved(steward: Steward, database_url: str) -> Steward:
    """The same workspace on PostgreSQL: applied and registered again in that store."""
    root = steward.settings.workspace
    moved = Steward.open(root, user="monitor-test", database_url=database_url)
    moved.init()
    moved.apply()
    reference = steward.reference_data("electricity", "champion")
    model = LogisticRegression(max_iter=500).fit(reference[FEATURES], reference["class"] == "UP")
    moved.register_model(model, system="electricity", data=reference)
    moved.move_alias("electricity", "champion", 1)
    return moved


def by_monitor(results: list[MonitorResult]) -> dict[str, MonitorResult]:
    return {result.monitor: result for result in results}


def test_profile_mode_agrees_with_exact_mode_on_a_clear_shift_and_on_none(
    tmp_path: Path, electricity: pd.DataFrame, database_url: str
) -> None:
    start = 133 * DAY  # the stable spring stretch of test_a_window_from_the_same_stable_period
    reference = electricity.iloc[start : start + 28 * DAY]
    steward = stable_workspace(tmp_path, database_url, reference)
    later = electricity.iloc[start + 28 * DAY : start + 56 * DAY].copy()
    later.loc[later.index[14 * DAY :], "nswdemand"] += 0.15  # the second fortnight shifts
    with EventLog(tmp_path / "events") as events:
        log_rows(events, later, FEATURES)
        for days, shifted in ((start // DAY + 42, False), (start // DAY + 56, True)):
            at = START + timedelta(days=days)
            found = {
                exact: by_monitor(
                    run_monitors(
                        steward,
                        events,
                        "electricity",
                        window=timedelta(days=14),
                        at=at,
                        exact=exact,
                        settle=timedelta(0),
                    )
                )
                for exact in (True, False)
            }
            modes = {exact: found[exact]["drift"] for exact in found}
            assert modes[False].details["mode"] == "profile"
            assert modes[True].status == modes[False].status == ("breach" if shifted else "ok")
            assert (
                modes[True].details["alarmed_columns"]
                == modes[False].details["alarmed_columns"]
                == (["nswdemand"] if shifted else [])
            )
            assert modes[False].details["n_current"] == modes[True].details["n_current"] == 14 * DAY
            quality = {exact: found[exact]["data_quality"] for exact in found}
            assert quality[True].details["volume"] == quality[False].details["volume"]
    steward.close()


def test_profile_mode_reads_profiles_not_the_windows_rows(
    tmp_path: Path, electricity: pd.DataFrame, database_url: str
) -> None:
    start = 133 * DAY
    steward = stable_workspace(tmp_path, database_url, electricity.iloc[start : start + 28 * DAY])
    at = START + timedelta(days=start // DAY + 56)
    with EventLog(tmp_path / "events") as events:
        log_rows(events, electricity.iloc[start - 28 * DAY : start + 56 * DAY], FEATURES)
    with EventLog(tmp_path / "events") as events:
        first = by_monitor(
            run_monitors(
                steward, events, "electricity", window=timedelta(days=7), at=at, settle=timedelta(0)
            )
        )
    # The window's raw rows are gone; the stored profiles answer the same.
    import shutil

    shutil.rmtree(tmp_path / "events" / "kind=prediction")
    with EventLog(tmp_path / "events") as events:
        assert events.scan("prediction", "electricity").num_rows == 0
        second = by_monitor(
            run_monitors(steward, events, "electricity", window=timedelta(days=7), at=at)
        )
    assert first["drift"].details == second["drift"].details
    assert first["data_quality"].status == second["data_quality"].status
    # Lateness quantiles come from KLL sketches, whose merges are randomized: equal within their
    # rank error, not bit for bit.
    late = ("lateness_p95_seconds", "usual_lateness_p95_seconds")
    exact_keys = set(first["data_quality"].details) - set(late)
    for key in exact_keys:
        assert first["data_quality"].details[key] == second["data_quality"].details[key], key
    for key in late:
        assert second["data_quality"].details[key] == pytest.approx(
            first["data_quality"].details[key], rel=1e-4
        )
    assert second["drift"].details["n_current"] == 7 * DAY
    assert second["data_quality"].details["usual_volume"] == 7 * DAY
    assert (tmp_path / "events" / "profiles").is_dir()
    steward.close()


def churn_workspace(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], model: object, **monitors: object
) -> None:
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0]["monitors"] = monitors
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    frame, target = telco
    workspace.register_model(
        model, system="churn", data=frame.assign(Churn=target), metrics={"roc_auc": 0.99}
    )
    workspace.move_alias("churn", "champion", 1)


def log_churn(
    workspace: Steward, rows: pd.DataFrame, labels: np.ndarray, scores: np.ndarray, extra: list
) -> None:
    start = datetime(2026, 3, 2, tzinfo=UTC)
    features = rows.drop(columns=["customerID"])
    records = features.to_dict(orient="records")
    with EventLog(workspace.settings.events_dir) as events:
        events.append(
            [
                {
                    "kind": "prediction",
                    "system": "churn",
                    "id": f"p{i}",
                    "event_time": start + timedelta(minutes=5 * i),
                    "entity_key": str(rows["customerID"].iloc[i]),
                    "model_version": 1,
                    "score": float(scores[i]),
                    "inputs": json.dumps({**records[i], **extra[i]}, default=float),
                }
                for i in range(len(rows))
            ]
        )
        events.append(
            [
                {
                    "kind": "outcome",
                    "system": "churn",
                    "id": f"o{i}",
                    "prediction_id": f"p{i}",
                    "event_time": start + timedelta(days=30),
                    "value": float(labels[i]),
                }
                for i in range(len(rows))
            ]
        )


def churn_results(workspace: Steward) -> dict[str, MonitorResult]:
    with EventLog(workspace.settings.events_dir) as events:
        return by_monitor(
            run_monitors(
                workspace,
                events,
                "churn",
                window=timedelta(days=7),
                at=datetime(2026, 3, 9, tzinfo=UTC),
            )
        )


def test_estimated_performance_covers_the_realized_auc_under_covariate_shift_with_segments(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: object
) -> None:
    churn_workspace(workspace, telco, telco_model, segments=["Contract", "channel"])
    frame, target = telco
    rng = np.random.default_rng(3)
    # Covariate shift: new customers (short tenure) oversampled; P(churn | inputs) unchanged.
    weights = np.exp(-frame["tenure"].to_numpy() / 12.0)
    chosen = rng.choice(len(frame), size=1500, replace=False, p=weights / weights.sum())
    rows, labels = frame.iloc[chosen], target.to_numpy()[chosen]
    scores = telco_model.predict_proba(rows.drop(columns=["customerID"]))[:, 1]  # type: ignore[attr-defined]
    channel = ["shop" if i < 20 else "web" for i in range(len(rows))]
    log_churn(workspace, rows, labels, scores, [{"channel": c} for c in channel])
    results = churn_results(workspace)

    estimated = results["estimated_performance"]
    band = estimated.details["estimated_roc_auc"]
    realized = roc_auc_score(labels, scores)
    assert band["lower"] <= realized <= band["upper"], (band, realized)
    assert band["upper"] - band["lower"] < 0.1
    assert estimated.status == "breach"  # registered at 0.99, well above what it can do
    assert results["drift"].details["mode"] == "profile"
    assert "tenure" in results["drift"].details["alarmed_columns"]

    segments = results["performance"].details["segments"]
    contracts = {row["segment"]: row for row in segments["Contract"]}
    assert set(contracts) == set(rows["Contract"])
    for value, row in contracts.items():
        inside = (rows["Contract"] == value).to_numpy()
        assert row["n_labeled"] == inside.sum()
        if row["status"] == "ok":
            assert row["roc_auc"] == pytest.approx(roc_auc_score(labels[inside], scores[inside]))
    channels = {row["segment"]: row for row in segments["channel"]}
    assert channels["shop"]["n_labeled"] == 20
    assert channels["shop"]["status"].startswith("not enough data")
    assert channels["shop"]["roc_auc"] is None
    assert channels["web"]["status"] == "ok"


def test_why_ranks_the_shifted_feature_the_model_relies_on_first(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: object
) -> None:
    churn_workspace(workspace, telco, telco_model)
    frame, target = telco
    rng = np.random.default_rng(5)
    chosen = rng.choice(len(frame), size=1500, replace=False)
    rows, labels = frame.iloc[chosen].copy(), target.to_numpy()[chosen]
    # tenure moves and the model leans on it; gender moves too, but the model ignores it.
    rows["tenure"] = (rows["tenure"] * 0.3).round()
    rows["gender"] = "Male"
    scores = telco_model.predict_proba(rows.drop(columns=["customerID"]))[:, 1]  # type: ignore[attr-defined]
    log_churn(workspace, rows, labels, scores, [{} for _ in range(len(rows))])
    results = churn_results(workspace)

    performance = results["performance"]
    assert performance.status == "breach"
    assert set(results["drift"].details["alarmed_columns"]) >= {"tenure", "gender"}
    why = performance.details["why"]
    assert why[0]["column"] == "tenure" and why[0]["rank"] == 1
    ranked = [entry["column"] for entry in why]
    assert len(why) <= 5 and all(entry["alarm"] for entry in why)
    assert "gender" not in ranked[:1]
    assert "drift in tenure explains most" in performance.summary
    stored = {r.monitor: r for r in monitor_history(workspace, "churn")}
    assert stored["performance"].details["why"][0]["column"] == "tenure"


class _Clock:
    """A fake clock for the event log's receive stamps; every other use of time is real."""

    def __init__(self) -> None:
        self.now = datetime(2025, 1, 1, tzinfo=UTC)

    def time_ns(self) -> int:
        return int(self.now.timestamp() * 1_000_000) * 1_000

    def __getattr__(self, name: str) -> object:
        import time

        return getattr(time, name)


@pytest.mark.parametrize("exact", [False, True])
def test_lateness_jumping_above_its_usual_level_is_flagged(
    workspace: Steward, monkeypatch: pytest.MonkeyPatch, exact: bool
) -> None:
    import steward.data.events

    clock = _Clock()
    monkeypatch.setattr(steward.data.events, "time", clock)
    first = datetime(2025, 1, 1, tzinfo=UTC)
    with EventLog(workspace.settings.events_dir, fsync=False) as events:
        for hour in range(5 * 24):
            bucket = first + timedelta(hours=hour)
            # Four days received a minute after each hour; the fifth, seven hours late.
            clock.now = bucket + timedelta(hours=7 if hour >= 4 * 24 else 1, minutes=1)
            events.append(
                [
                    {
                        "kind": "prediction",
                        "system": "churn",
                        "id": f"p{hour}-{i}",
                        "event_time": bucket + timedelta(minutes=12 * i),
                        "score": 0.5,
                        "inputs": "{}",
                    }
                    for i in range(5)
                ]
            )
    monkeypatch.undo()
    with EventLog(workspace.settings.events_dir) as events:
        results = by_monitor(
            run_monitors(
                workspace,
                events,
                "churn",
                window=timedelta(days=1),
                at=first + timedelta(days=5),
                exact=exact,
            )
        )
    quality = results["data_quality"]
    assert quality.status == "breach", quality.summary
    assert "lateness p95" in quality.summary and "volume" not in quality.summary
    assert (
        quality.details["lateness_p95_seconds"] > 3 * quality.details["usual_lateness_p95_seconds"]
    )
    assert quality.details["usual_lateness_p95_seconds"] == pytest.approx(3600 + 60, rel=0.05)
    assert quality.details["lateness_p95_seconds"] == pytest.approx(7 * 3600 + 60, rel=0.05)
    assert quality.details["volume"] == quality.details["usual_volume"] == 24 * 5


def test_usual_volume_ignores_windows_from_before_the_system_went_live(
    tmp_path: Path, electricity: pd.DataFrame
) -> None:
    # 50 predictions a day from `live`, then 5 a day after four weeks: a window whose start came
    # before the first prediction is no "usual" level, while a real drop is still flagged.
    reference = electricity.iloc[: 28 * DAY]
    steward = workspace_with(tmp_path, reference, FEATURES)
    live = START + timedelta(days=100)
    busy = electricity.iloc[: 28 * 50].copy()
    busy["event_time"] = [live + timedelta(days=i / 50) for i in range(len(busy))]
    quiet = electricity.iloc[28 * 50 : 28 * 50 + 21 * 5].copy()
    quiet["event_time"] = [live + timedelta(days=28 + i / 5) for i in range(len(quiet))]
    window = timedelta(days=21)
    with EventLog(tmp_path / "events") as events:
        log_rows(events, pd.concat([busy, quiet]), FEATURES)
        for exact in (False, True):
            first = by_monitor(
                run_monitors(
                    steward,
                    events,
                    "electricity",
                    window=window,
                    at=live + timedelta(days=28),
                    exact=exact,
                )
            )["data_quality"]
            assert first.details["volume"] == 21 * 50
            assert first.details["usual_volume"] is None, first.summary
            assert "volume" not in first.summary
            later = by_monitor(
                run_monitors(
                    steward,
                    events,
                    "electricity",
                    window=window,
                    at=live + timedelta(days=49),
                    exact=exact,
                )
            )["data_quality"]
            assert later.status == "breach"
            assert later.details["usual_volume"] == 21 * 50
            assert f"volume {21 * 5} against a usual {21 * 50}" in later.summary
    steward.close()


def _scored_window(
    workspace: Steward, *, model_version: int, by_entity: set[int], seed: int
) -> tuple[MonitorResult, float]:
    """400 scored predictions over a week and their outcomes a day later, keyed by prediction id
    (by entity key alone for the indexes in ``by_entity``); the performance result and its AUC."""
    rng = np.random.default_rng(seed)
    n = 400
    scores = rng.random(n)
    labels = (rng.random(n) < scores).astype(float)
    start = datetime(2026, 3, 2, tzinfo=UTC)
    times = [start + timedelta(minutes=15 * i) for i in range(n)]
    predictions = [
        {
            "kind": "prediction",
            "system": "churn",
            "id": f"p{i}",
            "event_time": times[i],
            "entity_key": f"c{i}",
            "model_version": model_version,
            "score": float(scores[i]),
            "inputs": "{}",
        }
        for i in range(n)
    ]
    outcomes = [
        {
            "kind": "outcome",
            "system": "churn",
            "id": f"o{i}",
            # as clients send them: a prediction id alone, or an entity key alone
            "prediction_id": None if i in by_entity else f"p{i}",
            "entity_key": f"c{i}" if i in by_entity else None,
            "event_time": times[i] + timedelta(days=1),
            "value": float(labels[i]),
        }
        for i in range(n)
    ]
    with EventLog(workspace.settings.events_dir) as events:
        events.append(predictions)
        events.append(outcomes)
        results = by_monitor(
            run_monitors(
                workspace, events, "churn", window=timedelta(days=7), at=start + timedelta(days=7)
            )
        )
    return results["performance"], float(roc_auc_score(labels, scores))


def test_one_outcome_keyed_by_entity_leaves_the_others_joined_by_prediction_id(
    workspace: Steward, telco_model: object
) -> None:
    """One outcome without a prediction id switched every join to entity keys: no labels at all."""
    workspace.register_model(telco_model, system="churn", metrics={"roc_auc": 0.7})
    workspace.move_alias("churn", "champion", 1)
    performance, realized = _scored_window(workspace, model_version=1, by_entity={0}, seed=11)
    assert performance.status != "not_enough_data", performance.summary
    assert f"ROC AUC {realized:.3f}" in performance.summary


def test_a_versions_realized_auc_is_held_to_the_figure_it_was_registered_with(
    workspace: Steward, telco_model: object, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    """The alert compared v1's window with v2's registered figure (and named the wrong one)."""
    from steward.demo import train_churn_model

    workspace.register_model(telco_model, system="churn", metrics={"roc_auc": 0.95})
    workspace.register_model(
        train_churn_model(*telco, C=0.05), system="churn", metrics={"roc_auc": 0.6}
    )
    workspace.move_alias("churn", "champion", 2)
    # served by v1 before v2 became champion
    performance, _ = _scored_window(workspace, model_version=1, by_entity=set(), seed=5)
    assert performance.status == "breach", performance.summary
    assert "for v1 over" in performance.summary
    assert "below the 0.950 it was registered with" in performance.summary


def test_uplift_over_a_range_says_why_there_is_none_in_plain_words(workspace: Steward) -> None:
    """On a small system the dashboard said "the frame has no rows"."""
    from steward.monitoring.performance import uplift_between

    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"][0]["policy"] = {"thresholds": [{"at": 0.5, "action": "contact"}]}
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    start = datetime(2026, 3, 2, tzinfo=UTC)
    end = start + timedelta(days=7)
    events = workspace.events
    assert uplift_between(workspace, events, "churn", start, end) == (
        "no predictions in this range yet"
    )
    events.append(
        [
            {
                "kind": "prediction",
                "system": "churn",
                "id": f"p{i}",
                "score": 0.7,
                "event_time": start + timedelta(hours=i),
                "inputs": "{}",
            }
            for i in range(3)
        ]
    )
    said = uplift_between(workspace, events, "churn", start, end)
    assert said == "none of the range's 3 predictions has an outcome yet"
