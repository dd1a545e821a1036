"""``steward alerts`` (list, ack, resolve) and ``steward slo status``."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import click
from rich.table import Table

from steward.cli.main import console, get_steward, parse_time

if TYPE_CHECKING:
    from steward.monitoring.slo import SLOStatus

__all__ = ["alerts_group", "slo_group"]

_STATE_STYLE = {"firing": "bold red", "acknowledged": "yellow", "resolved": "green"}


@click.group("alerts")
def alerts_group() -> None:
    """Alerts raised by monitors and SLOs, and their notifications."""


@alerts_group.command("list")
@click.option("--system", help="Only this system.")
@click.option(
    "--state",
    type=click.Choice(["firing", "acknowledged", "resolved", "open"]),
    help="Only alerts in this state (open: firing or acknowledged).",
)
@click.option("--limit", default=50, show_default=True)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def alerts_list(
    ctx: click.Context, system: str | None, state: str | None, limit: int, output_format: str
) -> None:
    """Alerts, newest first, with whether their notifications got through."""
    from steward.loop.alerts import list_alerts
    from steward.loop.notify import list_notifications

    steward = get_steward(ctx)
    alerts = list_alerts(steward, system=system, state=state, limit=limit)
    notifications = list_notifications(steward, alert_ids=[alert.id for alert in alerts])
    by_alert: dict[int, list[dict[str, object]]] = {}
    for item in notifications:
        by_alert.setdefault(item.alert_id, []).append(item.to_dict())
    if output_format == "json":
        rows = [
            {**alert.to_dict(), "notifications": by_alert.get(alert.id, [])} for alert in alerts
        ]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table("id", "system", "rule", "severity", "state", "fired (UTC)", "notified", "summary")
    for alert in alerts:
        style = _STATE_STYLE.get(alert.state, "")
        table.add_row(
            str(alert.id),
            alert.system,
            alert.rule,
            alert.severity,
            f"[{style}]{alert.state}[/]",
            f"{alert.fired_at:%Y-%m-%d %H:%M}",
            _notified(by_alert.get(alert.id, [])),
            alert.summary,
        )
    console.print(table)


def _notified(items: list[dict[str, object]]) -> str:
    """``webhook ok, email FAILED (3 attempts: ...)`` for the newest notification per channel."""
    newest: dict[tuple[str, str], dict[str, object]] = {}
    for item in items:  # newest first
        newest.setdefault((str(item["channel"]), str(item["event"])), item)
    parts = []
    for (channel, event), item in newest.items():
        if channel == "log":
            continue
        if item["status"] == "delivered":
            parts.append(f"{channel} {event}: ok")
        else:
            parts.append(
                f"{channel} {event}: FAILED after {item['attempts']} attempt(s): "
                f"{str(item['last_error'])[:80]}"
            )
    return "; ".join(parts) or "log only"


@alerts_group.command("ack")
@click.argument("alert_id", type=int)
@click.pass_context
def alerts_ack(ctx: click.Context, alert_id: int) -> None:
    """Acknowledge alert ALERT_ID: someone is on it (it stays open until it resolves)."""
    from steward.loop.alerts import acknowledge

    steward = get_steward(ctx)
    alert = acknowledge(steward, alert_id, steward.actor)
    console.print(f"acknowledged alert {alert.id} ({alert.system} {alert.rule}) as {steward.actor}")


@alerts_group.command("resolve")
@click.argument("alert_id", type=int)
@click.option("--note", default="", help="Why it is resolved, for the record.")
@click.pass_context
def alerts_resolve(ctx: click.Context, alert_id: int, note: str) -> None:
    """Resolve alert ALERT_ID by hand (if its rule still breaches, the next tick opens a new one)."""
    from steward.loop.alerts import resolve

    steward = get_steward(ctx)
    alert = resolve(steward, alert_id, steward.actor, note)
    console.print(f"resolved alert {alert.id} ({alert.system} {alert.rule}) as {steward.actor}")


@click.group("slo")
def slo_group() -> None:
    """Service level objectives: SLI, error budget and burn rates."""


def _objective(status: SLOStatus) -> str:
    if status.objective is None:  # daily_cost: a budget in dollars a day
        return f"${status.threshold or 0:,.2f}/day / {status.window}"
    return f"{status.objective:.4%} / {status.window}"


def _sli(status: SLOStatus) -> str:
    if status.sli is None:
        return "–"
    return f"${status.sli:,.2f}/day" if status.objective is None else f"{status.sli:.4%}"


@slo_group.command("status")
@click.argument("system")
@click.option("--at", "at_text", help="Evaluate at this time, ISO 8601 (default: now).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def slo_status(ctx: click.Context, system: str, at_text: str | None, output_format: str) -> None:
    """Evaluate every SLO of SYSTEM now (without storing it) and show budget and burn rates."""
    from steward.monitoring.slo import evaluate_all

    steward = get_steward(ctx)
    steward.system(system)
    at = parse_time(at_text) if at_text else None
    events = steward.events
    statuses = evaluate_all(steward, events, system, at, store=False)
    if output_format == "json":
        click.echo(json.dumps([status.to_dict() for status in statuses], indent=2, default=str))
        return
    if not statuses:
        console.print(f"{system} declares no SLOs; add them under slos: in steward.yaml")
        return
    table = Table("slo", "indicator", "objective", "SLI", "budget left", "burn rates", "status")
    for status in statuses:
        style = {"alerting": "bold red", "ok": "green"}.get(status.status, "yellow")
        burns = ", ".join(
            f"{label} {'–' if burn is None else f'{burn:.2f}x'}"
            for label, burn in status.burn_rates.items()
        )
        table.add_row(
            status.name,
            status.indicator,
            _objective(status),
            _sli(status),
            "–" if status.budget_remaining is None else f"{status.budget_remaining:.1%}",
            burns,
            f"[{style}]{status.status}[/]" + (f" ({status.severity})" if status.severity else ""),
        )
    console.print(table)
    for status in statuses:
        if status.reason:
            console.print(f"{status.name}: {status.reason}")
