"""The monitors a run goes through, registered through the ``steward_monitors`` hook.

A monitor is an object with a ``name`` and ``run(window) -> list[MonitorResult]``; it reads what it
needs from the ``MonitorWindow`` (predictions, inputs, profiles, the reference), each read once per
run. The built-ins run first, in this order: ``drift`` (its report feeds the performance "why"),
``data_quality``, then the performance monitors, ``fairness``, then ``llm_outputs`` (an LLM system's answers);
a plugin's monitors run after them. An LLM system has no input features: drift and data quality
pass it by.
"""

from __future__ import annotations

from typing import Protocol

from steward.monitoring.drift import DriftMonitor
from steward.monitoring.fairness import FairnessMonitor
from steward.monitoring.llm_outputs import LLMOutputMonitor
from steward.monitoring.performance import performance_monitors
from steward.monitoring.quality import DataQualityMonitor
from steward.monitoring.result import MonitorResult
from steward.monitoring.window import MonitorWindow
from steward.plugins import hookimpl, plugin_manager

__all__ = ["Monitor", "PerformanceMonitors", "available_monitors", "steward_monitors"]


class Monitor(Protocol):
    """A check over one window of one system."""

    name: str

    def run(self, window: MonitorWindow) -> list[MonitorResult]: ...


class PerformanceMonitors:
    """Realized and estimated performance, and uplift, for binary systems with predictions."""

    name = "performance"

    def run(self, window: MonitorWindow) -> list[MonitorResult]:
        if window.info.task != "binary" or window.predictions.empty:
            return []
        return performance_monitors(
            window.workspace,
            window.events,
            window.info,
            (window.start, window.end),
            window.predictions,
            window.full_reference,
            window.drift_report,
        )


@hookimpl
def steward_monitors() -> list[Monitor]:
    """The built-in monitors, registered through the same hook as a plugin's."""
    return [
        DriftMonitor(),
        DataQualityMonitor(),
        PerformanceMonitors(),
        FairnessMonitor(),
        LLMOutputMonitor(),
    ]


def available_monitors() -> list[Monitor]:
    """Every registered monitor in the order it runs: the built-ins first, then plugins'."""
    return [
        monitor
        for monitors in reversed(plugin_manager().hook.steward_monitors())
        for monitor in monitors
    ]
