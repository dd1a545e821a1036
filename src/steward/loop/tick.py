"""The loop: monitors when due, then SLOs, alerts, notifications and playbooks, once per tick.

``tick(steward, events, now=None, systems=None)`` does, for each system:

1. run the monitors when they are due (no stored result in the last ``monitors.every``), over
   ``monitors.window`` ending at ``now``;
2. evaluate every SLO and store each evaluation (``steward.store.SLOEvaluationRow``);
3. sync alerts: a monitor breach becomes rule ``monitor:NAME`` (severity ``ticket``), a firing
   burn-rate pair becomes ``slo:NAME`` (the pair's severity); a rule checked this tick that no
   longer breaches resolves its alert;
4. notify the system's channels of what fired and what resolved, one message per group;
5. run the playbooks (``steward.loop.playbooks.respond``) for each newly fired alert.

A failure in one system is logged and reported, and the tick goes on with the next. ``steward monitor
run`` runs one tick (for cron); ``steward serve`` runs one every ``loop_interval`` seconds on a
background thread (``steward.loop.scheduler.Scheduler``).

Example::

    report = tick(steward, events, now=datetime(2026, 3, 3, tzinfo=UTC))
    [alert.rule for alert in report.fired]  # ['slo:fast-answers']
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from steward._util.times import parse_window
from steward.data.events import EventLog
from steward.loop.alerts import Alert, Breach, surface_of, sync_alerts
from steward.loop.notify import Delivery, notify
from steward.loop.playbooks import respond
from steward.model.registry import find_system
from steward.monitoring.result import MonitorResult
from steward.monitoring.runner import run_monitors
from steward.monitoring.slo import SLOStatus, evaluate_all
from steward.store import MonitorResultRow, utcnow
from steward.workspace import Workspace
from steward.workspace.config import SystemConfig

__all__ = ["SystemTick", "TickReport", "monitors_due", "tick"]

logger = logging.getLogger(__name__)


@dataclass
class SystemTick:
    """What one tick did for one system."""

    system: str
    monitors_ran: bool = False
    monitor_results: list[MonitorResult] = field(default_factory=list)
    slos: list[SLOStatus] = field(default_factory=list)
    fired: list[Alert] = field(default_factory=list)
    still_firing: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    actions: list[Any] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def breach(self) -> bool:
        """A monitor breached or an SLO burn-rate alert fires."""
        return any(result.breach for result in self.monitor_results) or any(
            status.status == "alerting" for status in self.slos
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "monitors_ran": self.monitors_ran,
            "monitor_results": [result.to_dict() for result in self.monitor_results],
            "slos": [status.to_dict() for status in self.slos],
            "fired": [alert.to_dict() for alert in self.fired],
            "still_firing": [alert.to_dict() for alert in self.still_firing],
            "resolved": [alert.to_dict() for alert in self.resolved],
            "deliveries": [delivery.__dict__ for delivery in self.deliveries],
            "actions": [_plain(action) for action in self.actions],
            "errors": self.errors,
        }


@dataclass
class TickReport:
    """What one tick ran, what fired, what resolved and what the playbooks did."""

    at: datetime
    systems: list[SystemTick] = field(default_factory=list)

    @property
    def breach(self) -> bool:
        return any(system.breach for system in self.systems)

    @property
    def fired(self) -> list[Alert]:
        return [alert for system in self.systems for alert in system.fired]

    @property
    def resolved(self) -> list[Alert]:
        return [alert for system in self.systems for alert in system.resolved]

    @property
    def monitor_results(self) -> list[MonitorResult]:
        return [result for system in self.systems for result in system.monitor_results]

    @property
    def errors(self) -> list[str]:
        return [f"{system.system}: {error}" for system in self.systems for error in system.errors]

    @property
    def actions(self) -> list[Any]:
        return [action for system in self.systems for action in system.actions]

    def checks(self) -> list[MonitorResult]:
        """Monitor results, then each SLO evaluation shaped as one (monitor ``slo:NAME``).

        Only the report is shaped so (``steward loop tick`` prints it); the store keeps SLO
        evaluations in their own table.
        """
        checks = list(self.monitor_results)
        for system in self.systems:
            for status in system.slos:
                checks.append(
                    MonitorResult(
                        status.system,
                        f"slo:{status.name}",
                        status.at - parse_window(status.window),
                        status.at,
                        "breach" if status.status == "alerting" else status.status,
                        status.summary,
                        status.to_dict(),
                    )
                )
        return checks

    def to_dict(self) -> dict[str, Any]:
        return {"at": self.at.isoformat(), "systems": [s.to_dict() for s in self.systems]}


def _plain(action: Any) -> Any:
    to_dict = getattr(action, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return getattr(action, "__dict__", str(action))


def monitors_due(steward: Workspace, system: str, every: timedelta, now: datetime) -> bool:
    """No monitor result of ``system`` ends within ``every`` before ``now``.

    SLO evaluations are stored apart (``SLOEvaluationRow``): they never make the monitors look run.
    """
    with steward.store.read() as session:
        system_id = find_system(session, system).id
        recent = session.scalars(
            select(MonitorResultRow.id)
            .where(
                MonitorResultRow.system_id == system_id,
                MonitorResultRow.window_end > now - every,
                MonitorResultRow.window_end <= now,
            )
            .limit(1)
        ).first()
    return recent is None


def tick(
    steward: Workspace,
    events: EventLog,
    now: datetime | None = None,
    systems: Sequence[str] | None = None,
    *,
    window: timedelta | None = None,
    force_monitors: bool = False,
    notify_backoff: float = 1.0,
) -> TickReport:
    """Run the loop once at ``now`` over ``systems`` (default: every system).

    ``window`` overrides each system's ``monitors.window``; ``force_monitors`` runs the monitors
    whether due or not (``steward loop tick`` does, for cron).
    """
    at = now or utcnow()
    names = list(systems) if systems is not None else [info.name for info in steward.systems()]
    report = TickReport(at)
    for name in names:
        done = SystemTick(name)
        report.systems.append(done)
        try:
            _tick_system(steward, events, name, at, done, window, force_monitors, notify_backoff)
        except Exception as error:  # one system's failure must not stop the others
            logger.exception("the loop failed on system %s", name)
            done.errors.append(f"{type(error).__name__}: {error}")
    return report


def _tick_system(
    steward: Workspace,
    events: EventLog,
    system: str,
    at: datetime,
    done: SystemTick,
    window: timedelta | None,
    force_monitors: bool,
    backoff: float,
) -> None:
    declared = steward.system(system).declared
    breaches, checked = [], set()
    if force_monitors or monitors_due(steward, system, parse_window(declared.monitors.every), at):
        span = window or parse_window(declared.monitors.window)
        done.monitor_results = run_monitors(steward, events, system, window=span, at=at)
        done.monitors_ran = True
        for result in done.monitor_results:
            rule = f"monitor:{result.monitor}"
            if result.status in ("ok", "breach"):
                checked.add(rule)
            if result.breach:
                breaches.append(Breach(rule, "ticket", result.summary, result.to_dict()))
    done.slos = evaluate_all(steward, events, system, at)
    for status in done.slos:
        rule = f"slo:{status.name}"
        if status.status in ("ok", "alerting"):
            checked.add(rule)
        if status.status == "error":
            done.errors.append(status.reason)
        if status.status == "alerting":
            details = {"burn_rates": status.burn_rates, "indicator": status.indicator}
            breaches.append(
                Breach(
                    rule,
                    status.severity or "ticket",
                    status.summary,
                    details,
                    surface=surface_of(status.indicator),
                )
            )
    changes = sync_alerts(steward, system, breaches, at, checked=checked)
    done.fired, done.still_firing, done.resolved = (
        changes.fired,
        changes.still_firing,
        changes.resolved,
    )
    done.deliveries += notify(steward, system, "fired", changes.fired, backoff=backoff)
    done.deliveries += notify(steward, system, "resolved", changes.resolved, backoff=backoff)
    for alert in changes.fired:
        _respond(steward, events, declared, alert, done)


def _respond(
    steward: Workspace, events: EventLog, declared: SystemConfig, alert: Alert, done: SystemTick
) -> None:
    if not declared.playbooks:
        return
    try:
        done.actions += list(respond(steward, events, alert))
    except Exception as error:  # a failing playbook is reported; the loop goes on
        logger.exception("playbooks failed on alert %s of %s", alert.id, alert.system)
        done.errors.append(f"playbooks on alert {alert.id}: {type(error).__name__}: {error}")
