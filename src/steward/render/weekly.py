"""The weekly report: one self-contained HTML file about one system's week, fit to mail.

``weekly_report(steward, events, system, at=...)`` reads the stored monitor results, profiles and
the typed tables (never raw events, except the review queue's count) for the seven days ending at
``at`` and the four weeks before, and ``WeeklyReport.to_html()`` renders it with inline CSS and
inline SVG sparklines: no script, no stylesheet, no font to fetch. It says how the model performed
and what it changed against the weeks before, what drifted, what fired, what was done (actions,
alias moves) and what waits for a person.

For an ``llm`` system (``task: llm``) the report shows its calls instead (``LlmSection``): for the
week and the week before, the calls, the cost of the priced calls with the unpriced calls counted
apart (never as $0), the cost per priced call, the p95 latency and the error rate; the cost per
day as an inline SVG chart; the cost per call by prompt version and model
(``steward.llm.usage.summarize`` over the week's ``llm_call`` events); the prompt label moves and
the eval runs of the week; and the week's ``llm_outputs`` monitor results. The sections that only
make sense for classic ML (ROC AUC, uplift, input drift, the review queue) are skipped in one line.

>>> week_label(datetime(2026, 3, 9, tzinfo=UTC))
'2026-W10'
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from steward.llm.eval_runs import EvalRun, list_runs
from steward.llm.prompts import LabelChange, label_history, list_prompts
from steward.llm.usage import UsageRow, summarize
from steward.monitoring.performance import uplift_between
from steward.render import queries
from steward.render.charts import Series, line_chart_svg, sparkline_svg
from steward.render.templates import environment
from steward.store import ActionRow, AlertRow, AliasMove, MonitorResultRow
from steward.workspace import Workspace

__all__ = [
    "EVAL_RUN_LIMIT",
    "OUTPUT_LIMIT",
    "OUTPUT_MONITOR",
    "UPLIFT_SPAN",
    "WEEKS_COMPARED",
    "LlmSection",
    "LlmWeek",
    "OutputCheck",
    "PromptModelUsage",
    "WeekFigures",
    "WeeklyReport",
    "format_usd",
    "llm_section",
    "week_label",
    "weekly_report",
]

#: Weeks shown in the comparison table: the report's week and the ones before it.
WEEKS_COMPARED = 5
WEEK = timedelta(days=7)
#: The period the report's uplift claim covers: long enough for late labels and a small holdout.
UPLIFT_SPAN = timedelta(days=90)
#: The monitor whose stored results an llm system's report lists, and at most how many of them.
OUTPUT_MONITOR = "llm_outputs"
OUTPUT_LIMIT = 100
#: At most this many eval runs (newest first) are read to find the week's.
EVAL_RUN_LIMIT = 1_000
#: The columns of an ``llm_call`` event the totals need; the texts are never read.
_CALL_COLUMNS = (
    "event_time",
    "prompt",
    "prompt_version",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cost",
    "priced",
    "latency_ms",
    "error",
)


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
    #: An ``llm`` system's calls, prompts, evals and output checks; None for a classic-ML system.
    llm: LlmSection | None = None

    @property
    def label(self) -> str:
        return week_label(self.end)

    def to_html(self) -> str:
        """The report as one HTML document (inline CSS and SVG, no scripts)."""
        sparks: dict[str, str] = {}
        cost_chart = ""
        if self.llm is not None:
            cost_chart = self.llm.cost_chart_svg()
        else:
            series = {
                "realized ROC AUC": [
                    w.realized_auc[0] if w.realized_auc else None for w in self.weeks
                ],
                "estimated ROC AUC": [w.estimated_auc for w in self.weeks],
                "uplift": [w.uplift[0] if w.uplift else None for w in self.weeks],
                "predictions": [
                    float(w.predictions) if w.predictions else None for w in self.weeks
                ],
            }
            sparks = {name: sparkline_svg(values, title=name) for name, values in series.items()}
        template = environment.get_template("report.html.j2")
        return template.render(
            report=self,
            sparks=sparks,
            cost_chart=cost_chart,
            dollars=format_usd,
            generated=datetime.now(UTC),
        )

    def _repr_html_(self) -> str:
        """How a notebook shows the report: the same self-contained HTML."""
        return self.to_html()

    def write(self, path: str | Path) -> Path:
        """Write the HTML to ``path`` and return it."""
        target = Path(path)
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def weekly_report(
    steward: Workspace, events: Any, system: str, *, at: datetime | None = None
) -> WeeklyReport:
    """The report for the seven days ending at ``at`` (default now), with four weeks before.

    For an ``llm`` system the weeks compared are its calls' (``llm_section``), and the classic-ML
    figures (ROC AUC, uplift, drift, reviews) are not computed.

    >>> weekly_report(steward, events, "churn").write("report.html")  # doctest: +SKIP
    """
    end = (at or datetime.now(UTC)).astimezone(UTC)
    start = end - WEEK
    is_llm = steward.system(system).task == "llm"
    with steward.store.read() as session:
        system_id = queries.system_id_of(session, system)
        weeks = [
            _figures(steward, session, system, system_id, end - WEEK * (k + 1), end - WEEK * k)
            for k in ([] if is_llm else reversed(range(WEEKS_COMPARED)))
        ]
        drifted = [] if is_llm else _drifted(session, system_id, start, end)
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
        drifted=drifted,
        alerts=alerts,
        actions=[a for a in actions if a.created_at < end],
        moves=moves,
        pending_reviews=None if is_llm else queries.pending_review_count(steward, events, system),
        uplift_text="" if is_llm else _uplift_text(steward, events, system, end),
        pending_approvals=approvals,
        champion=champion,
        llm=llm_section(steward, events, system, start, end) if is_llm else None,
    )


def _drifted(
    session: Session, system_id: int, start: datetime, end: datetime
) -> list[tuple[str, int]]:
    """Each input column that alarmed in the week's drift results, with how many windows."""
    counted: Counter[str] = Counter()
    for row in session.scalars(queries.results_between(system_id, "drift", start, end)):
        columns = {str(r.get("column")) for r in row.details.get("results") or [] if r.get("alarm")}
        counted.update(columns)
    return counted.most_common()


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


# --- an llm system's week ------------------------------------------------------------------------


def format_usd(value: float | None) -> str:
    """US dollars: to the cent from $0.10, three significant digits below; ``–`` for None.

    >>> format_usd(1234.5), format_usd(0.000123456), format_usd(0.0), format_usd(None)
    ('$1,234.50', '$0.000123', '$0.00', '–')
    """
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0 or abs(value) >= 0.1:
        return f"${value:,.2f}"
    decimals = min(12, 2 - math.floor(math.log10(abs(value))))
    return f"${value:.{decimals}f}"


@dataclass(frozen=True)
class LlmWeek:
    """One week of an llm system's calls. ``cost`` is over the priced calls only and None when
    none was priced: an unpriced call is counted in ``unpriced``, never as $0."""

    start: datetime
    end: datetime
    calls: int = 0
    unpriced: int = 0
    errors: int = 0
    cost: float | None = None
    latency_p95_ms: float | None = None

    @property
    def label(self) -> str:
        return week_label(self.end)

    @property
    def priced(self) -> int:
        """Calls whose model had a price."""
        return self.calls - self.unpriced

    @property
    def cost_per_call(self) -> float | None:
        """Cost over the priced calls, per priced call; None when none was priced."""
        return self.cost / self.priced if self.cost is not None and self.priced else None

    @property
    def error_rate(self) -> float | None:
        """The share of the calls that failed; None without calls."""
        return self.errors / self.calls if self.calls else None


@dataclass(frozen=True)
class PromptModelUsage:
    """The week's calls of one prompt version (``answer v2``, or ``(no prompt)``) on one model."""

    prompt: str
    model: str
    usage: UsageRow


@dataclass(frozen=True)
class OutputCheck:
    """One stored ``llm_outputs`` result of the week."""

    window_start: datetime
    window_end: datetime
    status: str
    summary: str


@dataclass(frozen=True)
class LlmSection:
    """What an llm system did in the week: its calls against the week before, what they cost by
    day and by prompt version and model, and what moved, was evaluated and was checked."""

    weeks: list[LlmWeek]  # the week before, then the week; empty without an event log
    daily_cost: list[tuple[date, float | None]]  # None: the day's calls were all unpriced
    usage: list[PromptModelUsage]
    unpriced_models: list[str]
    label_moves: list[LabelChange]
    eval_runs: list[EvalRun]
    outputs: list[OutputCheck]  # oldest first, at most OUTPUT_LIMIT
    n_outputs: int  # the week's results, listed or not
    note: str = ""

    def cost_chart_svg(self) -> str:
        """The cost of the priced calls per UTC day of the week, as one inline SVG."""
        points = [
            (datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp(), cost)
            for day, cost in self.daily_cost
        ]
        peak = max((cost or 0.0 for _, cost in self.daily_cost), default=0.0)
        return line_chart_svg(
            [Series("cost of priced calls (US$)", points)],
            title="cost per day",
            y_format=",.0f" if peak >= 100 else (",.2f" if peak >= 1 else ".3g"),
            width=720,
        )


def llm_section(
    steward: Workspace, events: Any, system: str, start: datetime, end: datetime
) -> LlmSection:
    """The llm part of the report for ``[start, end)`` (and the week before, for comparison).

    The calls are the ``llm_call`` events of the log, totalled by ``steward.llm.usage.summarize``;
    without an event log (``events`` None) the call figures are left out and ``note`` says why.
    """
    moves = [
        change
        for prompt in sorted({version.prompt for version in list_prompts(steward.store, system)})
        for change in label_history(steward.store, system, prompt)
        if start <= change.moved_at < end
    ]
    runs = [
        run
        for run in list_runs(steward.store, system, limit=EVAL_RUN_LIMIT)
        if start <= run.created_at < end
    ]
    outputs, n_outputs = _output_checks(steward, system, start, end)
    common: dict[str, Any] = {
        "label_moves": sorted(moves, key=lambda change: change.moved_at),
        "eval_runs": runs[::-1],
        "outputs": outputs,
        "n_outputs": n_outputs,
    }
    if events is None:
        note = "no event log to read the calls from"
        return LlmSection([], [], [], [], note=note, **common)
    before = events.scan("llm_call", system, start=start - WEEK, end=start)
    calls = events.scan("llm_call", system, start=start, end=end)
    models = {
        str(row["response_model"] or row["request_model"])
        for row in calls.select(["priced", "request_model", "response_model"]).to_pylist()
        if not row["priced"]
    }
    table = calls.select(list(_CALL_COLUMNS))
    return LlmSection(
        weeks=[
            _llm_week(before.select(list(_CALL_COLUMNS)), start - WEEK, start),
            _llm_week(table, start, end),
        ],
        daily_cost=_daily_cost(summarize(table, "day"), start, end),
        usage=_usage_by_prompt_and_model(table),
        unpriced_models=sorted(models),
        **common,
    )


def _llm_week(calls: pa.Table, start: datetime, end: datetime) -> LlmWeek:
    rows = summarize(calls, "all")
    if not rows:
        return LlmWeek(start, end)
    total = rows[0]
    return LlmWeek(
        start,
        end,
        calls=total.calls,
        unpriced=total.unpriced,
        errors=total.errors,
        cost=total.cost if total.calls > total.unpriced else None,
        latency_p95_ms=total.latency_p95_ms,
    )


def _daily_cost(
    days: list[UsageRow], start: datetime, end: datetime
) -> list[tuple[date, float | None]]:
    """Each UTC day the week touches: no calls cost $0, only unpriced calls cost unknown (None)."""
    by_day = {row.group: row for row in days}
    first, last = start.date(), (end - timedelta(microseconds=1)).date()
    found: list[tuple[date, float | None]] = []
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        row = by_day.get(day.isoformat())
        found.append((day, 0.0 if row is None else row.cost if row.calls > row.unpriced else None))
    return found


def _usage_by_prompt_and_model(calls: pa.Table) -> list[PromptModelUsage]:
    """The week's calls by model (the response's, else the request's), then by prompt version."""
    if not calls.num_rows:
        return []
    model = pc.coalesce(calls["response_model"], calls["request_model"])
    found = [
        PromptModelUsage(row.group, str(name), row)
        for name in sorted({str(value) for value in model.to_pylist()})
        for row in summarize(calls.filter(pc.equal(model, name)), "prompt")
    ]
    return sorted(found, key=lambda item: (item.prompt, item.model))


def _output_checks(
    steward: Workspace, system: str, start: datetime, end: datetime
) -> tuple[list[OutputCheck], int]:
    """The newest ``OUTPUT_LIMIT`` stored ``llm_outputs`` results whose window ends in the week
    (oldest first), and how many the week has."""
    with steward.store.read() as session:
        system_id = queries.system_id_of(session, system)
        query = queries.results_between(system_id, OUTPUT_MONITOR, start, end)
        count = session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        newest = session.scalars(
            query.order_by(None)
            .order_by(MonitorResultRow.window_end.desc(), MonitorResultRow.id.desc())
            .limit(OUTPUT_LIMIT)
        ).all()
        checks = [
            OutputCheck(row.window_start, row.window_end, str(row.status), str(row.summary or ""))
            for row in newest
        ]
    return checks[::-1], count or 0
