"""The ``fairness`` monitor: gaps between groups of a protected attribute, over labeled predictions.

For a binary system with ``fairness:`` in steward.yaml, each window's labeled predictions are split
by each attribute (read from the protected attributes sent beside the record, which the model never
sees, and for an attribute not among them from the prediction's logged inputs), the model's
decision is its score at or over the policy's first threshold (as ``performance`` reads it), and
``steward.monitoring.metrics.fairness.fairness_by_group`` gives the gaps with bootstrap intervals.

The rule is the performance monitor's: a gap breaches only when its whole interval lies beyond the
limit (above ``max_gap``; for the selection-rate ratio, below ``min_ratio``), so noise alone rarely
breaches. The confidence is Bonferroni-adjusted across every attribute and measure checked. Groups
under ``min_group_size`` labeled rows are shown but not compared; an attribute with fewer than
two such groups says "not enough data".

Example (steward.yaml)::

    fairness:
      attributes: [gender, SeniorCitizen]
      measures: [equalized_odds_difference, demographic_parity_difference]
      max_gap: 0.1
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd

from steward.data.events.schemas import ATTRIBUTES_KEY
from steward.monitoring.metrics import join_outcomes
from steward.monitoring.metrics.fairness import FairnessResult, fairness_by_group
from steward.monitoring.performance import decision_threshold
from steward.monitoring.result import MonitorResult, not_enough_data
from steward.monitoring.window import MonitorWindow
from steward.workspace.config import FairnessConfig

__all__ = ["FairnessMonitor", "fairness_verdict"]


class FairnessMonitor:
    """Gaps between groups for binary systems that declare ``fairness:``."""

    name = "fairness"

    def run(self, window: MonitorWindow) -> list[MonitorResult]:
        config = window.info.declared.fairness
        if config is None or window.info.task != "binary" or window.predictions.empty:
            return []
        span = (window.start, window.end)
        outcomes = window.events.scan("outcome", window.system, start=window.start).to_pandas()
        if outcomes.empty:
            text = f"no outcomes yet for the window's {len(window.predictions)} predictions"
            return [not_enough_data(window.system, self.name, *span, text)]
        joined = join_outcomes(window.predictions, outcomes, by="each")
        labeled = joined[joined["labeled"]]
        threshold = decision_threshold(window.info.config)
        status, summary, details = fairness_verdict(labeled, config, threshold)
        return [MonitorResult(window.system, self.name, *span, status, summary, details)]


def fairness_verdict(
    labeled: pd.DataFrame, config: FairnessConfig, threshold: float = 0.5, *, seed: int = 0
) -> tuple[str, str, dict[str, Any]]:
    """(status, summary, details) of one window's labeled predictions: ``inputs`` (JSON text or
    dicts), ``score`` and ``outcome_value`` columns."""
    if len(labeled) < 2 * config.min_group_size:
        return (
            "not_enough_data",
            f"{len(labeled)} labeled predictions: too few to compare groups",
            {},
        )
    decoded = [_inputs(value) for value in labeled["inputs"]]
    truth = (pd.to_numeric(labeled["outcome_value"], errors="coerce").fillna(0) > 0).to_numpy()
    decided = (pd.to_numeric(labeled["score"], errors="coerce").fillna(0) >= threshold).to_numpy()
    checks = _checks(config)
    confidence = 1 - (1 - config.confidence) / max(1, checks * len(config.attributes))
    results: dict[str, FairnessResult] = {}
    missing = []
    for attribute in config.attributes:
        groups = [row.get(attribute) for row in decoded]
        if all(group is None for group in groups):
            missing.append(attribute)
            continue
        results[attribute] = fairness_by_group(
            truth.astype(np.int64), decided.astype(np.int64), groups, attribute=attribute,
            min_group_size=config.min_group_size, confidence=confidence, seed=seed,
        )  # fmt: skip
    alarms = [alarm for attribute, r in results.items() for alarm in _alarms(attribute, r, config)]
    details = {
        "attributes": {attribute: r.to_dict() for attribute, r in results.items()},
        "alarms": alarms,
        "confidence": confidence,
        "threshold": threshold,
        "missing_attributes": missing,
    }
    compared = [attribute for attribute, r in results.items() if not r.reason]
    if alarms:
        first = alarms[0]
        text = (
            f"{first['measure'].replace('_', ' ')} across {first['attribute']} is "
            f"{first['value']:.3f} ({first['low']:.3f} to {first['high']:.3f}), beyond "
            f"{first['limit']:g}" + (f"; {len(alarms) - 1} more" if len(alarms) > 1 else "")
        )
        return "breach", text, details
    if not compared:
        why = "; ".join(r.reason for r in results.values()) or (
            f"none of {', '.join(missing)} is among the logged inputs or the attributes beside them"
        )
        return "not_enough_data", why, details
    return "ok", f"no gap beyond {config.max_gap:g} across {', '.join(compared)}", details


def _checks(config: FairnessConfig) -> int:
    return len(config.measures) + (config.min_ratio is not None)


def _alarms(attribute: str, result: FairnessResult, config: FairnessConfig) -> list[dict[str, Any]]:
    found = []
    for measure in config.measures:
        gap = result.gaps[measure]
        if gap.value is not None and gap.low is not None and gap.low > config.max_gap:
            found.append(_alarm(attribute, measure, gap, config.max_gap))
    ratio = result.gaps["demographic_parity_ratio"]
    if config.min_ratio is not None and ratio.high is not None and ratio.high < config.min_ratio:
        found.append(_alarm(attribute, "demographic_parity_ratio", ratio, config.min_ratio))
    return found


def _alarm(attribute: str, measure: str, gap: Any, limit: float) -> dict[str, Any]:
    return {
        "attribute": attribute,
        "measure": measure,
        "value": gap.value,
        "low": gap.low,
        "high": gap.high,
        "limit": limit,
    }


def _inputs(value: Any) -> dict[str, Any]:
    """The logged inputs, with the attributes sent beside the record taking precedence."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    if not isinstance(value, dict):
        return {}
    beside = value.get(ATTRIBUTES_KEY)
    return {**value, **beside} if isinstance(beside, dict) else value
