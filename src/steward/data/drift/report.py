"""The drift report: one row per (column, method), what was compared, and its renderings.

:class:`DriftReport` holds every :class:`DriftResult` with a :class:`ColumnSummary` (sizes, missing
values, new categories and a :class:`ColumnPlot`) per column, and renders as a frame, a dict, text
or a self-contained HTML page. :func:`build_report` makes one from the raw :class:`Outcome` of each
test, adjusting the p-values together and applying the floors; exact and profile mode both use it.

Example::

    >>> from steward.data.drift import compare
    >>> print(compare(*_example_frames()).to_text().splitlines()[0])
    drift: ALARM on 1 of 1 columns (amount); alpha=0.05, correction=bh, resamples=1000
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import jinja2
import markupsafe
import numpy as np
import numpy.typing as npt
import pandas as pd

from steward._util.svg import bar_chart_svg, histogram_svg
from steward.data.drift.bins import bin_counts
from steward.data.drift.stats import CategoricalReference, adjust_p_values

__all__ = [
    "ColumnPlot",
    "ColumnSummary",
    "DriftReport",
    "DriftResult",
    "Outcome",
    "build_report",
    "categorical_summary",
    "constant_note",
    "numeric_plot",
]

FloatArray = npt.NDArray[np.float64]

_PLOT_BINS = 30
_PLOT_CATEGORIES = 15
_UNSEEN_REPORTED = 50


class Outcome(NamedTuple):
    """One test's raw result, before the p-values are adjusted and the floors applied.

    ``noise`` is what the statistic reaches under no drift one time in a thousand at these sample
    sizes (``steward.data.drift.stats.NOISE_QUANTILE``); it is added to the floor.
    """

    column: str
    method: str
    statistic: float
    p_value: float
    noise: float


def _unseen_categories(
    reference: CategoricalReference, current_counts: Mapping[Any, int]
) -> tuple[dict[str, int], int]:
    known = set(reference.categories)
    unseen = sorted(
        (
            (str(category), count)
            for category, count in current_counts.items()
            if category not in known
        ),
        key=lambda item: (-item[1], item[0]),
    )
    return dict(unseen[:_UNSEEN_REPORTED]), sum(count for _, count in unseen)


# --- the report ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DriftResult:
    """One (column, method) test. ``alarm`` = ``significant`` and ``statistic > threshold``.

    ``threshold`` is the practical floor plus ``noise`` (the statistic's 99.9th percentile under no
    drift at these sample sizes) and, in profile mode, plus the statistic's error bound: a change
    alarms only when it exceeds the floor by more than chance and binning could account for.
    """

    column: str
    method: str
    statistic: float
    p_value: float
    adjusted_p_value: float
    threshold: float
    noise: float
    significant: bool
    alarm: bool


@dataclass(frozen=True)
class ColumnPlot:
    """Bar heights for a report plot: shares of each side per bar (bins, or categories)."""

    labels: tuple[str, ...]
    reference_shares: tuple[float, ...]
    current_shares: tuple[float, ...]
    edges: tuple[float, ...] = ()  # numeric only: the len(labels) + 1 bar boundaries


@dataclass(frozen=True)
class ColumnSummary:
    """What was compared in one column: sizes, missing values, categories new in the current."""

    column: str
    kind: str
    n_reference: int
    n_current: int
    n_missing_reference: int
    n_missing_current: int
    plot: ColumnPlot = field(repr=False)
    unseen_categories: Mapping[str, int] = field(default_factory=dict)  # the most frequent ones
    n_unseen: int = 0  # current rows whose category the reference never saw
    note: str = ""  # how the column was judged, where it differs from its kind's usual tests


@dataclass(frozen=True)
class DriftReport:
    """The results of a drift comparison, one row per (column, method).

    >>> import numpy as np, pandas as pd
    >>> from steward.data.drift import compare
    >>> rng = np.random.default_rng(0)
    >>> frame = pd.DataFrame({"amount": rng.normal(size=1_000)})
    >>> report = compare(frame, frame.assign(amount=frame.amount + 1.0))
    >>> report.alarmed, report.alarmed_columns
    (True, ['amount'])
    """

    results: tuple[DriftResult, ...]
    columns: Mapping[str, ColumnSummary] = field(repr=False)
    alpha: float
    correction: str
    n_resamples: int
    skipped_columns: Mapping[str, str] = field(default_factory=dict)

    @property
    def alarmed(self) -> bool:
        """Whether any (column, method) pair alarms."""
        return any(result.alarm for result in self.results)

    @property
    def alarmed_columns(self) -> list[str]:
        """The columns with at least one alarm, in report order."""
        return list(dict.fromkeys(result.column for result in self.results if result.alarm))

    def to_frame(self) -> pd.DataFrame:
        """One row per (column, method), as a pandas DataFrame.

        >>> from steward.data.drift import compare
        >>> list(compare(*_example_frames()).to_frame().columns)[:3]
        ['column', 'method', 'statistic']
        """
        names = list(DriftResult.__dataclass_fields__)
        return pd.DataFrame(
            [[getattr(row, name) for name in names] for row in self.results], columns=names
        )

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe dict: ``{"alarm": bool, "results": [...], ...}``; infinities become None.

        >>> import json
        >>> from steward.data.drift import compare
        >>> json.loads(json.dumps(compare(*_example_frames()).to_dict()))["alarm"]
        True
        """
        return {
            "alarm": self.alarmed,
            "alpha": self.alpha,
            "correction": self.correction,
            "n_resamples": self.n_resamples,
            "results": [
                {name: _json_safe(getattr(row, name)) for name in DriftResult.__dataclass_fields__}
                for row in self.results
            ],
            "columns": {name: _summary_dict(summary) for name, summary in self.columns.items()},
            "skipped_columns": dict(self.skipped_columns),
        }

    def to_text(self, *, max_rows: int | None = None) -> str:
        """A plain-text table for logs and CI output: alarmed columns' tests first.

        With ``max_rows``, a longer table keeps every alarmed row and ends with a line counting the
        quiet ones left out (``steward drift --all`` prints them all).

        >>> from steward.data.drift import compare
        >>> print(compare(*_example_frames()).to_text().splitlines()[0])
        drift: ALARM on 1 of 1 columns (amount); alpha=0.05, correction=bh, resamples=1000
        """
        return _render_text(self, max_rows)

    def _repr_html_(self) -> str:
        """How a notebook shows the report: the same self-contained page."""
        return self.to_html()

    def to_html(self, path: str | os.PathLike[str] | None = None) -> str:
        """A self-contained HTML page (inline SVG plots, no scripts, no network); written to ``path``
        when given, and returned.

        >>> from steward.data.drift import compare
        >>> compare(*_example_frames()).to_html().startswith("<!doctype html>")
        True
        """
        page = _render_html(self)
        if path is not None:
            with open(path, "w", encoding="utf-8") as handle:
                handle.write(page)
        return page


def _example_frames() -> tuple[pd.DataFrame, pd.DataFrame]:
    """A reference and a clearly shifted current frame, for the docstring examples."""
    rng = np.random.default_rng(0)
    return pd.DataFrame({"amount": rng.normal(size=1_000)}), pd.DataFrame(
        {"amount": rng.normal(1.0, size=1_000)}
    )


def _json_safe(value: object) -> object:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _summary_dict(summary: ColumnSummary) -> dict[str, Any]:
    return {
        "kind": summary.kind,
        "n_reference": summary.n_reference,
        "n_current": summary.n_current,
        "n_missing_reference": summary.n_missing_reference,
        "n_missing_current": summary.n_missing_current,
        "unseen_categories": {key: int(count) for key, count in summary.unseen_categories.items()},
        "n_unseen": int(summary.n_unseen),
        "note": summary.note,
    }


def constant_note(constant: float, differing: int, total: int, *, exact: bool = True) -> str:
    """The note of a column constant in the reference: how many current values differ from it.

    >>> constant_note(0.0, 1, 500)[:66]
    'constant in the reference (every value 0): 1 of 500 current values'
    """
    share = differing / total if total else 0.0
    counted = f"{differing}" if exact else f"at least {differing}"
    return (
        f"constant in the reference (every value {constant:.6g}): {counted} of {total} current "
        f"values ({share:.1%}) differ from it; judged by ks alone, the larger share of them on "
        "one side of it"
    )


def build_report(
    outcomes: Sequence[Outcome],
    summaries: Mapping[str, ColumnSummary],
    floors: Mapping[tuple[str, str], float],
    settings: tuple[float, str, int],
    skipped: Mapping[str, str],
) -> DriftReport:
    """The report of ``outcomes``: p-values adjusted together, each test's floor applied.

    ``floors`` maps (column, method) to the floor a statistic must exceed beyond its noise (in
    profile mode the floor plus the error bound); ``settings`` is (alpha, correction,
    n_resamples); ``skipped`` maps a column left out to the reason."""
    alpha, correction, n_resamples = settings
    adjusted = adjust_p_values([outcome.p_value for outcome in outcomes], correction)
    results = []
    for outcome, adjusted_p_value in zip(outcomes, adjusted, strict=True):
        threshold = floors[(outcome.column, outcome.method)] + outcome.noise
        significant = bool(adjusted_p_value <= alpha)
        results.append(
            DriftResult(
                column=outcome.column,
                method=outcome.method,
                statistic=outcome.statistic,
                p_value=outcome.p_value,
                adjusted_p_value=float(adjusted_p_value),
                threshold=threshold,
                noise=outcome.noise,
                significant=significant,
                alarm=significant and outcome.statistic > threshold,
            )
        )
    return DriftReport(
        results=tuple(results),
        columns=dict(summaries),
        alpha=alpha,
        correction=correction,
        n_resamples=n_resamples,
        skipped_columns=dict(skipped),
    )


# --- plots and rendering ---------------------------------------------------------------------------


def numeric_plot(reference: FloatArray, current: FloatArray) -> ColumnPlot:
    """Equal-width bars over the central 99% of both samples (ascending and finite); the tails
    pile into the end bars."""

    def at(values: FloatArray, share: float) -> float:
        return float(values[int(share * (values.size - 1))])

    low = min(at(reference, 0.005), at(current, 0.005))
    high = max(at(reference, 0.995), at(current, 0.995))
    if not high > low:
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, _PLOT_BINS + 1)
    # Both samples come sorted and finite from the drift compare: no pass to check them again.
    reference_shares = bin_counts(reference, edges[1:-1], check=False) / reference.size
    current_shares = bin_counts(current, edges[1:-1], check=False) / current.size
    return ColumnPlot(
        labels=tuple(f"{left:.4g}" for left in edges[:-1]),
        reference_shares=tuple(reference_shares.tolist()),
        current_shares=tuple(current_shares.tolist()),
        edges=tuple(edges.tolist()),
    )


def categorical_summary(
    name: str,
    reference: CategoricalReference,
    n_missing_reference: int,
    counts: Mapping[Any, int],
    n_missing: int,
) -> ColumnSummary:
    """What was compared in a categorical column, with bars for its most frequent categories."""
    unseen, n_unseen = _unseen_categories(reference, counts)
    n_reference = float(reference.counts.sum())
    n_current = float(sum(counts.values()))
    reference_share = dict(zip(reference.categories, reference.counts / n_reference, strict=True))
    current_share = {category: count / n_current for category, count in counts.items()}
    pooled = sorted(
        set(reference_share) | set(current_share),
        key=lambda category: (
            -(reference_share.get(category, 0.0) + current_share.get(category, 0.0))
        ),
    )
    shown = pooled[:_PLOT_CATEGORIES]
    labels = [str(category) for category in shown]
    reference_bars = [reference_share.get(category, 0.0) for category in shown]
    current_bars = [current_share.get(category, 0.0) for category in shown]
    if len(pooled) > len(shown):
        labels.append("(other)")
        reference_bars.append(1.0 - sum(reference_bars))
        current_bars.append(1.0 - sum(current_bars))
    return ColumnSummary(
        column=name,
        kind="categorical",
        n_reference=int(n_reference),
        n_current=int(n_current),
        n_missing_reference=n_missing_reference,
        n_missing_current=n_missing,
        plot=ColumnPlot(tuple(labels), tuple(reference_bars), tuple(current_bars)),
        unseen_categories=unseen,
        n_unseen=n_unseen,
    )


def _format_number(value: float) -> str:
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.4g}"


def _verdict(report: DriftReport) -> str:
    n_columns = len(report.columns)
    settings = (
        f"alpha={report.alpha}, correction={report.correction}, resamples={report.n_resamples}"
    )
    if report.alarmed:
        alarmed = report.alarmed_columns
        return f"drift: ALARM on {len(alarmed)} of {n_columns} columns ({', '.join(alarmed)}); {settings}"
    return f"drift: no alarm across {n_columns} columns; {settings}"


def _result_cells(result: DriftResult) -> tuple[str, ...]:
    verdict = "ALARM" if result.alarm else ("significant" if result.significant else "")
    return (
        result.column,
        result.method,
        _format_number(result.statistic),
        _format_number(result.threshold),
        _format_number(result.p_value),
        _format_number(result.adjusted_p_value),
        verdict,
    )


_HEADER = ("column", "method", "statistic", "threshold", "p_value", "adjusted_p", "verdict")


def _render_text(report: DriftReport, max_rows: int | None = None) -> str:
    alarmed = set(report.alarmed_columns)
    ordered = sorted(report.results, key=lambda result: result.column not in alarmed)
    shown = ordered
    if max_rows is not None and len(ordered) > max_rows:
        shown = [result for result in ordered if result.column in alarmed]
    rows = [_HEADER, *(_result_cells(result) for result in shown)]
    widths = [max(len(row[index]) for row in rows) for index in range(len(_HEADER))]
    lines = [_verdict(report), ""]
    lines += [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    ]
    if len(shown) < len(ordered):
        quiet = {result.column for result in ordered} - alarmed
        lines.append(
            f"... and {len(ordered) - len(shown)} more tests on {len(quiet)} columns that raised "
            "no alarm (pass --all to list them)"
        )
    for summary in report.columns.values():
        if summary.n_unseen:
            unseen = ", ".join(
                f"{key!r}: {count}" for key, count in summary.unseen_categories.items()
            )
            lines.append(
                f"{summary.column}: {summary.n_unseen} current rows in categories the "
                f"reference never saw ({unseen})"
            )
        if summary.note:
            lines.append(f"{summary.column}: {summary.note}")
    for name, reason in report.skipped_columns.items():
        lines.append(f"{name}: not compared ({reason})")
    return "\n".join(lines) + "\n"


def _plot_svg(summary: ColumnSummary) -> markupsafe.Markup:
    """Reference and current bar heights per bin or category, as an inline SVG element."""
    plot = summary.plot
    series = {"reference": plot.reference_shares, "current": plot.current_shares}
    title = f"{summary.column}: reference vs current"
    attributes = {"class": "plot", "data-column": summary.column}
    if plot.edges:  # numeric bins overlap; categories stand side by side
        svg = histogram_svg(plot.edges, series, title=title, attributes=attributes)
    else:
        svg = bar_chart_svg(plot.labels, series, title=title, attributes=attributes)
    return markupsafe.Markup(svg)


_TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("steward", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)


def _render_html(report: DriftReport) -> str:
    columns = [
        {
            "summary": summary,
            "svg": _plot_svg(summary),
            "unseen": ", ".join(
                f"{key} ({count})" for key, count in summary.unseen_categories.items()
            ),
        }
        for summary in report.columns.values()
    ]
    return _TEMPLATES.get_template("drift_report.html.j2").render(
        alarmed=report.alarmed,
        verdict=_verdict(report),
        header=_HEADER,
        rows=[{"alarm": result.alarm, "cells": _result_cells(result)} for result in report.results],
        columns=columns,
        skipped=list(report.skipped_columns.items()),
    )
