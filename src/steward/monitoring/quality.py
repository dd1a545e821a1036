"""The ``data_quality`` monitor: contract violations, nulls, unseen categories, range, volume, lateness.

Null rates are compared with the reference's, unseen categories and values outside the reference's
range are counted, and the window's volume and lateness (received minus event time, p95) are
compared with the windows before it that the system was live for all along.
"""

from __future__ import annotations

import statistics
from datetime import datetime, timedelta
from typing import Any, Final

import numpy as np
import pandas as pd

from steward.data.events import EventLog
from steward.data.profiles import DatasetProfile
from steward.data.profiles.store import LATENESS_COLUMN
from steward.monitoring.profiles import ProfileContext, out_of_range_shares, window_counts
from steward.monitoring.result import MonitorResult
from steward.monitoring.window import MonitorWindow

__all__ = ["LATENESS_FACTOR", "QUALITY_SHARE", "VOLUME_FACTOR", "DataQualityMonitor"]

VOLUME_WINDOWS: Final = 4
#: An earlier window counts towards the usual level only when the system's first prediction came
#: no later than this share of a window after that window began.
PARTIAL_SLACK: Final = 0.05
#: A window's volume outside [usual / VOLUME_FACTOR, usual * VOLUME_FACTOR] is flagged.
VOLUME_FACTOR: Final = 2.0
#: A p95 lateness above LATENESS_FACTOR times the usual one (and longer by LATENESS_FLOOR_SECONDS,
#: or 1% of the window if that is shorter) is flagged.
LATENESS_FACTOR: Final = 3.0
LATENESS_FLOOR_SECONDS: Final = 60.0
#: Shares of a window above which violations, new nulls, unseen categories or out-of-range values
#: are flagged.
QUALITY_SHARE: Final = 0.05


class DataQualityMonitor:
    """Violations, nulls, unseen categories, out-of-range values, volume and lateness."""

    name = "data_quality"

    def run(self, window: MonitorWindow) -> list[MonitorResult]:
        if window.info.task == "llm":  # no input features; its answers are watched by llm_outputs
            return []
        if window.exact:
            return [
                _data_quality(
                    window.events,
                    window.system,
                    window.start,
                    window.end,
                    window.length,
                    window.predictions,
                    window.inputs,
                    window.reference,
                )
            ]
        return [_profile_quality(window.profiles, window.start, window.end, window.length)]


def _usual(
    counted: list[tuple[int, float | None]],
    first_seen: datetime | None,
    start: datetime,
    window: timedelta,
) -> tuple[float | None, float | None]:
    """The usual volume (mean) and p95 lateness (median) of the earlier windows, per window ``k``
    ``(count, p95)``. Only windows the system was live for all along count: one that began before
    its first prediction (by more than ``PARTIAL_SLACK`` of a window) would pass a half-empty
    start-up window off as the usual level.
    """
    complete = [
        (count, lateness)
        for k, (count, lateness) in enumerate(counted)
        if count > 0
        and first_seen is not None
        and first_seen <= start - window * (k + 1) + window * PARTIAL_SLACK
    ]
    usual_volume = float(np.mean([count for count, _ in complete])) if complete else None
    latenesses = [lateness for _, lateness in complete if lateness is not None]
    usual_lateness = float(statistics.median(latenesses)) if latenesses else None
    return usual_volume, usual_lateness


def _flow_problems(
    n_rows: int,
    usual_volume: float | None,
    lateness: float | None,
    usual_lateness: float | None,
    window: timedelta,
) -> list[str]:
    problems = []
    if usual_volume and not usual_volume / VOLUME_FACTOR <= n_rows <= VOLUME_FACTOR * usual_volume:
        problems.append(f"volume {n_rows} against a usual {usual_volume:.0f}")
    if lateness is not None and usual_lateness is not None:
        floor = min(LATENESS_FLOOR_SECONDS, window.total_seconds() / 100)
        if lateness > LATENESS_FACTOR * usual_lateness and lateness - usual_lateness > floor:
            problems.append(
                f"lateness p95 {_duration(lateness)} against a usual {_duration(usual_lateness)}"
            )
    return problems


def _duration(seconds: float) -> str:
    for unit, size in (("d", 86400.0), ("h", 3600.0), ("min", 60.0)):
        if abs(seconds) >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.1f} s"


def _empty_window(
    system: str, start: datetime, end: datetime, usual: float | None
) -> MonitorResult:
    status = "breach" if usual else "not_enough_data"
    return MonitorResult(
        system,
        "data_quality",
        start,
        end,
        status,
        "no predictions in the window" + (f" (usually {usual:.0f})" if usual else ""),
        {"volume": 0, "usual_volume": usual},
    )


def _quality_result(
    system: str,
    window: tuple[datetime, datetime],
    problems: list[str],
    details: dict[str, Any],
) -> MonitorResult:
    if problems:
        return MonitorResult(
            system, "data_quality", *window, "breach", "; ".join(problems), details
        )
    text = f"{details['volume']} predictions, {details['violation_rate']:.1%} with violations"
    return MonitorResult(system, "data_quality", *window, "ok", text, details)


def _data_quality(
    events: EventLog,
    system: str,
    start: datetime,
    end: datetime,
    window: timedelta,
    predictions: pd.DataFrame,
    inputs: pd.DataFrame,
    reference: pd.DataFrame | None,
) -> MonitorResult:
    n_rows = len(predictions)
    # One scan of the windows before, split per window, rather than one scan each.
    earlier = events.scan(
        "prediction", system, start=start - window * VOLUME_WINDOWS, end=start
    ).to_pandas()
    # 0 for [start - window, start): an event exactly one window before start is in it.
    ages = (start - earlier["event_time"] - timedelta(microseconds=1)) // window
    late = (earlier["received_at"] - earlier["event_time"]).dt.total_seconds()
    counted = [
        (
            int((ages == k).sum()),
            float(late[ages == k].quantile(0.95)) if (ages == k).any() else None,
        )
        for k in range(VOLUME_WINDOWS)
    ]
    first_seen = earlier["event_time"].min() if len(earlier) else None
    usual_volume, usual_lateness = _usual(counted, first_seen, start, window)
    if n_rows == 0:
        return _empty_window(system, start, end, usual_volume)
    violated = (
        float(predictions["violations"].notna().mean()) if "violations" in predictions else 0.0
    )
    null_rates = inputs.isna().mean().to_dict()
    reference_nulls = reference.isna().mean().to_dict() if reference is not None else {}
    null_jumps = sorted(
        c for c, rate in null_rates.items() if rate > reference_nulls.get(c, 0.0) + QUALITY_SHARE
    )
    lateness = (predictions["received_at"] - predictions["event_time"]).dt.total_seconds()
    p95 = float(lateness.quantile(0.95))
    problems = []
    if violated > QUALITY_SHARE:
        problems.append(f"{violated:.1%} of records broke the contract")
    if null_jumps:
        problems.append("nulls up in " + ", ".join(null_jumps))
    problems += _flow_problems(n_rows, usual_volume, p95, usual_lateness, window)
    details = {
        "volume": n_rows,
        "usual_volume": usual_volume,
        "violation_rate": violated,
        "null_rates": null_rates,
        "lateness_p95_seconds": p95,
        "usual_lateness_p95_seconds": usual_lateness,
        "mode": "exact",
    }
    return _quality_result(system, (start, end), problems, details)


def _profile_quality(
    context: ProfileContext, start: datetime, end: datetime, window: timedelta
) -> MonitorResult:
    system = context.system
    before = context.rows(start - window * VOLUME_WINDOWS, start, [LATENESS_COLUMN])
    counted = window_counts(before, start, window, VOLUME_WINDOWS)
    first_seen = min(
        (row.bucket_start for row in before if row.column == LATENESS_COLUMN), default=None
    )
    usual_volume, usual_lateness = _usual(
        [
            (count, None if profile is None else profile.quantile(0.95))
            for count, profile in counted
        ],
        first_seen,
        start,
        window,
    )
    current = context.window(start, end)
    lateness = current.profiles.get(LATENESS_COLUMN)
    if lateness is None or lateness.count == 0:
        return _empty_window(system, start, end, usual_volume)
    n_rows, p95 = lateness.count, lateness.quantile(0.95)
    inputs = [name for name in context.input_columns if name in current.profiles]
    stats = _column_quality(context.reference, current, inputs)
    problems = _column_problems(stats)
    problems += _flow_problems(n_rows, usual_volume, p95, usual_lateness, window)
    details = {
        "volume": n_rows,
        "usual_volume": usual_volume,
        "violation_rate": max(stats["violation_rates"].values(), default=0.0),
        **stats,
        "lateness_p95_seconds": p95,
        "usual_lateness_p95_seconds": usual_lateness,
        "mode": "profile",
    }
    return _quality_result(system, (start, end), problems, details)


def _column_quality(
    reference: DatasetProfile | None, current: DatasetProfile, columns: list[str]
) -> dict[str, Any]:
    """Per column shares from the merged profiles: nulls, violations, unseen, out of range."""
    null_rates, violation_rates, unseen = {}, {}, {}
    for name in columns:
        profile = current[name]
        null_rates[name] = profile.null_count / profile.count
        violation_rates[name] = profile.violation_count / profile.count
        if profile.kind == "categorical" and profile.unseen_count:
            unseen[name] = {
                "share": profile.unseen_count / profile.count,
                "values": [value for value, _ in profile.unseen_values()[:10]],
            }
    reference_nulls = {}
    out_of_range: dict[str, dict[str, Any]] = {}
    if reference is not None:
        reference_nulls = {
            name: reference[name].null_count / max(reference[name].count, 1) for name in columns
        }
        out_of_range = out_of_range_shares(reference, current, columns)
    return {
        "null_rates": null_rates,
        "reference_null_rates": reference_nulls,
        "violation_rates": violation_rates,
        "unseen": unseen,
        "out_of_range": out_of_range,
    }


def _column_problems(stats: dict[str, Any]) -> list[str]:
    problems = []
    violated = {c: r for c, r in stats["violation_rates"].items() if r > QUALITY_SHARE}
    if violated:
        worst = max(violated, key=violated.__getitem__)
        problems.append(f"{violated[worst]:.1%} of records broke the contract on {worst}")
    reference_nulls = stats["reference_null_rates"]
    null_jumps = sorted(
        c
        for c, rate in stats["null_rates"].items()
        if rate > reference_nulls.get(c, 0.0) + QUALITY_SHARE
    )
    if null_jumps:
        problems.append("nulls up in " + ", ".join(null_jumps))
    for what, found in (
        ("unseen categories", stats["unseen"]),
        ("out of range", stats["out_of_range"]),
    ):
        flagged = sorted(c for c, entry in found.items() if entry["share"] > QUALITY_SHARE)
        if flagged:
            problems.append(f"{what} in " + ", ".join(flagged))
    return problems
