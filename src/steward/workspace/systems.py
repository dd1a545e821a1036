"""Systems: the deployed decision systems Steward looks after, and ``apply`` of ``steward.yaml``.

``apply_config`` compares the file with the store, writes what changed, records each change in the
audit log, and returns the changes so the CLI can say them. Applying the same file twice changes
nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.data.contracts import Contract, diff_contracts
from steward.model.registry import find_system
from steward.store import ContractRow, Store, System, audit, utcnow
from steward.workspace.config import StewardConfig, SystemConfig

__all__ = [
    "SystemChange",
    "SystemInfo",
    "apply_config",
    "get_contract",
    "get_system",
    "latest_contract_row",
    "list_systems",
]

_COLUMNS = ("task", "owner", "risk_tier", "intended_use", "target", "entity_key")


@dataclass(frozen=True)
class SystemInfo:
    name: str
    task: str
    owner: str
    risk_tier: str
    intended_use: str
    target: str
    entity_key: str
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def card(self) -> dict[str, Any]:
        return dict(self.config.get("card") or {})

    @property
    def declared(self) -> SystemConfig:
        """The system as ``steward.yaml`` declared it, typed (SLOs, playbooks, monitors, ...)."""
        fields = {key: getattr(self, key) for key in _COLUMNS}
        return SystemConfig.model_validate({"name": self.name, **fields, **self.config})


@dataclass(frozen=True)
class SystemChange:
    """What ``apply`` did to one system: ``created``, ``changed``, ``unchanged`` or ``not-in-file``."""

    name: str
    kind: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    contract: str | None = None  # e.g. "contract v2 (breaking: tenure min 0 -> 1)"
    #: Prompt versions registered by this apply, e.g. "support-answer v2".
    prompts: tuple[str, ...] = ()


def apply_config(store: Store, config: StewardConfig, *, actor: str) -> list[SystemChange]:
    """Create or update every system in ``config``; systems only in the store are reported, kept."""
    changes: list[SystemChange] = []
    with store.write() as session:
        existing = {row.name: row for row in session.scalars(select(System))}
        for declared in config.systems:
            changes.append(_apply_one(session, existing.pop(declared.name, None), declared, actor))
        changes.extend(SystemChange(name, "not-in-file") for name in sorted(existing))
    return changes


def _apply_one(
    session: Session, row: System | None, declared: SystemConfig, actor: str
) -> SystemChange:
    values = _values(declared)
    if row is None:
        row = System(name=declared.name, created_at=utcnow(), updated_at=utcnow(), **values)
        session.add(row)
        session.flush()
        audit.record(
            session, actor=actor, action="system.create", target=declared.name, details=values
        )
        return SystemChange(
            declared.name, "created", contract=_sync_contract(session, row, declared, actor)
        )
    diff = {key: value for key, value in values.items() if getattr(row, key) != value}
    contract = _sync_contract(session, row, declared, actor)
    if not diff:
        return SystemChange(declared.name, "unchanged", contract=contract)
    fields = field_changes({key: getattr(row, key) for key in diff}, diff)
    for key, value in diff.items():
        setattr(row, key, value)
    row.updated_at = utcnow()
    audit.record(
        session,
        actor=actor,
        action="system.update",
        target=declared.name,
        details={key: {"from": old, "to": new} for key, (old, new) in fields.items()},
    )
    return SystemChange(declared.name, "changed", fields, contract)


def field_changes(old: dict[str, Any], new: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Each changed field as ``dotted.name: (old, new)``, nested sections opened to their leaves.

    The stored ``config`` (card, policy, monitors, SLOs, ...) is opened too, so ``apply`` says
    ``policy.threshold: 0.5 -> 0.6`` rather than "the config changed"; a list of named items
    (SLOs, playbooks' ``when``) is keyed by name.

    >>> field_changes({"config": {"policy": {"threshold": 0.5}}, "owner": "ana"},
    ...               {"config": {"policy": {"threshold": 0.6}}, "owner": "ana"})
    {'policy.threshold': (0.5, 0.6)}
    >>> field_changes({"config": {"slos": [{"name": "fast", "objective": 0.99}]}},
    ...               {"config": {"slos": [{"name": "fast", "objective": 0.95}]}})
    {'slos[fast].objective': (0.99, 0.95)}
    """
    changes: dict[str, tuple[Any, Any]] = {}
    for key in sorted(set(old) | set(new), key=lambda name: (name == "config", name)):
        before, after = old.get(key), new.get(key)
        if before == after:
            continue
        if key == "config":
            _open_changes(before or {}, after or {}, "", changes)
        else:
            changes[key] = (before, after)
    return changes


def _open_changes(
    before: Any, after: Any, prefix: str, changes: dict[str, tuple[Any, Any]]
) -> None:
    opened = isinstance(before, dict) or isinstance(after, dict)
    if opened and isinstance(before, dict | None) and isinstance(after, dict | None):
        before, after = before or {}, after or {}
        for key in sorted(set(before) | set(after)):
            if before.get(key) != after.get(key):
                _open_changes(before.get(key), after.get(key), f"{prefix}{key}.", changes)
        return
    named_before, named_after = _by_name(before), _by_name(after)
    if named_before is not None and named_after is not None:
        for name in sorted(set(named_before) | set(named_after)):
            if named_before.get(name) != named_after.get(name):
                label = f"{prefix.rstrip('.')}[{name}]."
                _open_changes(named_before.get(name), named_after.get(name), label, changes)
        return
    changes[prefix.rstrip(".")] = (before, after)


def _by_name(value: Any) -> dict[str, Any] | None:
    """A list of dicts that each have a unique ``name`` (or ``when``), keyed by it; else None."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        return None
    for key in ("name", "when"):
        names = [item.get(key) for item in value]
        if all(isinstance(name, str) for name in names) and len(set(names)) == len(names):
            return {item[key]: item for item in value}
    return None


def _sync_contract(session: Session, row: System, declared: SystemConfig, actor: str) -> str | None:
    """Store the declared contract as a new version when it differs from the latest one."""
    if declared.contract is None:
        return None
    latest = latest_contract_row(session, row.id)
    spec = Contract.from_dict(declared.contract, name=row.name).to_dict()
    spec.pop("version", None)
    if latest is not None and latest.spec == spec:
        return None
    version = 1 if latest is None else latest.version + 1
    changes = None
    if latest is not None:
        old = Contract.from_dict({**latest.spec, "version": latest.version}, name=row.name)
        new = Contract.from_dict({**spec, "version": version}, name=row.name)
        changes = diff_contracts(old, new)
    breaking = bool(changes and changes.breaking)
    session.add(
        ContractRow(
            system_id=row.id,
            version=version,
            spec=spec,
            breaking=breaking,
            created_by=actor,
            created_at=utcnow(),
        )
    )
    summary = "; ".join(change.description for change in changes.changes) if changes else "new"
    audit.record(
        session,
        actor=actor,
        action="contract.version",
        target=f"{row.name}/v{version}",
        details={"breaking": breaking, "changes": summary},
    )
    kind = "breaking" if breaking else "compatible"
    return f"contract v{version}" + (f" ({kind}: {summary})" if changes else "")


def latest_contract_row(session: Session, system_id: int) -> ContractRow | None:
    return session.scalars(
        select(ContractRow)
        .where(ContractRow.system_id == system_id)
        .order_by(ContractRow.version.desc())
        .limit(1)
    ).first()


def get_contract(store: Store, system: str) -> Contract | None:
    """The system's newest contract version, or ``None`` when it declares none."""
    with store.read() as session:
        row = latest_contract_row(session, find_system(session, system).id)
        if row is None:
            return None
        return Contract.from_dict({**row.spec, "version": row.version}, name=system)


def get_system(store: Store, name: str) -> SystemInfo:
    with store.read() as session:
        return _info(find_system(session, name))


def list_systems(store: Store) -> list[SystemInfo]:
    with store.read() as session:
        return [_info(row) for row in session.scalars(select(System).order_by(System.name))]


_CONFIG_KEYS = {
    "protected_aliases",
    "card",
    "contract",
    "policy",
    "traffic",
    "monitors",
    "slos",
    "notify",
    "playbooks",
    "retrain",
    "prompts",
    "providers",
    "judge",
    "protected_labels",
    "call_text",
    "prices",
    "outputs",
    "fairness",
    "retention_days",
}


def _values(declared: SystemConfig) -> dict[str, Any]:
    values: dict[str, Any] = {key: getattr(declared, key) for key in _COLUMNS}
    values["config"] = declared.model_dump(mode="json", include=_CONFIG_KEYS, exclude_none=True)
    return values


def _info(row: System) -> SystemInfo:
    return SystemInfo(
        name=row.name, config=dict(row.config), **{key: getattr(row, key) for key in _COLUMNS}
    )
