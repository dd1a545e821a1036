"""The data drift compares: frames read as Arrow tables, the columns picked, their values read.

``compare``, ``DriftDetector`` and the domain classifier take the same inputs and pick columns the
same way: :func:`read_frame` reads a pandas DataFrame, pyarrow Table or polars DataFrame (through
``steward._util.frames``) and refuses an empty one; :func:`resolve_kinds` picks the columns of the
reference and whether each is numeric or categorical; :func:`check_current_columns` checks the
current data has them; :func:`numeric_values` and :func:`category_counts` read one column;
:func:`sample_rows` draws the rows the classifier trains on.

Example::

    >>> import pandas as pd
    >>> table = read_frame(pd.DataFrame({"x": [1.0, 2.0], "plan": ["a", "b"]}), "reference")
    >>> resolve_kinds(table, None, None)
    ({'x': 'numeric', 'plan': 'categorical'}, {})
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from steward._util.frames import to_arrow_table
from steward.errors import InvalidInputError

__all__ = [
    "category_counts",
    "check_current_columns",
    "numeric_values",
    "read_frame",
    "resolve_kinds",
    "sample_rows",
]

FloatArray = npt.NDArray[np.float64]


def read_frame(frame: object, side: str) -> pa.Table:
    """The ``side`` ("reference" or "current") data as a pyarrow Table with at least one row."""
    table = to_arrow_table(frame, f"the {side} data")
    if table.num_rows == 0:
        raise InvalidInputError(f"the {side} data has no rows; pass at least one row on each side")
    return table


def _arrow_kind(data_type: pa.DataType) -> str | None:
    types = pa.types
    if types.is_dictionary(data_type) or types.is_string(data_type):
        return "categorical"
    if types.is_large_string(data_type) or types.is_string_view(data_type):
        return "categorical"
    if types.is_integer(data_type) or types.is_floating(data_type) or types.is_decimal(data_type):
        return "numeric"
    if types.is_boolean(data_type):
        return "numeric"  # 0/1 unless the user says categorical=
    if types.is_null(data_type):
        return "null"
    return None


def resolve_kinds(
    table: pa.Table, columns: Sequence[str] | None, categorical: Sequence[str] | None
) -> tuple[dict[str, str], dict[str, str]]:
    """Kind ("numeric" or "categorical") of each column to compare, and the columns left out, why."""
    names = list(table.column_names if columns is None else columns)
    forced = set(categorical or ())
    unknown = [name for name in [*names, *forced] if name not in table.column_names]
    if unknown:
        raise InvalidInputError(
            f"column(s) {unknown} are not in the reference data, which has {table.column_names}; "
            "check the names given to columns= and categorical="
        )
    if forced - set(names):
        raise InvalidInputError(
            f"categorical= names {sorted(forced - set(names))}, which columns= leaves out; add them "
            "to columns= or drop them from categorical="
        )
    kinds: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in names:
        data_type = table.schema.field(name).type
        kind = _arrow_kind(data_type)
        if kind in ("numeric", "categorical"):
            kinds[name] = "categorical" if name in forced else str(kind)
        elif columns is None:
            skipped[name] = f"type {data_type} is neither numeric nor categorical"
        else:
            raise InvalidInputError(
                f"column {name!r} has type {data_type}, which drift cannot compare; leave it out of "
                "columns= (numbers, booleans and strings can be compared)"
            )
    if not kinds:
        raise InvalidInputError(
            f"no column to compare: {skipped}; pass data with numeric or string columns"
        )
    return kinds, skipped


def check_current_columns(table: pa.Table, kinds: Mapping[str, str]) -> None:
    """Refuse current data that lacks a compared column or holds categories of another type."""
    missing = [name for name in kinds if name not in table.column_names]
    if missing:
        raise InvalidInputError(
            f"column(s) {missing} are in the reference but missing from the current data (it has "
            f"{table.column_names}); add them, or leave them out with columns=[...]"
        )
    for name, kind in kinds.items():
        current_kind = _arrow_kind(table.schema.field(name).type)
        # Numeric columns are checked in numeric_values; categories of another type (ints where the
        # reference had strings) are compared as they are and show up as unseen categories.
        if kind == "numeric" or current_kind is not None:
            continue
        raise InvalidInputError(
            f"column {name!r} holds categories in the reference but "
            f"{table.schema.field(name).type} in the current data; fix the data or leave it out"
        )


def numeric_values(column: pa.ChunkedArray, name: str, side: str) -> tuple[FloatArray, int]:
    """The non-missing values of a numeric column, and how many were missing."""
    if _arrow_kind(column.type) not in ("numeric", "null"):
        first = next((value for value in column.to_pylist() if value is not None), None)
        raise InvalidInputError(
            f"column {name!r} is numeric in the reference but the {side} data holds {column.type} "
            f"values (first: {first!r}); fix the data, or pass categorical=[{name!r}] to compare it "
            "as categories"
        )
    values = np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
    missing = np.isnan(values)
    n_missing = int(missing.sum())
    if n_missing:
        values = values[~missing]
    if values.size == 0:
        raise InvalidInputError(
            f"column {name!r} has no non-missing values in the {side} data ({n_missing} rows); "
            "leave it out with columns=[...] and watch its missing rate with a data-quality check"
        )
    n_infinite = int(np.count_nonzero(np.isinf(values)))
    if n_infinite:
        raise InvalidInputError(
            f"column {name!r} holds {n_infinite} infinite values in the {side} data; replace them "
            "with missing values or finite numbers"
        )
    return values, n_missing


def category_counts(column: pa.ChunkedArray, name: str, side: str) -> tuple[dict[Any, int], int]:
    """Count per category of a column, and how many values were missing (null or NaN)."""
    counted = pc.value_counts(column)
    counts: dict[Any, int] = {}
    n_missing = 0
    for value, count in zip(
        counted.field("values").to_pylist(), counted.field("counts").to_pylist(), strict=True
    ):
        if value is None or (isinstance(value, float) and math.isnan(value)):
            n_missing += count
        else:
            counts[value] = counts.get(value, 0) + count
    if not counts:
        raise InvalidInputError(
            f"column {name!r} has no non-missing values in the {side} data ({n_missing} rows); "
            "leave it out with columns=[...] and watch its missing rate with a data-quality check"
        )
    return counts, n_missing


def sample_rows(table: pa.Table, max_rows: int, rng: np.random.Generator) -> pa.Table:
    """At most ``max_rows`` rows of ``table``, drawn without replacement, in table order."""
    if table.num_rows <= max_rows:
        return table
    return table.take(np.sort(rng.choice(table.num_rows, size=max_rows, replace=False)))
