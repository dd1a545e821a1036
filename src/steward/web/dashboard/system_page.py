"""The system page's panels, each built from stored results and profiles over the selected range."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from steward.core import Steward
from steward.monitoring.performance import uplift_between
from steward.render import queries
from steward.render.charts import HeatCell, Series, heatmap_svg, line_chart_svg
from steward.store import MonitorResultRow, SLOEvaluationRow

__all__ = [
    "HEATMAP_COLUMNS",
    "drift_heatmap",
    "performance_panel",
    "system_context",
    "volume_panel",
]

#: Windows the drift heatmap shows at most: a week of hourly windows. A longer range is sampled
#: into this many groups of consecutive windows, each shown by its alarmed window if it has one
#: (``queries.sampled_results``), so a cell stays wide enough to click and no alarm disappears.
HEATMAP_COLUMNS = 168


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def system_context(
    steward: Steward, events: Any, session: Session, name: str, range_key: str | None
) -> dict[str, Any]:
    """Everything the system page shows, for the range ending at the newest stored window."""
    info = steward.system(name)
    system_id = queries.system_id_of(session, name)
    key, span = queries.parse_range(range_key)
    latest = queries.latest_results(session, system_id)
    evaluations = queries.latest_slo_evaluations(session, system_id)
    slos = {f"slo:{slo}": row for slo, row in evaluations.items()}  # named as their alert rules
    newest = [row.window_end for row in latest.values()]
    newest += [row.window_end for row in slos.values()]
    end = max(newest, default=None) or _now()
    start = end - span
    monitors = ("drift", "performance", "estimated_performance", "uplift", "data_quality")
    sampled = queries.sampled_results_of(
        session, system_id, monitors, start, end, limits={"drift": HEATMAP_COLUMNS}
    )
    return {
        "system": info,
        "range_key": key,
        "ranges": list(queries.RANGES),
        "start": start,
        "end": end,
        "aliases": queries.aliases(session, system_id),
        "moves": queries.alias_moves(session, system_id, limit=30),
        "alias_chart": _alias_chart(queries.alias_moves(session, system_id, limit=400)),
        "volume_chart": volume_panel(steward, name, start, end, sampled["data_quality"]),
        "latency": _latency_panel(session, system_id, slos, info.declared, start, end),
        "heatmap": drift_heatmap(name, sampled["drift"]),
        "performance_chart": performance_panel(
            sampled["performance"], sampled["estimated_performance"]
        ),
        "latest": latest,
        "uplift_chart": _uplift_chart(sampled["uplift"]),
        "uplift_text": _range_uplift(steward, events, name, start, end),
        "quality_chart": _quality_chart(sampled["data_quality"]),
        "slos": slos,
        "alerts": queries.recent_alerts(session, system_id),
        "actions": queries.recent_actions(session, system_id),
        "suspension": queries.open_suspension(session, system_id),
    }


def _range_uplift(steward: Steward, events: Any, name: str, start: datetime, end: datetime) -> str:
    """The uplift over every labeled prediction of the page's range, or why there is none."""
    if events is None:
        return "no event log to measure uplift from"
    found = uplift_between(steward, events, name, start, end)
    return found if isinstance(found, str) else found.summary()


def _now() -> datetime:
    from datetime import UTC

    return datetime.now(UTC)


def _alias_chart(moves: Sequence[Any]) -> str:
    by_alias: dict[str, list[tuple[float, float | None]]] = {}
    for move in reversed(moves):  # oldest first
        points = by_alias.setdefault(move.alias, [])
        if points:
            points.append((_ts(move.moved_at), points[-1][1]))  # a step, not a slope
        points.append((_ts(move.moved_at), move.to_version))
    series = [Series(alias, points) for alias, points in sorted(by_alias.items())]
    return line_chart_svg(series, title="version held by each alias", height=150, y_format=".0f")


def volume_panel(
    steward: Steward, name: str, start: datetime, end: datetime, quality: Sequence[MonitorResultRow]
) -> str:
    """Predictions per bucket from the profiles; per monitored window when none are stored."""
    volume = queries.volume_series(queries.profile_roots(steward), name, start, end)
    if volume:
        counts = [(_ts(moment), float(count)) for moment, count in volume]
        return line_chart_svg([Series("predictions per bucket", counts)], title="volume")
    points = [(_ts(row.window_end), _number(row.details.get("volume"))) for row in quality]
    return line_chart_svg([Series("predictions per window", points)], title="volume")


def _latency_panel(
    session: Session,
    system_id: int,
    slos: dict[str, SLOEvaluationRow],
    declared: Any,
    start: datetime,
    end: datetime,
) -> str | None:
    """The latency SLO's indicator (share of fast requests) over time, if one is declared."""
    names = [slo.name for slo in declared.slos if slo.indicator == "latency"]
    if not names:
        return None
    series = []
    for slo_name in names:
        rows = queries.sampled_slo_evaluations(session, system_id, slo_name, start, end)
        points = [(_ts(row.window_end), _number(row.sli)) for row in rows]
        series.append(Series(f"{slo_name}: share within threshold", points))
    return line_chart_svg(series, title="latency SLO indicator", y_format=".1%")


def drift_heatmap(name: str, results: Sequence[MonitorResultRow]) -> str | None:
    """Feature by window, coloured by the strongest drift statistic relative to its alarm floor
    (1 = at the floor), alarmed cells outlined; each cell carries what the overlay fetch needs."""
    if not results:
        return None
    columns: dict[str, float] = {}
    cells: list[tuple[int, str, float | None, bool, str]] = []
    for index, row in enumerate(results):
        for column, (ratio, alarm, text) in _strongest(row.details.get("results") or []).items():
            columns[column] = max(columns.get(column, 0.0), ratio or 0.0)
            cells.append((index, column, ratio, alarm, text))
    order = sorted(columns, key=lambda c: (-columns[c], c))
    position = {column: i for i, column in enumerate(order)}
    # Each window's label and bounds are formatted once, not once per column (a year: 12,000 cells).
    labels = [f"{row.window_end:%d %b %H:%M}" for row in results]
    bounds = [(row.window_start.isoformat(), row.window_end.isoformat()) for row in results]
    heat = [
        HeatCell(
            row=position[column],
            column=index,
            value=None if ratio is None else min(ratio / 2, 1.0),
            alarm=alarm,
            title=f"{column}, {labels[index]}: {text}",
            data={"column": column, "start": bounds[index][0], "end": bounds[index][1]},
        )
        for index, column, ratio, alarm, text in cells
    ]
    return heatmap_svg(heat, order, labels, title=f"drift of {name}'s inputs")


def _strongest(results: Sequence[dict[str, Any]]) -> dict[str, tuple[float | None, bool, str]]:
    """Per column, the method whose statistic is largest against its threshold."""
    best: dict[str, tuple[float | None, bool, str]] = {}
    for item in results:
        statistic, threshold = _number(item.get("statistic")), _number(item.get("threshold"))
        ratio = statistic / threshold if statistic is not None and threshold else None
        column = str(item.get("column"))
        current = best.get(column)
        alarm = bool(item.get("alarm")) or bool(current and current[1])
        if current is None or (ratio or 0.0) > (current[0] or 0.0):
            # The text is formatted only for the method that wins the cell.
            text = f"{item.get('method')} {statistic if statistic is None else round(statistic, 4)}"
            best[column] = (ratio, alarm, text + (" (alarm)" if item.get("alarm") else ""))
        else:
            best[column] = (current[0], alarm, current[2])
    return best


def performance_panel(
    realized: Sequence[MonitorResultRow], estimated: Sequence[MonitorResultRow]
) -> str | None:
    """Realized ROC AUC per model version with its interval, the estimate, and the unlabeled share."""
    if not realized and not estimated:
        return None
    by_version: dict[Any, list[tuple[float, float | None, float | None, float | None]]] = {}
    unlabeled = []
    for row in realized:
        moment = _ts(row.window_end)
        unlabeled.append((moment, _number(row.details.get("unlabeled_share"))))
        for record in row.details.get("metrics") or []:
            if record.get("metric") == "roc_auc":
                by_version.setdefault(record.get("model_version"), []).append(
                    (
                        moment,
                        _number(record.get("value")),
                        _number(record.get("lower")),
                        _number(record.get("upper")),
                    )
                )
    series = [
        Series(f"realized v{version}", points)
        for version, points in sorted(by_version.items(), key=lambda item: str(item[0]))
    ]
    points = []
    for row in estimated:
        figure = row.details.get("estimated_roc_auc") or {}
        points.append(
            (
                _ts(row.window_end),
                _number(figure.get("value")),
                _number(figure.get("lower")),
                _number(figure.get("upper")),
            )
        )
    if points:
        series.append(Series("estimated", points, dashed=True))
    chart = line_chart_svg(series, title="ROC AUC with 95% intervals")
    share = line_chart_svg(
        [Series("unlabeled share", unlabeled)],
        title="unlabeled share",
        height=120,
        y_format=".0%",
        y_range=(0.0, 1.0),
    )
    return chart + share


def _uplift_chart(rows: Sequence[MonitorResultRow]) -> str | None:
    """Uplift in percentage points (a difference of two rates, not a share: it can be negative)."""
    points = [
        (
            _ts(row.window_end),
            *(_points(row.details.get(key)) for key in ("uplift", "uplift_low", "uplift_high")),
        )
        for row in rows
    ]
    if not any(point[1] is not None for point in points):
        return None
    return line_chart_svg(
        [Series("uplift vs holdout (points)", points)],
        title="uplift in points with 95% interval",
        y_format="+.1f",
    )


def _points(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else number * 100


def _quality_chart(rows: Sequence[MonitorResultRow]) -> str | None:
    points = [(_ts(row.window_end), _number(row.details.get("violation_rate"))) for row in rows]
    if not points:
        return None
    return line_chart_svg(
        [Series("share of records breaking the contract", points)],
        title="contract violations",
        height=140,
        y_format=".1%",
    )


def window_bounds(start: str, end: str) -> tuple[datetime, datetime]:
    """Parse the ISO bounds a heatmap cell sends back."""
    from steward.errors import InvalidInputError

    try:
        low, high = datetime.fromisoformat(start), datetime.fromisoformat(end)
    except ValueError:
        raise InvalidInputError(
            f"window {start!r} to {end!r} is not a pair of ISO times; click a heatmap cell"
        ) from None
    if low.tzinfo is None or high.tzinfo is None or high <= low or high - low > timedelta(days=400):
        raise InvalidInputError(
            f"window {start!r} to {end!r} must be timezone-aware, ordered and under 400 days"
        )
    return low, high
