"""The record path: a contract's per-column checks, compiled once, run on every request.

:class:`CompiledContract` turns each column rule into a closure that answers which rules one value
breaks; :func:`check_record` runs them over one record, which is what serving does on the hot path.
The rules read values as :mod:`steward.data.contracts.syntax` defines, as the batch path does.

This module reads a contract only through :class:`ContractSpec` and :class:`RuleSpec` (which
``Contract`` and ``ColumnRule`` satisfy), so that ``Contract.compiled()`` can build its checks here.

Example::

    >>> from steward.data.contracts import Contract
    >>> contract = Contract.from_dict({"columns": {"age": {"type": "int", "min": 0}}})
    >>> [violation.rule for violation in check_record(contract, {"age": "-3"})]
    ['min']
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from steward.data.contracts.syntax import (
    BLANK_RE,
    BOOL_WORDS,
    DATETIME_RE,
    FLOAT_RE,
    INT_RE,
    TEXT_TYPES,
    TRIM,
    Action,
)
from steward.data.contracts.violations import Violation, plain_value
from steward.errors import InvalidInputError

__all__ = ["ColumnCheck", "CompiledContract", "ContractSpec", "RuleSpec", "check_record"]


class RuleSpec(Protocol):
    """What the record path reads of one column rule; :class:`ColumnRule` has these fields."""

    @property
    def type(self) -> str: ...

    @property
    def nullable(self) -> bool: ...

    @property
    def required(self) -> bool: ...

    @property
    def min(self) -> float | None: ...

    @property
    def max(self) -> float | None: ...

    @property
    def categories(self) -> list[str] | None: ...

    @property
    def pattern(self) -> str | None: ...


class ContractSpec(Protocol):
    """What compiling a contract reads of it; :class:`Contract` is the one implementation."""

    @property
    def label(self) -> str: ...

    @property
    def columns(self) -> Mapping[str, RuleSpec]: ...

    @property
    def extra_columns(self) -> str: ...

    def action_for(self, column: str) -> Action: ...

    def compiled(self) -> CompiledContract: ...


_OK: tuple[str, ...] = ()
_MISSING = object()
_NULL = object()  # a parser's answer for a value that counts as null
_INVALID = object()  # a parser's answer for a value of the wrong type


def _is_null(value: Any) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    if isinstance(value, (float, np.floating)):  # a tuple is faster than a union here
        return bool(value != value)
    return isinstance(value, np.datetime64) and bool(np.isnat(value))


def _parse_int(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return _INVALID
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, str):
        text = value.strip(TRIM)
        if INT_RE.fullmatch(text):
            return int(text)
        return _NULL if BLANK_RE.fullmatch(value) else _INVALID
    if isinstance(value, (float, np.floating)):
        number = float(value)
        return number if math.isfinite(number) and number == math.trunc(number) else _INVALID
    return _INVALID


def _parse_float(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return _INVALID
    if isinstance(value, (int, float, np.integer, np.floating)):
        return value
    if isinstance(value, str):
        text = value.strip(TRIM)
        if FLOAT_RE.fullmatch(text):
            return float(text)
        return _NULL if BLANK_RE.fullmatch(value) else _INVALID
    return _INVALID


def _parse_bool(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value) if value in (0, 1) else _INVALID
    if isinstance(value, str):
        word = BOOL_WORDS.get(value.strip(TRIM).lower())
        if word is not None:
            return word
        return _NULL if BLANK_RE.fullmatch(value) else _INVALID
    return _INVALID


def _parse_datetime(value: Any) -> Any:
    if isinstance(value, (dt.date, np.datetime64)):
        return value
    if isinstance(value, str):
        if DATETIME_RE.fullmatch(value):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                return _INVALID
        return _NULL if BLANK_RE.fullmatch(value) else _INVALID
    return _INVALID


_READY_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "bool": (bool,),
    "datetime": (dt.datetime, dt.date, pd.Timestamp),
}
_PARSERS: dict[str, Callable[[Any], Any]] = {
    "int": _parse_int,
    "float": _parse_float,
    "bool": _parse_bool,
    "datetime": _parse_datetime,
}


def _make_value_check(rule: RuleSpec) -> Callable[[Any], tuple[str, ...]]:
    """A closure answering which rules one present value breaks; () when it breaks none."""
    null_hit = _OK if rule.nullable else ("null",)
    if rule.type in TEXT_TYPES:
        return _make_text_check(rule, null_hit)
    parse = _PARSERS[rule.type]
    low, high = rule.min, rule.max
    # Values of these exact types need no parsing: the common case on the hot path, kept short.
    ready = _READY_TYPES[rule.type]

    def check(value: Any) -> tuple[str, ...]:
        if type(value) in ready and value == value:  # NaN != NaN, so NaN takes the long way
            parsed = value
        else:
            if type(value) is not str and _is_null(value):
                return null_hit
            parsed = parse(value)
            if parsed is _NULL:
                return null_hit
            if parsed is _INVALID:
                return ("type",)
        if low is not None and parsed < low:
            return ("min",)
        if high is not None and parsed > high:
            return ("max",)
        return _OK

    return check


def _make_text_check(rule: RuleSpec, null_hit: tuple[str, ...]) -> Callable[[Any], tuple[str, ...]]:
    allowed = frozenset(rule.categories) if rule.categories is not None else None
    regex = re.compile(rule.pattern) if rule.pattern is not None else None
    plain = allowed is None and regex is None

    def check(value: Any) -> tuple[str, ...]:
        if type(value) is not str and not isinstance(value, str):
            return null_hit if _is_null(value) else ("type",)
        if plain:
            return _OK
        hits: tuple[str, ...] = _OK
        if allowed is not None and value not in allowed:
            hits = ("category",)
        if regex is not None and regex.search(value) is None:
            hits = (*hits, "pattern")
        return hits

    return check


def _expected_texts(rule: RuleSpec) -> dict[str, str]:
    categories = rule.categories or []
    shown = ", ".join(repr(category) for category in categories[:10])
    if len(categories) > 10:
        shown += f", ... ({len(categories)} in all)"
    return {
        "missing_column": "the column to be present",
        "null": "a non-null value",
        "type": rule.type,
        "min": f"{rule.type} >= {rule.min}",
        "max": f"{rule.type} <= {rule.max}",
        "category": f"one of [{shown}]",
        "pattern": f"a match for {rule.pattern!r}",
    }


@dataclass(frozen=True, slots=True)
class ColumnCheck:
    """One column's compiled check: its rule, action, value check and the expected texts."""

    name: str
    rule: RuleSpec
    action: Action
    check_value: Callable[[Any], tuple[str, ...]]
    expected: Mapping[str, str]


class CompiledContract:
    """A contract's per-column checks, built once; what :func:`check_record` runs on the hot path.

    Example::

        >>> compiled = contract.compiled()  # doctest: +SKIP
        >>> compiled.check_record({"tenure": 3})  # doctest: +SKIP
        []
    """

    def __init__(self, contract: ContractSpec) -> None:
        self.contract = contract
        self.label = contract.label
        self.columns = tuple(
            ColumnCheck(
                name=name,
                rule=rule,
                action=contract.action_for(name),
                check_value=_make_value_check(rule),
                expected=_expected_texts(rule),
            )
            for name, rule in contract.columns.items()
        )
        self.names = frozenset(contract.columns)
        self.extra_columns = contract.extra_columns
        # Plain tuples unpack faster than attribute lookups in the per-record loop.
        self._plan = tuple(
            (column.name, column.check_value, column.rule.required, column)
            for column in self.columns
        )

    def check_record(self, record: Mapping[str, Any]) -> list[Violation]:
        """Every rule one record breaks, in contract column order; [] when it breaks none."""
        if type(record) is not dict and not isinstance(record, Mapping):
            raise InvalidInputError(
                f"{self.label}: a record must be a mapping of column to value, "
                f"got {type(record).__name__}"
            )
        violations: list[Violation] = []
        get = record.get
        for name, check_value, required, column in self._plan:
            value = get(name, _MISSING)
            if value is _MISSING:
                if required:
                    violations.append(self._violation(column, "missing_column", None))
                continue
            for rule in check_value(value):
                violations.append(self._violation(column, rule, value))
        if self.extra_columns != "allow":
            violations.extend(self._extra_violations(record))
        return violations

    def _violation(self, column: ColumnCheck, rule: str, value: Any) -> Violation:
        return Violation(
            column.name,
            rule,
            column.action,
            1,
            None,
            plain_value(value),
            column.expected[rule],
            self.label,
        )

    def _extra_violations(self, record: Mapping[str, Any]) -> list[Violation]:
        action: Action = "reject" if self.extra_columns == "reject" else "flag"
        expected = f"extra_columns is '{self.extra_columns}'"
        return [
            Violation(str(key), "extra_column", action, 1, None, None, expected, self.label)
            for key in record
            if key not in self.names
        ]


def check_record(contract: ContractSpec, record: Mapping[str, Any]) -> list[Violation]:
    """Check one request's record against ``contract``; returns every violation, [] when clean.

    Example::

        >>> from steward.data.contracts import Contract
        >>> contract = Contract.from_dict({"columns": {"tenure": {"type": "int", "min": 0}}})
        >>> check_record(contract, {"tenure": "abc"})[0].rule
        'type'
    """
    return contract.compiled().check_record(record)
