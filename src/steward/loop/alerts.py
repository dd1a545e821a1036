"""Alerts: one per breach, with a lifecycle (firing, acknowledged, resolved).

A rule (``slo:NAME`` or ``monitor:NAME``) that breaches opens an alert; while it keeps breaching,
each check updates that alert's ``last_seen_at`` and ``checks`` rather than opening another. When a
check finds the rule no longer breaching, Steward resolves the alert (``resolved_by`` "steward").
People acknowledge (someone is on it) or resolve by hand. Each transition goes to the audit log.

``group_key`` (system and surface: ``serving``, ``model`` or ``business``) lets one notification
cover the alerts of one system and surface that fire in the same tick.

Example::

    changes = sync_alerts(steward, "churn", [Breach("slo:fast", "page", "burning 15x")], now)
    [alert.rule for alert in changes.fired]        # ['slo:fast']
    acknowledge(steward, changes.fired[0].id, "ana")
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.model.registry import find_system
from steward.store import MAX_ROW_ID, AlertRow, System, audit, utcnow
from steward.workspace import Workspace

__all__ = [
    "OPEN_STATES",
    "STATES",
    "Alert",
    "AlertChanges",
    "Breach",
    "acknowledge",
    "get_alert",
    "list_alerts",
    "resolve",
    "surface_of",
    "sync_alerts",
]

STATES = ("firing", "acknowledged", "resolved")
OPEN_STATES = ("firing", "acknowledged")
_SURFACES = {
    "latency": "serving",
    "error_rate": "serving",
    "violation_rate": "serving",
    "data_quality": "serving",
    "uplift": "business",
    "cost": "business",
}


@dataclass(frozen=True)
class Breach:
    """What a check found breaching: the rule, how urgent, and a sentence for a person."""

    rule: str
    severity: str
    summary: str
    details: dict[str, Any] = field(default_factory=dict)
    surface: str = ""


@dataclass(frozen=True)
class Alert:
    """One breach of one rule of one system, and where it stands."""

    id: int
    system: str
    rule: str
    severity: str
    state: str
    summary: str
    details: dict[str, Any]
    fired_at: datetime
    last_seen_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    resolved_at: datetime | None
    resolved_by: str | None
    group_key: str = ""
    checks: int = 1

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (times as ISO 8601)."""
        data = dict(self.__dict__)
        for key, value in data.items():
            if isinstance(value, datetime):
                data[key] = value.isoformat()
        return data


@dataclass(frozen=True)
class AlertChanges:
    """What one sync did: alerts opened, alerts seen breaching again, alerts resolved."""

    fired: list[Alert] = field(default_factory=list)
    still_firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)


def surface_of(watched: str) -> str:
    """``serving``, ``model`` or ``business``: the part of a system that a monitor name or an SLO
    indicator watches (a ``monitor:`` prefix is ignored). SLO rules are named by the user, so the
    loop passes the SLO's indicator as the breach's ``surface``.

    >>> surface_of("monitor:drift"), surface_of("latency"), surface_of("uplift")
    ('model', 'serving', 'business')
    """
    return _SURFACES.get(watched.split(":", 1)[-1], "model")


def _alert(row: AlertRow, system: str) -> Alert:
    return Alert(
        id=row.id,
        system=system,
        rule=row.rule,
        severity=row.severity,
        state=row.state,
        summary=row.summary,
        details=dict(row.details or {}),
        fired_at=row.fired_at,
        last_seen_at=row.last_seen_at,
        acknowledged_at=row.acknowledged_at,
        acknowledged_by=row.acknowledged_by,
        resolved_at=row.resolved_at,
        resolved_by=row.resolved_by,
        group_key=row.group_key,
        checks=row.checks,
    )


def sync_alerts(
    steward: Workspace,
    system: str,
    breaches: Iterable[Breach],
    now: datetime | None = None,
    *,
    checked: Iterable[str] | None = None,
) -> AlertChanges:
    """Open, update and resolve ``system``'s alerts from what this check found breaching.

    ``checked`` names the rules this check looked at: an open alert whose rule was checked and did
    not breach resolves. Rules not checked (a monitor not due this tick, an SLO without enough
    events) keep their alerts as they are. ``None`` means every rule with an open alert was checked.
    """
    at = now or utcnow()
    found = {breach.rule: breach for breach in breaches}
    looked_at = None if checked is None else set(checked) | set(found)
    fired, still, resolved = [], [], []
    with steward.store.write() as session:
        system_row = find_system(session, system)
        steward.store.lock_system(session, system_row.id)
        open_rows = {
            row.rule: row
            for row in session.scalars(
                select(AlertRow).where(
                    AlertRow.system_id == system_row.id, AlertRow.state.in_(OPEN_STATES)
                )
            )
        }
        for rule, breach in found.items():
            row = open_rows.pop(rule, None)
            if row is None:
                fired.append(_fire(session, steward, system_row, breach, at))
                continue
            row.last_seen_at, row.checks = at, row.checks + 1
            row.summary, row.details = breach.summary, _json(breach.details)
            if breach.severity == "page":  # escalate, never quietly downgrade an open alert
                row.severity = "page"
            still.append(_alert(row, system))
        for rule, row in open_rows.items():
            if looked_at is None or rule in looked_at:
                _close(session, row, system, "steward", at, "the rule no longer breaches")
                resolved.append(_alert(row, system))
    return AlertChanges(fired, still, resolved)


def _json(details: dict[str, Any]) -> dict[str, Any]:
    return dict(json.loads(json.dumps(details, default=str)))


def _fire(
    session: Session, steward: Workspace, system_row: System, breach: Breach, at: datetime
) -> Alert:
    surface = breach.surface or surface_of(breach.rule)
    row = AlertRow(
        system_id=system_row.id,
        rule=breach.rule,
        group_key=f"{system_row.name}/{surface}",
        severity=breach.severity,
        state="firing",
        summary=breach.summary,
        details=_json(breach.details),
        checks=1,
        fired_at=at,
        last_seen_at=at,
    )
    session.add(row)
    session.flush()
    audit.record(
        session,
        actor="steward",
        action="alert.fire",
        target=f"{system_row.name}/alert/{row.id}",
        details={"rule": breach.rule, "severity": breach.severity, "summary": breach.summary},
    )
    return _alert(row, system_row.name)


def _close(
    session: Session, row: AlertRow, system: str, actor: str, at: datetime, note: str
) -> None:
    row.state, row.resolved_at, row.resolved_by = "resolved", at, actor
    row.details = {**(row.details or {}), "resolution_note": note}
    audit.record(
        session,
        actor=actor,
        action="alert.resolve",
        target=f"{system}/alert/{row.id}",
        details={"rule": row.rule, "note": note},
    )


def list_alerts(
    steward: Workspace, system: str | None = None, state: str | None = None, limit: int = 200
) -> list[Alert]:
    """Alerts, newest first; ``state`` is firing, acknowledged, resolved, or ``open`` (not resolved)."""
    if state is not None and state not in (*STATES, "open"):
        raise InvalidInputError(
            f"alert state {state!r} is not one of firing, acknowledged, resolved or open"
        )
    with steward.store.read() as session:
        query = select(AlertRow, System.name).join(System, System.id == AlertRow.system_id)
        if system is not None:
            query = query.where(AlertRow.system_id == find_system(session, system).id)
        if state == "open":
            query = query.where(AlertRow.state.in_(OPEN_STATES))
        elif state is not None:
            query = query.where(AlertRow.state == state)
        rows = session.execute(query.order_by(AlertRow.id.desc()).limit(limit)).all()
        return [_alert(row, name) for row, name in rows]


def get_alert(steward: Workspace, alert_id: int) -> Alert:
    """One alert by id; an unknown id is a ``NotFoundError`` naming it."""
    with steward.store.read() as session:
        row, name = _find(session, alert_id)
        return _alert(row, name)


def _find(session: Session, alert_id: int) -> tuple[AlertRow, str]:
    if not 1 <= alert_id <= MAX_ROW_ID:
        raise NotFoundError(f"no alert with id {alert_id}; `steward alerts list` shows the alerts")
    found = session.execute(
        select(AlertRow, System.name)
        .join(System, System.id == AlertRow.system_id)
        .where(AlertRow.id == alert_id)
    ).first()
    if found is None:
        raise NotFoundError(f"no alert with id {alert_id}; `steward alerts list` shows the alerts")
    return found[0], found[1]


def acknowledge(steward: Workspace, alert_id: int, actor: str) -> Alert:
    """Mark a firing alert as being looked at by ``actor``; a resolved one is a ``ConflictError``."""
    with steward.store.write() as session:
        row, system = _find(session, alert_id)
        if row.state == "resolved":
            raise ConflictError(
                f"alert {alert_id} ({row.rule}) was resolved by {row.resolved_by} at "
                f"{row.resolved_at:%Y-%m-%d %H:%M} UTC; there is nothing left to acknowledge"
            )
        if row.state == "acknowledged":
            raise ConflictError(
                f"alert {alert_id} ({row.rule}) was already acknowledged by {row.acknowledged_by} "
                f"at {row.acknowledged_at:%Y-%m-%d %H:%M} UTC"
            )
        row.state, row.acknowledged_at, row.acknowledged_by = "acknowledged", utcnow(), actor
        audit.record(
            session,
            actor=actor,
            action="alert.acknowledge",
            target=f"{system}/alert/{row.id}",
            details={"rule": row.rule},
        )
        return _alert(row, system)


def resolve(steward: Workspace, alert_id: int, actor: str, note: str = "") -> Alert:
    """Close an open alert by hand; resolving a resolved alert is a ``ConflictError``.

    If the rule still breaches, the next check opens a new alert: acknowledge instead while it does.
    """
    with steward.store.write() as session:
        row, system = _find(session, alert_id)
        if row.state == "resolved":
            raise ConflictError(
                f"alert {alert_id} ({row.rule}) was already resolved by {row.resolved_by} at "
                f"{row.resolved_at:%Y-%m-%d %H:%M} UTC"
            )
        _close(session, row, system, actor, utcnow(), note or "resolved by hand")
        return _alert(row, system)
