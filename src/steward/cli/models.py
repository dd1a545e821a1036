"""``steward models`` (register, list, show, alias, history, diff, card) and ``steward rollback``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from steward.cli.main import cell, console, error_console, get_steward
from steward.errors import InvalidInputError
from steward.llm import prompts

__all__ = [
    "models",
    "models_alias",
    "models_card",
    "models_diff",
    "models_history",
    "models_list",
    "models_register",
    "models_show",
    "rollback",
]


@click.group()
def models() -> None:
    """Register model versions, move aliases, compare versions, render model cards."""


def _pairs(values: tuple[str, ...], what: str) -> dict[str, Any]:
    pairs: dict[str, Any] = {}
    for item in values:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise InvalidInputError(f"--{what} expects NAME=VALUE, got {item!r}")
        try:
            pairs[key] = json.loads(raw)
        except json.JSONDecodeError:
            pairs[key] = raw
    return pairs


@models.command("register")
@click.argument("artifact")
@click.option("--system", required=True, help="The system this model serves.")
@click.option(
    "--flavor",
    type=click.Choice(["sklearn", "sklearn-pickle", "onnx", "python"]),
    help="Detected from the file suffix when left out.",
)
@click.option(
    "--trust",
    is_flag=True,
    help="Load a pickle, or skops types outside "
    "scikit-learn/numpy/scipy; only for files whose author you trust.",
)
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Training data (CSV or Parquet): fingerprinted, a sample kept as reference.",
)
@click.option("--param", multiple=True, help="NAME=VALUE, repeatable.")
@click.option("--metric", multiple=True, help="NAME=VALUE, repeatable.")
@click.option("--description", default="", help="One line on what this version is.")
@click.option("--alias", help="Also point this alias at the new version.")
@click.pass_context
def models_register(
    ctx: click.Context,
    artifact: str,
    system: str,
    flavor: str | None,
    trust: bool,
    data: Path | None,
    param: tuple[str, ...],
    metric: tuple[str, ...],
    description: str,
    alias: str | None,
) -> None:
    """Register ARTIFACT (a .skops/.joblib/.onnx file, module:function, or an MLflow model
    directory with the sklearn flavor) as a new version."""
    steward = get_steward(ctx)
    registration = steward.register_model(
        artifact,
        system=system,
        flavor=flavor,
        trust=trust,
        data=data,
        params=_pairs(param, "param"),
        metrics=_pairs(metric, "metric"),
        description=description,
    )
    version = registration.version
    console.print(_registered(system, registration.created, version))
    warn(registration.warnings)
    if alias:
        change = steward.move_alias(system, alias, version.version, reason="set at registration")
        console.print(_describe_move(change))
        warn([w for w in change.warnings if w not in registration.warnings])


def _registered(system: str, created: bool, version: Any) -> str:
    if created:
        return (
            f"registered {system} v{version.version} "
            f"({version.flavor}, sha256:{version.artifact_sha256[:12]})"
        )
    return (
        f"already registered: this artifact is {system} v{version.version} "
        f"(sha256:{version.artifact_sha256[:12]}); nothing new was created"
    )


@models.command("list")
@click.argument("system")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def models_list(ctx: click.Context, system: str, output_format: str) -> None:
    """List the versions of SYSTEM with their aliases."""
    versions = get_steward(ctx).versions(system)
    if output_format == "json":
        click.echo(json.dumps([version.to_dict() for version in versions], indent=2, default=str))
        return
    table = Table("version", "aliases", "flavor", "registered", "by", "metrics")
    for version in versions:
        metrics = ", ".join(f"{key}={value}" for key, value in version.metrics.items())
        table.add_row(
            str(version.version),
            ", ".join(version.aliases),
            version.flavor,
            version.registered_at.strftime("%Y-%m-%d %H:%M"),
            version.registered_by,
            metrics,
        )
    console.print(table)


@models.command("show")
@click.argument("system")
@click.argument("version")
@click.pass_context
def models_show(ctx: click.Context, system: str, version: str) -> None:
    """Everything recorded about one VERSION (a number or an alias), as JSON."""
    click.echo(
        json.dumps(get_steward(ctx).version(system, version).to_dict(), indent=2, default=str)
    )


@models.command("alias")
@click.argument("system")
@click.argument("alias")
@click.argument("version")
@click.option("--reason", default="", help="Why; kept in the alias history.")
@click.pass_context
def models_alias(ctx: click.Context, system: str, alias: str, version: str, reason: str) -> None:
    """Point ALIAS of SYSTEM at VERSION ('none' removes it)."""
    target = None if version.lower() == "none" else version
    change = get_steward(ctx).move_alias(system, alias, target, reason)
    console.print(_describe_move(change))
    warn(change.warnings)


@models.command("history")
@click.argument("system")
@click.option("--alias", help="Only this alias.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def models_history(ctx: click.Context, system: str, alias: str | None, output_format: str) -> None:
    """The timeline of alias moves of SYSTEM: who, when, from, to and why."""
    moves = get_steward(ctx).history(system, alias)
    if output_format == "json":
        click.echo(json.dumps([move.to_dict() for move in moves], indent=2))
        return
    table = Table("when (UTC)", "alias", "action", "from", "to", "by", "reason")
    for move in moves:
        table.add_row(
            move.moved_at.strftime("%Y-%m-%d %H:%M:%S"),
            move.alias,
            move.action,
            _v(move.from_version),
            _v(move.to_version),
            move.moved_by,
            move.reason,
        )
    console.print(table)


@models.command("diff")
@click.argument("system")
@click.argument("a")
@click.argument("b")
@click.option("--all", "show_all", is_flag=True, help="Show unchanged rows too.")
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def models_diff(
    ctx: click.Context, system: str, a: str, b: str, show_all: bool, output_format: str
) -> None:
    """What changed between versions A and B: params, metrics, data, schema, code, libraries."""
    rows = get_steward(ctx).diff(system, a, b)
    if output_format == "json":
        fields = ("section", "key", "a", "b", "changed")
        found = [{name: getattr(row, name) for name in fields} for row in rows]
        click.echo(json.dumps(found, indent=2, default=str))
        return
    table = Table("section", "key", f"{a}", f"{b}")
    for row in rows:
        if row.changed:
            table.add_row(row.section, row.key, cell(row.a), cell(row.b), style="bold yellow")
        elif show_all:
            table.add_row(row.section, row.key, cell(row.a), cell(row.b), style="dim")
    console.print(table)
    n_changed = sum(row.changed for row in rows)
    console.print(
        f"{n_changed} of {len(rows)} fields differ"
        + ("" if show_all else " (--all shows the rest)")
    )


@models.command("card")
@click.argument("system")
@click.argument("version", default="champion")
@click.option(
    "--format", "output_format", type=click.Choice(["markdown", "html"]), default="markdown"
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
@click.option(
    "--card-file",
    type=click.Path(path_type=Path),
    help="YAML with the card's narrative fields; wins over steward.yaml.",
)
@click.pass_context
def models_card(
    ctx: click.Context,
    system: str,
    version: str,
    output_format: str,
    output: Path | None,
    card_file: Path | None,
) -> None:
    """Render the model card of VERSION (default: champion) as Markdown or HTML."""
    card = get_steward(ctx).card(system, version, card_file)
    text = card.to_html() if output_format == "html" else card.to_markdown()
    if output is None:
        click.echo(text)
        return
    output.write_text(text)
    console.print(f"wrote {output}")
    if card.missing:
        console.print(f"[yellow]missing narrative:[/] {', '.join(card.missing)}")


@click.command()
@click.argument("system")
@click.option("--reason", default="", help="Why; kept in the alias (or label) history.")
@click.option("--alias", default="champion", show_default=True)
@click.option("--prompt", default=None, help="Roll back a label of this prompt instead.")
@click.option(
    "--label", default="production", show_default=True, help="With --prompt: the label to undo."
)
@click.pass_context
def rollback(
    ctx: click.Context, system: str, reason: str, alias: str, prompt: str | None, label: str
) -> None:
    """Move champion of SYSTEM (or a prompt's label) back to the version that held it before."""
    steward = get_steward(ctx)
    if prompt is not None:
        moved = prompts.rollback_label(
            steward.store, system, prompt, actor=steward.actor, reason=reason, label=label
        )
        console.print(
            f"rolled back {system} prompt {prompt} {label}: "
            f"{_v(moved.from_version)} -> {_v(moved.to_version)}"
        )
        return
    change = steward.rollback(system, reason, alias)
    console.print(f"rolled back {system} {alias}: v{change.from_version} -> v{change.to_version}")
    warn(change.warnings)


def warn(warnings: Any) -> None:
    """Print each warning on stderr, in yellow: the command did what it was asked, but mind this."""
    for text in warnings:
        error_console.print(f"[yellow]warning:[/] {escape(text)}", markup=True)


def _describe_move(change: Any) -> str:
    return f"{change.system} {change.alias}: {_v(change.from_version)} -> {_v(change.to_version)}"


def _v(version: int | None) -> str:
    return "–" if version is None else f"v{version}"
