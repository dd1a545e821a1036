"""The metadata store: migrations build exactly the models' schema; failures say what to do."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from steward.errors import ConfigError, DatabaseUnreachableError
from steward.store import Base, open_store
from steward.store.migrations import alembic_config


def test_migrations_build_the_schema_the_models_declare(database_url: str) -> None:
    store = open_store(database_url)
    with store.engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    store.dispose()
    assert differences == []


def test_opening_twice_does_not_migrate_twice(database_url: str) -> None:
    open_store(database_url).dispose()
    store = open_store(database_url)
    with store.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    store.dispose()
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert current == head
    assert head is not None and int(head) >= 4


def test_unreachable_database_says_which_and_what_to_check() -> None:
    with pytest.raises(DatabaseUnreachableError) as caught:
        open_store("postgresql://nobody:secret@127.0.0.1:1/steward")
    message = str(caught.value)
    assert "postgresql://nobody:***@127.0.0.1:1/steward" in message
    assert "secret" not in message
    assert "check STEWARD_DATABASE_URL" in message


def test_unsupported_backend_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="backend 'mysql' is not supported"):
        open_store("mysql://root@localhost/steward")
    with pytest.raises(ConfigError, match="is not a valid SQLAlchemy URL"):
        open_store("not a url")
