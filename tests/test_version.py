"""``steward --version`` names the command and the installed package's version."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib import metadata

from click.testing import CliRunner

import steward
from steward.cli.main import cli


def test_version_option_prints_the_installed_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0, result.output
    installed = metadata.version("steward")
    assert result.output == f"steward {installed}\n"
    assert steward.__version__ == installed
    assert re.fullmatch(r"steward \d+\.\d+\.\d+\S*\n", result.output)


def test_version_option_works_from_the_installed_command_without_a_workspace(tmp_path) -> None:
    # From an empty folder: --version must not open (or create) a workspace.
    done = subprocess.run(
        [sys.executable, "-m", "steward", "--version"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"steward {metadata.version('steward')}\n"
    assert list(tmp_path.iterdir()) == []
