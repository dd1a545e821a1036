"""A heatmap cell's overlay: the reference distribution of one column against one window's.

The window side is the merge of the stored hourly profiles of the window (no raw events); the
reference side is the champion's stored reference sample, binned with the very binning of those
profiles, so both histograms share their bins.
"""

from __future__ import annotations

import functools
import math
from datetime import datetime

import numpy as np
import pandas as pd
from markupsafe import Markup, escape

from steward._util.svg import bar_chart_svg, histogram_svg
from steward.core import Steward
from steward.data.profiles import ColumnProfile, merge_profiles
from steward.data.profiles.store import ProfileStore
from steward.errors import NotFoundError
from steward.render.queries import profile_roots

__all__ = ["drift_overlay"]


def drift_overlay(
    steward: Steward, system: str, column: str, start: datetime, end: datetime
) -> str:
    """An HTML fragment: the two distributions of ``column`` overlaid, or why they cannot be."""
    steward.system(system)
    rows = []
    for root in profile_roots(steward):  # the newest store that covers the window
        rows = ProfileStore(root).read_rows(system, start, end, columns=[column])
        if rows:
            break
    heading = (
        f"<h3>{escape(column)}: reference vs {start:%d %b %H:%M} to {end:%d %b %H:%M} UTC</h3>"
    )
    if not rows:
        return heading + (
            '<p class="muted">No stored profile covers this window: profiles are built by '
            "`steward monitor run`; this window predates them.</p>"
        )
    window = merge_profiles(row.profile for row in rows)
    try:
        digest = steward.version(system, "champion").data.get("reference_sha256")
    except NotFoundError:
        digest = None
    if not digest:
        return heading + '<p class="muted">The champion has no stored reference sample.</p>'
    sample = _reference_sample(steward, digest)
    if column not in sample.columns:
        return (
            heading + f'<p class="muted">The reference sample has no column {escape(column)}.</p>'
        )
    reference = ColumnProfile.from_values(sample[column], window.binning)
    figure = _figure(column, reference, window)
    counts = (
        f"<p>{reference.count - reference.null_count:,} reference rows, "
        f"{window.count - window.null_count:,} rows in the window "
        f"({window.null_count:,} missing).</p>"
    )
    return str(Markup(heading) + Markup(figure) + Markup(counts))


@functools.lru_cache(maxsize=8)
def _cached_sample(path: str) -> pd.DataFrame:
    return pd.read_parquet(path)


def _reference_sample(steward: Steward, digest: str) -> pd.DataFrame:
    return _cached_sample(str(steward.artifacts.open_path(digest)))


def _shares(counts: np.ndarray) -> list[float]:
    total = float(counts.sum())
    return [float(c) / total if total else 0.0 for c in counts]


def _figure(column: str, reference: ColumnProfile, window: ColumnProfile) -> str:
    attributes = {"class": "overlay"}
    if window.kind == "categorical":
        labels, reference_counts = reference.histogram()
        _, window_counts = window.histogram()
        names = [str(label) for label in labels] + ["(unseen)"]
        left = np.append(reference_counts, reference.unseen_count)
        right = np.append(window_counts, window.unseen_count)
        return bar_chart_svg(
            names,
            {"reference": _shares(left), "window": _shares(right)},
            title=f"{column}: reference vs window",
            attributes=attributes,
        )
    edges, reference_counts = reference.histogram()
    _, window_counts = window.histogram()
    finite = [float(x) for x in edges[1:-1]]
    lows = [p.minimum for p in (reference, window) if p.minimum is not None]
    highs = [p.maximum for p in (reference, window) if p.maximum is not None]
    step = (finite[-1] - finite[0]) / max(1, len(finite) - 1) if len(finite) > 1 else 1.0
    first = min([*lows, finite[0] - step]) if finite else min(lows, default=0.0)
    last = max([*highs, finite[-1] + step]) if finite else max(highs, default=1.0)
    bounds = [first, *finite, last] if finite else [first, last if last > first else first + 1]
    if not all(math.isfinite(x) for x in bounds):
        bounds = [float(i) for i in range(len(bounds))]
    return histogram_svg(
        bounds,
        {"reference": _shares(reference_counts), "window": _shares(window_counts)},
        title=f"{column}: reference vs window",
        attributes=attributes,
    )
