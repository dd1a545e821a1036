"""Tables and event-log files bound to the audit log: tampering with either is found by verify.

Every attack is real: SQL straight into the tables (bypassing Steward), files changed on disk, on
SQLite and on the real PostgreSQL. The workspace first lives a little: alias moves and a rollback,
an approval requested and approved, a suspension and its end, review decisions, predictions rolled
to Parquet, a compaction, an erasure and a retention run.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import delete, func, insert, inspect, select, update
from sqlalchemy.engine import Engine

from steward import Steward
from steward.cli import cli
from steward.data.events import EventLog
from steward.delivery import suspension as suspensions
from steward.demo import train_churn_model
from steward.governance import review
from steward.governance.access import (
    Role,
    add_identity,
    create_token,
    disable_identity,
    login_link,
    redeem_login,
    revoke_token,
)
from steward.llm import eval_runs, prompts
from steward.loop import promotion
from steward.model.registry import find_system
from steward.store import (
    AliasMove,
    AliasRow,
    ApprovalRow,
    AuditRow,
    IdentityRow,
    ReviewDecisionRow,
    SuspensionRow,
    System,
    TokenRow,
    audit,
    bindings,
    utcnow,
)
from steward.store.checkpoints import CHECKPOINT_FILE, PUBLIC_KEY_FILE

from .test_audit_merkle import entries, rechain

OLD_DAY = datetime(2026, 11, 18, 9, tzinfo=UTC)
DAY = datetime(2026, 11, 20, 9, tzinfo=UTC)


def predictions(first: int, n: int, day: datetime) -> list[dict[str, Any]]:
    """Predictions sent to review (as a suspended system's are), one customer each."""
    return [
        {
            "kind": "prediction",
            "system": "churn",
            "id": f"p{i}",
            "entity_key": f"c{i}",
            "event_time": day + timedelta(minutes=i),
            "model_version": 1,
            "inputs": json.dumps({"tenure": i}),
            "score": 0.5,
            "decision": "review",
            "intended_action": "email",
            "holdout": False,
        }
        for i in range(first, first + n)
    ]


@pytest.fixture(scope="module")
def small(telco: tuple[pd.DataFrame, pd.Series]) -> tuple[pd.DataFrame, pd.Series]:
    frame, target = telco
    return frame.iloc[:1500], target.iloc[:1500]


def llm_system(workspace: Steward) -> None:
    """Add an LLM system with one prompt file to the workspace's steward.yaml and apply it."""
    root = workspace.settings.workspace
    (root / "answer.yaml").write_text(
        "template: 'Answer {{ q }}'\nvariables: [q]\nprovider: echo\n"
    )
    config = yaml.safe_load(workspace.settings.config_path.read_text())
    config["systems"].append(
        {"name": "support", "task": "llm", "prompts": [{"name": "answer", "file": "answer.yaml"}]}
    )
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()


@pytest.fixture
def lived_in(
    workspace: Steward, telco_model: object, small: tuple[pd.DataFrame, pd.Series]
) -> Steward:
    """A workspace that went through every write of the bound tables and of the event files."""
    workspace.register_model(telco_model, system="churn")
    workspace.register_model(train_churn_model(*small, C=0.3), system="churn")
    workspace.move_alias("churn", "champion", 1)
    workspace.move_alias("churn", "challenger", 2)
    workspace.move_alias("churn", "champion", 2, reason="try v2")
    workspace.rollback("churn", reason="v2 scored worse")
    comparison = promotion.Comparison(
        "churn", challenger=2, champion=1, min_margin=0.01, alpha=0.05
    )
    approval = promotion.request_promotion(workspace, comparison, actor="tester")
    promotion.approve(workspace, approval.id, actor="dana", note="checked the figures")
    suspensions.suspend(workspace, "churn", mode="review", reason="drift on tenure")
    suspensions.resume(workspace, "churn", reason="explained")
    # Identities and credentials: a user, a token revoked, a login link spent for a session.
    add_identity(workspace, "ana", Role.APPROVER)
    revoke_token(workspace, create_token(workspace, "ana", expires_in=timedelta(days=1)).info.key)
    redeem_login(workspace, login_link(workspace, "ana").secret)
    disable_identity(workspace, "ana")
    # A prompt of an LLM system: a version, a label move, and the eval run the move cites.
    llm_system(workspace)
    eval_runs.save_run(
        workspace.store,
        system="support",
        prompt="answer",
        version=1,
        baseline_version=None,
        baseline_label="production",
        eval_set="evals.yaml",
        eval_set_sha256="0" * 64,
        provider="echo",
        decision="pass",
        summary={"pass_rate": 1.0},
        result={"candidate": {"cases": []}},
        actor="tester",
    )
    prompts.move_label(workspace.store, "support", "answer", "production", 1, actor="tester")

    events = workspace.events
    events.append(predictions(0, 5, OLD_DAY))
    events.append(predictions(5, 5, DAY))
    events.flush()
    events.append(predictions(10, 5, DAY))
    events.flush()
    assert events.compact("prediction", "churn", DAY.date()) == 2
    review.decide_review(workspace, events, "churn", "p6", note="fine")
    review.decide_review(workspace, events, "churn", "p7", action="call", actor="ana")
    assert events.erase("churn", "c8") == 1
    assert events.delete_before(DAY.date()) == 1  # the prediction partition of OLD_DAY
    events.flush()  # the review outcomes
    return workspace


def parquet_files(steward: Steward) -> list[Path]:
    return sorted(steward.settings.events_dir.rglob("*.parquet"))


def the_file(steward: Steward) -> Path:
    """The compacted (and, by the erasure, rewritten) prediction file of DAY."""
    [path] = (steward.settings.events_dir / "kind=prediction" / "system=churn").glob(
        f"date={DAY.date()}/*.parquet"
    )
    return path


def first_id(engine: Engine, row_class: Any) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.min(row_class.id))))


# The clean workspace


def test_a_workspace_that_went_through_every_write_verifies_intact(lived_in: Steward) -> None:
    check = lived_in.verify_audit()
    assert check.ok, check.message
    assert check.message.startswith("intact: ") and check.findings == ()
    with lived_in.store.read() as session:
        n_rows = sum(
            session.scalar(select(func.count()).select_from(row_class)) or 0
            for row_class, _ in bindings.BINDINGS.values()
        )
        logged = list(session.scalars(select(AuditRow).order_by(AuditRow.id)))
    on_disk = parquet_files(lived_in)
    assert (check.n_rows, check.n_files) == (n_rows, len(on_disk))
    assert f"{n_rows} bound rows and {len(on_disk)} event-log files match" in check.message
    bound_tables = {item["table"] for entry in logged for item in entry.details.get("rows", [])}
    assert bound_tables == set(bindings.BINDINGS)
    commits = [entry.details for entry in logged if entry.action == "events.files"]
    assert {details["reason"] for details in commits} == {"roll", "compact", "retention", "erasure"}
    committed: dict[str, str] = {}
    for details in commits:  # replayed by hand: what the commits leave is what is on disk
        for path in details["removed"]:
            committed.pop(path)
        committed.update(details["added"])
    root = lived_in.settings.events_dir
    assert sorted(committed) == [path.relative_to(root).as_posix() for path in on_disk]
    assert all(
        committed[path.relative_to(root).as_posix()] == bindings.file_sha256(path)
        for path in on_disk
    )
    assert not any(f"date={OLD_DAY.date()}" in path for path in committed)


# Tampering with the tables


def edit_alias_history(engine: Engine) -> tuple[str, Any]:
    row_id = first_id(engine, AliasMove)
    with engine.begin() as connection:
        connection.execute(
            update(AliasMove.__table__)
            .where(AliasMove.__table__.c.id == row_id)
            .values(reason="nothing happened", moved_by="mallory")
        )
    return "alias_history", row_id


def delete_an_approval(engine: Engine) -> tuple[str, Any]:
    row_id = first_id(engine, ApprovalRow)
    with engine.begin() as connection:
        connection.execute(
            delete(ApprovalRow.__table__).where(ApprovalRow.__table__.c.id == row_id)
        )
    return "approvals", row_id


def insert_a_review_decision(engine: Engine) -> tuple[str, Any]:
    with engine.begin() as connection:
        system_id = connection.scalar(select(System.id).where(System.name == "churn"))
        result = connection.execute(
            insert(ReviewDecisionRow.__table__).values(
                system_id=system_id,
                prediction_id="p9",
                proposed_action="email",
                action="none",
                overridden=True,
                note="",
                decided_by="mallory",
                decided_at=utcnow(),
            )
        )
    return "review_decisions", result.inserted_primary_key[0]


def edit_a_suspension(engine: Engine) -> tuple[str, Any]:
    row_id = first_id(engine, SuspensionRow)
    with engine.begin() as connection:
        connection.execute(
            update(SuspensionRow.__table__)
            .where(SuspensionRow.__table__.c.id == row_id)
            .values(reason="routine check")
        )
    return "suspensions", row_id


def point_the_champion_elsewhere(engine: Engine) -> tuple[str, Any]:
    with engine.begin() as connection:
        system_id = connection.scalar(select(System.id).where(System.name == "churn"))
        connection.execute(
            update(AliasRow.__table__)
            .where(
                AliasRow.__table__.c.system_id == system_id, AliasRow.__table__.c.name == "champion"
            )
            .values(version=1)
        )
    return "aliases", [system_id, "champion"]


def make_a_viewer_an_admin(engine: Engine) -> tuple[str, Any]:
    """Privilege escalation in the database: a disabled approver made an admin again."""
    table = IdentityRow.__table__
    with engine.begin() as connection:
        connection.execute(
            update(table).where(table.c.name == "ana").values(role="admin", disabled_at=None)
        )
        row_id = connection.scalar(select(table.c.id).where(table.c.name == "ana"))
    return "identities", row_id


def unrevoke_a_token(engine: Engine) -> tuple[str, Any]:
    table = TokenRow.__table__
    with engine.begin() as connection:
        row_id = connection.scalar(
            select(table.c.id).where(table.c.kind == "api").order_by(table.c.id).limit(1)
        )
        connection.execute(
            update(table).where(table.c.id == row_id).values(revoked_at=None, revoked_by=None)
        )
    return "tokens", row_id


TABLE_ATTACKS: dict[str, tuple[Callable[[Engine], tuple[str, Any]], str]] = {
    "make a disabled user an admin": (make_a_viewer_an_admin, "edited"),
    "bring a revoked token back": (unrevoke_a_token, "edited"),
    "edit an alias history row": (edit_alias_history, "edited"),
    "delete an approval": (delete_an_approval, "deleted"),
    "insert a review decision": (insert_a_review_decision, "inserted, not in the audit log"),
    "edit a suspension": (edit_a_suspension, "edited"),
    "point the champion elsewhere": (point_the_champion_elsewhere, "edited"),
}


@pytest.mark.parametrize("attack", TABLE_ATTACKS)
def test_a_direct_sql_change_to_a_bound_table_is_found(lived_in: Steward, attack: str) -> None:
    assert lived_in.verify_audit().ok
    tamper, what = TABLE_ATTACKS[attack]
    table, row_id = tamper(lived_in.store.engine)
    check = lived_in.verify_audit()
    assert not check.ok and check.broken
    assert check.message.startswith("broken: 1 row or file differs from the audit log: ")
    [finding] = check.findings
    assert (finding.table, finding.id, finding.broken) == (table, row_id, True)
    assert finding.what.startswith(what)
    assert str(finding) in check.message


def cli_verify(steward: Steward, *options: str) -> Any:
    base = ["--workspace", str(steward.settings.workspace)]
    base += ["--database-url", steward.settings.database_url]
    return CliRunner().invoke(cli, [*base, "audit", *options])


def test_the_cli_names_the_inserted_row_and_exits_1(lived_in: Steward) -> None:
    intact = cli_verify(lived_in, "verify")
    assert intact.exit_code == 0 and "audit log intact: " in intact.output, intact.output
    _, row_id = insert_a_review_decision(lived_in.store.engine)
    broken = cli_verify(lived_in, "verify")
    assert broken.exit_code == 1, broken.output
    assert "audit log broken: " in broken.output and "intact" not in broken.output
    assert f"review_decisions {row_id}: inserted, not in the audit log" in broken.output


def test_an_edit_whose_entry_was_rewritten_to_match_is_caught_by_the_checkpoint(
    lived_in: Steward, tmp_path: Path
) -> None:
    """The attacker edits a row, puts its new digest into the entry that binds it and recomputes
    every chain hash: only a checkpoint kept elsewhere still shows it."""
    directory = lived_in.settings.store_dir
    audit.checkpoint(lived_in.store, directory)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for name in (CHECKPOINT_FILE, PUBLIC_KEY_FILE):
        shutil.copy(directory / name, elsewhere / name)
    engine = lived_in.store.engine
    table, row_id = edit_a_suspension(engine)
    row_class, columns = bindings.BINDINGS[table]
    with engine.connect() as connection:
        values = connection.execute(
            select(*(getattr(row_class, name) for name in columns)).where(row_class.id == row_id)
        ).one()
    digest = bindings.row_digest(dict(zip(columns, values, strict=True)))
    for entry in entries(engine):
        rows = entry.details.get("rows", [])
        if any((item["table"], item["id"]) == (table, row_id) for item in rows):
            for item in rows:
                if (item["table"], item["id"]) == (table, row_id):
                    item["sha256"] = digest
            with engine.begin() as connection:
                connection.execute(
                    update(AuditRow).where(AuditRow.id == entry.id).values(details=entry.details)
                )
    rechain(engine)
    (directory / CHECKPOINT_FILE).unlink()
    assert lived_in.verify_audit().ok, "the log and the tables alone are fooled"
    check = lived_in.verify_audit([elsewhere / CHECKPOINT_FILE], elsewhere / PUBLIC_KEY_FILE)
    assert not check.ok and check.broken
    assert check.message.startswith("broken: checkpoint 1 in ")


# Tampering with the event-log files


def delete_a_file(steward: Steward) -> str:
    path = the_file(steward)
    path.unlink()
    return path.relative_to(steward.settings.events_dir).as_posix()


def edit_a_file(steward: Steward) -> str:
    path = the_file(steward)
    table = pq.read_table(path, partitioning=None)
    pq.write_table(table.slice(1), path)  # one prediction fewer
    return path.relative_to(steward.settings.events_dir).as_posix()


def insert_a_file(steward: Steward) -> str:
    path = the_file(steward)
    forged = path.with_name("part-mallory-000000000001.parquet")
    shutil.copy(path, forged)
    return forged.relative_to(steward.settings.events_dir).as_posix()


FILE_ATTACKS: dict[str, tuple[Callable[[Steward], str], str]] = {
    "delete a file": (delete_a_file, "deleted (committed by entry "),
    "edit a file": (edit_a_file, "edited (differs from what entry "),
    "insert a file": (
        insert_a_file,
        "not committed: inserted, or written by a process that crashed before committing it",
    ),
}


@pytest.mark.parametrize("attack", FILE_ATTACKS)
def test_a_changed_event_log_file_is_found(lived_in: Steward, attack: str) -> None:
    assert lived_in.verify_audit().ok
    tamper, what = FILE_ATTACKS[attack]
    relative = tamper(lived_in)
    check = lived_in.verify_audit()
    assert not check.ok and check.broken and check.message.startswith("broken: ")
    [finding] = check.findings
    assert (finding.table, finding.id, finding.broken) == ("event file", relative, True)
    assert finding.what.startswith(what)
    if attack == "delete a file":  # and from the command line
        shown = cli_verify(lived_in, "verify")
        assert shown.exit_code == 1 and f"event file {relative}: deleted" in shown.output


def test_a_failing_hook_loses_no_event_and_verify_reports_the_file_uncommitted(
    workspace: Steward, caplog: pytest.LogCaptureFixture
) -> None:
    def store_down(added: dict[str, str], removed: list[str], reason: str) -> None:
        raise RuntimeError("the metadata store is down")

    with (
        caplog.at_level(logging.WARNING, "steward.data.events"),
        EventLog(workspace.settings.events_dir, on_files=store_down) as log,
    ):
        log.append(predictions(0, 4, DAY))
        log.flush()
        assert log.count("prediction", "churn") == 4
    assert "not committed to the audit log" in caplog.text
    assert "the metadata store is down" in caplog.text
    [path] = parquet_files(workspace)
    check = workspace.verify_audit()
    assert not check.ok and check.broken
    [finding] = check.findings
    assert finding.id == path.relative_to(workspace.settings.events_dir).as_posix()
    assert finding.what.startswith("not committed")
    assert EventLog(workspace.settings.events_dir).count("prediction", "churn") == 4


# A workspace begun before binding existed


def as_an_older_steward_wrote_it(engine: Engine) -> None:
    """The log an older Steward would have written: no file commits, no rows, no marker."""
    with engine.begin() as connection:
        connection.execute(delete(AuditRow).where(AuditRow.action == "events.files"))
    for entry in entries(engine):
        details = {k: v for k, v in entry.details.items() if k not in ("rows", "binding")}
        with engine.begin() as connection:
            connection.execute(
                update(AuditRow).where(AuditRow.id == entry.id).values(details=details)
            )
    rechain(engine)


def test_rows_and_files_written_before_binding_are_not_bound_until_bound_once(
    workspace: Steward, telco_model: object
) -> None:
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    suspensions.suspend(workspace, "churn", mode="review", reason="drift")
    workspace.events.append(predictions(0, 3, DAY))
    workspace.events.flush()
    as_an_older_steward_wrote_it(workspace.store.engine)

    before = workspace.verify_audit()
    assert not before.ok and not before.broken
    assert before.message.startswith("not fully verified: the log is intact (")
    assert "run `steward audit bind` once" in before.message
    assert {finding.table for finding in before.findings} == {
        "aliases",
        "alias_history",
        "suspensions",
        "event file",
    }
    assert all(finding.what == "not bound (written before binding)" for finding in before.findings)
    assert cli_verify(workspace, "verify").exit_code == 1

    bound = cli_verify(workspace, "bind")
    assert bound.exit_code == 0, bound.output
    assert "bound 3 rows and 1 event-log file written before binding" in bound.output
    assert workspace.verify_audit().ok
    assert "nothing to bind" in cli_verify(workspace, "bind").output

    insert_a_review_decision(workspace.store.engine)  # into a table covered by now
    check = workspace.verify_audit()
    assert check.broken and [f.what for f in check.findings] == ["inserted, not in the audit log"]
    refused = cli_verify(workspace, "bind")
    assert refused.exit_code == 1 and "nothing was bound" in refused.output


# The registry of bound tables


def test_every_bound_table_names_its_own_class_and_real_columns() -> None:
    for table, (row_class, columns) in bindings.BINDINGS.items():
        assert row_class.__tablename__ == table
        names = {attribute.key for attribute in inspect(row_class).column_attrs}
        assert set(columns) <= names, set(columns) - names


def test_binding_a_row_of_a_table_that_is_not_bound_is_refused(workspace: Steward) -> None:
    with pytest.raises(TypeError, match="not a row of a bound table"), workspace.store.write() as s:
        audit.record(
            s,
            actor="ana",
            action="test.step",
            target="churn",
            details={},
            bind=find_system(s, "churn"),
        )
