"""The weekly report: one self-contained HTML file about one system's week, fit to mail.

``weekly_report(steward, events, system, at=...)`` reads the stored monitor results, profiles and
the typed tables (never raw events, except the review queue's count) for the seven days ending at
``at`` and the four weeks before, and ``WeeklyReport.to_html()`` renders it with inline CSS and
inline SVG sparklines: no script, no stylesheet, no font to fetch. It says how the model performed
and what it changed against the weeks before, what drifted, what fired, what was done (actions,
alias moves) and what waits for a person.

>>> week_label(datetime(2026, 3, 9, tzinfo=UTC))
'2026-W10'
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from steward.monitoring.performance import uplift_between
from steward.render import queries
from steward.render.charts import sparkline_svg
from steward.render.templates import environment
from steward.store import ActionRow, AlertRow, AliasMove, MonitorResultRow
from steward.workspace import Workspace

__all__ = [
    "UPLIFT_SPAN",
    "WEEKS_COMPARED",
    "WeekFigures",
    "WeeklyReport",
    "week_label",
    "weekly_report",
]

#: Weeks shown in the comparison table: the report's week and the ones before it.
WEEKS_COMPARED = 5
WEEK = timedelta(days=7)
#: The period the report's uplift claim covers: long enough for late labels and a small holdout.
UPLIFT_SPAN = timedelta(days=90)


def week_label(end: datetime) -> str:
    """The ISO week of the report ending at ``end`` (the week holding its last moment)."""
    year, week, _ = (end - timedelta(microseconds=1)).isocalendar()
    return f"{year}-W{week:02d}"


@dataclass(frozen=True)
class WeekFigures:
    """One week's figures, each None when nothing was measured."""

    start: datetime
    end: datetime
    realized_auc: tuple[float, float | None, float | None] | None = None
    estimated_auc: float | None = None
    uplift: tuple[float, float | None, float | None] | None = None
    predictions: int | None = None
    drift_breaches: int = 0
    alerts_fired: int = 0

    @property
    def label(self) -> str:
        return week_label(self.end)


@dataclass(frozen=True)
class WeeklyReport:
    """What happened to a system over one week, against the weeks before."""

    system: str
    start: datetime
    end: datetime
    weeks: list[WeekFigures]  # oldest first; the last is the report's week
    drifted: list[tuple[str, int]]  # column, windows that alarmed
    alerts: list[AlertRow]
    actions: list[ActionRow]
    moves: list[AliasMove]
    pending_reviews: int | None
    pending_approvals: int
    champion: int | None
    notes: list[str] = field(default_factory=list)
    #: The uplift over every labeled prediction of the ``UPLIFT_SPAN`` ending with the week.
    uplift_text: str = ""

    @property
    def label(self) -> str:
        return week_label(self.end)

    def to_html(self) -> str:
        """The report as one HTML document (inline CSS and SVG, no scripts)."""
        series = {
            "realized ROC AUC": [w.realized_auc[0] if w.realized_auc else None for w in self.weeks],
            "estimated ROC AUC": [w.estimated_auc for w in self.weeks],
            "uplift": [w.uplift[0] if w.uplift else None for w in self.weeks],
            "predictions": [float(w.predictions) if w.predictions else None for w in self.weeks],
        }
        sparks = {name: sparkline_svg(values, title=name) for name, values in series.items()}
        template = environment.get_template("report.html.j2")
        return template.render(report=self, sparks=sparks, generated=datetime.now(UTC))

    def write(self, path: str | Path) -> Path:
        """Write the HTML to ``path`` and return it."""
        target = Path(path)
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def weekly_report(
    steward: Workspace, events: Any, system: str, *, at: datetime | None = None
) -> WeeklyReport:
    """The report for the seven days ending at ``at`` (default now), with four weeks before.

    >>> weekly_report(steward, events, "churn").write("report.html")  # doctest: +SKIP
    """
    end = (at or datetime.now(UTC)).astimezone(UTC)
    start = end - WEEK
    with steward.store.read() as session:
        system_id = queries.system_id_of(session, system)
        weeks = [
            _figures(steward, session, system, system_id, end - WEEK * (k + 1), end - WEEK * k)
            for k in reversed(range(WEEKS_COMPARED))
        ]
        drift = list(session.scalars(queries.results_between(system_id, "drift", start, end)))
        counted: Counter[str] = Counter()
        for row in drift:
            columns = {
                str(r.get("column")) for r in row.details.get("results") or [] if r.get("alarm")
            }
            counted.update(columns)
        alerts = _alerts_of_the_week(session, system_id, start, end)
        actions = sorted(
            queries.recent_actions(session, system_id, limit=200, since=start),
            key=lambda row: row.created_at,
        )
        moves = list(
            session.scalars(
                select(AliasMove)
                .where(AliasMove.system_id == system_id, AliasMove.moved_at >= start)
                .where(AliasMove.moved_at < end)
                .order_by(AliasMove.id)
            )
        )
        approvals = len(queries.pending_approvals(session, system_id))
        champion = next(
            (a.version for a in queries.aliases(session, system_id) if a.name == "champion"), None
        )
    return WeeklyReport(
        system=system,
        start=start,
        end=end,
        weeks=weeks,
        drifted=counted.most_common(),
        alerts=alerts,
        actions=[a for a in actions if a.created_at < end],
        moves=moves,
        pending_reviews=queries.pending_review_count(steward, events, system),
        uplift_text=_uplift_text(steward, events, system, end),
        pending_approvals=approvals,
        champion=champion,
    )


def _uplift_text(steward: Workspace, events: Any, system: str, end: datetime) -> str:
    if events is None:
        return "no event log to measure uplift from"
    found = uplift_between(steward, events, system, end - UPLIFT_SPAN, end)
    return found if isinstance(found, str) else found.summary()


def _alerts_of_the_week(
    session: Session, system_id: int, start: datetime, end: datetime
) -> list[AlertRow]:
    """Alerts that fired during the week, and those that fired before it and were still open at
    its end: an alert firing for three weeks belongs in every one of those weeks' reports."""
    return list(
        session.scalars(
            select(AlertRow)
            .where(AlertRow.system_id == system_id, AlertRow.fired_at < end)
            .where(
                or_(
                    AlertRow.fired_at >= start,
                    AlertRow.resolved_at.is_(None),
                    AlertRow.resolved_at >= end,
                )
            )
            .order_by(AlertRow.fired_at)
        )
    )


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _last(session: Session, system_id: int, monitor: str, start: datetime, end: datetime) -> Any:
    return session.scalars(
        queries.results_between(system_id, monitor, start, end)
        .where(MonitorResultRow.status != "not_enough_data")
        .order_by(None)
        .order_by(MonitorResultRow.window_end.desc(), MonitorResultRow.id.desc())
        .limit(1)
    ).first()


def _figures(
    steward: Workspace,
    session: Session,
    system: str,
    system_id: int,
    start: datetime,
    end: datetime,
) -> WeekFigures:
    """One week: the last stored figure of each monitor in it, volume from the profiles."""
    realized = None
    performance = _last(session, system_id, "performance", start, end)
    if performance is not None:
        records = [
            r for r in performance.details.get("metrics") or [] if r.get("metric") == "roc_auc"
        ]
        records = [r for r in records if _number(r.get("value")) is not None]
        if records:
            best = max(records, key=lambda r: _number(r.get("n_labeled")) or 0.0)
            value = _number(best.get("value"))
            assert value is not None
            realized = (value, _number(best.get("lower")), _number(best.get("upper")))
    estimated = _last(session, system_id, "estimated_performance", start, end)
    estimate = (
        _number((estimated.details.get("estimated_roc_auc") or {}).get("value"))
        if estimated
        else None
    )
    lift = _last(session, system_id, "uplift", start, end)
    uplift = None
    if lift is not None and _number(lift.details.get("uplift")) is not None:
        uplift = (
            float(lift.details["uplift"]),
            _number(lift.details.get("uplift_low")),
            _number(lift.details.get("uplift_high")),
        )
    volume = queries.volume_series(queries.profile_roots(steward), system, start, end)
    drift = list(session.scalars(queries.results_between(system_id, "drift", start, end)))
    fired = session.scalars(
        select(AlertRow.id).where(
            AlertRow.system_id == system_id, AlertRow.fired_at >= start, AlertRow.fired_at < end
        )
    ).all()
    return WeekFigures(
        start=start,
        end=end,
        realized_auc=realized,
        estimated_auc=estimate,
        uplift=uplift,
        predictions=sum(count for _, count in volume) if volume else None,
        drift_breaches=sum(row.status == "breach" for row in drift),
        alerts_fired=len(fired),
    )
