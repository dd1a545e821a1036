"""Incidents: an alert or a finding declared an incident, with its Art. 73 clock and its cause.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store import UTCDateTime

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("declared_by", sa.String(200), nullable=False),
        sa.Column("declared_at", UTCDateTime, nullable=False),
        sa.Column("report_due_at", UTCDateTime, nullable=True),
        sa.Column("actions", sa.JSON, nullable=False),
        sa.Column("cause", sa.Text, nullable=False),
        sa.Column("closed_by", sa.String(200), nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_incidents_system_id", "incidents", ["system_id"])


def downgrade() -> None:
    op.drop_index("ix_incidents_system_id", "incidents")
    op.drop_table("incidents")
