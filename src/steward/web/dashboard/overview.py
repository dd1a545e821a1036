"""The overview's facts per system, read with a handful of aggregate queries per system."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward._util.times import parse_window
from steward.core import Steward
from steward.render import queries
from steward.render.status import (
    MonitorFact,
    SurfaceState,
    SystemFacts,
    surface_states,
)
from steward.store import AliasRow, MonitorResultRow
from steward.workspace.systems import SystemInfo

__all__ = ["gather_facts", "overview_rows"]


def gather_facts(
    steward: Steward, events: Any, session: Session, info: SystemInfo, now: datetime
) -> SystemFacts:
    """What the surface rules need about one system."""
    system_id = queries.system_id_of(session, info.name)
    latest = queries.latest_results(session, system_id)
    champion = session.get(AliasRow, (system_id, "champion"))
    alerts = queries.open_alerts(session, system_id)
    suspension = queries.open_suspension(session, system_id)
    drift = latest.get("drift")
    drifted: tuple[str, ...] = ()
    since = None
    if drift is not None and drift.status == "breach":
        drifted = tuple(
            dict.fromkeys(
                str(item.get("column"))
                for item in drift.details.get("results") or []
                if item.get("alarm")
            )
        )
        since = _breach_streak_start(session, system_id)
    every = parse_window(info.declared.monitors.every)
    return SystemFacts(
        name=info.name,
        now=now,
        champion=champion.version if champion else None,
        champion_since=champion.moved_at if champion else None,
        latest={
            name: MonitorFact(row.status, row.summary, row.window_start, row.window_end)
            for name, row in latest.items()
        },
        drifted_columns=drifted,
        drift_since=since,
        open_alerts=tuple((a.rule, a.severity, a.state, a.summary) for a in alerts),
        suspension=(suspension.mode, suspension.reason, suspension.started_at)
        if suspension
        else None,
        pending_reviews=queries.pending_review_count(steward, events, info.name),
        pending_approvals=len(queries.pending_approvals(session, system_id)),
        card_missing_use=not info.intended_use,
        monitor_every=every,
    )


def _breach_streak_start(session: Session, system_id: int) -> datetime | None:
    """The start of the first drift window of the current run of breaches."""
    last_calm = session.scalar(
        select(MonitorResultRow.window_end)
        .where(
            MonitorResultRow.system_id == system_id,
            MonitorResultRow.monitor == "drift",
            MonitorResultRow.status != "breach",
        )
        .order_by(MonitorResultRow.window_end.desc())
        .limit(1)
    )
    query = select(MonitorResultRow.window_start).where(
        MonitorResultRow.system_id == system_id,
        MonitorResultRow.monitor == "drift",
        MonitorResultRow.status == "breach",
    )
    if last_calm is not None:
        query = query.where(MonitorResultRow.window_end > last_calm)
    return session.scalar(query.order_by(MonitorResultRow.window_end).limit(1))


def overview_rows(
    steward: Steward, events: Any, session: Session
) -> list[tuple[SystemFacts, dict[str, SurfaceState]]]:
    """Each system's facts and surface states, by name."""
    now = datetime.now(UTC)
    rows = []
    for info in sorted(steward.systems(), key=lambda item: item.name):
        facts = gather_facts(steward, events, session, info, now)
        rows.append((facts, surface_states(facts)))
    return rows
