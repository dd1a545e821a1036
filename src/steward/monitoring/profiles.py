"""Profile mode of the monitors: where a system's profiles live, their binnings, and window reads.

A monitor run in profile mode (``steward.monitoring.runner.run_monitors``, the default) never reads a window's
raw rows for drift or data quality. It

1. fixes the binnings once per reference sample (the champion's, stored at registration): they are
   fitted on the first run and kept as ``binnings.json`` beside the profiles, so a later run (or
   process) reads them instead of refitting;
2. brings the hourly profiles up to date from the event log (``ProfileStore.sync``): events that
   have settled are profiled and stored behind the watermark, the ones received in the last
   ``settle`` seconds are profiled in memory for this run only;
3. reads a window as the merge of its buckets (``ProfileContext.window``), whole days from the
   daily rollups the store keeps (``steward.data.profiles.rollup``).

The profiles of a system live under the event log's root, in
``<events root>/profiles/reference-<sha>/system=<name>/``, one folder per reference sample: a new
champion with a new reference starts a series of its own (its bins differ, and profiles merge only
on equal bins), rebuilt from the event log on its first run. Nothing is created until the first
run writes a profile. Profiles are derived data: deleting the folder costs one rebuild.

Example::

    context = profile_context(steward, events, "churn")
    window = context.window(start, end)      # a DatasetProfile, merged from hourly buckets
    window["tenure"].null_count
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd

from steward.data.events import EventLog
from steward.data.profiles import (
    Binning,
    ColumnProfile,
    DatasetProfile,
    fit_binnings,
    merge_profiles,
)
from steward.data.profiles.store import LATENESS_COLUMN, ProfileRow, ProfileStore
from steward.errors import NotFoundError
from steward.workspace import Workspace

__all__ = [
    "BUCKET",
    "PROFILES_DIRECTORY",
    "ProfileContext",
    "monitor_store",
    "out_of_range_shares",
    "profile_context",
    "reference_inputs",
    "window_counts",
]

#: Width of a profile bucket; a window is read as the buckets whose start lies inside it.
BUCKET: Final = dt.timedelta(hours=1)
#: Folder under the event log's root that holds the profiles.
PROFILES_DIRECTORY: Final = "profiles"
# Lateness has no reference: fixed, log-spaced bins from 10 ms to about a year (the p95 comes from
# the KLL sketch, whose rank error does not depend on the bins).
_TICK: Final = dt.timedelta(microseconds=1)
_LATENESS_GRID: Final = np.concatenate([[0.0], np.geomspace(0.01, 3.2e7, 199)])


@dataclass(frozen=True)
class ProfileContext:
    """One run's view of a system's profiles: the store, the binnings and the reference profile.

    ``settling`` holds the profile rows of events received too recently to be stored; every read
    merges them in, so a run sees every event acknowledged before it started.
    """

    system: str
    store: ProfileStore
    binnings: dict[str, Binning]
    reference: DatasetProfile | None
    reference_rows: int
    settling: list[ProfileRow]

    @property
    def input_columns(self) -> list[str]:
        """The model input columns profiled (every binned column but lateness)."""
        return [name for name in self.binnings if name != LATENESS_COLUMN]

    def rows(
        self,
        start: dt.datetime,
        end: dt.datetime,
        columns: Sequence[str] | None = None,
        *,
        daily: bool = False,
    ) -> list[ProfileRow]:
        """Stored and settling rows with ``start <= bucket_start < end``, unmerged; with
        ``daily``, whole days already rolled up come as one row per day (``ProfileStore.read_rows``).
        """
        stored = self.store.read_rows(self.system, start, end, columns=columns, daily=daily)
        wanted = None if columns is None else set(columns)
        fresh = [
            row
            for row in self.settling
            if start <= row.bucket_start < end and (wanted is None or row.column in wanted)
        ]
        return [*stored, *fresh]

    def window(
        self, start: dt.datetime, end: dt.datetime, columns: Sequence[str] | None = None
    ) -> DatasetProfile:
        """The window ``[start, end)`` merged per column, over every model version (whole days
        from the daily rollups where they are up to date)."""
        return DatasetProfile.from_rows(self.rows(start, end, columns, daily=True))


def profile_context(
    steward: Workspace,
    events: EventLog,
    system: str,
    reference: pd.DataFrame | None,
    *,
    settle: dt.timedelta = dt.timedelta(seconds=30),
) -> ProfileContext:
    """Binnings for ``reference`` (fitted once, then read back), profiles synced from ``events``.

    ``reference`` is the champion's reference sample without target and entity key, or None when
    the champion has none (then only lateness and volume are profiled).
    """
    store, binnings = monitor_store(steward, events, system, reference)
    settling = store.sync(events, system, binnings, bucket=BUCKET, settle=settle)
    reference_profile = None
    if reference is not None and len(binnings) > 1:
        inputs = {name: b for name, b in binnings.items() if name != LATENESS_COLUMN}
        reference_profile = DatasetProfile.from_frame(reference[list(inputs)], inputs)
    return ProfileContext(
        system,
        store,
        binnings,
        reference_profile,
        0 if reference is None else len(reference),
        settling,
    )


def monitor_store(
    steward: Workspace, events: EventLog, system: str, reference: pd.DataFrame | None
) -> tuple[ProfileStore, dict[str, Binning]]:
    """The profile store a system's monitors read and the binnings its profiles use (fitted on
    ``reference`` and kept on first use, as :func:`profile_context` does).

    A build that writes ``store`` with these binnings, bucketed by :data:`BUCKET`, and with its
    watermark (as ``ProfileStore.refresh`` writes) is what the next monitor run reads, and that
    run's sync goes on from the watermark: ``steward profiles refresh --engine spark`` does this.

    Example::

        store, binnings = monitor_store(steward, steward.events, "churn", reference_inputs(
            steward, "churn"))
        store.refresh(steward.events, "churn", binnings, bucket=BUCKET)
    """
    key = _reference_key(steward, system) if reference is not None else "none"
    root = Path(events.root) / PROFILES_DIRECTORY / f"reference-{key}"
    return ProfileStore(root), _binnings(root / "binnings.json", reference)


def reference_inputs(steward: Workspace, system: str) -> pd.DataFrame | None:
    """The champion's reference sample without its target and entity key (the input columns the
    monitors profile), or None when the champion has none."""
    info = steward.system(system)
    try:
        reference = steward.reference_data(system, "champion")
    except NotFoundError:
        return None
    drop = [c for c in (info.target, info.entity_key) if c and c in reference.columns]
    return reference.drop(columns=drop)


def _reference_key(steward: Workspace, system: str) -> str:
    digest = steward.version(system, "champion").data.get("reference_sha256")
    if not digest:
        raise NotFoundError(f"the champion of {system!r} has no reference sample")
    return str(digest)[:16]


def _binnings(path: Path, reference: pd.DataFrame | None) -> dict[str, Binning]:
    """Read the binnings fitted for this reference, or fit and keep them (written atomically)."""
    if path.exists():
        stored = json.loads(path.read_text())
        return {name: Binning.from_dict(data) for name, data in stored.items()}
    binnings = fit_binnings(reference) if reference is not None else {}
    binnings[LATENESS_COLUMN] = Binning("numeric").fit(_LATENESS_GRID)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({name: b.to_dict() for name, b in binnings.items()}))
    os.replace(temporary, path)
    return binnings


def window_counts(
    rows: Iterable[ProfileRow], start: dt.datetime, window: dt.timedelta, n_windows: int
) -> list[tuple[int, ColumnProfile | None]]:
    """Per earlier window ``k`` (``[start - (k+1) window, start - k window)``), its event count and
    merged lateness profile, from lateness rows."""
    grouped: list[list[ColumnProfile]] = [[] for _ in range(n_windows)]
    for row in rows:
        if row.column != LATENESS_COLUMN or row.bucket_start >= start:
            continue
        # 0 for [start - window, start): a bucket starting exactly window before start is in it.
        age = (start - row.bucket_start - _TICK) // window
        if age < n_windows:
            grouped[age].append(row.profile)
    merged = [merge_profiles(parts) if parts else None for parts in grouped]
    return [(0 if profile is None else profile.count, profile) for profile in merged]


def out_of_range_shares(
    reference: DatasetProfile, current: DatasetProfile, columns: Sequence[str]
) -> dict[str, dict[str, Any]]:
    """Per numeric column, the share of the window's values below the reference minimum or above
    its maximum, read from the window's KLL sketch (within its rank error, about 1.3% at k=200).
    """
    found = {}
    for name in columns:
        ref, cur = reference[name], current[name]
        if ref.kind != "numeric" or not cur.finite_count or ref.minimum is None:
            continue
        assert ref.maximum is not None and cur.minimum is not None and cur.maximum is not None
        below = cur.sketch.get_rank(ref.minimum, False) if cur.minimum < ref.minimum else 0.0
        above = 1.0 - cur.sketch.get_rank(ref.maximum, True) if cur.maximum > ref.maximum else 0.0
        found[name] = {
            "share": float(below + above),
            "minimum": cur.minimum,
            "maximum": cur.maximum,
            "reference_minimum": ref.minimum,
            "reference_maximum": ref.maximum,
        }
    return found
