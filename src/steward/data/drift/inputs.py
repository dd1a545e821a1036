"""The data drift compares: frames read as Arrow tables, the columns picked, their values read.

``compare``, ``DriftDetector`` and the domain classifier take the same inputs and pick columns the
same way: :func:`read_frame` reads a pandas DataFrame (only the columns compared), pyarrow Table or
polars DataFrame and refuses an empty one; :func:`resolve_kinds` picks the columns of the
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
import pandas as pd
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


def read_frame(frame: object, side: str, columns: Sequence[str] | None = None) -> pa.Table:
    """The ``side`` ("reference" or "current") data as a pyarrow Table with at least one row.

    A pandas frame is converted column by column, for ``columns`` only when it has them all (a
    frame lacking one is read whole, so the error can list every column): float columns as they
    are (NaN stays NaN, which drift reads as missing like a null), text columns of ``object``
    dtype dictionary-encoded (each distinct string converted once). Other inputs are read whole.
    """
    what = f"the {side} data"
    subset = _pandas_subset(frame, columns)
    table = to_arrow_table(frame, what) if subset is None else _pandas_columns(subset, what)
    if table.num_rows == 0:
        raise InvalidInputError(f"the {side} data has no rows; pass at least one row on each side")
    return table


def _pandas_subset(frame: object, columns: Sequence[str] | None) -> dict[str, Any] | None:
    """The pandas columns named ``columns`` (all, for None) by their text name, or None to read
    the frame whole through ``steward._util.frames``."""
    if not isinstance(frame, pd.DataFrame):
        return None
    labels = {str(label): label for label in frame.columns}
    wanted = list(labels) if columns is None else list(dict.fromkeys(columns))
    if len(labels) != frame.shape[1] or any(name not in labels for name in wanted):
        return None  # repeated or missing names: the whole frame, for its error message
    return {name: frame[labels[name]] for name in wanted}


def _pandas_columns(columns: Mapping[str, Any], what: str) -> pa.Table:
    # As steward._util.frames reads a frame (None becomes null, the index is dropped), faster.
    arrays = []
    for name, series in columns.items():
        try:
            arrays.append(_series_array(series))
        except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
            raise InvalidInputError(
                f"column {name!r} of {what} mixes types ({error}); make it hold only "
                "numbers or only strings"
            ) from error
    return pa.Table.from_arrays(arrays, names=list(columns))


def _series_array(series: pd.Series) -> pa.Array:
    dtype = series.dtype
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        return pa.array(series.to_numpy())  # no copy, no scan for NaN
    if isinstance(dtype, np.dtype) and dtype.kind == "O":
        encoded = _encoded_strings(series)
        if encoded is not None:
            return encoded
    return pa.array(series, from_pandas=True)


def _encoded_strings(series: pd.Series) -> pa.DictionaryArray | None:
    """An ``object`` column of strings (and missing values) as a dictionary array; None when it
    holds anything else, to be converted as it is."""
    codes, uniques = pd.factorize(series, use_na_sentinel=True)
    if uniques.size == 0 or not all(isinstance(value, str) for value in uniques):
        return None  # no value, numbers, or a mix (whose conversion error names the column)
    # The narrowest index type that holds every code: a few levels cost a byte a row.
    narrow = np.min_scalar_type(-uniques.size) if uniques.size < 2**31 else np.int64
    indices = pa.array(codes.astype(narrow), mask=codes < 0)
    return pa.DictionaryArray.from_arrays(indices, pa.array(uniques, type=pa.string()))


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
        data_type = column.type
        if pa.types.is_dictionary(data_type):
            data_type = data_type.value_type
        raise InvalidInputError(
            f"column {name!r} is numeric in the reference but the {side} data holds {data_type} "
            f"values (first: {first!r}); fix the data, or pass categorical=[{name!r}] to compare it "
            "as categories"
        )
    values = np.asarray(column.cast(pa.float64()).to_numpy(), dtype=np.float64)
    if values.size and np.isfinite(np.sum(values)):
        return values, 0  # a finite sum: no NaN, no infinity (one pass, no mask)
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
    counts: dict[Any, int] = {}
    n_missing = 0
    for value, count in _value_counts(column):
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


def _value_counts(column: pa.ChunkedArray) -> list[tuple[Any, int]]:
    """(value, count) of each value present, None for nulls; a dictionary column is counted on its
    integer indices, each chunk against its own dictionary, without hashing a string."""
    if not pa.types.is_dictionary(column.type):
        counted = pc.value_counts(column)
        return list(
            zip(
                counted.field("values").to_pylist(),
                counted.field("counts").to_pylist(),
                strict=True,
            )
        )
    found: list[tuple[Any, int]] = []
    for chunk in column.chunks:
        dictionary = chunk.dictionary.to_pylist()
        # Index -1 stands for a null; shifted by one, it is bin 0.
        indices = pc.fill_null(chunk.indices, -1).to_numpy(zero_copy_only=False)
        tally = np.bincount(indices.astype(np.int64) + 1, minlength=len(dictionary) + 1)
        found.append((None, int(tally[0])))
        found += [
            (value, int(n)) for value, n in zip(dictionary, tally[1:].tolist(), strict=True) if n
        ]
    return found


def sample_rows(table: pa.Table, max_rows: int, rng: np.random.Generator) -> pa.Table:
    """At most ``max_rows`` rows of ``table``, drawn without replacement, in table order."""
    if table.num_rows <= max_rows:
        return table
    return table.take(np.sort(rng.choice(table.num_rows, size=max_rows, replace=False)))
