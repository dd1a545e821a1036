"""The generated reference pages in docs/ match the code."""

from __future__ import annotations

from pathlib import Path

from steward.cli.reference import cli_markdown, settings_markdown

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_settings_page_matches_the_settings_table() -> None:
    assert (DOCS / "settings.md").read_text() == settings_markdown(), (
        "docs/settings.md is stale: run python -m steward.cli.reference docs"
    )


def test_cli_page_matches_every_commands_help() -> None:
    assert (DOCS / "cli.md").read_text() == cli_markdown(), (
        "docs/cli.md is stale: run python -m steward.cli.reference docs"
    )
