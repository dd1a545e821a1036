"""Systems, model versions, aliases with their history, and the audit log.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from steward.store import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "systems",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("owner", sa.String(200), nullable=False),
        sa.Column("risk_tier", sa.String(50), nullable=False),
        sa.Column("intended_use", sa.Text, nullable=False),
        sa.Column("task", sa.String(50), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("entity_key", sa.String(200), nullable=False),
        sa.Column("config", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("flavor", sa.String(50), nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=False),
        sa.Column("artifact_name", sa.String(500), nullable=False),
        sa.Column("artifact_size", sa.Integer, nullable=False),
        sa.Column("trusted_types", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("code", sa.JSON, nullable=False),
        sa.Column("libraries", sa.JSON, nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("registered_by", sa.String(200), nullable=False),
        sa.Column("registered_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("system_id", "version"),
    )
    op.create_index("ix_model_versions_system_id", "model_versions", ["system_id"])
    op.create_index("ix_model_versions_artifact_sha256", "model_versions", ["artifact_sha256"])
    op.create_table(
        "aliases",
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), primary_key=True),
        sa.Column("name", sa.String(100), primary_key=True),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("moved_by", sa.String(200), nullable=False),
        sa.Column("moved_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "alias_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("system_id", sa.Integer, sa.ForeignKey("systems.id"), nullable=False),
        sa.Column("alias", sa.String(100), nullable=False),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("from_version", sa.Integer, nullable=True),
        sa.Column("to_version", sa.Integer, nullable=True),
        sa.Column("moved_by", sa.String(200), nullable=False),
        sa.Column("moved_at", UTCDateTime, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_alias_history_system_id", "alias_history", ["system_id"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("target", sa.String(500), nullable=False),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False, unique=True),
    )


def downgrade() -> None:
    for table in ("audit_log", "alias_history", "aliases", "model_versions", "systems"):
        op.drop_table(table)
