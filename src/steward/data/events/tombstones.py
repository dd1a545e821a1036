"""Erasure tombstones: readers and rolls hide an erased entity's rows received before the erasure.

A tombstone holds the system, the sha256 of the entity key and the time of the erasure, in
``<root>/_erasures.json``; it holds no key. ``retention.erase`` stores one and then rewrites the
files; until the rewrite is done, the tombstone alone hides the rows.

Example::

    record_erasure(root, "churn", "customer-42", now_us())
    drop_erased(table, load_erasures(root))  # the rows of customer-42 received before, gone
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Final

import pyarrow as pa
import pyarrow.compute as pc

from steward.data.events.durable import fsync_directory
from steward.data.events.schemas import TIMESTAMP

__all__ = ["drop_erased", "entity_hash", "erasure_table", "load_erasures", "record_erasure"]

_ERASURES_FILE: Final = "_erasures.json"


def entity_hash(entity_key: str) -> str:
    """The hex sha256 of an entity key, as tombstones store it."""
    return hashlib.sha256(entity_key.encode()).hexdigest()


def load_erasures(root: Path) -> list[dict[str, Any]]:
    """Every tombstone of the log (``system``, ``entity_sha256``, ``erased_at_us``)."""
    try:
        document = json.loads((root / _ERASURES_FILE).read_text())
    except FileNotFoundError:
        return []
    return list(document["erasures"])


def record_erasure(root: Path, system: str, entity_key: str, erased_us: int) -> None:
    """Store a tombstone durably: from now on readers hide the entity's rows received before."""
    erasures = load_erasures(root)
    erasures.append(
        {"system": system, "entity_sha256": entity_hash(entity_key), "erased_at_us": erased_us}
    )
    temporary = root / f".{_ERASURES_FILE}.tmp"
    with open(temporary, "w") as file:
        json.dump({"version": 1, "erasures": erasures}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, root / _ERASURES_FILE)
    fsync_directory(root)


def erasure_table(erasures: list[dict[str, Any]]) -> pa.Table:
    """The tombstones as a table (``system``, ``entity_sha256``, ``erased_at``) for SQL joins."""
    return pa.table(
        {
            "system": pa.array([item["system"] for item in erasures], pa.string()),
            "entity_sha256": pa.array([item["entity_sha256"] for item in erasures], pa.string()),
            "erased_at": pa.array([item["erased_at_us"] for item in erasures], TIMESTAMP),
        }
    )


def drop_erased(table: pa.Table, erasures: list[dict[str, Any]]) -> pa.Table:
    """``table`` without the rows a tombstone hides.

    ``table`` needs ``system``, ``entity_key`` and ``received_at`` (a timestamp or µs integers).
    """
    if not erasures or table.num_rows == 0:
        return table
    latest: dict[tuple[str, str], int] = {}
    for item in erasures:
        key = (item["system"], item["entity_sha256"])
        latest[key] = max(latest.get(key, 0), item["erased_at_us"])
    systems = {system for system, _ in latest}
    if not pc.any(pc.is_in(table["system"], pa.array(sorted(systems)))).as_py():
        return table
    received = table["received_at"].cast(pa.int64()).to_pylist()
    keep = [
        key is None or received[index] > latest.get((system, entity_hash(key)), -1)
        for index, (system, key) in enumerate(
            zip(table["system"].to_pylist(), table["entity_key"].to_pylist(), strict=True)
        )
    ]
    return table.filter(pa.array(keep))
