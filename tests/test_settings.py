"""One settings table feeds the environment, the CLI and the docs, and they agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from steward.cli.main import cli
from steward.errors import ConfigError
from steward.settings import SETTINGS, Settings

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_every_setting_is_documented_with_its_variable() -> None:
    text = (DOCS / "settings.md").read_text()
    for setting in SETTINGS:
        assert f"`{setting.name}`" in text
        assert f"`{setting.env_var}`" in text
        assert f"`{setting.option}`" in text


def test_every_setting_is_a_cli_option() -> None:
    result = CliRunner().invoke(cli, ["--help"], terminal_width=200)
    for setting in SETTINGS:
        assert setting.option in result.output


def test_cli_beats_environment_beats_default(tmp_path: Path) -> None:
    environ = {"STEWARD_RETENTION_DAYS": "30", "STEWARD_USER": "env-user"}
    settings = Settings.load({"user": "cli-user", "workspace": str(tmp_path)}, environ=environ)
    assert settings.user == "cli-user"
    assert settings.retention_days == 30
    assert settings.reference_sample_rows == 5000
    assert settings.database_url == f"sqlite:///{tmp_path / '.steward' / 'steward.db'}"


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="STEWARD_RETENTION_DAYS.*expects int, got 'soon'"):
        Settings.load(environ={"STEWARD_RETENTION_DAYS": "soon"})


def test_non_positive_retention_is_refused() -> None:
    with pytest.raises(ConfigError, match="'retention_days' must be at least 1, got 0"):
        Settings.load(environ={"STEWARD_RETENTION_DAYS": "0"})
