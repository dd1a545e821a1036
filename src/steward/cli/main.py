"""The ``steward`` command: the root group and the helpers every command group shares.

Global options come from the settings table (``steward.settings.SETTINGS``). A mistake the user can fix
(a ``StewardError``) prints one line and exits 1; only a bug shows a traceback.

The command groups live in their own modules (``steward.cli.models``, ``steward.cli.monitor``, ...)
and attach themselves to :data:`cli` when ``steward.cli`` imports them; they use only the public
helpers here: :data:`console`, :data:`error_console`, :func:`get_steward`, :func:`get_overrides`,
:func:`parse_time` and :func:`cell`.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Any

import click
from rich.console import Console

from steward import __version__
from steward.core import Steward
from steward.errors import InvalidInputError, NotFoundError, StewardError
from steward.plugins import plugin_manager
from steward.settings import SETTINGS

__all__ = [
    "cell",
    "cli",
    "console",
    "error_console",
    "get_overrides",
    "get_steward",
    "main",
    "parse_time",
]

# Piped output (CI logs, `| less`) gets a wide table rather than rich's 80-column default.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
error_console = Console(stderr=True, highlight=False, soft_wrap=True)


class _Group(click.Group):
    """The root group: its commands come from the ``steward_cli_commands`` hook (the built-ins and
    any plugin's), attached when listed or looked up; domain errors become one line and exit 1."""

    def _registered(self) -> dict[str, click.Command]:
        """The commands the hook registers now, built-ins first; read on each lookup, so a plugin
        unregistered is gone (nothing is attached to the group for good)."""
        found: dict[str, click.Command] = {}
        for commands in reversed(plugin_manager().hook.steward_cli_commands()):
            for command in commands:
                if command.name is not None:
                    found.setdefault(command.name, command)
        return found

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self._registered()))

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return super().get_command(ctx, cmd_name) or self._registered().get(cmd_name)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StewardError as error:
            error_console.print(f"[bold red]error:[/] {error}", markup=True)
            sys.exit(1)


def _setting_options(function: Any) -> Any:
    for setting in reversed(SETTINGS):
        function = click.option(
            setting.option,
            setting.name,
            default=None,
            envvar=None,
            show_envvar=False,
            help=f"{setting.help} [env: {setting.env_var}]",
        )(function)
    return function


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@_setting_options
@click.version_option(__version__, "--version", prog_name="steward", message="%(prog)s %(version)s")
@click.pass_context
def cli(ctx: click.Context, **overrides: Any) -> None:
    """Steward: keep a deployed model trustworthy, from its data to its decisions."""
    ctx.obj = _Lazy(overrides)
    ctx.call_on_close(ctx.obj.close)


class _Lazy:
    """Opens the workspace on first use, so ``--help`` never touches a database."""

    def __init__(self, overrides: dict[str, Any]) -> None:
        self.overrides = overrides
        self._steward: Steward | None = None

    @property
    def steward(self) -> Steward:
        if self._steward is None:
            self._steward = Steward.open(**self.overrides)
        return self._steward

    def close(self) -> None:
        if self._steward is not None:
            self._steward.close()


def get_steward(ctx: click.Context, *, existing: bool = True) -> Steward:
    """The workspace of this invocation, opened on first use with the global options.

    With ``existing`` (every command but ``init`` and ``settings``), a folder that holds neither
    ``steward.yaml`` nor ``.steward/`` is refused when the store is the workspace's own SQLite file:
    a typo in ``--workspace`` must not start a new, empty workspace that answers "unknown system".
    """
    lazy: _Lazy = ctx.find_object(_Lazy)  # type: ignore[assignment]
    steward = lazy.steward
    settings = steward.settings
    local = settings.database_url.startswith("sqlite")  # an external store is the workspace's
    if existing and local and not (settings.config_path.exists() or settings.store_dir.exists()):
        raise NotFoundError(
            f"{settings.workspace} is not a Steward workspace (it has no steward.yaml and no "
            ".steward/); pass --workspace with the right folder, or run `steward init` to make one"
        )
    return steward


def get_overrides(ctx: click.Context) -> dict[str, Any]:
    """A copy of the global options given on the command line (None where left out)."""
    lazy: _Lazy = ctx.find_object(_Lazy)  # type: ignore[assignment]
    return dict(lazy.overrides)


def parse_time(text: str) -> datetime:
    """``--at TEXT`` as an aware datetime (UTC when it names no zone)."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInputError(
            f"--at {text!r} is not an ISO 8601 time; e.g. 2026-03-03T00:00Z"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def cell(value: Any) -> str:
    """A table cell: ``–`` for a missing value, else the value as text."""
    return "–" if value is None else str(value)


def main() -> None:
    """The ``steward`` console script."""
    cli(prog_name="steward")
