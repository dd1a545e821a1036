"""LLM systems: prompt versions, their labels and label history, and eval runs.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "prompt_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("prompt", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("code", sa.JSON, nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("system_id", "prompt", "version"),
        sa.UniqueConstraint("system_id", "prompt", "sha256"),
    )
    op.create_index("ix_prompt_versions_system_id", "prompt_versions", ["system_id"])
    op.create_table(
        "prompt_labels",
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), primary_key=True),
        sa.Column("prompt", sa.String(200), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("moved_by", sa.String(200), nullable=False),
        sa.Column("moved_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "prompt_label_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("prompt", sa.String(200), nullable=False),
        sa.Column("label", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("moved_by", sa.String(200), nullable=False),
        sa.Column("moved_at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("eval_run_id", sa.Integer, nullable=True),
    )
    op.create_index("ix_prompt_label_history_system_id", "prompt_label_history", ["system_id"])
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("prompt", sa.String(200), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("baseline_version", sa.Integer, nullable=True),
        sa.Column("baseline_label", sa.String(100), nullable=False),
        sa.Column("eval_set", sa.String(500), nullable=False),
        sa.Column("eval_set_sha256", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(500), nullable=False),
        sa.Column("decision", sa.String(20), nullable=False),
        sa.Column("summary", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_eval_runs_system_id", "eval_runs", ["system_id"])


def downgrade() -> None:
    op.drop_index("ix_eval_runs_system_id", table_name="eval_runs")
    op.drop_table("eval_runs")
    op.drop_index("ix_prompt_label_history_system_id", table_name="prompt_label_history")
    op.drop_table("prompt_label_history")
    op.drop_table("prompt_labels")
    op.drop_index("ix_prompt_versions_system_id", table_name="prompt_versions")
    op.drop_table("prompt_versions")
