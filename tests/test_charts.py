"""Charts shared by the dashboard and the report: axes that can be."""

from __future__ import annotations

import re

import pytest

from steward.render.charts import HeatCell, Series, heatmap_svg, line_chart_svg


def _axis_labels(svg: str) -> list[str]:
    return re.findall(r'text-anchor="end" font-size="10">([^<]*)</text>', svg)


@pytest.mark.parametrize("share", [1.0, 0.383, 0.0])
def test_a_flat_share_keeps_its_axis_inside_0_to_100_percent(share: float) -> None:
    """A flat latency share of 100% was drawn on an axis from 50% to 150%."""
    svg = line_chart_svg(
        [Series("share", [(0.0, share), (3600.0, share)])], title="share", y_format=".1%"
    )
    percents = [float(label.rstrip("%")) for label in _axis_labels(svg) if label.endswith("%")]
    assert len(percents) == 2
    assert all(0.0 <= value <= 100.0 for value in percents), percents


def test_a_heatmap_whose_buckets_share_a_label_names_it_once() -> None:
    svg = heatmap_svg(
        [HeatCell(0, 0, 0.1), HeatCell(0, 1, 0.2)],
        ["tenure"],
        ["02 Dec 13:00", "02 Dec 13:00"],
        title="drift",
    )
    assert svg.count("02 Dec 13:00") == 1
