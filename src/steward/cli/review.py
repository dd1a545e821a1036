"""``steward review``, ``steward suspend`` and ``steward resume``: people in the loop.

``review list`` shows the predictions waiting for a person; ``review approve`` takes the proposed
action, ``review override`` another one. ``suspend`` sends every decision of a system to review (or
gives every record a fallback action) until ``resume``. The library side is ``steward.governance.review``.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from steward.cli.main import console, get_steward
from steward.delivery import suspension as suspensions
from steward.governance import review

__all__ = ["resume_command", "review_group", "suspend_command"]


@click.group("review")
def review_group() -> None:
    """The human review queue: predictions waiting for a person to approve or override."""


@review_group.command("list")
@click.argument("system")
@click.option("--limit", default=100, show_default=True, type=click.IntRange(1, review.MAX_LIMIT))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def review_list(ctx: click.Context, system: str, limit: int, output_format: str) -> None:
    """Pending reviews of SYSTEM, oldest first, with the proposed action and why they wait."""
    steward = get_steward(ctx)
    events = steward.events
    items = review.pending_reviews(steward, events, system, limit=limit)
    if output_format == "json":
        click.echo(json.dumps([item.to_dict() for item in items], indent=2, default=str))
        return
    current = suspensions.current_suspension(steward, system)
    if current is not None:
        console.print(f"[yellow]{system} is {current.describe()}[/]")
    if not items:
        console.print(f"no reviews pending for {system}")
        return
    table = Table("prediction", "time (UTC)", "entity", "score", "version", "proposed", "reason")
    for item in items:
        table.add_row(
            item.id,
            f"{item.event_time:%Y-%m-%d %H:%M:%S}",
            item.entity_key or "–",
            "–" if item.score is None else f"{item.score:.4f}",
            "–" if item.model_version is None else f"v{item.model_version}",
            item.intended_action or "–",
            item.reason,
        )
    console.print(table)


@review_group.command("approve")
@click.argument("system")
@click.argument("prediction_id")
@click.option("--note", default="", help="Why, for the record.")
@click.pass_context
def review_approve(ctx: click.Context, system: str, prediction_id: str, note: str) -> None:
    """Approve the proposed action of PREDICTION_ID."""
    _decide(ctx, system, prediction_id, None, note)


@review_group.command("override")
@click.argument("system")
@click.argument("prediction_id")
@click.argument("action")
@click.option("--note", default="", help="Why, for the record.")
@click.pass_context
def review_override(
    ctx: click.Context, system: str, prediction_id: str, action: str, note: str
) -> None:
    """Decide PREDICTION_ID with ACTION instead of the proposed action."""
    _decide(ctx, system, prediction_id, action, note)


def _decide(
    ctx: click.Context, system: str, prediction_id: str, action: str | None, note: str
) -> None:
    steward = get_steward(ctx)
    events = steward.events
    decision = review.decide_review(
        steward, events, system, prediction_id, action=action, note=note
    )
    if decision.overridden:
        console.print(
            f"overrode {system} {prediction_id}: {decision.action!r} instead of "
            f"{decision.proposed_action!r}"
        )
    else:
        console.print(f"approved {system} {prediction_id}: {decision.action!r}")


@click.command("suspend")
@click.argument("system")
@click.option(
    "--mode",
    type=click.Choice(list(suspensions.MODES)),
    default="review",
    show_default=True,
    help="review: every decision to a person; fallback: every record gets --fallback-action.",
)
@click.option("--fallback-action", help="The fixed action of mode fallback.")
@click.option("--reason", required=True, help="Why, for the record and the review queue.")
@click.pass_context
def suspend_command(
    ctx: click.Context, system: str, mode: str, fallback_action: str | None, reason: str
) -> None:
    """Suspend SYSTEM's automation; the server follows within a second."""
    suspensions.check_surface_request(mode, fallback_action)
    suspension = suspensions.suspend(
        get_steward(ctx), system, mode=mode, fallback_action=fallback_action, reason=reason
    )
    console.print(f"{system} is {suspension.describe()}")


@click.command("resume")
@click.argument("system")
@click.option("--reason", default="", help="Why, for the record.")
@click.pass_context
def resume_command(ctx: click.Context, system: str, reason: str) -> None:
    """End SYSTEM's suspension: decisions go back to its policy."""
    ended = suspensions.resume(get_steward(ctx), system, reason=reason)
    console.print(
        f"resumed {system}: automation back on after the suspension since "
        f"{ended.started_at:%Y-%m-%d %H:%M:%S} UTC"
    )
