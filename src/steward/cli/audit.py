"""``steward audit verify``: check the tamper-evident audit log's hash chain."""

from __future__ import annotations

import sys

import click

from steward.cli.main import console, error_console, get_steward

__all__ = ["audit_group", "audit_verify"]


@click.group("audit")
def audit_group() -> None:
    """The tamper-evident audit log."""


@audit_group.command("verify")
@click.pass_context
def audit_verify(ctx: click.Context) -> None:
    """Recompute the audit log's hash chain; exit 1 if an entry was edited or removed."""
    check = get_steward(ctx).verify_audit()
    if check.ok:
        console.print(f"audit log intact: {check.n_entries} entries")
        return
    error_console.print(
        f"[bold red]audit log broken[/] at entry {check.first_bad_id}: {check.reason}"
    )
    sys.exit(1)
