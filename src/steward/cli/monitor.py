"""``steward monitor run`` and ``steward monitor history``: the monitors and their stored results.

In this release ``monitor run`` runs the whole tick of the loop, as ``steward loop tick`` does;
``--monitors-only`` runs only the monitors, which is what ``monitor run`` will do from the next one.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta

import click
from rich.table import Table

from steward.cli.loop import checks_table, print_tick, print_warnings, run_tick
from steward.cli.main import console, get_steward, parse_time
from steward.errors import StewardError
from steward.monitoring.result import MonitorResult
from steward.workspace import Workspace

__all__ = ["monitor", "monitor_history_command", "monitor_run", "run_monitors_only"]


@click.group()
def monitor() -> None:
    """Run the monitors over a window of the prediction log, and read their stored results."""


@monitor.command("run")
@click.option("--system", help="Only this system (default: every system).")
@click.option(
    "--window", help="e.g. 24h, 7d, 2w (default: the system's monitors.window, 7d unless declared)."
)
@click.option("--at", "at_text", help="End of the window, ISO 8601 (default: now).")
@click.option(
    "--monitors-only",
    is_flag=True,
    help="Run and store the monitors only: no SLOs, alerts, notifications or playbooks.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def monitor_run(
    ctx: click.Context,
    system: str | None,
    window: str | None,
    at_text: str | None,
    monitors_only: bool,
    output_format: str,
) -> None:
    """Run one tick of the loop: monitors, SLOs, alerts, notifications, playbooks; exit 1 on a breach.

    Runs the whole loop for this release, as `steward loop tick` does; from the next release it runs
    the monitors only (that is --monitors-only today).
    """
    from steward._util.times import parse_window

    steward = get_steward(ctx)
    at = parse_time(at_text) if at_text else None
    span = parse_window(window) if window else None
    if monitors_only:
        results, problems = run_monitors_only(steward, system, at, span)
        breach = any(result.breach for result in results)
        if output_format == "text":
            console.print(checks_table(results))
    else:
        report = run_tick(steward, system, at, span)
        results, problems, breach = report.checks(), report.errors, report.breach
        if output_format == "text":
            print_tick(report)
    if output_format == "json":
        click.echo(json.dumps([result.to_dict() for result in results], indent=2, default=str))
    print_warnings(problems)
    if breach:
        sys.exit(1)


def run_monitors_only(
    steward: Workspace, system: str | None, at: datetime | None, window: timedelta | None
) -> tuple[list[MonitorResult], list[str]]:
    """Run and store the monitors of ``system`` (default: every system) over the window ending at
    ``at`` (default: now); return the results and, per system that failed, one problem line.

    ``window`` overrides each system's ``monitors.window``. Nothing else of the loop runs: no SLO,
    alert, notification or playbook.
    """
    from steward._util.times import parse_window
    from steward.monitoring.runner import run_monitors

    end = at or datetime.now(UTC)
    names = [system] if system else [info.name for info in steward.systems()]
    results: list[MonitorResult] = []
    problems: list[str] = []
    for name in names:
        declared = steward.system(name).declared  # an unknown --system is one clear line
        span = window or parse_window(declared.monitors.window)
        try:
            results += run_monitors(steward, steward.events, name, window=span, at=end)
        except StewardError as error:  # one system's problem must not stop the others
            problems.append(f"{name}: {error}")
    return results, problems


@monitor.command("history")
@click.argument("system")
@click.option("--limit", default=20, show_default=True)
@click.pass_context
def monitor_history_command(ctx: click.Context, system: str, limit: int) -> None:
    """Stored monitor results and SLO evaluations (``slo:NAME``) of SYSTEM, newest first."""
    from steward.monitoring.runner import monitor_history
    from steward.monitoring.slo import evaluation_history

    steward = get_steward(ctx)
    stored = monitor_history(steward, system, limit) + evaluation_history(steward, system, limit)
    stored.sort(key=lambda result: result.window_end, reverse=True)  # stable: newest stored first
    table = Table("window end (UTC)", "monitor", "status", "summary")
    for result in stored[:limit]:
        table.add_row(
            f"{result.window_end:%Y-%m-%d %H:%M}", result.monitor, result.status, result.summary
        )
    console.print(table)
