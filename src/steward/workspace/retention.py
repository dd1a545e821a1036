"""Retention per system: each system's events are kept its own ``retention_days`` (a high-risk
system at least 180), then deleted by whole UTC days; ``verify_retention`` reads what remains and
proves nothing older than each cutoff is left.

What this covers: the event log's Parquet files and write-ahead segments (the views read both), the
review decisions (with their notes) decided before the cutoff, and the retrain exports
(``.steward/retrain/<system>-<time>/``) whose data reaches back before it. The removed decisions
are bound to an audit entry, so ``steward audit verify`` expects them gone. Reference samples stored
with model versions are not trimmed: they are the version's training data, kept as long as the
version is, and ``steward erase`` removes a subject from them (docs/retention.md).

Example::

    for run in run_retention(steward, steward.events):
        print(run.system, run.days, run.removed)
    verify_retention(steward, steward.events).ok
"""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Final

from sqlalchemy import func, select

from steward.data.events import EventLog
from steward.store import ReviewDecisionRow, System, audit
from steward.workspace.workspace import Workspace

__all__ = [
    "EXPORTS",
    "EXPORT_SPAN",
    "RetentionCheck",
    "RetentionRun",
    "export_folders",
    "export_start",
    "run_retention",
    "verify_retention",
]

_VIEWS: Final = ("predictions", "outcomes", "shadows", "llm_calls")
#: Where ``steward retrain`` exports its training sets, one folder per run; ``export.json`` in a
#: folder says the span of its data (``start``, ``end``).
EXPORTS: Final = "retrain"
EXPORT_SPAN: Final = "export.json"


@dataclass(frozen=True)
class RetentionRun:
    """What retention did to one system: its period, the cutoff and the day partitions removed."""

    system: str
    days: int
    cutoff: datetime
    removed: int
    #: Review decisions (with their notes) decided before the cutoff, deleted.
    review_decisions: int = 0
    #: Retrain export folders whose data began before the cutoff, deleted.
    exports: int = 0


@dataclass(frozen=True)
class RetentionCheck:
    """What ``verify_retention`` read: per system and view, the oldest event kept, and each one
    found before its system's cutoff day."""

    at: datetime
    oldest: dict[str, dict[str, str | None]] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations


def cutoffs(workspace: Workspace, events: EventLog) -> dict[str, int]:
    """Days kept per system with events: its own period, else the workspace's setting."""
    known = {info.name for info in workspace.systems()}
    on_disk = {path.name.removeprefix("system=") for path in events.root.glob("kind=*/system=*")}
    return {
        name: workspace.retention_days(name) if name in known else workspace.settings.retention_days
        for name in sorted(known | on_disk)
    }


def run_retention(
    workspace: Workspace, events: EventLog, now: datetime | None = None
) -> list[RetentionRun]:
    """Delete each system's day partitions dated before its cutoff, then its review decisions and
    retrain exports older than it; one run per system."""
    moment = now or datetime.now(UTC)
    known = {info.name for info in workspace.systems()}
    runs = []
    for system, days in cutoffs(workspace, events).items():
        cutoff = moment - timedelta(days=days)
        removed = events.delete_before(cutoff, system)
        decisions = _trim_decisions(workspace, system, cutoff) if system in known else 0
        exports = _trim_exports(workspace, system, cutoff)
        runs.append(RetentionRun(system, days, cutoff, removed, decisions, exports))
    return runs


def _trim_decisions(workspace: Workspace, system: str, cutoff: datetime) -> int:
    """Delete the system's review decisions made before ``cutoff``, bound to one audit entry."""
    with workspace.store.write() as session:
        rows = session.scalars(
            select(ReviewDecisionRow)
            .join(System, System.id == ReviewDecisionRow.system_id)
            .where(System.name == system, ReviewDecisionRow.decided_at < cutoff)
        ).all()
        if not rows:
            return 0
        for row in rows:
            session.delete(row)
        session.flush()
        audit.record(
            session,
            actor=workspace.actor,
            action="retention.review_decisions",
            target=f"{system}/review_decisions",
            details={"cutoff": cutoff.isoformat(), "removed": len(rows)},
            bind=list(rows),
        )
    if workspace.store.dialect == "sqlite":  # secure_delete zeroed the rows; empty the WAL too
        with workspace.store.engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(rows)


def export_folders(workspace: Workspace, system: str) -> list[Path]:
    """The system's retrain export folders, oldest first."""
    root = workspace.settings.store_dir / EXPORTS
    pattern = re.compile(rf"{re.escape(system)}-\d{{8}}T\d{{6}}(-\d+)?")
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and pattern.fullmatch(p.name))


def export_start(folder: Path) -> datetime:
    """When the export's data begins: ``export.json``'s ``start``; for an export written before it
    existed, the time in the folder's name (when the export was made), the latest it can begin."""
    try:
        return datetime.fromisoformat(json.loads((folder / EXPORT_SPAN).read_text())["start"])
    except (OSError, ValueError, KeyError, TypeError):
        stamp = re.findall(r"\d{8}T\d{6}", folder.name)[-1]
        return datetime.strptime(stamp, "%Y%m%dT%H%M%S").replace(tzinfo=UTC)


def _trim_exports(workspace: Workspace, system: str, cutoff: datetime) -> int:
    """Delete the system's export folders whose data begins before ``cutoff``, with one audit
    entry naming them."""
    old = [folder for folder in export_folders(workspace, system) if export_start(folder) < cutoff]
    for folder in old:
        shutil.rmtree(folder)
    if old:
        with workspace.store.write() as session:
            audit.record(
                session,
                actor=workspace.actor,
                action="retention.exports",
                target=f"{system}/retrain",
                details={"cutoff": cutoff.isoformat(), "removed": [f.name for f in old]},
            )
    return len(old)


def verify_retention(
    workspace: Workspace, events: EventLog, now: datetime | None = None
) -> RetentionCheck:
    """Read every event view (Parquet and write-ahead segments) and find any event older than its
    system's cutoff day; retention deletes whole UTC days, so the cutoff day itself may remain."""
    moment = now or datetime.now(UTC)
    days = cutoffs(workspace, events)
    check = RetentionCheck(moment)
    for view in _VIEWS:
        rows = events.query(
            f"SELECT system, min(event_time) AS oldest FROM {view} GROUP BY system"
        ).to_pylist()
        for row in rows:
            system, oldest = row["system"], row["oldest"]
            check.oldest.setdefault(system, {})[view] = oldest.isoformat() if oldest else None
            kept = days.get(system, workspace.settings.retention_days)
            first_day = datetime.combine((moment - timedelta(days=kept)).date(), time(), UTC)
            if oldest is not None and oldest < first_day:
                check.violations.append(
                    f"{view} of {system!r}: an event dated {oldest:%Y-%m-%d %H:%M} UTC remains, "
                    f"before the cutoff day {first_day:%Y-%m-%d} ({kept} days kept)"
                )
    _verify_kept_elsewhere(workspace, moment, days, check)
    return check


def _verify_kept_elsewhere(
    workspace: Workspace, moment: datetime, days: dict[str, int], check: RetentionCheck
) -> None:
    """Review decisions and retrain exports older than their system's cutoff are violations."""
    with workspace.store.read() as session:
        oldest = dict(
            session.execute(
                select(System.name, func.min(ReviewDecisionRow.decided_at))
                .join(System, System.id == ReviewDecisionRow.system_id)
                .group_by(System.name)
            ).all()
        )
    for system, kept in days.items():
        cutoff = moment - timedelta(days=kept)
        decided = oldest.get(system)
        check.oldest.setdefault(system, {})["review_decisions"] = (
            decided.isoformat() if decided else None
        )
        if decided is not None and decided < cutoff:
            check.violations.append(
                f"review decisions of {system!r}: one decided {decided:%Y-%m-%d %H:%M} UTC remains, "
                f"before the cutoff {cutoff:%Y-%m-%d %H:%M} ({kept} days kept)"
            )
        for folder in export_folders(workspace, system):
            if export_start(folder) < cutoff:
                check.violations.append(
                    f"retrain export {folder.name} of {system!r} holds data from before the "
                    f"cutoff {cutoff:%Y-%m-%d %H:%M} ({kept} days kept)"
                )
