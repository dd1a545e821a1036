"""The system page's panels, each built from stored results and profiles over the selected range."""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from sqlalchemy.orm import Session

from steward.core import Steward
from steward.monitoring.performance import uplift_between
from steward.render import queries
from steward.render.charts import HeatCell, Series, heatmap_svg
from steward.render.queries import SampledResult
from steward.store import MonitorResultRow, SLOEvaluationRow
from steward.web.dashboard.chartdata import Chart
from steward.web.dashboard.fairness_panel import fairness_panel
from steward.web.dashboard.timerange import PRESETS, PageRange, choose_range

__all__ = [
    "HEATMAPS",
    "HEATMAP_COLUMNS",
    "DrawnCache",
    "drift_heatmap",
    "page_range",
    "performance_panel",
    "system_context",
    "volume_panel",
]

#: Windows the drift heatmap shows at most: a week of hourly windows. A longer range is sampled
#: into this many groups of consecutive windows, each shown by its alarmed window if it has one
#: (``queries.sampled_results``), so a cell stays wide enough to click and no alarm disappears.
HEATMAP_COLUMNS = 168


class DrawnCache:
    """Drawn panels by store and key, the newest ``size`` of each store, safe across threads.

    A key must name everything the panel is drawn from (stored results never change, so their
    ids do). Entries are held per engine, weakly: a store that goes away takes its entries along,
    and two workspaces never share one (their ids overlap).

    >>> class Store: ...
    >>> cache, store = DrawnCache(size=1), Store()
    >>> cache.put(store, ("churn", (1, 2)), "<svg/>")
    >>> cache.get(store, ("churn", (1, 2))), cache.get(Store(), ("churn", (1, 2)))
    ('<svg/>', None)
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._drawn: weakref.WeakKeyDictionary[Any, OrderedDict[Hashable, str | None]] = (
            weakref.WeakKeyDictionary()
        )
        self._lock = threading.Lock()

    def get(self, store: Any, key: Hashable) -> str | None:
        """The panel drawn for ``key`` on ``store``, or None when none is kept."""
        with self._lock:
            drawn = self._drawn.get(store)
            if drawn is None or key not in drawn:
                return None
            drawn.move_to_end(key)
            return drawn[key]

    def put(self, store: Any, key: Hashable, panel: str | None) -> None:
        with self._lock:
            drawn = self._drawn.setdefault(store, OrderedDict())
            drawn[key] = panel
            drawn.move_to_end(key)
            while len(drawn) > self.size:
                drawn.popitem(last=False)


#: Drift heatmaps drawn lately (a year's is 1.1 MB of SVG and 35 ms to draw), by the system and
#: the ids of the results drawn.
HEATMAPS = DrawnCache(size=8)


def _ts(moment: datetime) -> float:
    return moment.timestamp()


def _number(value: Any) -> float | None:
    if type(value) is float:  # the common case first: a year's heatmap reads 20,000 numbers
        return value
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def page_range(
    latest: dict[str, MonitorResultRow],
    slos: dict[str, SLOEvaluationRow],
    range_text: str | None,
    low: str | None = None,
    high: str | None = None,
) -> tuple[PageRange, datetime | None]:
    """The range the URL asks for (``timerange.choose_range``) and the latest stored activity.

    Presets end now, or at the newest window when a monitor ran ahead of the clock."""
    newest = [row.window_end for row in latest.values()]
    newest += [row.window_end for row in slos.values()]
    activity = max(newest, default=None)
    now = max(_now(), activity) if activity else _now()
    return choose_range(range_text, low, high, now=now, latest=activity), activity


def system_context(
    steward: Steward,
    events: Any,
    session: Session,
    name: str,
    range_text: str | None,
    low: str | None = None,
    high: str | None = None,
) -> dict[str, Any]:
    """Everything the system page shows over the range the URL asks for (see ``timerange``)."""
    info = steward.system(name)
    system_id = queries.system_id_of(session, name)
    latest = queries.latest_results(session, system_id)
    evaluations = queries.latest_slo_evaluations(session, system_id)
    slos = {f"slo:{slo}": row for slo, row in evaluations.items()}  # named as their alert rules
    chosen, activity = page_range(latest, slos, range_text, low, high)
    start, end = chosen.start, chosen.end
    monitors = ("drift", "performance", "estimated_performance", "uplift", "data_quality")
    picked = queries.sampled_ids_of(
        session, system_id, monitors, start, end, limits={"drift": HEATMAP_COLUMNS}
    )
    # Stored results never change, so the same drift results draw the same heatmap: a drawn one
    # is reused, and those results' details are not even read.
    heatmap_key = (name, tuple(picked["drift"]))
    heatmap = HEATMAPS.get(session.get_bind(), heatmap_key)
    sampled: dict[str, list[SampledResult]] = {monitor: [] for monitor in monitors}
    wanted = [ids for monitor, ids in picked.items() if heatmap is None or monitor != "drift"]
    for result in queries.load_results(session, [one for ids in wanted for one in ids]):
        sampled[result.monitor].append(result)
    if heatmap is None:
        heatmap = drift_heatmap(name, sampled["drift"])
        HEATMAPS.put(session.get_bind(), heatmap_key, heatmap)
    bounds = (_ts(start), _ts(end))
    moves = queries.alias_moves(session, system_id, limit=400)
    return {
        "system": info,
        "range": chosen,
        "ranges": list(PRESETS),
        "activity": activity,
        "start": start,
        "end": end,
        "aliases": queries.aliases(session, system_id),
        "moves": moves[:30],
        "alias_chart": _alias_chart(moves, bounds),
        "volume_chart": volume_panel(steward, name, start, end, sampled["data_quality"]),
        "latency": _latency_panel(session, system_id, slos, info.declared, start, end),
        "heatmap": heatmap,
        "performance_charts": performance_panel(
            sampled["performance"], sampled["estimated_performance"], bounds
        ),
        "latest": latest,
        "uplift_chart": _uplift_chart(sampled["uplift"], bounds),
        "uplift_text": _range_uplift(steward, events, name, start, end),
        "quality_chart": _quality_chart(sampled["data_quality"], bounds),
        "fairness": fairness_panel(latest.get("fairness"), info.declared.fairness),
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


def _alias_chart(moves: Sequence[Any], bounds: tuple[float, float]) -> Chart:
    """The version each alias held over the page's range, as steps (moves come newest first)."""
    by_alias: dict[str, list[tuple[float, float | None]]] = {}
    for move in reversed(moves):  # oldest first
        points = by_alias.setdefault(move.alias, [])
        if points:
            points.append((_ts(move.moved_at), points[-1][1]))  # a step, not a slope
        points.append((_ts(move.moved_at), move.to_version))
    series = [Series(alias, _clip(points, bounds)) for alias, points in sorted(by_alias.items())]
    return Chart(
        "alias-chart",
        "version held by each alias",
        series,
        kind="version",
        height=150,
        step=True,
        span=bounds,
    )


def _clip(
    points: list[tuple[float, float | None]], bounds: tuple[float, float]
) -> list[tuple[float, float | None]]:
    """The steps inside the range, starting with the value held at its start and held to its end."""
    start, end = bounds
    before = [value for moment, value in points if moment <= start]
    inside = [(moment, value) for moment, value in points if start < moment <= end]
    held = [(start, before[-1])] if before else []
    last = inside[-1][1] if inside else (before[-1] if before else None)
    return [*held, *inside, *([(end, last)] if last is not None and (held or inside) else [])]


def volume_panel(
    steward: Steward, name: str, start: datetime, end: datetime, quality: Sequence[SampledResult]
) -> Chart:
    """Predictions per bucket from the profiles; per monitored window when none are stored."""
    bounds = (_ts(start), _ts(end))
    volume = queries.volume_series(queries.profile_roots(steward), name, start, end)
    if volume:
        counts = [(_ts(moment), float(count)) for moment, count in volume]
        series = Series("predictions per bucket", counts)
    else:
        points = [(_ts(row.window_end), _number(row.details.get("volume"))) for row in quality]
        series = Series("predictions per window", points)
    return Chart("volume-chart", "volume", [series], kind="count", span=bounds)


def _latency_panel(
    session: Session,
    system_id: int,
    slos: dict[str, SLOEvaluationRow],
    declared: Any,
    start: datetime,
    end: datetime,
) -> Chart | None:
    """The latency SLO's indicator (share of fast requests) over time, if one is declared."""
    names = [slo.name for slo in declared.slos if slo.indicator == "latency"]
    if not names:
        return None
    series = []
    for slo_name in names:
        rows = queries.sampled_slo_evaluations(session, system_id, slo_name, start, end)
        points = [(_ts(row.window_end), _number(row.sli)) for row in rows]
        series.append(Series(f"{slo_name}: share within threshold", points))
    bounds = (_ts(start), _ts(end))
    return Chart("latency-chart", "latency SLO indicator", series, kind="share", span=bounds)


def drift_heatmap(name: str, results: Sequence[SampledResult]) -> str | None:
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
    links = [f"/ui/systems/{quote(name)}/features/{quote(column, safe='')}" for column in order]
    return heatmap_svg(heat, order, labels, title=f"drift of {name}'s inputs", row_links=links)


def _strongest(results: Sequence[dict[str, Any]]) -> dict[str, tuple[float | None, bool, str]]:
    """Per column, the method whose statistic is largest against its threshold (the first of
    equals), alarmed if any method alarmed, with the winner's text."""
    best: dict[str, tuple[float | None, bool, dict[str, Any], float | None]] = {}
    for item in results:
        statistic, threshold = _number(item.get("statistic")), _number(item.get("threshold"))
        ratio = statistic / threshold if statistic is not None and threshold else None
        column = str(item.get("column"))
        current = best.get(column)
        if current is None or (ratio or 0.0) > (current[0] or 0.0):
            alarm = bool(item.get("alarm")) or bool(current and current[1])
            best[column] = (ratio, alarm, item, statistic)
        elif not current[1] and item.get("alarm"):
            best[column] = (current[0], True, current[2], current[3])
    # The text is formatted once per column, for the method that won the cell.
    return {
        column: (ratio, alarm, _method_text(item, statistic))
        for column, (ratio, alarm, item, statistic) in best.items()
    }


def _method_text(item: dict[str, Any], statistic: float | None) -> str:
    text = f"{item.get('method')} {statistic if statistic is None else round(statistic, 4)}"
    return text + (" (alarm)" if item.get("alarm") else "")


def performance_panel(
    realized: Sequence[SampledResult],
    estimated: Sequence[SampledResult],
    bounds: tuple[float, float],
) -> list[Chart]:
    """Realized ROC AUC per model version with its interval, the estimate, and the unlabeled share."""
    if not realized and not estimated:
        return []
    by_version: dict[Any, list[tuple[float, float | None, float | None, float | None]]] = {}
    unlabeled = []
    for row in realized:
        moment = _ts(row.window_end)
        unlabeled.append((moment, _number(row.details.get("unlabeled_share"))))
        for record in row.details.get("metrics") or []:
            if record.get("metric") == "roc_auc":
                by_version.setdefault(record.get("model_version"), []).append(
                    (moment, *_interval(record))
                )
    series = [
        Series(f"realized v{version}", points)
        for version, points in sorted(by_version.items(), key=lambda item: str(item[0]))
    ]
    points = [
        (_ts(row.window_end), *_interval(row.details.get("estimated_roc_auc") or {}))
        for row in estimated
    ]
    if points:
        series.append(Series("estimated", points, dashed=True))
    chart = Chart("performance-chart", "ROC AUC with 95% intervals", series, span=bounds)
    share = Chart(
        "unlabeled-chart",
        "unlabeled share",
        [Series("unlabeled share", unlabeled)],
        kind="share",
        height=140,
        y_range=(0.0, 1.0),
        span=bounds,
    )
    return [chart, share]


def _interval(record: dict[str, Any]) -> tuple[float | None, float | None, float | None]:
    return (
        _number(record.get("value")),
        _number(record.get("lower")),
        _number(record.get("upper")),
    )


def _uplift_chart(rows: Sequence[SampledResult], bounds: tuple[float, float]) -> Chart | None:
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
    return Chart(
        "uplift-chart",
        "uplift in points with 95% interval",
        [Series("uplift vs holdout (points)", points)],
        kind="points",
        span=bounds,
    )


def _points(value: Any) -> float | None:
    number = _number(value)
    return None if number is None else number * 100


def _quality_chart(rows: Sequence[SampledResult], bounds: tuple[float, float]) -> Chart | None:
    points = [(_ts(row.window_end), _number(row.details.get("violation_rate"))) for row in rows]
    if not points:
        return None
    return Chart(
        "quality-chart",
        "contract violations",
        [Series("share of records breaking the contract", points)],
        kind="share",
        height=140,
        span=bounds,
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
