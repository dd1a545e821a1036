"""Shared fixtures: real stores on SQLite and PostgreSQL, a real workspace, a real Telco model.

PostgreSQL tests run against ``STEWARD_TEST_POSTGRES_URL`` (a server URL; each test gets a database
of its own, dropped after). Without it they skip with a reason, except under CI, where they fail:
CI must never skip them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import psycopg
import pytest
from sqlalchemy.engine import make_url

from steward import Steward
from steward.demo import load_telco, train_churn_model

CONFIG = """\
version: 1
systems:
  - name: churn
    task: binary
    owner: ana@example.com
    risk_tier: high
    intended_use: Rank customers by churn risk for the retention team.
    target: Churn
    entity_key: customerID
    card:
      factors: Tenure, contract type and payment method.
      caveats: Trained on one fictional telco's customers.
"""


@pytest.fixture(scope="session")
def postgres_server_url() -> str:
    url = os.environ.get("STEWARD_TEST_POSTGRES_URL")
    if not url:
        if os.environ.get("CI"):
            pytest.fail("CI must run the PostgreSQL tests: set STEWARD_TEST_POSTGRES_URL")
        pytest.skip("set STEWARD_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:5432/postgres")
    return url


@pytest.fixture
def postgres_url(postgres_server_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    server = make_url(postgres_server_url)
    name = f"steward_test_{uuid.uuid4().hex[:12]}"
    admin = server.set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield server.set(database=name).render_as_string(hide_password=False)
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each store test runs twice: on SQLite in tmp_path and on the real PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'steward.db'}"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def workspace(tmp_path: Path, database_url: str) -> Iterator[Steward]:
    """An initialised workspace with the ``churn`` system applied."""
    root = tmp_path / "workspace"
    root.mkdir()
    (root / "steward.yaml").write_text(CONFIG)
    steward = Steward.open(root, database_url=database_url, user="tester")
    steward.init()
    steward.apply()
    yield steward
    steward.close()


@pytest.fixture(scope="session")
def telco() -> tuple[pd.DataFrame, pd.Series]:
    return load_telco()


@pytest.fixture(scope="session")
def telco_model(telco: tuple[pd.DataFrame, pd.Series]) -> object:
    frame, target = telco
    return train_churn_model(frame, target, C=1.0)
