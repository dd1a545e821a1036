"""Shared fixtures: real stores on SQLite and PostgreSQL, a real workspace, a real Telco model.

PostgreSQL tests run against ``STEWARD_TEST_POSTGRES_URL`` (a server URL; each test gets a database
of its own, dropped after). Without it they skip with a reason, except under CI, where they fail:
CI must never skip them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import psycopg
import pytest
import yaml
from playwright.sync_api import Route, sync_playwright
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


#: Files that reuse the demo's run (``tests/test_demo.py`` keeps it in ``_RUNS``). Under xdist
#: (``-n``, set in pyproject's addopts) they share one worker, so the demo is told once, not per worker.
DEMO_FILES = frozenset({"test_demo.py", "test_demo_compliance.py", "test_metrics_health.py"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.name in DEMO_FILES:
            item.add_marker(pytest.mark.xdist_group("demo"))


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


#: Debian's chromium, headless as root, with nothing that reaches for the network on its own.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


S3_BUCKET = "steward-tests"


def require_module(module: str) -> Any:
    """Import an optional test dependency: skip without it, except in CI (there it fails)."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as missing:
        message = f"{module} is needed for the object-storage tests: pip install -e '.[dev,s3]'"
        if os.environ.get("CI"):
            pytest.fail(f"{message} ({missing})", pytrace=False)
        pytest.skip(message)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A local S3-compatible server (moto's threaded server) for this test process, reached the
    way a user reaches MinIO: AWS_ENDPOINT_URL and the usual AWS variables, set for the session
    so that servers and child processes the tests start reach it too. Bucket: ``S3_BUCKET``."""
    import logging

    moto_server = require_module("moto.server")
    boto3 = require_module("boto3")
    require_module("s3fs")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    patch = pytest.MonkeyPatch()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_CONFIG_FILE"):
        patch.delenv(name, raising=False)
    patch.setenv("AWS_ACCESS_KEY_ID", "testing")
    patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    patch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{port}")
    boto3.client("s3").create_bucket(Bucket=S3_BUCKET)
    yield f"http://127.0.0.1:{port}"
    patch.undo()
    server.stop()


@pytest.fixture
def s3_url(s3_endpoint: str) -> str:
    """An s3:// URL of a prefix no other test uses, on the local S3 server."""
    return f"s3://{S3_BUCKET}/{uuid.uuid4().hex}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Server:
    """`steward serve` in a subprocess, as a user would start it.

    ``insecure_local`` (the default here) serves without sign-in on loopback, as
    ``--insecure-local`` does, for tests of what the server does; tests of who may do it start it
    with ``insecure_local=False`` and send tokens.
    """

    def __init__(
        self,
        workspace: Path,
        database_url: str,
        *,
        insecure_local: bool = True,
        environment: dict[str, str] | None = None,
    ) -> None:
        self.insecure_local = insecure_local
        self.environment = environment or {}
        self.workspace = workspace
        self.database_url = database_url
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = workspace / "server.log"
        self.log_handle: Any = None

    def start(self) -> None:
        if self.log_handle is None:
            self.log_handle = self.log.open("ab")
        environment = {**os.environ, "STEWARD_DATABASE_URL": self.database_url, **self.environment}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "steward",
                "--workspace",
                str(self.workspace),
                "serve",
                "--port",
                str(self.port),
                *(["--insecure-local"] if self.insecure_local else []),
            ],
            env=environment,
            stdout=subprocess.DEVNULL,
            stderr=self.log_handle,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise AssertionError("the server did not become ready within 60 s")

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=30)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)

    def close(self) -> None:
        self.kill()
        if self.log_handle is not None:
            self.log_handle.close()


@pytest.fixture
def server(workspace: Steward, telco_model: object) -> Any:
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["policy"] = {
        "thresholds": [{"at": 0.5, "action": "contact"}],
        "holdout": 0.1,
    }
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    running = Server(workspace.settings.workspace, workspace.settings.database_url)
    yield running
    running.close()


def render_offline(html: Path, screenshot: Path) -> tuple[str, list[str]]:
    """Open the file in chromium with every non-file request aborted; return text and requests."""
    blocked: list[str] = []

    def guard(route: Route) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            blocked.append(route.request.url)
            route.abort()

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=CHROMIUM_ARGS,
        )
        try:
            context = browser.new_context(java_script_enabled=False)
            page = context.new_page()
            page.route("**/*", guard)
            page.goto(html.as_uri())
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(screenshot), full_page=True)
            return page.inner_text("body"), blocked
        finally:
            browser.close()


def demo_workspace(tmp_path: Path) -> tuple[Path, str]:
    """The demo's workspace: the run ``tests/test_demo.py`` made when it ran first in this
    session, else a fresh run through the CLI."""
    from tests import test_demo

    told = test_demo._RUNS.get("sqlite") or test_demo._tell(
        tmp_path, f"sqlite:///{tmp_path / 'steward.db'}", seed=0
    )
    return told.workspace, told.database_url
