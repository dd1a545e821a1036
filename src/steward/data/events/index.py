"""Id indexes: a small sorted file beside each Parquet file, to find ids without opening Parquet.

An index holds, for every row of its Parquet file, a 64-bit hash of the ``id``, the ``id``
itself, ``received_at`` (µs) and ``entity_key``, sorted by the hash, as an uncompressed Arrow IPC
file. A lookup memory-maps it and binary-searches the hashes of the wanted ids, so it touches a
few pages whatever the file's size; comparing the stored ``id`` makes the answer exact, and
``entity_key`` with ``received_at`` let the caller apply erasure tombstones. The file name
carries the ``received_at`` range of the rows (see ``layout``). Decision 0004 says why.

Example::

    write_index(directory / "part-w1-000000000001.parquet", rows, (first_us, last_us))
    wanted = ["p1", "p2"]
    lookup(index_path, pa.array(wanted), np.sort(id_hashes(wanted)))  # the rows of p1 and p2
"""

from __future__ import annotations

import contextlib
import hashlib
import mmap
import os
from collections.abc import Sequence
from pathlib import Path
from typing import IO, Final

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from steward.data.events.durable import write_atomically
from steward.data.events.layout import index_name, index_paths

__all__ = [
    "MATCH_SCHEMA",
    "id_hashes",
    "lookup",
    "read_matches",
    "received_range",
    "write_index",
]

_INDEX_SCHEMA: Final = pa.schema(
    [
        pa.field("hash", pa.uint64(), nullable=False),
        pa.field("id", pa.string()),
        pa.field("received_at", pa.int64()),
        pa.field("entity_key", pa.string()),
    ]
)
#: What a lookup returns: the matching rows' ``id``, ``received_at`` (µs) and ``entity_key``.
MATCH_SCHEMA: Final = pa.schema(list(_INDEX_SCHEMA)[1:])

UInt64Array = npt.NDArray[np.uint64]


def id_hashes(ids: Sequence[str | None]) -> UInt64Array:
    """The 64-bit BLAKE2b hash of each id (a stable function: indexes outlive releases)."""
    return np.fromiter(
        (
            int.from_bytes(
                hashlib.blake2b((value or "").encode(), digest_size=8).digest(), "little"
            )
            for value in ids
        ),
        dtype=np.uint64,
        count=len(ids),
    )


def received_range(table: pa.Table) -> tuple[int, int]:
    """The smallest and largest ``received_at`` of a non-empty table, in µs."""
    bounds = pc.min_max(table["received_at"].cast(pa.int64()))
    return int(bounds["min"].as_py()), int(bounds["max"].as_py())


def _index_table(rows: pa.Table) -> pa.Table:
    ids = rows["id"].combine_chunks()
    hashes = id_hashes(ids.to_pylist())
    order = np.argsort(hashes, kind="stable")
    return pa.table(
        {
            "hash": pa.array(hashes[order], pa.uint64()),
            "id": ids.take(order),
            "received_at": rows["received_at"].cast(pa.int64()).take(order),
            "entity_key": rows["entity_key"].take(order),
        },
        schema=_INDEX_SCHEMA,
    )


def write_index(parquet: Path, rows: pa.Table, received: tuple[int, int]) -> Path:
    """Write the index of the Parquet file ``parquet`` (which is about to hold ``rows``).

    Call it before the Parquet file is renamed into place: a published file then always has its
    index (or, after a crash, none, which readers handle). ``received`` bounds the rows'
    ``received_at`` and names the file; the same bounds give the same name, so writing again
    replaces the file. Indexes of the same Parquet file under other bounds are removed.
    """
    table = _index_table(rows)
    path = parquet.with_name(index_name(parquet.name, *received))

    def write(file: IO[bytes]) -> None:
        with pa.ipc.new_file(file, table.schema) as writer:
            writer.write_table(table)

    write_atomically(path, write)
    for other in index_paths(parquet):
        if other != path:
            other.unlink(missing_ok=True)
    return path


def lookup(index: Path, ids: pa.Array, hashes: UInt64Array) -> pa.Table:
    """The rows of ``index`` whose id is one of ``ids`` (a string array).

    ``hashes`` are the ``id_hashes`` of ``ids``, sorted (a binary search for sorted keys starts
    where the last one ended: about 4x faster). Memory-maps the index and reads only the pages the
    search touches; the map is released before returning. Raises FileNotFoundError if the index
    was removed meanwhile.
    """
    # Python's mmap, not pyarrow.memory_map: reading a buffer from the latter advises the kernel
    # to read the whole file ahead, a cost that grows with the file (measured: decision 0004).
    descriptor = os.open(index, os.O_RDONLY | os.O_CLOEXEC)
    try:
        mapped = mmap.mmap(descriptor, 0, prot=mmap.PROT_READ)
    finally:
        os.close(descriptor)
    try:
        return _search(mapped, ids, hashes)
    finally:
        with contextlib.suppress(BufferError):  # still exported only while an error propagates
            mapped.close()


def _search(mapped: mmap.mmap, ids: pa.Array, hashes: UInt64Array) -> pa.Table:
    """``lookup`` on the mapped bytes; returns copies, so the map can close afterwards."""
    table = pa.ipc.open_file(pa.BufferReader(pa.py_buffer(mapped))).read_all()
    if table.num_rows == 0:
        return MATCH_SCHEMA.empty_table()
    keys = table.column("hash").chunk(0).to_numpy(zero_copy_only=True)
    starts = np.searchsorted(keys, hashes, side="left")
    hit = keys[np.minimum(starts, len(keys) - 1)] == hashes
    if not hit.any():
        return MATCH_SCHEMA.empty_table()
    ends = np.searchsorted(keys, hashes[hit], side="right")  # an id repeated in the file
    positions = np.concatenate(
        [np.arange(start, end) for start, end in zip(starts[hit], ends, strict=True)]
    )
    candidates = table.select(MATCH_SCHEMA.names).take(pa.array(positions))
    matches = candidates.filter(pc.is_in(candidates["id"], ids))
    return pa.Table.from_batches(matches.to_batches(), schema=MATCH_SCHEMA).combine_chunks()


def read_matches(parquet: Path, ids: pa.Array) -> pa.Table:
    """The rows of a Parquet file without an index whose id is one of ``ids`` (as ``lookup``)."""
    table = pq.read_table(
        parquet,
        columns=["id", "received_at", "entity_key"],
        filters=pc.is_in(pc.field("id"), ids),
        partitioning=None,
    )
    return table.cast(MATCH_SCHEMA)
