"""``steward report SYSTEM --week``: the weekly report as one self-contained HTML file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import click

from steward.cli.main import console, get_steward
from steward.errors import InvalidInputError
from steward.render.weekly import weekly_report

__all__ = ["report"]


def _moment(text: str | None) -> datetime | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInputError(
            f"--at {text!r} is not a date or time; write e.g. 2026-03-09 or 2026-03-09T08:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@click.command()
@click.argument("system")
@click.option(
    "--week",
    "period",
    flag_value="week",
    default="week",
    help="Report on a week (the default and only period).",
)
@click.option(
    "--at",
    "at",
    default=None,
    help="End of the reported week (ISO date or time, UTC); default now.",
)
@click.option(
    "--output",
    "output",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Where to write the HTML; default report-<system>-<week>.html here.",
)
@click.pass_context
def report(
    ctx: click.Context, system: str, period: str, at: str | None, output: Path | None
) -> None:
    """Write SYSTEM's weekly report: performance and impact against the weeks before, drift,
    alerts, actions, alias moves and pending reviews, as one HTML file fit to mail."""
    steward = get_steward(ctx)
    events = steward.events
    built = weekly_report(steward, events, system, at=_moment(at))
    path = built.write(output or Path(f"report-{system}-{built.label}.html"))
    console.print(f"wrote {path} ({system}, week {built.label})")
