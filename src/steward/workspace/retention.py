"""Retention per system: each system's events are kept its own ``retention_days`` (a high-risk
system at least 180), then deleted by whole UTC days; ``verify_retention`` reads what remains and
proves nothing older than each cutoff is left.

What this covers and what it does not: the event log's Parquet files and write-ahead segments (the
views read both), by system. Reference samples stored with model versions, review decisions and
exported retrain sets are not yet trimmed by retention (docs/retention.md).

Example::

    for run in run_retention(steward, steward.events):
        print(run.system, run.days, run.removed)
    verify_retention(steward, steward.events).ok
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Final

from steward.data.events import EventLog
from steward.workspace.workspace import Workspace

__all__ = ["RetentionCheck", "RetentionRun", "run_retention", "verify_retention"]

_VIEWS: Final = ("predictions", "outcomes", "shadows", "llm_calls")


@dataclass(frozen=True)
class RetentionRun:
    """What retention did to one system: its period, the cutoff and the day partitions removed."""

    system: str
    days: int
    cutoff: datetime
    removed: int


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
    """Delete each system's day partitions dated before its cutoff; one run per system."""
    moment = now or datetime.now(UTC)
    runs = []
    for system, days in cutoffs(workspace, events).items():
        cutoff = moment - timedelta(days=days)
        runs.append(RetentionRun(system, days, cutoff, events.delete_before(cutoff, system)))
    return runs


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
    return check
