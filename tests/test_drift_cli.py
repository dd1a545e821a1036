"""`steward drift REFERENCE CURRENT`: two files in, a report out, exit 1 on an alarm, no workspace.

The command runs for real (click's CliRunner) on the electricity market data that test_drift.py
uses: the first tenth of the rows against the last tenth (real drift), and adjacent four-week
windows of the spring 1996 demand trough (quiet), in profile mode (the default) and exact mode.
"""

from __future__ import annotations

import json
import os
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner, Result

from steward.cli.main import cli

ELECTRICITY = Path(
    os.environ.get(
        "STEWARD_ELECTRICITY_CSV", Path(__file__).parent / "data" / "electricity-normalized.csv"
    )
)
# As in test_drift.py: "date", "day" and "period" move by construction between distant windows.
MARKET_COLUMNS = ["nswprice", "nswdemand", "vicprice", "vicdemand", "transfer", "class"]
# test_drift.py's quiet columns: the NSW spot price has no stable stretch in the first year.
QUIET_COLUMNS = ["nswdemand", "class", "period", "day", "vicprice", "vicdemand", "transfer"]
SPRING_DAYS = (133, 140, 147)  # 17 Sep, 24 Sep and 1 Oct 1996
MODES = {"profile": [], "exact": ["--exact"]}
RESULT_KEYS = {"column", "method", "statistic", "threshold", "p_value", "alarm"}


@pytest.fixture(scope="module")
def electricity() -> pd.DataFrame:
    return pd.read_csv(ELECTRICITY)


@pytest.fixture(scope="module")
def files(electricity: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """CSV files of the windows the tests compare, keyed by name."""
    folder = tmp_path_factory.mktemp("electricity")
    tenth = len(electricity) // 10
    windows = {"first_tenth": electricity.iloc[:tenth], "last_tenth": electricity.iloc[-tenth:]}
    day, four_weeks = 48, 28 * 48
    for first_day in SPRING_DAYS:
        start = first_day * day
        windows[f"spring_{first_day}"] = electricity.iloc[start : start + four_weeks]
        windows[f"after_{first_day}"] = electricity.iloc[
            start + four_weeks : start + 2 * four_weeks
        ]
    paths = {}
    for name, frame in windows.items():
        paths[name] = folder / f"{name}.csv"
        frame.to_csv(paths[name], index=False)
    return paths


def run(*args: object) -> Result:
    return CliRunner().invoke(cli, ["drift", *map(str, args)], catch_exceptions=False)


def run_json(*args: object) -> tuple[Result, dict]:
    result = run(*args, "--format", "json")
    return result, json.loads(result.stdout)


def alarmed_columns(found: dict) -> set[str]:
    return {row["column"] for row in found["results"] if row["alarm"]}


# --- verdicts on real data ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_first_tenth_against_last_tenth_alarms_and_exits_1(
    mode: str, files: dict[str, Path], electricity: pd.DataFrame
) -> None:
    columns = ",".join(MARKET_COLUMNS)
    result, found = run_json(
        files["first_tenth"], files["last_tenth"], "--columns", columns, *MODES[mode]
    )
    assert result.exit_code == 1
    assert found["alarm"] is True and found["mode"] == mode
    assert len(alarmed_columns(found)) >= 3
    # The Victorian series were filled in with a constant for the first year; once they vary, they
    # must alarm.
    tenth = len(electricity) // 10
    first, last = electricity.iloc[:tenth], electricity.iloc[-tenth:]
    filled = {name for name in MARKET_COLUMNS if first[name].nunique() == 1 < last[name].nunique()}
    assert filled and filled <= alarmed_columns(found)


@pytest.mark.parametrize("first_day", SPRING_DAYS)
@pytest.mark.parametrize("mode", MODES)
def test_adjacent_spring_windows_are_quiet_and_exit_0(
    mode: str, first_day: int, files: dict[str, Path]
) -> None:
    reference, current = files[f"spring_{first_day}"], files[f"after_{first_day}"]
    result = run(reference, current, "--columns", ",".join(QUIET_COLUMNS), *MODES[mode])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith(f"drift: no alarm across {len(QUIET_COLUMNS)} columns")


def test_profile_mode_alarms_only_where_exact_mode_does(files: dict[str, Path]) -> None:
    columns = ",".join(MARKET_COLUMNS)
    pair = files["first_tenth"], files["last_tenth"]
    _, profiled = run_json(*pair, "--columns", columns)
    _, exact = run_json(*pair, "--columns", columns, "--exact")
    assert alarmed_columns(profiled) <= alarmed_columns(exact)
    floors = {
        (row["column"], row["method"]): row["threshold"] - row["noise"] for row in exact["results"]
    }
    for row in profiled["results"]:  # the floor, plus the statistic's error bound (and the noise)
        assert row["threshold"] - row["noise"] >= floors[(row["column"], row["method"])] - 1e-12


# --- output formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_json_output_has_the_documented_shape(mode: str, files: dict[str, Path]) -> None:
    result, found = run_json(files["spring_133"], files["last_tenth"], *MODES[mode])
    assert list(found)[:2] == ["alarm", "mode"]
    assert found["mode"] == mode
    assert found["results"] and all(set(row) >= RESULT_KEYS for row in found["results"])
    assert found["alarm"] == any(row["alarm"] for row in found["results"])
    assert result.exit_code == int(found["alarm"])
    compared = {row["column"] for row in found["results"]}
    assert compared == set(pd.read_csv(files["spring_133"]).columns)


def test_text_output_lists_every_test_under_a_verdict_and_names_the_mode(
    files: dict[str, Path],
) -> None:
    pair = files["first_tenth"], files["last_tenth"]
    text = run(*pair, "--columns", "vicprice,class").stdout
    _, found = run_json(*pair, "--columns", "vicprice,class")
    lines = text.splitlines()
    alarmed = [name for name in ("vicprice", "class") if name in alarmed_columns(found)]
    assert lines[0].startswith(
        f"drift: ALARM on {len(alarmed)} of 2 columns ({', '.join(alarmed)})"
    )
    assert lines[-1].startswith("mode: profile")
    for row in found["results"]:
        assert any(line.split()[:2] == [row["column"], row["method"]] for line in lines)


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.started: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.started.append(tag)


@pytest.mark.parametrize("mode", MODES)
def test_html_report_is_one_page_with_a_plot_per_column(
    mode: str, files: dict[str, Path], tmp_path: Path
) -> None:
    page = tmp_path / "drift.html"
    columns = "nswdemand,vicprice,class"
    pair = files["first_tenth"], files["last_tenth"]
    result = run(*pair, "--columns", columns, "--format", "html", "--output", page, *MODES[mode])
    assert result.exit_code == 1
    assert result.stdout.startswith("drift: ALARM") and str(page) in result.stdout
    tags = _Tags()
    tags.feed(page.read_text(encoding="utf-8"))
    assert tags.started.count("svg") == len(columns.split(","))
    assert "script" not in tags.started
    on_stdout = run(*pair, "--columns", columns, "--format", "html", *MODES[mode]).stdout
    assert on_stdout.startswith("<!doctype html>") and "<svg" in on_stdout


def test_parquet_files_give_the_report_of_the_same_rows_as_csv(
    files: dict[str, Path], tmp_path: Path
) -> None:
    parquet = {}
    for name in ("spring_140", "after_140"):
        parquet[name] = tmp_path / f"{name}.parquet"
        pd.read_csv(files[name]).to_parquet(parquet[name], index=False)
    _, from_csv = run_json(files["spring_140"], files["after_140"])
    _, from_parquet = run_json(parquet["spring_140"], parquet["after_140"])
    assert from_parquet == from_csv


# --- mistakes: one line, never a traceback --------------------------------------------------------


def assert_one_line_error(result: Result, *fragments: str) -> None:
    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize("side", ["reference", "current"])
def test_a_missing_file_is_one_line_and_exit_1(
    side: str, files: dict[str, Path], tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere.csv"
    pair = [files["spring_133"], files["after_133"]]
    pair[side == "current"] = missing
    assert_one_line_error(run(*pair), str(missing), "does not exist")


@pytest.mark.parametrize("mode", MODES)
def test_a_column_missing_from_current_is_one_line_naming_it(
    mode: str, files: dict[str, Path], tmp_path: Path
) -> None:
    current = tmp_path / "current.csv"
    pd.read_csv(files["after_133"]).drop(columns="transfer").to_csv(current, index=False)
    result = run(files["spring_133"], current, "--columns", "nswdemand,transfer", *MODES[mode])
    assert_one_line_error(result, "['transfer']", str(current))


def test_an_unknown_column_is_one_line_naming_it(files: dict[str, Path]) -> None:
    result = run(files["spring_133"], files["after_133"], "--columns", "nswdemand,nswdemnad")
    assert_one_line_error(result, "['nswdemnad']", "--columns")


@pytest.mark.parametrize(
    "arguments",
    [
        ["--alpha", "1.5"],
        ["--alpha", "0"],
        ["--format", "pdf"],
        ["--columns", " , "],
        ["--no-such-option"],
    ],
)
def test_usage_errors_exit_2(arguments: list[str], files: dict[str, Path]) -> None:
    result = run(files["spring_133"], files["after_133"], *arguments)
    assert result.exit_code == 2
    assert "Usage: " in result.stderr and "Traceback" not in result.output


def test_an_unwritable_output_is_one_line(files: dict[str, Path], tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "drift.html"
    result = run(files["spring_133"], files["after_133"], "--format", "html", "-o", target)
    assert_one_line_error(result, str(target))


def test_drift_needs_no_workspace_or_database(files: dict[str, Path], tmp_path: Path) -> None:
    workspace = tmp_path / "workspace"
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(workspace),
            "--database-url",
            "postgresql://nobody@127.0.0.1:1/unreachable",
            "drift",
            str(files["spring_133"]),
            str(files["after_133"]),
            "--columns",
            ",".join(QUIET_COLUMNS),
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert not workspace.exists()


def test_text_output_of_a_wide_table_shows_the_alarm_and_counts_the_rest(tmp_path: Path) -> None:
    """One alarm among 40 columns printed 160 rows; the alarm now comes first, the rest on --all."""
    rng = np.random.default_rng(7)
    columns = {f"c{index:02d}": rng.normal(size=4000) for index in range(40)}
    reference = pd.DataFrame({name: values[:2000] for name, values in columns.items()})
    current = pd.DataFrame({name: values[2000:] for name, values in columns.items()})
    current["c17"] = current["c17"] + 2.0
    paths = tmp_path / "reference.csv", tmp_path / "current.csv"
    reference.to_csv(paths[0], index=False)
    current.to_csv(paths[1], index=False)
    lines = run(*paths).stdout.splitlines()
    assert lines[0].startswith("drift: ALARM on 1 of 40 columns (c17)")
    table = [line for line in lines[3:] if line.startswith("c")]
    assert table and {line.split()[0] for line in table} == {"c17"}
    assert any(line.startswith("... and ") and "pass --all" in line for line in lines)
    every = run(*paths, "--all").stdout.splitlines()
    listed = [line.split()[0] for line in every[3:] if line.startswith("c")]
    assert listed[0] == "c17" and len(set(listed)) == 40
