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

The monitors themselves live in ``drift.py``, ``quality.py`` and ``performance.py`` and are
registered through the ``steward_monitors`` hook (``monitors.py``); a plugin adds one the same way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pandas as pd
from sqlalchemy import select

from steward.data.events import EventLog
from steward.errors import NotFoundError
from steward.model.registry import find_system
from steward.monitoring.monitors import available_monitors
from steward.monitoring.profiles import profile_context
from steward.monitoring.quality import LATENESS_FACTOR
from steward.monitoring.result import MonitorResult
from steward.monitoring.window import MonitorWindow
from steward.store import MonitorResultRow, audit, utcnow
from steward.workspace import Workspace
from steward.workspace.systems import SystemInfo

__all__ = [
    "LATENESS_FACTOR",
    "monitor_history",
    "run_monitors",
    "sync_profiles",
]


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
    info = steward.system(system)
    full_reference = _reference(steward, system)
    run = MonitorWindow(
        steward,
        events,
        info,
        end - window,
        end,
        full_reference,
        _inputs_of(info, full_reference),
        exact=exact,
        settle=settle,
    )
    results = [result for monitor in available_monitors() for result in monitor.run(run)]
    if store:
        _store(steward, results)
    return results


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
