"""Reference pages generated from the code: ``docs/settings.md`` and ``docs/cli.md``.

``python -m steward.cli.reference docs/`` rewrites both; ``tests/test_reference.py`` fails when the
committed pages differ from what the code says, so they cannot drift apart.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from steward.settings import SETTINGS

__all__ = ["cli_markdown", "settings_markdown", "write_reference"]


def settings_markdown() -> str:
    lines = [
        "# Settings",
        "",
        "Every setting can be given as a command-line option (before the command, e.g.",
        "`steward --workspace ./ws models list churn`) or as an environment variable; the option wins.",
        "This page is generated from `steward.settings.SETTINGS` by `python -m steward.cli.reference docs`.",
        "",
        "| setting | option | environment variable | default | meaning |",
        "|---|---|---|---|---|",
    ]
    for setting in SETTINGS:
        default = "(empty)" if setting.default == "" else f"`{setting.default}`"
        lines.append(
            f"| `{setting.name}` | `{setting.option}` | `{setting.env_var}` | {default} | "
            f"{setting.help} |"
        )
    return "\n".join(lines) + "\n"


def cli_markdown() -> str:
    from steward.cli.main import cli

    lines = [
        "# Command-line reference",
        "",
        "Generated from `steward --help` by `python -m steward.cli.reference docs`.",
        "",
    ]
    for path, command in _walk(cli, ["steward"]):
        # The same help names as the real CLI: click caches the help option on first use.
        context = click.Context(
            command,
            info_name=" ".join(path),
            terminal_width=100,
            max_content_width=100,
            help_option_names=["-h", "--help"],
        )
        lines += [f"## `{' '.join(path)}`", "", "```text", command.get_help(context), "```", ""]
    return "\n".join(lines)


def _walk(command: click.Command, path: list[str]) -> list[tuple[list[str], click.Command]]:
    found = [(path, command)]
    if isinstance(command, click.Group):
        context = click.Context(command)
        for name in sorted(command.list_commands(context)):
            child = command.get_command(context, name)
            if child is not None:
                found += _walk(child, [*path, name])
    return found


def write_reference(docs: Path) -> None:
    (docs / "settings.md").write_text(settings_markdown())
    (docs / "cli.md").write_text(cli_markdown())


if __name__ == "__main__":
    write_reference(Path(sys.argv[1] if len(sys.argv) > 1 else "docs"))
