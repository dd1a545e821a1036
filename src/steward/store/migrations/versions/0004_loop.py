"""The loop: alerts, notifications, playbook actions, approvals, review decisions, suspensions.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def _system_id() -> sa.Column[int]:
    return sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False)


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        _system_id(),
        sa.Column("rule", sa.String(200), nullable=False),
        sa.Column("group_key", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(20), nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("summary", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("checks", sa.Integer, nullable=False),
        sa.Column("fired_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("acknowledged_by", sa.String(200), nullable=True),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("resolved_by", sa.String(200), nullable=True),
    )
    op.create_index("ix_alerts_system_id", "alerts", ["system_id"])
    op.create_table(
        "notifications",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=False),
        sa.Column("channel", sa.String(20), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("event", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("last_error", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("delivered_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_notifications_alert_id", "notifications", ["alert_id"])
    op.create_table(
        "actions",
        sa.Column("id", sa.Integer, primary_key=True),
        _system_id(),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id"), nullable=True),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("status", sa.String(30), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_actions_system_id", "actions", ["system_id"])
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        _system_id(),
        sa.Column("kind", sa.String(50), nullable=False),
        sa.Column("subject", sa.JSON, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("requested_by", sa.String(200), nullable=False),
        sa.Column("requested_at", UTCDateTime, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=True),
        sa.Column("decided_at", UTCDateTime, nullable=True),
        sa.Column("decision_note", sa.Text, nullable=False),
    )
    op.create_index("ix_approvals_system_id", "approvals", ["system_id"])
    op.create_table(
        "review_decisions",
        sa.Column("id", sa.Integer, primary_key=True),
        _system_id(),
        sa.Column("prediction_id", sa.String(200), nullable=False),
        sa.Column("proposed_action", sa.String(100), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("overridden", sa.Boolean, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("decided_by", sa.String(200), nullable=False),
        sa.Column("decided_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("system_id", "prediction_id"),
    )
    op.create_index("ix_review_decisions_system_id", "review_decisions", ["system_id"])
    op.create_table(
        "suspensions",
        sa.Column("id", sa.Integer, primary_key=True),
        _system_id(),
        sa.Column("mode", sa.String(20), nullable=False),
        sa.Column("fallback_action", sa.String(100), nullable=True),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("started_by", sa.String(200), nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("ended_by", sa.String(200), nullable=True),
        sa.Column("ended_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_suspensions_system_id", "suspensions", ["system_id"])


def downgrade() -> None:
    for table in (
        "suspensions",
        "review_decisions",
        "approvals",
        "actions",
        "notifications",
        "alerts",
    ):
        op.drop_table(table)
