"""Erasure tombstones: readers and rolls hide an erased entity's rows received before the erasure.

A tombstone holds the system, the sha256 of the entity key and the time of the erasure, in
``<root>/_erasures.json``; it holds no key. ``retention.erase`` stores one and then rewrites the
files; until the rewrite is done, the tombstone alone hides the rows.

An id tombstone (``record_id_erasure``) holds the sha256 of each prediction id erased instead of
an entity's: the predictions and shadow scores with those ids, and the outcomes that name them in
``prediction_id`` (which may carry no entity key). ``retention.erase_ids`` stores one before it
rewrites the files, so an interrupted run can find the rows again; rolls (``drop_erased``) hide
the rows meanwhile. The SQL views apply entity tombstones only (``erasure_table``).

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

__all__ = [
    "drop_erased",
    "entity_hash",
    "erased_id_hashes",
    "erasure_table",
    "load_erasures",
    "merge_erasures",
    "record_erasure",
    "record_id_erasure",
]

_ERASURES_FILE: Final = "_erasures.json"
#: The kinds an id tombstone matches by ``id`` (outcomes it matches by ``prediction_id``).
_BY_ID: Final = frozenset({"prediction", "shadow"})


def entity_hash(entity_key: str) -> str:
    """The hex sha256 of an entity key, as tombstones store it."""
    return hashlib.sha256(entity_key.encode()).hexdigest()


def load_erasures(root: Path) -> list[dict[str, Any]]:
    """Every tombstone of the log: ``system``, ``erased_at_us`` and either ``entity_sha256``
    or (an id tombstone) ``ids_sha256``."""
    try:
        document = json.loads((root / _ERASURES_FILE).read_text())
    except FileNotFoundError:
        return []
    return list(document["erasures"])


def record_erasure(root: Path, system: str, entity_key: str, erased_us: int) -> None:
    """Store a tombstone durably: from now on readers hide the entity's rows received before."""
    _store(
        root,
        {"system": system, "entity_sha256": entity_hash(entity_key), "erased_at_us": erased_us},
    )


def record_id_erasure(root: Path, system: str, ids: list[str], erased_us: int) -> None:
    """Store an id tombstone durably: rolls from now on drop the predictions and shadow scores
    with these ids, and the outcomes naming them, received before; nothing when ``ids`` is empty.

    Example::

        record_id_erasure(root, "churn", ["p1", "p2"], now_us())
    """
    if ids:
        hashes = sorted({entity_hash(item) for item in ids})
        _store(root, {"system": system, "ids_sha256": hashes, "erased_at_us": erased_us})


def erased_id_hashes(erasures: list[dict[str, Any]], system: str) -> set[str]:
    """The sha256 of every prediction id an id tombstone of ``system`` names."""
    return {
        digest
        for item in erasures
        if item["system"] == system
        for digest in item.get("ids_sha256", [])
    }


def merge_erasures(root: Path, others: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add to the log's tombstones those of ``others`` it lacks (another server's, through the
    object store); return them all, in a stable order."""
    erasures = load_erasures(root)
    seen = {json.dumps(item, sort_keys=True) for item in erasures}
    new = [item for item in others if json.dumps(item, sort_keys=True) not in seen]
    if new:
        _write(root, [*erasures, *new])
    return [*erasures, *new]


def _store(root: Path, tombstone: dict[str, Any]) -> None:
    _write(root, [*load_erasures(root), tombstone])


def _write(root: Path, erasures: list[dict[str, Any]]) -> None:
    temporary = root / f".{_ERASURES_FILE}.tmp"
    with open(temporary, "w") as file:
        json.dump({"version": 1, "erasures": erasures}, file)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, root / _ERASURES_FILE)
    fsync_directory(root)


def erasure_table(erasures: list[dict[str, Any]]) -> pa.Table:
    """The entity tombstones as a table (``system``, ``entity_sha256``, ``erased_at``) for SQL
    joins; id tombstones are left out."""
    erasures = [item for item in erasures if "entity_sha256" in item]
    return pa.table(
        {
            "system": pa.array([item["system"] for item in erasures], pa.string()),
            "entity_sha256": pa.array([item["entity_sha256"] for item in erasures], pa.string()),
            "erased_at": pa.array([item["erased_at_us"] for item in erasures], TIMESTAMP),
        }
    )


def drop_erased(table: pa.Table, erasures: list[dict[str, Any]]) -> pa.Table:
    """``table`` without the rows a tombstone hides.

    ``table`` needs ``system``, ``entity_key`` and ``received_at`` (a timestamp or µs integers);
    id tombstones apply where it also has ``kind`` (or, for outcomes, ``prediction_id``).
    """
    if not erasures or table.num_rows == 0:
        return table
    entities: dict[tuple[str, str], int] = {}
    ids: dict[tuple[str, str], int] = {}
    for item in erasures:
        into, hashes = (
            (entities, [item["entity_sha256"]])
            if "entity_sha256" in item
            else (ids, item["ids_sha256"])
        )
        for digest in hashes:
            key = (item["system"], digest)
            into[key] = max(into.get(key, 0), item["erased_at_us"])
    systems = {system for system, _ in [*entities, *ids]}
    if not pc.any(pc.is_in(table["system"], pa.array(sorted(systems)))).as_py():
        return table
    received = table["received_at"].cast(pa.int64()).to_pylist()
    id_keys = _id_keys(table) if ids else [None] * table.num_rows

    def hidden(latest: dict[tuple[str, str], int], system: str, key: str | None, at: int) -> bool:
        return key is not None and at <= latest.get((system, entity_hash(key)), -1)

    keep = [
        not hidden(entities, system, entity, received[index])
        and not hidden(ids, system, id_keys[index], received[index])
        for index, (system, entity) in enumerate(
            zip(table["system"].to_pylist(), table["entity_key"].to_pylist(), strict=True)
        )
    ]
    return table.filter(pa.array(keep))


def _id_keys(table: pa.Table) -> list[str | None]:
    """Per row, the prediction id an id tombstone matches: a prediction's or shadow score's
    ``id``, an outcome's ``prediction_id``; None where it cannot tell (or for an LLM call)."""
    names = table.column_names
    if "kind" not in names:
        column = table["prediction_id"] if "prediction_id" in names else None
        return [None] * table.num_rows if column is None else column.to_pylist()
    kinds = table["kind"].to_pylist()
    ids = table["id"].to_pylist()
    wanted = table["prediction_id"].to_pylist() if "prediction_id" in names else ids
    return [
        ids[index] if kind in _BY_ID else wanted[index] if kind == "outcome" else None
        for index, kind in enumerate(kinds)
    ]
