"""Model-health metrics for Prometheus, read from the store when ``/metrics`` is scraped.

``HealthCollector`` is a ``prometheus_client`` custom collector: on a scrape it reads the latest
stored result of each monitor of each system (drift, data quality, realized and estimated
performance, uplift, LLM outputs), the latest stored evaluation of each SLO, the open alerts, the
open suspensions and the aliases, one query per kind, and turns them into gauges. What it read is
kept for ``ttl`` seconds (5 by default), so scrapers that ask every second, or several Prometheus
replicas, cost one read per ``ttl`` whatever their number.

Labels stay bounded: a system's name, a model version, a contract's column, a drift method, a
metric's name, an SLO's name and burn-rate window, an alert's rule and severity, an LLM prompt,
its version and model. Never an entity key, a prediction id or a free text.

Nothing here computes a statistic: every value is one a monitor, the SLO evaluator or the alert
lifecycle stored, so ``/metrics`` shows what the dashboard and ``steward monitor history`` show.
``HEALTH_METRICS`` names each metric with its help and labels; ``docs/metrics.md`` lists them, and a
test keeps the two in step.

>>> from prometheus_client import CollectorRegistry, generate_latest
>>> registry = CollectorRegistry()
>>> registry.register(HealthCollector(Steward.open("demo")))  # doctest: +SKIP
>>> b"steward_drift_statistic" in generate_latest(registry)  # doctest: +SKIP
True
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from steward.errors import InvalidInputError, StewardError
from steward.store import (
    AlertRow,
    AliasRow,
    MonitorResultRow,
    SLOEvaluationRow,
    SuspensionRow,
    System,
)
from steward.workspace import Workspace

__all__ = ["HEALTH_METRICS", "HEALTH_TTL", "HealthCollector"]

logger = logging.getLogger(__name__)

#: Seconds a read of the store is reused for further scrapes.
HEALTH_TTL: Final = 5.0

_SYSTEM = ("system",)
_COLUMN = ("system", "column")
_VERSION_METRIC = ("system", "model_version", "metric")
_UPLIFT = ("system", "action")
_SLO = ("system", "slo")
_LLM = ("system", "prompt", "prompt_version", "model")

#: Every health metric: name -> (help, label names). All are gauges.
HEALTH_METRICS: Final[dict[str, tuple[str, tuple[str, ...]]]] = {
    "steward_health_up": (
        "1 when the last read of the store for the model-health metrics succeeded, else 0.",
        (),
    ),
    "steward_system_info": (
        "1 for each system in the workspace, with its task and risk tier.",
        ("system", "task", "risk_tier"),
    ),
    "steward_alias_version": (
        "The model version an alias (champion, challenger, ...) points at.",
        ("system", "alias"),
    ),
    "steward_monitor_status": (
        "1 for the status of the latest stored result of each monitor, 0 for the others.",
        ("system", "monitor", "status"),
    ),
    "steward_monitor_window_end_timestamp_seconds": (
        "When the window of the latest stored result of each monitor ended (Unix time).",
        ("system", "monitor"),
    ),
    "steward_drift_statistic": (
        "Drift statistic of a column by method, latest drift result.",
        ("system", "column", "method"),
    ),
    "steward_drift_threshold": (
        "The statistic's alarm threshold (practical floor plus noise), latest drift result.",
        ("system", "column", "method"),
    ),
    "steward_drift_adjusted_p_value": (
        "Benjamini-Hochberg adjusted p-value of the statistic, latest drift result.",
        ("system", "column", "method"),
    ),
    "steward_drift_alarm": (
        "1 when the column drifted (significant and above the floor), latest drift result.",
        _COLUMN,
    ),
    "steward_drift_alarmed_columns": (
        "How many columns drifted in the latest drift result.",
        _SYSTEM,
    ),
    "steward_data_quality_rows": (
        "Predictions in the window of the latest data-quality result.",
        _SYSTEM,
    ),
    "steward_data_quality_usual_rows": (
        "Predictions in a usual window before it (median of the windows before).",
        _SYSTEM,
    ),
    "steward_data_quality_violation_ratio": (
        "Share of records that broke the contract, latest data-quality result.",
        _SYSTEM,
    ),
    "steward_data_quality_column_violation_ratio": (
        "Share of records that broke the contract on a column, latest data-quality result.",
        _COLUMN,
    ),
    "steward_data_quality_null_ratio": (
        "Share of null values of a column, latest data-quality result.",
        _COLUMN,
    ),
    "steward_data_quality_unseen_ratio": (
        "Share of categories the reference never had, latest data-quality result (categorical "
        "columns that had any).",
        _COLUMN,
    ),
    "steward_data_quality_out_of_range_ratio": (
        "Share of values outside the reference's range, latest data-quality result.",
        _COLUMN,
    ),
    "steward_data_quality_lateness_p95_seconds": (
        "95th percentile of received minus event time, latest data-quality result.",
        _SYSTEM,
    ),
    "steward_performance": (
        "Realized performance metric per model version, latest performance result.",
        _VERSION_METRIC,
    ),
    "steward_performance_lower": (
        "Lower bound of the realized metric's 95% interval.",
        _VERSION_METRIC,
    ),
    "steward_performance_upper": (
        "Upper bound of the realized metric's 95% interval.",
        _VERSION_METRIC,
    ),
    "steward_performance_labeled_predictions": (
        "Predictions with an outcome behind the realized metrics, per model version.",
        ("system", "model_version"),
    ),
    "steward_estimated_performance": (
        "Performance estimated without labels (CBPE) for the champion, latest result.",
        _VERSION_METRIC,
    ),
    "steward_estimated_performance_lower": (
        "Lower bound of the estimated metric's band.",
        _VERSION_METRIC,
    ),
    "steward_estimated_performance_upper": (
        "Upper bound of the estimated metric's band.",
        _VERSION_METRIC,
    ),
    "steward_uplift": (
        "Outcome rate of actioned minus held-out entities, latest uplift result.",
        _UPLIFT,
    ),
    "steward_uplift_lower": ("Lower bound of the uplift's interval.", _UPLIFT),
    "steward_uplift_upper": ("Upper bound of the uplift's interval.", _UPLIFT),
    "steward_uplift_arm_mean": (
        "Mean outcome of an arm (treated: actioned, control: held out), latest uplift result.",
        ("system", "action", "arm"),
    ),
    "steward_uplift_arm_rows": (
        "Rows with an outcome in an arm, latest uplift result.",
        ("system", "action", "arm"),
    ),
    "steward_slo_sli": (
        "The SLI over the SLO window (a share good; dollars a day for daily_cost), latest "
        "evaluation.",
        ("system", "slo", "indicator"),
    ),
    "steward_slo_objective": ("The SLO's objective (a share).", _SLO),
    "steward_slo_budget_remaining_ratio": (
        "Share of the error budget left over the SLO window (below 0: overspent).",
        _SLO,
    ),
    "steward_slo_burn_rate": (
        "How fast the error budget burns over a window (1: exactly on budget).",
        ("system", "slo", "window"),
    ),
    "steward_slo_events": ("Events the latest evaluation counted over the SLO window.", _SLO),
    "steward_slo_status": (
        "1 for the status of the latest evaluation (ok, breach, not_enough_data, error).",
        ("system", "slo", "status"),
    ),
    "steward_slo_evaluated_timestamp_seconds": (
        "When the SLO was last evaluated (Unix time).",
        _SLO,
    ),
    "steward_alerts_open": (
        "Open alerts by severity and state (firing, acknowledged).",
        ("system", "severity", "state"),
    ),
    "steward_alert_open": (
        "1 for each open alert, by rule, severity and state.",
        ("system", "rule", "severity", "state"),
    ),
    "steward_suspended": (
        "1 while automation is suspended on the system (decisions go to review or a fallback).",
        _SYSTEM,
    ),
    "steward_suspension_started_timestamp_seconds": (
        "When the open suspension started (Unix time), by mode.",
        ("system", "mode"),
    ),
    "steward_llm_calls": (
        "LLM calls in the window of the latest llm_outputs result, per prompt version and model.",
        _LLM,
    ),
    "steward_llm_cost_dollars_per_call": (
        "Mean cost of a call in that window.",
        _LLM,
    ),
    "steward_llm_window_cost_dollars": (
        "Cost of the calls in that window (mean cost times calls with a cost).",
        _LLM,
    ),
    "steward_llm_output_tokens_per_call": (
        "Mean output tokens of a call in that window.",
        _LLM,
    ),
    "steward_llm_output_descriptor": (
        "Mean of an output descriptor (length, refusals, sentiment, latency, ...) in that window.",
        (*_LLM, "descriptor"),
    ),
    "steward_llm_output_alarm": (
        "1 when an output descriptor changed against the reference calls.",
        (*_LLM, "descriptor"),
    ),
}

_MONITOR_STATES: Final = ("ok", "breach", "not_enough_data", "error")
_SEVERITIES: Final = ("page", "ticket")
_OPEN_STATES: Final = ("firing", "acknowledged")


# --- what one read of the store gives ----------------------------------------------------------


@dataclass(frozen=True)
class _Result:
    system_id: int
    monitor: str
    window_end: datetime
    status: str
    details: dict[str, Any]


@dataclass(frozen=True)
class _Snapshot:
    """Plain copies of the rows one scrape needs, so nothing is read after the session ends."""

    systems: dict[int, tuple[str, str, str]]  # id -> (name, task, risk tier)
    results: list[_Result] = field(default_factory=list)
    slos: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[tuple[int, str, str, str]] = field(default_factory=list)
    suspensions: list[tuple[int, str, datetime]] = field(default_factory=list)
    aliases: list[tuple[int, str, int]] = field(default_factory=list)


def _read(session: Session) -> _Snapshot:
    systems = {
        row.id: (row.name, row.task, row.risk_tier)
        for row in session.execute(select(System.id, System.name, System.task, System.risk_tier))
    }
    return _Snapshot(
        systems,
        _latest_results(session),
        _latest_slos(session),
        [
            (row.system_id, row.rule, row.severity, row.state)
            for row in session.execute(
                select(AlertRow.system_id, AlertRow.rule, AlertRow.severity, AlertRow.state).where(
                    AlertRow.state.in_(_OPEN_STATES)
                )
            )
        ],
        [
            (row.system_id, row.mode, row.started_at)
            for row in session.scalars(
                select(SuspensionRow).where(SuspensionRow.ended_at.is_(None))
            )
        ],
        [
            (row.system_id, row.name, row.version)
            for row in session.scalars(select(AliasRow))
            if row.version is not None
        ],
    )


def _latest_results(session: Session) -> list[_Result]:
    """Every row of the newest stored run of each monitor of each system, in one query.

    A run can store several rows of one monitor (``llm_outputs`` judges each prompt version and
    model apart), all with the window of the newest row; the newest row of each group is kept.
    """
    newest = (
        select(func.max(MonitorResultRow.id))
        .group_by(MonitorResultRow.system_id, MonitorResultRow.monitor)
        .scalar_subquery()
    )
    head = (
        select(MonitorResultRow.system_id, MonitorResultRow.monitor, MonitorResultRow.window_end)
        .where(MonitorResultRow.id.in_(newest))
        .subquery()
    )
    rows = session.scalars(
        select(MonitorResultRow)
        .join(
            head,
            and_(
                head.c.system_id == MonitorResultRow.system_id,
                head.c.monitor == MonitorResultRow.monitor,
                head.c.window_end == MonitorResultRow.window_end,
            ),
        )
        .order_by(MonitorResultRow.id)
    )
    kept: dict[tuple[int, str, str], _Result] = {}
    for row in rows:
        details = dict(row.details or {})
        group = json.dumps(details.get("group"), sort_keys=True, default=str)
        kept[(row.system_id, row.monitor, group)] = _Result(
            row.system_id, row.monitor, row.window_end, row.status, details
        )
    return list(kept.values())


def _latest_slos(session: Session) -> list[dict[str, Any]]:
    newest = (
        select(func.max(SLOEvaluationRow.id))
        .group_by(SLOEvaluationRow.system_id, SLOEvaluationRow.name)
        .scalar_subquery()
    )
    rows = session.scalars(
        select(SLOEvaluationRow)
        .where(SLOEvaluationRow.id.in_(newest))
        .order_by(SLOEvaluationRow.id)
    )
    return [
        {
            "system_id": row.system_id,
            "name": row.name,
            "indicator": row.indicator,
            "status": row.status,
            "sli": row.sli,
            "budget_remaining": row.budget_remaining,
            "burn_rates": dict(row.burn_rates or {}),
            "objective": (row.details or {}).get("objective"),
            "n_events": (row.details or {}).get("n_events"),
            "at": row.window_end,
        }
        for row in rows
    ]


# --- from rows to gauges -----------------------------------------------------------------------


class _Families:
    """The gauge families of one scrape, made on first use from ``HEALTH_METRICS``."""

    def __init__(self) -> None:
        self.families = {
            name: GaugeMetricFamily(name, help_text, labels=list(labels))
            for name, (help_text, labels) in HEALTH_METRICS.items()
        }

    def add(self, name: str, labels: Iterable[Any], value: Any) -> None:
        """One sample; a missing or non-numeric value (not enough data) gives none."""
        number = _number(value)
        if number is not None:
            self.families[name].add_metric([str(label) for label in labels], number)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float) and not math.isnan(value):
        return float(value)
    return None


def _drift(out: _Families, system: str, details: Mapping[str, Any]) -> None:
    alarmed = set(details.get("alarmed_columns") or [])
    columns: dict[str, None] = {}
    for entry in details.get("results") or []:
        column, method = entry.get("column"), entry.get("method")
        if column is None or method is None:
            continue
        columns[column] = None
        labels = (system, column, method)
        out.add("steward_drift_statistic", labels, entry.get("statistic"))
        out.add("steward_drift_threshold", labels, entry.get("threshold"))
        out.add("steward_drift_adjusted_p_value", labels, entry.get("adjusted_p_value"))
    for column in columns:
        out.add("steward_drift_alarm", (system, column), column in alarmed)
    if columns:
        out.add("steward_drift_alarmed_columns", (system,), len(alarmed))


def _quality(out: _Families, system: str, details: Mapping[str, Any]) -> None:
    out.add("steward_data_quality_rows", (system,), details.get("volume"))
    out.add("steward_data_quality_usual_rows", (system,), details.get("usual_volume"))
    out.add("steward_data_quality_violation_ratio", (system,), details.get("violation_rate"))
    out.add(
        "steward_data_quality_lateness_p95_seconds", (system,), details.get("lateness_p95_seconds")
    )
    for key, name in (
        ("violation_rates", "steward_data_quality_column_violation_ratio"),
        ("null_rates", "steward_data_quality_null_ratio"),
    ):
        for column, rate in (details.get(key) or {}).items():
            out.add(name, (system, column), rate)
    for key, name in (
        ("unseen", "steward_data_quality_unseen_ratio"),
        ("out_of_range", "steward_data_quality_out_of_range_ratio"),
    ):
        for column, entry in (details.get(key) or {}).items():
            out.add(name, (system, column), (entry or {}).get("share"))


def _performance(out: _Families, system: str, details: Mapping[str, Any]) -> None:
    labeled: dict[str, Any] = {}
    for entry in details.get("metrics") or []:
        version = entry.get("model_version")
        if version is None or entry.get("metric") is None:
            continue
        labels = (system, version, entry["metric"])
        out.add("steward_performance", labels, entry.get("value"))
        out.add("steward_performance_lower", labels, entry.get("lower"))
        out.add("steward_performance_upper", labels, entry.get("upper"))
        labeled[str(version)] = entry.get("n_labeled")
    for version, count in labeled.items():
        out.add("steward_performance_labeled_predictions", (system, version), count)


def _estimated(out: _Families, system: str, details: Mapping[str, Any]) -> None:
    version = details.get("model_version")
    if version is None:
        return
    for entry in details.get("metrics") or []:
        if entry.get("metric") is None:
            continue
        labels = (system, version, entry["metric"])
        out.add("steward_estimated_performance", labels, entry.get("value"))
        out.add("steward_estimated_performance_lower", labels, entry.get("lower"))
        out.add("steward_estimated_performance_upper", labels, entry.get("upper"))


def _uplift(out: _Families, system: str, details: Mapping[str, Any]) -> None:
    action = details.get("action")
    if action is None:
        return
    out.add("steward_uplift", (system, action), details.get("uplift"))
    out.add("steward_uplift_lower", (system, action), details.get("uplift_low"))
    out.add("steward_uplift_upper", (system, action), details.get("uplift_high"))
    for arm in ("treated", "control"):
        out.add("steward_uplift_arm_mean", (system, action, arm), details.get(f"{arm}_mean"))
        out.add("steward_uplift_arm_rows", (system, action, arm), details.get(f"n_{arm}"))


def _llm_outputs(out: _Families, system: str, details: Mapping[str, Any]) -> None:
    group = details.get("group")
    if isinstance(group, Mapping):
        labels = (
            system,
            group.get("prompt") or "",
            "" if group.get("prompt_version") is None else group["prompt_version"],
            group.get("model") or "",
        )
    else:  # every call judged together
        labels = (system, "", "", "")
    out.add("steward_llm_calls", labels, details.get("n_current"))
    descriptors: Mapping[str, Any] = details.get("descriptors") or {}
    alarmed = set(details.get("alarmed_descriptors") or [])
    for name, entry in descriptors.items():
        current = entry.get("current") if isinstance(entry, Mapping) else None
        out.add("steward_llm_output_descriptor", (*labels, name), current)
        out.add("steward_llm_output_alarm", (*labels, name), name in alarmed)
    cost = descriptors.get("cost") or {}
    out.add("steward_llm_cost_dollars_per_call", labels, cost.get("current"))
    mean, count = _number(cost.get("current")), _number(cost.get("n_current"))
    if mean is not None and count is not None:
        out.add("steward_llm_window_cost_dollars", labels, mean * count)
    tokens = descriptors.get("output_tokens") or {}
    out.add("steward_llm_output_tokens_per_call", labels, tokens.get("current"))


_BY_MONITOR: Final[dict[str, Callable[[_Families, str, Mapping[str, Any]], None]]] = {
    "drift": _drift,
    "data_quality": _quality,
    "performance": _performance,
    "estimated_performance": _estimated,
    "uplift": _uplift,
    "llm_outputs": _llm_outputs,
}


def _results(out: _Families, names: Mapping[int, str], results: list[_Result]) -> None:
    seen: set[tuple[str, str]] = set()
    for result in results:
        system = names.get(result.system_id)
        if system is None:
            continue
        if (system, result.monitor) not in seen:
            seen.add((system, result.monitor))
            for state in sorted({*_MONITOR_STATES, result.status}):
                labels = (system, result.monitor, state)
                out.add("steward_monitor_status", labels, state == result.status)
            out.add(
                "steward_monitor_window_end_timestamp_seconds",
                (system, result.monitor),
                result.window_end.timestamp(),
            )
        fill = _BY_MONITOR.get(result.monitor)
        if fill is not None:
            fill(out, system, result.details)


def _slos(out: _Families, names: Mapping[int, str], slos: list[dict[str, Any]]) -> None:
    for slo in slos:
        system = names.get(slo["system_id"])
        if system is None:
            continue
        labels = (system, slo["name"])
        out.add("steward_slo_sli", (*labels, slo["indicator"]), slo["sli"])
        out.add("steward_slo_objective", labels, slo["objective"])
        out.add("steward_slo_budget_remaining_ratio", labels, slo["budget_remaining"])
        out.add("steward_slo_events", labels, slo["n_events"])
        for window, rate in slo["burn_rates"].items():
            out.add("steward_slo_burn_rate", (*labels, window), rate)
        for state in sorted({*_MONITOR_STATES, slo["status"]}):
            out.add("steward_slo_status", (*labels, state), state == slo["status"])
        out.add("steward_slo_evaluated_timestamp_seconds", labels, slo["at"].timestamp())


def _alerts(out: _Families, names: Mapping[int, str], snapshot: _Snapshot) -> None:
    counts = {
        (system, severity, state): 0
        for system in names.values()
        for severity in _SEVERITIES
        for state in _OPEN_STATES
    }
    for system_id, rule, severity, state in snapshot.alerts:
        system = names.get(system_id)
        if system is None:
            continue
        counts[(system, severity, state)] = counts.get((system, severity, state), 0) + 1
        out.add("steward_alert_open", (system, rule, severity, state), 1)
    for labels, count in counts.items():
        out.add("steward_alerts_open", labels, count)


def _governance(out: _Families, names: Mapping[int, str], snapshot: _Snapshot) -> None:
    suspended = {system_id: (mode, at) for system_id, mode, at in snapshot.suspensions}
    for system_id, system in names.items():
        out.add("steward_suspended", (system,), system_id in suspended)
        if system_id in suspended:
            mode, started = suspended[system_id]
            out.add(
                "steward_suspension_started_timestamp_seconds", (system, mode), started.timestamp()
            )
    for system_id, alias, version in snapshot.aliases:
        if system_id in names:
            out.add("steward_alias_version", (names[system_id], alias), version)


def _health_families(snapshot: _Snapshot) -> list[Metric]:
    """The gauges of one read of the store."""
    out = _Families()
    names = {system_id: name for system_id, (name, _, _) in snapshot.systems.items()}
    out.add("steward_health_up", (), 1)
    for name, task, risk_tier in snapshot.systems.values():
        out.add("steward_system_info", (name, task, risk_tier), 1)
    _results(out, names, snapshot.results)
    _slos(out, names, snapshot.slos)
    _alerts(out, names, snapshot)
    _governance(out, names, snapshot)
    return list(out.families.values())


# --- the collector -----------------------------------------------------------------------------


class HealthCollector(Collector):
    """Reads the workspace's store when scraped, at most once every ``ttl`` seconds.

    A store that cannot be read (the database down) gives ``steward_health_up 0`` and no other
    health metric, never a failed scrape: the process's own metrics still go out.
    """

    def __init__(self, workspace: Workspace, *, ttl: float = HEALTH_TTL) -> None:
        if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not ttl >= 0:
            raise InvalidInputError(f"ttl must be a number of seconds >= 0, got {ttl!r}")
        self.workspace = workspace
        self.ttl = float(ttl)
        self._lock = threading.Lock()
        self._cached: tuple[float, list[Metric]] | None = None

    def describe(self) -> list[Metric]:
        """Nothing: registering must not read the store (the registry would call ``collect``)."""
        return []

    def collect(self) -> Iterator[Metric]:
        """The gauges, read anew when the last read is older than ``ttl`` seconds."""
        with self._lock:  # one reader at a time; the others get its result
            now = time.monotonic()
            if self._cached is None or now - self._cached[0] >= self.ttl:
                self._cached = (now, self._read())
            families = self._cached[1]
        yield from families

    def _read(self) -> list[Metric]:
        try:
            with self.workspace.store.read() as session:
                snapshot = _read(session)
        except (SQLAlchemyError, StewardError, OSError) as error:
            logger.warning("model-health metrics: cannot read the store: %s", error)
            down = GaugeMetricFamily("steward_health_up", HEALTH_METRICS["steward_health_up"][0])
            down.add_metric([], 0.0)
            return [down]
        return _health_families(snapshot)
