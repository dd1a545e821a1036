"""Tests of steward.plots: the charts are well-formed SVG with one bar per value, escaped labels."""

from __future__ import annotations

import inspect
import xml.etree.ElementTree as ElementTree

import pytest

from steward._util import svg as plots
from steward._util.svg import DEFAULT_COLORS, bar_chart_svg, histogram_svg
from steward.errors import InvalidInputError

SVG = "{http://www.w3.org/2000/svg}"
HOSTILE = "<b>&\"'</b>"  # every character SVG text and attributes must escape


def parse(svg: str) -> ElementTree.Element:
    return ElementTree.fromstring(svg)  # raises on anything that is not well-formed XML


def bars(root: ElementTree.Element) -> list[ElementTree.Element]:
    """The data bars: rectangles drawn translucent (legend keys are opaque)."""
    return [rect for rect in root.iter(f"{SVG}rect") if rect.get("fill-opacity") is not None]


def texts(root: ElementTree.Element) -> list[str]:
    return [element.text or "" for element in root.iter(f"{SVG}text")]


def test_histogram_draws_one_bar_per_bin_and_series_overlaid() -> None:
    edges = [0.0, 0.5, 1.0, 1.5, 2.0]
    series = {"reference": [0.1, 0.4, 0.3, 0.2], "current": [0.2, 0.2, 0.2, 0.4]}
    root = parse(histogram_svg(edges, series, title="latency"))
    drawn = bars(root)
    assert len(drawn) == 4 * 2
    assert len(root.findall(f"{SVG}rect")) == 4 * 2 + 2  # and a legend key per series
    # Overlaid: the two bars of a bin share its slot, in series order and colors.
    assert [rect.get("x") for rect in drawn[:2]] == [drawn[0].get("x")] * 2
    assert [rect.get("fill") for rect in drawn[:2]] == list(DEFAULT_COLORS[:2])
    # The tallest bar spans the plotting area, and the value axis says how tall it is.
    assert max(float(rect.get("height", "0")) for rect in drawn) == pytest.approx(140.0)
    assert "40%" in texts(root)
    assert {"reference", "current", "0", "2"} <= set(texts(root))
    assert root.findtext(f"{SVG}title") == "latency"


def test_bar_chart_draws_bars_side_by_side_with_a_label_each() -> None:
    labels = ["basic", "plus", "pro"]
    series = {"before": [5, 3, 2], "after": [4, 4, 2], "later": [3, 3, 4]}
    root = parse(bar_chart_svg(labels, series, title="plan", value_format="g"))
    drawn = bars(root)
    assert len(drawn) == 3 * 3
    widths = {float(rect.get("width", "0")) for rect in drawn}
    assert len(widths) == 1 and widths.pop() == pytest.approx(502 / 3 / 3, abs=0.05)
    assert len({rect.get("x") for rect in drawn}) == 9  # none overlap
    rotated = [text.text for text in root.iter(f"{SVG}text") if text.get("transform")]
    assert rotated == labels
    assert "5" in texts(root)  # the tallest bar, formatted with value_format


def test_labels_titles_and_attributes_are_escaped() -> None:
    svg = bar_chart_svg(
        [HOSTILE, "a category name longer than twelve"],
        {HOSTILE: [0.5, 0.5]},
        title=HOSTILE,
        attributes={"class": "plot", "data-column": HOSTILE},
    )
    assert "<b>" not in svg
    root = parse(svg)
    assert root.get("data-column") == HOSTILE
    assert root.get("class") == "plot"
    assert root.findtext(f"{SVG}title") == HOSTILE
    assert HOSTILE in texts(root)  # legend
    rotated = [text.text for text in root.iter(f"{SVG}text") if text.get("transform")]
    assert rotated == [HOSTILE, "a category …"]  # long labels are cut to 12 characters


def test_histogram_edges_are_labelled_and_escaped_like_any_text() -> None:
    root = parse(histogram_svg([-1e6, 0.0, 1e6], {"x": [1, 2]}, title="t", attributes={}))
    assert {"-1e+06", "1e+06"} <= set(texts(root))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: histogram_svg([0.0], {"a": []}, title="t"), "at least 2 finite bin edges"),
        (lambda: histogram_svg([1.0, 0.0], {"a": [1]}, title="t"), "must increase"),
        (lambda: histogram_svg([0.0, 1.0], {"a": [1, 2]}, title="t"), "1 finite heights"),
        (lambda: bar_chart_svg(["a"], {"a": [float("nan")]}, title="t"), "finite heights"),
        (lambda: bar_chart_svg(["a"], {}, title="t"), "one series"),
        (
            lambda: bar_chart_svg(["a"], {"a": [1]}, title="t", attributes={"onload=x": "y"}),
            "cannot be an attribute",
        ),
        (lambda: bar_chart_svg(["a"], {"a": [1]}, title="t", width=40), "no room"),
    ],
)
def test_malformed_input_is_rejected_with_what_to_do(call: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        call()  # type: ignore[operator]


def test_all_lists_every_public_name_of_the_module() -> None:
    public = {
        name
        for name, value in vars(plots).items()
        if not name.startswith("_")
        and (inspect.isfunction(value) or inspect.isclass(value))
        and getattr(value, "__module__", None) == plots.__name__
    }
    assert public <= set(plots.__all__)
    assert all(hasattr(plots, name) for name in plots.__all__)
