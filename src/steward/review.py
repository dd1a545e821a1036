"""The human review queue, and suspended automation.

Two ways a decision ends up with a person:

- the policy's review band (``review_band`` under ``policy:``) gives a score the action ``review``;
- a **suspension** of the system's automation. Mode ``review`` sends every decision to the queue
  (the policy's action is kept as ``intended_action``); mode ``fallback`` gives every record a
  fixed ``fallback_action`` instead of the model's decision (the score is still computed and logged).
  Held-out entities keep their holdout decision either way: the holdout does not use the model, and
  keeping it untouched keeps the uplift comparison clean.

The queue costs the hot path nothing: it is derived from the event log (prediction events whose
decision is ``review``) minus the decisions people already took (``ReviewDecisionRow``). Each decision
is stored, audited, and logged to the event log as an outcome with id ``review:<prediction_id>`` and
``value_text`` ``approved:<action>`` or ``override:<action>`` (``value`` null), so the event log
says what was finally done. ``performance.join_outcomes`` ignores these outcomes: a reviewer's
decision is not a label.

>>> suspend(steward, "churn", mode="review", reason="drift on tenure")   # doctest: +SKIP
>>> [item.id for item in pending_reviews(steward, events, "churn")]      # doctest: +SKIP
['p-17', 'p-18']
>>> decide_review(steward, events, "churn", "p-17", action="email")     # doctest: +SKIP
>>> resume(steward, "churn", reason="drift explained")                  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward import audit
from steward.core import Steward
from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.events import EventLog
from steward.policy import REVIEW_ACTION
from steward.registry import find_system
from steward.store import ReviewDecisionRow, SuspensionRow, utcnow

__all__ = [
    "MAX_LIMIT",
    "MODES",
    "OUTCOME_PREFIX",
    "ReviewDecision",
    "ReviewItem",
    "Suspension",
    "check_surface_request",
    "current_suspension",
    "decide_review",
    "open_suspension",
    "pending_reviews",
    "resume",
    "suspend",
    "suspension_marker",
]

MODES: Final = ("review", "fallback")
# Outcomes a reviewer's decision writes to the event log start with this; joins of labels skip them.
OUTCOME_PREFIX: Final = "review:"
MAX_LIMIT: Final = 10_000
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


@dataclass(frozen=True)
class ReviewItem:
    """A prediction waiting for a person: what the model said, on what inputs, and why it waits."""

    id: str
    entity_key: str | None
    event_time: datetime
    score: float | None
    model_version: int | None
    intended_action: str | None
    inputs: dict[str, Any]
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "entity_key": self.entity_key,
            "event_time": self.event_time.isoformat(),
            "score": self.score,
            "model_version": self.model_version,
            "intended_action": self.intended_action,
            "inputs": self.inputs,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class ReviewDecision:
    """A person's decision on one reviewed prediction: approved as proposed, or overridden."""

    system: str
    prediction_id: str
    proposed_action: str | None
    action: str
    overridden: bool
    note: str
    decided_by: str
    decided_at: datetime

    @property
    def outcome_id(self) -> str:
        """The id of the outcome event that logs this decision."""
        return f"{OUTCOME_PREFIX}{self.prediction_id}"

    @property
    def outcome_text(self) -> str:
        """``override:<action>`` or ``approved:<action>``, the outcome's ``value_text``."""
        return f"{'override' if self.overridden else 'approved'}:{self.action}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "prediction_id": self.prediction_id,
            "proposed_action": self.proposed_action,
            "action": self.action,
            "overridden": self.overridden,
            "note": self.note,
            "decided_by": self.decided_by,
            "decided_at": self.decided_at.isoformat(),
            "outcome_id": self.outcome_id,
        }


# ---------------------------------------------------------------------------------------------
# Suspension


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
    steward: Steward,
    system: str,
    *,
    mode: str = "review",
    fallback_action: str | None = None,
    reason: str = "",
    actor: str | None = None,
) -> Suspension:
    """Suspend the system's automation; serving picks it up within a second, without a restart.

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
        )
        return _suspension(row, system)


def resume(
    steward: Steward, system: str, *, reason: str = "", actor: str | None = None
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
        )
        return _suspension(row, system)


def current_suspension(steward: Steward, system: str) -> Suspension | None:
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
    return _checked_action(fallback_action, "fallback_action")


def check_surface_request(mode: str, fallback_action: str | None) -> None:
    """Refuse a fallback action typed with mode ``review`` (CLI and HTTP), instead of ignoring it.

    >>> check_surface_request("fallback", "none")
    """
    if mode == "review" and fallback_action:
        raise InvalidInputError(
            f"fallback_action {fallback_action!r} applies only to mode 'fallback'; drop it, or "
            "suspend with mode 'fallback'"
        )


def _checked_action(action: str, what: str) -> str:
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


# ---------------------------------------------------------------------------------------------
# The review queue

_COLUMNS: Final = (
    "id, entity_key, event_time, score, model_version, intended_action, inputs, output, decision"
)


def pending_reviews(
    steward: Steward, events: EventLog, system: str, limit: int = 100
) -> list[ReviewItem]:
    """Predictions sent to review that nobody has decided yet, oldest first.

    >>> [item.reason for item in pending_reviews(steward, events, "churn")]  # doctest: +SKIP
    ['review band', 'suspended: drift on tenure']
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit {limit!r} must be a whole number from 1 to {MAX_LIMIT}")
    with steward.store.read() as session:
        system_row = find_system(session, system)
        decided = set(
            session.scalars(
                select(ReviewDecisionRow.prediction_id).where(
                    ReviewDecisionRow.system_id == system_row.id
                )
            )
        )
    # The logged decisions narrow the scan in DuckDB; the stored ones are the word that counts.
    rows = events.query(
        f"SELECT {_COLUMNS} FROM predictions AS p WHERE p.system = {_text(system)} "
        f"AND p.decision = {_text(REVIEW_ACTION)} AND NOT EXISTS (SELECT 1 FROM outcomes AS o "
        f"WHERE o.system = p.system AND o.id = {_text(OUTCOME_PREFIX)} || p.id) "
        "ORDER BY p.event_time, p.received_at, p.writer, p.sequence"
    ).to_pylist()
    pending = [row for row in rows if row["id"] not in decided][:limit]
    return [_item(row) for row in pending]


def decide_review(
    steward: Steward,
    events: EventLog,
    system: str,
    prediction_id: str,
    *,
    action: str | None = None,
    note: str = "",
    actor: str | None = None,
) -> ReviewDecision:
    """Decide a reviewed prediction: no action (or the proposed one) approves, another overrides.

    The decision is stored, audited and logged as the outcome ``review:<prediction_id>``.

    >>> decide_review(steward, events, "churn", "p-17", action="email", note="called last week")
    ... # doctest: +SKIP
    """
    steward.system(system)
    row = _prediction(events, system, prediction_id)
    if row["decision"] != REVIEW_ACTION:
        raise InvalidInputError(
            f"prediction {prediction_id!r} of {system!r} was not sent to review (its decision is "
            f"{row['decision']!r}); only predictions whose decision is 'review' can be approved "
            f"or overridden; `steward review list {system}` shows them"
        )
    proposed = row["intended_action"]
    if action is None and proposed is None:
        raise InvalidInputError(
            f"prediction {prediction_id!r} of {system!r} has no proposed action to approve (it "
            "was made without a policy); pass the action to take"
        )
    chosen = proposed if action is None else _checked_action(action, "action")
    who = actor or steward.actor
    with steward.store.write() as session:
        system_row = find_system(session, system)
        steward.store.lock_system(session, system_row.id)
        _refuse_second_decision(session, system_row.id, system, prediction_id)
        stored = ReviewDecisionRow(
            system_id=system_row.id,
            prediction_id=prediction_id,
            proposed_action=proposed,
            action=chosen,
            overridden=chosen != proposed,
            note=note,
            decided_by=who,
            decided_at=utcnow(),
        )
        session.add(stored)
        session.flush()
        decision = _decision(stored, system)
        audit.record(
            session,
            actor=who,
            action="review.override" if decision.overridden else "review.approve",
            target=f"{system}/{prediction_id}",
            details={"proposed_action": proposed, "action": chosen, "note": note},
        )
        # Appended before the commit: once this returns, row, audit entry and outcome all exist.
        # Should the commit fail, a retry rewrites the same outcome id (the log keeps the last).
        events.append([_outcome_event(decision, row["entity_key"])])
    return decision


def _refuse_second_decision(
    session: Session, system_id: int, system: str, prediction_id: str
) -> None:
    earlier = session.scalars(
        select(ReviewDecisionRow).where(
            ReviewDecisionRow.system_id == system_id,
            ReviewDecisionRow.prediction_id == prediction_id,
        )
    ).first()
    if earlier is not None:
        verdict = "overrode it with" if earlier.overridden else "approved"
        raise ConflictError(
            f"prediction {prediction_id!r} of {system!r} was already decided: {earlier.decided_by} "
            f"{verdict} {earlier.action!r} at {earlier.decided_at:%Y-%m-%d %H:%M:%S} UTC; a "
            "review is decided once"
        )


def _prediction(events: EventLog, system: str, prediction_id: str) -> dict[str, Any]:
    rows = events.query(
        f"SELECT {_COLUMNS} FROM predictions WHERE system = {_text(system)} "
        f"AND id = {_text(prediction_id)} LIMIT 1"
    ).to_pylist()
    if not rows:
        raise NotFoundError(
            f"system {system!r} has no prediction with id {prediction_id!r}; "
            f"`steward review list {system}` shows the ones waiting for review"
        )
    return rows[0]


def _item(row: dict[str, Any]) -> ReviewItem:
    output = _json(row["output"])
    marker = output.get("suspended") if isinstance(output, dict) else None
    if isinstance(marker, dict):
        reason = f"suspended: {marker['reason']}" if marker.get("reason") else "suspended"
    else:
        reason = "review band"
    inputs = _json(row["inputs"])
    return ReviewItem(
        id=row["id"],
        entity_key=row["entity_key"],
        event_time=row["event_time"],
        score=row["score"],
        model_version=row["model_version"],
        intended_action=row["intended_action"],
        inputs=inputs if isinstance(inputs, dict) else {},
        reason=reason,
    )


def _decision(row: ReviewDecisionRow, system: str) -> ReviewDecision:
    return ReviewDecision(
        system=system,
        prediction_id=row.prediction_id,
        proposed_action=row.proposed_action,
        action=row.action,
        overridden=row.overridden,
        note=row.note,
        decided_by=row.decided_by,
        decided_at=row.decided_at,
    )


def _outcome_event(decision: ReviewDecision, entity_key: str | None) -> dict[str, Any]:
    return {
        "kind": "outcome",
        "system": decision.system,
        "id": decision.outcome_id,
        "event_time": decision.decided_at,
        "prediction_id": decision.prediction_id,
        # The entity key lets an erasure of the entity remove its review outcome too.
        "entity_key": entity_key,
        "value": None,
        "value_text": decision.outcome_text,
    }


def _json(text: str | None) -> Any:
    if not text:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"
