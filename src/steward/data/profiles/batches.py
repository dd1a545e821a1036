"""Streamed profiles: the time-bucketed profiles of more rows than memory holds, batch by batch.

``profile_frame`` profiles one frame in memory. :func:`profile_batches` profiles any sequence of
frames (Arrow record batches, tables or pandas frames) one at a time and keeps a running merge per
bucket, column and model version (:class:`ProfileMerge`), so its memory depends on the batch size
and the number of buckets, not on the rows. :func:`profile_parquet` does so for a Parquet file or
folder, reading one batch of ``batch_rows`` rows at a time. The result equals ``profile_frame`` of
the whole table: counts, bins, categories, minima and maxima exactly, means and sums of squares up
to rounding, sketches within their bounds (a profile is a merge of partials by construction).

Example::

    >>> import pandas as pd
    >>> from steward.data.profiles import Binning
    >>> frame = pd.DataFrame({
    ...     "event_time": pd.to_datetime(["2026-01-01 00:10", "2026-01-01 00:50"], utc=True),
    ...     "amount": [1.0, 3.0]})
    >>> binnings = {"amount": Binning().fit([0.0, 4.0])}
    >>> rows = profile_batches([frame.iloc[:1], frame.iloc[1:]], binnings)
    >>> [(row.profile.count, row.profile.mean) for row in rows]
    [(2, 2.0)]
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Final

import pyarrow as pa
import pyarrow.parquet as pq

from steward.data.profiles.binning import Binning, check_columns_present
from steward.data.profiles.column import ColumnProfile
from steward.data.profiles.store import ProfileRow, profile_frame
from steward.errors import InvalidInputError

__all__ = [
    "DEFAULT_BATCH_ROWS",
    "ProfileMerge",
    "gathered",
    "parquet_files",
    "profile_batches",
    "profile_parquet",
]

#: Rows :func:`profile_parquet` reads and profiles at a time: large enough that the per-call cost
#: of the counting passes vanishes, small enough that a few hundred columns of them fit in memory.
DEFAULT_BATCH_ROWS: Final = 1_000_000

_Key = tuple[str, dt.datetime, int | None]


class ProfileMerge:
    """A running merge of profile rows: one profile per column, bucket start and model version.

    Memory holds one profile per key whatever the number of rows added, so a stream of partial
    rows (from batches, or from Spark tasks) merges in bounded memory.

    >>> import pandas as pd
    >>> from steward.data.profiles import Binning
    >>> frame = pd.DataFrame({"event_time": pd.to_datetime(["2026-01-01"], utc=True), "x": [1.0]})
    >>> rows = profile_frame(frame, {"x": Binning().fit([0.0, 2.0])})
    >>> merge = ProfileMerge(["x"])
    >>> merge.add(rows); merge.add(rows)
    >>> [row.profile.count for row in merge.rows()]
    [2]
    """

    def __init__(self, columns: Iterable[str]) -> None:
        self.columns = list(columns)
        self._position = {name: index for index, name in enumerate(self.columns)}
        self._merged: dict[_Key, ColumnProfile] = {}

    def add(self, rows: Iterable[ProfileRow]) -> None:
        """Merge each row into the profile of its column, bucket and model version."""
        for row in rows:
            if row.column not in self._position:
                raise InvalidInputError(
                    f"a profile row of column {row.column!r} does not belong to this merge of "
                    f"{self.columns}; merge rows of the same binnings only"
                )
            key = (row.column, row.bucket_start, row.model_version)
            found = self._merged.get(key)
            self._merged[key] = row.profile if found is None else found.merge(row.profile)

    def rows(self) -> list[ProfileRow]:
        """The merged rows by column (in the order given), bucket start and model version (None
        last)."""
        keys = sorted(
            self._merged,
            key=lambda key: (self._position[key[0]], key[1], key[2] is None, key[2] or 0),
        )
        return [
            ProfileRow(start, name, self._merged[name, start, version], version)
            for name, start, version in keys
        ]

    def __len__(self) -> int:
        return len(self._merged)


def gathered(batches: Iterable[pa.RecordBatch], rows: int) -> Iterator[pa.Table]:
    """The batches as tables of at least ``rows`` rows each (the last one may be shorter)."""
    pending: list[pa.RecordBatch] = []
    size = 0
    for batch in batches:
        if batch.num_rows:
            pending.append(batch)
            size += batch.num_rows
        if size >= rows:
            yield pa.Table.from_batches(pending)
            pending, size = [], 0
    if pending:
        yield pa.Table.from_batches(pending)


def profile_batches(
    batches: Iterable[object],
    binnings: Mapping[str, Binning],
    *,
    bucket: str | dt.timedelta = "1h",
    time_column: str = "event_time",
    model_version_column: str | None = None,
) -> list[ProfileRow]:
    """Profile frames one at a time, as ``profile_frame`` profiles their concatenation.

    Returns one row per bucket, column (in ``binnings`` order) and model version, ordered by
    column, bucket start and version (None last). Only one frame and the running merge are held.
    """
    merge = ProfileMerge(binnings)
    for frame in batches:
        merge.add(
            profile_frame(
                frame,
                binnings,
                bucket=bucket,
                time_column=time_column,
                model_version_column=model_version_column,
            )
        )
    return merge.rows()


def parquet_files(source: str | os.PathLike[str]) -> list[Path]:
    """A Parquet file, or the Parquet files under a folder (names starting with ``_`` or ``.``
    skipped, as Spark skips them), sorted; a clear error when there are none."""
    path = Path(source)
    if path.is_file():
        return [path]
    files = sorted(
        found
        for found in path.rglob("*")
        if found.is_file()
        and not any(part.startswith(("_", ".")) for part in found.relative_to(path).parts)
    )
    if not files:
        raise InvalidInputError(
            f"'{path}' {'holds no files' if path.is_dir() else 'does not exist'}; pass a Parquet "
            "file or a folder of Parquet files"
        )
    return files


def profile_parquet(
    source: str | os.PathLike[str],
    binnings: Mapping[str, Binning],
    *,
    bucket: str | dt.timedelta = "1h",
    time_column: str = "event_time",
    model_version_column: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_batch: Callable[[int], None] | None = None,
) -> list[ProfileRow]:
    """Profile a Parquet file or folder per time bucket, ``batch_rows`` rows at a time.

    Reads only the columns profiled, one batch at a time and without pre-buffering (which would
    keep the buffers of a whole file alive), so memory stays flat as the rows grow. ``on_batch``
    is called with the rows of each batch once it is profiled (for progress). Returns what
    ``profile_frame`` returns for the whole table.

    Example::

        rows = profile_parquet("predictions/", binnings, bucket="1h")
        ProfileStore("profiles").write("churn", rows)
    """
    if batch_rows < 1:
        raise InvalidInputError(f"batch_rows={batch_rows} must be at least 1; pass e.g. 1000000")
    columns = [*dict.fromkeys([time_column, *filter(None, [model_version_column]), *binnings])]
    return profile_batches(
        _read_batches(parquet_files(source), columns, batch_rows, on_batch),
        binnings,
        bucket=bucket,
        time_column=time_column,
        model_version_column=model_version_column,
    )


def _read_batches(
    files: list[Path],
    columns: list[str],
    batch_rows: int,
    on_batch: Callable[[int], None] | None,
) -> Iterator[pa.Table]:
    for path in files:
        try:
            file = pq.ParquetFile(path, pre_buffer=False)
        except (pa.ArrowException, OSError) as error:
            first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
            raise InvalidInputError(
                f"could not read '{path}' as Parquet ({first_line}); pass a Parquet file or a "
                "folder of Parquet files"
            ) from None
        check_columns_present(file.schema_arrow.empty_table(), columns)
        for table in gathered(
            file.iter_batches(batch_size=batch_rows, columns=columns), batch_rows
        ):
            yield table
            if on_batch is not None:
                on_batch(table.num_rows)
