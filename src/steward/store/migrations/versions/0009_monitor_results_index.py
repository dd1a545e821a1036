"""An index for the newest results of one monitor of one system over a span (dashboard, loop).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04
"""

from __future__ import annotations

from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_monitor_results_system_monitor_end",
        "monitor_results",
        ["system_id", "monitor", "window_end"],
    )


def downgrade() -> None:
    op.drop_index("ix_monitor_results_system_monitor_end", "monitor_results")
