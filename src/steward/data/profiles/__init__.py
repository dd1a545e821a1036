"""Profiles: mergeable summaries of one column over one time bucket.

A monitor over any window merges the profiles of the window's buckets, so its cost depends on the
number of buckets and columns, never on the rows behind them. Every field of a profile is a merge of
per-partition partials: counts, bin counts and bin sums add, moments combine by Chan et al.'s formula,
minima and maxima take the extreme, and the KLL quantile sketch and the frequent-items sketch of unseen
categories merge as their library defines. Profile-mode drift compares two profiles
(``drift_from_profiles``, with an error bound) or two whole windows (``compare_profiles``, with
p-values and alarms, in the ``DriftReport`` of ``steward.data.drift``). Time-bucketed series and their
Parquet storage (``profile_frame``, ``build_profiles``, ``ProfileStore``) are in
``steward.data.profiles.store``; this package re-exports them. The rest is one module per
noun: ``binning`` (``Binning``, ``fit_binnings``, reading columns), ``column``
(``ColumnProfile``, ``merge_profiles``), ``counting`` (the column-wise passes that build
profiles), ``cells`` (each bucket's values sorted by the cells of their bins), ``kll`` (KLL
sketches built in bulk from the ranks they keep), ``dataset``
(``DatasetProfile``, a window), ``rollup`` (closed days merged once, for long windows) and
``compare`` (profile-mode drift) and ``batches`` (``profile_parquet`` and ``profile_batches``:
series of more rows than memory holds, a batch at a time).
``docs/profiles.md`` explains the algebra, the storage layout, the watermark and the error bounds of
profile-mode drift.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> binning = Binning().fit(rng.normal(size=1_000))
    >>> first = ColumnProfile.from_values(rng.normal(size=500), binning)
    >>> second = ColumnProfile.from_values(rng.normal(size=700), binning)
    >>> merged = first.merge(second)
    >>> merged.count, int(merged.bin_counts.sum())
    (1200, 1200)
"""

from __future__ import annotations

from steward.data.profiles.binning import (
    DEFAULT_BINS,
    DEFAULT_MAX_CATEGORIES,
    DEFAULT_SKETCH_K,
    Binning,
    fit_binnings,
)
from steward.data.profiles.column import ColumnProfile, merge_profiles
from steward.data.profiles.compare import (
    PROFILE_METHODS,
    ProfileDrift,
    compare_profiles,
    drift_from_profiles,
)
from steward.data.profiles.dataset import DatasetProfile

# The series and their storage build on the modules above, so they are imported last.
from steward.data.profiles.store import (
    LATENESS_COLUMN,
    OUTPUT_COLUMNS,
    ProfileRow,
    ProfileStore,
    build_profiles,
    profile_frame,
)

# Streamed series build on the series: imported after them.
from steward.data.profiles.batches import (  # isort: skip
    ProfileMerge,
    profile_batches,
    profile_parquet,
)

__all__ = [
    "DEFAULT_BINS",
    "DEFAULT_MAX_CATEGORIES",
    "DEFAULT_SKETCH_K",
    "LATENESS_COLUMN",
    "OUTPUT_COLUMNS",
    "PROFILE_METHODS",
    "Binning",
    "ColumnProfile",
    "DatasetProfile",
    "ProfileDrift",
    "ProfileMerge",
    "ProfileRow",
    "ProfileStore",
    "build_profiles",
    "compare_profiles",
    "drift_from_profiles",
    "fit_binnings",
    "merge_profiles",
    "profile_batches",
    "profile_frame",
    "profile_parquet",
]
