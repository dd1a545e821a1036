"""Reading one column of a frame as a contract type, in vectorized passes.

The batch path (:func:`~steward.data.contracts.check_batch`) and contract inference
(:func:`~steward.data.contracts.infer_contract`) read a pandas column the same way: first
:func:`normalize_series` says which kind of data it holds, then :func:`parse_column` (or
:func:`parse_numbers` for numbers alone) marks the rows that are null and those of the wrong type,
with the values parsed. Strings are parsed with Arrow's kernels and the patterns of
:mod:`steward.data.contracts.syntax`, so they agree with the record path value for value.

Example::

    >>> import pandas as pd
    >>> parsed = parse_column("int", pd.Series(["1", " ", "x"]), "string")
    >>> parsed.null.tolist(), parsed.invalid.tolist()
    ([False, True, False], [False, False, True])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from steward.data.contracts.syntax import (
    BLANK_SYNTAX,
    BOOL_WORDS,
    DATETIME_SYNTAX,
    FLOAT_SYNTAX,
    INT_SYNTAX,
    NUMERIC_TYPES,
    TRIM,
)
from steward.errors import InvalidInputError

__all__ = [
    "Parsed",
    "arrow_strings",
    "blank_or_null",
    "columns_by_name",
    "normalize_series",
    "parse_column",
    "parse_number_strings",
    "parse_numbers",
    "to_numpy_bool",
]


@dataclass(frozen=True, slots=True)
class Parsed:
    """One column read as the contract's type: which rows are null, which hold the wrong type."""

    null: np.ndarray
    invalid: np.ndarray
    numbers: np.ndarray | None = None
    texts: pd.Series | None = None


def parse_column(column_type: str, series: pd.Series, kind: str) -> Parsed:
    """``series`` (of ``kind``, from :func:`normalize_series`) read as ``column_type``."""
    if column_type in NUMERIC_TYPES:
        return parse_numbers(series, kind, integer=column_type == "int")
    if column_type == "bool":
        return _parse_bools(series, kind)
    if column_type == "datetime":
        return _parse_datetimes(series, kind)
    null = series.isna().to_numpy(dtype=bool)
    if kind == "string":
        return Parsed(null, np.zeros_like(null), texts=series)
    return Parsed(null, ~null)


def parse_numbers(series: pd.Series, kind: str, *, integer: bool) -> Parsed:
    """A column of ``kind`` read as numbers (integers only when ``integer``), as float64 or
    int64 in ``numbers``; blank strings count as null."""
    if kind == "string":
        return parse_number_strings(arrow_strings(series), integer=integer)
    null = series.isna().to_numpy(dtype=bool)
    if kind == "int":
        signed = pd.api.types.is_signed_integer_dtype(series.dtype)
        numbers = series.to_numpy(dtype="int64" if signed else "float64", na_value=0)
        return Parsed(null, np.zeros_like(null), numbers)
    if kind == "float":
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        null = null | np.isnan(numbers)
        if not integer:
            return Parsed(null, np.zeros_like(null), numbers)
        whole = np.isfinite(numbers) & (numbers == np.trunc(numbers))
        return Parsed(null, ~null & ~whole, numbers)
    return Parsed(null, ~null)


def parse_number_strings(text: pa.Array, *, integer: bool) -> Parsed:
    """Strings read as numbers with the syntax of the record path (surrounding spaces and
    tabs allowed); rows that do not parse are ``invalid`` and hold 0."""
    null = blank_or_null(text)
    trimmed = pc.utf8_trim(text, characters=TRIM)
    syntax = INT_SYNTAX if integer else FLOAT_SYNTAX
    valid = pc.fill_null(pc.match_substring_regex(trimmed, f"^(?:{syntax})$"), False)
    # Rows that do not parse get a placeholder so one cast converts the whole column; Arrow's int
    # cast refuses a leading '+', which Python's int() accepts.
    unsigned = pc.replace_substring_regex(trimmed, pattern=r"^\+", replacement="")
    safe = pc.if_else(valid, unsigned, pa.scalar("0", type=trimmed.type))
    numbers = pc.cast(safe, pa.int64() if integer else pa.float64()).to_numpy(zero_copy_only=False)
    return Parsed(null, ~null & ~to_numpy_bool(valid), numbers)


def _parse_bools(series: pd.Series, kind: str) -> Parsed:
    if kind == "string":
        text = arrow_strings(series)
        words = pc.utf8_lower(pc.utf8_trim(text, characters=TRIM))
        known = pc.is_in(words, value_set=pa.array(list(BOOL_WORDS), type=words.type))
        null = blank_or_null(text)
        return Parsed(null, ~null & ~to_numpy_bool(pc.fill_null(known, False)))
    null = series.isna().to_numpy(dtype=bool)
    if kind == "bool":
        return Parsed(null, np.zeros_like(null))
    if kind in NUMERIC_TYPES:
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        null = null | np.isnan(numbers)
        return Parsed(null, ~null & (numbers != 0) & (numbers != 1))
    return Parsed(null, ~null)


def _parse_datetimes(series: pd.Series, kind: str) -> Parsed:
    if kind == "string":
        text = arrow_strings(series)
        null = blank_or_null(text)
        shaped = pc.fill_null(pc.match_substring_regex(text, f"^(?:{DATETIME_SYNTAX})$"), False)
        candidates = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
        candidates[~to_numpy_bool(shaped)] = None
        # The shape check comes first so that only ISO 8601 strings reach the parser, which alone
        # would accept more forms than the record path's datetime.fromisoformat.
        stamps = pd.to_datetime(candidates, format="ISO8601", errors="coerce", utc=True)
        return Parsed(null, ~null & stamps.isna().to_numpy(dtype=bool))
    null = series.isna().to_numpy(dtype=bool)
    if kind == "datetime":
        return Parsed(null, np.zeros_like(null))
    return Parsed(null, ~null)


def blank_or_null(text: pa.Array) -> np.ndarray:
    """Which strings are null or blank (only spaces, tabs or newlines)."""
    blank = pc.match_substring_regex(text, f"^{BLANK_SYNTAX}$")
    return to_numpy_bool(pc.fill_null(blank, True))


def to_numpy_bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow boolean array (without nulls) as a numpy bool array."""
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def arrow_strings(series: pd.Series) -> pa.Array:
    """A pandas column of strings as one Arrow string array (an all-null one included)."""
    array = pa.array(series, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_null(array.type):
        array = array.cast(pa.string())
    return array


def columns_by_name(table: pd.DataFrame, label: str) -> dict[str, pd.Series]:
    """Each column of ``table`` by its name as text; repeated names are refused."""
    duplicated = table.columns[table.columns.duplicated()]
    if len(duplicated):
        raise InvalidInputError(
            f"{label}: the data has more than one column named '{duplicated[0]}'; rename them"
        )
    return {str(name): table.iloc[:, position] for position, name in enumerate(table.columns)}


def normalize_series(series: pd.Series) -> tuple[pd.Series, str]:
    """The series in a dtype the vectorized parsers read, and which kind of data it holds."""
    if isinstance(series.dtype, pd.CategoricalDtype):
        categories = series.cat.categories.dtype
        series = series.astype(categories if _data_kind(categories) == "string" else object)
    kind = _data_kind(series.dtype)
    if kind != "object":
        return series, kind
    inferred = pd.api.types.infer_dtype(series, skipna=True)
    if inferred in ("string", "empty"):
        return series, "string"
    target = {"boolean": "boolean", "integer": "Int64", "floating": "float64"}.get(inferred)
    if target is not None:
        try:
            narrowed = series.astype(target)
        except (TypeError, ValueError, OverflowError):
            return series, "mixed"
        return narrowed, _data_kind(narrowed.dtype)
    return series, "mixed"


def _data_kind(dtype: Any) -> str:
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_integer_dtype(dtype):
        return "int"
    if pd.api.types.is_float_dtype(dtype):
        return "float"
    if pd.api.types.is_datetime64_any_dtype(dtype):
        return "datetime"
    if pd.api.types.is_object_dtype(dtype):
        return "object"
    return "string" if pd.api.types.is_string_dtype(dtype) else "mixed"
