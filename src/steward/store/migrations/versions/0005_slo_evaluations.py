"""SLO evaluations in their own table, moved out of the monitor results.

Until now each evaluation was a monitor result named ``slo:NAME``. This creates ``slo_evaluations``,
copies those rows into it (oldest first, so the newest keeps the highest id) with the typed columns
filled from their details, and deletes them from ``monitor_results``. The downgrade moves them back.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from alembic import op

from steward.store import UTCDateTime

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

PREFIX = "slo:"
BATCH = 1_000

monitor_results = sa.table(
    "monitor_results",
    sa.column("id", sa.Integer),
    sa.column("system_id", sa.Integer),
    sa.column("monitor", sa.String),
    sa.column("window_start", UTCDateTime),
    sa.column("window_end", UTCDateTime),
    sa.column("status", sa.String),
    sa.column("summary", sa.Text),
    sa.column("details", sa.JSON),
    sa.column("created_at", UTCDateTime),
)
slo_evaluations = sa.table(
    "slo_evaluations",
    sa.column("id", sa.Integer),
    sa.column("system_id", sa.Integer),
    sa.column("name", sa.String),
    sa.column("indicator", sa.String),
    sa.column("window_start", UTCDateTime),
    sa.column("window_end", UTCDateTime),
    sa.column("status", sa.String),
    sa.column("sli", sa.Float),
    sa.column("budget_remaining", sa.Float),
    sa.column("burn_rates", sa.JSON),
    sa.column("summary", sa.Text),
    sa.column("details", sa.JSON),
    sa.column("created_at", UTCDateTime),
)


def upgrade() -> None:
    op.create_table(
        "slo_evaluations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("indicator", sa.String(50), nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_end", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("sli", sa.Float, nullable=True),
        sa.Column("budget_remaining", sa.Float, nullable=True),
        sa.Column("burn_rates", sa.JSON, nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_slo_evaluations_system_id", "slo_evaluations", ["system_id"])
    moved = monitor_results.c.monitor.startswith(PREFIX)
    _copy(monitor_results, slo_evaluations, moved, _as_evaluation)
    op.execute(monitor_results.delete().where(monitor_results.c.monitor.startswith(PREFIX)))


def downgrade() -> None:
    _copy(slo_evaluations, monitor_results, sa.true(), _as_monitor_result)
    op.drop_table("slo_evaluations")


def _copy(
    source: sa.TableClause,
    target: sa.TableClause,
    where: sa.ColumnElement[bool],
    convert: Callable[[dict[str, Any]], dict[str, Any]],
) -> None:
    """Copy the rows of ``source`` matching ``where`` into ``target``, oldest first, in batches."""
    connection = op.get_bind()
    last = 0
    while True:
        rows = connection.execute(
            sa.select(source).where(where, source.c.id > last).order_by(source.c.id).limit(BATCH)
        ).mappings()
        batch = [dict(row) for row in rows]
        if not batch:
            return
        connection.execute(target.insert(), [convert(row) for row in batch])
        last = batch[-1]["id"]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _as_evaluation(row: dict[str, Any]) -> dict[str, Any]:
    details = row["details"] if isinstance(row["details"], dict) else {}
    burn_rates = details.get("burn_rates")
    return {
        "system_id": row["system_id"],
        "name": row["monitor"][len(PREFIX) :],
        "indicator": str(details.get("indicator") or ""),
        "window_start": row["window_start"],
        "window_end": row["window_end"],
        "status": row["status"],
        "sli": _number(details.get("sli")),
        "budget_remaining": _number(details.get("budget_remaining")),
        "burn_rates": burn_rates if isinstance(burn_rates, dict) else {},
        "summary": row["summary"],
        "details": details,
        "created_at": row["created_at"],
    }


def _as_monitor_result(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "system_id": row["system_id"],
        # The monitor column holds 50 characters.
        "monitor": f"{PREFIX}{row['name']}"[:50],
        "window_start": row["window_start"],
        "window_end": row["window_end"],
        "status": row["status"],
        "summary": row["summary"],
        "details": row["details"],
        "created_at": row["created_at"],
    }
