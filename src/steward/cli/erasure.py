"""``steward erase``: remove one subject's data from every place Steward keeps it."""

from __future__ import annotations

import json

import click

from steward.cli.main import console, get_steward
from steward.errors import InvalidInputError, NotFoundError

__all__ = ["erase_command"]


@click.command("erase")
@click.option("--entity", "entity_key", required=True, help="The subject's entity key, as logged.")
@click.option(
    "--system",
    "systems",
    multiple=True,
    help="A system to erase from (repeatable). Default: every system.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the receipt as JSON.")
@click.pass_context
def erase_command(
    ctx: click.Context, entity_key: str, systems: tuple[str, ...], as_json: bool
) -> None:
    """Erase one subject's data everywhere Steward keeps it; print the counts per place.

    Removes its predictions, shadow scores and outcomes, review decisions and their notes,
    reference-sample rows and retrain-export rows (the right to erasure, GDPR article 17).

    The audit log keeps a receipt: a salted hash of the key and the counts. Running it again
    finishes an interrupted erasure and counts zero. Example: steward erase --entity customer-42
    """
    from steward.governance.erasure import PLACES, erase_subject

    steward = get_steward(ctx)
    try:
        receipt = erase_subject(steward, entity_key, list(systems) or None)
    except (InvalidInputError, NotFoundError) as error:
        raise click.BadParameter(str(error), param_hint="--entity/--system") from None
    if as_json:
        click.echo(json.dumps(receipt.to_dict(), indent=2))
        return
    for place in PLACES:
        console.print(f"{place:<18} {receipt.counts[place]:>8,}", markup=False)
    console.print(
        f"erased from {', '.join(receipt.systems) or 'no system'}: {receipt.total:,} removed; "
        f"receipt: audit entry {receipt.audit_id} (salted sha256 {receipt.subject_sha256[:16]}…)",
        markup=False,
    )
