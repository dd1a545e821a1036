"""Stored eval runs: what was run on which prompt version, against which baseline, and the decision.

A run keeps every case, assertion and repeat (``result``), the figures the gate decided on
(``summary``) and the decision: ``pass`` or ``fail`` for a gate, ``report`` for a run with no gate.
A passed run is the evidence a move of the label ``production`` cites (``steward.llm.prompts``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import defer

from steward.errors import NotFoundError
from steward.model.registry import find_system
from steward.store import MAX_ROW_ID, EvalRunRow, Store, System, audit, utcnow

__all__ = ["DECISIONS", "EvalRun", "get_run", "list_runs", "save_run"]

DECISIONS = ("pass", "fail", "report")


@dataclass(frozen=True)
class EvalRun:
    id: int
    system: str
    prompt: str
    version: int
    baseline_version: int | None
    baseline_label: str
    eval_set: str
    eval_set_sha256: str
    provider: str
    decision: str
    summary: dict[str, Any]
    result: dict[str, Any]
    created_by: str
    created_at: datetime

    def to_dict(self, *, with_result: bool = True) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat()
        if not with_result:
            data.pop("result")
        return data


def save_run(
    store: Store,
    *,
    system: str,
    prompt: str,
    version: int,
    baseline_version: int | None,
    baseline_label: str,
    eval_set: str,
    eval_set_sha256: str,
    provider: str,
    decision: str,
    summary: dict[str, Any],
    result: dict[str, Any],
    actor: str,
) -> EvalRun:
    """Store a run and record it in the audit log; returns it with its id."""
    if decision not in DECISIONS:
        raise ValueError(f"decision {decision!r} is not one of {DECISIONS}")
    with store.write() as session:
        system_row = find_system(session, system)
        row = EvalRunRow(
            system_id=system_row.id,
            prompt=prompt,
            version=version,
            baseline_version=baseline_version,
            baseline_label=baseline_label,
            eval_set=eval_set,
            eval_set_sha256=eval_set_sha256,
            provider=provider,
            decision=decision,
            summary=summary,
            result=result,
            created_by=actor,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        audit.record(
            session,
            actor=actor,
            action="eval.run",
            target=f"{system}/prompts/{prompt}/v{version}/evals/{row.id}",
            details={"decision": decision, "baseline_version": baseline_version, **summary},
            bind=row,
        )
        return _view(system_row.name, row)


def get_run(store: Store, run_id: int) -> EvalRun:
    with store.read() as session:
        row = session.get(EvalRunRow, run_id) if 1 <= run_id <= MAX_ROW_ID else None
        if row is None:
            raise NotFoundError(f"there is no eval run #{run_id}; see `steward eval list`")
        name = session.scalars(select(System.name).where(System.id == row.system_id)).one()
        return _view(name, row)


def list_runs(
    store: Store, system: str | None = None, prompt: str | None = None, limit: int = 50
) -> list[EvalRun]:
    """Runs, newest first, without their per-case results."""
    with store.read() as session:
        query = (
            select(EvalRunRow, System.name)
            .join(System, System.id == EvalRunRow.system_id)
            .options(defer(EvalRunRow.result))  # every case of every run: not read for a list
        )
        if system is not None:
            query = query.where(EvalRunRow.system_id == find_system(session, system).id)
        if prompt is not None:
            query = query.where(EvalRunRow.prompt == prompt)
        rows = session.execute(query.order_by(EvalRunRow.id.desc()).limit(limit)).all()
        return [_view(name, row, with_result=False) for row, name in rows]


def _view(system: str, row: EvalRunRow, *, with_result: bool = True) -> EvalRun:
    return EvalRun(
        id=row.id,
        system=system,
        prompt=row.prompt,
        version=row.version,
        baseline_version=row.baseline_version,
        baseline_label=row.baseline_label,
        eval_set=row.eval_set,
        eval_set_sha256=row.eval_set_sha256,
        provider=row.provider,
        decision=row.decision,
        summary=dict(row.summary),
        result=dict(row.result) if with_result else {},
        created_by=row.created_by,
        created_at=row.created_at,
    )
