"""The metadata store: migrations build exactly the models' schema; failures say what to do."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Engine, make_url

from steward.errors import ConfigError, DatabaseUnreachableError
from steward.store import Base, MonitorResultRow, SLOEvaluationRow, UTCDateTime, open_store, select
from steward.store.migrations import alembic_config, upgrade


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


# --- 0005: SLO evaluations move out of the monitor results -----------------------------------------

T0 = datetime(2026, 3, 2, tzinfo=UTC)
SYSTEMS = sa.table(
    "systems",
    *(sa.column(name, sa.String) for name in ("name", "owner", "risk_tier", "intended_use")),
    *(sa.column(name, sa.String) for name in ("task", "target", "entity_key")),
    sa.column("id", sa.Integer),
    sa.column("config", sa.JSON),
    sa.column("created_at", UTCDateTime),
    sa.column("updated_at", UTCDateTime),
)
RESULTS = sa.table(
    "monitor_results",
    sa.column("system_id", sa.Integer),
    sa.column("monitor", sa.String),
    sa.column("window_start", UTCDateTime),
    sa.column("window_end", UTCDateTime),
    sa.column("status", sa.String),
    sa.column("summary", sa.Text),
    sa.column("details", sa.JSON),
    sa.column("created_at", UTCDateTime),
)


def _engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    return sa.create_engine(parsed)


def _slo_details(at: datetime, status: str, budget: float | None) -> dict[str, Any]:
    return {
        "system": "churn", "name": "fast", "indicator": "latency", "objective": 0.99,
        "window": "30d", "at": at.isoformat(), "status": status, "sli": 0.95,
        "budget_remaining": budget, "n_events": 20, "burn_rates": {"30d": 5.0, "1h": None},
        "windows": [], "alerting": [], "reason": "", "severity": None, "summary": "s",
    }  # fmt: skip


def _result(monitor: str, at: datetime, status: str, details: dict[str, Any]) -> dict[str, Any]:
    return {
        "system_id": 1, "monitor": monitor, "window_start": at - timedelta(days=30),
        "window_end": at, "status": status, "summary": f"{monitor} at {at:%H:%M}",
        "details": details, "created_at": at,
    }  # fmt: skip


def _store_at_0004_with_slo_results(url: str) -> Engine:
    engine = _engine(url)
    with engine.connect() as connection:
        upgrade(connection, "0004")
    with engine.begin() as connection:
        connection.execute(
            SYSTEMS.insert().values(
                id=1, name="churn", owner="", risk_tier="", intended_use="", task="binary",
                target="", entity_key="", config={}, created_at=T0, updated_at=T0,
            )
        )  # fmt: skip
        connection.execute(
            RESULTS.insert(),
            [
                _result("slo:fast", T0, "ok", _slo_details(T0, "ok", 0.5)),
                _result("drift", T0, "breach", {"alarmed_columns": ["tenure"]}),
                _result("slo:fast", T0 + timedelta(hours=1), "breach",
                        _slo_details(T0 + timedelta(hours=1), "alerting", None)),
            ],
        )  # fmt: skip
    return engine


def test_migration_0005_moves_slo_evaluations_into_their_own_table(database_url: str) -> None:
    _store_at_0004_with_slo_results(database_url).dispose()
    store = open_store(database_url)  # upgrades to the head
    with store.read() as session:
        results = session.scalars(select(MonitorResultRow)).all()
        evaluations = session.scalars(select(SLOEvaluationRow).order_by(SLOEvaluationRow.id)).all()
    store.dispose()
    assert [row.monitor for row in results] == ["drift"]
    assert [(row.name, row.status, row.window_end) for row in evaluations] == [
        ("fast", "ok", T0),
        ("fast", "breach", T0 + timedelta(hours=1)),
    ]
    first, last = evaluations
    assert (first.indicator, first.sli, first.budget_remaining) == ("latency", 0.95, 0.5)
    assert last.budget_remaining is None and last.details["status"] == "alerting"
    assert last.burn_rates == {"30d": 5.0, "1h": None}
    assert (last.window_start, last.summary, last.system_id) == (
        T0 - timedelta(days=29, hours=23),
        "slo:fast at 01:00",
        1,
    )


def test_migration_0005_downgrades_back_to_monitor_results(database_url: str) -> None:
    engine = _store_at_0004_with_slo_results(database_url)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "0005")
        command.downgrade(alembic_config(connection), "0004")
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(RESULTS.c.monitor, RESULTS.c.status, RESULTS.c.details)
        ).all()
        tables = sa.inspect(connection).get_table_names()
    engine.dispose()
    assert "slo_evaluations" not in tables
    assert sorted((monitor, status) for monitor, status, _ in rows) == [
        ("drift", "breach"),
        ("slo:fast", "breach"),
        ("slo:fast", "ok"),
    ]
    assert all(details["name"] == "fast" for monitor, _, details in rows if monitor != "drift")
