"""What the loop did in a simulated week, read back from the store and told with its figures.

The demo never scripts an event: after each tick it reads the rows the loop wrote (monitor results,
alerts fired and resolved, playbook actions, approvals, alias moves) and narrates those. It also plays
the one person in the story, the head of retention, who approves a promotion once the challenger has
shadowed a week of live traffic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.model.registry import find_system
from steward.store import ActionRow, AlertRow, AliasMove, ApprovalRow, MonitorResultRow

if TYPE_CHECKING:
    from steward.demo.simulation import Week
    from steward.demo.story import Story, WeekFigures

__all__ = ["approve_after_shadow", "narrate_tick", "shadow_agreement"]

SYSTEM = "churn"
TRACKED: dict[str, Any] = {
    "monitor": MonitorResultRow,
    "alert": AlertRow,
    "action": ActionRow,
    "approval": ApprovalRow,
    "alias": AliasMove,
}


def _new_rows(story: Story, session: Session, system_id: int) -> dict[str, list[Any]]:
    """Rows of each tracked table written since the last call, oldest first."""
    found: dict[str, list[Any]] = {}
    for name, model in TRACKED.items():
        rows = list(
            session.scalars(
                select(model)
                .where(model.system_id == system_id, model.id > story.seen.get(name, 0))
                .order_by(model.id)
            )
        )
        if rows:
            story.seen[name] = rows[-1].id
        found[name] = rows
    return found


def narrate_tick(story: Story, week: Week, figures: WeekFigures) -> bool:
    """Tell what this week's tick did; return whether an alias moved (the server must notice)."""
    with story.steward.store.read() as session:
        system_id = find_system(session, SYSTEM).id
        rows = _new_rows(story, session, system_id)
        resolved = list(
            session.scalars(
                select(AlertRow).where(
                    AlertRow.id.in_(list(story.open_alerts)), AlertRow.state == "resolved"
                )
            )
        )
        _tell_monitors(story, week, figures, rows["monitor"])
        _tell_alerts(story, week, figures, rows["alert"], resolved)
        for action in rows["action"]:
            figures.actions.append(f"{action.kind}:{action.status}")
            line = f"playbook step '{action.kind}': {action.status}: {action.reason}"
            if action.status == "failed":
                story.say.warn(line)
            else:
                story.say.say(line)
        for approval in rows["approval"]:
            if approval.state == "pending":
                story.approval_weeks[approval.id] = week.number
                story.say.say(
                    f"approval #{approval.id} requested ({approval.kind}, risk tier high): "
                    f"{approval.reason or approval.subject}"
                )
        return bool(rows["alias"])


def _tell_monitors(
    story: Story, week: Week, figures: WeekFigures, results: list[MonitorResultRow]
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
        f"{int(worst.get('n_labeled') or 0)} customers; registered {story.registered_auc:.3f})"
    )
    if performance.status == "breach":
        story.say.warn(line)
    else:
        story.say.say(line)


def _tell_alerts(
    story: Story,
    week: Week,
    figures: WeekFigures,
    fired: list[AlertRow],
    resolved: list[AlertRow],
) -> None:
    for alert in fired:
        story.open_alerts[alert.id] = (alert.rule, week.number)
        figures.alerts_fired.append(alert.rule)
        story.say.warn(f"alert fired: {alert.rule} ({alert.severity}): {alert.summary}")
    for alert in resolved:
        rule, since = story.open_alerts.pop(alert.id)
        story.say.say(
            f"alert resolved: {rule}, firing since week {since}, resolved by "
            f"{alert.resolved_by or 'steward'}"
        )


def shadow_agreement(story: Story, week: Week) -> dict[str, Any] | None:
    """This week's shadow scores against the champion's: how many, and how the calls would differ."""
    predictions = story.events.scan("prediction", SYSTEM, start=week.start, end=week.end)
    shadows = story.events.scan("shadow", SYSTEM, start=week.start, end=week.end)
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


def approve_after_shadow(story: Story, week: Week, figures: WeekFigures) -> bool:
    """Approve each pending promotion that has shadowed at least one week; True if any was."""
    from steward.demo.story import APPROVER, optional_module

    due = [
        approval_id
        for approval_id, requested in story.approval_weeks.items()
        if requested < week.number
    ]
    if not due:
        return False
    promotion = optional_module("steward.loop.promotion")
    if promotion is None:
        story.say.warn("approvals cannot be decided: steward.promotion is not installed")
        return False
    shadow = shadow_agreement(story, week)
    if shadow:
        story.say.say(
            f"v{shadow['shadow']} shadowed {shadow['n']} customers this week: it would call "
            f"{shadow['calls_shadow']}, v{shadow['champion']} called {shadow['calls_champion']}; "
            f"same decision for {shadow['agreement']:.0%}, rank correlation "
            f"{shadow['rank_correlation']:.2f}"
        )
    for approval_id in due:
        note = "golden set and a week of shadow traffic reviewed"
        if shadow:
            note += f" ({shadow['n']} customers, {shadow['agreement']:.0%} same decision)"
        promotion.approve(story.steward, approval_id, actor=APPROVER, note=note)
        del story.approval_weeks[approval_id]
        champion = story.steward.version(SYSTEM, "champion").version
        figures.actions.append("approve:done")
        story.say.say(f"{APPROVER} approves promotion #{approval_id}: v{champion} is champion")
    return True
