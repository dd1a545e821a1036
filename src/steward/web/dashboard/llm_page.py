"""The dashboard's LLM page: what an ``llm`` system's calls cost, how many, how fast, how often failing.

``llm_context`` reads the range's ``llm_call`` events once (``EventLog.scan``), totals them with
``steward.llm.usage.summarize`` (overall, by day, by prompt version, by model), lists the newest
calls, and reads the stored results of the ``llm_outputs`` monitor for a small grid of descriptors
by window. Cost counts priced calls only: an unpriced call (a model no price covers) is counted
apart and shown as such, never as $0, and the cost per call is over the priced calls.

The grid reads each result's ``details`` defensively (``descriptors``, ``results`` and
``alarmed_descriptors`` when present), so a result of another shape still lists with its status
and summary.

>>> format_dollars(1234.5), format_dollars(0.0123456), format_dollars(None)
('$1,234.50', '$0.01235', '–')
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from steward.core import Steward
from steward.llm.usage import UsageRow, summarize
from steward.render import queries
from steward.render.charts import Series
from steward.store import MonitorResultRow
from steward.web.dashboard.chartdata import Chart
from steward.web.dashboard.timerange import PRESETS, choose_range

__all__ = [
    "CALL_LIMIT",
    "OUTPUT_MONITOR",
    "OUTPUT_WINDOWS",
    "CallRow",
    "Figure",
    "OutputCell",
    "OutputGrid",
    "OutputLine",
    "call_rows",
    "daily_charts",
    "format_dollars",
    "headline",
    "llm_context",
    "output_grid",
]

#: How many of the newest calls the page lists.
CALL_LIMIT = 50
#: The monitor whose stored results the grid shows, and how many of its newest windows.
OUTPUT_MONITOR = "llm_outputs"
OUTPUT_WINDOWS = 12
#: At most this many stored results are read for the grid (several groups can share a window).
_OUTPUT_ROWS = 400
_OUTPUT_LIST = 10
_UNPRICED_HINT = "no price for their model: add it under prices: in steward.yaml"
#: What the totals need; the texts stay out of pandas.
_SUMMARY_COLUMNS = (
    "event_time",
    "prompt",
    "prompt_version",
    "request_model",
    "response_model",
    "input_tokens",
    "output_tokens",
    "cost",
    "priced",
    "latency_ms",
    "error",
)


# --- the headline --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Figure:
    """One headline figure: ``value`` is the number (None when there is none), ``text`` how it
    shows, ``level`` a CSS class (``amber`` for unpriced calls) and ``hint`` a line under it."""

    key: str
    label: str
    value: float | None
    text: str
    level: str = ""
    hint: str = ""


def format_dollars(value: float | None) -> str:
    """US dollars to the cent from $1, with about four significant digits below; ``–`` for None."""
    if value is None or not math.isfinite(value):
        return "–"
    if value == 0:
        return "$0.00"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    digits = min(9, 3 - math.floor(math.log10(abs(value))))
    return f"${value:.{digits}f}"


def headline(total: UsageRow | None) -> list[Figure]:
    """The range's figures: calls, cost of the priced calls, unpriced calls, cost per priced call,
    p95 latency and error rate.

    >>> [f.text for f in headline(None)]
    ['0', '–', '0', '–', '–', '–']
    """
    calls = total.calls if total else 0
    unpriced = total.unpriced if total else 0
    priced = calls - unpriced
    cost = total.cost if total and priced else None
    per_call = total.cost_per_call if total else None
    p95 = total.latency_p95_ms if total else None
    errors = total.errors if total else 0
    rate = errors / calls if calls else None
    return [
        Figure("calls", "calls", calls, f"{calls:,}"),
        Figure(
            "cost",
            "total cost",
            cost,
            format_dollars(cost),
            hint=f"over {priced:,} priced calls" if priced else "no priced call",
        ),
        Figure(
            "unpriced",
            "unpriced calls",
            unpriced,
            f"{unpriced:,}",
            level="amber" if unpriced else "",
            hint=_UNPRICED_HINT if unpriced else "every call priced",
        ),
        Figure("cost_per_call", "cost per call", per_call, format_dollars(per_call), hint="priced"),
        Figure("latency_p95", "p95 latency", p95, "–" if p95 is None else f"{p95:,.0f} ms"),
        Figure(
            "error_rate",
            "error rate",
            rate,
            "–" if rate is None else f"{rate:.1%}",
            hint=f"{errors:,} of {calls:,} calls" if calls else "",
        ),
    ]


# --- charts by day -------------------------------------------------------------------------------


_Points = list[tuple[float, float | None]]


def daily_charts(days: Sequence[UsageRow], start: datetime, end: datetime) -> dict[str, Chart]:
    """Cost, calls, p95 latency and error rate per UTC day from ``start`` to ``end``.

    ``days`` are ``summarize(calls, by="day")``. A day without calls has 0 calls and $0 cost
    and no latency or error rate (a gap); a day whose calls were all unpriced has no cost.
    """
    by_day = {row.group: row for row in days}
    first, last = start.astimezone(UTC).date(), end.astimezone(UTC).date()
    points: dict[str, _Points] = {key: [] for key in ("cost", "calls", "unpriced", "p95", "errors")}
    for offset in range((last - first).days + 1):
        day = first + timedelta(days=offset)
        x = datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
        for key, value in _day_values(by_day.get(day.isoformat())).items():
            points[key].append((x, value))
    cost, calls, unpriced = points["cost"], points["calls"], points["unpriced"]
    p95, errors = points["p95"], points["errors"]
    call_series = [Series("calls", calls)]
    if any(point[1] for point in unpriced):
        call_series.append(Series("unpriced calls", unpriced))
    span = (start.timestamp(), end.timestamp())
    return {
        "cost": Chart("chart-cost", "cost per day (US$)", [Series("cost of priced calls", cost)],
                      span=span),
        "calls": Chart("chart-calls", "calls per day", call_series, kind="count", span=span),
        "latency": Chart("chart-latency", "p95 latency per day (ms)",
                         [Series("p95 latency", p95)], kind="count", span=span),
        "errors": Chart("chart-errors", "error rate per day", [Series("failed", errors)],
                        kind="share", y_range=(0.0, 1.0), span=span),
    }  # fmt: skip


def _day_values(row: UsageRow | None) -> dict[str, float | None]:
    """One day's points; a day without calls spent nothing and has no latency or error rate."""
    if row is None:
        return {"cost": 0.0, "calls": 0.0, "unpriced": 0.0, "p95": None, "errors": None}
    return {
        "cost": row.cost if row.calls > row.unpriced else None,
        "calls": float(row.calls),
        "unpriced": float(row.unpriced),
        "p95": row.latency_p95_ms,
        "errors": row.errors / row.calls,
    }


# --- the newest calls ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CallRow:
    """One call as the table shows it; ``cost`` is None for an unpriced call."""

    at: datetime
    prompt: str
    model: str
    input_tokens: int
    cached_tokens: int
    output_tokens: int
    priced: bool
    cost: float | None
    latency_ms: float | None
    finish: str
    error: str
    output_text: str | None

    @property
    def time_text(self) -> str:
        """The call's start, to the second, UTC."""
        return self.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def call_rows(calls: pa.Table, limit: int = CALL_LIMIT) -> list[CallRow]:
    """The newest ``limit`` of ``calls`` (a scan, oldest first), newest first."""
    newest = calls.slice(max(0, calls.num_rows - limit)).to_pylist()[::-1]
    return [_call_row(row) for row in newest]


def _call_row(row: Mapping[str, Any]) -> CallRow:
    prompt = str(row.get("prompt") or "")
    version = row.get("prompt_version")
    if prompt and version is not None:
        prompt = f"{prompt} v{version}"
    priced = bool(row.get("priced"))
    return CallRow(
        at=row["event_time"],
        prompt=prompt,
        model=str(row.get("response_model") or row.get("request_model") or ""),
        input_tokens=int(row.get("input_tokens") or 0),
        cached_tokens=int(row.get("cache_read_tokens") or 0),
        output_tokens=int(row.get("output_tokens") or 0),
        priced=priced,
        cost=row.get("cost") if priced else None,
        latency_ms=row.get("latency_ms"),
        finish=", ".join(_reasons(row.get("finish_reasons"))),
        error=str(row.get("error") or ""),
        output_text=row.get("output_text"),
    )


def _reasons(value: Any) -> list[str]:
    """Finish reasons are stored as a JSON list; tolerate a list or a bare string."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return [value]
    if isinstance(value, list):
        return [str(item) for item in value]
    return []


# --- the output monitor's grid -------------------------------------------------------------------


@dataclass(frozen=True)
class OutputCell:
    """One descriptor in one window: ``state`` is ``alarm``, ``ok`` or ``none`` (not judged)."""

    state: str
    text: str = ""
    title: str = ""


@dataclass(frozen=True)
class OutputLine:
    """One stored result as a line of the list under the grid."""

    window_start: datetime
    window_end: datetime
    status: str
    group: str
    summary: str


@dataclass(frozen=True)
class OutputGrid:
    """Descriptors down, windows across (oldest left); ``lines`` are the newest results."""

    windows: list[tuple[datetime, datetime, str]]
    rows: list[tuple[str, list[OutputCell]]]
    lines: list[OutputLine]


def output_grid(results: Sequence[MonitorResultRow]) -> OutputGrid | None:
    """The grid of stored ``llm_outputs`` results (any order); None when there are none.

    A window's cell alarms when any of its results (one per prompt version and model, or one
    for all calls) alarmed on that descriptor; a descriptor a window did not judge is ``none``.
    """
    if not results:
        return None
    ordered = sorted(results, key=lambda row: (row.window_end, row.id or 0), reverse=True)
    by_window: dict[tuple[datetime, datetime], list[MonitorResultRow]] = {}
    for row in ordered:
        key = (row.window_start, row.window_end)
        if key in by_window or len(by_window) < OUTPUT_WINDOWS:
            by_window.setdefault(key, []).append(row)
    windows = sorted(by_window)
    judged = {key: [_judged(row) for row in by_window[key]] for key in windows}
    names: dict[str, int] = {}
    for key in windows:
        for found in judged[key]:
            for name, part in found.items():
                names[name] = names.get(name, 0) + int(part.alarm)
    order = sorted(names, key=lambda name: -names[name])  # stable: first seen among equals
    rows = [(name, [_cell(name, judged[key], by_window[key]) for key in windows]) for name in order]
    heads = [(start, end, _window_status(by_window[(start, end)])) for start, end in windows]
    lines = [
        OutputLine(
            row.window_start,
            row.window_end,
            str(row.status),
            _group_text(_details(row).get("group")),
            str(row.summary or ""),
        )
        for row in ordered[:_OUTPUT_LIST]
    ]
    return OutputGrid(heads, rows, lines)


def _details(row: MonitorResultRow) -> Mapping[str, Any]:
    return row.details if isinstance(row.details, Mapping) else {}


@dataclass(frozen=True)
class _Judged:
    """One descriptor in one result: whether it alarmed, ``reference -> current``, and current."""

    alarm: bool
    moved: str = ""
    current: str = ""


def _judged(row: MonitorResultRow) -> dict[str, _Judged]:
    """Per descriptor of one result, read from whichever of the known keys it has."""
    details = _details(row)
    found: dict[str, _Judged] = {}
    descriptors = details.get("descriptors")
    if isinstance(descriptors, Mapping):
        for name, summary in descriptors.items():
            alarm = isinstance(summary, Mapping) and summary.get("alarm") is True
            found[str(name)] = _Judged(alarm, *_moved(summary))
    results = details.get("results")
    for item in results if isinstance(results, list) else []:
        name = item.get("descriptor", item.get("column")) if isinstance(item, Mapping) else None
        if name is not None:
            known = found.get(str(name), _Judged(False))
            found[str(name)] = replace(known, alarm=known.alarm or item.get("alarm") is True)
    alarmed = details.get("alarmed_descriptors")
    for name in alarmed if isinstance(alarmed, list) else []:
        found[str(name)] = replace(found.get(str(name), _Judged(True)), alarm=True)
    return found


def _moved(summary: Any) -> tuple[str, str]:
    """(``reference -> current``, current) of a descriptor's summary: means, rates, or the share
    of the category that moved most; empty when the summary has no figures."""
    if not isinstance(summary, Mapping):
        return "", ""
    before, after = summary.get("reference"), summary.get("current")
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        categories = [str(k) for k in {**before, **after} if _is_number(after.get(k, 0.0))]
        if not categories:
            return "", ""

        def change(category: str) -> float:
            old = before.get(category, 0.0)
            return abs(after.get(category, 0.0) - (old if _is_number(old) else 0.0))

        top = max(categories, key=change)
        old, new = (_number_text(side.get(top, 0.0), ".0%") for side in (before, after))
        return f"{top} {old} → {new}", f"{top} {new}"
    spec = ".1%" if summary.get("kind") == "rate" else ".3g"
    if not (_is_number(before) or _is_number(after)):
        return "", ""
    now = _number_text(after, spec)
    return f"{_number_text(before, spec)} → {now}", now


def _cell(
    name: str, judged: Sequence[dict[str, _Judged]], rows: Sequence[MonitorResultRow]
) -> OutputCell:
    parts = [
        (found[name], _group_text(_details(row).get("group")))
        for found, row in zip(judged, rows, strict=True)
        if name in found
    ]
    if not parts:
        return OutputCell("none", "–", f"{name}: not judged in this window")
    alarms = sum(part.alarm for part, _ in parts)
    title = "; ".join(
        f"{group or 'all calls'}: {part.moved or 'no figures'}{' (alarm)' if part.alarm else ''}"
        for part, group in parts
    )
    if len(parts) > 1:
        text = f"{alarms}/{len(parts)} groups"
    else:
        text = parts[0][0].current or ("alarm" if alarms else "ok")
    return OutputCell("alarm" if alarms else "ok", text, f"{name}: {title}")


def _window_status(rows: Sequence[MonitorResultRow]) -> str:
    statuses = {str(row.status) for row in rows}
    for status in ("breach", "ok"):
        if status in statuses:
            return status
    return sorted(statuses)[0] if statuses else ""


def _group_text(group: Any) -> str:
    """``support v3 on gpt-4o-mini`` for a group mapping; a string as it is."""
    if isinstance(group, Mapping):
        prompt = group.get("prompt") or "no prompt"
        version = group.get("prompt_version")
        model = group.get("model") or group.get("request_model") or "no model"
        return f"{prompt}{'' if version is None else f' v{version}'} on {model}"
    return "" if group is None else str(group)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _number_text(value: Any, spec: str) -> str:
    return format(value, spec) if _is_number(value) else "–"


# --- the page ------------------------------------------------------------------------------------


def llm_context(
    steward: Steward,
    events: Any,
    name: str,
    range_key: str | None,
    low: str | None = None,
    high: str | None = None,
    *,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Everything the LLM page shows for the range the URL asks for (``timerange.choose_range``:
    a preset ending ``now``, default the clock, or ``FROM..TO``; without one, the last 7 days, or
    the smallest preset that reaches the latest call).

    An unknown system raises NotFoundError; a system of another task gets a page saying so.
    """
    info = steward.system(name)
    moment = (now or datetime.now(UTC)).astimezone(UTC) + timedelta(seconds=1)
    latest = _latest_call(events, name) if info.task == "llm" else None
    chosen = choose_range(range_key, low, high, now=moment, latest=latest)
    start, end = chosen.start, chosen.end
    context: dict[str, Any] = {
        "system": info,
        "range": chosen,
        "ranges": list(PRESETS),
        "start": start,
        "end": end,
        "is_llm": info.task == "llm",
        "dollars": format_dollars,
    }
    if not context["is_llm"]:
        return context
    calls = events.scan("llm_call", name, start=start, end=end)
    totals = calls.select(list(_SUMMARY_COLUMNS))
    overall = summarize(totals, "all")
    context.update(
        figures=headline(overall[0] if overall else None),
        n_calls=calls.num_rows,
        n_unpriced=overall[0].unpriced if overall else 0,
        unpriced_models=_unpriced_models(calls),
        charts=daily_charts(summarize(totals, "day"), start, end) if calls.num_rows else {},
        by_prompt=summarize(totals, "prompt"),
        by_model=summarize(totals, "model"),
        calls=call_rows(calls),
        call_limit=CALL_LIMIT,
        outputs=output_grid(_output_results(steward, name, start, end)),
        output_monitor=OUTPUT_MONITOR,
    )
    return context


def _latest_call(events: Any, name: str) -> datetime | None:
    """When the system's newest LLM call happened, for the default range; None without calls."""
    quoted = name.replace("'", "''")
    table = events.query(
        f"SELECT max(event_time) AS latest FROM llm_calls WHERE system = '{quoted}'"
    )
    latest = table.column("latest")[0].as_py() if table.num_rows else None
    return latest.astimezone(UTC) if isinstance(latest, datetime) else None


def _unpriced_models(calls: pa.Table) -> list[str]:
    """The models of the unpriced calls, so the hint can name what to price."""
    found = set()
    for row in calls.select(["priced", "request_model", "response_model"]).to_pylist():
        if not row["priced"]:
            found.add(str(row["response_model"] or row["request_model"]))
    return sorted(found)


def _output_results(
    steward: Steward, name: str, start: datetime, end: datetime
) -> list[MonitorResultRow]:
    """The newest stored ``llm_outputs`` results whose window ends in the range."""
    with steward.store.read() as session:
        system_id = queries.system_id_of(session, name)
        newest = (
            queries.results_between(system_id, OUTPUT_MONITOR, start, end)
            .order_by(None)
            .order_by(MonitorResultRow.window_end.desc(), MonitorResultRow.id.desc())
            .limit(_OUTPUT_ROWS)
        )
        return list(session.scalars(newest))
