"""The audit log: append-only, a Merkle tree with signed checkpoints kept outside the database.

Each entry is a leaf of an RFC 9162 Merkle tree (``steward.store.merkle``): the leaf is the
entry's canonical JSON (time, actor, action, target, details and its index, from 0, in the log).
Now and then the tree's size and root are signed with the workspace's Ed25519 key and appended to a
checkpoint file beside the database (``steward.store.checkpoints``): every ``CHECKPOINT_EVERY``
entries, and on ``steward audit checkpoint``. ``verify`` recomputes the tree from the table and
checks that it extends every checkpoint (an RFC 9162 consistency proof from the checkpoint's size to
the log's): an entry edited, deleted, inserted or reordered before a checkpoint's size, or a tail
cut off, shows even when whoever did it recomputed every hash the database holds.

Each entry also keeps the older hash chain: ``hash`` is the SHA-256 of the previous entry's hash and
the entry's canonical JSON without its index. ``verify`` checks it first and names the first entry
that breaks it.

The log also binds the rows of some tables and the event log's Parquet files
(``steward.store.bindings``): ``record(..., bind=row)`` puts the row's digest in the entry, and
``verify`` then compares the tables and the files with what the entries bind. ``docs/audit.md``
says what this protects and what it does not.

>>> from steward.store import open_store
>>> store = open_store("sqlite:///:memory:")
>>> with store.write() as session:
...     _ = record(session, actor="ana", action="system.create", target="churn", details={})
>>> verify(store).message
'intact: 1 entry, consistent with 0 checkpoints; 0 bound rows match'
"""

from __future__ import annotations

import bisect
import contextlib
import dataclasses
import functools
import hashlib
import json
import logging
import time
import weakref
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine, Row
from sqlalchemy.orm import Session

from steward.errors import ConflictError, InvalidInputError, NotFoundError
from steward.store import AuditRow, Store, bindings, utcnow
from steward.store.checkpoints import (
    CHECKPOINT_FILE,
    PUBLIC_KEY_FILE,
    Checkpoint,
    VerifierKey,
    append_note,
    load_signer,
    open_note,
    post_note,
    read_notes,
    read_verifier_key,
    sign_note,
)
from steward.store.merkle import MerkleTree, leaf_hash, verify_consistency, verify_inclusion

__all__ = [
    "CHECKPOINT_EVERY",
    "CHECKPOINT_INTERVAL",
    "GENESIS",
    "AuditCheck",
    "BindResult",
    "ProofCheck",
    "bind_existing",
    "checkpoint",
    "checkpoint_if_due",
    "leaf_bytes",
    "prove",
    "publish_checkpoints",
    "record",
    "verify",
    "verify_inclusion_proof",
]

GENESIS = "0" * 64
#: A checkpoint is signed each time the log reaches a multiple of this many entries.
CHECKPOINT_EVERY = 100
#: ... and, by the loop of ``steward serve``, when the log grew and the last one is this old.
CHECKPOINT_INTERVAL = timedelta(hours=1)

_log = logging.getLogger(__name__)
# pg_advisory_xact_lock key: one appender at a time, so entry ids follow commit order.
_APPEND_LOCK = int.from_bytes(hashlib.sha256(b"steward.audit_log").digest()[:8], "big", signed=True)
_CHECKPOINT_DUE = "steward.audit.checkpoint_due"


def _canonical(fields: Mapping[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def _entry_hash(
    prev_hash: str, at: datetime, actor: str, action: str, target: str, details: dict[str, Any]
) -> str:
    body = _canonical(
        {
            "at": at.isoformat(),
            "actor": actor,
            "action": action,
            "target": target,
            "details": details,
        }
    )
    return hashlib.sha256((prev_hash + body).encode()).hexdigest()


def leaf_bytes(entry: Mapping[str, Any]) -> bytes:
    """The leaf of one entry: the canonical JSON of its ``at`` (ISO 8601 text), ``actor``,
    ``action``, ``target``, ``details`` and ``index`` (keys sorted, no spaces, ASCII only).

    >>> leaf_bytes({"id": 1, "index": 0, "at": "2026-03-02T09:00:00+00:00", "actor": "ana",
    ...             "action": "system.create", "target": "churn", "details": {}})
    b'{"action":"system.create","actor":"ana","at":"2026-03-02T09:00:00+00:00","details":{},"index":0,"target":"churn"}'
    """
    fields = ("at", "actor", "action", "target", "details", "index")
    return _canonical({name: entry[name] for name in fields}).encode()


def record(
    session: Session,
    *,
    actor: str,
    action: str,
    target: str,
    details: dict[str, Any],
    bind: object = None,
) -> AuditRow:
    """Append one entry inside the caller's write transaction (which holds the store's write lock;
    on PostgreSQL a transaction-scoped advisory lock also serializes appenders).

    ``bind`` is a row of a bound table (``bindings.BINDINGS``), or a list of them, that this
    transaction wrote: the entry's ``details["rows"]`` then holds each row's table, id and digest
    (the session is flushed first), and ``verify`` reports the row if it later changes without an
    entry. The first entry of a new log also records what the log binds from its start.
    """
    connection = session.get_bind()
    if connection.dialect.name == "postgresql":
        session.execute(select(func.pg_advisory_xact_lock(_APPEND_LOCK)))
    if bind is not None:
        details = {**details, "rows": bindings.bound_rows(session, bind)}
    last = session.scalars(select(AuditRow).order_by(AuditRow.id.desc()).limit(1)).first()
    if last is None:  # a new log: every bound table and the event files are bound from here
        details = {**details, "binding": bindings.binding_marker()}
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
    if isinstance(connection, Engine):
        _schedule_checkpoint(session, connection)
    return row


def _schedule_checkpoint(session: Session, engine: Engine) -> None:
    """When the log now holds a multiple of ``every`` entries, sign a checkpoint once this
    transaction commits (not before: a rolled-back entry must not be signed)."""
    publisher = _PUBLISHERS.get(engine)
    if publisher is None or session.info.get(_CHECKPOINT_DUE):
        return
    size = session.scalar(select(func.count()).select_from(AuditRow)) or 0
    if size % publisher.every == 0:
        session.info[_CHECKPOINT_DUE] = True
        callback = functools.partial(_publish_after_commit, engine, publisher)
        event.listen(session, "after_commit", callback, once=True)


# Checking


@dataclass(frozen=True)
class AuditCheck:
    """What ``verify`` found: ``ok`` (intact), and where the log breaks when it does not hold.

    ``findings`` are the bound rows and event-log files that differ from what the log binds
    (``bindings.Finding``); one with ``broken`` false was written before binding existed.
    """

    ok: bool
    n_entries: int
    first_bad_id: int | None = None
    reason: str = ""
    n_checkpoints: int = 0
    latest_size: int | None = None
    #: Which checkpoint failed ("checkpoint 3 in FILE (size 200)"), when one did.
    checkpoint: str = ""
    findings: tuple[bindings.Finding, ...] = ()
    #: How many rows of the bound tables, and event-log files (None: not checked), were compared.
    n_rows: int = 0
    n_files: int | None = None

    @property
    def broken(self) -> bool:
        """Whether something is known to have been tampered with (not merely left unverified)."""
        known = self.first_bad_id is not None or bool(self.checkpoint)
        return known or any(finding.broken for finding in self.findings)

    @property
    def message(self) -> str:
        if self.ok:
            return f"intact: {self._log_summary()}; {self._bound_summary()} match"
        if self.checkpoint:
            return f"broken: {self.checkpoint}: {self.reason}"
        if self.first_bad_id is not None:
            return f"broken at entry {self.first_bad_id}: {self.reason}"
        if self.findings:
            return self._findings_message()
        return f"not verified: {self.reason}"  # nothing is known bad: the check could not run

    def _log_summary(self) -> str:
        latest = "" if self.latest_size is None else f" (latest at size {self.latest_size})"
        entries = _count(self.n_entries, "entry", "entries")
        checkpoints = _count(self.n_checkpoints, "checkpoint", "checkpoints")
        return f"{entries}, consistent with {checkpoints}{latest}"

    def _bound_summary(self) -> str:
        rows = _count(self.n_rows, "bound row", "bound rows")
        if self.n_files is None:
            return rows
        return f"{rows} and {_count(self.n_files, 'event-log file', 'event-log files')}"

    def _findings_message(self) -> str:
        broken = [finding for finding in self.findings if finding.broken]
        unbound = [finding for finding in self.findings if not finding.broken]
        if broken:
            tail = f"; and {len(unbound)} not bound (written before binding)" if unbound else ""
            return (
                f"broken: {_count(len(broken), 'row or file differs', 'rows or files differ')} "
                f"from the audit log: {_listed(broken)}{tail}"
            )
        return (
            f"not fully verified: the log is intact ({self._log_summary()}), but "
            f"{_count(len(unbound), 'row or file is', 'rows or files are')} not bound (written "
            f"before binding): {_listed(unbound, named=False)}; run `steward audit bind` once to "
            "bind them"
        )


def _count(n: int, one: str, many: str) -> str:
    return f"{n} {one if n == 1 else many}"


def _listed(findings: Sequence[bindings.Finding], most: int = 5, named: bool = True) -> str:
    shown = "; ".join(str(f) if named else f.where for f in findings[:most])
    return shown + (f"; and {len(findings) - most} more" if len(findings) > most else "")


@dataclass(frozen=True)
class _Log:
    """The table read once: the entries in id order and their Merkle tree."""

    rows: list[Row[Any]]
    tree: MerkleTree

    @property
    def ids(self) -> list[int]:
        return [row.id for row in self.rows]


def _read_log(engine: Engine) -> _Log:
    with Session(engine) as session:
        return _read_log_in(session)


@contextlib.contextmanager
def _snapshot(engine: Engine) -> Iterator[Session]:
    """A read-only transaction that sees one state of the database throughout (on PostgreSQL,
    REPEATABLE READ; SQLite's WAL snapshot holds for the whole transaction anyway)."""
    if engine.dialect.name == "postgresql":
        engine = engine.execution_options(isolation_level="REPEATABLE READ")
    with Session(engine) as session, session.begin():
        yield session


def _read_log_in(session: Session) -> _Log:
    columns = (
        AuditRow.id,
        AuditRow.at,
        AuditRow.actor,
        AuditRow.action,
        AuditRow.target,
        AuditRow.details,
        AuditRow.prev_hash,
        AuditRow.hash,
    )
    rows = list(session.execute(select(*columns).order_by(AuditRow.id)))
    leaves = [
        leaf_hash(
            _canonical(
                {
                    "at": row.at.isoformat(),
                    "actor": row.actor,
                    "action": row.action,
                    "target": row.target,
                    "details": row.details,
                    "index": index,
                }
            ).encode()
        )
        for index, row in enumerate(rows)
    ]  # leaf_bytes(_entry(row, index)), without building each entry twice
    return _Log(rows, MerkleTree(leaves))


def _entry(row: Row[Any], index: int) -> dict[str, Any]:
    return {
        "id": row.id,
        "index": index,
        "at": row.at.isoformat(),
        "actor": row.actor,
        "action": row.action,
        "target": row.target,
        "details": row.details,
    }


def _check_chain(log: _Log) -> AuditCheck | None:
    """The first entry that breaks the hash chain, if one does."""
    prev_hash = GENESIS
    for count, row in enumerate(log.rows, 1):
        if row.prev_hash != prev_hash:
            return AuditCheck(False, count, row.id, "an entry before it was removed or edited")
        expected = _entry_hash(prev_hash, row.at, row.actor, row.action, row.target, row.details)
        if row.hash != expected:
            return AuditCheck(False, count, row.id, "its content was edited after it was written")
        prev_hash = row.hash
    return None


@dataclass(frozen=True)
class _Signed:
    label: str
    checkpoint: Checkpoint
    note: str


def _open_checkpoints(
    files: Sequence[Path], verifier: VerifierKey
) -> tuple[list[_Signed], AuditCheck | None]:
    """Every checkpoint in ``files`` whose signature checks out, or the first one that does not."""
    signed: list[_Signed] = []
    for path in files:
        for number, note in enumerate(read_notes(path), 1):
            label = f"checkpoint {number} in {path}"
            try:
                checkpoint = Checkpoint.parse(open_note(note, verifier))
            except InvalidInputError as error:
                return signed, AuditCheck(False, 0, reason=str(error), checkpoint=label)
            if checkpoint.origin != verifier.name:
                reason = f"its origin {checkpoint.origin!r} is not the log {verifier.name!r}"
                return signed, AuditCheck(False, 0, reason=reason, checkpoint=label)
            signed.append(_Signed(f"{label} (size {checkpoint.size})", checkpoint, note))
    return signed, None


def _extends(log: _Log, checkpoint: Checkpoint) -> bool:
    """Is the tree of the table consistent with ``checkpoint`` (RFC 9162 §2.1.4)?"""
    size = log.tree.size
    if checkpoint.size > size:
        return False
    proof = log.tree.consistency_proof(checkpoint.size)
    return verify_consistency(checkpoint.size, size, checkpoint.root_hash, log.tree.root(), proof)


def _check_log(log: _Log, files: Sequence[Path], verifier: VerifierKey | None) -> AuditCheck:
    n = log.tree.size
    broken = _check_chain(log)
    if broken is not None:
        return broken
    if not files:
        return AuditCheck(True, n)
    if verifier is None:
        return AuditCheck(False, n, reason="there is no verifier key to check the checkpoints with")
    signed, failure = _open_checkpoints(files, verifier)
    if failure is not None:
        return AuditCheck(False, n, reason=failure.reason, checkpoint=failure.checkpoint)
    failed = sorted((s for s in signed if not _extends(log, s.checkpoint)), key=_size)
    if not failed:
        latest = max((s.checkpoint.size for s in signed), default=None)
        return AuditCheck(True, n, n_checkpoints=len(signed), latest_size=latest)
    first = failed[0]
    size = first.checkpoint.size
    if size > n:
        reason = (
            f"it covers {size} entries but the log holds only {n}: entries were deleted "
            "or cut off the end"
        )
        return AuditCheck(False, n, None, reason, len(signed), checkpoint=first.label)
    if size == 0:
        reason = "it signs a root for the empty log that is not the empty tree's hash"
        return AuditCheck(False, n, None, reason, len(signed), checkpoint=first.label)
    # The change lies after the largest checkpoint below it that still holds.
    held = max((s.checkpoint.size for s in signed if s.checkpoint.size < size), default=0)
    ids = log.ids
    still = f"the first {held} still match, so " if held else ""
    reason = (
        f"the first {size} entries no longer hash to its signed root; {still}an entry from id "
        f"{ids[held]} to id {ids[size - 1]} was edited, deleted, inserted or reordered"
    )
    return AuditCheck(False, n, ids[held], reason, len(signed), checkpoint=first.label)


def _size(signed: _Signed) -> int:
    return signed.checkpoint.size


def verify(
    store: Store,
    directory: Path | None = None,
    checkpoint_files: Sequence[Path] = (),
    public_key: Path | None = None,
    events_dir: Path | None = None,
) -> AuditCheck:
    """Recompute the hash chain and the tree from the table; check every checkpoint in
    ``checkpoint_files`` (by default ``directory``'s own file, if any) with the verifier key in
    ``public_key`` (by default ``directory``'s), and that the log extends each of them. Then
    replay what the entries bind and compare it with the bound tables and, given
    ``events_dir``, with the event log's Parquet files there (hold the event log's files still
    meanwhile: ``EventLog.holding_files``)."""
    files = list(checkpoint_files)
    if not files and directory is not None and (directory / CHECKPOINT_FILE).exists():
        files = [directory / CHECKPOINT_FILE]
    key_path = public_key or (directory / PUBLIC_KEY_FILE if directory is not None else None)
    with _snapshot(store.engine) as session:
        log = _read_log_in(session)
        if files and (key_path is None or not key_path.exists()):
            where = "given" if key_path is None else f"at {key_path}"
            return AuditCheck(
                False,
                log.tree.size,
                reason=f"no verifier key {where} to check the checkpoints with; "
                "pass --public-key with a copy of audit-signing.pub",
            )
        verifier = read_verifier_key(key_path) if files and key_path is not None else None
        check = _check_log(log, files, verifier)
        if not check.ok:
            return check
        compared = bindings.compare(session, log.rows, events_dir)
    return dataclasses.replace(
        check,
        ok=not compared.findings,
        findings=compared.findings,
        n_rows=compared.n_rows,
        n_files=compared.n_files,
    )


# Binding what was written before binding existed


@dataclass(frozen=True)
class BindResult:
    """What ``bind_existing`` bound, and in which entry (None when there was nothing to bind)."""

    n_rows: int
    n_files: int
    entry_id: int | None
    #: The tables (and ``event files``) the log covers from that entry on.
    covered: tuple[str, ...] = ()

    @property
    def message(self) -> str:
        if self.entry_id is None:
            return "nothing to bind: the audit log already binds every bound table and file"
        rows = _count(self.n_rows, "row", "rows")
        files = _count(self.n_files, "event-log file", "event-log files")
        return (
            f"bound {rows} and {files} written before binding, in entry {self.entry_id}; "
            f"covered from now on: {', '.join(self.covered)}"
        )


def bind_existing(
    store: Store, directory: Path | None, *, actor: str, events_dir: Path | None = None
) -> BindResult:
    """Once, in a workspace begun before binding existed: bind every row of the bound tables,
    and every Parquet file under ``events_dir``, that no entry binds yet, in an ``audit.bind``
    entry (the files in an ``events.files`` entry before it), and cover those tables and files
    from then on. Refused when ``verify`` finds the log, or a bound row or file, broken: this
    vouches for what is there now, so it must never bind what was tampered with. Hold the event
    log's files still meanwhile (``EventLog.holding_files``)."""
    check = verify(store, directory, events_dir=events_dir)
    if check.broken or (not check.ok and not check.findings):
        raise ConflictError(
            f"audit log {check.message}; nothing was bound. Find out what changed (restore the "
            "database or the files from a backup) before binding"
        )
    with store.write() as session:
        compared = bindings.compare(session, _read_log_in(session).rows, events_dir)
        if any(finding.broken for finding in compared.findings):
            raise ConflictError("the bound tables or files changed while binding; run it again")
        rows = [
            {"table": f.table, "id": f.id, "sha256": f.sha256}
            for f in compared.findings
            if f.table != bindings.EVENT_FILES
        ]
        files = {f.id: f.sha256 for f in compared.findings if f.table == bindings.EVENT_FILES}
        covered = list(compared.uncovered_tables)
        if not (rows or files or covered or compared.files_uncovered):
            return BindResult(0, 0, None)
        summary = f"{_count(len(rows), 'row', 'rows')} and {_count(len(files), 'file', 'files')}"
        if files:
            details = {"summary": f"baseline: {len(files)} added", "reason": "baseline"}
            record(
                session,
                actor=actor,
                action=bindings.FILES_ACTION,
                target="events",
                details={**details, "added": files, "removed": []},
            )
        marker = bindings.binding_marker(covered, compared.files_uncovered)
        entry = record(
            session,
            actor=actor,
            action=bindings.BIND_ACTION,
            target="audit",
            details={
                "summary": f"bound {summary} written before binding",
                "binding": marker,
                "rows": rows,
            },
        )
        named = (*covered, bindings.EVENT_FILES + "s") if compared.files_uncovered else covered
        return BindResult(len(rows), len(files), entry.id, tuple(named))


# Signing


def _latest(directory: Path, verifier: VerifierKey) -> _Signed | None:
    path = directory / CHECKPOINT_FILE
    signed = _open_checkpoints([path], verifier)[0] if path.exists() else []
    return max(signed, key=_size, default=None)


def _sign(log: _Log, directory: Path) -> _Signed:
    """Sign the tree of ``log`` and append it to the checkpoint file, unless the log fails
    ``verify`` against that file: a log never signs a tree that contradicts an earlier one."""
    signer = load_signer(directory)
    path = directory / CHECKPOINT_FILE
    check = _check_log(log, [path] if path.exists() else [], signer.verifier)
    if not check.ok:
        raise ConflictError(
            f"audit log {check.message}; not signing a checkpoint of it. "
            "Run `steward audit verify` and restore the database from a backup"
        )
    checkpoint = Checkpoint(signer.name, log.tree.size, log.tree.root())
    note = sign_note(checkpoint.text(), signer)
    append_note(path, note)
    webhook = _WEBHOOKS.get(directory.resolve())
    if webhook:
        post_note(webhook, note)
    return _Signed(f"checkpoint at size {checkpoint.size}", checkpoint, note)


def checkpoint(store: Store, directory: Path) -> Checkpoint:
    """Sign the log's tree as it is now and append the checkpoint to ``directory``'s file."""
    return _sign(_read_log(store.engine), directory).checkpoint


def checkpoint_if_due(
    store: Store, directory: Path, every: timedelta = CHECKPOINT_INTERVAL
) -> Checkpoint | None:
    """Sign a checkpoint if the log grew since the last one and that one is older than ``every``
    (by the checkpoint file's modification time): so a quiet log is still signed now and then,
    not only each ``CHECKPOINT_EVERY`` entries. ``steward serve``'s loop calls it every tick."""
    path = directory / CHECKPOINT_FILE
    last_size = 0
    if path.exists():
        age = time.time() - path.stat().st_mtime
        if age < every.total_seconds():
            return None
        notes = read_notes(path)
        if notes:
            last_size = Checkpoint.parse(notes[-1].split("\n\n", 1)[0] + "\n").size
    with store.read() as session:
        size = session.scalar(select(func.count()).select_from(AuditRow)) or 0
    if size <= last_size:
        return None
    return checkpoint(store, directory)


@dataclass(frozen=True)
class _Publisher:
    directory: Path
    every: int


_PUBLISHERS: weakref.WeakKeyDictionary[Engine, _Publisher] = weakref.WeakKeyDictionary()
#: Where each checkpoint signed into a directory is also sent (the ``audit_webhook`` setting).
_WEBHOOKS: dict[Path, str] = {}


def publish_checkpoints(
    store: Store, directory: Path, every: int = CHECKPOINT_EVERY, webhook: str = ""
) -> None:
    """From now on, sign a checkpoint into ``directory`` after each commit that brings the log to a
    multiple of ``every`` entries, and POST each checkpoint signed into ``directory`` to
    ``webhook`` when one is given. Calling it again for the same store changes nothing."""
    if every < 1:
        raise InvalidInputError(f"checkpoints every {every} entries: give a number >= 1")
    if webhook:
        _WEBHOOKS[directory.resolve()] = webhook
    publisher = _Publisher(directory, every)
    if _PUBLISHERS.get(store.engine) != publisher:
        _PUBLISHERS[store.engine] = publisher


def _publish_after_commit(engine: Engine, publisher: _Publisher, session: Session) -> None:
    session.info.pop(_CHECKPOINT_DUE, None)
    try:
        _sign(_read_log(engine), publisher.directory)
    except (OSError, ConflictError, InvalidInputError) as error:
        # The change is committed; refusing it now would help no one. verify will say more.
        _log.warning("audit checkpoint not written to %s: %s", publisher.directory, error)


# Proving


@dataclass(frozen=True)
class ProofCheck:
    ok: bool
    reason: str


def prove(store: Store, directory: Path, entry_id: int) -> dict[str, Any]:
    """The inclusion proof of one entry in the tree of the latest checkpoint that covers it
    (signing one now when none does), checkable with the verifier key alone."""
    log = _read_log(store.engine)
    ids = log.ids
    index = _index_of(ids, entry_id)
    signer = load_signer(directory)
    path = directory / CHECKPOINT_FILE
    check = _check_log(log, [path] if path.exists() else [], signer.verifier)
    if not check.ok:
        raise ConflictError(f"audit log {check.message}; run `steward audit verify`")
    latest = _latest(directory, signer.verifier)
    if latest is None or latest.checkpoint.size <= index:
        latest = _sign(log, directory)
    size = latest.checkpoint.size
    entry = _entry(log.rows[index], index)
    return {
        "log": latest.checkpoint.origin,
        "entry": entry,
        "leaf_index": index,
        "tree_size": size,
        "leaf_hash": leaf_hash(leaf_bytes(entry)).hex(),
        "root_hash": latest.checkpoint.root_hash.hex(),
        "audit_path": [node.hex() for node in log.tree.inclusion_proof(index, size)],
        "checkpoint": latest.note,
    }


def _index_of(ids: list[int], entry_id: int) -> int:
    index = bisect.bisect_left(ids, entry_id)
    if index == len(ids) or ids[index] != entry_id:
        span = f"ids {ids[0]} to {ids[-1]}" if ids else "no entries"
        raise NotFoundError(f"no audit entry with id {entry_id}; the log holds {span}")
    return index


def verify_inclusion_proof(json_text: str, public_key: str) -> ProofCheck:
    """Check a proof from ``steward audit prove`` with the log's verifier key alone (the text of
    ``audit-signing.pub``): the checkpoint's signature, then the audit path from the entry's leaf
    to the signed root (RFC 9162 §2.1.3.2). Needs no database."""
    verifier = VerifierKey.parse(public_key)
    try:
        proof = json.loads(json_text)
        entry, index, size = proof["entry"], proof["leaf_index"], proof["tree_size"]
        path = [bytes.fromhex(node) for node in proof["audit_path"]]
        root = bytes.fromhex(proof["root_hash"])
        leaf = leaf_hash(leaf_bytes(entry))
        note = proof["checkpoint"]
    except (ValueError, KeyError, TypeError) as error:
        return ProofCheck(False, f"not an audit inclusion proof: {error}")
    try:
        signed = Checkpoint.parse(open_note(note, verifier))
    except InvalidInputError as error:
        return ProofCheck(False, f"the checkpoint does not hold: {error}")
    if signed.origin != verifier.name:
        return ProofCheck(False, f"the checkpoint is of {signed.origin!r}, not {verifier.name!r}")
    if (size, root) != (signed.size, signed.root_hash):
        return ProofCheck(False, "the proof's tree size or root is not the signed checkpoint's")
    if entry.get("index") != index:
        return ProofCheck(False, f"the entry's index {entry.get('index')} is not {index}")
    if not verify_inclusion(leaf, index, size, path, root):
        return ProofCheck(False, "the audit path does not lead from the entry to the signed root")
    return ProofCheck(
        True, f"entry {entry.get('id')} is leaf {index} of {signed.origin} at size {size}"
    )
