"""``steward contract`` (infer, check, diff): data contracts from the command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import pandas as pd
import yaml
from rich.markup import escape
from rich.table import Table

from steward.cli.main import cell, console, error_console, get_overrides, get_steward
from steward.errors import InvalidInputError, NotFoundError

__all__ = [
    "contract",
    "contract_check",
    "contract_diff",
    "contract_infer",
    "declared_system",
    "not_input_hints",
]


@click.group()
def contract() -> None:
    """Data contracts: draft one from training data, check a batch, compare two versions."""


@contract.command("infer")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--name", help="The system the contract is for.")
@click.option(
    "--max-categories",
    default=50,
    show_default=True,
    help="Text columns with at most this many values become categories.",
)
@click.option("--target", help="The target column: left out (requests never carry it).")
@click.option("--entity-key", help="The entity key column: left out (it is the request's key).")
@click.option(
    "--system",
    help="Leave out the target and entity key this system declares in the workspace's steward.yaml.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
@click.pass_context
def contract_infer(
    ctx: click.Context,
    data: Path,
    name: str | None,
    max_categories: int,
    target: str | None,
    entity_key: str | None,
    system: str | None,
    output: Path | None,
) -> None:
    """Draft a contract from DATA (CSV or Parquet, or an MLflow model directory, whose signature
    gives the columns and types), ready to paste under a system's `contract:`.

    The target and the entity key are not inputs: name them (--target, --entity-key, or --system
    to take them from steward.yaml) so the contract leaves them out; columns that look like either
    are pointed out otherwise.
    """
    from steward.data.contracts import infer_contract, read_table
    from steward.model.mlflow_format import (
        is_mlflow_model,
        read_mlflow_model,
        signature_contract,
    )

    if is_mlflow_model(data):  # an MLflow model: its signature is the draft
        signature = signature_contract(read_mlflow_model(data).inputs, name=name or system)
        text = yaml.safe_dump({"contract": signature.to_dict()}, sort_keys=False)
        if output is None:
            click.echo(text, nl=False)
        else:
            output.write_text(text)
        return
    frame = read_table(data)
    if system:
        declared = declared_system(get_overrides(ctx), system)
        target, entity_key = target or declared.target, entity_key or declared.entity_key
    left_out = [column for column in (target, entity_key) if column]
    drafted = infer_contract(
        frame, max_categories=max_categories, name=name or system, exclude=left_out
    )
    text = yaml.safe_dump({"contract": drafted.to_dict()}, sort_keys=False, allow_unicode=True)
    if output is None:
        click.echo(text, nl=False)
    else:
        output.write_text(text)
        console.print(f"wrote {output}: {len(drafted.columns)} columns")
    if left_out:
        error_console.print(f"left out, not inputs: {', '.join(left_out)}", highlight=False)
    else:
        for hint in not_input_hints(frame):
            error_console.print(f"[yellow]warning:[/] {escape(hint)}")


def declared_system(overrides: dict[str, Any], system: str) -> Any:
    """The system as ``steward.yaml`` declares it, read from the file alone (no store)."""
    from steward.settings import Settings
    from steward.workspace.config import load_config

    settings = Settings.load(overrides)
    if not settings.config_path.exists():
        raise NotFoundError(
            f"--system {system!r} needs a workspace, but {settings.workspace} has no steward.yaml; "
            "pass --workspace, or name the columns with --target and --entity-key"
        )
    for declared in load_config(settings.config_path).systems:
        if declared.name == system:
            return declared
    raise NotFoundError(f"steward.yaml declares no system {system!r}; check the name")


_TARGET_NAMES = {"target", "label", "y", "class", "outcome", "churn", "churned", "income"}


def not_input_hints(frame: pd.DataFrame) -> list[str]:
    """Columns that look like the target or an entity key, said so a person can leave them out."""
    hints = []
    for column in frame.columns:
        series = frame[column]
        name = str(column)
        if name.lower() in _TARGET_NAMES:
            hints.append(
                f"column {name!r} looks like a target; if it is, draft again with --target {name} "
                "(a contract that requires it refuses every prediction)"
            )
        elif len(series) >= 20 and pd.api.types.is_string_dtype(series) and series.is_unique:
            hints.append(
                f"column {name!r} has a different value on every row; if it is the entity key, "
                f"draft again with --entity-key {name}"
            )
    return hints


@contract.command("check")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--system", help="Check against this system's newest contract in the store.")
@click.option(
    "--contract",
    "contract_file",
    type=click.Path(path_type=Path),
    help="Check against a contract file instead.",
)
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_context
def contract_check(
    ctx: click.Context,
    data: Path,
    system: str | None,
    contract_file: Path | None,
    output_format: str,
) -> None:
    """Validate every row of DATA; list each violation with column, rule, count and first row.

    Exits 1 when a rule whose action is `reject` is broken.
    """
    from steward.data.contracts import check_batch, read_contract, read_table

    checked = _pick_contract(ctx, system, contract_file, read_contract)
    report = check_batch(checked, read_table(data))
    if output_format == "json":
        click.echo(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        table = Table("column", "rule", "action", "rows", "first row", "example", "expected")
        for violation in report.violations:
            table.add_row(
                violation.column,
                violation.rule,
                violation.action,
                str(violation.count),
                cell(violation.first_row),
                cell(violation.example),
                violation.expected,
            )
        if report.violations:
            console.print(table)
        console.print(report.summary())
    if report.n_rejected:
        sys.exit(1)


def _pick_contract(
    ctx: click.Context, system: str | None, contract_file: Path | None, read_contract: Any
) -> Any:
    if (system is None) == (contract_file is None):
        raise InvalidInputError("give exactly one of --system NAME or --contract FILE")
    if contract_file is not None:
        return read_contract(contract_file)
    from steward.workspace.systems import get_contract

    found = get_contract(get_steward(ctx).store, str(system))
    if found is None:
        raise InvalidInputError(
            f"system {system!r} declares no contract; add `contract:` to it "
            "in steward.yaml (draft one with `steward contract infer`)"
        )
    return found


@contract.command("diff")
@click.argument("old", type=click.Path(path_type=Path))
@click.argument("new", type=click.Path(path_type=Path))
@click.option("--format", "output_format", type=click.Choice(["text", "json"]), default="text")
def contract_diff(old: Path, new: Path, output_format: str) -> None:
    """Classify every change from contract file OLD to NEW as breaking or compatible.

    Exits 1 when a change is breaking, so CI can stop it.
    """
    from steward.data.contracts import diff_contracts, read_contract

    result = diff_contracts(read_contract(old), read_contract(new))
    if output_format == "json":
        click.echo(json.dumps(result.to_dict(), indent=2))
    else:
        for change in result.changes:
            mark = "[red]breaking[/]  " if change.breaking else "[green]compatible[/]"
            console.print(f"{mark} {change.description}")
        console.print(result.summary())
    if result.breaking:
        sys.exit(1)
