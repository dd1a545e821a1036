"""``steward import``: bring models from another registry (MLflow) with their versions and aliases."""

from __future__ import annotations

import click
from rich.markup import escape

from steward.cli.main import console, error_console, get_steward

__all__ = ["import_group", "import_mlflow_command"]


@click.group("import")
def import_group() -> None:
    """Bring models from another registry into a system, with their lineage."""


@import_group.command("mlflow")
@click.option(
    "--tracking-uri", required=True, help="MLflow's tracking URI, e.g. sqlite:///mlflow.db."
)
@click.option("--registry-uri", help="MLflow's registry URI, when not the tracking URI.")
@click.option("--model", "model", required=True, help="The registered model's name in MLflow.")
@click.option("--system", required=True, help="The Steward system its versions go to.")
@click.option("--trust", is_flag=True, help="Load models MLflow saved as pickles.")
@click.pass_context
def import_mlflow_command(
    ctx: click.Context,
    tracking_uri: str,
    registry_uri: str | None,
    model: str,
    system: str,
    trust: bool,
) -> None:
    """Import every version of an MLflow registered model, with its run's params and metrics,
    then point Steward's aliases where MLflow's point. Running it again adds only what is new."""
    from steward.workspace.mlflow_import import import_mlflow

    steward = get_steward(ctx)
    report = import_mlflow(
        steward, tracking_uri, model, system=system, trust=trust, registry_uri=registry_uri
    )
    for item in report.versions:
        state = "registered" if item.created else "already registered"
        console.print(
            f"MLflow {model} v{item.mlflow_version} -> {system} v{item.version} ({state})"
        )
    for alias, version in report.aliases.items():
        console.print(f"alias {alias} -> {system} v{version}")
    for note in report.skipped:
        error_console.print(f"[yellow]skipped:[/] {escape(note)}")
