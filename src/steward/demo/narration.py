"""What the loop did in a simulated week, read back from the store and told with its figures.

The demo never scripts an event: after each tick it reads the rows the loop wrote (monitor results,
alerts fired and resolved, playbook actions, approvals, alias moves) and narrates those. It also plays
the one person in the story, the head of retention, who approves a promotion once the challenger has
shadowed a week of live traffic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.core import Steward
from steward.data.events import EventLog
from steward.demo.figures import APPROVER, APPROVER_ID, SYSTEM, WeekFigures
from steward.demo.narrator import Narrator
from steward.demo.simulation import Week
from steward.loop import promotion
from steward.model.registry import find_system
from steward.store import ActionRow, AlertRow, AliasMove, ApprovalRow, MonitorResultRow

__all__ = ["Ledger", "approve_after_shadow", "narrate_tick", "shadow_agreement"]

TRACKED: dict[str, Any] = {
    "monitor": MonitorResultRow,
    "alert": AlertRow,
    "action": ActionRow,
    "approval": ApprovalRow,
    "alias": AliasMove,
}


@dataclass
class Ledger:
    """What the narration carries from one tick to the next.

    Where it has read each tracked table up to (``seen``), the alerts still open (rule and week
    fired), the approvals waiting (week requested), and the ROC AUC v1 was registered with.
    """

    steward: Steward
    events: EventLog
    say: Narrator
    registered_auc: float
    seen: dict[str, int] = field(default_factory=dict)
    open_alerts: dict[int, tuple[str, int]] = field(default_factory=dict)
    approval_weeks: dict[int, int] = field(default_factory=dict)


def _new_rows(ledger: Ledger, session: Session, system_id: int) -> dict[str, list[Any]]:
    """Rows of each tracked table written since the last call, oldest first."""
    found: dict[str, list[Any]] = {}
    for name, model in TRACKED.items():
        rows = list(
            session.scalars(
                select(model)
                .where(model.system_id == system_id, model.id > ledger.seen.get(name, 0))
                .order_by(model.id)
            )
        )
        if rows:
            ledger.seen[name] = rows[-1].id
        found[name] = rows
    return found


def narrate_tick(ledger: Ledger, week: Week, figures: WeekFigures) -> bool:
    """Tell what this week's tick did; return whether an alias moved (the server must notice)."""
    with ledger.steward.store.read() as session:
        system_id = find_system(session, SYSTEM).id
        rows = _new_rows(ledger, session, system_id)
        resolved = list(
            session.scalars(
                select(AlertRow).where(
                    AlertRow.id.in_(list(ledger.open_alerts)), AlertRow.state == "resolved"
                )
            )
        )
        _tell_monitors(ledger, week, figures, rows["monitor"])
        _tell_alerts(ledger, week, figures, rows["alert"], resolved)
        for action in rows["action"]:
            figures.actions.append(f"{action.kind}:{action.status}")
            line = f"playbook step '{action.kind}': {action.status}: {action.reason}"
            if action.status == "failed":
                ledger.say.warn(line)
            else:
                ledger.say.say(line)
        for approval in rows["approval"]:
            if approval.state == "pending":
                ledger.approval_weeks[approval.id] = week.number
                ledger.say.say(
                    f"approval #{approval.id} requested ({approval.kind}, risk tier high): "
                    f"{approval.reason or approval.subject}"
                )
        return bool(rows["alias"])


def _tell_monitors(
    ledger: Ledger, week: Week, figures: WeekFigures, results: list[MonitorResultRow]
) -> None:
    latest = {row.monitor: row for row in results}
    if "drift" in latest:
        figures.drift = latest["drift"].status
    if "data_quality" in latest:
        figures.data_quality = latest["data_quality"].status
    performance = latest.get("performance")
    if performance is None or performance.status not in ("ok", "breach"):
        return
    records = [
        record
        for record in performance.details.get("metrics", [])
        if record.get("metric") == "roc_auc" and record.get("status") == "ok"
    ]
    if not records:
        return
    figures.labeled_week = max(week.number - 2, 1)
    worst = min(records, key=lambda record: float(record["upper"]))
    figures.realized_auc = float(worst["value"])
    figures.realized_auc_low = float(worst["lower"])
    figures.realized_auc_high = float(worst["upper"])
    line = (
        f"labels of week {figures.labeled_week} arrived: realized ROC AUC of "
        f"v{int(worst['model_version'])} {worst['value']:.3f} "
        f"(95% CI {worst['lower']:.3f} to {worst['upper']:.3f}, "
        f"{int(worst.get('n_labeled') or 0)} customers; registered {ledger.registered_auc:.3f})"
    )
    if performance.status == "breach":
        ledger.say.warn(line)
    else:
        ledger.say.say(line)


def _tell_alerts(
    ledger: Ledger,
    week: Week,
    figures: WeekFigures,
    fired: list[AlertRow],
    resolved: list[AlertRow],
) -> None:
    for alert in fired:
        ledger.open_alerts[alert.id] = (alert.rule, week.number)
        figures.alerts_fired.append(alert.rule)
        ledger.say.warn(f"alert fired: {alert.rule} ({alert.severity}): {alert.summary}")
    for alert in resolved:
        rule, since = ledger.open_alerts.pop(alert.id)
        ledger.say.say(
            f"alert resolved: {rule}, firing since week {since}, resolved by "
            f"{alert.resolved_by or 'steward'}"
        )


def shadow_agreement(events: EventLog, week: Week) -> dict[str, Any] | None:
    """This week's shadow scores against the champion's: how many, and how the calls would differ."""
    predictions = events.scan("prediction", SYSTEM, start=week.start, end=week.end)
    shadows = events.scan("shadow", SYSTEM, start=week.start, end=week.end)
    if shadows.num_rows == 0:
        return None
    champion = predictions.select(["id", "score", "model_version"]).to_pandas()
    shadow = shadows.select(["id", "score", "model_version"]).to_pandas()
    both = champion.merge(shadow, on="id", suffixes=("_champion", "_shadow"))
    if both.empty:
        return None
    threshold = 0.5
    calls_champion = both["score_champion"] >= threshold
    calls_shadow = both["score_shadow"] >= threshold
    return {
        "n": len(both),
        "champion": int(both["model_version_champion"].iloc[0]),
        "shadow": int(both["model_version_shadow"].iloc[0]),
        "calls_champion": int(calls_champion.sum()),
        "calls_shadow": int(calls_shadow.sum()),
        "agreement": float((calls_champion == calls_shadow).mean()),
        "rank_correlation": float(
            pd.Series(both["score_champion"]).corr(both["score_shadow"], method="spearman")
        ),
    }


def approve_after_shadow(ledger: Ledger, week: Week, figures: WeekFigures) -> bool:
    """Approve each pending promotion that has shadowed at least one week; True if any was."""
    due = [
        approval_id
        for approval_id, requested in ledger.approval_weeks.items()
        if requested < week.number
    ]
    if not due:
        return False
    shadow = shadow_agreement(ledger.events, week)
    if shadow:
        ledger.say.say(
            f"v{shadow['shadow']} shadowed {shadow['n']} customers this week: it would call "
            f"{shadow['calls_shadow']}, v{shadow['champion']} called {shadow['calls_champion']}; "
            f"same decision for {shadow['agreement']:.0%}, rank correlation "
            f"{shadow['rank_correlation']:.2f}"
        )
    for approval_id in due:
        note = "golden set and a week of shadow traffic reviewed"
        if shadow:
            note += f" ({shadow['n']} customers, {shadow['agreement']:.0%} same decision)"
        promotion.approve(ledger.steward, approval_id, actor=APPROVER_ID, note=note)
        del ledger.approval_weeks[approval_id]
        champion = ledger.steward.version(SYSTEM, "champion").version
        figures.actions.append("approve:done")
        ledger.say.say(f"{APPROVER} approves promotion #{approval_id}: v{champion} is champion")
    return True
