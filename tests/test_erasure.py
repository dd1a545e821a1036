"""Erasure by subject, proved by reading every file the workspace left as raw bytes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pandas as pd
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from sqlalchemy import select, text

from steward import Steward
from steward.cli.main import cli
from steward.data.events import EventLog
from steward.data.events.durable import CRASH_AT_ENV
from steward.governance import review
from steward.governance.erasure import PLACES, erase_subject, subject_digest
from steward.loop import retrain
from steward.store import AuditRow

from .conftest import Server
from .test_retrain import TRAIN_SCRIPT, command_for, configure

SUBJECT = "subject-7f3a"
#: Erased through the HTTP route (a Telco customer, so it is in the reference samples too).
SECOND_ROW = 11
N_PREDICTIONS, N_LABELED = 320, 300
SUBJECT_ROW = 5


#: Entities with a prediction sent to review and decided.
REVIEWED = (SUBJECT, "someone-else")


def _pid(index: int) -> str:
    return f"pred-{index:04d}x"


def _review_id(key: str) -> str:
    return f"review-{REVIEWED.index(key):04d}x"


def _log(steward: Steward, frame: pd.DataFrame, target: pd.Series) -> None:
    """Predictions (with the entity key), outcomes (without it), a shadow score of the subject's
    prediction (without it), an LLM call for the subject and a prediction sent to review."""
    records = json.loads(frame.iloc[:N_PREDICTIONS].to_json(orient="records"))
    when = datetime.now(UTC) - timedelta(days=2)
    steward.events.append(
        [
            {"kind": "prediction", "system": "churn", "id": _pid(i), "event_time": when,
             "entity_key": record["customerID"], "model_version": 1, "inputs": record,
             "score": 0.5}
            for i, record in enumerate(records)
        ]
        + [
            {"kind": "outcome", "system": "churn", "id": f"o{i}", "prediction_id": _pid(i),
             "event_time": when + timedelta(hours=3), "value": float(target.iloc[i])}
            for i in range(N_LABELED)
        ]
        + [
            {"kind": "shadow", "system": "churn", "id": _pid(SUBJECT_ROW), "model_version": 2,
             "event_time": when, "score": 0.4},
            {"kind": "llm_call", "system": "churn", "id": "call-1", "entity_key": SUBJECT,
             "event_time": when, "input_text": f"summarise the file of {SUBJECT}"},
        ]
        + [
            {"kind": "prediction", "system": "churn", "id": _review_id(key), "event_time": when,
             "entity_key": key, "model_version": 1, "inputs": {"tenure": 3}, "score": 0.55,
             "decision": "review", "intended_action": "contact"}
            for key in REVIEWED
        ]
    )  # fmt: skip
    for key in REVIEWED:
        review.decide_review(
            steward, steward.events, "churn", _review_id(key), note=f"called {key}; no offers"
        )


@pytest.fixture
def populated(
    workspace: Steward, tmp_path: Path, telco: tuple[pd.DataFrame, pd.Series], telco_model: object
) -> Iterator[tuple[Steward, pd.DataFrame]]:
    """v1 registered with a reference sample holding the subject, traffic, reviews, and a retrain
    whose export (and v2's reference sample) holds the subject too."""
    frame, target = telco
    frame = frame.copy()
    frame.loc[SUBJECT_ROW, "customerID"] = SUBJECT
    configure(workspace, {"command": command_for(tmp_path, TRAIN_SCRIPT)})
    workspace.register_model(telco_model, system="churn", data=frame.iloc[:400])
    workspace.move_alias("churn", "champion", 1)
    _log(workspace, frame, target)
    result = retrain.run_retrain(workspace, workspace.events, "churn")
    assert result.status == "done", result.reason
    workspace.events.close()  # roll this process's segments: the CLI runs as another writer
    yield workspace, frame


def _files(root: Path) -> Iterator[tuple[Path, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file():
            yield path, path.read_bytes()


def _rows_of(root: Path, kind: str, column: str, values: set[str]) -> int:
    found = 0
    for path in (root / f"kind={kind}").rglob("*.parquet"):
        column_values = pq.read_table(path, columns=[column]).column(column).to_pylist()
        found += sum(value in values for value in column_values)
    return found


def _cli(steward: Steward, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(steward.settings.workspace),
            "--database-url",
            steward.settings.database_url,
            "--user",
            "dpo",
            *args,
        ],
    )
    return result.exit_code, result.output


def _expected(steward: Steward, frame: pd.DataFrame, key: str) -> dict[str, int]:
    """What an erasure of ``key`` must remove, counted from the files before it runs."""
    rows = [i for i in range(N_PREDICTIONS) if frame["customerID"].iloc[i] == key]
    ids = {_pid(i) for i in rows} | ({_review_id(key)} if key in REVIEWED else set())
    root = steward.settings.events_dir
    references = 0
    for version in steward.versions("churn"):
        sample = pd.read_parquet(steward.artifacts.path_for(version.data["reference_sha256"]))
        references += int((sample["customerID"] == key).sum())
    exports = sum(
        int((pd.read_parquet(path)["customerID"] == key).sum())
        for path in (steward.settings.store_dir / "retrain").rglob("*.parquet")
    )
    return {
        "predictions": _rows_of(root, "prediction", "id", ids),
        "shadows": _rows_of(root, "shadow", "id", ids),
        "outcomes": _rows_of(root, "outcome", "prediction_id", ids),
        "other_events": _rows_of(root, "llm_call", "entity_key", {key}),
        "review_decisions": 1 if key == SUBJECT else 0,
        "reference_rows": references,
        "export_rows": exports,
    }


def _audit_text(steward: Steward) -> str:
    with steward.store.read() as session:
        rows = session.scalars(select(AuditRow)).all()
        return "\n".join(f"{row.target} {json.dumps(row.details)}" for row in rows)


def _assert_no_row_names(steward: Steward, keys: list[str], ids: list[str]) -> None:
    """No row of any table holds a key; only audit entries (a review's) may name the ids."""
    with steward.store.read() as session:
        tables = [
            name
            for (name,) in session.execute(
                text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            )
        ]
        for table in tables:
            for needle in [*keys, *ids]:
                found = session.execute(
                    text(f'SELECT count(*) FROM "{table}" AS t WHERE t::text LIKE :pattern'),
                    {"pattern": f"%{needle}%"},
                ).scalar_one()
                allowed = table == "audit_log" and needle in ids
                assert found == 0 or allowed, f"{needle} in {found} rows of {table}"


def test_erasure_removes_every_byte_of_the_subject_and_keeps_the_others(
    populated: tuple[Steward, pd.DataFrame], tmp_path: Path
) -> None:
    steward, frame = populated
    second = str(frame["customerID"].iloc[SECOND_ROW])
    expected = _expected(steward, frame, SUBJECT)
    expected_second = _expected(steward, frame, second)
    assert expected["predictions"] == 2 and expected["outcomes"] == 2  # o5 and the review's
    assert expected["shadows"] == expected["other_events"] == 1
    assert expected["reference_rows"] == 2 and expected["export_rows"] == 1  # v1, v2; the export
    predictions_before = steward.events.count("prediction", "churn")
    outcomes_before = steward.events.count("outcome", "churn")

    code, output = _cli(steward, "erase", "--entity", SUBJECT, "--json")
    assert code == 0, output
    receipt = json.loads(output)
    assert receipt["counts"] == expected
    assert receipt["subject_sha256"] == subject_digest(SUBJECT, receipt["salt"])
    code, output = _cli(steward, "erase", "--entity", SUBJECT)  # again: nothing left
    assert code == 0, output
    assert all(f"{place} " in output for place in PLACES) and " 0 removed" in output

    server = Server(steward.settings.workspace, steward.settings.database_url)
    server.start()
    try:
        late = {"id": "late-outcome", "prediction_id": _pid(SECOND_ROW), "value": 1.0}
        logged = httpx.post(f"{server.url}/v1/systems/churn/outcomes", json={"outcomes": [late]})
        assert logged.status_code == 200, logged.text  # in the server's write-ahead segment
        answer = httpx.post(
            f"{server.url}/v1/erasures", json={"entity_key": second, "systems": ["churn"]}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["counts"] == {
            **expected_second,
            "outcomes": expected_second["outcomes"] + 1,
        }
        segments = list(steward.settings.events_dir.rglob("*.wal"))
        assert not any(_pid(SECOND_ROW).encode() in path.read_bytes() for path in segments)
        for body, status in (
            ({"entity_key": "  "}, 422),
            ({"entity_key": SUBJECT, "systems": ["nope"]}, 404),
        ):
            refused = httpx.post(f"{server.url}/v1/erasures", json=body)
            assert refused.status_code == status, refused.text
            assert refused.headers["content-type"].startswith("application/problem+json")
    finally:
        server.stop()
        server.close()

    # Every file under the test's folder: event log (Parquet, indexes, segments), artifacts,
    # retrain exports, the SQLite database and its write-ahead file (vacuumed by the erasure).
    subject_ids = [
        pid.encode() for pid in (_pid(SUBJECT_ROW), _pid(SECOND_ROW), _review_id(SUBJECT))
    ]
    audit_text = _audit_text(steward)
    for path, data in _files(tmp_path):
        for key in (SUBJECT, second):
            assert key.encode() not in data, f"{key} in {path}"
        for pid in subject_ids:
            if path.name.startswith("steward.db"):
                # The review decision's audit entry names its prediction (docs/erasure.md).
                assert data.count(pid) <= audit_text.count(pid.decode()), path
            else:
                assert pid not in data, f"{pid!r} in {path}"
    if steward.store.dialect == "postgresql":  # no file to read: ask every table
        _assert_no_row_names(steward, [SUBJECT, second], [pid.decode() for pid in subject_ids])
    removed_predictions = expected["predictions"] + expected_second["predictions"]
    assert steward.events.count("prediction", "churn") == predictions_before - removed_predictions
    removed_outcomes = expected["outcomes"] + expected_second["outcomes"]
    assert steward.events.count("outcome", "churn") == outcomes_before - removed_outcomes
    with steward.store.read() as session:
        decisions = session.execute(text("SELECT prediction_id FROM review_decisions")).all()
    assert [row[0] for row in decisions] == [_review_id("someone-else")]
    code, output = _cli(steward, "audit", "verify")
    assert code == 0, output


def test_bad_input_is_a_usage_error(workspace: Steward) -> None:
    code, output = _cli(workspace, "erase", "--entity", "")
    assert code == 2 and "entity key '' is empty" in output
    code, output = _cli(workspace, "erase", "--entity", "k", "--system", "nope")
    assert code == 2 and "system 'nope' is not declared" in output


def test_each_receipt_has_its_own_salt(workspace: Steward) -> None:
    first = erase_subject(workspace, "customer-1")
    second = erase_subject(workspace, "customer-1")
    assert first.salt != second.salt and first.subject_sha256 != second.subject_sha256
    assert first.total == second.total == 0


def test_a_live_writers_segment_drops_the_erased_ids_at_its_roll(tmp_path: Path) -> None:
    root = tmp_path / "events"
    with EventLog(root, fsync=False) as eraser, EventLog(root, fsync=False) as replica:
        eraser.append([{"kind": "prediction", "system": "churn", "id": "p1", "entity_key": "k"}])
        eraser.flush()
        replica.append(
            [
                {"kind": "outcome", "system": "churn", "id": "o1", "prediction_id": "p1"},
                {"kind": "outcome", "system": "churn", "id": "o2", "prediction_id": "p2"},
            ]
        )
        assert eraser.prediction_ids("churn", "k") == ["p1"]
        assert eraser.erase_predictions("churn", ["p1"]) == {
            "prediction": 1,
            "shadow": 0,
            "outcome": 0,  # still in the replica's segment
        }
        replica.flush()  # the roll applies the id tombstone
        kept = [
            value
            for path in root.rglob("*.parquet")
            for value in pq.read_table(path, columns=["id"]).column("id").to_pylist()
        ]
        assert sorted(kept) == ["o2"]
        assert not any(b"p1" in path.read_bytes() for path in root.rglob("*.wal"))


def _erase_in_a_process(steward: Steward, crash_at: str | None) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "STEWARD_DATABASE_URL": steward.settings.database_url}
    environment.pop(CRASH_AT_ENV, None)
    if crash_at:
        environment[CRASH_AT_ENV] = crash_at
    command = ["--workspace", str(steward.settings.workspace), "erase", "--entity", SUBJECT]
    return subprocess.run(
        [sys.executable, "-m", "steward", *command, "--json"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.slow
@pytest.mark.parametrize("crash_at", ["erase.after-tombstone@1", "erase.after-tombstone@2"])
def test_a_rerun_finishes_an_erasure_killed_midway(
    populated: tuple[Steward, pd.DataFrame], crash_at: str
) -> None:
    steward, frame = populated
    expected = _expected(steward, frame, SUBJECT)
    killed = _erase_in_a_process(steward, crash_at)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    rerun = _erase_in_a_process(steward, None)
    assert rerun.returncode == 0, rerun.stderr
    counts = json.loads(rerun.stdout)["counts"]
    if crash_at.endswith("@1"):  # killed before any file was rewritten: the rerun does it all
        assert counts == expected
    else:  # killed after the rewrite by id: the rerun finds the review decision by its tombstone
        assert counts["predictions"] == counts["outcomes"] == 0
        assert counts["review_decisions"] == 1 and counts["other_events"] == 1
    root = steward.settings.events_dir
    for kind, column in (("prediction", "entity_key"), ("outcome", "prediction_id")):
        wanted = {SUBJECT} if column == "entity_key" else {_pid(SUBJECT_ROW)}
        assert _rows_of(root, kind, column, wanted) == 0
    with steward.store.read() as session:
        decisions = session.execute(text("SELECT prediction_id FROM review_decisions")).all()
    assert [row[0] for row in decisions] == [_review_id("someone-else")]
    assert steward.verify_audit().ok, steward.verify_audit().message
