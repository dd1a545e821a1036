"""One input feature's page: its drift statistics over the range and its distributions.

The statistics come from the stored ``drift`` results (each method's statistic, its alarm
threshold and whether it alarmed, per window); the distributions from the stored profiles against
the champion's reference sample (``overlay.drift_overlay``): the newest window of the range, and
the whole range merged (its last ``MERGED`` days when it is longer).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy.orm import Session

from steward.core import Steward
from steward.errors import NotFoundError
from steward.render import queries
from steward.render.charts import Series
from steward.store import MonitorResultRow
from steward.web.dashboard.chartdata import Chart
from steward.web.dashboard.overlay import drift_overlay
from steward.web.dashboard.system_page import page_range
from steward.web.dashboard.timerange import PRESETS

__all__ = ["MERGED", "column_items", "feature_context", "statistic_charts"]

#: The most of a range whose profiles the page merges into one "current" histogram: a year of
#: hourly profiles would take about a second; 90 days keep the page near a third of that.
MERGED = timedelta(days=90)


def column_items(row: MonitorResultRow, column: str) -> list[dict[str, Any]]:
    """The drift result's records for ``column``, one per method."""
    return [
        item
        for item in row.details.get("results") or []
        if isinstance(item, dict) and item.get("column") == column
    ]


def _known_columns(rows: Sequence[MonitorResultRow]) -> list[str]:
    return sorted(
        {str(item.get("column")) for row in rows for item in row.details.get("results") or []}
    )


def statistic_charts(
    rows: Sequence[MonitorResultRow], column: str, bounds: tuple[float, float]
) -> list[Chart]:
    """One chart per drift method (their statistics have different scales): the statistic per
    window, and its alarm threshold dashed beside it in the same colour."""
    statistics: dict[str, list[tuple[float, float | None]]] = {}
    thresholds: dict[str, list[tuple[float, float | None]]] = {}
    for row in rows:
        moment = row.window_end.timestamp()
        for item in column_items(row, column):
            method = str(item.get("method"))
            statistics.setdefault(method, []).append((moment, _number(item.get("statistic"))))
            thresholds.setdefault(method, []).append((moment, _number(item.get("threshold"))))
    return [
        Chart(
            f"statistic-{method}",
            f"{method}",
            [
                Series(f"{method} statistic", statistics[method]),
                Series("alarm threshold", thresholds[method], dashed=True),
            ],
            height=150,
            span=bounds,
            colors=(index, index),
        )
        for index, method in enumerate(sorted(statistics))
    ]


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _windows(rows: Sequence[MonitorResultRow], column: str) -> list[dict[str, Any]]:
    """The newest windows first (at most 30), each with its methods' figures."""
    listed = []
    for row in reversed(rows[-30:]):
        items = column_items(row, column)
        if items:
            listed.append(
                {
                    "start": row.window_start,
                    "end": row.window_end,
                    "alarm": any(bool(item.get("alarm")) for item in items),
                    "items": items,
                }
            )
    return listed


def feature_context(
    steward: Steward,
    session: Session,
    name: str,
    column: str,
    range_text: str | None,
    low: str | None = None,
    high: str | None = None,
) -> dict[str, Any]:
    """Everything the feature page shows over the range the URL asks for.

    Raises ``NotFoundError`` naming the known features when no drift result knows ``column``.
    """
    info = steward.system(name)
    system_id = queries.system_id_of(session, name)
    latest = queries.latest_results(session, system_id)
    slos = {
        f"slo:{slo}": row for slo, row in queries.latest_slo_evaluations(session, system_id).items()
    }
    chosen, activity = page_range(latest, slos, range_text, low, high)
    rows = queries.sampled_results(session, system_id, "drift", chosen.start, chosen.end)
    newest = latest.get("drift")
    known = _known_columns([*rows, *([newest] if newest else [])])
    if column not in known:
        raise NotFoundError(
            f"system {name!r} has no feature {column!r} in its drift results; "
            f"its features are: {', '.join(known) or 'none yet (run the drift monitor)'}"
        )
    bounds = (chosen.start.timestamp(), chosen.end.timestamp())
    with_column = [row for row in rows if column_items(row, column)]
    window = with_column[-1] if with_column else None
    merged_from = max(chosen.start, chosen.end - MERGED)
    return {
        "system": info,
        "column": column,
        "range": chosen,
        "ranges": list(PRESETS),
        "activity": activity,
        "statistic_charts": statistic_charts(rows, column, bounds),
        "windows": _windows(rows, column),
        "latest_window": window,
        "window_overlay": (
            drift_overlay(steward, name, column, window.window_start, window.window_end)
            if window
            else None
        ),
        "range_overlay": drift_overlay(steward, name, column, merged_from, chosen.end),
        "range_capped": merged_from > chosen.start,
        "features": known,
    }
