"""``steward init``, ``apply``, ``systems list`` and ``settings``: the workspace and its systems."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from steward.cli.main import console, get_steward
from steward.settings import SETTINGS

__all__ = ["apply", "init", "settings_command", "systems", "systems_list"]


@click.command()
@click.pass_context
def init(ctx: click.Context) -> None:
    """Create a commented steward.yaml and the .steward/ store in the workspace."""
    steward = get_steward(ctx, existing=False)
    made = steward.init()
    for path in made:
        console.print(f"created {path}")
    if not made:
        console.print(f"{steward.settings.workspace} is already a Steward workspace")
    console.print("next: edit steward.yaml, then run `steward apply`")


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.pass_context
def apply(ctx: click.Context, file: Path | None) -> None:
    """Load steward.yaml (or FILE) into the store and say what changed."""
    changes = get_steward(ctx).apply(file)
    for change in changes:
        if change.kind == "changed":
            details = ", ".join(
                f"{key}: {old!r} -> {new!r}" for key, (old, new) in change.fields.items()
            )
            console.print(f"[yellow]changed[/]   {change.name}: {escape(details)}", highlight=False)
        elif change.kind == "created":
            console.print(f"[green]created[/]   {change.name}")
        elif change.kind == "not-in-file":
            console.print(f"[dim]kept[/]      {change.name} (in the store, not in the file)")
        else:
            console.print(f"[dim]unchanged[/] {change.name}")
        if change.contract:
            console.print(f"[cyan]contract[/]  {change.name}: {change.contract}")
        for prompt in change.prompts:
            console.print(f"[cyan]prompt[/]    {change.name}: registered {prompt}")


@click.group()
def systems() -> None:
    """The systems Steward looks after."""


@systems.command("list")
@click.pass_context
def systems_list(ctx: click.Context) -> None:
    """List systems with their task, owner and risk tier."""
    table = Table("system", "task", "owner", "risk tier", "intended use")
    for info in get_steward(ctx).systems():
        table.add_row(info.name, info.task, info.owner, info.risk_tier, info.intended_use[:60])
    console.print(table)


@click.command("settings")
@click.pass_context
def settings_command(ctx: click.Context) -> None:
    """Show every setting's value and where it can be set."""
    resolved = get_steward(ctx, existing=False).settings
    table = Table("setting", "value", "environment variable")
    for setting in SETTINGS:
        value = str(getattr(resolved, setting.name))
        if setting.name.endswith("_secret") and value:
            value = "(set, hidden)"
        table.add_row(setting.name, value, setting.env_var)
    console.print(table)
