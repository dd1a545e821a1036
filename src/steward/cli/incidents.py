"""``steward incidents``: declare, follow and close incidents, with the EU AI Act's clock."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from steward.cli.main import console, get_steward

__all__ = ["incidents_group"]


@click.group("incidents")
def incidents_group() -> None:
    """Incidents: an alert or a finding declared, its Art. 73 clock, what was done, its cause."""


@incidents_group.command("declare")
@click.argument("system")
@click.argument("title")
@click.option(
    "--kind",
    type=click.Choice(["serious", "death", "widespread", "other"]),
    default="serious",
    show_default=True,
    help="Sets the clock: serious 15 days, death 10, widespread 2, other none (Art. 73).",
)
@click.option(
    "--severity",
    type=click.Choice(["critical", "major", "minor"]),
    default="major",
    show_default=True,
)
@click.option("--alert", "alert_id", type=int, help="The alert this incident comes from.")
@click.pass_context
def declare(
    ctx: click.Context, system: str, title: str, kind: str, severity: str, alert_id: int | None
) -> None:
    """Declare an incident on SYSTEM, titled TITLE; its clock starts now."""
    from steward.governance.incidents import declare_incident

    incident = declare_incident(
        get_steward(ctx), system, title, kind=kind, severity=severity, alert_id=alert_id
    )
    console.print(f"incident #{incident.id} declared on {system} ({kind}): {incident.clock()}")


@incidents_group.command("list")
@click.argument("system")
@click.option("--state", type=click.Choice(["open", "closed"]))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def list_command(ctx: click.Context, system: str, state: str | None, output_format: str) -> None:
    """SYSTEM's incidents, newest first, with the time left to report each."""
    from steward.governance.incidents import list_incidents

    incidents = list_incidents(get_steward(ctx), system, state=state)
    if output_format == "json":
        rows = [{**i.__dict__, "clock": i.clock()} for i in incidents]
        click.echo(json.dumps(rows, indent=2, default=str))
        return
    table = Table("id", "declared", "kind", "severity", "state", "clock", "title")
    for i in incidents:
        table.add_row(
            str(i.id), f"{i.declared_at:%Y-%m-%d %H:%M}", i.kind, i.severity, i.state, i.clock(),
            escape(i.title),
        )  # fmt: skip
    console.print(table)


@incidents_group.command("show")
@click.argument("incident_id", type=int)
@click.pass_context
def show(ctx: click.Context, incident_id: int) -> None:
    """One incident: its clock, actions, cause, and its timeline from the audit tree."""
    from steward.governance.incidents import get_incident, timeline

    steward = get_steward(ctx)
    incident = get_incident(steward, incident_id)
    console.print(
        f"incident #{incident.id} on {incident.system}: {escape(incident.title)}\n"
        f"{incident.kind}, {incident.severity}, {incident.state}; {incident.clock()}"
    )
    for entry in timeline(steward, incident_id):
        console.print(
            f"  {entry['at']:%Y-%m-%d %H:%M} #{entry['id']} {entry['actor']}: {entry['action']} "
            f"{escape(json.dumps(entry['details'], default=str)[:160])}"
        )
    if incident.cause:
        console.print(f"cause: {escape(incident.cause)}")


@incidents_group.command("action")
@click.argument("incident_id", type=int)
@click.argument("text")
@click.pass_context
def action(ctx: click.Context, incident_id: int, text: str) -> None:
    """Record TEXT, what was done, on an open incident."""
    from steward.governance.incidents import add_action

    incident = add_action(get_steward(ctx), incident_id, text)
    console.print(f"incident #{incident.id}: {len(incident.actions)} actions; {incident.clock()}")


@incidents_group.command("close")
@click.argument("incident_id", type=int)
@click.option("--cause", required=True, help="What caused it, in a sentence or more.")
@click.pass_context
def close(ctx: click.Context, incident_id: int, cause: str) -> None:
    """Close an incident, with its written cause."""
    from steward.governance.incidents import close_incident

    incident = close_incident(get_steward(ctx), incident_id, cause=cause)
    console.print(f"incident #{incident.id} closed by {incident.closed_by}")
