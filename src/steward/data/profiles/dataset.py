"""Windows: the merged profile of each column over a window, built from rows or from a frame.

A :class:`DatasetProfile` is what a monitor compares: ``from_rows`` merges stored per-bucket rows
(as ``ProfileStore.read`` does) and ``from_frame`` profiles a frame that is one window.

Example::

    >>> import pandas as pd
    >>> from steward.data.profiles.binning import fit_binnings
    >>> frame = pd.DataFrame({"amount": [1.0, 3.0]})
    >>> DatasetProfile.from_frame(frame, fit_binnings(frame))["amount"].mean
    2.0
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from steward._util.frames import to_arrow_table
from steward.data.profiles.binning import Binning, check_columns_present
from steward.data.profiles.column import ColumnProfile, merge_profiles, profile_columns
from steward.errors import InvalidInputError

__all__ = ["BucketProfile", "DatasetProfile"]


class BucketProfile(Protocol):
    """One column's profile over one time bucket, as ``steward.data.profiles.store.ProfileRow``
    holds it: what :meth:`DatasetProfile.from_rows` merges."""

    @property
    def bucket_start(self) -> dt.datetime: ...

    @property
    def column(self) -> str: ...

    @property
    def profile(self) -> ColumnProfile: ...

    @property
    def model_version(self) -> int | None: ...


@dataclass(frozen=True)
class DatasetProfile:
    """The merged profile of each column over a window.

    Built from stored rows (``from_rows``, as ``ProfileStore.read`` does) or straight from a frame
    that is one window (``from_frame``).

    >>> import pandas as pd
    >>> from steward.data.profiles import Binning
    >>> from steward.data.profiles.store import profile_frame
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 01:20"], utc=True),
    ...     "amount": [1.0, 3.0]})
    >>> rows = profile_frame(frame, {"amount": Binning().fit([1.0, 3.0])})
    >>> DatasetProfile.from_rows(rows)["amount"].mean
    2.0
    """

    profiles: Mapping[str, ColumnProfile]

    @classmethod
    def from_frame(cls, frame: object, binnings: Mapping[str, Binning]) -> DatasetProfile:
        """Profile each binned column of a frame (pandas or Arrow) as one window, no time buckets.

        >>> import pandas as pd
        >>> from steward.data.profiles import fit_binnings
        >>> frame = pd.DataFrame({"amount": [1.0, 3.0], "plan": ["a", "b"]})
        >>> window = DatasetProfile.from_frame(frame, fit_binnings(frame))
        >>> window.columns, window["amount"].mean
        (['amount', 'plan'], 2.0)
        """
        table = to_arrow_table(frame, "the frame")
        check_columns_present(table, binnings)
        groups = np.zeros(table.num_rows, dtype=np.int64)
        violations = np.zeros(table.num_rows, dtype=np.float64)
        profiled = profile_columns(table, binnings, groups, 1, lambda name: violations)
        return cls({name: profiles[0] for name, profiles in profiled.items()})

    @classmethod
    def from_rows(
        cls,
        rows: Iterable[BucketProfile],
        *,
        start: dt.datetime | None = None,
        end: dt.datetime | None = None,
        model_versions: Iterable[int | None] | None = None,
    ) -> DatasetProfile:
        """Merge rows per column, keeping buckets with ``start <= bucket_start < end`` and, when
        given, only the listed model versions."""
        wanted = None if model_versions is None else set(model_versions)
        grouped: dict[str, list[ColumnProfile]] = {}
        for row in rows:
            if start is not None and row.bucket_start < start:
                continue
            if end is not None and row.bucket_start >= end:
                continue
            if wanted is None or row.model_version in wanted:
                grouped.setdefault(row.column, []).append(row.profile)
        return cls({name: merge_profiles(parts) for name, parts in sorted(grouped.items())})

    def __getitem__(self, column: str) -> ColumnProfile:
        if column not in self.profiles:
            raise InvalidInputError(
                f"column {column!r} has no profile in this window (it has {sorted(self.profiles)}); "
                "check the column name and the window"
            )
        return self.profiles[column]

    @property
    def columns(self) -> list[str]:
        """The profiled columns, sorted."""
        return sorted(self.profiles)
