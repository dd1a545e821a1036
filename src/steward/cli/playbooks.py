"""``steward actions``, ``retrain``, ``compare``, ``promote`` and ``approvals``: the loop that acts.

``actions`` lists what playbooks (and people) did on a system. ``retrain`` and ``promote --if-better``
run a playbook step by hand, recorded like any other action. ``compare`` prints the champion and
challenger comparison without acting on it. ``approvals`` lists, approves and rejects the promotions
that wait for a person. The library side is ``steward.loop.playbooks`` and ``steward.loop.promotion``.
"""

from __future__ import annotations

import json
import sys

import click
from rich.table import Table

from steward.cli.main import console, get_steward
from steward.errors import InvalidInputError
from steward.loop import playbooks, promotion

__all__ = [
    "actions_command",
    "approvals_group",
    "compare_command",
    "promote_command",
    "retrain_command",
]

_STYLES = {"done": "green", "failed": "bold red", "skipped": "yellow", "pending_approval": "cyan"}


def _print_action(action: playbooks.Action) -> None:
    style = _STYLES.get(action.status, "white")
    console.print(f"{action.kind} [{style}]{action.status}[/]: {action.reason}", soft_wrap=True)
    if action.status == "failed":
        sys.exit(1)


@click.command("actions")
@click.argument("system")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def actions_command(ctx: click.Context, system: str, limit: int, output_format: str) -> None:
    """What playbooks and people did on SYSTEM, newest first, and why."""
    actions = playbooks.list_actions(get_steward(ctx), system, limit)
    if output_format == "json":
        click.echo(json.dumps([action.to_dict() for action in actions], indent=2, default=str))
        return
    if not actions:
        console.print(f"no actions taken on {system} yet")
        return
    table = Table("id", "when (UTC)", "step", "status", "by", "alert", "reason")
    for action in actions:
        style = _STYLES.get(action.status, "white")
        table.add_row(
            str(action.id),
            f"{action.created_at:%Y-%m-%d %H:%M:%S}",
            action.kind,
            f"[{style}]{action.status}[/]",
            action.actor,
            "–" if action.alert_id is None else f"#{action.alert_id}",
            action.reason,
        )
    console.print(table)


@click.command("retrain")
@click.argument("system")
@click.pass_context
def retrain_command(ctx: click.Context, system: str) -> None:
    """Run SYSTEM's retrain command on its recent labeled traffic; register the model as challenger.

    Exits 1 when the command fails, times out or writes nothing.
    """
    steward = get_steward(ctx)
    events = steward.events
    action = playbooks.run_step(steward, events, system, "retrain")
    _print_action(action)


@click.command("compare")
@click.argument("system")
@click.option("--challenger", default="challenger", show_default=True, help="Version or alias.")
@click.option("--champion", default="champion", show_default=True, help="Version or alias.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def compare_command(
    ctx: click.Context, system: str, challenger: str, champion: str, output_format: str
) -> None:
    """Compare two versions of SYSTEM by ROC AUC on the golden set and on shadow traffic."""
    steward = get_steward(ctx)
    events = steward.events
    comparison = promotion.compare_models(steward, events, system, challenger, champion)
    if output_format == "json":
        click.echo(json.dumps(promotion.json_safe(comparison.to_dict()), indent=2))
        return
    table = Table(
        "source", "rows", "positives", "challenger AUC", "champion AUC", "diff", "p", "counts"
    )
    for source in comparison.sources:
        test = source.test
        table.add_row(
            source.source,
            str(source.n),
            str(source.n_positive),
            "–" if test is None else f"{test.auc_b:.4f}",
            "–" if test is None else f"{test.auc_a:.4f}",
            "–" if test is None else f"{test.difference:+.4f}",
            "–" if test is None else f"{test.p_value:.4g}",
            "yes" if source.enough_data else "no: " + source.note,
        )
    console.print(table)
    verdict = "[green]better[/]" if comparison.better else "[yellow]not better[/]"
    console.print(
        f"challenger v{comparison.challenger} vs champion v{comparison.champion}: {verdict} "
        f"(needs ROC AUC +{comparison.min_margin:g} and p < {comparison.alpha:g} on every source "
        "with enough data)"
    )


@click.command("promote")
@click.argument("system")
@click.option(
    "--if-better",
    is_flag=True,
    help="Promote the challenger only if the comparison shows it better (required).",
)
@click.pass_context
def promote_command(ctx: click.Context, system: str, if_better: bool) -> None:
    """Promote SYSTEM's challenger to champion if it is better; high-risk systems ask a person."""
    if not if_better:
        raise InvalidInputError(
            "steward promote only promotes --if-better; to move champion unconditionally, run "
            f"`steward models alias {system} champion VERSION`"
        )
    steward = get_steward(ctx)
    events = steward.events
    action = playbooks.run_step(steward, events, system, "promote_if_better")
    _print_action(action)


@click.group("approvals")
def approvals_group() -> None:
    """Changes that wait for a person: promotions on high-risk systems."""


@approvals_group.command("list")
@click.option("--system", help="Only this system.")
@click.option(
    "--state",
    type=click.Choice([*promotion.APPROVAL_STATES, "all"]),
    default="pending",
    show_default=True,
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def approvals_list(ctx: click.Context, system: str | None, state: str, output_format: str) -> None:
    """Approvals, newest first."""
    approvals = promotion.list_approvals(get_steward(ctx), system, state)
    if output_format == "json":
        click.echo(json.dumps([item.to_dict() for item in approvals], indent=2, default=str))
        return
    if not approvals:
        console.print(f"no {'' if state == 'all' else state + ' '}approvals")
        return
    table = Table("id", "system", "state", "promote", "requested (UTC)", "by", "decided by", "why")
    for item in approvals:
        table.add_row(
            str(item.id),
            item.system,
            item.state,
            f"v{item.subject.get('champion')} -> v{item.subject.get('challenger')}",
            f"{item.requested_at:%Y-%m-%d %H:%M}",
            item.requested_by,
            item.decided_by or "–",
            item.reason,
        )
    console.print(table)


@approvals_group.command("approve")
@click.argument("approval_id", type=int)
@click.option("--note", default="", help="Why, for the record.")
@click.pass_context
def approvals_approve(ctx: click.Context, approval_id: int, note: str) -> None:
    """Approve APPROVAL_ID: the challenger becomes champion."""
    steward = get_steward(ctx)
    item = promotion.approve(steward, approval_id, steward.actor, note)
    console.print(
        f"approval #{item.id} approved: {item.system} champion "
        f"v{item.subject.get('champion')} -> v{item.subject.get('challenger')}"
    )


@approvals_group.command("reject")
@click.argument("approval_id", type=int)
@click.option("--note", default="", help="Why, for the record.")
@click.pass_context
def approvals_reject(ctx: click.Context, approval_id: int, note: str) -> None:
    """Reject APPROVAL_ID: the champion stays."""
    steward = get_steward(ctx)
    item = promotion.reject(steward, approval_id, steward.actor, note)
    console.print(
        f"approval #{item.id} rejected: {item.system} keeps champion v{item.subject.get('champion')}"
    )
