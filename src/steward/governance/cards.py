"""Model cards (Mitchell et al., 2019), in Markdown and self-contained HTML.

Facts come from the registry: version, lineage, parameters, metrics, training-data fingerprint and
schema. Narrative comes from the system's ``card:`` in ``steward.yaml`` or from a card file of its own
(YAML with the same keys). A section nobody wrote is shown as missing, with where to write it; nothing
is invented.

The quantitative analyses by group are the newest ``fairness`` monitor result over a window that
ended while this version was the champion (``docs/fairness.md``): rates per group and the gaps with their
intervals, measured on served traffic with its outcomes. A version that never served, or a system
with no ``fairness:``, says so instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape
from sqlalchemy import select
from sqlalchemy.orm import Session

from steward.errors import ConfigError
from steward.model.registry import AliasChange, ModelVersion, find_system
from steward.store import MonitorResultRow
from steward.workspace.config import CARD_FIELDS, CardConfig
from steward.workspace.systems import SystemInfo

__all__ = [
    "CARD_SECTIONS",
    "GroupAnalysis",
    "ModelCard",
    "build_card",
    "champion_spans",
    "group_analysis",
    "load_card_file",
]

CARD_SECTIONS = (
    "Model details",
    "Intended use",
    "Factors",
    "Metrics",
    "Evaluation data",
    "Training data",
    "Quantitative analyses",
    "Ethical considerations",
    "Caveats and recommendations",
)

_environment = Environment(
    loader=PackageLoader("steward", "templates"),
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


#: How many of the newest fairness results a card looks through for one its version served.
_FAIRNESS_LOOKBACK = 500


@dataclass(frozen=True)
class GroupAnalysis:
    """One ``fairness`` result: its window, verdict and, per attribute, the groups and gaps."""

    window_start: datetime
    window_end: datetime
    status: str
    summary: str
    confidence: float
    threshold: float
    attributes: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class ModelCard:
    system: SystemInfo
    version: ModelVersion
    narrative: dict[str, str | None]
    history: list[AliasChange]
    groups: GroupAnalysis | None = None

    @property
    def missing(self) -> list[str]:
        """Narrative fields nobody has written yet (``intended_use`` included)."""
        missing = [] if self.system.intended_use else ["intended_use"]
        return missing + [key for key in CARD_FIELDS if not self.narrative.get(key)]

    def to_markdown(self) -> str:
        return _environment.get_template("card.md.j2").render(**self._context())

    def to_html(self) -> str:
        return _environment.get_template("card.html.j2").render(**self._context())

    def _repr_html_(self) -> str:
        """How a notebook shows the card: its HTML, self-contained."""
        return self.to_html()

    def _context(self) -> dict[str, Any]:
        schema = self.version.data.get("schema", {})
        return {
            "system": self.system,
            "version": self.version,
            "narrative": self.narrative,
            "history": self.history,
            "groups": self.groups,
            "fairness_hint": _fairness_hint(self.system, self.version),
            "schema": schema,
            "sections": CARD_SECTIONS,
            "missing_hint": f"Missing: write it under `card:` of system '{self.system.name}' in "
            "steward.yaml, or in a card file (--card-file).",
        }


def build_card(
    system: SystemInfo,
    version: ModelVersion,
    history: list[AliasChange],
    card_file: Path | None = None,
    groups: GroupAnalysis | None = None,
) -> ModelCard:
    """Join registry facts with the narrative; a card file's fields win over ``steward.yaml``."""
    narrative: dict[str, str | None] = {key: system.card.get(key) for key in CARD_FIELDS}
    if card_file is not None:
        narrative.update({k: v for k, v in load_card_file(card_file).items() if v})
    return ModelCard(
        system=system, version=version, narrative=narrative, history=history, groups=groups
    )


def champion_spans(
    history: list[AliasChange], version: int
) -> list[tuple[datetime, datetime | None]]:
    """When ``version`` held the champion alias: (from, until) spans, the open one last.

    >>> from datetime import datetime as t
    >>> def move(to, day):
    ...     return AliasChange("churn", "champion", "set", None, to, "a", t(2026, 1, day), "")
    >>> spans = champion_spans([move(1, 1), move(2, 5), move(1, 9)], 1)
    >>> [(start.day, end and end.day) for start, end in spans]
    [(1, 5), (9, None)]
    """
    moves = sorted((c for c in history if c.alias == "champion"), key=lambda c: c.moved_at)
    spans: list[tuple[datetime, datetime | None]] = []
    for index, move in enumerate(moves):
        if move.to_version == version:
            until = moves[index + 1].moved_at if index + 1 < len(moves) else None
            spans.append((move.moved_at, until))
    return spans


def group_analysis(
    session: Session, system: str, version: int, history: list[AliasChange]
) -> GroupAnalysis | None:
    """The newest ``fairness`` result that compared groups over a window ending while ``version``
    was the champion (the window may begin under the version before it)."""
    spans = champion_spans(history, version)
    if not spans:
        return None
    rows = session.scalars(
        select(MonitorResultRow)
        .where(
            MonitorResultRow.system_id == find_system(session, system).id,
            MonitorResultRow.monitor == "fairness",
            MonitorResultRow.status.in_(("ok", "breach")),
        )
        .order_by(MonitorResultRow.window_end.desc(), MonitorResultRow.id.desc())
        .limit(_FAIRNESS_LOOKBACK)
    )
    for row in rows:
        if any(
            start < row.window_end and (end is None or row.window_end <= end)
            for start, end in spans
        ):
            details = row.details or {}
            return GroupAnalysis(
                window_start=row.window_start,
                window_end=row.window_end,
                status=row.status,
                summary=row.summary,
                confidence=float(details.get("confidence", 0.95)),
                threshold=float(details.get("threshold", 0.5)),
                attributes=dict(details.get("attributes", {})),
            )
    return None


def _fairness_hint(system: SystemInfo, version: ModelVersion) -> str:
    if system.declared.fairness is None:
        return (
            f"No analysis by group: system '{system.name}' declares no `fairness:` in steward.yaml "
            "(the protected attributes to watch, logged beside each prediction's inputs)."
        )
    return (
        f"No analysis by group yet: no `fairness` result compares groups over a window that ended "
        f"while v{version.version} was the champion (it needs labeled predictions; see docs/fairness.md)."
    )


def load_card_file(path: Path) -> dict[str, str | None]:
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError:
        raise ConfigError(f"card file {str(path)!r} does not exist; check the path") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"card file {str(path)!r} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"card file {str(path)!r} must be a mapping of {', '.join(CARD_FIELDS)}")
    unknown = sorted(set(data) - set(CARD_FIELDS))
    if unknown:
        raise ConfigError(
            f"card file {str(path)!r}: unknown field(s) {', '.join(unknown)}; "
            f"known fields: {', '.join(CARD_FIELDS)}"
        )
    return CardConfig.model_validate(data).model_dump()
