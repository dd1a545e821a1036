"""Erasure by subject: remove one person's data from every place Steward keeps it.

``erase_subject`` takes an entity key (a customer id) and, in each system asked for (all by
default), removes:

1. from the event log: the entity's predictions and shadow scores, every outcome naming those
   predictions by ``prediction_id`` (with or without an entity key), then whatever else carries
   the key (LLM calls): an id tombstone and an entity tombstone first, then the Parquet files
   rewritten (``EventLog.erase_predictions``, ``EventLog.erase``);
2. from the metadata store: the review decisions (and their notes) on those predictions, each
   deletion bound to the receipt's audit entry so ``steward audit verify`` stays clean;
3. from the reference samples stored with model versions: the rows whose entity column (the
   system's ``entity_key``) holds the key; the sample is stored again under its new hash, the
   version points at it, and the old file is deleted;
4. from the retrain exports under ``.steward/retrain/``: the rows holding the key.

One audit entry, ``erasure``, is the receipt: a salted SHA-256 of the key, its salt, the systems
and the counts removed per place (``docs/erasure.md`` says why the salt is kept in it). On
SQLite the database is then vacuumed and its write-ahead file truncated, so deleted rows leave no
bytes behind in free pages. Running it again finishes an interrupted erasure and counts zero.

Example::

    receipt = erase_subject(steward, "customer-42")
    receipt.counts  # {'predictions': 3, 'outcomes': 3, 'review_decisions': 1, ...}
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import secrets
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.data.events import EventLog
from steward.data.events.tombstones import entity_hash, erased_id_hashes, load_erasures
from steward.errors import InvalidInputError, UnknownSystemError
from steward.store import ModelVersionRow, ReviewDecisionRow, System, audit
from steward.workspace.retention import export_folders
from steward.workspace.systems import SystemInfo
from steward.workspace.workspace import Workspace

__all__ = ["ERASURE_ACTION", "PLACES", "ErasureReceipt", "erase_subject", "subject_digest"]

logger = logging.getLogger(__name__)

#: The action of the receipt's audit entry.
ERASURE_ACTION: Final = "erasure"
#: The places counted, in the order the receipt lists them.
PLACES: Final = (
    "predictions",
    "shadows",
    "outcomes",
    "other_events",
    "review_decisions",
    "reference_rows",
    "export_rows",
)
_KEY_LIMIT: Final = 500


@dataclass(frozen=True)
class ErasureReceipt:
    """What an erasure removed: counts per place and system, and the receipt's audit entry.

    ``subject_sha256`` is ``sha256(salt + key)``; the key itself is kept nowhere.
    """

    subject_sha256: str
    salt: str
    systems: tuple[str, ...]
    counts: dict[str, int]
    by_system: dict[str, dict[str, int]]
    references: list[dict[str, Any]] = field(default_factory=list)
    audit_id: int | None = None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "subject_sha256": self.subject_sha256,
            "salt": self.salt,
            "systems": list(self.systems),
            "counts": self.counts,
            "by_system": self.by_system,
            "references": self.references,
            "audit_id": self.audit_id,
            "total": self.total,
        }


def subject_digest(entity_key: str, salt: str) -> str:
    """The receipt's hash of a key: hex SHA-256 of the salt's text followed by the key.

    >>> subject_digest("customer-42", "00") == subject_digest("customer-42", "00")
    True
    """
    return hashlib.sha256((salt + entity_key).encode()).hexdigest()


def check_key(entity_key: object) -> str:
    """The key, or an error saying why it cannot name a subject."""
    if not isinstance(entity_key, str) or not entity_key.strip():
        raise InvalidInputError(
            f"entity key {entity_key!r} is empty; pass the subject's key as logged with its "
            "predictions (the system's entity_key column, e.g. a customer id)"
        )
    if len(entity_key) > _KEY_LIMIT:
        raise InvalidInputError(
            f"entity key of {len(entity_key)} characters is longer than {_KEY_LIMIT}; "
            "pass the key as logged with the predictions"
        )
    return entity_key


def _systems(workspace: Workspace, names: Sequence[str] | None) -> list[SystemInfo]:
    known = {info.name: info for info in workspace.systems()}
    if not names:
        return list(known.values())
    unknown = [name for name in names if name not in known]
    if unknown:
        raise UnknownSystemError(
            f"system {unknown[0]!r} is not declared; pass one of "
            f"{', '.join(sorted(known)) or '(none: run steward apply)'}, or leave --system out "
            "to erase from every system"
        )
    return [known[name] for name in dict.fromkeys(names)]


def erase_subject(
    workspace: Workspace,
    entity_key: str,
    systems: Sequence[str] | None = None,
    *,
    events: EventLog | None = None,
    actor: str | None = None,
) -> ErasureReceipt:
    """Remove one subject's data from every system (or those named); return the receipt.

    ``events`` is the event log this process writes to (default: the workspace's); its
    write-ahead segments are rolled first, so the rewrite reaches them.

    Example::

        erase_subject(steward, "customer-42", ["churn"]).counts["predictions"]  # 3
    """
    key = check_key(entity_key)
    infos = _systems(workspace, systems)
    log = events if events is not None else workspace.events
    by_system = _erase_events(log, infos, key)
    references = _rewrite_references(workspace, infos, key)
    for info in infos:
        counts = by_system[info.name]
        counts["reference_rows"] = sum(
            item["rows_removed"] for item in references if item["system"] == info.name
        )
        counts["export_rows"] = _rewrite_exports(workspace, info, key)
    salt = secrets.token_hex(16)
    digest = subject_digest(key, salt)
    with workspace.store.write() as session:
        decisions = _delete_decisions(session, log, infos, by_system)
        _point_versions(session, references)
        totals = {
            place: sum(counts.get(place, 0) for counts in by_system.values()) for place in PLACES
        }
        entry = audit.record(
            session,
            actor=actor or workspace.actor,
            action=ERASURE_ACTION,
            target="subject",
            details={
                "subject_sha256": digest,
                "salt": salt,
                "systems": [info.name for info in infos],
                "counts": totals,
                "references": references,
            },
            bind=decisions or None,
        )
        audit_id = entry.id
    _drop_old_references(workspace, references)
    _compact_database(workspace)
    names = tuple(info.name for info in infos)
    return ErasureReceipt(digest, salt, names, totals, by_system, references, audit_id)


# The event log


def _erase_events(events: EventLog, infos: list[SystemInfo], key: str) -> dict[str, dict[str, int]]:
    """Erase the subject's events, by prediction id and then by key; the counts per system."""
    events.flush()  # this process's segments (and dead writers') into Parquet, to be rewritten
    by_system: dict[str, dict[str, int]] = {}
    for info in infos:
        ids = events.prediction_ids(info.name, key)
        removed = events.erase_predictions(info.name, ids)
        by_system[info.name] = {
            "predictions": removed["prediction"],
            "shadows": removed["shadow"],
            "outcomes": removed["outcome"],
            "other_events": events.erase(info.name, key),
        }
    return by_system


# Review decisions


def _delete_decisions(
    session: Session,
    events: EventLog,
    infos: list[SystemInfo],
    by_system: dict[str, dict[str, int]],
) -> list[ReviewDecisionRow]:
    """Delete the review decisions on every prediction an id tombstone of the system names
    (this run's and any interrupted one's); return the rows deleted, for the audit binding."""
    erasures = load_erasures(events.root) if events.root.is_dir() else []
    deleted: list[ReviewDecisionRow] = []
    for info in infos:
        hashes = erased_id_hashes(erasures, info.name)
        rows = (
            session.scalars(
                select(ReviewDecisionRow)
                .join(System, System.id == ReviewDecisionRow.system_id)
                .where(System.name == info.name)
            ).all()
            if hashes
            else []
        )
        mine = [row for row in rows if entity_hash(row.prediction_id) in hashes]
        for row in mine:
            session.delete(row)
        by_system[info.name]["review_decisions"] = len(mine)
        deleted.extend(mine)
    session.flush()
    return deleted


# Reference samples


def _without_key(frame: pd.DataFrame, column: str, key: str) -> pd.DataFrame | None:
    """``frame`` without the rows whose ``column`` holds ``key``; None when none does."""
    if not column or column not in frame.columns:
        return None
    matches = frame[column].astype("string").fillna("") == key
    if not bool(matches.any()):
        return None
    return frame[~matches].reset_index(drop=True)


def _rewrite_references(
    workspace: Workspace, infos: list[SystemInfo], key: str
) -> list[dict[str, Any]]:
    """Store each reference sample holding the key again without its rows; return one item per
    version whose sample changed (system, version, old and new hash, rows removed)."""
    changed: list[dict[str, Any]] = []
    rewritten: dict[str, tuple[str, int, int]] = {}
    for info in infos:
        for version in workspace.versions(info.name):
            old = version.data.get("reference_sha256")
            if not old or not workspace.artifacts.exists(str(old)):
                continue
            if old not in rewritten:
                frame = pd.read_parquet(workspace.artifacts.open_path(str(old)))
                kept = _without_key(frame, info.entity_key, key)
                if kept is None:
                    continue
                buffer = io.BytesIO()
                kept.to_parquet(buffer, index=False)
                new = workspace.artifacts.put_bytes(buffer.getvalue())
                rewritten[str(old)] = (new, len(frame) - len(kept), len(kept))
            new, removed, n_rows = rewritten[str(old)]
            changed.append(
                {
                    "system": info.name,
                    "version": version.version,
                    "old_sha256": str(old),
                    "new_sha256": new,
                    "rows_removed": removed,
                    "rows": n_rows,
                }
            )
    return changed


def _point_versions(session: Session, references: list[dict[str, Any]]) -> None:
    """Point each version at its rewritten sample, keeping the old hashes in
    ``data["reference_erasures"]`` (the fingerprint of the full training data is left as it was)."""
    for item in references:
        row = session.scalars(
            select(ModelVersionRow)
            .join(System, System.id == ModelVersionRow.system_id)
            .where(System.name == item["system"], ModelVersionRow.version == item["version"])
        ).one()
        history = list((row.data or {}).get("reference_erasures", []))
        history.append({"old_sha256": item["old_sha256"], "new_sha256": item["new_sha256"]})
        row.data = {
            **(row.data or {}),
            "reference_sha256": item["new_sha256"],
            "reference_rows": item["rows"],
            "reference_erasures": history,
        }


def _drop_old_references(workspace: Workspace, references: list[dict[str, Any]]) -> None:
    """Delete the samples no version points at any more (those of this run and of an interrupted
    one, found in every version's ``reference_erasures``)."""
    candidates = {item["old_sha256"] for item in references}
    in_use: set[str] = set()
    for info in workspace.systems():
        for version in workspace.versions(info.name):
            in_use.add(str(version.data.get("reference_sha256")))
            candidates.update(
                str(entry.get("old_sha256")) for entry in version.data.get("reference_erasures", [])
            )
    for digest in sorted(candidates - in_use):
        workspace.artifacts.remove(digest)


# Retrain exports


def _exports(workspace: Workspace, system: str) -> list[Path]:
    return [
        path for folder in export_folders(workspace, system) for path in folder.glob("*.parquet")
    ]


def _rewrite_exports(workspace: Workspace, info: SystemInfo, key: str) -> int:
    """Rewrite each of the system's retrain exports holding the key without its rows (temporary
    file, fsync, rename); return the rows removed."""
    removed = 0
    for path in _exports(workspace, info.name):
        frame = pd.read_parquet(path)
        kept = _without_key(frame, info.entity_key, key)
        if kept is None:
            continue
        descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".erasure-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                kept.to_parquet(handle, index=False)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        removed += len(frame) - len(kept)
    return removed


# The database


def _compact_database(workspace: Workspace) -> None:
    """On SQLite, VACUUM and truncate the write-ahead file, so the deleted rows' bytes leave the
    database's free pages and its WAL; PostgreSQL's own VACUUM reclaims them (docs/erasure.md)."""
    store = workspace.store
    if store.dialect != "sqlite":
        return
    with store.engine.connect() as connection:
        raw = connection.connection.driver_connection
        assert raw is not None
        for statement in (
            "PRAGMA wal_checkpoint(TRUNCATE)",
            "VACUUM",
            "PRAGMA wal_checkpoint(TRUNCATE)",
        ):
            busy = raw.execute(statement).fetchone()
            if busy is not None and busy[0]:
                logger.warning(
                    "erasure: %s could not finish (a reader holds the database); the deleted "
                    "rows' bytes may stay in the write-ahead file until its next checkpoint",
                    statement,
                )
