"""The README's tour, run as written: every command of its shell block, then its Python block, on a
fresh model trained here (no file the tour does not make)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from steward import Steward
from steward.cli.main import cli
from steward.demo import train_churn_model
from steward.model.flavors import save_sklearn

README = Path(__file__).parents[1] / "README.md"


def _block(language: str, after: str) -> str:
    text = README.read_text()
    section = text[text.index(after) :]
    return re.search(rf"```{language}\n(.*?)```", section, flags=re.S).group(1)  # type: ignore[union-attr]


def _commands(block: str) -> list[list[str]]:
    joined = re.sub(r"\\\n\s*", " ", block)
    return [shlex.split(line, comments=True) for line in joined.splitlines() if line.strip()]


def test_the_readme_tour_works_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, target = telco
    monkeypatch.chdir(tmp_path)
    frame.assign(Churn=target).to_csv("train.csv", index=False)
    save_sklearn(train_churn_model(frame, target, C=1.0), Path("model.skops"))
    save_sklearn(train_churn_model(frame, target, C=0.05), Path("model-v2.skops"))
    commands = _commands(_block("bash", "## A tour"))
    assert len(commands) >= 8 and all(command[0] == "steward" for command in commands)
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(
            cli, ["--database-url", f"sqlite:///{tmp_path / 's.db'}", *command[1:]]
        )
        assert result.exit_code == 0, f"{shlex.join(command)}: {result.output}"
    assert Path("card.html").read_text().startswith("<!doctype html>")
    with Steward.open(tmp_path, database_url=f"sqlite:///{tmp_path / 's.db'}") as steward:
        assert steward.version("churn", "champion").version == 1  # after the rollback

    namespace = {
        "pipeline": train_churn_model(frame, target, C=0.3),
        "train_frame": frame.assign(Churn=target),
        "frame": frame.drop(columns=["customerID"]).head(5),
    }
    exec(compile(_block("python", "From Python"), "README.md", "exec"), namespace)
    scores = namespace["scores"]
    assert len(scores) == 5 and all(0.0 <= score <= 1.0 for score in scores)
    namespace["steward"].close()
