"""Retraining runs the user's real command on the exported window and registers what it wrote."""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from steward import Steward
from steward.data.events import EventLog
from steward.errors import ConfigError
from steward.loop import playbooks, retrain
from steward.store import utcnow

from .conftest import CONFIG
from .test_playbooks import fire_alert

TRAIN_SCRIPT = """\
import argparse

import pandas as pd
import skops.io

from steward.demo import train_churn_model

parser = argparse.ArgumentParser()
parser.add_argument("--data", required=True)
parser.add_argument("--output", required=True)
arguments = parser.parse_args()
frame = pd.read_parquet(arguments.data)
target = frame.pop("Churn")
model = train_churn_model(frame, target, C=0.5)
skops.io.dump(model, arguments.output)
print(f"trained on {len(frame)} rows, {int(target.sum())} churned")
"""

FAILING_SCRIPT = """\
import sys
print("starting")
sys.stderr.write("reading the data\\nKeyError: 'Churn'\\n")
sys.exit(3)
"""

SLEEPING_SCRIPT = "import time\ntime.sleep(60)\n"
SILENT_SCRIPT = "print('all good, but I forgot to save')\n"


def command_for(tmp_path: Path, source: str) -> str:
    script = tmp_path / "train.py"
    script.write_text(source)
    return (
        f"{shlex.quote(sys.executable)} {shlex.quote(str(script))} "
        "--data {data} --output {output}"
    )


def configure(steward: Steward, retrain_config: dict[str, Any], **system: Any) -> None:
    config = yaml.safe_load(CONFIG)
    config["systems"][0].update(retrain=retrain_config, **system)
    steward.settings.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    steward.apply()


def log_traffic(
    events: EventLog, frame: pd.DataFrame, target: pd.Series, n: int, labeled: int
) -> None:
    """``n`` predictions of the last two days, ``labeled`` of them with their outcome."""
    records = json.loads(frame.iloc[:n].to_json(orient="records"))
    when = datetime.now(UTC) - timedelta(days=2)
    events.append(
        [
            {"kind": "prediction", "system": "churn", "id": f"p{i}", "event_time": when,
             "entity_key": record["customerID"], "model_version": 1, "inputs": record,
             "score": 0.5}
            for i, record in enumerate(records)
        ]
        + [
            {"kind": "outcome", "system": "churn", "id": f"o{i}", "prediction_id": f"p{i}",
             "event_time": when + timedelta(hours=3), "value": float(target.iloc[i])}
            for i in range(labeled)
        ]
    )  # fmt: skip


@pytest.fixture
def served(
    workspace: Steward,
    tmp_path: Path,
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: object,
) -> Iterator[EventLog]:
    """A champion v1 and 300 labeled predictions in a real event log."""
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    events = EventLog(tmp_path / "events", fsync=False)
    log_traffic(events, *telco, n=320, labeled=300)
    yield events
    events.close()


def test_export_holds_the_inputs_and_the_outcome_as_target(
    workspace: Steward, served: EventLog, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, target = telco
    end = utcnow()
    export = retrain.export_training_data(
        workspace, served, "churn", start=end - timedelta(days=28), end=end
    )
    assert len(export) == 300  # the 20 predictions without an outcome stay out
    assert set(export.columns) == set(frame.columns) | {"Churn"}
    by_customer = export.set_index("customerID")["Churn"]
    expected = pd.Series(target.iloc[:300].to_numpy(), index=frame["customerID"].iloc[:300])
    assert (by_customer.loc[expected.index] == expected).all()
    assert export["Churn"].dtype == "int64"


def test_retrain_registers_the_model_and_points_challenger_and_shadow(
    workspace: Steward, served: EventLog, tmp_path: Path
) -> None:
    configure(workspace, {"command": command_for(tmp_path, TRAIN_SCRIPT), "timeout_seconds": 120})
    action = playbooks.run_step(workspace, served, "churn", "retrain")
    assert action.status == "done", action.reason
    assert action.details["exit_code"] == 0
    assert "trained on 300 rows" in action.details["stdout"]
    version = workspace.version("churn", "challenger")
    assert version.version == 2 == action.details["version"]
    assert workspace.version("churn", "shadow").version == 2
    assert workspace.version("churn", "champion").version == 1
    assert version.data["n_rows"] == 300
    assert version.data["source"] == action.details["export"]
    assert pd.read_parquet(action.details["export"]).shape[0] == 300
    assert "registered v2" in action.reason
    # The new version scores like any other.
    scored = workspace.load_model("churn", 2).predict(
        pd.read_parquet(action.details["export"]).drop(columns=["Churn"]), "binary"
    )
    assert len(scored) == 300 and ((scored >= 0) & (scored <= 1)).all()


def test_a_failing_command_is_failed_with_its_exit_code_and_stderr_and_never_promoted(
    workspace: Steward, served: EventLog, tmp_path: Path
) -> None:
    configure(
        workspace,
        {"command": command_for(tmp_path, FAILING_SCRIPT)},
        risk_tier="low",
        playbooks=[{"when": "monitor:*", "do": ["retrain", "promote_if_better"]}],
    )
    actions = playbooks.respond(workspace, served, fire_alert(workspace, "monitor:performance"))
    retrained, promoted = actions
    assert (retrained.kind, retrained.status) == ("retrain", "failed")
    assert "exited with code 3" in retrained.reason and "KeyError: 'Churn'" in retrained.reason
    assert retrained.details["stdout"].strip() == "starting"
    assert (promoted.kind, promoted.status) == ("promote_if_better", "skipped")
    assert "retrain step before it failed" in promoted.reason
    assert workspace.version("churn", "champion").version == 1


def test_a_command_that_runs_too_long_is_killed(
    workspace: Steward, served: EventLog, tmp_path: Path
) -> None:
    configure(workspace, {"command": command_for(tmp_path, SLEEPING_SCRIPT), "timeout_seconds": 1})
    started = time.monotonic()
    action = playbooks.run_step(workspace, served, "churn", "retrain")
    assert time.monotonic() - started < 30
    assert action.status == "failed" and action.details["timed_out"] is True
    assert "timed out after 1 s" in action.reason


def test_a_command_that_writes_nothing_is_failed(
    workspace: Steward, served: EventLog, tmp_path: Path
) -> None:
    configure(workspace, {"command": command_for(tmp_path, SILENT_SCRIPT)})
    action = playbooks.run_step(workspace, served, "churn", "retrain")
    assert action.status == "failed" and "wrote nothing" in action.reason
    assert [version.version for version in workspace.versions("churn")] == [1]


def test_a_command_that_cannot_start_is_failed(
    workspace: Steward, served: EventLog, tmp_path: Path
) -> None:
    configure(workspace, {"command": str(tmp_path / "no-such-trainer") + " {data} {output}"})
    action = playbooks.run_step(workspace, served, "churn", "retrain")
    assert action.status == "failed" and "could not start" in action.reason


def test_too_few_labeled_predictions_skip_the_retrain(
    workspace: Steward, tmp_path: Path, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    configure(workspace, {"command": command_for(tmp_path, TRAIN_SCRIPT)})
    with EventLog(tmp_path / "thin", fsync=False) as events:
        log_traffic(events, *telco, n=40, labeled=5)
        action = playbooks.run_step(workspace, events, "churn", "retrain")
    assert action.status == "skipped" and "only 5 predictions with outcomes" in action.reason


def test_a_system_without_retrain_config_is_told_what_to_declare(
    workspace: Steward, served: EventLog
) -> None:
    with pytest.raises(ConfigError, match="no retrain: section"):
        retrain.run_retrain(workspace, served, "churn")
    action = playbooks.run_step(workspace, served, "churn", "retrain")
    assert action.status == "failed" and "no retrain: section" in action.reason
