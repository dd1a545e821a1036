"""Stored monitor results.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "monitor_results",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("monitor", sa.String(50), nullable=False),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("window_end", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_monitor_results_system_id", "monitor_results", ["system_id"])


def downgrade() -> None:
    op.drop_table("monitor_results")
