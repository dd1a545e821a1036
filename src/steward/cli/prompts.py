"""``steward prompts``: list, show, diff, label, history and push the prompts of ``llm`` systems."""

from __future__ import annotations

import json

import click
from rich.markup import escape
from rich.table import Table

from steward.cli.main import cell, console, get_steward
from steward.llm import prompts
from steward.workspace.config import load_config

__all__ = [
    "prompts_diff",
    "prompts_group",
    "prompts_history",
    "prompts_label",
    "prompts_list",
    "prompts_push",
    "prompts_show",
]


@click.group("prompts")
def prompts_group() -> None:
    """Prompts versioned like code: registered from their files, moved by labels."""


@prompts_group.command("push")
@click.argument("system", required=False)
@click.pass_context
def prompts_push(ctx: click.Context, system: str | None) -> None:
    """Register each prompt file (of SYSTEM, or of every llm system) whose bytes changed."""
    steward = get_steward(ctx)
    config_path = steward.settings.config_path
    config = load_config(config_path)
    for declared in config.systems:
        if system is not None and declared.name != system:
            continue
        pushed = prompts.push_prompts(
            steward.store, declared.name, declared.prompts, config_path.parent, actor=steward.actor
        )
        for item in pushed:
            state = "[green]registered[/]" if item.created else "[dim]unchanged[/] "
            console.print(f"{state} {item.system} {item.prompt} v{item.version} ({item.path})")


@prompts_group.command("list")
@click.argument("system")
@click.pass_context
def prompts_list(ctx: click.Context, system: str) -> None:
    """Each prompt of SYSTEM: its newest version and where its labels point."""
    steward = get_steward(ctx)
    table = Table("prompt", "newest", "labels", "model", "registered", "commit")
    held = prompts.labels_by_prompt(steward.store, system)
    for newest in prompts.list_prompts(steward.store, system):
        labels = ", ".join(
            f"{label}=v{v}" for label, v in sorted(held.get(newest.prompt, {}).items())
        )
        table.add_row(
            newest.prompt,
            f"v{newest.version}",
            labels or "–",
            cell(newest.spec.get("model")),
            f"{newest.registered_at:%Y-%m-%d %H:%M}",
            (newest.code.get("commit") or "–")[:12],
        )
    console.print(table)


@prompts_group.command("show")
@click.argument("system")
@click.argument("prompt")
@click.argument("reference", default="production")
@click.option("--json", "as_json", is_flag=True, help="The version as JSON.")
@click.pass_context
def prompts_show(
    ctx: click.Context, system: str, prompt: str, reference: str, as_json: bool
) -> None:
    """Show a version of PROMPT by number or label (default: production)."""
    version = prompts.get_prompt(get_steward(ctx).store, system, prompt, reference)
    if as_json:
        click.echo(json.dumps(version.to_dict(), indent=2))
        return
    labels = ", ".join(version.labels) or "no label"
    console.print(f"[bold]{system} {prompt} v{version.version}[/] ({labels})")
    console.print(f"sha256 {version.sha256}  registered by {version.registered_by}")
    console.print(f"file {version.path}  commit {(version.code.get('commit') or '–')[:12]}")
    click.echo(version.source)


@prompts_group.command("diff")
@click.argument("system")
@click.argument("prompt")
@click.argument("a")
@click.argument("b")
@click.pass_context
def prompts_diff(ctx: click.Context, system: str, prompt: str, a: str, b: str) -> None:
    """The file of PROMPT at A against B (versions or labels), as a unified diff."""
    store = get_steward(ctx).store
    text = prompts.diff_prompt_versions(
        prompts.get_prompt(store, system, prompt, a), prompts.get_prompt(store, system, prompt, b)
    )
    click.echo(text or f"{a} and {b} are the same file")


@prompts_group.command("label")
@click.argument("system")
@click.argument("prompt")
@click.argument("label")
@click.argument("version", required=False)
@click.option("--remove", is_flag=True, help="Remove the label instead of moving it.")
@click.option("--reason", default="", help="Why; kept in the label history.")
@click.option("--request", is_flag=True, help="Open an approval (for a protected label).")
@click.pass_context
def prompts_label(
    ctx: click.Context,
    system: str,
    prompt: str,
    label: str,
    version: str | None,
    remove: bool,
    reason: str,
    request: bool,
) -> None:
    """Point LABEL of PROMPT at VERSION (number or another label), or --remove it."""
    if (version is None) != remove:
        raise click.UsageError("give a VERSION to move the label to, or --remove (not both)")
    steward = get_steward(ctx)
    if request:
        assert version is not None  # checked above
        approval = prompts.request_label_move(
            steward.store, system, prompt, label, version, actor=steward.actor
        )
        console.print(
            f"approval #{approval} opened; another person decides it with "
            f"`steward approvals approve {approval}`"
        )
        return
    change = prompts.move_label(
        steward.store, system, prompt, label, version, actor=steward.actor, reason=reason
    )
    cited = f" (evidence: eval run #{change.eval_run_id})" if change.eval_run_id else ""
    console.print(
        f"moved {system} {prompt} {label}: {_v(change.from_version)} -> "
        f"{_v(change.to_version)}{cited}"
    )


@prompts_group.command("history")
@click.argument("system")
@click.argument("prompt")
@click.option("--label", default=None, help="Only this label's moves.")
@click.pass_context
def prompts_history(ctx: click.Context, system: str, prompt: str, label: str | None) -> None:
    """Every move of PROMPT's labels, oldest first."""
    changes = prompts.label_history(get_steward(ctx).store, system, prompt, label)
    table = Table("when", "label", "action", "from", "to", "by", "eval run", "reason")
    for change in changes:
        table.add_row(
            f"{change.moved_at:%Y-%m-%d %H:%M}",
            change.label,
            change.action,
            _v(change.from_version),
            _v(change.to_version),
            change.moved_by,
            f"#{change.eval_run_id}" if change.eval_run_id else "–",
            escape(change.reason),
        )
    console.print(table)


def _v(version: int | None) -> str:
    return "–" if version is None else f"v{version}"
