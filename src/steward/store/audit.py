"""The audit log: append-only, and hash-chained so that an edited or deleted entry shows.

Each entry's ``hash`` is the SHA-256 of the previous entry's hash and the entry's own canonical JSON
(time, actor, action, target, details). ``verify`` recomputes the chain; the first entry whose hash does
not follow is where the log was altered.

>>> from steward.store import open_store
>>> store = open_store("sqlite:///:memory:")
>>> with store.write() as session:
...     _ = record(session, actor="ana", action="system.create", target="churn", details={})
>>> verify(store).ok
True
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.store import AuditRow, Store, utcnow

__all__ = ["GENESIS", "AuditCheck", "record", "verify"]

GENESIS = "0" * 64


def _entry_hash(
    prev_hash: str, at: datetime, actor: str, action: str, target: str, details: dict[str, Any]
) -> str:
    body = json.dumps(
        {
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
        },
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def record(
    session: Session, *, actor: str, action: str, target: str, details: dict[str, Any]
) -> AuditRow:
    """Append one entry inside the caller's write transaction (which holds the store's write lock)."""
    last = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(1)).first()
    prev_hash = last.hash if last else GENESIS
    # Round-trip details through JSON so the hash covers exactly what the database stores.
    details = json.loads(json.dumps(details, default=str))
    at = utcnow()
    row = AuditRow(
        at=at,
        actor=actor,
        action=action,
        target=target,
        details=details,
        prev_hash=prev_hash,
        hash=_entry_hash(prev_hash, at, actor, action, target, details),
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class AuditCheck:
    ok: bool
    n_entries: int
    first_bad_id: int | None = None
    reason: str = ""


def verify(store: Store) -> AuditCheck:
    """Recompute the hash chain from the first entry; report the first entry that breaks it."""
    prev_hash = GENESIS
    count = 0
    with store.read() as session:
        for row in session.scalars(select(AuditRow).order_by(AuditRow.id)):
            count += 1
            if row.prev_hash != prev_hash:
                return AuditCheck(False, count, row.id, "an entry before it was removed or edited")
            expected = _entry_hash(
                prev_hash, row.at, row.actor, row.action, row.target, row.details
            )
            if row.hash != expected:
                return AuditCheck(
                    False, count, row.id, "its content was edited after it was written"
                )
            prev_hash = row.hash
    return AuditCheck(True, count)
