"""``steward loop tick``: one tick of the whole loop, for cron.

A tick runs every system's monitors, evaluates and stores its SLOs, syncs alerts, notifies their
channels and runs the playbooks of what fired (``steward.loop.tick``); ``steward serve`` runs one
every ``loop_interval`` seconds. :func:`run_tick` and :func:`print_tick` are shared with
``steward monitor run``, which runs the whole tick too in this release.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime, timedelta

import click
from rich.table import Table

from steward.cli.main import console, error_console, get_steward, parse_time
from steward.loop.tick import TickReport, tick
from steward.monitoring.result import MonitorResult
from steward.workspace import Workspace

__all__ = ["checks_table", "loop_group", "loop_tick", "print_tick", "print_warnings", "run_tick"]


@click.group("loop")
def loop_group() -> None:
    """The loop: monitors, SLOs, alerts, notifications and playbooks, one tick at a time."""


@loop_group.command("tick")
@click.argument("system", required=False)
@click.option("--at", "at_text", help="The tick's time, ISO 8601 (default: now).")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def loop_tick(
    ctx: click.Context, system: str | None, at_text: str | None, output_format: str
) -> None:
    """Run one tick of the whole loop over SYSTEM (default: every system); exit 1 on a breach.

    For cron: the tick runs every monitor (due or not) over the system's monitors.window,
    evaluates and stores the SLOs, fires and resolves alerts, notifies their channels and runs the
    playbooks of what fired. --format json prints the whole tick report.
    """
    steward = get_steward(ctx)
    report = run_tick(steward, system, parse_time(at_text) if at_text else None)
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print_tick(report)
    print_warnings(report.errors)
    if report.breach:
        sys.exit(1)


def run_tick(
    steward: Workspace,
    system: str | None,
    at: datetime | None,
    window: timedelta | None = None,
) -> TickReport:
    """One tick at ``at`` (default: now) over ``system`` (default: every system), monitors forced.

    ``window`` overrides each system's ``monitors.window``. An unknown ``system`` raises a
    ``StewardError`` (one clear line) rather than failing inside the tick.
    """
    names = [system] if system else None
    if system:
        steward.system(system)
    return tick(steward, steward.events, at, names, window=window, force_monitors=True)


def checks_table(results: Sequence[MonitorResult]) -> Table:
    """Monitor results (and SLO evaluations shaped as them) as one table, breaches in red."""
    table = Table("system", "monitor", "window (UTC)", "status", "summary")
    for result in results:
        style = {"breach": "bold red", "ok": "green"}.get(result.status, "yellow")
        table.add_row(
            result.system,
            result.monitor,
            f"{result.window_start:%Y-%m-%d %H:%M} to {result.window_end:%Y-%m-%d %H:%M}",
            f"[{style}]{result.status}[/]",
            result.summary,
        )
    return table


def print_tick(report: TickReport) -> None:
    """The tick's checks as a table, then one line per alert fired or resolved and per action."""
    console.print(checks_table(report.checks()))
    for alert in report.fired:
        console.print(f"[bold red]fired[/]    alert {alert.id} ({alert.severity}) {alert.rule}")
    for alert in report.resolved:
        console.print(f"[green]resolved[/] alert {alert.id} {alert.rule}")
    for action in report.actions:
        console.print(
            f"action   {getattr(action, 'kind', action)}: {getattr(action, 'status', '')}"
        )


def print_warnings(problems: Sequence[str]) -> None:
    """Each problem a system had during the run, as a warning on stderr."""
    for problem in problems:
        error_console.print(f"[yellow]warning:[/] {problem}", markup=True)
