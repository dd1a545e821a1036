"""The demo's second story, the support assistant, read back from what Steward stored.

The whole demo runs once through the CLI (seed 0, SQLite), after which its ``demo-summary.json`` is
held to the stored data; the assistant's story then runs alone on a fresh workspace with seed 1:
the same story, other figures. Every figure is recomputed here with the test's own arithmetic,
from the event log (``llm_call`` events), monitor results, SLO evaluations, alerts, playbook
actions, the prompt label history and the stored eval runs, with the prices, threshold and
objective read from the workspace's steward.yaml.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from click.testing import CliRunner
from rich.console import Console
from sqlalchemy import select

from steward import Steward
from steward.cli.main import cli
from steward.demo import Narrator, prepare_workspace
from steward.demo.assistant import tell_assistant
from steward.errors import InvalidInputError
from steward.llm import eval_runs, prompts
from steward.model.registry import find_system
from steward.store import ActionRow, AlertRow, MonitorResultRow, SLOEvaluationRow

SYSTEM, PROMPT = "assistant", "answer"
_SUMMARIES: dict[int, dict[str, Any]] = {}  # seed -> the assistant's figures, shared between tests


def _week_of(weeks: list[dict[str, Any]], moment: datetime) -> int:
    """The simulated week ``moment`` falls in, ``(start, end]`` as the loop's ticks count them."""
    for week in weeks:
        if datetime.fromisoformat(week["start"]) < moment <= datetime.fromisoformat(week["end"]):
            return int(week["week"])
    raise AssertionError(f"{moment} is outside the simulated weeks")


def _ticked_in(weeks: list[dict[str, Any]], moment: datetime) -> int:
    """The week whose end-of-week tick wrote at ``moment``: the clock runs on during a tick."""
    for week in weeks:
        end = datetime.fromisoformat(week["end"])
        if end <= moment < end + timedelta(minutes=10):
            return int(week["week"])
    raise AssertionError(f"{moment} is not at the end of a simulated week")


def _declared(workspace: Path) -> dict[str, Any]:
    config = yaml.safe_load((workspace / "steward.yaml").read_text())
    found: dict[str, Any] = next(s for s in config["systems"] if s["name"] == SYSTEM)
    return found


def _calls(steward: Steward, weeks: list[dict[str, Any]]) -> pd.DataFrame:
    """Every logged call, with the simulated week of its event time."""
    calls = steward.events.scan("llm_call", SYSTEM).to_pandas()
    times = pd.to_datetime(calls["event_time"], utc=True)
    calls["week"] = 0
    for week in weeks:
        inside = (times >= pd.Timestamp(week["start"])) & (times < pd.Timestamp(week["end"]))
        calls.loc[inside, "week"] = int(week["week"])
    calls["words"] = calls["output_text"].str.split().str.len()
    return calls


def check_assistant(steward: Steward, workspace: Path, summary: dict[str, Any]) -> None:
    """Each step of the assistant's story happened, and the summary's figures are the data's."""
    weeks = summary["weeks"]
    calls = _calls(steward, weeks)
    declared = _declared(workspace)
    change = _check_labels_and_serving(steward, calls, weeks, summary)
    _check_prices(calls, declared)
    _check_lengths_and_costs(calls, change, summary)
    _check_monitor(steward, calls, weeks, change, summary)
    _check_slo(steward, calls, weeks, change, declared, summary)
    _check_alerts_and_rollback(steward, weeks, change, summary)
    _check_eval_runs(steward, workspace / declared["prompts"][0]["evals"], calls, change, summary)


def _check_labels_and_serving(
    steward: Steward, calls: pd.DataFrame, weeks: list[dict[str, Any]], summary: dict[str, Any]
) -> int:
    """Production moved v1, then v2 (each citing a passed run), then back to v1 by the playbook;
    each week's calls were answered by the version production pointed at when the week began.
    Returns the week v2 served."""
    history = prompts.label_history(steward.store, SYSTEM, PROMPT, "production")
    assert [(c.action, c.from_version, c.to_version) for c in history] == [
        ("move", None, 1),
        ("move", 1, 2),
        ("rollback", 2, 1),
    ]
    assert [c.moved_by for c in history[:2]] == ["ci", "ci"] and history[2].moved_by == "steward"
    assert all(c.eval_run_id is not None for c in history[:2]) and history[2].eval_run_id is None
    v1, v2 = (prompts.get_prompt(steward.store, SYSTEM, PROMPT, n).parsed for n in (1, 2))
    assert "briefly" in v1.chat[0].content and "thorough" in v2.chat[0].content
    assert v1.model != v2.model  # the fake's per-model verbosity knob answers v2 at length
    times = pd.to_datetime(calls["event_time"], utc=True)
    held = [
        [change.to_version for change in history if change.moved_at <= moment][-1]
        for moment in times.dt.to_pydatetime()
    ]
    assert calls["prompt_version"].tolist() == held
    for week in weeks:
        served = calls[calls["week"] == week["week"]]["prompt_version"]
        assert week["served_by"] == served.mode().iloc[0], week["week"]
    assert summary["production"] == history[-1].to_version == 1
    assert summary["versions"] == [1, 2]
    (changed,) = {int(w) for w in calls[calls["prompt_version"] == 2]["week"]}
    assert _ticked_in(weeks, history[2].moved_at) == changed == summary["change_week"]
    return changed


def _check_prices(calls: pd.DataFrame, declared: dict[str, Any]) -> None:
    """Each call's stored cost is its tokens at the steward.yaml prices of its model."""
    for model, entries in declared["prices"].items():
        rate = entries[-1]
        mine = calls[calls["request_model"] == model]
        expected = [
            float(
                (
                    Decimal(int(i)) * Decimal(str(rate["input"]))
                    + Decimal(int(o)) * Decimal(str(rate["output"]))
                )
                / Decimal(1_000_000)
            )
            for i, o in zip(mine["input_tokens"], mine["output_tokens"], strict=True)
        ]
        assert mine["cost"].tolist() == pytest.approx(expected, abs=1e-9)
    assert calls["priced"].all()


def _check_lengths_and_costs(calls: pd.DataFrame, change: int, summary: dict[str, Any]) -> None:
    """v2's answers were about 60% longer and dearer than v1's; the summary says the same."""
    before = calls[calls["week"] < change]
    during = calls[calls["week"] == change]
    after = calls[calls["week"] > change]
    for name, part in (("before", before), ("during", during), ("after", after)):
        assert summary[name]["calls"] == len(part) > 0
        assert summary[name]["mean_output_tokens"] == pytest.approx(part["output_tokens"].mean())
        assert summary[name]["cost_per_call"] == pytest.approx(part["cost"].mean())
    longer = during["output_tokens"].mean() / before["output_tokens"].mean()
    dearer = during["cost"].mean() / before["cost"].mean()
    assert 1.4 < longer < 1.8 and 1.4 < dearer < 1.8
    assert summary["length_ratio"] == pytest.approx(longer)
    assert summary["cost_ratio"] == pytest.approx(dearer)
    assert after["output_tokens"].mean() == pytest.approx(before["output_tokens"].mean(), rel=0.05)
    for week in summary["weeks"]:
        mine = calls[calls["week"] == week["week"]]
        assert week["calls"] == len(mine) == summary["calls_per_week"]
        assert week["mean_output_tokens"] == pytest.approx(mine["output_tokens"].mean())


def _results(steward: Steward, model: Any, **where: Any) -> list[Any]:
    with steward.store.read() as session:
        system_id = find_system(session, SYSTEM).id
        query = select(model).where(model.system_id == system_id)
        for name, value in where.items():
            query = query.where(getattr(model, name) == value)
        return list(session.scalars(query.order_by(model.id)))


def _check_monitor(
    steward: Steward,
    calls: pd.DataFrame,
    weeks: list[dict[str, Any]],
    change: int,
    summary: dict[str, Any],
) -> None:
    """The output monitor ran each week from week 3; answer length and cost alarmed in the week v2
    served and in no other (another descriptor may alarm falsely, at the rate the monitor's docs
    give, and the story tells it); the means it compared are the baseline's (weeks 1 and 2) and
    that week's, recomputed from the calls."""
    results = _results(steward, MonitorResultRow, monitor="llm_outputs")
    assert sorted(_week_of(weeks, row.window_end) for row in results) == [
        week["week"] for week in weeks[2:]
    ]
    moved = {
        _week_of(weeks, row.window_end)
        for row in results
        if {"output_tokens", "cost"} & set(row.details.get("alarmed_descriptors") or [])
    }
    assert moved == {change}
    breach = next(row for row in results if _week_of(weeks, row.window_end) == change)
    assert breach.status == "breach"
    assert {"output_tokens", "cost"} <= set(breach.details["alarmed_descriptors"])
    assert "refused" not in breach.details["alarmed_descriptors"]  # the same refusal rate
    tokens = breach.details["descriptors"]["output_tokens"]
    baseline = calls[calls["week"].isin([1, 2])]["output_tokens"].mean()
    assert tokens["reference"] == pytest.approx(baseline)
    assert tokens["current"] == pytest.approx(
        calls[calls["week"] == change]["output_tokens"].mean()
    )
    told = {alarm["week"]: alarm for alarm in summary["alarms"]}
    breaches = {_week_of(weeks, row.window_end): row for row in results if row.status == "breach"}
    assert set(told) == set(breaches)
    assert told[change]["monitor_result_id"] == breach.id
    assert told[change]["means"]["output_tokens"] == pytest.approx(
        [tokens["reference"], tokens["current"]]
    )


def _check_slo(
    steward: Steward,
    calls: pd.DataFrame,
    weeks: list[dict[str, Any]],
    change: int,
    declared: dict[str, Any],
    summary: dict[str, Any],
) -> None:
    """The cost SLO burned in the week v2 served: its burn rates are the share of calls above the
    threshold over the last 7 days and the last day, divided by the error budget."""
    (slo,) = declared["slos"]
    assert slo["indicator"] == "cost" and slo["threshold"] > 0
    evaluations = {
        _week_of(weeks, row.window_end): row
        for row in _results(steward, SLOEvaluationRow, name=slo["name"])
    }
    burning = [week for week, row in evaluations.items() if row.status == "breach"]
    assert burning == [change]
    end = datetime.fromisoformat(weeks[change - 1]["end"])
    times = pd.to_datetime(calls["event_time"], utc=True)
    budget = 1 - slo["objective"]
    for label, span in (("7d", timedelta(days=7)), ("1d", timedelta(days=1))):
        inside = calls[(times >= pd.Timestamp(end - span)) & (times < pd.Timestamp(end))]
        burn = (inside["cost"] > slo["threshold"]).mean() / budget
        assert evaluations[change].burn_rates[label] == pytest.approx(burn)
        assert burn >= slo["alerts"][0]["burn_rate"]
    assert summary["slo"]["burn_rates"] == pytest.approx(dict(evaluations[change].burn_rates))
    assert evaluations[change + 1].status == "ok"


def _check_alerts_and_rollback(
    steward: Steward, weeks: list[dict[str, Any]], change: int, summary: dict[str, Any]
) -> None:
    """The cost SLO's alert and the output monitor's fired at the end of v2's week and resolved a
    week later; the SLO's playbook rolled production back from v2 to v1; nothing is left firing."""
    alerts = _results(steward, AlertRow)
    first = {rule: next(a for a in alerts if a.rule == rule) for rule in {a.rule for a in alerts}}
    assert sorted(first) == ["monitor:llm_outputs", "slo:answer-cost"]
    assert {_week_of(weeks, alert.fired_at) for alert in first.values()} == {change}
    assert all(alert.resolved_at is not None for alert in alerts)
    assert {_week_of(weeks, alert.resolved_at) for alert in first.values()} == {change + 1}
    assert [a.rule for a in alerts].count("slo:answer-cost") == 1  # v1 never costs that much
    (rollback,) = _results(steward, ActionRow, kind="rollback_prompt")
    assert (rollback.status, rollback.alert_id) == ("done", first["slo:answer-cost"].id)
    assert (rollback.details["from"], rollback.details["to"]) == (2, 1)
    moved = summary["rollback"]
    assert (moved["from"], moved["to"], moved["action_id"]) == (2, 1, rollback.id)
    assert moved["week"] == change and moved["moved_by"] == "steward"


def _check_eval_runs(
    steward: Steward, eval_file: Path, calls: pd.DataFrame, change: int, summary: dict[str, Any]
) -> None:
    """v1 and v2 passed the first eval set; the case added after the incident (a week-5 question
    v2 answered at length, no longer than v1's longest answer) fails v2 and passes v1."""
    runs = sorted(eval_runs.list_runs(steward.store, SYSTEM, PROMPT), key=lambda run: run.id)
    assert [(r.version, r.baseline_version, r.decision) for r in runs] == [
        (1, None, "pass"),
        (2, 1, "pass"),
        (2, 1, "fail"),
    ]
    assert runs[0].eval_set_sha256 == runs[1].eval_set_sha256 != runs[2].eval_set_sha256
    assert runs[2].eval_set_sha256 == hashlib.sha256(eval_file.read_bytes()).hexdigest()
    assert [run["id"] for run in summary["eval_runs"]] == [run.id for run in runs]
    assert [run["exit_code"] for run in summary["eval_runs"]] == [0, 0, 1]
    result = eval_runs.get_run(steward.store, runs[2].id).result
    added = [case for case in result["candidate"]["cases"] if case["critical"]]
    assert len(added) == 1 and not added[0]["passed"]
    (case,) = [
        case for case in yaml.safe_load(eval_file.read_text())["cases"] if case.get("critical")
    ]
    assert case["id"] == added[0]["case_id"]
    (limit,) = [a["value"]["max"] for a in case["assert"] if a["type"] == "word-count"]
    v1_longest = calls[(calls["prompt_version"] == 1) & (calls["week"] < change)]["words"].max()
    assert limit == v1_longest
    answered = calls[
        (calls["week"] == change) & (calls["input_text"] == added[0]["vars"]["question"])
    ]
    assert (
        not answered.empty
        and answered["words"].max() == calls[calls["week"] == change]["words"].max()
    )
    # The fake is deterministic: the gate got the answer production got, too long by the count here.
    assert added[0]["output"] in answered["output_text"].tolist()
    assert len(added[0]["output"].split()) > limit
    baseline = next(c for c in result["baseline"]["cases"] if c["case_id"] == added[0]["case_id"])
    assert baseline["passed"] and len(baseline["output"].split()) <= limit
    assert summary["added_case"]["max_words"] == limit
    assert any("critical" in reason for reason in runs[2].summary["gate"]["reasons"])


def test_the_demo_tells_the_assistants_story_after_the_churn_story(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    database_url = f"sqlite:///{tmp_path / 'steward.db'}"
    arguments = ["--workspace", str(workspace), "--database-url", database_url, "demo"]
    result = CliRunner().invoke(
        cli, [*arguments, "--no-serve", "--seed", "0"], catch_exceptions=False
    )
    assert result.exit_code == 0, result.output
    output = result.output
    order = ["product launch", "meanwhile, at the support desk", "prompt change", "audit log:"]
    assert [output.index(line) for line in order] == sorted(output.index(line) for line in order)
    for line in ("alert fired: monitor:llm_outputs", "alert fired: slo:answer-cost", "exits 1"):
        assert line in output
    assert "[steward] assistant:" not in output  # told once, by the story
    summary = json.loads((workspace / "demo-summary.json").read_text())
    assert summary["champion"] == 2 and summary["audit"]["ok"]  # the churn story, still there
    _SUMMARIES[0] = summary["assistant"]
    steward = Steward.open(workspace, database_url=database_url)
    try:
        check_assistant(steward, workspace, summary["assistant"])
        assert steward.verify_audit().ok
    finally:
        steward.close()


def _tell_alone(root: Path, seed: int) -> tuple[Steward, dict[str, Any], str]:
    prepare_workspace(root)
    steward = Steward.open(root, database_url=f"sqlite:///{root / 'steward.db'}", loop_interval=0)
    steward.init()
    steward.apply()
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    console = Console(file=io.StringIO(), width=200)
    summary = tell_assistant(
        steward, steward.events, Narrator(console), end - timedelta(weeks=12), seed=seed
    )
    return steward, summary, console.file.getvalue()  # type: ignore[attr-defined]


def test_the_assistants_story_alone_with_another_seed_gives_other_figures(tmp_path: Path) -> None:
    steward, summary, output = _tell_alone(tmp_path / "alone", seed=1)
    try:
        check_assistant(steward, tmp_path / "alone", summary)
    finally:
        steward.close()
    assert "re-running the gate on v2: gate failed" in output
    if 0 not in _SUMMARIES:
        other, _SUMMARIES[0], _ = _tell_alone(tmp_path / "seed-0", seed=0)
        other.close()
    first = _SUMMARIES[0]
    story = ("versions", "production", "change_week")
    assert {key: first[key] for key in story} == {key: summary[key] for key in story}
    assert [run["decision"] for run in first["eval_runs"]] == ["pass", "pass", "fail"]
    assert first["before"]["mean_output_tokens"] != summary["before"]["mean_output_tokens"]
    assert first["during"]["cost_per_call"] != summary["during"]["cost_per_call"]


def test_the_assistants_story_refuses_what_cannot_tell_it(tmp_path: Path) -> None:
    prepare_workspace(tmp_path)
    steward = Steward.open(tmp_path, database_url=f"sqlite:///{tmp_path / 'steward.db'}")
    try:
        start = datetime(2026, 1, 5, tzinfo=UTC)
        say = Narrator(Console(file=io.StringIO()))
        with pytest.raises(InvalidInputError, match="at least 6 weeks"):
            tell_assistant(steward, steward.events, say, start, seed=0, weeks=5)
        with pytest.raises(InvalidInputError, match="at least 100 calls a week, got 50"):
            tell_assistant(steward, steward.events, say, start, seed=0, calls_per_week=50)
    finally:
        steward.close()
