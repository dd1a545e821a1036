"""Inline SVG charts for self-contained HTML pages: overlaid histograms and grouped bar charts.

Each function takes plain numbers and labels and returns one ``<svg>`` element as a string: nothing
to fetch (no script, stylesheet or font), so a page that embeds it stays one file. Every label and
attribute value is escaped. The drift report draws its plots with these.

Example::

    >>> svg = bar_chart_svg(["basic", "pro"], {"before": [0.6, 0.4], "after": [0.5, 0.5]}, title="plan")
    >>> svg.startswith("<svg"), svg.count("<rect")  # four bars and two legend keys
    (True, 6)
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Mapping, Sequence

from markupsafe import escape

from steward.errors import InvalidInputError

__all__ = ["DEFAULT_COLORS", "bar_chart_svg", "histogram_svg"]

#: Series colors, in order (the first of the Tableau 10 palette).
DEFAULT_COLORS: tuple[str, ...] = ("#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2")

_LEFT, _TOP, _RIGHT, _BOTTOM = 46, 26, 12, 44  # margins around the plotting area, in pixels
_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][-A-Za-z0-9_.:]*\Z")


def histogram_svg(
    edges: Sequence[float],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    attributes: Mapping[str, str] | None = None,
    colors: Sequence[str] = DEFAULT_COLORS,
    value_format: str = ".0%",
    width: int = 560,
    height: int = 210,
) -> str:
    """Overlaid histograms: in each bin, one translucent bar per series, as wide as the bin.

    ``edges`` holds the len(bins) + 1 bin boundaries, ascending; ``series`` maps a legend name to
    one bar height per bin (shares, counts). The value axis is labelled with the tallest bar,
    formatted by ``value_format``; the bin axis with the outer edges. ``attributes`` are added to
    the ``<svg>`` element (``{"class": "plot"}``); ``title`` becomes its ``<title>``.

    >>> svg = histogram_svg([0.0, 1.0, 2.0, 3.0], {"reference": [0.2, 0.5, 0.3]}, title="age")
    >>> svg.count("<rect")  # three bars and one legend key
    4
    """
    bounds = [float(edge) for edge in edges]
    if len(bounds) < 2 or not all(math.isfinite(edge) for edge in bounds):
        raise InvalidInputError(
            f"a histogram needs at least 2 finite bin edges, got {bounds[:10]}; pass the "
            "boundaries of its bins"
        )
    if any(right <= left for left, right in itertools.pairwise(bounds)):
        raise InvalidInputError(f"bin edges must increase, got {bounds[:10]}; sort them")
    parts, layout = _chart(
        len(bounds) - 1, series, title, attributes, colors, width, height, overlay=True
    )
    parts += _frame(series, colors, layout, value_format)
    left, base, inner_width = _LEFT, layout.base, layout.inner_width
    for value, anchor, x in ((bounds[0], "start", left), (bounds[-1], "end", left + inner_width)):
        parts.append(
            f'<text x="{x}" y="{base + 14}" text-anchor="{anchor}" font-size="10">'
            f"{escape(f'{value:.4g}')}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart_svg(
    labels: Sequence[str],
    series: Mapping[str, Sequence[float]],
    *,
    title: str,
    attributes: Mapping[str, str] | None = None,
    colors: Sequence[str] = DEFAULT_COLORS,
    value_format: str = ".0%",
    width: int = 560,
    height: int = 210,
    max_label_length: int = 12,
) -> str:
    """Grouped bars: for each label, one bar per series side by side.

    ``series`` maps a legend name to one bar height per label. Labels are written slanted under
    the axis, cut to ``max_label_length`` characters (the cut ends in "…"). The other parameters
    are those of ``histogram_svg``.

    >>> svg = bar_chart_svg(["a", "b", "c"], {"reference": [0.5, 0.3, 0.2]}, title="plan")
    >>> svg.count("<rect"), svg.count("rotate(")  # three bars and a legend key; three labels
    (4, 3)
    """
    names = [str(label) for label in labels]
    if max_label_length < 2:
        raise InvalidInputError(f"max_label_length must be >= 2, got {max_label_length!r}")
    parts, layout = _chart(
        len(names), series, title, attributes, colors, width, height, overlay=False
    )
    parts += _frame(series, colors, layout, value_format)
    for index, label in enumerate(names):
        x = _LEFT + (index + 0.5) * layout.slot
        short = label if len(label) <= max_label_length else label[: max_label_length - 1] + "…"
        y = layout.base + 12
        parts.append(
            f'<text x="{x:.1f}" y="{y}" text-anchor="end" font-size="10" '
            f'transform="rotate(-30 {x:.1f} {y})">{escape(short)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


class _Layout:
    """Where the plotting area sits, and the tallest bar (the top of the value axis)."""

    def __init__(self, width: int, height: int, n_bars: int, peak: float) -> None:
        self.inner_width = width - _LEFT - _RIGHT
        self.inner_height = height - _TOP - _BOTTOM
        self.base = _TOP + self.inner_height
        self.slot = self.inner_width / n_bars
        self.peak = peak


def _chart(
    n_bars: int,
    series: Mapping[str, Sequence[float]],
    title: str,
    attributes: Mapping[str, str] | None,
    colors: Sequence[str],
    width: int,
    height: int,
    *,
    overlay: bool,
) -> tuple[list[str], _Layout]:
    """The opening tag, the title and the bars: overlaid across each slot, or side by side."""
    heights = _checked_series(series, n_bars)
    if not colors:
        raise InvalidInputError("colors is empty; pass at least one color, e.g. DEFAULT_COLORS")
    if width - _LEFT - _RIGHT < 1 or height - _TOP - _BOTTOM < 1:
        raise InvalidInputError(
            f"a {width}×{height} chart leaves no room inside its margins; pass at least "
            f"{_LEFT + _RIGHT + 1}×{_TOP + _BOTTOM + 1}"
        )
    layout = _Layout(width, height, n_bars, max(*(max(values) for values in heights), 1e-12))
    extra = ""
    for name, value in (attributes or {}).items():
        if not _ATTRIBUTE_NAME.match(name) or name in ("xmlns", "width", "height", "viewBox"):
            raise InvalidInputError(f"{name!r} cannot be an attribute here; pass e.g. 'class'")
        extra += f'{name}="{escape(value)}" '
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" {extra}'
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">',
        f"<title>{escape(title)}</title>",
    ]
    bar_width = layout.slot if overlay else layout.slot / len(heights)
    for index in range(n_bars):
        for side, values in enumerate(heights):
            x = _LEFT + index * layout.slot + (0 if overlay else side * bar_width)
            bar_height = layout.inner_height * max(values[index], 0.0) / layout.peak
            parts.append(
                f'<rect x="{x:.1f}" y="{_TOP + layout.inner_height - bar_height:.1f}" '
                f'width="{bar_width:.1f}" height="{bar_height:.1f}" '
                f'fill="{escape(colors[side % len(colors)])}" fill-opacity="0.55"/>'
            )
    return parts, layout


def _frame(
    series: Mapping[str, Sequence[float]],
    colors: Sequence[str],
    layout: _Layout,
    value_format: str,
) -> list[str]:
    """The axis line, the label of the tallest bar, and a legend key per series."""
    left, base, top = _LEFT, layout.base, _TOP
    parts = [
        f'<line x1="{left}" y1="{base}" x2="{left + layout.inner_width}" y2="{base}" stroke="#333"/>',
        f'<text x="{left - 4}" y="{top + 4}" text-anchor="end" font-size="10">'
        f"{escape(format(layout.peak, value_format))}</text>",
    ]
    x = left
    for side, name in enumerate(series):
        parts.append(
            f'<rect x="{x}" y="6" width="10" height="10" fill="{escape(colors[side % len(colors)])}"/>'
            f'<text x="{x + 14}" y="15" font-size="11">{escape(name)}</text>'
        )
        x += max(90, 26 + 7 * len(name))  # about 7 pixels a character at font size 11
    return parts


def _checked_series(series: Mapping[str, Sequence[float]], n_bars: int) -> list[list[float]]:
    if n_bars < 1 or not series:
        raise InvalidInputError(
            f"a chart needs at least one bar and one series, got {n_bars} bars and "
            f"{len(series)} series"
        )
    heights = []
    for name, values in series.items():
        row = [float(value) for value in values]
        if len(row) != n_bars or not all(math.isfinite(value) for value in row):
            raise InvalidInputError(
                f"series {name!r} must hold {n_bars} finite heights, one per bar, got {row[:10]}"
            )
        heights.append(row)
    return heights
