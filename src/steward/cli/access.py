"""``steward users``, ``steward tokens`` and ``steward login-link``: who may use the HTTP API.

The CLI itself acts as the local user (the ``user`` setting, by default the login name): whoever
can run it on the workspace can read and write its store directly, so it asks for no credential.
"""

from __future__ import annotations

import json

import click
from rich.table import Table

from steward.cli.main import console, get_steward

__all__ = ["login_link_command", "tokens_group", "users_group"]

_ROLES = click.Choice(["viewer", "client", "operator", "approver", "admin"])
_FORMAT = click.option(
    "--format", "output_format", type=click.Choice(["text", "json"]), default="text"
)


def _when(moment: object) -> str:
    return "" if moment is None else f"{moment:%Y-%m-%d %H:%M}"


@click.group("users")
def users_group() -> None:
    """People and services the HTTP API knows, and the role each may hold."""


@users_group.command("add")
@click.argument("name")
@click.option("--role", type=_ROLES, required=True, help="The highest role NAME may hold.")
@click.option("--service", is_flag=True, help="A program (tokens only), not a person.")
@click.pass_context
def users_add(ctx: click.Context, name: str, role: str, service: bool) -> None:
    """Add a person (or, with --service, a program) who may hold up to --role."""
    from steward.governance.access import Role, add_identity

    kind = "service" if service else "user"
    added = add_identity(get_steward(ctx), name, Role.parse(role), kind=kind)
    console.print(f"added {added.kind} {added.name!r} with role {added.role}")


@users_group.command("list")
@_FORMAT
@click.pass_context
def users_list(ctx: click.Context, output_format: str) -> None:
    """Every identity, with its role and whether it is disabled."""
    from steward.governance.access import list_identities

    found = list_identities(get_steward(ctx))
    if output_format == "json":
        click.echo(json.dumps([item.to_dict() for item in found], indent=2))
        return
    table = Table("name", "kind", "role", "added by", "added (UTC)", "disabled (UTC)")
    for item in found:
        table.add_row(
            item.name,
            item.kind,
            item.role,
            item.created_by,
            _when(item.created_at),
            _when(item.disabled_at),
        )
    console.print(table)


@users_group.command("disable")
@click.argument("name")
@click.pass_context
def users_disable(ctx: click.Context, name: str) -> None:
    """Disable NAME: its tokens and sessions stop working within seconds; its history stays."""
    from steward.governance.access import disable_identity

    disable_identity(get_steward(ctx), name)
    console.print(f"disabled {name!r}")


@click.group("tokens")
def tokens_group() -> None:
    """API tokens: random, shown once, stored hashed, with an expiry."""


@tokens_group.command("create")
@click.argument("name")
@click.option("--role", type=_ROLES, help="At most NAME's role. Default: NAME's role.")
@click.option(
    "--expires", default="90d", show_default=True, help="Lifetime: e.g. 30d, 12h, 2w (<= 366d)."
)
@click.option("--note", default="", help="What the token is for, shown in `steward tokens list`.")
@click.pass_context
def tokens_create(ctx: click.Context, name: str, role: str | None, expires: str, note: str) -> None:
    """Make an API token for identity NAME and print it once (only its hash is kept).

    Send it as 'Authorization: Bearer <token>', or give it to steward.Client(url, token=...).
    """
    from steward._util.times import parse_window
    from steward.governance.access import Role, create_token

    issued = create_token(
        get_steward(ctx),
        name,
        role=Role.parse(role) if role else None,
        expires_in=parse_window(expires),
        note=note,
    )
    info = issued.info
    click.echo(issued.secret)
    click.echo(
        f"token {info.key} for {info.identity!r} ({info.role}), expires "
        f"{_when(info.expires_at)} UTC; it is shown only now",
        err=True,
    )


@tokens_group.command("list")
@click.option("--user", "identity", help="Only this identity's tokens.")
@click.option("--all", "every", is_flag=True, help="Also expired and revoked ones, and sessions.")
@_FORMAT
@click.pass_context
def tokens_list(ctx: click.Context, identity: str | None, every: bool, output_format: str) -> None:
    """API tokens, newest first (active ones unless --all); never the secrets."""
    from steward.governance.access import list_tokens

    found = list_tokens(get_steward(ctx), identity=identity, every=every)
    if output_format == "json":
        click.echo(json.dumps([item.to_dict() for item in found], indent=2))
        return
    table = Table("key", "kind", "identity", "role", "state", "expires (UTC)", "last used", "note")
    for item in found:
        table.add_row(
            item.key,
            item.kind,
            item.identity,
            item.role,
            item.state,
            _when(item.expires_at),
            _when(item.last_used_at),
            item.note,
        )
    console.print(table)


@tokens_group.command("revoke")
@click.argument("key")
@click.pass_context
def tokens_revoke(ctx: click.Context, key: str) -> None:
    """Revoke the token KEY (as `steward tokens list` shows it); servers stop taking it within
    seconds."""
    from steward.governance.access import revoke_token

    info = revoke_token(get_steward(ctx), key)
    console.print(f"revoked {info.kind} {info.key} of {info.identity!r}")


@click.command("login-link")
@click.option("--user", "identity", help="Who signs in. Default: the local user, as admin.")
@click.option(
    "--url",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The server's address, as the browser reaches it.",
)
@click.pass_context
def login_link_command(ctx: click.Context, identity: str | None, url: str) -> None:
    """Print a one-time link that signs a browser in to the dashboard (valid 15 minutes)."""
    from steward.governance.access import Role, ensure_identity, login_link

    steward = get_steward(ctx)
    name = identity or ensure_identity(steward, steward.actor, Role.ADMIN).name
    issued = login_link(steward, name)
    click.echo(f"{url.rstrip('/')}/ui/login?token={issued.secret}")
