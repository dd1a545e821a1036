"""Systems: the deployed decision systems Steward looks after, and ``apply`` of ``steward.yaml``.

``apply_config`` compares the file with the store, writes what changed, records each change in the
audit log, and returns the changes so the CLI can say them. Applying the same file twice changes
nothing the second time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select

from steward import audit
from steward.config import StewardConfig, SystemConfig
from steward.registry import find_system
from steward.store import Store, System, utcnow

__all__ = ["SystemChange", "SystemInfo", "apply_config", "get_system", "list_systems"]

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


@dataclass(frozen=True)
class SystemChange:
    """What ``apply`` did to one system: ``created``, ``changed``, ``unchanged`` or ``not-in-file``."""

    name: str
    kind: str
    fields: dict[str, tuple[Any, Any]] = field(default_factory=dict)


def apply_config(store: Store, config: StewardConfig, *, actor: str) -> list[SystemChange]:
    """Create or update every system in ``config``; systems only in the store are reported, kept."""
    changes: list[SystemChange] = []
    with store.write() as session:
        existing = {row.name: row for row in session.scalars(select(System))}
        for declared in config.systems:
            values = _values(declared)
            row = existing.pop(declared.name, None)
            if row is None:
                session.add(
                    System(name=declared.name, created_at=utcnow(), updated_at=utcnow(), **values)
                )
                changes.append(SystemChange(declared.name, "created"))
                audit.record(
                    session,
                    actor=actor,
                    action="system.create",
                    target=declared.name,
                    details=values,
                )
                continue
            diff = {
                key: (getattr(row, key), value)
                for key, value in values.items()
                if getattr(row, key) != value
            }
            if not diff:
                changes.append(SystemChange(declared.name, "unchanged"))
                continue
            for key, (_, value) in diff.items():
                setattr(row, key, value)
            row.updated_at = utcnow()
            changes.append(SystemChange(declared.name, "changed", diff))
            audit.record(
                session,
                actor=actor,
                action="system.update",
                target=declared.name,
                details={key: {"from": old, "to": new} for key, (old, new) in diff.items()},
            )
        changes.extend(SystemChange(name, "not-in-file") for name in sorted(existing))
    return changes


def get_system(store: Store, name: str) -> SystemInfo:
    with store.read() as session:
        return _info(find_system(session, name))


def list_systems(store: Store) -> list[SystemInfo]:
    with store.read() as session:
        return [_info(row) for row in session.scalars(select(System).order_by(System.name))]


def _values(declared: SystemConfig) -> dict[str, Any]:
    values: dict[str, Any] = {key: getattr(declared, key) for key in _COLUMNS}
    values["config"] = declared.model_dump(
        mode="json", include={"card", "contract", "policy"}, exclude_none=True
    )
    return values


def _info(row: System) -> SystemInfo:
    return SystemInfo(
        name=row.name, config=dict(row.config), **{key: getattr(row, key) for key in _COLUMNS}
    )
