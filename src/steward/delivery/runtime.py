"""What serving one system needs, read from the store, and the marker that says when to read it again.

A ``Runtime`` holds a system's compiled contract, policy, traffic split, aliases and open suspension.
``read_runtime`` reads one whole (several queries); ``read_markers`` reads, for many systems in one
small read, what their runtimes depend on: the system row's ``updated_at`` (``apply`` bumps it when
the policy or traffic changes), the newest contract version, the open suspension and the aliases. A
server compares markers every ``serving_refresh_ms`` and reads a whole runtime only when its marker
moved (``steward.delivery.serving``).

>>> markers = read_markers(workspace.store, ["churn"])          # doctest: +SKIP
>>> runtime = read_runtime(workspace, "churn", markers["churn"])  # doctest: +SKIP
>>> runtime.champion                                            # doctest: +SKIP
3
"""

from __future__ import annotations

import hashlib
import logging
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from sqlalchemy import func, select

from steward.data.contracts import Contract
from steward.delivery.suspension import Suspension, open_suspension
from steward.model.policy import Policy
from steward.model.registry import find_system
from steward.store import AliasRow, ContractRow, Store, SuspensionRow, System
from steward.workspace import Workspace
from steward.workspace.systems import get_contract

__all__ = ["Marker", "Refreshing", "Runtime", "keep_current", "read_markers", "read_runtime"]

logger = logging.getLogger(__name__)

#: What a runtime was read from (``read_markers``): a change to any part means reading it again.
Marker = tuple[Any, ...]


@dataclass
class Runtime:
    """What serving one system needs, read again from the store when its marker moves."""

    name: str
    task: str
    entity_key_column: str
    contract: Contract | None
    policy: Policy | None
    canary_share: float
    aliases: dict[str, int] = field(default_factory=dict)
    attributes: tuple[str, ...] = ()  # fairness.attributes: may come beside the records
    suspension: Suspension | None = None
    marker: Marker | None = None
    checked_at: float = 0.0  # when its server last found it current (the server's clock)
    asked_at: float = 0.0  # when its server last asked the store whether it still is

    @property
    def champion(self) -> int | None:
        return self.aliases.get("champion")

    def route(self, entity_key: str) -> int | None:
        """Champion, or the canary for a sticky share of entities (the same entity, the same arm)."""
        canary = self.aliases.get("canary")
        if canary is None or self.canary_share <= 0 or not entity_key:
            return self.champion
        digest = hashlib.blake2b(f"canary:{self.name}:{entity_key}".encode(), digest_size=8)
        draw = int.from_bytes(digest.digest(), "big") / 2**64
        return canary if draw < self.canary_share else self.champion

    def routed(self) -> list[int]:
        """The versions requests are routed to: the champion, and the canary when it has a share."""
        canary = self.aliases.get("canary") if self.canary_share > 0 else None
        return sorted({version for version in (self.champion, canary) if version is not None})

    def shadows(self) -> list[int]:
        return sorted(
            {
                version
                for alias, version in self.aliases.items()
                if alias == "shadow" or alias.startswith("shadow-")
            }
        )


def read_markers(store: Store, systems: Sequence[str]) -> dict[str, Marker]:
    """What each of ``systems``' runtimes is read from, keyed by system name, in one small read.

    Two indexed queries for all systems together; a system missing from the answer is gone.
    """
    contract = select(func.max(ContractRow.version)).where(ContractRow.system_id == System.id)
    suspension = select(func.max(SuspensionRow.id)).where(
        SuspensionRow.system_id == System.id, SuspensionRow.ended_at.is_(None)
    )
    with store.read() as session:
        rows = session.execute(
            select(
                System.id,
                System.name,
                System.updated_at,
                contract.scalar_subquery(),
                suspension.scalar_subquery(),
            ).where(System.name.in_(list(systems)))
        ).all()
        aliases: dict[int, list[tuple[str, int | None]]] = {}
        moved = select(AliasRow.system_id, AliasRow.name, AliasRow.version)
        for system_id, alias, version in session.execute(
            moved.where(AliasRow.system_id.in_([row[0] for row in rows]))
        ):
            aliases.setdefault(system_id, []).append((alias, version))
    return {
        name: (updated, newest, suspended, tuple(sorted(aliases.get(system_id, []))))
        for system_id, name, updated, newest, suspended in rows
    }


def read_runtime(
    steward: Workspace, system: str, marker: Marker | None, previous: Runtime | None = None
) -> Runtime:
    """The whole runtime of ``system``, tagged with ``marker`` (read before it, so never newer).

    ``previous``'s compiled contract is kept when the contract version did not change.
    """
    info = steward.system(system)
    config = info.config
    contract = get_contract(steward.store, system)
    if (
        previous
        and previous.contract
        and contract
        and previous.contract.version == contract.version
    ):
        contract = previous.contract  # keep its compiled checks across refreshes
    policy = Policy.from_dict(config["policy"]) if config.get("policy") else None
    traffic = config.get("traffic") or {}
    with steward.store.read() as session:
        system_row = find_system(session, system)
        rows = session.scalars(select(AliasRow).where(AliasRow.system_id == system_row.id))
        aliases = {row.name: row.version for row in rows if row.version is not None}
        suspension = open_suspension(session, system_row.id, system)
    return Runtime(
        name=system,
        task=info.task,
        entity_key_column=info.entity_key,
        contract=contract,
        policy=policy,
        canary_share=float(traffic.get("canary_share", 0.0)),
        aliases=aliases,
        suspension=suspension,
        marker=marker,
        attributes=tuple(info.declared.fairness.attributes if info.declared.fairness else ()),
    )


class Refreshing(Protocol):
    """What ``keep_current`` keeps current: ``steward.delivery.serving.Service``."""

    refresh_seconds: float

    def refresh(self) -> list[str]: ...


def keep_current(target: weakref.ref[Refreshing], stopping: threading.Event) -> None:
    """Call ``refresh`` every ``refresh_seconds`` until ``stopping`` is set or the target is gone.

    The thread holds its target weakly: a service dropped without ``close`` (an app whose lifespan
    never ran) stops being refreshed instead of reading its store for ever.
    """
    interval = 0.25
    while not stopping.wait(interval):
        current = target()
        if current is None:
            return
        interval = current.refresh_seconds if current.refresh_seconds > 0 else 0.25
        try:
            if current.refresh_seconds > 0:  # 0: every request reads the store itself
                current.refresh()
        except Exception:  # keep watching, whatever one check met
            logger.exception("checking the served systems for changes failed")
        del current
