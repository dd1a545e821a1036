"""``steward drift REFERENCE CURRENT``: compare two files column by column, without a workspace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from steward.errors import InvalidInputError

if TYPE_CHECKING:
    import pandas as pd

    from steward.data.drift import DriftReport

#: Text tables longer than this show the alarmed columns' tests only, unless --all.
TEXT_ROWS = 25

__all__ = ["column_names", "drift_command"]


def column_names(ctx: click.Context, param: click.Parameter, value: str | None) -> list[str] | None:
    """A click callback: ``"a, b"`` as ``["a", "b"]``; an option given but empty is refused."""
    if value is None:
        return None
    names = [name.strip() for name in value.split(",") if name.strip()]
    if not names:
        raise click.BadParameter(f"expects column names separated by commas, got {value!r}")
    return names


@click.command("drift")
@click.argument("reference", type=click.Path(path_type=Path))
@click.argument("current", type=click.Path(path_type=Path))
@click.option("--exact", is_flag=True, help="Compare the raw rows instead of binned profiles.")
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["text", "json", "html"]),
    default="text",
    show_default=True,
    help="html is a self-contained page with a plot per column.",
)
@click.option("--output", "-o", type=click.Path(path_type=Path), help="Write here, not stdout.")
@click.option(
    "--columns",
    callback=column_names,
    help="Compare only these, e.g. age,plan (default: every numeric, boolean or text column).",
)
@click.option(
    "--categorical", callback=column_names, help="Numeric columns to compare as categories."
)
@click.option(
    "--alpha",
    type=click.FloatRange(0.0, 1.0, min_open=True, max_open=True),
    default=0.05,
    show_default=True,
    help="Significance level, after the Benjamini-Hochberg correction.",
)
@click.option(
    "--all",
    "show_all",
    is_flag=True,
    help=f"In text, list every test; by default a table over {TEXT_ROWS} rows shows the alarms only.",
)
def drift_command(
    reference: Path,
    current: Path,
    exact: bool,
    output_format: str,
    output: Path | None,
    columns: list[str] | None,
    categorical: list[str] | None,
    alpha: float,
    show_all: bool,
) -> None:
    """Compare CURRENT with REFERENCE (CSV or Parquet) column by column; needs no workspace.

    By default both files are summarized as binned profiles (bins fitted on REFERENCE) and compared
    as a monitor compares stored windows; --exact compares the raw rows. A column alarms when a change
    is significant and larger than its floor. Exits 0 when no column alarms, 1 when one does (or on
    an error, printed as one line), 2 on a usage error.
    """
    report = _compare_files(reference, current, exact, columns, categorical, alpha)
    rows = None if show_all else TEXT_ROWS
    _write_drift_report(report, "exact" if exact else "profile", output_format, output, rows)
    if report.alarmed:
        sys.exit(1)


def _compare_files(
    reference: Path,
    current: Path,
    exact: bool,
    columns: list[str] | None,
    categorical: list[str] | None,
    alpha: float,
) -> DriftReport:
    from steward.data.drift import compare
    from steward.data.profiles import DatasetProfile, compare_profiles, fit_binnings
    from steward.model.lineage import read_table

    frames = {"REFERENCE": read_table(reference), "CURRENT": read_table(current)}
    _check_drift_columns(frames["REFERENCE"], [*(columns or []), *(categorical or [])], reference)
    if exact:
        _check_drift_columns(frames["CURRENT"], columns or [], current)
        return compare(
            frames["REFERENCE"],
            frames["CURRENT"],
            columns=columns,
            categorical=categorical,
            alpha=alpha,
        )
    binnings = fit_binnings(frames["REFERENCE"], columns, categorical=categorical or ())
    _check_drift_columns(frames["CURRENT"], list(binnings), current)
    windows = [DatasetProfile.from_frame(frame, binnings) for frame in frames.values()]
    return compare_profiles(*windows, alpha=alpha)


def _check_drift_columns(frame: pd.DataFrame, names: list[str], path: Path) -> None:
    missing = [name for name in dict.fromkeys(names) if name not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"column(s) {missing} are not in {str(path)!r} (it has {list(frame.columns)[:20]}); "
            "check the names, or leave them out with --columns"
        )


def _write_drift_report(
    report: DriftReport, mode: str, output_format: str, output: Path | None, rows: int | None
) -> None:
    if output_format == "json":
        found = report.to_dict()
        text = json.dumps({"alarm": found["alarm"], "mode": mode, **found}, indent=2)
    elif output_format == "html":
        text = report.to_html()
    else:
        how = (
            "raw rows"
            if mode == "exact"
            else "binned profiles; each threshold is the floor plus the statistic's error bound"
        )
        text = f"{report.to_text(max_rows=rows)}mode: {mode} ({how})"
    if output is None:
        click.echo(text)
        return
    try:
        output.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
    except OSError as error:
        raise InvalidInputError(
            f"cannot write the report to {str(output)!r} ({error.strerror}); check the folder"
        ) from None
    click.echo(f"{report.to_text().splitlines()[0]}; mode: {mode}; wrote {output}")
