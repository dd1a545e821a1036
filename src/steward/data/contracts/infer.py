"""Drafting a contract from training data, and reading the CSV or Parquet files it comes in.

:func:`infer_contract` types each column (strings that all parse as numbers become numbers), sets
ranges to the observed minimum and maximum and lists the categories of low-cardinality text, for a
person to review; :func:`read_table` reads a CSV or Parquet file with a clear error when it cannot.

Example::

    >>> import pandas as pd
    >>> infer_contract(pd.DataFrame({"plan": ["a", "b", None]})).to_dict()["columns"]["plan"]
    {'type': 'category', 'categories': ['a', 'b']}
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from steward._util.frames import to_pandas_frame
from steward.data.contracts.model import ColumnRule, Contract
from steward.data.contracts.parse import (
    Parsed,
    arrow_strings,
    blank_or_null,
    columns_by_name,
    normalize_series,
    parse_number_strings,
    parse_numbers,
    to_numpy_bool,
)
from steward.data.contracts.syntax import (
    FLOAT_SYNTAX,
    INT_SYNTAX,
    NUMERIC_TYPES,
    TRIM,
    Action,
    ColumnType,
)
from steward.errors import InvalidInputError

__all__ = ["infer_contract", "read_table"]


def read_table(path: str | Path) -> pd.DataFrame:
    """Read a CSV or Parquet file into a pandas frame, with a clear error when it cannot.

    Example::

        >>> frame = read_table("data/train.csv")  # doctest: +SKIP
    """
    file = Path(path)
    formats = {".csv": "CSV", ".parquet": "Parquet", ".pq": "Parquet"}
    if not file.exists():
        raise InvalidInputError(f"data file '{file}' does not exist; check the path")
    kind = formats.get(file.suffix.lower())
    if kind is None:
        raise InvalidInputError(
            f"data file '{file}' has unknown suffix '{file.suffix}'; use .csv, .parquet or .pq"
        )
    try:
        if kind == "CSV":
            return pd.read_csv(file, low_memory=False)
        return pd.read_parquet(file)
    # pandas' parser errors and UnicodeDecodeError are ValueErrors; Arrow's are ArrowExceptions.
    except (pa.ArrowException, OSError, ValueError) as error:
        raise InvalidInputError(
            f"could not read '{file}' as {kind}: {error}; check that it is a valid {kind} file"
        ) from None


def infer_contract(
    frame: Any,
    *,
    max_categories: int = 50,
    name: str | None = None,
    on_violation: Action = "reject",
    exclude: Sequence[str] = (),
) -> Contract:
    """Draft a contract from a training frame (pandas, pyarrow or polars) for a person to review.

    ``exclude`` names columns that are not model inputs, such as the target and the entity key: a
    contract that required them would refuse every prediction request, which carries neither.

    Ranges are the observed min and max, so values just outside the training range break them; widen
    them where that is expected. Strings that all parse as numbers (blanks aside) become numbers.

    Example::

        >>> frame = pd.DataFrame({"tenure": [1, 34, 2], "Contract": ["One year", "Two year", None]})
        >>> infer_contract(frame, name="churn").to_dict()["columns"]["tenure"]
        {'type': 'int', 'nullable': False, 'min': 1, 'max': 34}
    """
    if max_categories < 0:
        raise InvalidInputError(f"max_categories must be >= 0, got {max_categories}")
    table = to_pandas_frame(frame)
    found = columns_by_name(table, "infer_contract")
    unknown = [column for column in exclude if column not in found]
    if unknown:
        raise InvalidInputError(
            f"column(s) {unknown} to leave out are not in the data (it has {list(found)[:20]}); "
            "check the names"
        )
    columns = {
        column: _infer_column(column, series, max_categories)
        for column, series in found.items()
        if column not in exclude
    }
    return Contract(name=name, on_violation=on_violation, columns=columns)


def _infer_column(column: str, series: pd.Series, max_categories: int) -> ColumnRule:
    series, kind = normalize_series(series)
    if kind == "string":
        return _infer_text(series, max_categories)
    nullable = bool(series.isna().any())
    if kind in ("bool", "datetime"):
        return ColumnRule(type="bool" if kind == "bool" else "datetime", nullable=nullable)
    if kind in NUMERIC_TYPES:
        parsed = parse_numbers(series, kind, integer=kind == "int")
        return _numeric_rule("int" if kind == "int" else "float", parsed, nullable)
    seen = sorted({type(value).__name__ for value in series.dropna().head(1000)})
    raise InvalidInputError(
        f"cannot infer a type for column '{column}': it mixes {', '.join(seen)}; "
        f"convert it to one type (e.g. with DataFrame.astype) and infer again"
    )


def _numeric_rule(column_type: ColumnType, parsed: Parsed, nullable: bool) -> ColumnRule:
    assert parsed.numbers is not None, "numeric parsers always return numbers"
    values = parsed.numbers[~(parsed.null | parsed.invalid)]
    if column_type == "float":
        values = values[np.isfinite(values)]
    if not len(values):
        return ColumnRule(type=column_type, nullable=nullable)
    low, high = values.min().item(), values.max().item()
    if column_type == "int":
        low, high = int(low), int(high)
    return ColumnRule(type=column_type, nullable=nullable, min=low, max=high)


def _infer_text(series: pd.Series, max_categories: int) -> ColumnRule:
    text = arrow_strings(series)
    blank = blank_or_null(text)
    if not blank.all():
        trimmed = pc.utf8_trim(text, characters=TRIM)
        for integer, syntax in ((True, INT_SYNTAX), (False, FLOAT_SYNTAX)):
            shaped = pc.match_substring_regex(trimmed, f"^(?:{syntax})$")
            if to_numpy_bool(pc.fill_null(shaped, False))[~blank].all():
                parsed = parse_number_strings(text, integer=integer)
                column_type: ColumnType = "int" if integer else "float"
                return _numeric_rule(column_type, parsed, nullable=bool(blank.any()))
    nullable = bool(series.isna().any())
    distinct = series.dropna().unique()
    if len(distinct) <= max_categories:
        categories = sorted(str(value) for value in distinct)
        return ColumnRule(type="category", nullable=nullable, categories=categories or None)
    return ColumnRule(type="string", nullable=nullable)
