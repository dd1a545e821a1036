"""``steward demo``: tell the churn and the assistant stories in a fresh workspace, then serve."""

from __future__ import annotations

from pathlib import Path

import click

from steward.cli.main import console, get_overrides

__all__ = ["demo"]


@click.command()
@click.option("--seed", default=0, show_default=True, help="Changes the data, so the figures.")
@click.option(
    "--customers-per-week",
    default=400,
    show_default=True,
    type=click.IntRange(100, 5000),
    help="Customers scored in each simulated week.",
)
@click.option(
    "--serve/--no-serve",
    default=True,
    show_default=True,
    help="Keep serving the API and dashboard after the story (until Ctrl-C).",
)
@click.option("--port", default=8000, show_default=True, help="Port to serve on (busy: any free).")
@click.pass_context
def demo(ctx: click.Context, seed: int, customers_per_week: int, serve: bool, port: int) -> None:
    """Tell the churn story on the shipped Telco data in a fresh workspace (default: here).

    Trains and serves v1, replays twelve simulated weeks with a product launch in week seven, and
    lets the loop detect, retrain, shadow and (after a named person approves) promote v2. Then a
    support assistant on the shipped fake LLM changes its prompt in week five; the output monitor
    and the cost SLO catch it and the playbook rolls the prompt back.
    """
    from steward.demo import Narrator, run_demo

    overrides = get_overrides(ctx)
    workspace = Path(overrides.pop("workspace", None) or ".").resolve()
    run = run_demo(
        workspace,
        seed=seed,
        customers_per_week=customers_per_week,
        narrator=Narrator(console),
        port=port,
        overrides=overrides,
    )
    console.print(
        "next: `steward alerts list`, `steward models history churn`, "
        "`steward report churn --week`, `steward models diff churn 1 2`, "
        "`steward prompts history assistant answer`, `steward llm cost assistant --by prompt`"
    )
    if not serve:
        run.close()
        return
    from steward.governance.access import Role, ensure_identity, login_link

    me = ensure_identity(run.steward, run.steward.actor, Role.ADMIN).name
    link = login_link(run.steward, me).secret
    console.print(
        f"dashboard: {run.url}/ui/login?token={link} (signs you in as {me!r}; one use, 15 "
        f"minutes; `steward login-link --url {run.url}` makes another); OpenAPI: {run.url}/docs; "
        "Ctrl-C to stop",
        soft_wrap=True,
    )
    run.serve_forever()
