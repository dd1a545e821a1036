"""Retention per system, with the high-risk floor, proved by reading the files that remain."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import select

from steward import Steward
from steward.cli.main import cli
from steward.errors import ConfigError
from steward.store import ReviewDecisionRow, System, audit
from steward.workspace.retention import EXPORT_SPAN, EXPORTS, run_retention, verify_retention

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


def _decide(steward: Steward, system: str, prediction_id: str, note: str, at: datetime) -> None:
    """A review decision as the review queue stores it: the row, bound to its audit entry."""
    with steward.store.write() as session:
        system_id = session.scalars(select(System.id).where(System.name == system)).one()
        row = ReviewDecisionRow(
            system_id=system_id, prediction_id=prediction_id, proposed_action="contact",
            action="contact", note=note, decided_by="reviewer", decided_at=at,
        )  # fmt: skip
        session.add(row)
        session.flush()
        audit.record(
            session, actor="reviewer", action="review.approve",
            target=f"{system}/{prediction_id}", details={"note": ""}, bind=row,
        )  # fmt: skip


def _export(steward: Steward, system: str, made: datetime, start: datetime | None) -> Path:
    folder = steward.settings.store_dir / EXPORTS / f"{system}-{made:%Y%m%dT%H%M%S}"
    folder.mkdir(parents=True)
    pd.DataFrame({"customerID": [f"{system}-{made:%j}"], "Churn": [1]}).to_parquet(
        folder / "data.parquet"
    )
    if start is not None:
        span = {"start": start.isoformat(), "end": made.isoformat()}
        (folder / EXPORT_SPAN).write_text(json.dumps(span))
    return folder


def test_review_decisions_and_retrain_exports_past_retention_go_and_leave_no_bytes(
    workspace: Steward,
) -> None:
    _declare(workspace, retention_days=365)  # leads keeps 30 days
    old, recent = NOW - timedelta(days=45), NOW - timedelta(days=2)
    _decide(workspace, "leads", "p-old", "NOTE-OLD-7f3a about the customer", old)
    _decide(workspace, "leads", "p-new", "NOTE-NEW-2b9c", recent)
    _decide(workspace, "churn", "p-churn", "NOTE-CHURN-kept", old)  # 365 days: kept
    stale = _export(workspace, "leads", recent, recent - timedelta(days=40))  # reaches back 42 days
    legacy = _export(workspace, "leads", old, None)  # no span written: its name's time counts
    fresh = _export(workspace, "leads", recent + timedelta(hours=1), recent - timedelta(days=7))
    kept = _export(workspace, "churn", old, old - timedelta(days=30))
    assert not verify_retention(workspace, workspace.events).ok

    runs = {run.system: run for run in run_retention(workspace, workspace.events)}
    assert (runs["leads"].review_decisions, runs["leads"].exports) == (1, 2)
    assert (runs["churn"].review_decisions, runs["churn"].exports) == (0, 0)
    assert not stale.exists() and not legacy.exists() and fresh.exists() and kept.exists()
    with workspace.store.read() as session:
        left = set(session.scalars(select(ReviewDecisionRow.prediction_id)))
    assert left == {"p-new", "p-churn"}
    check = verify_retention(workspace, workspace.events)
    assert check.ok, check.violations
    assert workspace.verify_audit().ok  # the deletion is bound to its audit entry
    if workspace.store.dialect == "sqlite":  # the raw database files hold no byte of the note
        database = Path(workspace.settings.database_url.removeprefix("sqlite:///"))
        raw = b"".join(p.read_bytes() for p in database.parent.glob(database.name + "*"))
        assert b"NOTE-OLD-7f3a" not in raw and b"NOTE-NEW-2b9c" in raw
    else:
        with psycopg.connect(workspace.settings.database_url) as connection:
            notes = [r[0] for r in connection.execute("SELECT note FROM review_decisions")]
        assert "NOTE-OLD-7f3a about the customer" not in notes
