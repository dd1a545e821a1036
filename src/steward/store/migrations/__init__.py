"""Versioned schema migrations of the metadata store (Alembic).

``upgrade(connection)`` brings a database to the newest revision. It runs under the database's write
lock (SQLite ``BEGIN IMMEDIATE``, a PostgreSQL advisory lock), so processes that start together do not
race to create the same tables. New revisions go in ``versions/``; write them by hand, review the SQL,
and ``tests/test_store.py`` checks that the migrated schema equals the models in ``steward.store``.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import Connection

__all__ = ["alembic_config", "upgrade"]

_HERE = Path(__file__).parent
# Any constant works; it only has to be the same for every Steward process.
_ADVISORY_LOCK_KEY = 0x5735_7761_7264


def alembic_config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_HERE))
    config.attributes["connection"] = connection
    return config


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database behind ``connection`` to ``revision`` under its write lock."""
    if connection.dialect.name == "sqlite":
        connection = connection.execution_options(sqlite_begin="IMMEDIATE")
    with connection.begin():
        if connection.dialect.name == "postgresql":
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK_KEY})")
        command.upgrade(alembic_config(connection), revision)
