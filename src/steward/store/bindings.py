"""Tables and event-log files bound to the audit log: what an entry commits to, and the check.

An audit entry that writes a row of a bound table binds it: ``audit.record(..., bind=row)`` adds
``{"table", "id", "sha256"}`` to the entry's ``details["rows"]``, where ``sha256`` is the SHA-256
of the row's canonical JSON (``row_digest``: its bound columns, keys sorted, datetimes as ISO 8601
text in UTC, JSON columns with their keys sorted) as the database holds it once flushed, or null
when the entry deleted the row. The workspace's event log commits its Parquet files the same way,
in ``events.files`` entries (``{"added": {path: sha256}, "removed": [path], "reason": ...}``).

``compare`` replays the entries in order, keeps the latest digest of each (table, id) and of each
file, and compares them with the tables and the disk: a row or file whose digest differs is
edited, one missing is deleted, one that no entry binds was inserted (for a file: or written by a
process that crashed before committing it).

Rows and files written before binding existed are bound by no entry. A log begun since then says
so in its first entry (``details["binding"]``: the tables bound, and whether event files are);
an older log says it in an ``audit.bind`` entry, written by ``steward audit bind``, that binds
every row and file then present. Until a table (or the event files) is covered so, what no entry
binds is reported as "not bound (written before binding)": neither intact nor broken.

To bind another table, add it to ``BINDINGS``, e.g.::

    BINDINGS["notes"] = (NoteRow, ("system_id", "text", "written_by", "written_at"))

then pass each row written to it to the ``audit.record`` call of the same transaction
(``bind=row``, or a list of rows), and run ``steward audit bind`` once in each existing workspace
to bind the rows written before (until then they are reported as not bound). Workspaces created
afterwards cover the table from their first entry.

>>> row_digest({"b": 1, "a": {"y": 2, "x": None}}) == row_digest({"a": {"x": None, "y": 2}, "b": 1})
True
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import and_, inspect, select
from sqlalchemy.orm import Session

from steward._util.hashing import file_sha256
from steward.store import (
    AliasMove,
    AliasRow,
    ApprovalRow,
    Base,
    EvalRunRow,
    IdentityRow,
    PromptLabelMove,
    PromptLabelRow,
    PromptVersionRow,
    ReviewDecisionRow,
    SuspensionRow,
    TokenRow,
)

__all__ = [
    "BINDINGS",
    "BIND_ACTION",
    "EVENT_FILES",
    "FILES_ACTION",
    "Comparison",
    "Finding",
    "binding_marker",
    "bound_rows",
    "compare",
    "event_files",
    "file_sha256",
    "row_digest",
]

#: Bound tables: name -> (ORM class, the columns whose values the digest covers).
BINDINGS: dict[str, tuple[type[Base], tuple[str, ...]]] = {
    "alias_history": (
        AliasMove,
        (
            "system_id",
            "alias",
            "action",
            "from_version",
            "to_version",
            "moved_by",
            "moved_at",
            "reason",
        ),
    ),
    "aliases": (AliasRow, ("system_id", "name", "version", "moved_by", "moved_at")),
    "approvals": (
        ApprovalRow,
        (
            "system_id",
            "kind",
            "subject",
            "state",
            "reason",
            "requested_by",
            "requested_at",
            "decided_by",
            "decided_at",
            "decision_note",
        ),
    ),
    "prompt_versions": (
        PromptVersionRow,
        (
            "system_id",
            "prompt",
            "version",
            "sha256",
            "path",
            "source",
            "spec",
            "code",
            "registered_by",
            "registered_at",
        ),
    ),
    "prompt_labels": (
        PromptLabelRow,
        ("system_id", "prompt", "name", "version", "moved_by", "moved_at"),
    ),
    "prompt_label_history": (
        PromptLabelMove,
        (
            "system_id",
            "prompt",
            "label",
            "action",
            "from_version",
            "to_version",
            "moved_by",
            "moved_at",
            "reason",
            "eval_run_id",
        ),
    ),
    "eval_runs": (
        EvalRunRow,
        (
            "system_id",
            "prompt",
            "version",
            "baseline_version",
            "baseline_label",
            "eval_set",
            "eval_set_sha256",
            "provider",
            "decision",
            "summary",
            "result",
            "created_by",
            "created_at",
        ),
    ),
    "review_decisions": (
        ReviewDecisionRow,
        (
            "system_id",
            "prediction_id",
            "proposed_action",
            "action",
            "overridden",
            "note",
            "decided_by",
            "decided_at",
        ),
    ),
    "suspensions": (
        SuspensionRow,
        (
            "system_id",
            "mode",
            "fallback_action",
            "reason",
            "started_by",
            "started_at",
            "ended_by",
            "ended_at",
        ),
    ),
    "identities": (
        IdentityRow,
        ("name", "kind", "role", "created_by", "created_at", "disabled_at"),
    ),
    # Not last_used_at: it moves on use, which is not a change anyone makes.
    "tokens": (
        TokenRow,
        (
            "key",
            "kind",
            "identity_id",
            "role",
            "secret_sha256",
            "note",
            "created_by",
            "created_at",
            "expires_at",
            "revoked_at",
            "revoked_by",
        ),
    ),
}

#: The action of the entries that commit event-log Parquet files.
FILES_ACTION = "events.files"
#: The action of the entry ``steward audit bind`` writes.
BIND_ACTION = "audit.bind"
#: What a finding about an event-log file names instead of a table.
EVENT_FILES = "event file"

NOT_BOUND = "not bound (written before binding)"


# Digests


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return moment.astimezone(UTC).isoformat()
    return value


def row_digest(values: Mapping[str, Any]) -> str:
    """The SHA-256 of a row's canonical JSON: its bound columns, keys sorted at every depth,
    datetimes as ISO 8601 text in UTC, no spaces, ASCII only."""
    body = json.dumps(
        {name: _plain(value) for name, value in values.items()},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(body.encode()).hexdigest()


def _key_names(row_class: type[Base]) -> list[str]:
    mapper = inspect(row_class)
    return [mapper.get_property_by_column(column).key for column in mapper.primary_key]


def _identity(values: Sequence[Any]) -> Any:
    """A row's id as an entry records it: the key's value, or a list for a composite key."""
    return values[0] if len(values) == 1 else list(values)


def _key(table: str, identity: Any) -> tuple[str, str]:
    return table, json.dumps(identity, sort_keys=True)


def _digests(session: Session, table: str, where: Any = None) -> Iterator[tuple[Any, str]]:
    """(id, digest) of each row of a bound table (those matching ``where``), from the database."""
    row_class, columns = BINDINGS[table]
    keys = _key_names(row_class)
    query = select(*(getattr(row_class, name) for name in (*keys, *columns)))
    if where is not None:
        query = query.where(where)
    for row in session.execute(query):
        yield (
            _identity(row[: len(keys)]),
            row_digest(dict(zip(columns, row[len(keys) :], strict=True))),
        )


def bound_rows(session: Session, rows: object) -> list[dict[str, Any]]:
    """What an entry binds for ``rows`` (an ORM row of a bound table, or a list of them): each
    row's table, id and digest as the database holds it now (flushed first), or a null digest for
    a row this transaction deleted."""
    session.flush()
    bound = []
    for row in rows if isinstance(rows, list | tuple) else [rows]:
        table = getattr(row, "__tablename__", None)
        if table not in BINDINGS or not isinstance(row, BINDINGS[table][0]):
            raise TypeError(
                f"bind={row!r}: not a row of a bound table ({', '.join(sorted(BINDINGS))}); "
                "add its table to steward.store.bindings.BINDINGS first"
            )
        identity_values = inspect(row).identity
        if identity_values is None:
            raise TypeError(f"bind={row!r}: the row has no primary key yet; add it to the session")
        key_columns = [getattr(type(row), name) for name in _key_names(type(row))]
        where = and_(*(c == v for c, v in zip(key_columns, identity_values, strict=True)))
        found = list(_digests(session, table, where))
        identity = _identity(list(identity_values))
        bound.append({"table": table, "id": identity, "sha256": found[0][1] if found else None})
    return bound


def binding_marker(tables: Iterable[str] | None = None, event_files: bool = True) -> dict[str, Any]:
    """What an entry says it covers from its position on: these tables (default: every bound
    table) and, when ``event_files``, the event log's Parquet files."""
    return {"tables": sorted(BINDINGS if tables is None else tables), "event_files": event_files}


# The check


@dataclass(frozen=True)
class Finding:
    """A row or event-log file that differs from what the audit log binds.

    ``table`` is the bound table (or ``"event file"``), ``id`` the row's id (a list for a
    composite key) or the file's path under the event log's root, ``what`` what is wrong, and
    ``broken`` whether it shows tampering (a row written before binding existed does not).
    """

    table: str
    id: Any
    what: str
    broken: bool
    #: The digest of the row or file as it is now (None when it is gone).
    sha256: str | None = None

    @property
    def where(self) -> str:
        """The table (or ``event file``) and the id: ``alias_history 3``."""
        identity = self.id if isinstance(self.id, int | str) else json.dumps(self.id)
        return f"{self.table} {identity}"

    def __str__(self) -> str:
        return f"{self.where}: {self.what}"


@dataclass
class _Expected:
    """What the entries bind, replayed in order: the latest digest of each row and file, with the
    id of the entry that bound it, and what the log covers."""

    rows: dict[tuple[str, str], tuple[Any, str | None, int]] = field(default_factory=dict)
    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    tables: set[str] = field(default_factory=set)
    event_files: bool = False


def _cover(expected: _Expected, marker: Any) -> None:
    """Add what a first entry's or an ``audit.bind`` entry's ``binding`` marker covers."""
    if not isinstance(marker, dict):
        return
    tables = marker.get("tables")
    if isinstance(tables, list):
        expected.tables.update(table for table in tables if isinstance(table, str))
    expected.event_files = expected.event_files or marker.get("event_files") is True


def _replay(entries: Sequence[Any]) -> _Expected:
    expected = _Expected()
    for index, entry in enumerate(entries):
        details = entry.details if isinstance(entry.details, dict) else {}
        if index == 0 or entry.action == BIND_ACTION:
            _cover(expected, details.get("binding"))
        for item in details.get("rows") or []:
            if isinstance(item, dict) and isinstance(item.get("table"), str):
                key = _key(item["table"], item.get("id"))
                expected.rows[key] = (item.get("id"), item.get("sha256"), entry.id)
        if entry.action == FILES_ACTION:
            for path in details.get("removed") or []:
                expected.files.pop(str(path), None)
            added = details.get("added")
            for path, digest in added.items() if isinstance(added, dict) else []:
                expected.files[str(path)] = (str(digest), entry.id)
    return expected


def _check_rows(session: Session, expected: _Expected) -> tuple[list[Finding], int]:
    present = {
        _key(table, identity): digest
        for table in sorted(BINDINGS)
        for identity, digest in _digests(session, table)
    }
    n_rows = len(present)
    findings: list[Finding] = []
    for (table, key), (identity, bound, entry_id) in sorted(expected.rows.items()):
        if table not in BINDINGS:  # a table no longer bound: nothing to compare it with
            continue
        now = present.pop((table, key), None)
        if bound is None and now is not None:
            what = f"inserted again after entry {entry_id} recorded its deletion"
            findings.append(Finding(table, identity, what, True, now))
        elif bound is not None and now is None:
            findings.append(Finding(table, identity, f"deleted (bound by entry {entry_id})", True))
        elif now is not None and now != bound:
            what = f"edited (differs from what entry {entry_id} bound)"
            findings.append(Finding(table, identity, what, True, now))
    for (table, key), digest in sorted(present.items()):
        covered = table in expected.tables
        what = "inserted, not in the audit log" if covered else NOT_BOUND
        findings.append(Finding(table, json.loads(key), what, covered, digest))
    return findings, n_rows


def event_files(root: Path) -> dict[str, Path]:
    """The published Parquet files of an event log, by path relative to its root: those of its
    partitions, ``kind=K/system=S/date=D/*.parquet``, as its readers find them (hidden
    temporaries and renamed-away partitions left out; other Parquet files under the root, such
    as stored profiles, are not the event log's)."""
    found = {}
    for path in root.glob("kind=*/system=*/date=*/*.parquet"):
        if not path.name.startswith(".") and path.is_file():
            found[path.relative_to(root).as_posix()] = path
    return dict(sorted(found.items()))


def _check_files(root: Path, expected: _Expected) -> tuple[list[Finding], int]:
    findings: list[Finding] = []
    on_disk = event_files(root)
    for relative, (committed, entry_id) in sorted(expected.files.items()):
        path = on_disk.pop(relative, None)
        if path is None:
            what = f"deleted (committed by entry {entry_id})"
            findings.append(Finding(EVENT_FILES, relative, what, True))
            continue
        digest = file_sha256(path)
        if digest != committed:
            what = f"edited (differs from what entry {entry_id} committed)"
            findings.append(Finding(EVENT_FILES, relative, what, True, digest))
    for relative, path in on_disk.items():
        covered = expected.event_files
        what = (
            "not committed: inserted, or written by a process that crashed before committing it"
            if covered
            else NOT_BOUND
        )
        findings.append(Finding(EVENT_FILES, relative, what, covered, file_sha256(path)))
    return findings, len(expected.files) + len(on_disk)


@dataclass(frozen=True)
class Comparison:
    """What ``compare`` found: the findings, how many rows (and files) it compared, and what the
    log does not cover yet (``steward audit bind`` covers them)."""

    findings: tuple[Finding, ...]
    n_rows: int
    n_files: int | None
    uncovered_tables: tuple[str, ...]
    files_uncovered: bool


def compare(session: Session, entries: Sequence[Any], events_dir: Path | None) -> Comparison:
    """Replay ``entries`` (the audit log in order: ``id``, ``action``, ``details``) and compare
    what they bind with the bound tables (read in ``session``) and with the Parquet files under
    ``events_dir`` (not checked when it is None)."""
    expected = _replay(entries)
    findings, n_rows = _check_rows(session, expected)
    n_files = None
    if events_dir is not None:
        file_findings, n_files = _check_files(events_dir, expected)
        findings.extend(file_findings)
    return Comparison(
        tuple(findings),
        n_rows,
        n_files,
        tuple(sorted(set(BINDINGS) - expected.tables)),
        events_dir is not None and not expected.event_files,
    )
