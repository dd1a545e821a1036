"""``steward audit``: verify the audit log against its signed checkpoints and what it binds, prove an
entry, sign now, bind what was written before binding existed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from steward.cli.main import console, error_console, get_steward
from steward.store import audit
from steward.store.checkpoints import CHECKPOINT_FILE

__all__ = ["audit_bind", "audit_checkpoint", "audit_group", "audit_prove", "audit_verify"]

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log: a Merkle tree with signed checkpoints."""


@audit_group.command("verify")
@click.option(
    "--checkpoint",
    "checkpoint_files",
    multiple=True,
    type=_FILE,
    help="A checkpoint file, e.g. a copy published elsewhere (repeatable). "
    f"Default: the workspace's .steward/{CHECKPOINT_FILE}.",
)
@click.option(
    "--public-key",
    type=_FILE,
    help="The log's verifier key. Default: the workspace's .steward/audit-signing.pub; "
    "pass a copy kept outside the workspace.",
)
@click.pass_context
def audit_verify(
    ctx: click.Context, checkpoint_files: tuple[Path, ...], public_key: Path | None
) -> None:
    """Check the audit log against its signed checkpoints, the tables and the event files.

    Recomputes the tree and the hash chain from the database, checks each checkpoint's signature
    and that the log extends every checkpoint; then that the bound tables (alias history,
    aliases, approvals, review decisions, suspensions) and the event log's Parquet files are what
    the entries bind. Exits 1 naming the first bad entry, the checkpoint that fails, or each row
    and file edited, deleted or inserted, or (not broken, but not intact) not bound yet."""
    check = get_steward(ctx).verify_audit(checkpoint_files, public_key)
    if check.ok:
        console.print(f"audit log {check.message}", markup=False)
        return
    error_console.print(f"audit log {check.message}", style="bold red", markup=False)
    sys.exit(1)


@audit_group.command("prove")
@click.argument("entry_id", type=int)
@click.pass_context
def audit_prove(ctx: click.Context, entry_id: int) -> None:
    """Print an entry's inclusion proof as JSON.

    The proof holds entry ENTRY_ID, its leaf index, the tree size and root, the audit path (hex)
    and the signed checkpoint of that tree: anyone can check it with the verifier key alone
    (docs/audit.md). Signs a checkpoint first when none covers the entry."""
    steward = get_steward(ctx)
    proof = audit.prove(steward.store, steward.settings.store_dir, entry_id)
    click.echo(json.dumps(proof, indent=2))


@audit_group.command("bind")
@click.pass_context
def audit_bind(ctx: click.Context) -> None:
    """Bind what was written before binding existed, once.

    In a workspace begun by an older Steward, binds every row of the bound tables and every event
    Parquet file that no entry binds yet, as they are now, in one audit.bind entry; from then on
    verify reports any row or file no entry binds as inserted. Refused when verify finds anything
    broken: it vouches for what is there, so run verify first and bind only a state you trust."""
    steward = get_steward(ctx)
    with steward.events.holding_files():
        result = audit.bind_existing(
            steward.store,
            steward.settings.store_dir,
            actor=steward.actor,
            events_dir=steward.settings.events_dir,
        )
    console.print(result.message, markup=False)


@audit_group.command("checkpoint")
@click.pass_context
def audit_checkpoint(ctx: click.Context) -> None:
    """Sign a checkpoint of the audit log now.

    Appends it to .steward/audit-checkpoints.txt; refused when the log fails verify."""
    steward = get_steward(ctx)
    checkpoint = audit.checkpoint(steward.store, steward.settings.store_dir)
    path = steward.settings.store_dir / CHECKPOINT_FILE
    console.print(
        f"checkpoint at size {checkpoint.size} signed by {checkpoint.origin}, appended to {path}",
        markup=False,
    )
