"""Incidents: an alert (or a person's finding) declared an incident, with the EU AI Act's clock.

A person declares one (``steward incidents declare``), or a playbook does for the rules it is
given (the step ``declare_incident``). Its ``kind`` sets the clock of Art. 73, counted from the
declaration, when the deployer became aware:

- ``serious``: report within 15 days (Art. 73(2));
- ``death``: within 10 days (Art. 73(4));
- ``widespread``: a widespread infringement or a serious disruption of critical infrastructure,
  within 2 days (Art. 73(3));
- ``other``: an internal incident, no legal clock.

Actions taken are appended as they happen; closing needs a written cause. Every change is an
audit entry with the target ``SYSTEM/incident/ID``, and the timeline is assembled from the audit
tree: the incident's own entries and those of its alert.

Example::

    incident = declare_incident(steward, "churn", "recall fell under 0.6", kind="serious",
                                alert_id=12)
    add_action(steward, incident.id, "suspended to review; retraining on last month")
    close_incident(steward, incident.id, cause="a billing feed sent cents for 3 days")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import or_, select

from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.model.registry import find_system
from steward.store import MAX_ROW_ID, AlertRow, AuditRow, IncidentRow, audit, utcnow
from steward.workspace import Workspace

__all__ = [
    "KINDS",
    "MIN_CAUSE_CHARS",
    "SEVERITIES",
    "Incident",
    "add_action",
    "close_incident",
    "declare_incident",
    "get_incident",
    "list_incidents",
    "timeline",
]

#: Days to report by kind (EU AI Act Art. 73(2), (3), (4)); None: no legal clock.
KINDS: Final[dict[str, int | None]] = {"serious": 15, "death": 10, "widespread": 2, "other": None}
SEVERITIES: Final = ("critical", "major", "minor")
#: A cause shorter than this is not a cause ("fixed", "n/a").
MIN_CAUSE_CHARS: Final = 20


@dataclass(frozen=True)
class Incident:
    """An incident as people read it; ``time_left`` counts down to ``report_due_at``."""

    id: int
    system: str
    title: str
    kind: str
    severity: str
    state: str
    declared_by: str
    declared_at: datetime
    report_due_at: datetime | None
    alert_id: int | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    cause: str = ""
    closed_by: str | None = None
    closed_at: datetime | None = None

    def time_left(self, now: datetime | None = None) -> timedelta | None:
        """Until the report is due (negative once overdue); None without a legal clock."""
        if self.report_due_at is None:
            return None
        return self.report_due_at - (now or utcnow())

    def clock(self, now: datetime | None = None) -> str:
        """The Art. 73 clock in words: '3 days 4 hours left', 'overdue by 2 hours', or why not."""
        if self.report_due_at is None:
            return "no legal clock (internal incident)"
        if self.state == "closed":
            return f"closed; the report was due {self.report_due_at:%Y-%m-%d %H:%M} UTC"
        left = self.time_left(now)
        assert left is not None
        words = _duration(abs(left))
        return f"{words} left to report" if left >= timedelta(0) else f"report overdue by {words}"


def declare_incident(
    steward: Workspace,
    system: str,
    title: str,
    *,
    kind: str = "serious",
    severity: str = "major",
    alert_id: int | None = None,
    actor: str | None = None,
    at: datetime | None = None,
) -> Incident:
    """Declare an incident on ``system`` (from alert ``alert_id``, if any); the clock starts now."""
    if kind not in KINDS:
        raise InvalidInputError(
            f"incident kind {kind!r} is not one of {', '.join(KINDS)} (serious: 15 days to "
            "report, death: 10, widespread: 2, other: no legal clock)"
        )
    if severity not in SEVERITIES:
        raise InvalidInputError(f"severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    if not title.strip():
        raise InvalidInputError("an incident needs a title saying what happened")
    declared = at or utcnow()
    days = KINDS[kind]
    who = actor or steward.actor
    with steward.store.write() as session:
        system_row = find_system(session, system)
        if alert_id is not None:
            alert = session.get(AlertRow, alert_id) if 0 < alert_id <= MAX_ROW_ID else None
            if alert is None or alert.system_id != system_row.id:
                raise NotFoundError(
                    f"{system!r} has no alert #{alert_id}; see `steward alerts list {system}`"
                )
        row = IncidentRow(
            system_id=system_row.id,
            alert_id=alert_id,
            title=title.strip(),
            kind=kind,
            severity=severity,
            state="open",
            declared_by=who,
            declared_at=declared,
            report_due_at=None if days is None else declared + timedelta(days=days),
            actions=[],
            cause="",
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=who,
            action="incident.declare",
            target=f"{system}/incident/{row.id}",
            details={"title": row.title, "kind": kind, "severity": severity, "alert_id": alert_id},
        )
        return _incident(system, row)


def add_action(
    steward: Workspace, incident_id: int, text: str, *, actor: str | None = None
) -> Incident:
    """Append what was done to an open incident."""
    if not text.strip():
        raise InvalidInputError("an action needs a text saying what was done")
    who = actor or steward.actor
    with steward.store.write() as session:
        row, system = _open_row(session, incident_id)
        entry = {"at": utcnow().isoformat(), "by": who, "text": text.strip()}
        row.actions = [*row.actions, entry]
        audit.record(
            session,
            actor=who,
            action="incident.action",
            target=f"{system}/incident/{row.id}",
            details={"text": entry["text"]},
        )
        return _incident(system, row)


def close_incident(
    steward: Workspace, incident_id: int, *, cause: str, actor: str | None = None
) -> Incident:
    """Close an incident; ``cause`` says what caused it, in at least ``MIN_CAUSE_CHARS`` letters."""
    if len(cause.strip()) < MIN_CAUSE_CHARS:
        raise InvalidInputError(
            f"closing incident #{incident_id} needs a written cause of at least "
            f"{MIN_CAUSE_CHARS} characters, got {cause.strip()!r}; say what caused it"
        )
    who = actor or steward.actor
    with steward.store.write() as session:
        row, system = _open_row(session, incident_id)
        row.state, row.cause, row.closed_by, row.closed_at = "closed", cause.strip(), who, utcnow()
        audit.record(
            session,
            actor=who,
            action="incident.close",
            target=f"{system}/incident/{row.id}",
            details={"cause": row.cause},
        )
        return _incident(system, row)


def get_incident(steward: Workspace, incident_id: int) -> Incident:
    """One incident by id."""
    with steward.store.read() as session:
        row = session.get(IncidentRow, incident_id) if 0 < incident_id <= MAX_ROW_ID else None
        if row is None:
            raise NotFoundError(f"no incident #{incident_id}; see `steward incidents list`")
        return _incident(_system_name(session, row.system_id), row)


def list_incidents(steward: Workspace, system: str, *, state: str | None = None) -> list[Incident]:
    """The system's incidents, newest first; ``state`` keeps only ``open`` or ``closed`` ones."""
    if state not in (None, "open", "closed"):
        raise InvalidInputError(f"state {state!r} is not open or closed")
    with steward.store.read() as session:
        system_row = find_system(session, system)
        query = select(IncidentRow).where(IncidentRow.system_id == system_row.id)
        if state:
            query = query.where(IncidentRow.state == state)
        rows = session.scalars(query.order_by(IncidentRow.id.desc()))
        return [_incident(system, row) for row in rows]


def timeline(steward: Workspace, incident_id: int) -> list[dict[str, Any]]:
    """The incident's story from the audit tree: its alert's entries, then its own, in order.

    Each item is an audit entry (id, at, actor, action, details), so each can be proved with
    ``steward audit prove ID``.
    """
    incident = get_incident(steward, incident_id)
    targets = [f"{incident.system}/incident/{incident.id}"]
    if incident.alert_id is not None:
        targets.append(f"{incident.system}/alert/{incident.alert_id}")
    with steward.store.read() as session:
        rows = session.scalars(
            select(AuditRow)
            .where(or_(*(AuditRow.target == target for target in targets)))
            .order_by(AuditRow.id)
        )
        return [
            {"id": r.id, "at": r.at, "actor": r.actor, "action": r.action, "details": r.details}
            for r in rows
        ]


def _open_row(session: Any, incident_id: int) -> tuple[IncidentRow, str]:
    row = session.get(IncidentRow, incident_id) if 0 < incident_id <= MAX_ROW_ID else None
    if row is None:
        raise NotFoundError(f"no incident #{incident_id}; see `steward incidents list SYSTEM`")
    if row.state == "closed":
        raise ConflictError(
            f"incident #{incident_id} was closed by {row.closed_by} at "
            f"{row.closed_at:%Y-%m-%d %H:%M} UTC; declare a new one if it happened again"
        )
    return row, _system_name(session, row.system_id)


def _system_name(session: Any, system_id: int) -> str:
    from steward.store import System

    return str(session.get(System, system_id).name)


def _incident(system: str, row: IncidentRow) -> Incident:
    return Incident(
        id=row.id,
        system=system,
        title=row.title,
        kind=row.kind,
        severity=row.severity,
        state=row.state,
        declared_by=row.declared_by,
        declared_at=row.declared_at,
        report_due_at=row.report_due_at,
        alert_id=row.alert_id,
        actions=list(row.actions or []),
        cause=row.cause,
        closed_by=row.closed_by,
        closed_at=row.closed_at,
    )


def _duration(span: timedelta) -> str:
    """Days and hours, or hours and minutes under a day.

    >>> _duration(timedelta(days=3, hours=4, minutes=10)), _duration(timedelta(minutes=95))
    ('3 days 4 hours', '1 hour 35 minutes')
    """
    total = int(span.total_seconds())
    days, hours, minutes = total // 86400, total % 86400 // 3600, total % 3600 // 60
    if days:
        return f"{days} day{'s' * (days != 1)} {hours} hour{'s' * (hours != 1)}"
    return f"{hours} hour{'s' * (hours != 1)} {minutes} minute{'s' * (minutes != 1)}"
