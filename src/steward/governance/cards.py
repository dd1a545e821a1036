"""Model cards (Mitchell et al., 2019), in Markdown and self-contained HTML.

Facts come from the registry: version, lineage, parameters, metrics, training-data fingerprint and
schema. Narrative comes from the system's ``card:`` in ``steward.yaml`` or from a card file of its own
(YAML with the same keys). A section nobody wrote is shown as missing, with where to write it; nothing
is invented.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from steward.errors import ConfigError
from steward.model.registry import AliasChange, ModelVersion
from steward.workspace.config import CARD_FIELDS, CardConfig
from steward.workspace.systems import SystemInfo

__all__ = ["CARD_SECTIONS", "ModelCard", "build_card", "load_card_file"]

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


@dataclass(frozen=True)
class ModelCard:
    system: SystemInfo
    version: ModelVersion
    narrative: dict[str, str | None]
    history: list[AliasChange]

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
) -> ModelCard:
    """Join registry facts with the narrative; a card file's fields win over ``steward.yaml``."""
    narrative: dict[str, str | None] = {key: system.card.get(key) for key in CARD_FIELDS}
    if card_file is not None:
        narrative.update({k: v for k, v in load_card_file(card_file).items() if v})
    return ModelCard(system=system, version=version, narrative=narrative, history=history)


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
