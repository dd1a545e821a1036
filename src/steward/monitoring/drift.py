"""The ``drift`` monitor: the window's inputs against the champion's reference sample.

An alarm needs significance for the sample size after Benjamini-Hochberg and an effect above the
practical floor (``steward.data.drift``). Profile mode (the default) compares merged hourly
profiles; exact mode the window's raw rows.
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

import pandas as pd

from steward.data.drift import DriftReport, compare
from steward.data.profiles import ColumnProfile, compare_profiles
from steward.monitoring.profiles import ProfileContext
from steward.monitoring.result import MIN_ROWS, MonitorResult, not_enough_data
from steward.monitoring.window import MonitorWindow

__all__ = ["DriftMonitor"]


class DriftMonitor:
    """Drift of each input column; the report stays on the window for the performance "why"."""

    name = "drift"

    def run(self, window: MonitorWindow) -> list[MonitorResult]:
        if window.info.task == "llm":  # its answers are watched by llm_outputs
            return []
        if window.exact:
            result, report = _drift(
                window.system, window.start, window.end, window.reference, window.inputs
            )
        else:
            result, report = _profile_drift(window.profiles, window.start, window.end)
        window.drift_report = report
        return [result]


_NO_REFERENCE: Final = "no reference: register the champion with --data to keep a sample"


def _drift(
    system: str,
    start: datetime,
    end: datetime,
    reference: pd.DataFrame | None,
    current: pd.DataFrame,
) -> tuple[MonitorResult, DriftReport | None]:
    if reference is None:
        return not_enough_data(system, "drift", start, end, _NO_REFERENCE), None
    columns = [c for c in reference.columns if c in current.columns]
    if len(current) < MIN_ROWS or not columns:
        text = f"{len(current)} predictions in the window; drift needs {MIN_ROWS}"
        return not_enough_data(system, "drift", start, end, text), None
    report = compare(reference[columns], current[columns])
    result = _drift_result(system, (start, end), report, columns, len(current), len(reference))
    return result, report


def _profile_drift(
    context: ProfileContext, start: datetime, end: datetime
) -> tuple[MonitorResult, DriftReport | None]:
    system = context.system
    if context.reference is None:
        return not_enough_data(system, "drift", start, end, _NO_REFERENCE), None
    window = context.window(start, end, context.input_columns)
    n_current = max((profile.count for profile in window.profiles.values()), default=0)
    columns = [
        name
        for name in context.input_columns
        if name in window.profiles
        and _has_values(window[name])
        and _has_values(context.reference[name])
    ]
    if n_current < MIN_ROWS or not columns:
        text = f"{n_current} predictions in the window; drift needs {MIN_ROWS}"
        return not_enough_data(system, "drift", start, end, text), None
    report = compare_profiles(context.reference, window, columns=columns)
    result = _drift_result(
        system, (start, end), report, columns, n_current, context.reference_rows, mode="profile"
    )
    return result, report


def _has_values(profile: ColumnProfile) -> bool:
    if profile.kind == "numeric":
        return profile.finite_count > 0
    return int(profile.bin_counts.sum()) + profile.unseen_count > 0


def _drift_result(
    system: str,
    window: tuple[datetime, datetime],
    report: DriftReport,
    columns: list[str],
    n_current: int,
    n_reference: int,
    mode: str = "exact",
) -> MonitorResult:
    alarmed = report.alarmed_columns
    details = {
        "results": report.to_dict()["results"],
        "alarmed_columns": alarmed,
        "n_current": n_current,
        "n_reference": n_reference,
        "mode": mode,
    }
    if alarmed:
        text = f"drift in {len(alarmed)} of {len(columns)} columns: " + ", ".join(alarmed)
        return MonitorResult(system, "drift", *window, "breach", text, details)
    text = f"no drift in {len(columns)} columns over {n_current} predictions"
    return MonitorResult(system, "drift", *window, "ok", text, details)
