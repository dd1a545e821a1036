"""Time windows and groups: which rows of a frame are scored together.

Realized and estimated performance both group rows by key columns and, optionally, by the window
of their event time: fixed-length windows aligned to the Unix epoch, calendar windows (weeks,
months) cut at calendar boundaries, or explicit half-open ``(start, end)`` pairs.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from steward.errors import InvalidInputError
from steward.monitoring.metrics.join import require_columns

__all__ = ["iter_groups", "with_windows"]


def with_windows(
    frame: pd.DataFrame, freq: str | None, windows: Sequence[tuple[Any, Any]] | None
) -> tuple[pd.DataFrame, list[str]]:
    """The rows with ``window_start``/``window_end`` by prediction time, and the window columns.

    ``freq`` (a pandas frequency such as ``"7D"`` or ``"W"``) cuts the event times into windows;
    ``windows`` gives explicit half-open ``(start, end)`` pairs, and a row falls in each one that
    holds it. Neither: the frame comes back unchanged with no window columns.
    """
    if freq is not None and windows is not None:
        raise InvalidInputError("pass freq (e.g. '7D') or explicit windows, not both")
    if freq is None and windows is None:
        return frame, []
    require_columns(frame, ("event_time",), "predictions")
    times = pd.to_datetime(frame["event_time"], utc=True)
    if freq is not None:
        start, end = _floor_times(times, freq)
        return frame.assign(window_start=start, window_end=end), ["window_start", "window_end"]
    parts = []
    for window in windows or ():
        start, end = (pd.Timestamp(bound) for bound in window)
        start, end = (t.tz_localize("UTC") if t.tzinfo is None else t for t in (start, end))
        if not start < end:
            raise InvalidInputError(f"window [{start}, {end}) is empty; the start must come first")
        inside = (times >= start) & (times < end)
        parts.append(frame[inside].assign(window_start=start, window_end=end))
    if not parts:
        raise InvalidInputError("windows is empty; pass at least one (start, end) pair")
    return pd.concat(parts, ignore_index=True), ["window_start", "window_end"]


def _floor_times(times: pd.Series, freq: str) -> tuple[pd.Series, pd.Series]:
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as error:
        raise InvalidInputError(
            f"freq {freq!r} is not a pandas frequency; use e.g. '1D', '7D', '1h' or 'W'"
        ) from error
    try:
        # Fixed lengths (days, hours) align to the Unix epoch, so windows never depend on the data.
        start = times.dt.floor(offset)
        return start, start + offset
    except ValueError:
        # Calendar lengths (weeks, months) have no fixed size: cut at calendar boundaries from
        # the one at or before the first prediction.
        first = offset.rollback(times.min().normalize())
        edges = pd.date_range(first, times.max() + offset, freq=offset)
        index = edges.searchsorted(times, side="right") - 1
        return (
            pd.Series(edges[index], index=times.index),
            pd.Series(edges[index + 1], index=times.index),
        )


def iter_groups(
    frame: pd.DataFrame, keys: list[str]
) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    """Each group of ``frame`` by ``keys`` (sorted, missing values kept) with its key values.

    Without keys the whole frame is the one group, with an empty dict of keys.
    """
    if not keys:
        yield {}, frame
        return
    for values, group in frame.groupby(keys, dropna=False, sort=True):
        yield dict(zip(keys, values, strict=True)), group
