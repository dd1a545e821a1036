"""The real `steward` command on the real stores: the registry's whole workflow, and clean errors."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner, Result

from steward.cli.main import cli
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.governance.cards import CARD_SECTIONS
from steward.model.flavors import save_sklearn

from .conftest import CONFIG
from .test_loop import SLOW, T0, log_slow


class Workspace:
    """Runs the CLI in one workspace against one database."""

    def __init__(self, root: Path, database_url: str) -> None:
        self.root = root
        self.database_url = database_url
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True) -> Result:
        result = self.runner.invoke(
            cli,
            [
                "--workspace",
                str(self.root),
                "--database-url",
                self.database_url,
                "--user",
                "cli-tester",
                *args,
            ],
            catch_exceptions=False,
        )
        if ok:
            assert result.exit_code == 0, result.output
        return result


@pytest.fixture
def ws(tmp_path: Path, database_url: str) -> Workspace:
    workspace = Workspace(tmp_path / "ws", database_url)
    workspace("init")
    (workspace.root / "steward.yaml").write_text(CONFIG)
    workspace("apply")
    return workspace


@pytest.fixture
def model_files(tmp_path: Path, telco: tuple[pd.DataFrame, pd.Series]) -> list[Path]:
    frame, target = telco
    return [
        save_sklearn(train_churn_model(frame, target, C=C), tmp_path / f"m{index}.skops")
        for index, C in enumerate((1.0, 0.1), start=1)
    ]


def test_init_writes_a_commented_config_that_applies(tmp_path: Path, database_url: str) -> None:
    workspace = Workspace(tmp_path / "fresh", database_url)
    assert "created" in workspace("init").output
    assert "# steward.yaml" in (workspace.root / "steward.yaml").read_text()
    assert "created   churn" in workspace("apply").output
    assert "unchanged churn" in workspace("apply").output


def test_apply_reports_changed_fields(ws: Workspace) -> None:
    config = ws.root / "steward.yaml"
    config.write_text(config.read_text().replace("risk_tier: high", "risk_tier: low"))
    assert "changed   churn: risk_tier: 'high' -> 'low'" in ws("apply").output


def test_apply_names_each_card_and_policy_field_it_changed(ws: Workspace) -> None:
    """It said "card/contract/policy changed"; the docs promise each field's old and new value."""
    config = ws.root / "steward.yaml"
    config.write_text(
        config.read_text().replace(
            "caveats: Trained on one fictional telco's customers.", "caveats: Fictional data."
        )
    )
    output = ws("apply").output
    assert "card.caveats: \"Trained on one fictional telco's customers.\" -> 'Fictional data.'" in (
        output
    )
    assert "card/contract/policy changed" not in output


def test_a_champion_registered_without_data_is_warned_about(
    ws: Workspace, model_files: list[Path]
) -> None:
    registered = ws("models", "register", str(model_files[0]), "--system", "churn")
    assert "warning:" in registered.output and "no reference sample" in registered.output
    moved = ws("models", "alias", "churn", "champion", "1")
    assert "warning:" in moved.output and "--data" in moved.output


def test_register_alias_rollback_diff_and_history(
    ws: Workspace, model_files: list[Path], tmp_path: Path, telco
) -> None:
    frame, target = telco
    data = tmp_path / "train.parquet"
    frame.assign(Churn=target).to_parquet(data)
    first = ws(
        "models",
        "register",
        str(model_files[0]),
        "--system",
        "churn",
        "--data",
        str(data),
        "--metric",
        "roc_auc=0.84",
        "--alias",
        "champion",
    )
    assert "registered churn v1 (sklearn" in first.output
    assert "churn champion: – -> v1" in first.output
    ws("models", "register", str(model_files[1]), "--system", "churn", "--metric", "roc_auc=0.83")
    again = ws("models", "register", str(model_files[1]), "--system", "churn")
    assert "already registered: this artifact is churn v2" in again.output

    ws("models", "alias", "churn", "champion", "2", "--reason", "try v2")
    assert "rolled back churn champion: v2 -> v1" in ws("rollback", "churn").output

    history = json.loads(ws("models", "history", "churn", "--format", "json").output)
    assert [(m["action"], m["from_version"], m["to_version"]) for m in history] == [
        ("move", None, 1),
        ("move", 1, 2),
        ("rollback", 2, 1),
    ]
    assert history[1]["reason"] == "try v2" and history[1]["moved_by"] == "cli-tester"

    diff = json.loads(ws("models", "diff", "churn", "1", "2", "--format", "json").output)
    changed = {(row["section"], row["key"]): (row["a"], row["b"]) for row in diff if row["changed"]}
    assert changed[("metrics", "roc_auc")] == (0.84, 0.83)
    assert changed[("params", "logisticregression__C")] == (1.0, 0.1)
    assert "logisticregression__C" in ws("models", "diff", "churn", "1", "2").output

    listed = json.loads(ws("models", "list", "churn", "--format", "json").output)
    assert [(v["version"], v["aliases"]) for v in listed] == [(1, ["champion"]), (2, [])]


class _Sections(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.headings: list[str] = []
        self._in_h2 = False

    def handle_starttag(self, tag: str, attrs: object) -> None:
        self._in_h2 = tag == "h2"

    def handle_data(self, data: str) -> None:
        if self._in_h2:
            self.headings.append(data.strip())
            self._in_h2 = False


def test_card_renders_every_section_with_lineage_and_marks_the_missing(
    ws: Workspace, model_files: list[Path], tmp_path: Path, telco
) -> None:
    frame, target = telco
    data = tmp_path / "train.csv"
    frame.assign(Churn=target).to_csv(data, index=False)
    ws(
        "models",
        "register",
        str(model_files[0]),
        "--system",
        "churn",
        "--data",
        str(data),
        "--metric",
        "roc_auc=0.84",
        "--alias",
        "champion",
    )
    markdown = ws("models", "card", "churn").output
    for section in CARD_SECTIONS:
        assert f"## {section}" in markdown
    assert f"{len(frame)} rows" in markdown and "| tenure | int64 |" in markdown
    assert "| roc_auc | 0.84 |" in markdown
    assert "Tenure, contract type and payment method." in markdown  # from steward.yaml
    assert "Missing: write it under `card:`" in markdown  # e.g. ethical considerations

    card_file = tmp_path / "card.yaml"
    card_file.write_text("ethical_considerations: Calls are offers, never penalties.\n")
    output = tmp_path / "card.html"
    result = ws(
        "models",
        "card",
        "churn",
        "1",
        "--format",
        "html",
        "-o",
        str(output),
        "--card-file",
        str(card_file),
    )
    assert "missing narrative:" in result.output
    html = output.read_text()
    parser = _Sections()
    parser.feed(html)
    assert parser.headings[: len(CARD_SECTIONS)] == list(CARD_SECTIONS)
    assert "Calls are offers, never penalties." in html


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["models", "list", "fraud"], "error: unknown system 'fraud' (known systems: churn)"),
        (["models", "show", "churn", "9"], "error: system 'churn' has no version 9"),
        (["models", "register", "missing.skops", "--system", "churn"], "does not exist"),
        (["models", "register", "x.skops", "--system", "nope"], "unknown system 'nope'"),
        (["models", "register", "model.bin", "--system", "churn"], "cannot tell the flavor"),
        (["rollback", "churn"], "error: cannot roll back 'champion' of 'churn'"),
        (
            ["models", "register", "m.skops", "--system", "churn", "--metric", "auc"],
            "--metric expects NAME=VALUE, got 'auc'",
        ),
    ],
)
def test_user_mistakes_print_one_line_and_exit_1(
    ws: Workspace, args: list[str], message: str
) -> None:
    result = ws(*args, ok=False)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_broken_config_names_line_and_column(ws: Workspace) -> None:
    (ws.root / "steward.yaml").write_text("systems:\n  - name: churn\n    task: binray\n")
    result = ws("apply", ok=False)
    assert result.exit_code == 1
    assert "steward.yaml:3:11: systems[0].task" in result.output


def test_installed_command_exits_1_without_traceback_on_unreachable_database(
    tmp_path: Path,
) -> None:
    environment = {**os.environ, "STEWARD_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/x"}
    completed = subprocess.run(
        [sys.executable, "-m", "steward", "--workspace", str(tmp_path), "models", "list", "churn"],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert completed.returncode == 1
    assert completed.stderr.startswith("error: cannot reach the metadata store")
    assert "Traceback" not in completed.stderr


def test_contract_infer_then_check_flags_a_broken_batch(tmp_path: Path, telco) -> None:
    frame, _ = telco
    data = tmp_path / "train.csv"
    frame.to_csv(data, index=False)
    runner = CliRunner()
    drafted = tmp_path / "contract.yaml"
    result = runner.invoke(
        cli, ["contract", "infer", str(data), "--name", "churn", "-o", str(drafted)]
    )
    assert result.exit_code == 0, result.output
    assert (
        runner.invoke(cli, ["contract", "check", str(data), "--contract", str(drafted)]).exit_code
        == 0
    )
    broken = frame.copy()
    broken.loc[[3, 9], "tenure"] = -1
    broken_file = tmp_path / "broken.csv"
    broken.to_csv(broken_file, index=False)
    result = runner.invoke(
        cli, ["contract", "check", str(broken_file), "--contract", str(drafted), "--format", "json"]
    )
    assert result.exit_code == 1
    report = json.loads(result.output)
    tenure = [v for v in report["violations"] if v["column"] == "tenure"]
    assert [(v["rule"], v["count"], v["first_row"]) for v in tenure] == [("min", 2, 3)]


def _slow_traffic(ws: Workspace) -> None:
    """Declare the latency SLO ``fast`` and log a burst of predictions that break it at T0."""
    config = yaml.safe_load((ws.root / "steward.yaml").read_text())
    config["systems"][0]["slos"] = [SLOW]
    (ws.root / "steward.yaml").write_text(yaml.safe_dump(config))
    ws("apply")
    with EventLog(ws.root / ".steward" / "events", fsync=False) as events:
        log_slow(events, T0)


def test_loop_tick_runs_the_whole_loop_and_exits_1_on_a_breach(ws: Workspace) -> None:
    _slow_traffic(ws)
    first = ws("loop", "tick", "churn", "--at", T0.isoformat(), ok=False)
    assert first.exit_code == 1, first.output
    assert "fired    alert 1 (page) slo:fast" in first.output
    assert "data_quality" in first.output  # the monitors ran too
    later = (T0 + timedelta(minutes=5)).isoformat()
    still = ws("loop", "tick", "--at", later, "--format", "json", ok=False)
    assert still.exit_code == 1
    report = json.loads(still.output[still.output.index("{") :])
    assert report["at"] == later
    [system] = report["systems"]
    assert system["system"] == "churn" and system["monitors_ran"]
    assert {result["monitor"] for result in system["monitor_results"]} >= {"drift", "data_quality"}
    assert [(slo["name"], slo["status"]) for slo in system["slos"]] == [("fast", "alerting")]
    assert system["fired"] == [] and [a["rule"] for a in system["still_firing"]] == ["slo:fast"]
    quiet = ws("loop", "tick", "--at", (T0 + timedelta(hours=7)).isoformat())
    assert "resolved alert 1 slo:fast" in quiet.output
    unknown = ws("loop", "tick", "fraud", ok=False)
    assert unknown.exit_code == 1 and "unknown system 'fraud'" in unknown.output


def test_monitor_run_monitors_only_stores_results_and_runs_nothing_else(ws: Workspace) -> None:
    _slow_traffic(ws)
    at = T0.isoformat()
    only = ws("monitor", "run", "--monitors-only", "--at", at, "--format", "json")
    rows = {row["monitor"]: row for row in json.loads(only.output)}
    assert {"drift", "data_quality"} <= set(rows) and not any(m.startswith("slo:") for m in rows)
    assert rows["data_quality"]["window_end"] == at
    assert json.loads(ws("alerts", "list", "--format", "json").output) == []  # no SLO, no alert
    assert "data_quality" in ws("monitor", "history", "churn").output  # stored
    text = ws(
        "monitor", "run", "--system", "churn", "--monitors-only", "--window", "1d", "--at", at
    )
    assert "2026-03-01 00:00 to 2026-03-02 00:00" in text.output and "fired" not in text.output
    whole = ws("monitor", "run", "--at", at, ok=False)  # still the whole tick in this release
    assert whole.exit_code == 1 and "fired    alert 1 (page) slo:fast" in whole.output


def test_monitor_run_help_says_what_changes_in_the_next_release() -> None:
    result = CliRunner().invoke(cli, ["monitor", "run", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    assert "--monitors-only" in text
    assert (
        "Runs the whole loop for this release, as `steward loop tick` does; from the next "
        "release it runs the monitors only (that is --monitors-only today)"
    ) in text


def test_a_mistyped_workspace_is_refused_instead_of_created(tmp_path: Path) -> None:
    """A typo in --workspace used to create an empty workspace that knew no system."""
    runner = CliRunner()
    result = runner.invoke(cli, ["--workspace", str(tmp_path / "typo"), "models", "list", "churn"])
    assert result.exit_code == 1
    assert "is not a Steward workspace" in result.output and "steward init" in result.output
    assert not (tmp_path / "typo").exists()


def test_serve_on_a_busy_port_says_so_before_claiming_to_serve(tmp_path: Path) -> None:
    """It printed "serving on ..." and only then failed to bind."""
    runner = CliRunner()
    assert runner.invoke(cli, ["--workspace", str(tmp_path), "init"]).exit_code == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runner.invoke(cli, ["--workspace", str(tmp_path), "serve", "--port", str(port)])
    assert result.exit_code == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.output
    assert "serving" not in result.output


def test_contract_infer_leaves_out_the_target_and_the_entity_key(ws: Workspace, telco) -> None:
    """An inferred contract required Churn and customerID, so every prediction was refused."""
    frame, target = telco
    data = ws.root / "train.csv"
    frame.assign(Churn=target.map({1: "Yes", 0: "No"})).to_csv(data, index=False)
    hinted = ws("contract", "infer", str(data))
    assert "looks like a target" in hinted.output and "--target Churn" in hinted.output
    assert "--entity-key customerID" in hinted.output
    drafted = ws("contract", "infer", str(data), "--system", "churn")
    columns = yaml.safe_load(drafted.stdout)["contract"]["columns"]
    assert "Churn" not in columns and "customerID" not in columns and "tenure" in columns
    assert "left out, not inputs: Churn, customerID" in drafted.output
    explicit = ws("contract", "infer", str(data), "--target", "Churn", "--entity-key", "customerID")
    assert yaml.safe_load(explicit.stdout)["contract"]["columns"] == columns


def test_a_version_number_too_large_to_store_is_no_version_not_a_traceback(ws: Workspace) -> None:
    result = ws("models", "show", "churn", "99999999999999999999999", ok=False)
    assert result.exit_code == 1
    assert "has no version 99999999999999999999999" in result.output
    assert "Traceback" not in result.output


def test_the_served_socket_sends_replies_without_delay() -> None:
    """A socket bound by hand lost uvicorn's TCP_NODELAY: Nagle and delayed ACKs cost ~40 ms a reply."""
    from steward.cli.serve import bind_socket

    listening = bind_socket("127.0.0.1", 0)
    try:
        assert listening.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        listening.close()
