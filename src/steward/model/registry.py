"""The model registry: immutable numbered versions, and aliases whose every move is kept.

A version, once registered, never changes: its artifact is stored under its SHA-256 and its lineage is
written once. Aliases (``champion``, ``challenger``, ``shadow``, ``canary`` or any name) point at
versions; each move appends a row to the alias history (who, when, from, to, why), so the registry can
always say what served on a given day. ``rollback`` undoes the last promotion of ``champion``; a second
rollback goes one step further back, like an undo stack.

These functions take the store and return plain dataclasses; ``steward.Steward`` wraps them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from steward.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    UnknownAliasError,
    UnknownSystemError,
    UnknownVersionError,
)
from steward.store import AliasMove, AliasRow, ModelVersionRow, Store, System, audit, utcnow

__all__ = [
    "AliasChange",
    "DiffRow",
    "ModelVersion",
    "Registration",
    "alias_history",
    "apply_move",
    "check_pointer_name",
    "diff_versions",
    "find_system",
    "get_version",
    "is_protected",
    "list_versions",
    "move_alias",
    "no_reference_warning",
    "register_version",
    "replay_stack",
    "rollback",
]

#: Version numbers are stored as 32-bit integers.
MAX_VERSION = 2**31 - 1
_ALIAS_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,99}$")


@dataclass(frozen=True)
class ModelVersion:
    """One registered version, with its lineage and the aliases that point at it now."""

    system: str
    version: int
    flavor: str
    artifact_sha256: str
    artifact_name: str
    artifact_size: int
    registered_by: str
    registered_at: datetime
    trusted_types: list[str] = field(default_factory=list)
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    code: dict[str, Any] = field(default_factory=dict)
    libraries: dict[str, Any] = field(default_factory=dict)
    description: str = ""
    aliases: tuple[str, ...] = ()

    @property
    def has_reference(self) -> bool:
        """Whether a reference sample of the training data was kept (drift needs one)."""
        return bool(self.data.get("reference_sha256"))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["registered_at"] = self.registered_at.isoformat()
        data["aliases"] = list(self.aliases)
        return data


@dataclass(frozen=True)
class Registration:
    version: ModelVersion
    created: bool  # False when the same artifact was already registered

    @property
    def warnings(self) -> list[str]:
        """What the registration leaves undone that monitoring will miss (no reference data)."""
        return [] if self.version.has_reference else [no_reference_warning(self.version)]


@dataclass(frozen=True)
class AliasChange:
    system: str
    alias: str
    action: str
    from_version: int | None
    to_version: int | None
    moved_by: str
    moved_at: datetime
    reason: str
    #: Said to whoever moved it: e.g. a champion with no reference sample leaves drift unmonitored.
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        data = {**asdict(self), "moved_at": self.moved_at.isoformat()}
        if not self.warnings:
            data.pop("warnings")
        else:
            data["warnings"] = list(self.warnings)
        return data


@dataclass(frozen=True)
class DiffRow:
    section: str
    key: str
    a: Any
    b: Any

    @property
    def changed(self) -> bool:
        return bool(self.a != self.b)


def find_system(session: Session, name: str) -> System:
    system = session.scalars(select(System).where(System.name == name)).first()
    if system is None:
        known = session.scalars(select(System.name).order_by(System.name)).all()
        hint = f"known systems: {', '.join(known)}" if known else "no systems yet"
        raise UnknownSystemError(
            f"unknown system {name!r} ({hint}); declare it in steward.yaml and run `steward apply`"
        )
    return system


def register_version(
    store: Store,
    *,
    system: str,
    actor: str,
    flavor: str,
    artifact_sha256: str,
    artifact_name: str,
    artifact_size: int,
    trusted_types: list[str] | None = None,
    params: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
    code: dict[str, Any] | None = None,
    libraries: dict[str, Any] | None = None,
    description: str = "",
) -> Registration:
    """Create the next numbered version, or return the existing one for an artifact seen before."""
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        existing = session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.system_id == system_row.id,
                ModelVersionRow.artifact_sha256 == artifact_sha256,
            )
        ).first()
        if existing is not None:
            return Registration(_view(session, system_row, existing), created=False)
        row = ModelVersionRow(
            system_id=system_row.id,
            version=_next_version(session, system_row.id),
            flavor=flavor,
            artifact_sha256=artifact_sha256,
            artifact_name=artifact_name,
            artifact_size=artifact_size,
            trusted_types=list(trusted_types or []),
            params=params or {},
            metrics=metrics or {},
            data=data or {},
            code=code or {},
            libraries=libraries or {},
            description=description,
            registered_by=actor,
            registered_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="model.register",
            target=f"{system}/v{row.version}",
            details={"artifact_sha256": artifact_sha256, "flavor": flavor},
        )
        return Registration(_view(session, system_row, row), created=True)


def _next_version(session: Session, system_id: int) -> int:
    latest = session.scalar(
        select(func.max(ModelVersionRow.version)).where(ModelVersionRow.system_id == system_id)
    )
    return (latest or 0) + 1


def get_version(store: Store, system: str, reference: int | str) -> ModelVersion:
    """A version by number (``3`` or ``"v3"``) or by the alias that points at it (``"champion"``)."""
    with store.read() as session:
        system_row = find_system(session, system)
        number = _version_number(session, system_row, reference)
        row = None
        if 1 <= number <= MAX_VERSION:  # a larger number cannot be stored, so is no version
            row = session.scalars(
                select(ModelVersionRow).where(
                    ModelVersionRow.system_id == system_row.id, ModelVersionRow.version == number
                )
            ).first()
        if row is None:
            latest = session.scalar(
                select(func.max(ModelVersionRow.version)).where(
                    ModelVersionRow.system_id == system_row.id
                )
            )
            span = f"versions are 1 to {latest}" if latest else "it has no versions yet"
            raise UnknownVersionError(
                f"system {system!r} has no version {number} ({span}); see `steward models list {system}`"
            )
        return _view(session, system_row, row)


def list_versions(store: Store, system: str) -> list[ModelVersion]:
    with store.read() as session:
        system_row = find_system(session, system)
        rows = session.scalars(
            select(ModelVersionRow)
            .where(ModelVersionRow.system_id == system_row.id)
            .order_by(ModelVersionRow.version)
        ).all()
        aliases = _aliases_by_version(session, system_row.id)
        return [_view(session, system_row, row, aliases) for row in rows]


def move_alias(
    store: Store,
    system: str,
    alias: str,
    version: int | str | None,
    *,
    actor: str,
    reason: str = "",
) -> AliasChange:
    """Point ``alias`` at ``version`` (``None`` removes it) and append the move to its history.

    A protected alias (the system's ``protected_aliases``) may be set once; after that it moves
    only through an approval (``steward.loop.promotion``) or a rollback: ``ForbiddenError``.
    """
    check_pointer_name(alias, "alias")
    target = None if version is None else get_version(store, system, version).version
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        current = session.get(AliasRow, (system_row.id, alias))
        if is_protected(system_row, alias) and current is not None and current.version != target:
            raise ForbiddenError(
                f"alias {alias!r} of {system!r} is protected: it moves only through an approval "
                f"another person decides. Point 'challenger' at v{target} "
                f"(`steward models alias {system} challenger {target}`) and run `steward promote "
                f"{system} --if-better`, or roll back with `steward rollback {system}`"
            )
        return apply_move(session, system_row, alias, target, "move", actor, reason)


def check_pointer_name(name: str, what: str) -> None:
    """An alias's (or a prompt label's) name: lowercase letters, digits, '_' or '-'."""
    if not _ALIAS_NAME.match(name):
        raise InvalidInputError(
            f"{what} {name!r} is not a valid name; use lowercase letters, digits, '_' or '-', "
            "starting with a letter"
        )


def is_protected(system_row: System, alias: str) -> bool:
    """Whether ``alias`` is one of the system's ``protected_aliases`` (steward.yaml)."""
    return alias in (system_row.config or {}).get("protected_aliases", [])


def rollback(
    store: Store, system: str, *, actor: str, reason: str = "", alias: str = "champion"
) -> AliasChange:
    """Move ``alias`` back to the version that held it before its last promotion."""
    with store.write() as session:
        system_row = find_system(session, system)
        store.lock_system(session, system_row.id)
        holders = _promotion_stack(session, system_row.id, alias)
        if len(holders) < 2 or holders[-2] is None:
            current = holders[-1] if holders else None
            raise ConflictError(
                f"cannot roll back {alias!r} of {system!r}: no earlier holder than "
                f"{'v' + str(current) if current else 'nothing'}; see `steward models history {system}`"
            )
        return apply_move(session, system_row, alias, holders[-2], "rollback", actor, reason)


def alias_history(store: Store, system: str, alias: str | None = None) -> list[AliasChange]:
    """Every alias move of ``system`` (or of one alias), oldest first."""
    with store.read() as session:
        system_row = find_system(session, system)
        query = select(AliasMove).where(AliasMove.system_id == system_row.id)
        if alias is not None:
            query = query.where(AliasMove.alias == alias)
        return [_change(system, move) for move in session.scalars(query.order_by(AliasMove.id))]


def diff_versions(a: ModelVersion, b: ModelVersion) -> list[DiffRow]:
    """Params, metrics, data fingerprint, schema and provenance of two versions, side by side."""
    rows = [
        DiffRow("artifact", "flavor", a.flavor, b.flavor),
        DiffRow("artifact", "sha256", a.artifact_sha256[:12], b.artifact_sha256[:12]),
        DiffRow(
            "code", "commit", (a.code.get("commit") or "")[:12], (b.code.get("commit") or "")[:12]
        ),
        DiffRow("code", "dirty", a.code.get("dirty"), b.code.get("dirty")),
        DiffRow(
            "data", "sha256", (a.data.get("sha256") or "")[:12], (b.data.get("sha256") or "")[:12]
        ),
        DiffRow("data", "n_rows", a.data.get("n_rows"), b.data.get("n_rows")),
    ]
    for section, left, right in (
        ("params", a.params, b.params),
        ("metrics", a.metrics, b.metrics),
        ("schema", a.data.get("schema", {}), b.data.get("schema", {})),
        ("libraries", a.libraries, b.libraries),
    ):
        for key in sorted(set(left) | set(right)):
            rows.append(DiffRow(section, key, left.get(key), right.get(key)))
    return rows


def apply_move(
    session: Session,
    system_row: System,
    alias: str,
    target: int | None,
    action: str,
    actor: str,
    reason: str,
) -> AliasChange:
    """Point ``alias`` at ``target`` inside ``session`` and keep the move in history and the audit log.

    For callers that already hold the system's lock in a transaction of their own (promotion,
    playbook rollback); everyone else calls ``move_alias`` or ``rollback``.
    """
    row = session.get(AliasRow, (system_row.id, alias))
    current = row.version if row else None
    now = utcnow()
    if row is None:
        row = AliasRow(
            system_id=system_row.id, name=alias, version=target, moved_by=actor, moved_at=now
        )
        session.add(row)
    else:
        row.version, row.moved_by, row.moved_at = target, actor, now
    move = AliasMove(
        system_id=system_row.id,
        alias=alias,
        action=action,
        from_version=current,
        to_version=target,
        moved_by=actor,
        moved_at=now,
        reason=reason,
    )
    session.add(move)
    session.flush()
    audit.record(
        session,
        actor=actor,
        action=f"alias.{action}",
        target=f"{system_row.name}/{alias}",
        details={"from": current, "to": target, "reason": reason},
        bind=[row, move],
    )
    change = _change(system_row.name, move)
    if alias == "champion" and target is not None:
        held = session.scalars(
            select(ModelVersionRow).where(
                ModelVersionRow.system_id == system_row.id, ModelVersionRow.version == target
            )
        ).one()
        if not (held.data or {}).get("reference_sha256"):
            view = _view(session, system_row, held)
            change = replace(change, warnings=(no_reference_warning(view),))
    return change


def no_reference_warning(version: ModelVersion) -> str:
    """What a version registered without training data means for monitoring, and the fix."""
    return (
        f"{version.system} v{version.version} has no reference sample (it was registered without "
        "training data): while it is champion, drift and data-quality monitors say 'no reference' "
        "instead of checking inputs; register it again with --data FILE to keep a sample"
    )


def _promotion_stack(session: Session, system_id: int, alias: str) -> list[int | None]:
    """Replay the alias history: a move pushes its target, a rollback pops back to the one before."""
    moves = session.scalars(
        select(AliasMove)
        .where(AliasMove.system_id == system_id, AliasMove.alias == alias)
        .order_by(AliasMove.id)
    )
    return replay_stack((move.action, move.to_version) for move in moves)


def replay_stack(moves: Iterable[tuple[str, int | None]]) -> list[int | None]:
    """The undo stack of a pointer's history (an alias, a prompt label), oldest first.

    A move pushes its target; a rollback pops, so the holder before the last move is ``[-2]``.

    >>> replay_stack([("move", 1), ("move", 2), ("move", 3), ("rollback", 2)])
    [1, 2]
    """
    stack: list[int | None] = []
    for action, to_version in moves:
        if action == "rollback" and stack:
            stack.pop()
        else:
            stack.append(to_version)
    return stack


def _version_number(session: Session, system_row: System, reference: int | str) -> int:
    if isinstance(reference, int):
        return reference
    text = reference.strip()
    if re.fullmatch(r"[vV]?\d+", text):
        return int(text.lstrip("vV"))
    row = session.get(AliasRow, (system_row.id, text))
    if row is None or row.version is None:
        names = session.scalars(
            select(AliasRow.name).where(
                AliasRow.system_id == system_row.id, AliasRow.version.is_not(None)
            )
        ).all()
        hint = f"aliases set: {', '.join(sorted(names))}" if names else "no alias is set"
        raise UnknownAliasError(
            f"system {system_row.name!r} has no version at alias {text!r} ({hint}); "
            f"give a version number or move the alias with `steward models alias`"
        )
    return row.version


def _aliases_by_version(session: Session, system_id: int) -> dict[int, tuple[str, ...]]:
    found: dict[int, list[str]] = {}
    for alias in session.scalars(select(AliasRow).where(AliasRow.system_id == system_id)):
        if alias.version is not None:
            found.setdefault(alias.version, []).append(alias.name)
    return {version: tuple(sorted(names)) for version, names in found.items()}


def _view(
    session: Session,
    system_row: System,
    row: ModelVersionRow,
    aliases: dict[int, tuple[str, ...]] | None = None,
) -> ModelVersion:
    if aliases is None:
        aliases = _aliases_by_version(session, system_row.id)
    return ModelVersion(
        system=system_row.name,
        version=row.version,
        flavor=row.flavor,
        artifact_sha256=row.artifact_sha256,
        artifact_name=row.artifact_name,
        artifact_size=row.artifact_size,
        registered_by=row.registered_by,
        registered_at=row.registered_at,
        trusted_types=list(row.trusted_types),
        params=dict(row.params),
        metrics=dict(row.metrics),
        data=dict(row.data),
        code=dict(row.code),
        libraries=dict(row.libraries),
        description=row.description,
        aliases=aliases.get(row.version, ()),
    )


def _change(system: str, move: AliasMove) -> AliasChange:
    return AliasChange(
        system=system,
        alias=move.alias,
        action=move.action,
        from_version=move.from_version,
        to_version=move.to_version,
        moved_by=move.moved_by,
        moved_at=move.moved_at,
        reason=move.reason,
    )
