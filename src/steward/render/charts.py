"""Inline SVG charts for the dashboard and the weekly report: lines with bands, heatmaps, sparklines.

Like ``steward._util.svg``, each function returns one ``<svg>`` string with nothing to fetch, every label
escaped. Series are capped: a caller passes at most ``MAX_POINTS`` points (the queries downsample),
so a year of data draws as fast as a day.

>>> svg = line_chart_svg([Series("auc", [(0.0, 0.8, 0.7, 0.9), (1.0, 0.82, 0.75, 0.88)])],
...                      title="ROC AUC")
>>> svg.startswith("<svg"), svg.count("<polyline"), svg.count("<polygon")
(True, 1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property

from markupsafe import escape

from steward._util.svg import DEFAULT_COLORS
from steward.errors import InvalidInputError

__all__ = [
    "MAX_POINTS",
    "HeatCell",
    "Series",
    "heat_color",
    "heatmap_svg",
    "line_chart_svg",
    "sparkline_svg",
]

#: The most points (or heatmap columns) a chart draws; queries downsample to this.
MAX_POINTS = 400

_LEFT, _TOP, _RIGHT, _BOTTOM = 52, 22, 12, 30


@dataclass(frozen=True)
class Series:
    """One line: ``points`` are ``(x, y)`` or ``(x, y, lower, upper)``; x is a number (epoch seconds
    for time). A point whose y is None breaks the line."""

    name: str
    points: Sequence[Sequence[float | None]]
    dashed: bool = False

    def normalized(self) -> list[tuple[float, float | None, float | None, float | None]]:
        """Every point as ``(x, y, lower, upper)``, missing parts None."""
        return list(self._normalized)

    @cached_property
    def _normalized(self) -> tuple[tuple[float, float | None, float | None, float | None], ...]:
        # Worked out once: a page asks for a chart's points five times (shown, payload, SVG).
        normalized = []
        for point in self.points:
            x, *rest = point
            if x is None:
                raise InvalidInputError(f"series {self.name!r} has a point without an x: {point}")
            parts = [*rest, None, None, None][:3]
            normalized.append((float(x), parts[0], parts[1], parts[2]))
        return tuple(normalized)


@dataclass(slots=True)  # not frozen: a year's heatmap makes 5,000, and frozen ones cost twice
class HeatCell:
    """One heatmap cell: ``value`` in [0, 1] picks the colour, ``alarm`` draws a mark on it."""

    row: int
    column: int
    value: float | None
    alarm: bool = False
    title: str = ""
    data: dict[str, str] = field(default_factory=dict)


def heat_color(value: float | None) -> str:
    """White (0) to orange to dark red (1); grey for a missing value.

    >>> heat_color(0.0), heat_color(None)
    ('#ffffff', '#e6e6e6')
    """
    if value is None or not math.isfinite(value):
        return "#e6e6e6"
    share = min(max(value, 0.0), 1.0)
    (r0, g0, b0), (r1, g1, b1), local = (
        (_STOPS[0], _STOPS[1], share * 2)
        if share < 0.5
        else (_STOPS[1], _STOPS[2], (share - 0.5) * 2)
    )
    red, green, blue = (
        round(r0 + (r1 - r0) * local),
        round(g0 + (g1 - g0) * local),
        round(b0 + (b1 - b0) * local),
    )
    return f"#{red:02x}{green:02x}{blue:02x}"


_STOPS: tuple[tuple[int, int, int], ...] = ((255, 255, 255), (253, 174, 97), (165, 15, 21))


def line_chart_svg(
    series: Sequence[Series],
    *,
    title: str,
    width: int = 640,
    height: int = 200,
    y_format: str = ".3g",
    y_range: tuple[float, float] | None = None,
    time_axis: bool = True,
) -> str:
    """Lines over x (time when ``time_axis``), each with a shaded band where points carry bounds."""
    points = [point for line in series for point in line.normalized()]
    if len(points) > MAX_POINTS * max(1, len(series)):
        raise InvalidInputError(
            f"{len(points)} points is too many to draw; downsample to {MAX_POINTS} per series"
        )
    parts = [_open(width, height, title)]
    values = [v for p in points for v in p[1:] if v is not None and math.isfinite(v)]
    if not values:
        parts.append(
            f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle" font-size="12">'
            "no data in this range</text></svg>"
        )
        return "".join(parts)
    xs = [p[0] for p in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = y_range or _y_domain(values, share=y_format.endswith("%"))
    inner_w, inner_h = width - _LEFT - _RIGHT, height - _TOP - _BOTTOM

    def sx(x: float) -> float:
        return _LEFT + (0.5 if x1 == x0 else (x - x0) / (x1 - x0)) * inner_w

    def sy(y: float) -> float:
        return _TOP + (1 - (y - y0) / (y1 - y0)) * inner_h

    for index, line in enumerate(series):
        color = DEFAULT_COLORS[index % len(DEFAULT_COLORS)]
        parts += _band(line, sx, sy, color) + _polylines(line, sx, sy, color)
    parts += _axes(width, height, x0, x1, y0, y1, y_format, time_axis)
    parts += _legend(series)
    parts.append("</svg>")
    return "".join(parts)


def _open(width: int, height: int, title: str, extra: str = "") -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" role="img" {extra}><title>{escape(title)}</title>'
    )


_Scale = Callable[[float], float]


def _band(line: Series, sx: _Scale, sy: _Scale, color: str) -> list[str]:
    bounded = [
        (x, lower, upper)
        for x, _, lower, upper in line.normalized()
        if lower is not None and upper is not None
    ]
    if len(bounded) < 2:
        return [
            f'<line x1="{sx(x):.1f}" x2="{sx(x):.1f}" y1="{sy(lower):.1f}" '
            f'y2="{sy(upper):.1f}" stroke="{color}" stroke-opacity="0.5"/>'
            for x, lower, upper in bounded
        ]
    upper = [f"{sx(x):.1f},{sy(high):.1f}" for x, _, high in bounded]
    lower = [f"{sx(x):.1f},{sy(low):.1f}" for x, low, _ in reversed(bounded)]
    return [f'<polygon points="{" ".join(upper + lower)}" fill="{color}" fill-opacity="0.18"/>']


def _polylines(line: Series, sx: _Scale, sy: _Scale, color: str) -> list[str]:
    runs: list[list[str]] = [[]]
    for x, y, _, _ in line.normalized():
        if y is None or not math.isfinite(y):
            runs.append([])
        else:
            runs[-1].append(f"{sx(x):.1f},{sy(y):.1f}")
    dash = ' stroke-dasharray="4 3"' if line.dashed else ""
    parts = []
    for run in runs:
        if len(run) == 1:
            cx, cy = run[0].split(",")
            parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{color}"/>')
        elif run:
            parts.append(
                f'<polyline points="{" ".join(run)}" fill="none" stroke="{color}" '
                f'stroke-width="1.6"{dash}/>'
            )
    return parts


def _y_domain(values: list[float], *, share: bool) -> tuple[float, float]:
    """The y axis: the values' range, widened when flat; a share (a ``%`` format) stays in 0-100%.

    >>> _y_domain([1.0, 1.0], share=True), _y_domain([0.0], share=True)
    ((0.95, 1.0), (0.0, 0.05))
    >>> _y_domain([120.0, 120.0], share=False)
    (119.5, 120.5)
    """
    low, high = min(values), max(values)
    if high - low < 1e-12:
        pad = 0.05 if share else 0.5
        low, high = low - pad, high + pad
    if share:
        low, high = max(low, 0.0), min(high, 1.0)
        if high - low < 1e-12:  # a share outside 0-1 is a caller's bug; still draw an axis
            low, high = 0.0, 1.0
    return low, high


def _axes(
    width: int,
    height: int,
    x0: float,
    x1: float,
    y0: float,
    y1: float,
    y_format: str,
    time_axis: bool,
) -> list[str]:
    base, right = height - _BOTTOM, width - _RIGHT
    left_label = _x_label(x0, time_axis)
    right_label = _x_label(x1, time_axis)
    return [
        f'<line x1="{_LEFT}" y1="{base}" x2="{right}" y2="{base}" stroke="#555"/>',
        f'<line x1="{_LEFT}" y1="{_TOP}" x2="{_LEFT}" y2="{base}" stroke="#555"/>',
        f'<text x="{_LEFT - 4}" y="{_TOP + 4}" text-anchor="end" font-size="10">'
        f"{escape(format(y1, y_format))}</text>",
        f'<text x="{_LEFT - 4}" y="{base}" text-anchor="end" font-size="10">'
        f"{escape(format(y0, y_format))}</text>",
        f'<text x="{_LEFT}" y="{base + 14}" font-size="10">{escape(left_label)}</text>',
        f'<text x="{right}" y="{base + 14}" text-anchor="end" font-size="10">'
        f"{escape(right_label)}</text>",
    ]


def _x_label(x: float, time_axis: bool) -> str:
    if not time_axis:
        return format(x, ".4g")
    return datetime.fromtimestamp(x, UTC).strftime("%d %b %H:%M")


def _legend(series: Sequence[Series]) -> list[str]:
    parts, x = [], _LEFT
    for index, line in enumerate(series):
        color = DEFAULT_COLORS[index % len(DEFAULT_COLORS)]
        parts.append(
            f'<rect x="{x}" y="5" width="10" height="10" fill="{color}"/>'
            f'<text x="{x + 14}" y="14" font-size="11">{escape(line.name)}</text>'
        )
        x += max(80, 26 + 7 * len(line.name))
    return parts


def heatmap_svg(
    cells: Sequence[HeatCell],
    row_labels: Sequence[str],
    column_labels: Sequence[str],
    *,
    title: str,
    cell_height: int = 16,
    width: int = 900,
    label_width: int = 150,
    row_links: Sequence[str] | None = None,
) -> str:
    """Rows (features) by columns (time buckets); a cell's ``data`` become ``data-*`` attributes
    (the page's script reads them on click), alarmed cells get a dark border. ``row_links``, one
    URL per row, makes each row label a link (the dashboard's feature pages).

    >>> svg = heatmap_svg([HeatCell(0, 0, 0.9, alarm=True, data={"column": "tenure"})],
    ...                   ["tenure"], ["Mon"], title="drift")
    >>> 'data-column="tenure"' in svg, 'class="cell alarm"' in svg
    (True, True)
    """
    n_columns = max(1, len(column_labels))
    if n_columns > MAX_POINTS:
        raise InvalidInputError(
            f"{n_columns} heatmap columns is too many; downsample to {MAX_POINTS}"
        )
    cell_width = max(1.0, (width - label_width - 8) / n_columns)
    height = _TOP + cell_height * len(row_labels) + 24
    parts = [_open(width, height, title, 'class="heatmap"')]
    parts += _row_labels(row_labels, row_links, cell_height, label_width)
    parts += _cell_rects(cells, label_width, cell_width, cell_height)
    base = _TOP + cell_height * len(row_labels) + 14
    parts.extend(_end_labels(column_labels, base, label_width, width))
    parts.append("</svg>")
    return "".join(parts)


def _cell_rects(
    cells: Sequence[HeatCell], label_width: int, cell_width: float, cell_height: int
) -> list[str]:
    """One ``<rect>`` per heatmap cell, its title and data attributes escaped."""
    parts = []
    size = f'width="{cell_width:.2f}" height="{cell_height - 1}"'
    # A year's heatmap has 5,000 cells on a few hundred columns, rows, colours and data values:
    # each of those is formatted (and escaped) once, not once per cell.
    xs: dict[int, str] = {}
    ys: dict[int, int] = {}
    fills: dict[float | None, str] = {}
    attributes: dict[tuple[str, str], str] = {}
    for cell in cells:
        x = xs.get(cell.column)
        if x is None:
            x = xs[cell.column] = f"{label_width + cell.column * cell_width:.2f}"
        y = ys.get(cell.row)
        if y is None:
            y = ys[cell.row] = _TOP + cell.row * cell_height
        fill = fills.get(cell.value)
        if fill is None:
            fill = fills[cell.value] = heat_color(cell.value)
        data = ""
        for pair in cell.data.items():
            found = attributes.get(pair)
            if found is None:
                found = attributes[pair] = f' data-{escape(pair[0])}="{escape(pair[1])}"'
            data += found
        if cell.alarm:
            css, stroke = "cell alarm", ' stroke="#111" stroke-width="1.5"'
        else:
            css, stroke = "cell", ""
        parts.append(
            f'<rect class="{css}" x="{x}" y="{y}" {size} fill="{fill}"{stroke}{data}>'
            f"<title>{escape(cell.title)}</title></rect>"
        )
    return parts


def _row_labels(
    labels: Sequence[str], links: Sequence[str] | None, cell_height: int, label_width: int
) -> list[str]:
    """A heatmap's row labels, right-aligned before the cells; each a link when ``links`` given."""
    parts = []
    for index, label in enumerate(labels):
        y = _TOP + index * cell_height + cell_height * 0.7
        text = (
            f'<text x="{label_width - 6}" y="{y:.1f}" text-anchor="end" font-size="11">'
            f"{escape(label)}</text>"
        )
        if links is not None:
            text = f'<a class="row-link" href="{escape(links[index])}">{text}</a>'
        parts.append(text)
    return parts


def _end_labels(labels: Sequence[str], y: int, left: int, width: int) -> list[str]:
    """The first and the last column's labels under a heatmap (one when they are the same)."""
    if not labels:
        return []
    parts = [f'<text x="{left}" y="{y}" font-size="10">{escape(labels[0])}</text>']
    if len(labels) > 1 and labels[-1] != labels[0]:
        parts.append(
            f'<text x="{width - 8}" y="{y}" text-anchor="end" font-size="10">'
            f"{escape(labels[-1])}</text>"
        )
    return parts


def sparkline_svg(
    values: Sequence[float | None], *, title: str, width: int = 120, height: int = 28
) -> str:
    """A small line of the last few values (None leaves a gap), the last point marked.

    >>> sparkline_svg([0.8, None, 0.82, 0.79], title="auc").count("<circle")
    1
    """
    known = [v for v in values if v is not None and math.isfinite(v)]
    parts = [_open(width, height, title, 'class="spark"')]
    if not known:
        parts.append("</svg>")
        return "".join(parts)
    low, high = min(known), max(known)
    span = high - low or 1.0
    step = (width - 6) / max(1, len(values) - 1)
    points = [
        (3 + index * step, height - 3 - (value - low) / span * (height - 6))
        for index, value in enumerate(values)
        if value is not None and math.isfinite(value)
    ]
    text = " ".join(f"{x:.1f},{y:.1f}" for x, y in points)
    parts.append(f'<polyline points="{text}" fill="none" stroke="#4c78a8" stroke-width="1.4"/>')
    x, y = points[-1]
    parts.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2.2" fill="#e45756"/></svg>')
    return "".join(parts)
