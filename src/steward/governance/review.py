"""The human review queue.

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

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.data.events import EventLog
from steward.delivery.suspension import checked_action
from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.model.policy import REVIEW_ACTION
from steward.model.registry import find_system
from steward.store import ReviewDecisionRow, audit, utcnow
from steward.workspace import Workspace

__all__ = [
    "MAX_LIMIT",
    "OUTCOME_PREFIX",
    "ReviewDecision",
    "ReviewItem",
    "count_pending_reviews",
    "decide_review",
    "pending_reviews",
]

# Outcomes a reviewer's decision writes to the event log start with this; joins of labels skip them.
OUTCOME_PREFIX: Final = "review:"
MAX_LIMIT: Final = 10_000


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
# ---------------------------------------------------------------------------------------------
# The review queue

_COLUMNS: Final = (
    "id, entity_key, event_time, score, model_version, intended_action, inputs, output, decision"
)


def pending_reviews(
    steward: Workspace, events: EventLog, system: str, limit: int = 100
) -> list[ReviewItem]:
    """Predictions sent to review that nobody has decided yet, oldest first.

    >>> [item.reason for item in pending_reviews(steward, events, "churn")]  # doctest: +SKIP
    ['review band', 'suspended: drift on tenure']
    """
    if not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidInputError(f"limit {limit!r} must be a whole number from 1 to {MAX_LIMIT}")
    return [_item(row) for row in _pending_rows(steward, events, system)[:limit]]


def count_pending_reviews(steward: Workspace, events: EventLog, system: str) -> int:
    """How many predictions wait for review, all of them (the queue's pages are capped, this is not).

    >>> count_pending_reviews(steward, events, "churn")  # doctest: +SKIP
    129
    """
    return len(_pending_rows(steward, events, system))


def _pending_rows(steward: Workspace, events: EventLog, system: str) -> list[dict[str, Any]]:
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
    return [row for row in rows if row["id"] not in decided]


def decide_review(
    steward: Workspace,
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
    proposed, chosen = _proposed_and_chosen(row, system, prediction_id, action)
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
            # The note is free text that may name a person: the entry keeps its hash (the bound
            # row's digest covers the text), so an erasure of the row leaves no copy here.
            details={
                "proposed_action": proposed,
                "action": chosen,
                "note_sha256": hashlib.sha256(note.encode()).hexdigest() if note else None,
            },
            bind=stored,
        )
        # Appended before the commit: once this returns, row, audit entry and outcome all exist.
        # Should the commit fail, a retry rewrites the same outcome id (the log keeps the last).
        events.append([_outcome_event(decision, row["entity_key"])])
    return decision


def _proposed_and_chosen(
    row: dict[str, Any], system: str, prediction_id: str, action: str | None
) -> tuple[str | None, str]:
    """The action the policy proposed for a reviewed prediction, and the one the reviewer chose."""
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
    return proposed, proposed if action is None else checked_action(action, "action")


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
