"""The history page's data: the audit log merged with the typed tables, newest first, paginated.

The audit log is the tamper-evident record of every change (alias moves, config applies, model
registrations, monitor breaches); alerts, actions, review decisions and approvals come from their own
tables, which say more than their audit entries (state, reason, note). The audit entries those rows
repeat (``alert.fire``, ``playbook.*``, ``review.*``, ``approval.request``) are left out so each event
shows once; acknowledgements, resolutions and approval decisions come from the audit log. A page
of ``n`` entries reads at most ``(page + 1) * n + 1`` rows per source.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from steward.store import (
    ActionRow,
    AlertRow,
    ApprovalRow,
    AuditRow,
    ReviewDecisionRow,
    System,
)

__all__ = ["TYPED_PREFIXES", "HistoryEntry", "history_page"]

#: Audit actions shown from their typed table instead.
TYPED_PREFIXES = ("alert.fire", "playbook.", "review.", "approval.request")

MAX_PAGE = 1000


@dataclass(frozen=True)
class HistoryEntry:
    """One line of the history page: who did what to what, when."""

    at: datetime
    kind: str
    actor: str
    action: str
    target: str
    summary: str
    source: str  # audit | alert | action | review | approval


def history_page(
    session: Session, system: str | None, page: int, page_size: int = 50
) -> tuple[list[Any], bool]:
    """Entries ``page * page_size`` to ``(page + 1) * page_size`` of the merged history, and
    whether there are more."""
    page = min(max(page, 0), MAX_PAGE)
    wanted = (page + 1) * page_size + 1
    names = {row[0]: row[1] for row in session.execute(select(System.id, System.name))}
    system_id = next((key for key, name in names.items() if name == system), None)
    if system is not None and system_id is None:
        return [], False
    sources = [
        _audit(session, system, wanted),
        _alerts(session, system_id, wanted, names),
        _actions(session, system_id, wanted, names),
        _reviews(session, system_id, wanted, names),
        _approvals(session, system_id, wanted, names),
    ]
    merged = heapq.merge(*sources, key=lambda entry: entry.at, reverse=True)
    window = list(itertools.islice(merged, page * page_size, wanted))
    entries = [HistoryEntry(**fields) for fields in window[:page_size]]
    return entries, len(window) > page_size


class _Fields(dict[str, Any]):
    @property
    def at(self) -> datetime:
        moment: datetime = self["at"]
        return moment


def _entry(**fields: Any) -> _Fields:
    return _Fields(fields)


def _audit(session: Session, system: str | None, limit: int) -> Iterator[_Fields]:
    query = select(AuditRow).where(
        *(~AuditRow.action.startswith(prefix) for prefix in TYPED_PREFIXES)
    )
    if system is not None:
        query = query.where(
            or_(
                AuditRow.target == system,
                AuditRow.target.startswith(f"{system}/", autoescape=True),
            )
        )
    for row in session.scalars(query.order_by(AuditRow.id.desc()).limit(limit)):
        yield _entry(
            at=row.at,
            kind=row.action.split(".")[0],
            actor=row.actor,
            action=row.action,
            target=row.target,
            summary=_audit_summary(row.details),
            source="audit",
        )


def _audit_summary(details: dict[str, Any]) -> str:
    if "summary" in details:
        return str(details["summary"])
    if "from" in details or "to" in details:
        reason = f" ({details['reason']})" if details.get("reason") else ""
        return f"v{details.get('from')} → v{details.get('to')}{reason}".replace("vNone", "none")
    # "rows" binds the entry to the rows it wrote (the audit's own bookkeeping), not what changed.
    shown = [(key, value) for key, value in details.items() if key != "rows"][:4]
    return ", ".join(f"{key}={value}" for key, value in shown)


def _typed(query: Any, column: Any, system_id: int | None, limit: int) -> Any:
    if system_id is not None:
        query = query.where(column == system_id)
    return query.limit(limit)


def _alerts(
    session: Session, system_id: int | None, limit: int, names: dict[int, str]
) -> Iterator[_Fields]:
    query = select(AlertRow).order_by(AlertRow.fired_at.desc(), AlertRow.id.desc())
    for row in session.scalars(_typed(query, AlertRow.system_id, system_id, limit)):
        yield _entry(
            at=row.fired_at,
            kind="alert",
            actor="steward",
            action=f"alert fired ({row.severity}), now {row.state}",
            target=f"{names.get(row.system_id, '?')}/{row.rule}",
            summary=row.summary,
            source="alert",
        )


def _actions(
    session: Session, system_id: int | None, limit: int, names: dict[int, str]
) -> Iterator[_Fields]:
    query = select(ActionRow).order_by(ActionRow.created_at.desc(), ActionRow.id.desc())
    for row in session.scalars(_typed(query, ActionRow.system_id, system_id, limit)):
        yield _entry(
            at=row.created_at,
            kind="action",
            actor=row.actor,
            action=f"{row.kind}: {row.status}",
            target=names.get(row.system_id, "?"),
            summary=row.reason,
            source="action",
        )


def _reviews(
    session: Session, system_id: int | None, limit: int, names: dict[int, str]
) -> Iterator[_Fields]:
    query = select(ReviewDecisionRow).order_by(
        ReviewDecisionRow.decided_at.desc(), ReviewDecisionRow.id.desc()
    )
    for row in session.scalars(_typed(query, ReviewDecisionRow.system_id, system_id, limit)):
        verb = f"overrode {row.proposed_action} with" if row.overridden else "approved"
        yield _entry(
            at=row.decided_at,
            kind="review",
            actor=row.decided_by,
            action=f"{verb} {row.action}",
            target=f"{names.get(row.system_id, '?')}/{row.prediction_id}",
            summary=row.note,
            source="review",
        )


def _approvals(
    session: Session, system_id: int | None, limit: int, names: dict[int, str]
) -> Iterator[_Fields]:
    query = select(ApprovalRow).order_by(ApprovalRow.requested_at.desc(), ApprovalRow.id.desc())
    for row in session.scalars(_typed(query, ApprovalRow.system_id, system_id, limit)):
        decided = f", now {row.state}"
        yield _entry(
            at=row.requested_at,
            kind="approval",
            actor=row.decided_by or row.requested_by,
            action=f"{row.kind} requested{decided}",
            target=names.get(row.system_id, "?"),
            summary=row.decision_note or row.reason,
            source="approval",
        )
