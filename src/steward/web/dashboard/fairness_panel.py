"""The system page's fairness panel, from the newest stored ``fairness`` monitor result.

Per protected attribute: each group's labeled rows and rates ("not enough data" for a group under
the monitor's ``min_group_size``, whose rates are not compared), then each gap measure with its
bootstrap interval and the limit it is held to (``monitoring/fairness.py`` stores them).

>>> fairness_panel(None, None) is None
True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steward.store import MonitorResultRow
from steward.workspace.config import FairnessConfig

__all__ = ["FairnessAttribute", "fairness_panel"]

_RATES = ("selection_rate", "tpr", "fpr", "precision")


@dataclass(frozen=True)
class FairnessAttribute:
    """One attribute's groups (dicts of the stored rates) and gaps (measure, value, interval)."""

    attribute: str
    groups: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    reason: str
    min_group_size: int


def _limit(measure: str, config: FairnessConfig | None) -> str:
    """The rule a measure is held to, as the page says it ("" when it is shown, not checked)."""
    if config is None:
        return ""
    if measure == "demographic_parity_ratio":
        return f"at least {config.min_ratio:g}" if config.min_ratio is not None else ""
    return f"at most {config.max_gap:g}" if measure in config.measures else ""


def _gaps(
    stored: dict[str, Any], alarmed: set[Any], config: FairnessConfig | None
) -> list[dict[str, Any]]:
    return [
        {
            "measure": measure,
            "value": gap.get("value"),
            "low": gap.get("low"),
            "high": gap.get("high"),
            "limit": _limit(measure, config),
            "alarm": measure in alarmed,
        }
        for measure, gap in sorted(stored.items())
        if isinstance(gap, dict)
    ]


def fairness_panel(
    row: MonitorResultRow | None, config: FairnessConfig | None
) -> dict[str, Any] | None:
    """What the panel shows, or None when the system has no fairness result; ``config`` (the
    system's ``fairness:``) says which limit each gap is held to."""
    if row is None:
        return None
    details = row.details or {}
    alarms = [item for item in details.get("alarms") or [] if isinstance(item, dict)]
    attributes = []
    for attribute, stored in sorted((details.get("attributes") or {}).items()):
        groups = [
            {
                "group": group.get("group"),
                "n": group.get("n"),
                "enough": bool(group.get("enough")),
                **{rate: group.get(rate) for rate in _RATES},
            }
            for group in stored.get("groups") or []
        ]
        attributes.append(
            FairnessAttribute(
                attribute=attribute,
                groups=groups,
                gaps=_gaps(
                    stored.get("gaps") or {},
                    {item.get("measure") for item in alarms if item.get("attribute") == attribute},
                    config,
                ),
                reason=str(stored.get("reason") or ""),
                min_group_size=int(stored.get("min_group_size") or 0),
            )
        )
    return {
        "row": row,
        "attributes": attributes,
        "confidence": details.get("confidence"),
        "missing": details.get("missing_attributes") or [],
    }
