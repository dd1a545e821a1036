"""The end of the demo's stories: uplift against the holdout, v2 against v1 on labeled shadow traffic,
a table per week and model cards (``tell_ending``, the churn story's end), then, after the
assistant's story, the audit chain, ``demo-summary.json`` and where to look next (``finish``).
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
from rich.table import Table
from sklearn.metrics import roc_auc_score

from steward.data.events import EventLog
from steward.demo.config import write_card
from steward.demo.figures import SYSTEM, DemoRun, WeekFigures
from steward.demo.narrator import Narrator
from steward.monitoring.metrics import join_outcomes
from steward.monitoring.runner import sync_profiles
from steward.monitoring.uplift import UpliftResult, uplift

__all__ = ["finish", "labeled_predictions", "shadow_comparison", "tell_ending"]


def labeled_predictions(events: EventLog) -> pd.DataFrame:
    """Every logged prediction of the replay joined with its outcome (``labeled`` says which)."""
    predictions = events.scan("prediction", SYSTEM).to_pandas()
    outcomes = events.scan("outcome", SYSTEM).to_pandas()
    return join_outcomes(predictions, outcomes, by="prediction_id")


def shadow_comparison(events: EventLog, joined: pd.DataFrame) -> dict[str, Any] | None:
    """ROC AUC of the champion's and the shadow's scores on the same labeled customers."""
    shadows = events.scan("shadow", SYSTEM).to_pandas()
    if shadows.empty:
        return None
    labeled = joined[joined["labeled"]][["id", "score", "model_version", "outcome_value"]]
    both = labeled.merge(
        shadows[["id", "score", "model_version"]], on="id", suffixes=("_served", "_shadow")
    )
    both = both[both["model_version_served"] != both["model_version_shadow"]]
    if both.empty or both["outcome_value"].nunique() < 2:
        return None
    return {
        "n": len(both),
        "served_version": int(both["model_version_served"].iloc[0]),
        "shadow_version": int(both["model_version_shadow"].iloc[0]),
        "served_auc": float(roc_auc_score(both["outcome_value"], both["score_served"])),
        "shadow_auc": float(roc_auc_score(both["outcome_value"], both["score_shadow"])),
    }


def tell_ending(run: DemoRun, say: Narrator, workspace: Path) -> dict[str, Any]:
    """Tell the end of the churn story of ``run`` and write its model cards; return its figures."""
    steward, events = run.steward, run.events
    _store_profiles(run)
    joined = labeled_predictions(events)
    frame = joined[joined["labeled"]].rename(columns={"outcome_value": "value"})
    result = uplift(frame, action="contact")
    _tell_uplift(say, result)
    comparison = shadow_comparison(events, joined)
    if comparison:
        say.say(
            f"on the {comparison['n']} shadowed customers whose outcomes are in, "
            f"v{comparison['shadow_version']} ranks churners with ROC AUC "
            f"{comparison['shadow_auc']:.3f} against v{comparison['served_version']}'s "
            f"{comparison['served_auc']:.3f}"
        )
    say.console.print(_week_table(run.weeks))
    versions = steward.versions(SYSTEM)
    for version in versions:
        write_card(steward, workspace, version.version)
    return {
        "champion": steward.version(SYSTEM, "champion").version,
        "versions": [version.version for version in versions],
        "uplift": result.to_dict(),
        "shadow_comparison": comparison,
        "weeks": [asdict(week) for week in run.weeks],
    }


def finish(
    run: DemoRun,
    say: Narrator,
    workspace: Path,
    ending: dict[str, Any],
    *,
    seed: int,
    customers_per_week: int,
    elapsed: float,
    assistant: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Check the audit chain and write ``demo-summary.json``: the churn story's ``ending`` (from
    ``tell_ending``) and the ``assistant``'s figures (``steward.demo.assistant``); return it."""
    check = run.steward.verify_audit()
    say.say(
        f"audit log: {check.n_entries} entries, hash chain "
        f"{'intact' if check.ok else 'BROKEN at entry ' + str(check.first_bad_id)}"
    )
    summary = {
        "seed": seed,
        "customers_per_week": customers_per_week,
        "elapsed_seconds": round(elapsed, 1),
        **ending,
        **({"assistant": assistant} if assistant is not None else {}),
        "audit": {"entries": check.n_entries, "ok": check.ok},
    }
    path = workspace / "demo-summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    told = f"{len(ending['versions'])} versions, champion v{ending['champion']}"
    if assistant is not None:
        told += f"; the assistant's prompt in production is v{assistant['production']}"
    say.say(f"story told in {elapsed:.0f} s: {told}; figures in {path.name}, model cards in cards/")
    return summary


def _store_profiles(run: DemoRun) -> None:
    """Store the hourly profiles of every replayed event, for the dashboard's drift overlays.

    A monitor run stores only events received more than 30 s ago (replicas may still be writing
    newer ones) and profiles the rest in memory; a quick replay can finish inside that margin. The
    demo's one in-process server has acknowledged everything, so nothing is in flight: settle 0.
    """
    sync_profiles(run.steward, run.events, SYSTEM, settle=timedelta(0))


def _tell_uplift(say: Narrator, result: UpliftResult) -> None:
    line = result.summary("calling the customers the model flagged", "churn")
    if result.uplift is not None and result.uplift_interval is not None:
        low, high = sorted(-bound * 100 for bound in result.uplift_interval)
        line += (
            f"; about {-result.uplift * 100:.0f} customers kept per 100 calls "
            f"({low:.0f} to {high:.0f})"
        )
    say.say(line)


def _week_table(weeks: list[WeekFigures]) -> Table:
    table = Table(title="the twelve weeks", title_justify="left")
    for name in ("week", "served by", "customers", "new product", "called", "held out"):
        table.add_column(name, justify="right")
    for name in ("flagged", "drift", "realized AUC (week)", "alerts / actions"):
        table.add_column(name, justify="right" if name == "flagged" else "left")
    for week in weeks:
        auc = (
            f"{week.realized_auc:.3f} (w{week.labeled_week})"
            if week.realized_auc is not None
            else "-"
        )
        shadow = " + shadow" if week.shadow_scored else ""
        table.add_row(
            str(week.week),
            f"v{week.champion}{shadow}",
            str(week.customers),
            str(week.new_product),
            str(week.contacted),
            str(week.held_out),
            str(week.flagged),
            week.drift or "-",
            auc,
            ", ".join(week.alerts_fired + week.actions) or "",
        )
    return table
