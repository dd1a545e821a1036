"""Suspended automation: a person (or a playbook) takes a system's decisions off the model.

Mode ``review`` sends every decision to the review queue (``steward.governance.review``), the
policy's action kept as ``intended_action``; mode ``fallback`` gives every record a fixed
``fallback_action`` instead of the model's decision (the score is still computed and logged).
Held-out entities keep their holdout decision either way. Every serving process checks the store for
a new or ended suspension every ``serving_refresh_ms`` (250 ms), so suspending or resuming reaches
every server well within a second, without a restart; it lives here, beside serving, because the
hot path must read it without knowing the review queue.

>>> suspend(steward, "churn", mode="review", reason="drift on tenure")   # doctest: +SKIP
>>> resume(steward, "churn", reason="drift explained")                  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.errors import ConflictError, InvalidInputError
from steward.model.policy import REVIEW_ACTION
from steward.model.registry import find_system
from steward.store import SuspensionRow, audit, utcnow
from steward.workspace import Workspace

__all__ = [
    "MODES",
    "Suspension",
    "check_surface_request",
    "checked_action",
    "current_suspension",
    "open_suspension",
    "resume",
    "suspend",
    "suspension_marker",
]

MODES: Final = ("review", "fallback")
_ACTION_LENGTH: Final = 100


@dataclass(frozen=True)
class Suspension:
    """One suspension of a system's automation; open while ``ended_at`` is None."""

    id: int
    system: str
    mode: str
    fallback_action: str | None
    reason: str
    started_by: str
    started_at: datetime
    ended_by: str | None = None
    ended_at: datetime | None = None

    @property
    def review_reason(self) -> str:
        """How a decision this suspension took names its cause: ``suspended: <reason>``."""
        return f"suspended: {self.reason}" if self.reason else "suspended"

    def describe(self) -> str:
        """One line: mode, since when, by whom and why."""
        what = "review" if self.mode == "review" else f"fallback action {self.fallback_action!r}"
        why = f": {self.reason}" if self.reason else " (no reason given)"
        return f"suspended to {what} since {self.started_at:%Y-%m-%d %H:%M:%S} UTC by {self.started_by}{why}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "system": self.system,
            "mode": self.mode,
            "fallback_action": self.fallback_action,
            "reason": self.reason,
            "started_by": self.started_by,
            "started_at": self.started_at.isoformat(),
            "ended_by": self.ended_by,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
        }


def open_suspension(session: Session, system_id: int, system: str) -> Suspension | None:
    """The system's open suspension read in ``session`` (the serving runtime's refresh uses it)."""
    row = session.scalars(
        select(SuspensionRow)
        .where(SuspensionRow.system_id == system_id, SuspensionRow.ended_at.is_(None))
        .order_by(SuspensionRow.id.desc())
        .limit(1)
    ).first()
    return None if row is None else _suspension(row, system)


def suspend(
    steward: Workspace,
    system: str,
    *,
    mode: str = "review",
    fallback_action: str | None = None,
    reason: str = "",
    actor: str | None = None,
) -> Suspension:
    """Suspend the system's automation; every server follows within a second, without a restart.

    ``mode="review"`` sends every decision to the review queue (``fallback_action`` is ignored);
    ``mode="fallback"`` gives every record ``fallback_action``. An already-suspended system is a
    ``ConflictError``.

    >>> suspend(steward, "churn", mode="fallback", fallback_action="none",
    ...         reason="AUC fell to 0.61")  # doctest: +SKIP
    """
    fallback = _checked_mode(mode, fallback_action)
    who = actor or steward.actor
    with steward.store.write() as session:
        system_row = find_system(session, system)
        steward.store.lock_system(session, system_row.id)
        current = open_suspension(session, system_row.id, system)
        if current is not None:
            raise ConflictError(
                f"system {system!r} is already {current.describe()}; run `steward resume "
                f"{system}` first to change how it is suspended"
            )
        row = SuspensionRow(
            system_id=system_row.id,
            mode=mode,
            fallback_action=fallback,
            reason=reason,
            started_by=who,
            started_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=who,
            action="system.suspend",
            target=system,
            details={
                "suspension": row.id,
                "mode": mode,
                "fallback_action": fallback,
                "reason": reason,
            },
            bind=row,
        )
        return _suspension(row, system)


def resume(
    steward: Workspace, system: str, *, reason: str = "", actor: str | None = None
) -> Suspension:
    """End the open suspension; decisions go back to the policy. Returns the ended suspension.

    >>> resume(steward, "churn", reason="retrained v7 promoted")  # doctest: +SKIP
    """
    who = actor or steward.actor
    with steward.store.write() as session:
        system_row = find_system(session, system)
        steward.store.lock_system(session, system_row.id)
        row = session.scalars(
            select(SuspensionRow)
            .where(SuspensionRow.system_id == system_row.id, SuspensionRow.ended_at.is_(None))
            .order_by(SuspensionRow.id.desc())
            .limit(1)
        ).first()
        if row is None:
            raise ConflictError(
                f"system {system!r} is not suspended, so there is nothing to resume; "
                f"`steward suspend {system} --reason TEXT` suspends it"
            )
        row.ended_by, row.ended_at = who, utcnow()
        session.flush()
        audit.record(
            session,
            actor=who,
            action="system.resume",
            target=system,
            details={"suspension": row.id, "mode": row.mode, "reason": reason},
            bind=row,
        )
        return _suspension(row, system)


def current_suspension(steward: Workspace, system: str) -> Suspension | None:
    """The system's open suspension, or None when its automation runs.

    >>> current_suspension(steward, "churn")  # doctest: +SKIP
    """
    with steward.store.read() as session:
        system_row = find_system(session, system)
        return open_suspension(session, system_row.id, system)


def suspension_marker(suspension: Suspension) -> dict[str, Any]:
    """What a prediction event records of the suspension that decided it.

    >>> suspension_marker(Suspension(3, "churn", "review", None, "drift", "ana", utcnow()))
    {'id': 3, 'mode': 'review', 'reason': 'drift'}
    """
    return {"id": suspension.id, "mode": suspension.mode, "reason": suspension.reason}


def _checked_mode(mode: str, fallback_action: str | None) -> str | None:
    if mode not in MODES:
        raise InvalidInputError(
            f"suspension mode {mode!r} is not known; use 'review' (every decision to a person) "
            "or 'fallback' (every record gets a fixed action)"
        )
    if mode == "review":
        # Ignored rather than refused: a playbook declaring both must still suspend mid-incident.
        # The CLI and HTTP surfaces refuse the pair, since there a person typed it.
        return None
    if not fallback_action or not fallback_action.strip():
        raise InvalidInputError(
            "mode 'fallback' needs a fallback_action, the fixed action every record gets while "
            "suspended; pass e.g. --fallback-action none"
        )
    return checked_action(fallback_action, "fallback_action")


def check_surface_request(mode: str, fallback_action: str | None) -> None:
    """Refuse a fallback action typed with mode ``review`` (CLI and HTTP), instead of ignoring it.

    >>> check_surface_request("fallback", "none")
    """
    if mode == "review" and fallback_action:
        raise InvalidInputError(
            f"fallback_action {fallback_action!r} applies only to mode 'fallback'; drop it, or "
            "suspend with mode 'fallback'"
        )


def checked_action(action: str, what: str) -> str:
    if not action.strip() or len(action) > _ACTION_LENGTH:
        raise InvalidInputError(
            f"{what} {action!r} must be a non-empty name of at most {_ACTION_LENGTH} characters"
        )
    if action == REVIEW_ACTION:
        raise InvalidInputError(
            f"{what} cannot be {REVIEW_ACTION!r}: that sends the record to people, not an action "
            "done; name the action to take (to queue every decision, suspend with mode 'review')"
        )
    return action


def _suspension(row: SuspensionRow, system: str) -> Suspension:
    return Suspension(
        id=row.id,
        system=system,
        mode=row.mode,
        fallback_action=row.fallback_action,
        reason=row.reason,
        started_by=row.started_by,
        started_at=row.started_at,
        ended_by=row.ended_by,
        ended_at=row.ended_at,
    )
