"""Retention per system, with the high-risk floor, proved by reading the files that remain."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner

from steward import Steward
from steward.cli.main import cli
from steward.errors import ConfigError
from steward.workspace.retention import run_retention, verify_retention

NOW = datetime.now(UTC)


def _declare(steward: Steward, **churn: object) -> None:
    config = yaml.safe_load(steward.settings.config_path.read_text())
    config["systems"][0].update(churn)
    if not any(system["name"] == "leads" for system in config["systems"]):
        config["systems"].append(
            {"name": "leads", "task": "binary", "risk_tier": "low", "retention_days": 30}
        )
    steward.settings.config_path.write_text(yaml.safe_dump(config))
    steward.apply()


def _raw_ids(root: Path) -> set[str]:
    """Every id in every Parquet file, and whether any write-ahead segment holds the text."""
    found = set()
    for path in root.rglob("*.parquet"):
        found.update(pq.read_table(path, columns=["id"]).column("id").to_pylist())
    return found


def _in_segments(root: Path, text: str) -> bool:
    return any(text.encode() in path.read_bytes() for path in root.rglob("*.wal"))


def test_a_high_risk_system_refuses_a_retention_under_the_floor(workspace: Steward) -> None:
    with pytest.raises(
        ConfigError, match=r"high-risk.*at least 180 days \(EU AI Act Art\. 19\(1\)"
    ):
        _declare(workspace, retention_days=90)
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    assert (
        "retention_days" not in config["systems"][0] or config["systems"][0]["retention_days"] == 90
    )
    short = Steward.open(
        workspace.settings.workspace,
        database_url=workspace.settings.database_url,
        retention_days=90,
    )
    try:
        workspace.settings.config_path.write_text(
            yaml.safe_dump(
                {
                    "version": 1,
                    "systems": [{"name": "churn", "task": "binary", "risk_tier": "high"}],
                }
            )
        )
        with pytest.raises(ConfigError, match="the workspace's retention_days setting is 90"):
            short.apply()
    finally:
        short.close()


def test_each_system_keeps_its_own_period_and_nothing_older_remains(workspace: Steward) -> None:
    _declare(workspace, retention_days=365)
    events = workspace.events
    old = NOW - timedelta(days=60)
    events.append(
        [
            {"kind": "prediction", "system": system, "id": f"{system}-{age}", "event_time": when}
            for system in ("churn", "leads")
            for age, when in (("old", old), ("new", NOW - timedelta(hours=1)))
        ]
    )
    events.flush()
    runs = {run.system: run for run in run_retention(workspace, events)}
    assert (runs["churn"].days, runs["churn"].removed) == (365, 0)
    assert (runs["leads"].days, runs["leads"].removed) == (30, 1)
    ids = _raw_ids(workspace.settings.events_dir)
    assert "leads-old" not in ids and {"leads-new", "churn-old", "churn-new"} <= ids
    assert not _in_segments(workspace.settings.events_dir, "leads-old")
    assert verify_retention(workspace, events).ok

    # An old event that arrives after retention ran is found by the proof, then removed.
    events.append([{"kind": "outcome", "system": "leads", "id": "late", "event_time": old}])
    check = verify_retention(workspace, events)
    assert not check.ok and "outcomes of 'leads': an event dated" in check.violations[0]
    base = ["--workspace", str(workspace.settings.workspace), "--database-url",
            workspace.settings.database_url]  # fmt: skip
    runner = CliRunner()
    refused = runner.invoke(cli, [*base, "retention", "verify"])
    assert refused.exit_code == 1 and "past retention" in refused.output
    events.flush()
    done = runner.invoke(cli, [*base, "retention"])
    assert done.exit_code == 0 and "leads: removed 1 day partition(s)" in done.output
    proved = runner.invoke(cli, [*base, "retention", "verify"])
    assert proved.exit_code == 0 and "retention verified" in proved.output, proved.output
    assert "late" not in _raw_ids(workspace.settings.events_dir)
