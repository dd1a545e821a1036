"""Alembic environment: always run with a connection handed over by ``steward.store.migrations.upgrade``."""

from __future__ import annotations

from alembic import context

from steward.store import Base

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run Steward migrations through steward.migrations.upgrade(connection)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
