"""The overview's traffic lights: one small rule per surface, over facts read from the store.

Each rule takes a ``SystemFacts`` and returns a ``SurfaceState`` (green, amber or red, and one line
saying why). The rules, in order of precedence (the first that matches decides):

- **data**: red when the newest data-quality check breached (its summary); amber when there is none
  yet or it had too little data; green otherwise.
- **model**: red without a champion, or when the newest realized or estimated performance check
  breached; green when either was ok; amber otherwise (no labels yet).
- **delivery**: red without a champion or when a page-severity SLO alert is open; amber while
  automation is suspended; green otherwise (which version serves, since when).
- **monitoring**: red when the newest drift check alarmed ("drift in tenure since Tue 14:00") or any
  alert is firing; amber when no monitor has run or the newest run is older than twice the
  declared ``monitors.every``; green otherwise.
- **governance**: amber when approvals or reviews wait for a person, or the model card lacks its
  intended use; green otherwise.

>>> now = datetime(2026, 3, 3, 12, tzinfo=UTC)
>>> facts = SystemFacts(name="churn", now=now, champion=None)
>>> model_state(facts)
SurfaceState(level='red', reason='no champion: point one with `steward models alias`')
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

__all__ = [
    "LEVELS",
    "SURFACES",
    "MonitorFact",
    "SurfaceState",
    "SystemFacts",
    "data_state",
    "delivery_state",
    "format_moment",
    "governance_state",
    "model_state",
    "monitoring_state",
    "surface_states",
]

LEVELS = ("green", "amber", "red")


@dataclass(frozen=True)
class SurfaceState:
    level: str  # green | amber | red
    reason: str


@dataclass(frozen=True)
class MonitorFact:
    """The newest stored result of one monitor."""

    status: str
    summary: str
    window_start: datetime
    window_end: datetime


@dataclass(frozen=True)
class SystemFacts:
    """What the rules look at, gathered for one system (see ``steward.web.dashboard.routes``)."""

    name: str
    now: datetime
    champion: int | None
    champion_since: datetime | None = None
    latest: dict[str, MonitorFact] = field(default_factory=dict)
    drifted_columns: tuple[str, ...] = ()
    drift_since: datetime | None = None
    open_alerts: tuple[tuple[str, str, str, str], ...] = ()  # rule, severity, state, summary
    suspension: tuple[str, str, datetime] | None = None  # mode, reason, since
    pending_reviews: int | None = None
    pending_approvals: int = 0
    card_missing_use: bool = False
    monitor_every: timedelta = timedelta(hours=1)


def format_moment(moment: datetime | None, now: datetime | None = None) -> str:
    """``Tue 14:00`` within the last six days, ``03 Mar 2026 14:00`` before, in UTC.

    >>> format_moment(datetime(2026, 3, 3, 14, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    'Tue 14:00'
    >>> format_moment(datetime(2026, 1, 3, 14, tzinfo=UTC), datetime(2026, 3, 4, tzinfo=UTC))
    '03 Jan 2026 14:00'
    """
    if moment is None:
        return "never"
    moment = moment.astimezone(UTC)
    now = now or datetime.now(UTC)
    if timedelta(0) <= now - moment < timedelta(days=6):
        return moment.strftime("%a %H:%M")
    return moment.strftime("%d %b %Y %H:%M")


def data_state(facts: SystemFacts) -> SurfaceState:
    """The inputs: contract violations, nulls, volume and lateness (the data-quality monitor)."""
    quality = facts.latest.get("data_quality")
    if quality is None:
        return SurfaceState("amber", "no data-quality check has run yet")
    if quality.status == "breach":
        return SurfaceState("red", quality.summary)
    if quality.status != "ok":
        return SurfaceState("amber", quality.summary or "too little data to judge")
    return SurfaceState("green", quality.summary)


def model_state(facts: SystemFacts) -> SurfaceState:
    """The model's quality: realized performance when labels arrived, else the estimate."""
    if facts.champion is None:
        return SurfaceState("red", "no champion: point one with `steward models alias`")
    checks = [facts.latest.get(name) for name in ("performance", "estimated_performance")]
    for check in checks:
        if check is not None and check.status == "breach":
            return SurfaceState("red", check.summary)
    for check in checks:
        if check is not None and check.status == "ok":
            return SurfaceState("green", check.summary)
    return SurfaceState("amber", f"v{facts.champion} serves; no labelled window to judge it yet")


def delivery_state(facts: SystemFacts) -> SurfaceState:
    """Serving: a champion, no paging SLO alert, automation not suspended."""
    if facts.champion is None:
        return SurfaceState("red", "nothing serves: no version holds the champion alias")
    paging = [a for a in facts.open_alerts if a[0].startswith("slo:") and a[1] == "page"]
    if paging:
        return SurfaceState("red", f"{paging[0][0]}: {paging[0][3]}")
    if facts.suspension is not None:
        mode, reason, since = facts.suspension
        why = f": {reason}" if reason else ""
        return SurfaceState(
            "amber", f"automation suspended ({mode}) since {format_moment(since, facts.now)}{why}"
        )
    held = (
        f" since {format_moment(facts.champion_since, facts.now)}" if facts.champion_since else ""
    )
    return SurfaceState("green", f"v{facts.champion} serves as champion{held}")


def monitoring_state(facts: SystemFacts) -> SurfaceState:
    """Drift and alerts: what the monitors say now, and whether they still run."""
    drift = facts.latest.get("drift")
    if drift is not None and drift.status == "breach":
        columns = ", ".join(facts.drifted_columns[:3]) or "inputs"
        more = (
            f" and {len(facts.drifted_columns) - 3} more" if len(facts.drifted_columns) > 3 else ""
        )
        since = format_moment(facts.drift_since or drift.window_start, facts.now)
        return SurfaceState("red", f"drift in {columns}{more} since {since}")
    firing = [alert for alert in facts.open_alerts if alert[2] == "firing"]
    if firing:
        return SurfaceState("red", f"{len(firing)} alert(s) firing: {firing[0][0]}: {firing[0][3]}")
    if drift is not None and drift.status == "not_enough_data" and "no reference" in drift.summary:
        # Never green: without a reference sample nothing watches the inputs.
        return SurfaceState("amber", "no reference: drift is not monitored; " + drift.summary)
    monitors = list(facts.latest.values())
    if not monitors:
        return SurfaceState("amber", "no monitor has run yet: `steward loop tick`")
    newest = max(fact.window_end for fact in monitors)
    if facts.now - newest > 2 * facts.monitor_every:
        return SurfaceState("amber", f"no monitor run since {format_moment(newest, facts.now)}")
    return SurfaceState(
        "green", f"monitors ok, last window ended {format_moment(newest, facts.now)}"
    )


def governance_state(facts: SystemFacts) -> SurfaceState:
    """People in the loop: pending approvals and reviews, and a card that says what the model is for."""
    waiting = []
    if facts.pending_reviews:
        waiting.append(f"{facts.pending_reviews} review{'s' if facts.pending_reviews > 1 else ''}")
    if facts.pending_approvals:
        count = facts.pending_approvals
        waiting.append(f"{count} approval{'s' if count > 1 else ''}")
    if waiting:
        return SurfaceState("amber", " and ".join(waiting) + " pending")
    if facts.card_missing_use:
        return SurfaceState("amber", "the model card has no intended use; write it in steward.yaml")
    return SurfaceState("green", "nothing waits for a person")


SURFACES = {
    "data": data_state,
    "model": model_state,
    "delivery": delivery_state,
    "monitoring": monitoring_state,
    "governance": governance_state,
}


def surface_states(facts: SystemFacts) -> dict[str, SurfaceState]:
    """Every surface's state, in display order."""
    return {name: rule(facts) for name, rule in SURFACES.items()}


def slo_state(status: str, budget_remaining: float | None) -> str:
    """What the SLO table says of an SLO: alerting, its budget spent, or ok.

    >>> slo_state("ok", -2.0), slo_state("breach", 0.4), slo_state("ok", 0.4)
    ('budget spent', 'alerting', 'ok')
    """
    if status == "breach":
        return "alerting"
    if budget_remaining is not None and budget_remaining <= 0:
        return "budget spent"
    return status


def format_budget(budget_remaining: float | None) -> str:
    """Budget left as a share in 0-100%, or how many times over it was spent.

    >>> format_budget(0.42), format_budget(-2.0), format_budget(None)
    ('42% left', 'spent 3.0× over', '–')
    """
    if budget_remaining is None:
        return "–"
    if budget_remaining < 0:
        return f"spent {1 - budget_remaining:.1f}× over"
    return f"{budget_remaining:.0%} left"
