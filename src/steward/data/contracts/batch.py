"""The batch path: checking every row of a frame, one vectorized mask per rule and column.

:func:`check_batch` reads each column with :mod:`steward.data.contracts.parse`, compares it with the
column's rule in whole-column passes and reports every violation with its count, first row and an
example, plus masks of the rows to reject or flag. Columns of mixed Python objects run the record
path's checks value by value, so both paths agree.

Example::

    >>> import pandas as pd
    >>> contract = Contract.from_dict({"columns": {"age": {"type": "int"}}})
    >>> check_batch(contract, pd.DataFrame({"age": ["1", "x"]})).rejected_mask.tolist()
    [False, True]
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from steward._util.frames import to_pandas_frame
from steward.data.contracts.model import Contract
from steward.data.contracts.parse import columns_by_name, normalize_series, parse_column
from steward.data.contracts.record import ColumnCheck
from steward.data.contracts.syntax import NUMERIC_TYPES, RULE_ORDER, TEXT_TYPES, Action
from steward.data.contracts.violations import ContractReport, Violation, plain_value

__all__ = ["check_batch"]


def check_batch(contract: Contract, frame: Any) -> ContractReport:
    """Check every row of ``frame`` (pandas, pyarrow or polars) and report every violation.

    Example::

        >>> contract = Contract.from_dict({"columns": {"tenure": {"type": "int", "min": 0}}})
        >>> report = check_batch(contract, pd.DataFrame({"tenure": [3, -4, -1]}))
        >>> report.violations[0].message
        "contract v1: column 'tenure' expects int >= 0, got -4 in 2 rows (first at row 1)"
        >>> report.rejected_mask.tolist()
        [False, True, True]
    """
    compiled = contract.compiled()
    columns = _Columns(frame, compiled.label)
    collector = _Collector(compiled.label, columns.n_rows)
    by_name = columns.by_name
    for column in compiled.columns:
        values = by_name.get(column.name)
        if values is None:
            if column.rule.required:
                collector.add_whole_column(
                    column.name, "missing_column", column.action, column.expected
                )
            continue
        masks = _arrow_masks(column, values) if isinstance(values, pa.Array) else None
        if masks is None:
            values = columns.series(column.name)
            masks = _column_masks(column, values)
        for rule in RULE_ORDER:
            if rule in masks:
                collector.add(column, rule, masks[rule], values)
    extra = tuple(name for name in by_name if name not in compiled.names)
    if extra and contract.extra_columns != "allow":
        action: Action = "reject" if contract.extra_columns == "reject" else "flag"
        expected = {"extra_column": f"extra_columns is '{contract.extra_columns}'"}
        for name in extra:
            collector.add_whole_column(name, "extra_column", action, expected)
    return collector.report(extra)


class _Collector:
    """Accumulates violations and the row masks of the actions they carry."""

    def __init__(self, label: str, n_rows: int) -> None:
        self.label = label
        self.n_rows = n_rows
        self.violations: list[Violation] = []
        self.masks: dict[Action, np.ndarray] = {
            "reject": np.zeros(n_rows, dtype=bool),
            "flag": np.zeros(n_rows, dtype=bool),
        }

    def add(
        self, column: ColumnCheck, rule: str, mask: np.ndarray, values: pd.Series | pa.Array
    ) -> None:
        count = int(mask.sum())
        if count == 0:
            return
        first = int(mask.argmax())
        value = values.iloc[first] if isinstance(values, pd.Series) else values[first].as_py()
        example = plain_value(value)
        expected = column.expected[rule]
        self.violations.append(
            Violation(
                column.name, rule, column.action, count, first, example, expected, self.label, mask
            )
        )
        self.masks[column.action] |= mask

    def add_whole_column(
        self, name: str, rule: str, action: Action, expected: Mapping[str, str]
    ) -> None:
        # A schema problem hits every row, and is reported even for an empty batch.
        first = 0 if self.n_rows else None
        mask = np.ones(self.n_rows, dtype=bool)
        self.violations.append(
            Violation(
                name, rule, action, self.n_rows, first, None, expected[rule], self.label, mask
            )
        )
        self.masks[action] |= mask

    def report(self, extra_columns: tuple[str, ...]) -> ContractReport:
        return ContractReport(
            contract=self.label,
            n_rows=self.n_rows,
            violations=tuple(self.violations),
            rejected_mask=self.masks["reject"],
            flagged_mask=self.masks["flag"],
            extra_columns=extra_columns,
        )


class _Columns:
    """A frame's columns by name: an Arrow table's as Arrow arrays, for :func:`_arrow_masks`,
    each also as the pandas series any other frame's columns are (converted once, on demand)."""

    def __init__(self, frame: Any, label: str) -> None:
        self.label = label
        self._frame = frame
        self._pandas: dict[str, pd.Series] | None = None
        self.by_name: Mapping[str, pd.Series | pa.Array]
        if _arrow_readable(frame):
            self.n_rows = frame.num_rows
            self.by_name = {
                name: column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
                for name, column in zip(frame.column_names, frame.columns, strict=True)
            }
        else:
            table = to_pandas_frame(frame)
            self._pandas = columns_by_name(table, label)
            self.by_name, self.n_rows = self._pandas, len(table)

    def series(self, name: str) -> pd.Series:
        return self._series()[name]

    def _series(self) -> dict[str, pd.Series]:
        if self._pandas is None:
            self._pandas = columns_by_name(to_pandas_frame(self._frame), self.label)
        return self._pandas


def _arrow_readable(frame: Any) -> bool:
    """An Arrow table whose columns pandas would read one for one (no names twice, no index
    columns that pandas metadata would turn into the index)."""
    if not isinstance(frame, pa.Table) or len(set(frame.column_names)) != frame.num_columns:
        return False
    metadata = frame.schema.pandas_metadata or {}
    return not any(isinstance(item, str) for item in metadata.get("index_columns", []))


def _arrow_masks(column: ColumnCheck, values: pa.Array) -> dict[str, np.ndarray] | None:
    """The masks :func:`_column_masks` gives for an Arrow column, computed on Arrow (text,
    signed integers, floats and booleans); None for a column that goes through pandas.

    Rows and rules are the same as the pandas reading of the column: there, Arrow integers
    become nullable ints, floats keep NaN as null and text stays text (compared by ``isin``).
    """
    rule, kind = column.rule, values.type
    null = values.is_null(nan_is_null=True).to_numpy(zero_copy_only=False)
    invalid = np.zeros(len(values), dtype=bool)
    numbers: np.ndarray | None = None
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        if rule.type not in TEXT_TYPES or rule.pattern is not None:
            return None
    elif pa.types.is_boolean(kind) or pa.types.is_null(kind):
        if rule.type != "bool":
            return None
    elif pa.types.is_signed_integer(kind) and rule.type in NUMERIC_TYPES:
        numbers = values.cast(pa.int64()).fill_null(0).to_numpy()
    elif pa.types.is_floating(kind) and rule.type in NUMERIC_TYPES:
        numbers = values.cast(pa.float64()).to_numpy(zero_copy_only=False)
        if rule.type == "int":
            whole = np.isfinite(numbers) & (numbers == np.trunc(numbers))
            invalid = ~null & ~whole
    else:
        return None
    masks = {"type": invalid}
    if not rule.nullable:
        masks["null"] = null
    valid = ~(null | invalid)
    if numbers is not None:
        if rule.min is not None:
            masks["min"] = valid & (numbers < rule.min)
        if rule.max is not None:
            masks["max"] = valid & (numbers > rule.max)
    if rule.categories is not None and numbers is None and rule.type in TEXT_TYPES:
        texts = [item for item in rule.categories if isinstance(item, str)]
        known = pc.is_in(values, value_set=pa.array(texts, kind)).fill_null(False)
        masks["category"] = valid & ~known.to_numpy(zero_copy_only=False)
    return masks


def _column_masks(column: ColumnCheck, series: pd.Series) -> dict[str, np.ndarray]:
    series, kind = normalize_series(series)
    if kind == "mixed":
        return _elementwise_masks(column.check_value, series)
    rule = column.rule
    parsed = parse_column(rule.type, series, kind)
    masks = {"type": parsed.invalid}
    if not rule.nullable:
        masks["null"] = parsed.null
    valid = ~(parsed.null | parsed.invalid)
    if parsed.numbers is not None:
        if rule.min is not None:
            masks["min"] = valid & (parsed.numbers < rule.min)
        if rule.max is not None:
            masks["max"] = valid & (parsed.numbers > rule.max)
    if parsed.texts is not None:
        if rule.categories is not None:
            known = parsed.texts.isin(rule.categories).to_numpy(dtype=bool)
            masks["category"] = valid & ~known
        if rule.pattern is not None:
            matched = _search_each_distinct(re.compile(rule.pattern), parsed.texts)
            masks["pattern"] = valid & ~matched
    return masks


def _elementwise_masks(
    check_value: Callable[[Any], tuple[str, ...]], series: pd.Series
) -> dict[str, np.ndarray]:
    # Mixed Python objects have no vectorized reading; running the record rules on each value keeps
    # the two paths in agreement. Typed columns (CSV, Parquet, Arrow) never come here.
    hits = [check_value(value) for value in series.tolist()]
    return {
        rule: np.fromiter((rule in hit for hit in hits), dtype=bool, count=len(hits))
        for rule in RULE_ORDER
    }


def _search_each_distinct(regex: re.Pattern[str], texts: pd.Series) -> np.ndarray:
    # Python's re (the record path's engine) runs once per distinct value, not per row; Arrow's RE2
    # would be faster but differs from re on details such as '$' before a trailing newline.
    codes, uniques = pd.factorize(texts)
    found = np.fromiter(
        (regex.search(text) is not None for text in uniques), dtype=bool, count=len(uniques)
    )
    matched = np.zeros(len(codes), dtype=bool)
    present = codes >= 0
    matched[present] = found[codes[present]]
    return matched
