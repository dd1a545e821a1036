"""SLOs: an objective on an indicator, its error budget, and multiwindow burn-rate alerts.

The error budget is ``1 - objective``; the burn rate over a window is the share of bad events in
that window divided by the budget, so a burn rate of 1 spends the budget exactly over the SLO
window. An alert pair fires when the burn rate reaches its threshold over both its long and its
short window (the Google SRE workbook, ch. 5, "multiwindow, multi-burn-rate alerts"). The defaults,
for a 30-day SLO window, page at 14.4x over 1h and 5m and at 6x over 6h and 30m, and open a ticket
at 1x over 3d and 6h; for another SLO window the window lengths scale by ``window / 30d``.

Events are counted two ways:

- event indicators count each logged prediction (a DuckDB query over the event log that returns
  counts, not rows): ``latency`` (good at or under ``threshold`` ms; predictions without a measured
  latency are not counted) and ``violation_rate`` (good when the prediction broke no contract rule);
- window indicators count each stored monitor result as one event: ``drift`` (bad on a breach),
  ``roc_auc``, ``precision`` (good at or above ``threshold``), ``fnr`` (good at or under it),
  ``estimated_roc_auc`` (at or above) and ``uplift`` (see ``_uplift_good``). Every result is
  placed at its window's end, which is the loop's time when it ran: for label-based results, when
  their outcomes had arrived, not the predictions' event time. (The loop's clock, not the wall
  clock, so a fake clock in tests and the demo's simulated weeks count the same way.)

``evaluate`` stores each evaluation as one ``steward.store.SLOEvaluationRow`` (table
``slo_evaluations``), which the dashboard reads; the alert rule of an SLO stays ``slo:NAME``.

For an LLM system (task ``llm``) the event indicators count its logged calls (the ``llm_calls``
view) instead: ``latency`` (good at or under ``threshold`` ms), ``error_rate`` (good when the
call raised no error), ``cost`` (good at or under ``threshold`` dollars a call; unpriced calls
are not counted) and ``refusal_rate`` (good when the answer matches none of the refusal patterns,
``steward.llm.descriptors.DEFAULT_REFUSALS`` plus the system's ``outputs.refusal_patterns``;
failed calls and answers not kept, hashed or dropped, are not counted); ``output_drift`` counts
each stored ``llm_outputs`` result like ``drift``. For other systems ``error_rate`` and ``cost``
are not measurable yet (failed requests and costs are not logged per prediction); evaluating them
raises a ``ConfigError`` that says so.

``daily_cost`` is a budget: ``threshold`` dollars a day of priced calls, over ``window``. It has
no objective; its burn rate over a window is the spend in that window divided by the budget for
that window's length (``threshold x length / 1 day``), so 1 spends the budget exactly at its
pace, and the burn-rate pairs fire as for any SLO (by default 14.4x the daily pace over 1h and
5m pages). Its SLI is the spend per day over the SLO window in dollars, and the budget left is
``1 - spend / (threshold x window in days)``. Unpriced calls cannot be added up; the status
says how many there were.

>>> from steward.workspace.config import SLOConfig
>>> [(pair.long, pair.short, pair.burn_rate) for pair in alert_pairs(SLOConfig(
...     name="fast", indicator="latency", objective=0.99, threshold=200, window="30d"))][:2]
[('1h', '5m', 14.4), ('6h', '30m', 6.0)]
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

import duckdb
from sqlalchemy import select

from steward._util.times import format_span, parse_window
from steward.data.events import EventLog
from steward.errors import ConfigError, NotFoundError
from steward.llm.descriptors import APOSTROPHES, DEFAULT_REFUSALS
from steward.model.registry import find_system
from steward.monitoring.result import MonitorResult
from steward.store import MonitorResultRow, SLOEvaluationRow, utcnow
from steward.workspace import Workspace
from steward.workspace.config import BurnRateAlert, SLOConfig

__all__ = [
    "DEFAULT_ALERTS",
    "EVENT_INDICATORS",
    "LLM_INDICATORS",
    "WINDOW_INDICATORS",
    "BurnWindow",
    "FiringAlert",
    "SLOStatus",
    "alert_pairs",
    "evaluate",
    "evaluate_all",
    "evaluation_history",
    "format_duration",
]

BASE_WINDOW = timedelta(days=30)
DEFAULT_ALERTS: tuple[BurnRateAlert, ...] = (
    BurnRateAlert(long="1h", short="5m", burn_rate=14.4, severity="page"),
    BurnRateAlert(long="6h", short="30m", burn_rate=6.0, severity="page"),
    BurnRateAlert(long="3d", short="6h", burn_rate=1.0, severity="ticket"),
)
EVENT_INDICATORS = frozenset({"latency", "violation_rate", "error_rate"})
# indicator -> (monitor whose stored results it reads, the result's time column)
WINDOW_INDICATORS: dict[str, tuple[str, str]] = {
    "drift": ("drift", "window_end"),
    "roc_auc": ("performance", "window_end"),
    "fnr": ("performance", "window_end"),
    "precision": ("performance", "window_end"),
    "estimated_roc_auc": ("estimated_performance", "window_end"),
    "uplift": ("uplift", "window_end"),
    "output_drift": ("llm_outputs", "window_end"),
    "fairness": ("fairness", "window_end"),
}
#: The indicators an LLM system's SLOs may use: its calls' latency, errors and cost, and drift of
#: its outputs.
LLM_INDICATORS = frozenset(
    {"latency", "error_rate", "cost", "daily_cost", "refusal_rate", "output_drift"}
)
_UNSUPPORTED = {
    "error_rate": "failed requests are not recorded in the event log yet (a request the model "
    "cannot score is refused with a 422 and never logged); watch the 5xx and 4xx counts of "
    "steward_http_requests_total on /metrics, or declare a latency or violation_rate SLO",
    "cost": "no cost is logged per prediction yet; declare the SLO when cost logging lands",
    "daily_cost": "no cost is logged per prediction yet; declare the SLO when cost logging lands",
}
# What ``call_text: hash`` stores in place of an answer (``steward.llm.descriptors``).
_HASHED_SQL = "'^sha256:[0-9a-f]{64}$'"
_TOLERANCE = 1e-9  # burn rates computed from exact ratios can land a hair under their threshold


@dataclass(frozen=True)
class BurnWindow:
    """Events in one window ending at the evaluation time, and the burn rate they give.

    For ``daily_cost``, ``n_events`` counts the priced calls, ``n_bad`` is 0 and ``spend`` holds
    their cost in dollars.
    """

    window: str
    n_events: int
    n_bad: int
    burn_rate: float | None
    enough: bool
    spend: float | None = None


@dataclass(frozen=True)
class FiringAlert:
    """A burn-rate pair whose long and short windows both reached ``burn_rate``."""

    long: str
    short: str
    burn_rate: float
    severity: str
    long_burn: float
    short_burn: float


@dataclass(frozen=True)
class SLOStatus:
    """One evaluation of one SLO at ``at``: its SLI, budget, burn rates and which alerts fire.

    ``status`` is ``alerting`` (some pair fires), ``ok``, ``not_enough_data`` (the SLO window has
    fewer than ``min_events`` events) or ``error`` (the SLO cannot be evaluated; ``reason`` says
    why).
    """

    system: str
    name: str
    indicator: str
    objective: float | None
    window: str
    at: datetime
    status: str
    sli: float | None
    budget_remaining: float | None
    n_events: int
    burn_rates: dict[str, float | None] = field(default_factory=dict)
    windows: list[BurnWindow] = field(default_factory=list)
    alerting: list[FiringAlert] = field(default_factory=list)
    reason: str = ""
    #: The declared threshold (for ``daily_cost``, the budget in dollars a day).
    threshold: float | None = None

    @property
    def severity(self) -> str | None:
        """The most urgent severity that fires (``page`` over ``ticket``), or None."""
        severities = {alert.severity for alert in self.alerting}
        return "page" if "page" in severities else ("ticket" if severities else None)

    @property
    def summary(self) -> str:
        """One line a person reads."""
        if self.status == "error":
            return f"SLO {self.name!r} cannot be evaluated: {self.reason}"
        if self.sli is None or self.budget_remaining is None:
            return f"SLO {self.name!r}: {self.reason or 'no events'}"
        if self.objective is None:  # daily_cost: the SLI is dollars a day
            text = (
                f"SLO {self.name!r} ({self.indicator}): ${self.sli:,.2f} a day against a budget "
                f"of ${self.threshold or 0:,.2f} a day over {self.window}, "
                f"{_budget_words(self.budget_remaining).replace('error budget', 'cost budget')}"
            )
        else:
            text = (
                f"SLO {self.name!r} ({self.indicator}): SLI {self.sli:.4%} against "
                f"{self.objective:.4%} over {self.window}, {_budget_words(self.budget_remaining)}"
            )
        for alert in self.alerting:
            text += (
                f"; burning {alert.long_burn:.1f}x over {format_span(alert.long)} and "
                f"{alert.short_burn:.1f}x over {format_span(alert.short)} "
                f"(alerts at {alert.burn_rate:g}x, {alert.severity})"
            )
        if self.reason:
            text += f"; {self.reason}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict (times as ISO 8601)."""
        data = asdict(self)
        data["at"] = self.at.isoformat()
        data["severity"] = self.severity
        data["summary"] = self.summary
        return data


def _budget_words(remaining: float) -> str:
    """Budget left as a share of it, or how many times over it was spent (never a share < 0).

    >>> _budget_words(0.25), _budget_words(-2.0)
    ('25.0% of the error budget left', 'error budget spent 3.0 times over')
    """
    if remaining < 0:
        return f"error budget spent {1 - remaining:.1f} times over"
    return f"{remaining:.1%} of the error budget left"


def format_duration(duration: timedelta) -> str:
    """The shortest exact ``w``/``d``/``h``/``m``/``s`` spelling of a duration.

    >>> format_duration(timedelta(minutes=14))
    '14m'
    """
    seconds = int(duration.total_seconds())
    for unit, size in (("w", 604800), ("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def alert_pairs(slo: SLOConfig) -> list[BurnRateAlert]:
    """The SLO's burn-rate pairs: as declared, or the workbook's defaults scaled to its window."""
    if slo.alerts is not None:
        return list(slo.alerts)
    scale = parse_window(slo.window) / BASE_WINDOW
    return [
        BurnRateAlert(
            long=format_duration(_scaled(pair.long, scale)),
            short=format_duration(_scaled(pair.short, scale)),
            burn_rate=pair.burn_rate,
            severity=pair.severity,
        )
        for pair in DEFAULT_ALERTS
    ]


def _scaled(text: str, scale: float) -> timedelta:
    # Whole minutes, at least one: the config's durations are written in m, h, d and w.
    return timedelta(minutes=max(1, round(parse_window(text).total_seconds() * scale / 60)))


def evaluate(
    steward: Workspace,
    events: EventLog,
    system: str,
    slo: SLOConfig | str,
    now: datetime | None = None,
    *,
    store: bool = True,
) -> SLOStatus:
    """Evaluate one SLO of ``system`` at ``now``; store it (``SLOEvaluationRow``) unless told not.

    Raises ``ConfigError`` for an indicator that cannot be measured yet (``error_rate``, ``cost``)
    or a window indicator declared without a ``threshold``.

    Example::

        status = evaluate(steward, events, "churn", "fast-answers", now=datetime.now(UTC))
        status.alerting  # [FiringAlert(long='1h', short='5m', burn_rate=14.4, ...)]
    """
    at = now or utcnow()
    declared = slo if isinstance(slo, SLOConfig) else _find_slo(steward, system, slo)
    defined = steward.system(system)
    task = defined.task
    _check_measurable(system, declared, task, defined.declared.call_text)
    pairs = alert_pairs(declared)
    lengths = {format_duration(parse_window(declared.window)): parse_window(declared.window)}
    for pair in pairs:
        lengths.setdefault(pair.long, parse_window(pair.long))
        lengths.setdefault(pair.short, parse_window(pair.short))
    if declared.indicator == "daily_cost":
        status = _budget_status(
            system, declared, pairs, lengths, _spend(events, system, lengths, at), at
        )
    else:
        counts = _count(steward, events, system, declared, lengths, at, task)
        status = _status(system, declared, pairs, lengths, counts, at)
    if store:
        _store(steward, status, at - parse_window(declared.window))
    return status


def evaluate_all(
    steward: Workspace,
    events: EventLog,
    system: str,
    now: datetime | None = None,
    *,
    store: bool = True,
) -> list[SLOStatus]:
    """Every SLO of ``system``; one that cannot be evaluated comes back with status ``error``."""
    at = now or utcnow()
    statuses = []
    for slo in steward.system(system).declared.slos:
        try:
            statuses.append(evaluate(steward, events, system, slo, at, store=store))
        except ConfigError as error:
            statuses.append(
                SLOStatus(
                    system, slo.name, slo.indicator, slo.objective, slo.window, at, "error",
                    None, None, 0, reason=str(error),
                )
            )  # fmt: skip
    return statuses


def evaluation_history(steward: Workspace, system: str, limit: int = 50) -> list[MonitorResult]:
    """The newest stored evaluations of ``system``'s SLOs, newest first, as monitor results.

    Each reads as the monitor ``slo:NAME`` (status ``breach`` when a burn-rate pair fired), the
    shape ``steward monitor run`` prints them in, so they can be listed among monitor results.
    """
    with steward.store.read() as session:
        system_id = find_system(session, system).id
        rows = session.scalars(
            select(SLOEvaluationRow)
            .where(SLOEvaluationRow.system_id == system_id)
            .order_by(SLOEvaluationRow.id.desc())
            .limit(limit)
        )
        return [
            MonitorResult(
                system,
                f"slo:{row.name}",
                row.window_start,
                row.window_end,
                row.status,
                row.summary,
                dict(row.details),
            )
            for row in rows
        ]


def _find_slo(steward: Workspace, system: str, name: str) -> SLOConfig:
    declared = steward.system(system).declared.slos
    for slo in declared:
        if slo.name == name:
            return slo
    known = ", ".join(repr(slo.name) for slo in declared) or "none"
    raise NotFoundError(
        f"system {system!r} declares no SLO {name!r} (declared: {known}); add it under slos: in "
        "steward.yaml and run `steward apply`"
    )


def _check_measurable(system: str, slo: SLOConfig, task: str, call_text: str = "keep") -> None:
    if task == "llm" and slo.indicator not in LLM_INDICATORS:
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: an LLM system's SLOs use "
            f"{', '.join(sorted(LLM_INDICATORS))}, not {slo.indicator!r}"
        )
    if task != "llm" and slo.indicator in ("output_drift", "refusal_rate"):
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: {slo.indicator} watches an LLM system's answers; "
            f"{system!r} has task {task!r} (use drift for its inputs)"
        )
    if slo.indicator == "refusal_rate" and call_text != "keep":
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: refusal_rate reads the answers' text, but the "
            f"system stores it as call_text: {call_text}; set call_text: keep in steward.yaml "
            "(refusals in answers logged before cannot be counted)"
        )
    if task != "llm" and slo.indicator in _UNSUPPORTED:
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: indicator {slo.indicator!r} is not supported yet: "
            f"{_UNSUPPORTED[slo.indicator]}"
        )
    if slo.indicator == "cost" and slo.threshold is None:
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: indicator 'cost' needs a threshold in dollars a "
            "call (e.g. threshold: 0.002); add it in steward.yaml"
        )
    needs_threshold = slo.indicator == "latency" or (
        slo.indicator in WINDOW_INDICATORS
        and slo.indicator not in ("drift", "output_drift", "fairness")
    )
    if needs_threshold and slo.threshold is None:
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: indicator {slo.indicator!r} needs a threshold "
            "(e.g. threshold: 200 for latency in ms, 0.75 for roc_auc); add it in steward.yaml"
        )
    if slo.indicator == "uplift" and slo.threshold == 0:
        raise ConfigError(
            f"SLO {slo.name!r} of {system!r}: an uplift threshold of 0 has no direction; write "
            "a positive threshold (the action must raise the outcome by at least that much) or a "
            "negative one (it must lower it by at least that much, e.g. -0.02 for churn)"
        )


# -- counting


def _count(
    steward: Workspace,
    events: EventLog,
    system: str,
    slo: SLOConfig,
    lengths: dict[str, timedelta],
    at: datetime,
    task: str = "",
) -> dict[str, tuple[int, int]]:
    """(events, bad events) per window label, every window ending at ``at``."""
    if task == "llm" and slo.indicator == "refusal_rate":
        outputs = steward.system(system).declared.outputs
        extra = tuple(outputs.refusal_patterns) if outputs is not None else ()
        measured, bad = _refusal_rule(slo, (*DEFAULT_REFUSALS, *extra))
        return _count_events(events, "llm_calls", system, lengths, at, measured, bad)
    if task == "llm" and slo.indicator in ("latency", "error_rate", "cost"):
        measured, bad = _call_rule(slo)
        return _count_events(events, "llm_calls", system, lengths, at, measured, bad)
    if slo.indicator in EVENT_INDICATORS:
        return _count_predictions(events, system, slo, lengths, at)
    return _count_results(steward, system, slo, lengths, at)


def _call_rule(slo: SLOConfig) -> tuple[str, str]:
    """(which calls count, which of them are bad) for an LLM system's event indicator."""
    threshold = float(slo.threshold or 0)
    if slo.indicator == "latency":
        return "latency_ms IS NOT NULL", f"latency_ms > {threshold!r}"
    if slo.indicator == "cost":
        return "priced", f"cost > {threshold!r}"
    return "true", "error IS NOT NULL"


def _refusal_rule(slo: SLOConfig, patterns: Sequence[str]) -> tuple[str, str]:
    """(answered calls with a kept text, those matching a refusal pattern), as DuckDB SQL.

    The patterns run in DuckDB's regular expressions (RE2), case-insensitive, on the text with
    typographic apostrophes read as plain ones, as ``steward.llm.descriptors`` reads them.
    """
    with duckdb.connect() as connection:  # its own: the module's default one is shared
        for pattern in patterns:
            try:
                connection.execute(f"SELECT regexp_matches('', {_sql_text(_plain(pattern))}, 'i')")
            except duckdb.Error as error:
                raise ConfigError(
                    f"SLO {slo.name!r}: refusal pattern {pattern!r} cannot run in the SLO's query "
                    f"engine (RE2: no look-around or back-references): {error}; rewrite it "
                    "without them in outputs.refusal_patterns"
                ) from None
    either = "|".join(f"(?:{_plain(pattern)})" for pattern in patterns)
    text = "translate(output_text, '\u2019\u2018\u02bc', " + _sql_text("'" * 3) + ")"
    measured = (
        "coalesce(trim(error), '') = '' AND output_text IS NOT NULL "
        f"AND NOT regexp_matches(output_text, {_HASHED_SQL})"
    )
    return measured, f"regexp_matches({text}, {_sql_text(either)}, 'i')"


def _plain(pattern: str) -> str:
    return pattern.translate(APOSTROPHES)


def _spend(
    events: EventLog, system: str, lengths: dict[str, timedelta], at: datetime
) -> dict[str, tuple[int, float, int]]:
    """(priced calls, their cost in dollars, unpriced calls) per window label, ending at ``at``."""
    sums = _per_window(
        events, "llm_calls", system, lengths, at, "true",
        {
            "n": "count(*) FILTER (WHERE {since} AND priced)",
            "spend": "coalesce(sum(cost) FILTER (WHERE {since} AND priced), 0)",
            "unpriced": "count(*) FILTER (WHERE {since} AND NOT coalesce(priced, false))",
        },
    )  # fmt: skip
    return {
        label: (int(row["n"]), float(row["spend"]), int(row["unpriced"]))
        for label, row in sums.items()
    }


def _per_window(
    events: EventLog,
    view: str,
    system: str,
    lengths: dict[str, timedelta],
    at: datetime,
    measured: str,
    aggregates: dict[str, str],
) -> dict[str, dict[str, Any]]:
    """One aggregate query over ``view``: per window label, each aggregate (SQL with ``{since}``
    for the window's start condition) over the rows where ``measured`` holds. Never the rows."""
    labels = list(lengths)
    columns = [
        f"{template.format(since=f'event_time >= {_sql_time(at - lengths[label])}')} AS {key}_{i}"
        for i, label in enumerate(labels)
        for key, template in aggregates.items()
    ]
    longest = max(lengths.values())
    row = events.query(
        f"SELECT {', '.join(columns)} FROM {view} WHERE system = {_sql_text(system)} "
        f"AND event_time >= {_sql_time(at - longest)} AND event_time < {_sql_time(at)} "
        f"AND {measured}"
    ).to_pylist()[0]
    return {label: {key: row[f"{key}_{i}"] for key in aggregates} for i, label in enumerate(labels)}


def _sql_text(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _sql_time(moment: datetime) -> str:
    return f"CAST({_sql_text(moment.isoformat())} AS TIMESTAMPTZ)"


def _count_predictions(
    events: EventLog,
    system: str,
    slo: SLOConfig,
    lengths: dict[str, timedelta],
    at: datetime,
) -> dict[str, tuple[int, int]]:
    """One aggregate query: counts per window come back, never the rows."""
    if slo.indicator == "latency":
        measured, bad = "latency_ms IS NOT NULL", f"latency_ms > {float(slo.threshold or 0)!r}"
    else:
        measured, bad = "true", "(violations IS NOT NULL AND violations NOT IN ('', '[]'))"
    return _count_events(events, "predictions", system, lengths, at, measured, bad)


def _count_events(
    events: EventLog,
    view: str,
    system: str,
    lengths: dict[str, timedelta],
    at: datetime,
    measured: str,
    bad: str,
) -> dict[str, tuple[int, int]]:
    """(events, bad events) per window label over ``view``, in one aggregate query."""
    counts = _per_window(
        events, view, system, lengths, at, measured,
        {"n": "count(*) FILTER (WHERE {since})", "bad": f"count(*) FILTER (WHERE {{since}} AND {bad})"},
    )  # fmt: skip
    return {label: (int(row["n"]), int(row["bad"])) for label, row in counts.items()}


def _count_results(
    steward: Workspace,
    system: str,
    slo: SLOConfig,
    lengths: dict[str, timedelta],
    at: datetime,
) -> dict[str, tuple[int, int]]:
    monitor, time_column = WINDOW_INDICATORS[slo.indicator]
    moment = getattr(MonitorResultRow, time_column)
    longest = max(lengths.values())
    with steward.store.read() as session:
        system_id = find_system(session, system).id
        rows = session.execute(
            select(moment, MonitorResultRow.status, MonitorResultRow.details).where(
                MonitorResultRow.system_id == system_id,
                MonitorResultRow.monitor == monitor,
                moment >= at - longest,
                moment < at,
            )
        ).all()
    judged = [(when, _window_good(slo, status, details or {})) for when, status, details in rows]
    counts = {}
    for label, length in lengths.items():
        inside = [good for when, good in judged if good is not None and when >= at - length]
        counts[label] = (len(inside), sum(1 for good in inside if not good))
    return counts


def _window_good(slo: SLOConfig, status: str, details: dict[str, Any]) -> bool | None:
    """Whether one stored monitor window met the SLO; None when it holds no event."""
    if slo.indicator in ("drift", "output_drift", "fairness"):
        return None if status not in ("ok", "breach") else status == "ok"
    threshold = float(slo.threshold or 0.0)
    if slo.indicator == "estimated_roc_auc":
        value = details.get("estimated_roc_auc")
        return None if not isinstance(value, int | float) else value >= threshold
    if slo.indicator == "uplift":
        return _uplift_good(details, threshold)
    values = [
        record.get("value")
        for record in details.get("metrics") or []
        if record.get("metric") == slo.indicator and record.get("status") == "ok"
    ]
    values = [value for value in values if isinstance(value, int | float)]
    if not values:
        return None
    # Several model versions in one window: the window is good only if each of them is.
    if slo.indicator == "fnr":
        return max(values) <= threshold
    return min(values) >= threshold


def _uplift_good(details: dict[str, Any], threshold: float) -> bool | None:
    """A positive threshold asks the action to raise the outcome by at least that much; a
    negative one to lower it by at least its size (churn). The estimate is judged, not its bound."""
    value = details.get("uplift")
    if not details.get("enough_data") or not isinstance(value, int | float):
        return None
    return value >= threshold if threshold > 0 else value <= threshold


# -- judging


def _status(
    system: str,
    slo: SLOConfig,
    pairs: list[BurnRateAlert],
    lengths: dict[str, timedelta],
    counts: dict[str, tuple[int, int]],
    at: datetime,
) -> SLOStatus:
    budget = 1.0 - float(slo.objective or 0.0)
    windows = {}
    for label in lengths:
        n_events, n_bad = counts[label]
        burn = (n_bad / n_events) / budget if n_events else None
        windows[label] = BurnWindow(label, n_events, n_bad, burn, n_events >= slo.min_events)
    firing = _firing(pairs, windows)
    whole = windows[format_duration(parse_window(slo.window))]
    sli = 1.0 - whole.n_bad / whole.n_events if whole.n_events else None
    remaining = 1.0 - (whole.n_bad / whole.n_events) / budget if whole.n_events else None
    short_of = [w for w in windows.values() if not w.enough]
    reason = ""
    if short_of:
        reason = "not enough events: " + ", ".join(
            f"{w.n_events} in {w.window}" for w in short_of
        ) + f" (alerts need at least {slo.min_events} per window)"  # fmt: skip
    if firing:
        status = "alerting"
    elif not whole.enough:
        status = "not_enough_data"
    else:
        status = "ok"
    return SLOStatus(
        system, slo.name, slo.indicator, slo.objective, slo.window, at, status, sli, remaining,
        whole.n_events, {label: w.burn_rate for label, w in windows.items()},
        list(windows.values()), firing, reason,
    )  # fmt: skip


def _budget_status(
    system: str,
    slo: SLOConfig,
    pairs: list[BurnRateAlert],
    lengths: dict[str, timedelta],
    spend: dict[str, tuple[int, float, int]],
    at: datetime,
) -> SLOStatus:
    """A ``daily_cost`` SLO: each window's spend against the budget for its length."""
    per_day = float(slo.threshold or 0.0)
    windows = {}
    for label, length in lengths.items():
        n_priced, dollars, _ = spend[label]
        allowance = per_day * (length / timedelta(days=1))
        burn = dollars / allowance if n_priced else None
        windows[label] = BurnWindow(label, n_priced, 0, burn, n_priced >= slo.min_events, dollars)
    firing = _firing(pairs, windows)
    whole_label = format_duration(parse_window(slo.window))
    whole = windows[whole_label]
    days = parse_window(slo.window) / timedelta(days=1)
    sli = (whole.spend or 0.0) / days if whole.n_events else None
    remaining = 1.0 - (whole.spend or 0.0) / (per_day * days) if whole.n_events else None
    notes = []
    if not whole.enough:
        notes.append(
            f"not enough priced calls: {whole.n_events} in {slo.window} (alerts need at least "
            f"{slo.min_events} per window)"
        )
    unpriced = spend[whole_label][2]
    if unpriced:
        notes.append(f"{unpriced} unpriced calls not counted (add their models under prices:)")
    status = "alerting" if firing else ("ok" if whole.enough else "not_enough_data")
    return SLOStatus(
        system, slo.name, slo.indicator, None, slo.window, at, status, sli, remaining,
        whole.n_events, {label: w.burn_rate for label, w in windows.items()},
        list(windows.values()), firing, "; ".join(notes), per_day,
    )  # fmt: skip


def _firing(pairs: list[BurnRateAlert], windows: dict[str, BurnWindow]) -> list[FiringAlert]:
    """The pairs whose long and short windows both reach their burn rate."""
    firing = []
    for pair in pairs:
        long, short = windows[pair.long], windows[pair.short]
        if _reaches(long, pair.burn_rate) and _reaches(short, pair.burn_rate):
            firing.append(
                FiringAlert(
                    pair.long, pair.short, pair.burn_rate, pair.severity,
                    float(long.burn_rate or 0.0), float(short.burn_rate or 0.0),
                )
            )  # fmt: skip
    return firing


def _reaches(window: BurnWindow, threshold: float) -> bool:
    """A window with fewer than ``min_events`` events never alerts."""
    if not window.enough or window.burn_rate is None:
        return False
    return window.burn_rate >= threshold * (1 - _TOLERANCE)


def _store(steward: Workspace, status: SLOStatus, start: datetime) -> None:
    with steward.store.write() as session:
        session.add(
            SLOEvaluationRow(
                system_id=find_system(session, status.system).id,
                name=status.name,
                indicator=status.indicator,
                window_start=start,
                window_end=status.at,
                # As a monitor result reads: an alerting SLO is a breach.
                status="breach" if status.status == "alerting" else status.status,
                sli=status.sli,
                budget_remaining=status.budget_remaining,
                burn_rates=dict(status.burn_rates),
                summary=status.summary,
                details=json.loads(json.dumps(status.to_dict(), default=str)),
                created_at=utcnow(),
            )
        )
