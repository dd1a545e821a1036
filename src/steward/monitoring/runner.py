"""Monitors: checks over a window of the prediction log, stored, with a breach or not.

``run_monitors(steward, events, system, window=..., at=...)`` runs, for the window ``[at - window, at)``:

- ``drift``: the window's inputs against the champion's reference sample (stored at registration):
  an alarm needs significance for the sample size after Benjamini–Hochberg and an effect above the
  practical floor (``steward.data.drift``);
- ``data_quality``: contract violations, null rates against the reference's, unseen categories and
  values outside the reference's range, and the window's volume and lateness (received minus event
  time, p95) against the windows before;
- ``performance`` (binary systems, once outcomes have arrived): realized metrics per model version
  with intervals, and per segment (``monitors.segments``); a breach when the window's ROC AUC
  interval lies wholly below the ROC AUC the champion was registered with, less ``AUC_TOLERANCE``;
- ``estimated_performance`` (binary systems): CBPE on the champion's scores, before labels arrive;
  a breach when the estimated ROC AUC's band lies wholly below the same line;
- ``uplift`` (when the policy keeps a holdout): the outcome rate of actioned against held-out
  entities of the same intended action, reported, never a breach by itself;

and stores each result (``monitor_results`` in the metadata store). A monitor with too little data
says so (``not_enough_data``) rather than passing or failing. When a performance monitor breaches
and drift alarmed, ``details["why"]`` ranks the drifted features by drift times importance.

Drift and data quality read hourly profiles (``steward.monitoring.profiles``), so a window costs a merge
of its buckets, whatever its row count; ``exact=True`` reads the window's raw rows instead. The
performance monitors read the window's predictions (they join outcomes row by row).
``docs/monitoring.md`` has the thresholds and why.
"""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd
from sqlalchemy import select

from steward.data.drift import DriftReport, compare
from steward.data.events import EventLog
from steward.data.profiles import ColumnProfile, DatasetProfile, compare_profiles
from steward.data.profiles.store import LATENESS_COLUMN
from steward.errors import NotFoundError
from steward.model.registry import find_system
from steward.monitoring.profiles import (
    ProfileContext,
    out_of_range_shares,
    profile_context,
    window_counts,
)
from steward.monitoring.result import MIN_ROWS, MonitorResult
from steward.store import MonitorResultRow, audit, utcnow
from steward.workspace import Workspace
from steward.workspace.systems import SystemInfo

__all__ = [
    "LATENESS_FACTOR",
    "monitor_history",
    "run_monitors",
    "sync_profiles",
]

VOLUME_WINDOWS: Final = 4
#: An earlier window counts towards the usual level only when the system's first prediction came
#: no later than this share of a window after that window began.
PARTIAL_SLACK: Final = 0.05
#: A window's volume outside [usual / VOLUME_FACTOR, usual * VOLUME_FACTOR] is flagged.
VOLUME_FACTOR: Final = 2.0
#: A p95 lateness above LATENESS_FACTOR times the usual one (and longer by LATENESS_FLOOR_SECONDS,
#: or 1% of the window if that is shorter) is flagged.
LATENESS_FACTOR: Final = 3.0
LATENESS_FLOOR_SECONDS: Final = 60.0
#: Shares of a window above which violations, new nulls, unseen categories or out-of-range values
#: are flagged.
QUALITY_SHARE: Final = 0.05


def run_monitors(
    steward: Workspace,
    events: EventLog,
    system: str,
    *,
    window: timedelta,
    at: datetime | None = None,
    store: bool = True,
    exact: bool = False,
    settle: timedelta = timedelta(seconds=30),
) -> list[MonitorResult]:
    """Run every monitor of ``system`` over ``[at - window, at)``; store and return the results.

    ``exact=True`` reads the window's raw rows for drift and data quality instead of profiles.
    ``settle`` is how long the profile store waits before storing an event (it profiles newer ones
    for this run only, so every acknowledged event counts).

    Example::

        results = run_monitors(steward, events, "churn", window=timedelta(days=7))
        [r.monitor for r in results if r.breach]
    """
    end = (at or datetime.now(UTC)).astimezone(UTC)
    start = end - window
    info = steward.system(system)
    full_reference = _reference(steward, system)
    reference = _inputs_of(info, full_reference)
    binary = info.task == "binary"
    predictions = None
    if exact or binary:
        predictions = events.scan("prediction", system, start=start, end=end).to_pandas()
    report: DriftReport | None
    if exact:
        assert predictions is not None
        inputs = _inputs(predictions)
        drift_result, report = _drift(system, start, end, reference, inputs)
        quality = _data_quality(events, system, start, end, window, predictions, inputs, reference)
    else:
        context = profile_context(steward, events, system, reference, settle=settle)
        drift_result, report = _profile_drift(context, start, end)
        quality = _profile_quality(context, start, end, window)
    results = [drift_result, quality]
    if binary and predictions is not None and not predictions.empty:
        # Imported here: monitor_performance builds MonitorResults, defined above.
        from steward.monitoring.performance import performance_monitors

        results.extend(
            performance_monitors(
                steward, events, info, (start, end), predictions, full_reference, report
            )
        )
    if store:
        _store(steward, results)
    return results


def _inputs(predictions: pd.DataFrame) -> pd.DataFrame:
    if predictions.empty:
        return pd.DataFrame()
    decoded = [json.loads(text) if isinstance(text, str) else {} for text in predictions["inputs"]]
    return pd.DataFrame.from_records(decoded, index=predictions.index)


def sync_profiles(
    steward: Workspace, events: EventLog, system: str, *, settle: timedelta = timedelta(seconds=30)
) -> None:
    """Bring the system's stored hourly profiles up to date, as a monitor run does first.

    Events received in the last ``settle`` wait for a later run; pass 0 when nothing is in flight
    (one writer that has acknowledged everything, as in the demo).
    """
    info = steward.system(system)
    profile_context(
        steward, events, system, _inputs_of(info, _reference(steward, system)), settle=settle
    )


def _inputs_of(info: SystemInfo, reference: pd.DataFrame | None) -> pd.DataFrame | None:
    """The reference sample's input columns: without the target and the entity key."""
    if reference is None:
        return None
    drop = [c for c in (info.target, info.entity_key) if c and c in reference.columns]
    return reference.drop(columns=drop)


def _reference(steward: Workspace, system: str) -> pd.DataFrame | None:
    try:
        return steward.reference_data(system, "champion")
    except NotFoundError:
        return None


def _not_enough(
    system: str, monitor: str, start: datetime, end: datetime, summary: str
) -> MonitorResult:
    return MonitorResult(system, monitor, start, end, "not_enough_data", summary)


_NO_REFERENCE: Final = "no reference: register the champion with --data to keep a sample"


# --- drift -------------------------------------------------------------------------------------


def _drift(
    system: str,
    start: datetime,
    end: datetime,
    reference: pd.DataFrame | None,
    current: pd.DataFrame,
) -> tuple[MonitorResult, DriftReport | None]:
    if reference is None:
        return _not_enough(system, "drift", start, end, _NO_REFERENCE), None
    columns = [c for c in reference.columns if c in current.columns]
    if len(current) < MIN_ROWS or not columns:
        text = f"{len(current)} predictions in the window; drift needs {MIN_ROWS}"
        return _not_enough(system, "drift", start, end, text), None
    report = compare(reference[columns], current[columns])
    result = _drift_result(system, (start, end), report, columns, len(current), len(reference))
    return result, report


def _profile_drift(
    context: ProfileContext, start: datetime, end: datetime
) -> tuple[MonitorResult, DriftReport | None]:
    system = context.system
    if context.reference is None:
        return _not_enough(system, "drift", start, end, _NO_REFERENCE), None
    window = context.window(start, end, context.input_columns)
    n_current = max((profile.count for profile in window.profiles.values()), default=0)
    columns = [
        name
        for name in context.input_columns
        if name in window.profiles
        and _has_values(window[name])
        and _has_values(context.reference[name])
    ]
    if n_current < MIN_ROWS or not columns:
        text = f"{n_current} predictions in the window; drift needs {MIN_ROWS}"
        return _not_enough(system, "drift", start, end, text), None
    report = compare_profiles(context.reference, window, columns=columns)
    result = _drift_result(
        system, (start, end), report, columns, n_current, context.reference_rows, mode="profile"
    )
    return result, report


def _has_values(profile: ColumnProfile) -> bool:
    if profile.kind == "numeric":
        return profile.finite_count > 0
    return int(profile.bin_counts.sum()) + profile.unseen_count > 0


def _drift_result(
    system: str,
    window: tuple[datetime, datetime],
    report: DriftReport,
    columns: list[str],
    n_current: int,
    n_reference: int,
    mode: str = "exact",
) -> MonitorResult:
    alarmed = report.alarmed_columns
    details = {
        "results": report.to_dict()["results"],
        "alarmed_columns": alarmed,
        "n_current": n_current,
        "n_reference": n_reference,
        "mode": mode,
    }
    if alarmed:
        text = f"drift in {len(alarmed)} of {len(columns)} columns: " + ", ".join(alarmed)
        return MonitorResult(system, "drift", *window, "breach", text, details)
    text = f"no drift in {len(columns)} columns over {n_current} predictions"
    return MonitorResult(system, "drift", *window, "ok", text, details)


# --- data quality ------------------------------------------------------------------------------


def _usual(
    counted: list[tuple[int, float | None]],
    first_seen: datetime | None,
    start: datetime,
    window: timedelta,
) -> tuple[float | None, float | None]:
    """The usual volume (mean) and p95 lateness (median) of the earlier windows, per window ``k``
    ``(count, p95)``. Only windows the system was live for all along count: one that began before
    its first prediction (by more than ``PARTIAL_SLACK`` of a window) would pass a half-empty
    start-up window off as the usual level.
    """
    complete = [
        (count, lateness)
        for k, (count, lateness) in enumerate(counted)
        if count > 0
        and first_seen is not None
        and first_seen <= start - window * (k + 1) + window * PARTIAL_SLACK
    ]
    usual_volume = float(np.mean([count for count, _ in complete])) if complete else None
    latenesses = [lateness for _, lateness in complete if lateness is not None]
    usual_lateness = float(statistics.median(latenesses)) if latenesses else None
    return usual_volume, usual_lateness


def _flow_problems(
    n_rows: int,
    usual_volume: float | None,
    lateness: float | None,
    usual_lateness: float | None,
    window: timedelta,
) -> list[str]:
    problems = []
    if usual_volume and not usual_volume / VOLUME_FACTOR <= n_rows <= VOLUME_FACTOR * usual_volume:
        problems.append(f"volume {n_rows} against a usual {usual_volume:.0f}")
    if lateness is not None and usual_lateness is not None:
        floor = min(LATENESS_FLOOR_SECONDS, window.total_seconds() / 100)
        if lateness > LATENESS_FACTOR * usual_lateness and lateness - usual_lateness > floor:
            problems.append(
                f"lateness p95 {_duration(lateness)} against a usual {_duration(usual_lateness)}"
            )
    return problems


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _empty_window(
    system: str, start: datetime, end: datetime, usual: float | None
) -> MonitorResult:
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


def _quality_result(
    system: str,
    window: tuple[datetime, datetime],
    problems: list[str],
    details: dict[str, Any],
) -> MonitorResult:
    if problems:
        return MonitorResult(
            system, "data_quality", *window, "breach", "; ".join(problems), details
        )
    text = f"{details['volume']} predictions, {details['violation_rate']:.1%} with violations"
    return MonitorResult(system, "data_quality", *window, "ok", text, details)


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
    # One scan of the windows before, split per window, rather than one scan each.
    earlier = events.scan(
        "prediction", system, start=start - window * VOLUME_WINDOWS, end=start
    ).to_pandas()
    # 0 for [start - window, start): an event exactly one window before start is in it.
    ages = (start - earlier["event_time"] - timedelta(microseconds=1)) // window
    late = (earlier["received_at"] - earlier["event_time"]).dt.total_seconds()
    counted = [
        (
            int((ages == k).sum()),
            float(late[ages == k].quantile(0.95)) if (ages == k).any() else None,
        )
        for k in range(VOLUME_WINDOWS)
    ]
    first_seen = earlier["event_time"].min() if len(earlier) else None
    usual_volume, usual_lateness = _usual(counted, first_seen, start, window)
    if n_rows == 0:
        return _empty_window(system, start, end, usual_volume)
    violated = (
        float(predictions["violations"].notna().mean()) if "violations" in predictions else 0.0
    )
    null_rates = inputs.isna().mean().to_dict()
    reference_nulls = reference.isna().mean().to_dict() if reference is not None else {}
    null_jumps = sorted(
        c for c, rate in null_rates.items() if rate > reference_nulls.get(c, 0.0) + QUALITY_SHARE
    )
    lateness = (predictions["received_at"] - predictions["event_time"]).dt.total_seconds()
    p95 = float(lateness.quantile(0.95))
    problems = []
    if violated > QUALITY_SHARE:
        problems.append(f"{violated:.1%} of records broke the contract")
    if null_jumps:
        problems.append("nulls up in " + ", ".join(null_jumps))
    problems += _flow_problems(n_rows, usual_volume, p95, usual_lateness, window)
    details = {
        "volume": n_rows,
        "usual_volume": usual_volume,
        "violation_rate": violated,
        "null_rates": null_rates,
        "lateness_p95_seconds": p95,
        "usual_lateness_p95_seconds": usual_lateness,
        "mode": "exact",
    }
    return _quality_result(system, (start, end), problems, details)


def _profile_quality(
    context: ProfileContext, start: datetime, end: datetime, window: timedelta
) -> MonitorResult:
    system = context.system
    before = context.rows(start - window * VOLUME_WINDOWS, start, [LATENESS_COLUMN])
    counted = window_counts(before, start, window, VOLUME_WINDOWS)
    first_seen = min(
        (row.bucket_start for row in before if row.column == LATENESS_COLUMN), default=None
    )
    usual_volume, usual_lateness = _usual(
        [
            (count, None if profile is None else profile.quantile(0.95))
            for count, profile in counted
        ],
        first_seen,
        start,
        window,
    )
    current = context.window(start, end)
    lateness = current.profiles.get(LATENESS_COLUMN)
    if lateness is None or lateness.count == 0:
        return _empty_window(system, start, end, usual_volume)
    n_rows, p95 = lateness.count, lateness.quantile(0.95)
    inputs = [name for name in context.input_columns if name in current.profiles]
    stats = _column_quality(context.reference, current, inputs)
    problems = _column_problems(stats)
    problems += _flow_problems(n_rows, usual_volume, p95, usual_lateness, window)
    details = {
        "volume": n_rows,
        "usual_volume": usual_volume,
        "violation_rate": max(stats["violation_rates"].values(), default=0.0),
        **stats,
        "lateness_p95_seconds": p95,
        "usual_lateness_p95_seconds": usual_lateness,
        "mode": "profile",
    }
    return _quality_result(system, (start, end), problems, details)


def _column_quality(
    reference: DatasetProfile | None, current: DatasetProfile, columns: list[str]
) -> dict[str, Any]:
    """Per column shares from the merged profiles: nulls, violations, unseen, out of range."""
    null_rates, violation_rates, unseen = {}, {}, {}
    for name in columns:
        profile = current[name]
        null_rates[name] = profile.null_count / profile.count
        violation_rates[name] = profile.violation_count / profile.count
        if profile.kind == "categorical" and profile.unseen_count:
            unseen[name] = {
                "share": profile.unseen_count / profile.count,
                "values": [value for value, _ in profile.unseen_values()[:10]],
            }
    reference_nulls = {}
    out_of_range: dict[str, dict[str, Any]] = {}
    if reference is not None:
        reference_nulls = {
            name: reference[name].null_count / max(reference[name].count, 1) for name in columns
        }
        out_of_range = out_of_range_shares(reference, current, columns)
    return {
        "null_rates": null_rates,
        "reference_null_rates": reference_nulls,
        "violation_rates": violation_rates,
        "unseen": unseen,
        "out_of_range": out_of_range,
    }


def _column_problems(stats: dict[str, Any]) -> list[str]:
    problems = []
    violated = {c: r for c, r in stats["violation_rates"].items() if r > QUALITY_SHARE}
    if violated:
        worst = max(violated, key=violated.__getitem__)
        problems.append(f"{violated[worst]:.1%} of records broke the contract on {worst}")
    reference_nulls = stats["reference_null_rates"]
    null_jumps = sorted(
        c
        for c, rate in stats["null_rates"].items()
        if rate > reference_nulls.get(c, 0.0) + QUALITY_SHARE
    )
    if null_jumps:
        problems.append("nulls up in " + ", ".join(null_jumps))
    for what, found in (
        ("unseen categories", stats["unseen"]),
        ("out of range", stats["out_of_range"]),
    ):
        flagged = sorted(c for c, entry in found.items() if entry["share"] > QUALITY_SHARE)
        if flagged:
            problems.append(f"{what} in " + ", ".join(flagged))
    return problems


# --- storage -----------------------------------------------------------------------------------


def _store(steward: Workspace, results: list[MonitorResult]) -> None:
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


def monitor_history(steward: Workspace, system: str, limit: int = 50) -> list[MonitorResult]:
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
