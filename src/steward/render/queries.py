"""What the dashboard reads: stored monitor results, profiles and the typed tables, never raw events.

Every time series is capped at ``charts.MAX_POINTS`` points whatever the range: the ids and
window ends of a monitor's results are read first (cheap columns only), split into at most that many
groups, and only one result per group is loaded whole (the alarmed one when there is one, else the
last), so a year of hourly results costs 400 detail rows, not 8,760. Volume comes from the stored
profiles (hourly, and the daily rollups for ranges drawn in whole days), summed per time bucket
inside DuckDB.
"""

from __future__ import annotations

import bisect
import json
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import orjson
from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.orm import Session

from steward.data.profiles.store import ProfileStore
from steward.governance import review
from steward.model.registry import find_system
from steward.render.charts import MAX_POINTS
from steward.render.history import HistoryEntry, history_page
from steward.store import (
    ActionRow,
    AlertRow,
    AliasMove,
    AliasRow,
    ApprovalRow,
    MonitorResultRow,
    ReviewDecisionRow,
    SLOEvaluationRow,
    SuspensionRow,
)
from steward.workspace import Workspace

__all__ = [
    "RANGES",
    "HistoryEntry",
    "SampledResult",
    "latest_results",
    "latest_slo_evaluations",
    "load_results",
    "open_alerts",
    "open_suspension",
    "parse_range",
    "pending_approvals",
    "pending_review_count",
    "profile_roots",
    "recent_actions",
    "recent_alerts",
    "results_between",
    "sampled_ids_of",
    "sampled_results",
    "sampled_results_of",
    "sampled_slo_evaluations",
    "system_history",
    "volume_series",
]

#: Range choices offered on the system page, and their durations.
RANGES = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "365d": timedelta(days=365),
}


def parse_range(text: str | None, default: str = "7d") -> tuple[str, timedelta]:
    """The range a page was asked for; an unknown one falls back to ``default``.

    >>> parse_range("30d")
    ('30d', datetime.timedelta(days=30))
    >>> parse_range("bogus")[0]
    '7d'
    """
    key = text if text in RANGES else default
    return key, RANGES[key]


def profile_roots(steward: Workspace) -> list[Path]:
    """The profile stores of the workspace, newest first: the monitors keep one per champion
    reference sample, under ``<events_dir>/profiles/reference-<key>/``."""
    base = steward.settings.events_dir / "profiles"
    if not base.is_dir():
        return []
    roots = [path for path in base.glob("reference-*") if path.is_dir()]
    return sorted(roots, key=lambda path: path.stat().st_mtime, reverse=True)


def latest_results(session: Session, system_id: int) -> dict[str, MonitorResultRow]:
    """The newest stored result of each monitor of a system (SLO evaluations are apart)."""
    newest = (
        select(func.max(MonitorResultRow.id))
        .where(MonitorResultRow.system_id == system_id)
        .group_by(MonitorResultRow.monitor)
    )
    rows = session.scalars(select(MonitorResultRow).where(MonitorResultRow.id.in_(newest)))
    return {row.monitor: row for row in rows}


def last_window_end(session: Session, system_id: int, monitor: str) -> datetime | None:
    """When the newest stored window of a monitor ended, or None."""
    return session.scalar(
        select(func.max(MonitorResultRow.window_end)).where(
            MonitorResultRow.system_id == system_id, MonitorResultRow.monitor == monitor
        )
    )


def results_between(
    system_id: int, monitor: str, start: datetime, end: datetime
) -> Select[MonitorResultRow]:
    """The results of one monitor whose window ends in ``(start, end]``, oldest first."""
    return (
        select(MonitorResultRow)
        .where(
            MonitorResultRow.system_id == system_id,
            MonitorResultRow.monitor == monitor,
            MonitorResultRow.window_end > start,
            MonitorResultRow.window_end <= end,
        )
        .order_by(MonitorResultRow.window_end, MonitorResultRow.id)
    )


def sampled_results(
    session: Session,
    system_id: int,
    monitor: str,
    start: datetime,
    end: datetime,
    limit: int = MAX_POINTS,
) -> list[MonitorResultRow]:
    """At most ``limit`` results of one monitor whose window ends in ``(start, end]``, oldest first.

    Results are split into ``limit`` consecutive groups; each group is represented by its alarmed
    result if it has one (so no breach disappears from a long range), else by its last.
    """
    keys = session.execute(
        results_between(system_id, monitor, start, end).with_only_columns(
            MonitorResultRow.id, MonitorResultRow.status
        )
    ).all()
    if not keys:
        return []
    chosen = _sample_ids(keys, limit)
    rows = session.scalars(select(MonitorResultRow).where(MonitorResultRow.id.in_(chosen)))
    return sorted(rows, key=lambda row: (row.window_end, row.id))


@dataclass(frozen=True, slots=True)
class SampledResult:
    """A stored monitor result as the system page's panels read it: its window, status and
    details, without the row's other columns (``sampled_results_of`` returns these)."""

    id: int
    monitor: str
    window_start: datetime
    window_end: datetime
    status: str
    details: dict[str, Any]


def sampled_results_of(
    session: Session,
    system_id: int,
    monitors: Sequence[str],
    start: datetime,
    end: datetime,
    limit: int = MAX_POINTS,
    limits: Mapping[str, int] | None = None,
) -> dict[str, list[SampledResult]]:
    """``sampled_results`` for several monitors at once, in two queries instead of two per monitor
    (``sampled_ids_of``, then ``load_results``); ``limits`` sets the limit of some monitors apart.

    >>> sampled_results_of(session, 1, ["drift", "uplift"], start, end)  # doctest: +SKIP
    {'drift': [SampledResult(...), ...], 'uplift': [...]}
    """
    chosen = sampled_ids_of(session, system_id, monitors, start, end, limit, limits)
    loaded = load_results(session, [identifier for ids in chosen.values() for identifier in ids])
    sampled: dict[str, list[SampledResult]] = {monitor: [] for monitor in monitors}
    for result in loaded:
        sampled[result.monitor].append(result)
    return sampled


def sampled_ids_of(
    session: Session,
    system_id: int,
    monitors: Sequence[str],
    start: datetime,
    end: datetime,
    limit: int = MAX_POINTS,
    limits: Mapping[str, int] | None = None,
) -> dict[str, list[int]]:
    """The ids ``sampled_results`` would load for each monitor, oldest window first, in one query.

    The keys (id, status, monitor) of a year of hourly results are read from one index
    (``ix_monitor_results_system_monitor_end_status``) without touching the rows.
    """
    table = MonitorResultRow.__table__.c
    result = session.connection().execute(
        select(table.id, table.status, table.monitor)
        .where(
            table.system_id == system_id,
            table.monitor.in_(list(monitors)),
            table.window_end > start,
            table.window_end <= end,
        )
        .order_by(table.window_end, table.id)
    )
    # The driver's own tuples (an int and two strings need no conversion), not 18,000 Rows: the
    # garbage collector lets go of such tuples at once, while Rows pile up until a full
    # collection, which costs 150 ms in a server process.
    with result:
        keys = result.cursor.fetchall()
    by_monitor: dict[str, list[Any]] = {monitor: [] for monitor in monitors}
    for key in keys:
        by_monitor[key[2]].append(key)
    limits = limits or {}
    return {
        monitor: _sample_ids(found, limits.get(monitor, limit)) if found else []
        for monitor, found in by_monitor.items()
    }


def load_results(session: Session, ids: Sequence[int]) -> list[SampledResult]:
    """The stored results with these ids, in window order: only their window, status and
    details are read, the details decoded once by orjson."""
    if not ids:
        return []
    table = MonitorResultRow.__table__.c
    rows = (
        session.connection()
        .execute(
            select(
                table.id,
                table.monitor,
                table.window_start,
                table.window_end,
                table.status,
                cast(table.details, Text),  # decoded here, once, by orjson
            ).where(table.id.in_(list(ids)))
        )
        .all()
    )
    return [
        SampledResult(identifier, monitor, window_start, window_end, status, _decode(details))
        for identifier, monitor, window_start, window_end, status, details in sorted(
            rows, key=lambda row: (row[3], row[0])
        )
    ]


def _decode(text: str | None) -> dict[str, Any]:
    """Stored details as a dict; json.dumps may have written ``NaN``, which orjson refuses."""
    if text is None:
        return {}
    try:
        decoded = orjson.loads(text)
    except orjson.JSONDecodeError:
        decoded = json.loads(text)
    return decoded if isinstance(decoded, dict) else {}


def _sample_ids(keys: Sequence[Any], limit: int) -> list[int]:
    """One id per consecutive group of at most ``limit`` groups: the last breach, else the last.

    ``keys`` are ``(id, status, ...)`` tuples in window order."""
    size = math.ceil(len(keys) / limit)
    breaches = [index for index, key in enumerate(keys) if key[1] == "breach"]
    chosen = []
    for offset in range(0, len(keys), size):
        last = min(offset + size, len(keys)) - 1
        # The last breach at or before the group's last key, if it lies inside the group.
        found = bisect.bisect_right(breaches, last) - 1
        at = breaches[found] if found >= 0 and breaches[found] >= offset else last
        chosen.append(keys[at][0])
    return chosen


def latest_slo_evaluations(session: Session, system_id: int) -> dict[str, SLOEvaluationRow]:
    """The newest stored evaluation of each SLO of a system, by SLO name, in order of storing."""
    newest = (
        select(func.max(SLOEvaluationRow.id))
        .where(SLOEvaluationRow.system_id == system_id)
        .group_by(SLOEvaluationRow.name)
    )
    rows = session.scalars(
        select(SLOEvaluationRow)
        .where(SLOEvaluationRow.id.in_(newest))
        .order_by(SLOEvaluationRow.id)
    )
    return {row.name: row for row in rows}


def sampled_slo_evaluations(
    session: Session,
    system_id: int,
    name: str,
    start: datetime,
    end: datetime,
    limit: int = MAX_POINTS,
) -> list[SLOEvaluationRow]:
    """At most ``limit`` evaluations of one SLO made in ``(start, end]``, oldest first.

    Sampled as ``sampled_results`` samples: an alerting evaluation (status ``breach``) represents
    its group when there is one.
    """
    keys = session.execute(
        select(SLOEvaluationRow.id, SLOEvaluationRow.status)
        .where(
            SLOEvaluationRow.system_id == system_id,
            SLOEvaluationRow.name == name,
            SLOEvaluationRow.window_end > start,
            SLOEvaluationRow.window_end <= end,
        )
        .order_by(SLOEvaluationRow.window_end, SLOEvaluationRow.id)
    ).all()
    if not keys:
        return []
    chosen = _sample_ids(keys, limit)
    rows = session.scalars(select(SLOEvaluationRow).where(SLOEvaluationRow.id.in_(chosen)))
    return sorted(rows, key=lambda row: (row.window_end, row.id))


def volume_series(
    roots: Sequence[Path], system: str, start: datetime, end: datetime, limit: int = MAX_POINTS
) -> list[tuple[datetime, int]]:
    """Predictions per time bucket from the stored profiles, at most ``limit`` buckets.

    Every profiled column counts every prediction of its bucket, so the bucket's volume is the
    largest per-column count (summed over the partial rows a bucket may have); stores of several
    references may profile the same events, so the largest over stores is taken too (per bucket,
    or per day when the step is whole days). A step of more than half a day is rounded up to whole
    days, and then the days each store has rolled up (``steward.data.profiles.rollup``) are read
    as one row per column instead of 24: a year is 365 rows per column, not 8,760.
    """
    step = max(3600, math.ceil((end - start).total_seconds() / limit / 3600) * 3600)
    if step > _DAY_SECONDS // 2:
        step = math.ceil(step / _DAY_SECONDS) * _DAY_SECONDS
    parts = []
    for root in roots:
        store = ProfileStore(root)
        hourly = [str(path) for path in store.hourly_files(system)]
        if not hourly:
            continue
        rolled = store.rolled_window(system, start, end) if step % _DAY_SECONDS == 0 else None
        runs = [] if rolled is None else rolled.runs
        parts.append(_volume_part(str(root), hourly, runs, rolled=False))
        if rolled is not None and rolled.files:
            daily = [str(path) for path in rolled.files]
            parts.append(_volume_part(str(root), daily, runs, rolled=True))
    if not parts:
        return []
    # One column's counts per bucket and store: the largest column is the bucket's volume. With
    # a step of whole days, each store's buckets are summed per day first (a rolled day is one
    # bucket already); then the largest store per hour or day, summed over the step.
    unit = _DAY_SECONDS if step % _DAY_SECONDS == 0 else None
    per_unit = (
        f"SELECT time_bucket(to_seconds({unit}), b, {_EPOCH}) AS b, store, sum(n) AS n "
        "FROM per_bucket GROUP BY 1, 2"
        if unit
        else "SELECT b, store, n FROM per_bucket"
    )
    sql = f"""
        WITH per_bucket AS (
            SELECT b, store, max(n) AS n FROM (
                SELECT b, store, "column", sum("count") AS n
                FROM ({" UNION ALL ".join(parts)})
                WHERE b >= $start AND b < $end
                GROUP BY 1, 2, 3
            ) GROUP BY b, store
        )
        SELECT epoch(time_bucket(to_seconds($step), b, {_EPOCH})) AS t, sum(n) AS n
        FROM (SELECT b, max(n) AS n FROM ({per_unit}) GROUP BY b)
        GROUP BY t ORDER BY t
    """
    with _duckdb() as connection:
        connection.execute("SET TimeZone = 'UTC'")
        rows = connection.execute(sql, {"step": step, "start": start, "end": end}).fetchall()
    return [(datetime.fromtimestamp(seconds, UTC), int(count)) for seconds, count in rows]


_DATABASE: list[duckdb.DuckDBPyConnection] = []
_DATABASE_LOCK = threading.Lock()


def _duckdb() -> duckdb.DuckDBPyConnection:
    """A new session (a cursor) on one in-memory DuckDB kept by the process: opening a database
    costs 15 ms a page, a cursor 0.2 ms. Each cursor has its own settings and its own thread."""
    with _DATABASE_LOCK:
        if not _DATABASE:
            _DATABASE.append(duckdb.connect())
        return _DATABASE[0].cursor()


_DAY_SECONDS = 86_400
_EPOCH = "TIMESTAMPTZ '1970-01-01 00:00:00+00'"


def _volume_part(
    store: str, files: Sequence[str], runs: Sequence[tuple[datetime, datetime]], *, rolled: bool
) -> str:
    """The bucket, store, column and count of some profile files, as SQL: hourly files without
    the rolled days ``runs``, or (``rolled``) the rollup files' rows of those days only."""
    listed = ", ".join(_quote(name) for name in files)
    select = (
        f'SELECT bucket_start AS b, {_quote(store)} AS store, "column", "count" '
        f"FROM read_parquet([{listed}], union_by_name = true)"
    )
    if not runs:
        return select
    inside = " OR ".join(
        f"(bucket_start >= TIMESTAMPTZ {_quote(low.isoformat())} AND "
        f"bucket_start < TIMESTAMPTZ {_quote(high.isoformat())})"
        for low, high in runs
    )
    return f"{select} WHERE {'' if rolled else 'NOT '}({inside})"


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def open_alerts(session: Session, system_id: int | None = None) -> list[AlertRow]:
    """Alerts not yet resolved (firing or acknowledged), newest first."""
    query = select(AlertRow).where(AlertRow.state != "resolved")
    if system_id is not None:
        query = query.where(AlertRow.system_id == system_id)
    return list(session.scalars(query.order_by(AlertRow.fired_at.desc(), AlertRow.id.desc())))


def recent_alerts(session: Session, system_id: int, limit: int = 20) -> list[AlertRow]:
    """The newest alerts of a system, whatever their state."""
    return list(
        session.scalars(
            select(AlertRow)
            .where(AlertRow.system_id == system_id)
            .order_by(AlertRow.fired_at.desc(), AlertRow.id.desc())
            .limit(limit)
        )
    )


def recent_actions(
    session: Session, system_id: int, limit: int = 20, since: datetime | None = None
) -> list[ActionRow]:
    """The newest actions playbooks (or people) took on a system."""
    query = select(ActionRow).where(ActionRow.system_id == system_id)
    if since is not None:
        query = query.where(ActionRow.created_at >= since)
    return list(
        session.scalars(
            query.order_by(ActionRow.created_at.desc(), ActionRow.id.desc()).limit(limit)
        )
    )


def pending_approvals(session: Session, system_id: int | None = None) -> list[ApprovalRow]:
    """Approvals waiting for a person, oldest first."""
    query = select(ApprovalRow).where(ApprovalRow.state == "pending")
    if system_id is not None:
        query = query.where(ApprovalRow.system_id == system_id)
    return list(session.scalars(query.order_by(ApprovalRow.requested_at, ApprovalRow.id)))


def open_suspension(session: Session, system_id: int) -> SuspensionRow | None:
    """The system's open suspension (``ended_at`` null), if any."""
    return session.scalars(
        select(SuspensionRow)
        .where(SuspensionRow.system_id == system_id, SuspensionRow.ended_at.is_(None))
        .order_by(SuspensionRow.id.desc())
    ).first()


def aliases(session: Session, system_id: int) -> list[AliasRow]:
    """Where each alias of a system points now."""
    return list(
        session.scalars(
            select(AliasRow).where(AliasRow.system_id == system_id).order_by(AliasRow.name)
        )
    )


def alias_moves(session: Session, system_id: int, limit: int = 50) -> list[AliasMove]:
    """The newest alias moves of a system, newest first."""
    return list(
        session.scalars(
            select(AliasMove)
            .where(AliasMove.system_id == system_id)
            .order_by(AliasMove.id.desc())
            .limit(limit)
        )
    )


def pending_review_count(steward: Workspace, events: Any, system: str) -> int | None:
    """How many predictions wait for review, every one (no cap); None without an event log."""
    if events is None:
        return None
    return review.count_pending_reviews(steward, events, system)


def pending_review_items(steward: Workspace, events: Any, system: str, limit: int = 100) -> Any:
    """The review queue (``steward.governance.review.pending_reviews``), or None without an event log."""
    if events is None:
        return None
    return review.pending_reviews(steward, events, system, limit=limit)


def system_history(
    session: Session, system: str | None, page: int, page_size: int = 50
) -> tuple[list[HistoryEntry], bool]:
    """One page of the merged history, newest first, and whether an older page exists."""
    return history_page(session, system, page, page_size)


def system_id_of(session: Session, name: str) -> int:
    """The store id of a system, raising the usual unknown-system error."""
    return find_system(session, name).id


def review_decisions(
    session: Session, system_id: int, since: datetime
) -> Sequence[ReviewDecisionRow]:
    """Review decisions made since ``since``, newest first."""
    return list(
        session.scalars(
            select(ReviewDecisionRow)
            .where(ReviewDecisionRow.system_id == system_id, ReviewDecisionRow.decided_at >= since)
            .order_by(ReviewDecisionRow.decided_at.desc())
        )
    )
