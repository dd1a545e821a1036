"""Monitors: checks over a window of the prediction log, stored, with a breach or not.

``run_monitors(steward, events, system, window=..., at=...)`` runs, for the window ``[at - window, at)``:

- ``drift``: the window's inputs against the champion's reference sample (stored at registration),
  with ``steward.drift.compare``: an alarm needs significance for the sample size after
  Benjamini–Hochberg and an effect above the practical floor;
- ``data_quality``: the share of records with contract violations, null rates against the
  reference's, volume against the windows before, and lateness (received minus event time);
- ``performance`` (binary systems, once outcomes have arrived for the window's predictions): realized
  metrics per model version with intervals; a breach when the window's ROC AUC interval lies wholly
  below the ROC AUC the champion was registered with, less ``AUC_TOLERANCE``;
- ``uplift`` (when the policy keeps a holdout): the outcome rate of actioned against held-out
  entities of the same intended action, with its interval; reported, never a breach by itself,
  since whether a lower outcome rate is good (churn) or bad (retention) is not declared yet;

and stores each result (``monitor_results`` in the metadata store). A monitor with too little data
says so (``not_enough_data``) rather than passing or failing. ``steward monitor run`` exits 1 on any
breach, for cron and CI.

This first cut reads the window's raw rows from the event log; reading merged per-bucket profiles
(``steward.profiles``) instead, so a window costs the same whatever its row count, is the next step.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import select

from steward import audit
from steward.core import Steward
from steward.drift import compare
from steward.errors import InvalidInputError, NotFoundError
from steward.events import EventLog
from steward.performance import join_outcomes, realized_performance
from steward.registry import find_system
from steward.store import MonitorResultRow, utcnow
from steward.uplift import uplift

__all__ = ["MonitorResult", "monitor_history", "parse_window", "run_monitors"]

MIN_ROWS = 100
VOLUME_WINDOWS = 4
AUC_TOLERANCE = 0.02


@dataclass(frozen=True)
class MonitorResult:
    system: str
    monitor: str
    window_start: datetime
    window_end: datetime
    status: str  # ok | breach | not_enough_data
    summary: str
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def breach(self) -> bool:
        return self.status == "breach"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window_start"] = self.window_start.isoformat()
        data["window_end"] = self.window_end.isoformat()
        return data


def parse_window(text: str) -> timedelta:
    """``7d``, ``24h``, ``30m`` or ``2w`` as a duration.

    >>> parse_window("7d")
    datetime.timedelta(days=7)
    """
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.isdigit() or int(value) == 0:
        raise InvalidInputError(f"window {text!r} is not a duration; write e.g. 7d, 24h, 30m or 2w")
    return timedelta(**{units[unit]: int(value)})


def run_monitors(
    steward: Steward,
    events: EventLog,
    system: str,
    *,
    window: timedelta,
    at: datetime | None = None,
    store: bool = True,
) -> list[MonitorResult]:
    """Run every monitor of ``system`` over ``[at - window, at)``; store and return the results."""
    end = (at or datetime.now(UTC)).astimezone(UTC)
    start = end - window
    info = steward.system(system)
    predictions = events.scan("prediction", system, start=start, end=end).to_pandas()
    inputs = _inputs(predictions)
    reference = _reference(steward, system, drop=[info.target, info.entity_key])
    results = [
        _drift(system, start, end, reference, inputs),
        _data_quality(events, system, start, end, window, predictions, inputs, reference),
    ]
    if info.task == "binary" and not predictions.empty:
        outcomes = events.scan("outcome", system, start=start).to_pandas()
        joined = _join(predictions, outcomes)
        results.append(_performance(steward, system, start, end, joined, info.config))
        action = _first_action(info.config)
        if action and predictions["holdout"].fillna(False).any():
            results.append(_uplift(system, start, end, joined, action))
    if store:
        _store(steward, results)
    return results


def _inputs(predictions: pd.DataFrame) -> pd.DataFrame:
    if predictions.empty:
        return pd.DataFrame()
    decoded = [json.loads(text) if isinstance(text, str) else {} for text in predictions["inputs"]]
    return pd.DataFrame.from_records(decoded)


def _reference(steward: Steward, system: str, drop: list[str]) -> pd.DataFrame | None:
    try:
        reference = steward.reference_data(system, "champion")
    except NotFoundError:
        return None
    return reference.drop(columns=[c for c in drop if c and c in reference.columns])


def _drift(
    system: str,
    start: datetime,
    end: datetime,
    reference: pd.DataFrame | None,
    current: pd.DataFrame,
) -> MonitorResult:
    if reference is None:
        return MonitorResult(
            system,
            "drift",
            start,
            end,
            "not_enough_data",
            "no reference: register the champion with --data to keep a sample",
        )
    columns = [c for c in reference.columns if c in current.columns]
    if len(current) < MIN_ROWS or not columns:
        return MonitorResult(
            system,
            "drift",
            start,
            end,
            "not_enough_data",
            f"{len(current)} predictions in the window; drift needs {MIN_ROWS}",
        )
    report = compare(reference[columns], current[columns])
    alarmed = report.alarmed_columns
    details = {
        "results": report.to_dict()["results"],
        "n_current": len(current),
        "n_reference": len(reference),
    }
    if alarmed:
        return MonitorResult(
            system,
            "drift",
            start,
            end,
            "breach",
            f"drift in {len(alarmed)} of {len(columns)} columns: " + ", ".join(alarmed),
            details,
        )
    return MonitorResult(
        system,
        "drift",
        start,
        end,
        "ok",
        f"no drift in {len(columns)} columns over {len(current)} predictions",
        details,
    )


def _data_quality(
    events: EventLog,
    system: str,
    start: datetime,
    end: datetime,
    window: timedelta,
    predictions: pd.DataFrame,
    inputs: pd.DataFrame,
    reference: pd.DataFrame | None,
) -> MonitorResult:
    n_rows = len(predictions)
    # One scan of the windows before, counted per window, rather than one scan each.
    earlier = events.scan("prediction", system, start=start - window * VOLUME_WINDOWS, end=start)
    ages = pd.Series(start - earlier["event_time"].to_pandas()) // window
    volumes = [int((ages == k).sum()) for k in range(VOLUME_WINDOWS)]
    usual = float(np.mean([v for v in volumes if v > 0])) if any(volumes) else None
    if n_rows == 0:
        status = "breach" if usual else "not_enough_data"
        return MonitorResult(
            system,
            "data_quality",
            start,
            end,
            status,
            "no predictions in the window" + (f" (usually {usual:.0f})" if usual else ""),
            {"volume": 0, "usual_volume": usual},
        )
    violated = predictions["violations"].notna().mean() if "violations" in predictions else 0.0
    null_rates = inputs.isna().mean().to_dict()
    reference_nulls = reference.isna().mean().to_dict() if reference is not None else {}
    null_jumps = {
        c: rate for c, rate in null_rates.items() if rate > reference_nulls.get(c, 0.0) + 0.05
    }
    lateness = (predictions["received_at"] - predictions["event_time"]).dt.total_seconds()
    problems = []
    if violated > 0.05:
        problems.append(f"{violated:.1%} of records broke the contract")
    if null_jumps:
        problems.append("nulls up in " + ", ".join(sorted(null_jumps)))
    if usual and not 0.5 * usual <= n_rows <= 2 * usual:
        problems.append(f"volume {n_rows} against a usual {usual:.0f}")
    details = {
        "volume": n_rows,
        "usual_volume": usual,
        "violation_rate": float(violated),
        "null_rates": null_rates,
        "lateness_p95_seconds": float(lateness.quantile(0.95)),
    }
    if problems:
        return MonitorResult(
            system, "data_quality", start, end, "breach", "; ".join(problems), details
        )
    return MonitorResult(
        system,
        "data_quality",
        start,
        end,
        "ok",
        f"{n_rows} predictions, {violated:.1%} with violations",
        details,
    )


def _join(predictions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    if outcomes.empty:
        joined = predictions.assign(outcome_value=np.nan, labeled=False)
    elif outcomes["prediction_id"].notna().all():
        joined = join_outcomes(predictions, outcomes, by="prediction_id")
    else:
        joined = join_outcomes(predictions, outcomes, by="entity_key")
    return joined


def _first_action(config: dict[str, Any]) -> str | None:
    thresholds = (config.get("policy") or {}).get("thresholds") or []
    return str(thresholds[0]["action"]) if thresholds else None


def _performance(
    steward: Steward,
    system: str,
    start: datetime,
    end: datetime,
    joined: pd.DataFrame,
    config: dict[str, Any],
) -> MonitorResult:
    labeled = joined[joined["labeled"]]
    if labeled.empty:
        return MonitorResult(
            system,
            "performance",
            start,
            end,
            "not_enough_data",
            f"no outcomes yet for the window's {len(joined)} predictions",
        )
    threshold = float(((config.get("policy") or {}).get("thresholds") or [{"at": 0.5}])[0]["at"])
    table = realized_performance(joined, task="binary", threshold=threshold)
    details = {
        "metrics": json.loads(table.to_json(orient="records")),
        "unlabeled_share": float(1 - joined["labeled"].mean()),
    }
    auc = table[(table["metric"] == "roc_auc") & (table["status"] == "ok")]
    if auc.empty:
        return MonitorResult(
            system,
            "performance",
            start,
            end,
            "not_enough_data",
            f"{len(labeled)} labeled predictions: " + str(table["status"].iloc[0]),
            details,
        )
    registered = steward.version(system, "champion").metrics.get("roc_auc")
    worst = auc.sort_values("upper").iloc[0]
    text = (
        f"ROC AUC {worst['value']:.3f} ({worst['lower']:.3f} to {worst['upper']:.3f}) for "
        f"v{int(worst['model_version'])} over {int(worst['n_labeled'])} labeled predictions"
    )
    if registered is not None and worst["upper"] < float(registered) - AUC_TOLERANCE:
        return MonitorResult(
            system,
            "performance",
            start,
            end,
            "breach",
            f"{text}, below the {float(registered):.3f} it was registered with",
            details,
        )
    return MonitorResult(system, "performance", start, end, "ok", text, details)


def _uplift(
    system: str, start: datetime, end: datetime, joined: pd.DataFrame, action: str
) -> MonitorResult:
    frame = joined[joined["labeled"]].rename(columns={"outcome_value": "value"})
    try:
        result = uplift(frame, action=action)
    except InvalidInputError as error:
        return MonitorResult(system, "uplift", start, end, "not_enough_data", str(error))
    if not result.enough_data:
        return MonitorResult(
            system,
            "uplift",
            start,
            end,
            "not_enough_data",
            result.reason or "not enough data",
            result.to_dict(),
        )
    # Reported, not judged: whether a lower outcome rate is good (churn) or bad (retention) is
    # not declared anywhere yet, so the uplift monitor never breaches on its own.
    return MonitorResult(system, "uplift", start, end, "ok", result.summary(), result.to_dict())


def _store(steward: Steward, results: list[MonitorResult]) -> None:
    with steward.store.write() as session:
        system_ids = {name: find_system(session, name).id for name in {r.system for r in results}}
        for result in results:
            session.add(
                MonitorResultRow(
                    system_id=system_ids[result.system],
                    monitor=result.monitor,
                    window_start=result.window_start,
                    window_end=result.window_end,
                    status=result.status,
                    summary=result.summary,
                    details=json.loads(json.dumps(result.details, default=str)),
                    created_at=utcnow(),
                )
            )
            if result.breach:
                audit.record(
                    session,
                    actor=steward.actor,
                    action=f"monitor.{result.monitor}.breach",
                    target=result.system,
                    details={"summary": result.summary},
                )


def monitor_history(steward: Steward, system: str, limit: int = 50) -> list[MonitorResult]:
    """The newest stored results of ``system``, newest first."""
    with steward.store.read() as session:
        system_row = find_system(session, system)
        rows = session.scalars(
            select(MonitorResultRow)
            .where(MonitorResultRow.system_id == system_row.id)
            .order_by(MonitorResultRow.id.desc())
            .limit(limit)
        )
        return [
            MonitorResult(
                system,
                row.monitor,
                row.window_start,
                row.window_end,
                row.status,
                row.summary,
                dict(row.details),
            )
            for row in rows
        ]
