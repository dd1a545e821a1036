"""Charts the dashboard draws in the browser: the data embedded in the page, and an SVG fallback.

A ``Chart`` holds ``charts.Series`` and how to read its y axis (``kind``). The page embeds its
``payload`` as JSON in a ``<script type="application/json">`` (no fetch, and no ``<`` left in it,
so no value can close the tag); ``static/charts.js`` draws it with the vendored uPlot, with values
on hover, drag-to-zoom and a double click to reset. ``<noscript>`` keeps the server-side SVG.

>>> chart = Chart("auc", "ROC AUC", [Series("auc", [(0.0, 0.8, 0.7, 0.9), (1.0, None)])])
>>> chart.payload()["series"][0]["points"]
[[0.0, 0.8, 0.7, 0.9], [1.0, None, None, None]]
>>> "<" in chart.json() or "\\\\u003c" in Chart("x", "</script>", []).json()
True
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from markupsafe import Markup

from steward.render.charts import Series, line_chart_svg

__all__ = ["KINDS", "Chart", "embed_json"]

#: How a chart's y axis reads: its tick format and the range it may take.
#: ``share`` is a proportion drawn as 0-100 %, ``points`` a signed difference in percentage
#: points, ``count`` whole numbers from 0, ``version`` model version numbers, ``number`` the rest.
KINDS = ("number", "share", "points", "count", "version")

_SVG_FORMAT = {"number": ".3g", "share": ".1%", "points": "+.1f", "count": ".0f", "version": ".0f"}


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def embed_json(value: Any) -> Markup:
    """JSON safe inside a ``<script type="application/json">``: ``<``, ``>``, ``&`` and the two
    JavaScript line separators are escaped, so no string in it can end the tag.

    >>> str(embed_json({"a": "</script><b>"}))
    '{"a": "\\\\u003c/script\\\\u003e\\\\u003cb\\\\u003e"}'
    """
    text = json.dumps(value, allow_nan=False, ensure_ascii=False)
    for raw, escaped in (
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("&", "\\u0026"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return Markup(text)


@dataclass(frozen=True)
class Chart:
    """One chart of the page: ``series`` over time, read as ``kind`` (see ``KINDS``).

    ``y_range`` fixes the y axis (a share of everything: ``(0, 1)``); ``span``, epoch seconds
    ``(start, end)``, sets the x axis to the page's range instead of the data's extent; ``step``
    draws steps (a version held until the next move); ``colors`` picks each series' palette
    index (a threshold in its statistic's colour), else series take the palette in order.
    """

    id: str
    title: str
    series: Sequence[Series]
    kind: str = "number"
    height: int = 200
    y_range: tuple[float, float] | None = None
    span: tuple[float, float] | None = None
    step: bool = False
    colors: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind  # a programmer's mistake, never a user's

    def shown(self) -> list[Series]:
        """The series with at least one value: the others would be a legend entry for nothing."""
        return [
            line
            for line in self.series
            if any(_finite(point[1]) is not None for point in line.normalized())
        ]

    @property
    def empty(self) -> bool:
        return not self.shown()

    def payload(self) -> dict[str, Any]:
        """What the browser draws: every point as ``[x, y, lower, upper]``, non-finite as null."""
        shown = self.shown()
        return {
            "id": self.id,
            "title": self.title,
            "kind": self.kind,
            "height": self.height,
            "y_range": list(self.y_range) if self.y_range else None,
            "span": list(self.span) if self.span else None,
            "step": self.step,
            "series": [
                {
                    "name": line.name,
                    "dashed": line.dashed,
                    "color": self.colors[index] if self.colors else index,
                    "points": [
                        [x, _finite(y), _finite(lower), _finite(upper)]
                        for x, y, lower, upper in line.normalized()
                    ],
                }
                for index, line in enumerate(self.series)
                if line in shown
            ],
        }

    def json(self) -> Markup:
        return embed_json(self.payload())

    def svg(self) -> str:
        """The same chart drawn on the server, for a browser without JavaScript."""
        return line_chart_svg(
            self.shown() or list(self.series),
            title=self.title,
            height=self.height,
            y_format=_SVG_FORMAT[self.kind],
            y_range=self.y_range,
        )
