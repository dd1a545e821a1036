"""Data contracts: the versioned schema of a system's inputs, checked at the door.

A :class:`Contract` names each input column with its type, nullability, range, allowed categories
and pattern, and says what to do when a value breaks a rule: ``reject`` the record or ``flag`` it
and go on. It is plain data that round-trips to the YAML form users write under ``contract:`` in
``steward.yaml``.

Three ways to use one:

- :func:`check_batch` checks a whole frame in vectorized passes and reports every violation with its
  count, first row and an example, plus row masks so a caller can reject only the bad rows.
- :func:`check_record` checks one request on the hot path with per-column checks compiled once.
- :func:`diff_contracts` says whether a new version breaks data that the old one accepted.

Both check paths share one definition of each value rule, so a record and the same row in a batch
get the same verdict. Value rules, in the order they apply to a present value:

- ``null``: ``None``, NaN, ``pd.NA`` and ``NaT`` are null; for int, float, bool and datetime columns
  a blank string (only spaces, tabs or newlines) is null too, as CSV exports write missing numbers
  that way.
- ``type``: int accepts integers, integral floats and integer strings (up to 18 digits); float
  accepts numbers and decimal strings; bool accepts booleans, 0/1 and the strings true/false/0/1 in
  any case; string and category accept strings only; datetime accepts datetimes, dates and ISO 8601
  strings. Numeric and bool strings may carry surrounding spaces or tabs. Booleans are not numbers.
- ``min``/``max`` on int and float columns; ``category`` and ``pattern`` (Python ``re.search``) on
  string and category columns.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from steward.errors import ConfigError, ContractViolationError, InvalidInputError

__all__ = [
    "Action",
    "ColumnRule",
    "ColumnType",
    "CompiledContract",
    "Contract",
    "ContractChange",
    "ContractDiff",
    "ContractReport",
    "Violation",
    "check_batch",
    "check_record",
    "diff_contracts",
    "infer_contract",
    "raise_for_rejected",
    "read_contract",
    "read_table",
]

ColumnType = Literal["int", "float", "bool", "string", "category", "datetime"]
Action = Literal["reject", "flag"]
ExtraColumns = Literal["allow", "flag", "reject"]

# Value syntax shared by the record path (Python re) and the batch path (Arrow's RE2). Each pattern
# is ASCII-only and anchored explicitly, where the two engines agree exactly.
_INT_SYNTAX = r"[+-]?[0-9]{1,18}"  # 18 digits always fit in int64, so both paths parse it the same
_FLOAT_SYNTAX = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_BLANK_SYNTAX = r"[ \t\r\n]*"
_DATETIME_SYNTAX = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_INT_RE = re.compile(_INT_SYNTAX)
_FLOAT_RE = re.compile(_FLOAT_SYNTAX)
_BLANK_RE = re.compile(_BLANK_SYNTAX)
_DATETIME_RE = re.compile(_DATETIME_SYNTAX)
_BOOL_WORDS = {"true": True, "1": True, "false": False, "0": False}
_TRIM = " \t"

_RULE_ORDER = ("null", "type", "min", "max", "category", "pattern")
_NUMERIC_TYPES = ("int", "float")
_TEXT_TYPES = ("string", "category")


# --------------------------------------------------------------------------------------------------
# The model: plain data with a YAML form


class ColumnRule(BaseModel):
    """What one column must hold.

    Built on its own, a bad rule raises pydantic's ``ValidationError``; inside a :class:`Contract`
    the contract reports it as a :class:`ConfigError` naming the column.

    Example::

        >>> ColumnRule(type="int", min=0, nullable=False).min
        0
    """

    type: ColumnType
    nullable: bool = True
    required: bool = True
    min: int | float | None = None
    max: int | float | None = None
    categories: list[str] | None = None
    pattern: str | None = None
    on_violation: Action | None = None

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _check_consistency(self) -> ColumnRule:
        problems = _column_rule_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _column_rule_problems(rule: ColumnRule) -> list[str]:
    problems = []
    if (rule.min is not None or rule.max is not None) and rule.type not in _NUMERIC_TYPES:
        problems.append(f"min/max apply to int and float columns, not {rule.type!r}; remove them")
    if rule.min is not None and rule.max is not None and rule.min > rule.max:
        problems.append(f"min {rule.min} is greater than max {rule.max}; swap them")
    for bound in (rule.min, rule.max):
        if isinstance(bound, float) and math.isnan(bound):
            problems.append("min/max must be numbers, got NaN")
    if rule.categories is not None and rule.type != "category":
        problems.append(
            f"categories apply to category columns, not {rule.type!r}; set type: category"
        )
    if rule.categories is not None and not rule.categories:
        problems.append("categories is empty; list the allowed values or remove the key")
    if rule.pattern is not None and rule.type not in _TEXT_TYPES:
        problems.append(f"pattern applies to string and category columns, not {rule.type!r}")
    if rule.pattern is not None:
        try:
            re.compile(rule.pattern)
        except re.error as error:
            problems.append(f"pattern {rule.pattern!r} is not a valid regular expression: {error}")
    return problems


class Contract(BaseModel):
    """The versioned input schema of one system, and what to do when data breaks it.

    Treat a contract as immutable: build a changed one with :meth:`from_dict` (``model_copy`` skips
    validation), and bump ``version`` so that reports and :func:`diff_contracts` can tell them apart.

    Example::

        >>> contract = Contract.from_dict({
        ...     "on_violation": "reject",
        ...     "columns": {"tenure": {"type": "int", "min": 0, "nullable": False}},
        ... }, name="churn")
        >>> [v.rule for v in check_record(contract, {"tenure": -4})]
        ['min']
    """

    name: str | None = None
    version: int = Field(default=1, ge=1)
    on_violation: Action = "reject"
    extra_columns: ExtraColumns = "allow"
    columns: dict[str, ColumnRule]

    model_config = ConfigDict(extra="forbid", frozen=True)
    _compiled: CompiledContract | None = PrivateAttr(default=None)

    def __init__(self, **data: Any) -> None:
        # Pydantic routes nested validation here too, so every way in reports errors the same way.
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(_describe_validation_error(data, error)) from None

    @property
    def label(self) -> str:
        """How messages name this contract: ``contract 'churn' v3``."""
        return _contract_label(self.name, self.version)

    def action_for(self, column: str) -> Action:
        """The action a violation in ``column`` takes: its own override, else the contract's."""
        own = self.columns[column].on_violation
        return own if own is not None else self.on_violation

    def compiled(self) -> CompiledContract:
        """The per-column checks for :func:`check_record`, built once and cached on the contract."""
        # The cache is checked against the contract's identity so a model_copy never reuses it.
        # It is read from pydantic's private-value dict: plain attribute access to a private
        # attribute costs microseconds, which this hot path cannot spare.
        cached = (self.__pydantic_private__ or {}).get("_compiled")
        if cached is None or cached.contract is not self:
            cached = CompiledContract(self)
            self._compiled = cached
        return cached

    def __eq__(self, other: object) -> bool:
        # Private state (the compiled cache) must not make two equal contracts unequal.
        if not isinstance(other, Contract):
            return NotImplemented
        return self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, name: str | None = None) -> Contract:
        """Build a contract from its YAML form; ``name`` fills in when the mapping has none.

        Example::

            >>> Contract.from_dict({"columns": {"age": {"type": "int"}}}, name="churn").label
            "contract 'churn' v1"
        """
        if not isinstance(data, Mapping):
            raise ConfigError(
                f"{_contract_label(name, None)}: expected a mapping with 'columns', "
                f"got {type(data).__name__}"
            )
        fields = dict(data)
        if name is not None and fields.get("name") is None:
            fields["name"] = name
        return cls(**fields)

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: defaults left out, so it reads like what a user would write.

        Example::

            >>> Contract(columns={"age": ColumnRule(type="int")}).to_dict()
            {'version': 1, 'on_violation': 'reject', 'columns': {'age': {'type': 'int'}}}
        """
        data = self.model_dump(mode="json", exclude_defaults=True, exclude={"columns"})
        # The version and the action matter to every reader, so they are written even when default.
        data.update(version=self.version, on_violation=self.on_violation)
        data["columns"] = {
            column: rule.model_dump(mode="json", exclude_defaults=True)
            for column, rule in self.columns.items()
        }
        return data


def read_contract(path: str | Path) -> Contract:
    """Read a contract from a YAML file of its own (bare, or under a top-level ``contract:`` key).

    Example::

        >>> read_contract("contracts/churn.yaml")  # doctest: +SKIP
    """
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError(f"contract file '{file}' does not exist; check the path")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ConfigError(f"contract file '{file}' is not valid YAML: {error}") from None
    if isinstance(data, Mapping) and set(data) == {"contract"}:
        data = data["contract"]
    return Contract.from_dict(data)


def _contract_label(name: str | None, version: int | None) -> str:
    named = f"contract '{name}'" if name else "contract"
    return f"{named} v{version}" if version is not None else named


def _describe_validation_error(data: Mapping[str, Any], error: ValidationError) -> str:
    """One line per problem, naming the column and key, in the words a YAML author uses."""
    name, version = data.get("name"), data.get("version", 1)
    label = _contract_label(name if isinstance(name, str) else None, version)
    # dict.fromkeys drops repeats: a union field (min, max) reports once per member type.
    problems = dict.fromkeys(_describe_one_error(detail) for detail in error.errors())
    return f"{label}: " + "; ".join(problems)


def _describe_one_error(detail: Mapping[str, Any]) -> str:
    location = [str(part) for part in detail["loc"]]
    in_column = location[:1] == ["columns"] and len(location) > 1
    if detail["type"] == "extra_forbidden":
        owner = ColumnRule if in_column else Contract
        allowed = ", ".join(sorted(owner.model_fields))
        place = f" in column '{location[1]}'" if in_column else ""
        return f"unknown key '{location[-1]}'{place}; allowed keys: {allowed}"
    if detail["type"] == "missing":
        place = f" in column '{location[1]}'" if in_column else ""
        return f"missing key '{location[-1]}'{place}"
    message = str(detail["msg"]).removeprefix("Value error, ")
    field = location[2:] if in_column else location
    if field[:1] in (["min"], ["max"]):
        field, message = field[:1], "expects a number"
    parts = [f"column '{location[1]}'"] if in_column else []
    if field:
        parts.append(f"key '{'.'.join(field)}'")
    place = " ".join(parts) or "contract"
    if detail["type"] == "value_error":
        return f"{place}: {message}"
    return f"{place}: {message} (got {detail.get('input')!r})"


# --------------------------------------------------------------------------------------------------
# Violations and reports


@dataclass(frozen=True, slots=True)
class Violation:
    """One broken rule: which column, which rule, how many rows, the first row and an example value.

    ``first_row`` is the 0-based position in the batch, or ``None`` for a single record; ``mask``
    marks every row of the batch that broke the rule (``None`` for a single record).

    Example::

        >>> label = "contract 'churn' v3"
        >>> Violation("tenure", "min", "reject", 12, 7, -4, "int >= 0", label).message
        "contract 'churn' v3: column 'tenure' expects int >= 0, got -4 in 12 rows (first at row 7)"
    """

    column: str
    rule: str
    action: Action
    count: int
    first_row: int | None
    example: Any
    expected: str
    contract: str
    mask: np.ndarray | None = field(default=None, compare=False, repr=False)

    @property
    def message(self) -> str:
        """The user-facing sentence: what broke, with which value, and where."""
        head = f"{self.contract}: column '{self.column}'"
        if self.rule == "missing_column":
            return f"{head} is required but missing; add it, or mark it 'required: false'"
        if self.rule == "extra_column":
            return f"{head} is not in the contract ({self.expected}); drop it or add it to it"
        text = f"{head} expects {self.expected}, got {_show(self.example)}"
        if self.first_row is None:
            return text
        rows = "row" if self.count == 1 else "rows"
        return f"{text} in {self.count} {rows} (first at row {self.first_row})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields plus the message, as logged with a prediction or returned over HTTP."""
        return {
            "column": self.column,
            "rule": self.rule,
            "action": self.action,
            "count": self.count,
            "first_row": self.first_row,
            "example": self.example,
            "expected": self.expected,
            "message": self.message,
        }


def raise_for_rejected(violations: Iterable[Violation]) -> None:
    """Raise :class:`ContractViolationError` if any violation's action is ``reject``.

    Example::

        >>> raise_for_rejected(check_record(contract, record))  # doctest: +SKIP
    """
    rejected = [violation for violation in violations if violation.action == "reject"]
    if rejected:
        more = f" (and {len(rejected) - 1} more)" if len(rejected) > 1 else ""
        raise ContractViolationError(
            rejected[0].message + more, [violation.to_dict() for violation in rejected]
        )


@dataclass(frozen=True, eq=False)  # numpy masks have no single truth value to compare
class ContractReport:
    """Everything :func:`check_batch` found, with masks to keep or drop rows.

    Example::

        >>> report = check_batch(contract, frame)  # doctest: +SKIP
        >>> good_rows = frame[~report.rejected_mask]  # doctest: +SKIP
    """

    contract: str
    n_rows: int
    violations: tuple[Violation, ...]
    rejected_mask: np.ndarray
    flagged_mask: np.ndarray
    extra_columns: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when no rule was broken (extra columns that are allowed do not count)."""
        return not self.violations

    @property
    def n_rejected(self) -> int:
        return int(self.rejected_mask.sum())

    @property
    def n_flagged(self) -> int:
        return int(self.flagged_mask.sum())

    def summary(self) -> str:
        """One line for a log or a CLI."""
        if self.ok:
            text = f"{self.contract}: {self.n_rows} rows, no violations"
        else:
            text = (
                f"{self.contract}: {self.n_rows} rows, {len(self.violations)} violations; "
                f"{self.n_rejected} rows rejected, {self.n_flagged} flagged"
            )
        if self.extra_columns:
            text += f"; columns not in the contract: {', '.join(self.extra_columns)}"
        return text

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary; the masks are left out (use them from the report itself)."""
        return {
            "contract": self.contract,
            "n_rows": self.n_rows,
            "ok": self.ok,
            "n_rejected": self.n_rejected,
            "n_flagged": self.n_flagged,
            "violations": [violation.to_dict() for violation in self.violations],
            "extra_columns": list(self.extra_columns),
        }

    def raise_for_rejected(self) -> None:
        """Raise :class:`ContractViolationError` if any ``reject`` rule was broken."""
        raise_for_rejected(self.violations)


def _show(value: Any) -> str:
    return "null" if value is None else repr(value) if isinstance(value, str) else str(value)


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of an example value."""
    if isinstance(value, np.generic):
        value = value.item()
    if value is None or value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dt.date | dt.datetime):
        return value.isoformat()
    if isinstance(value, str | int | float | bool):
        return value
    return repr(value)


# --------------------------------------------------------------------------------------------------
# The record path: one compiled check per column

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
        text = value.strip(_TRIM)
        if _INT_RE.fullmatch(text):
            return int(text)
        return _NULL if _BLANK_RE.fullmatch(value) else _INVALID
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
        text = value.strip(_TRIM)
        if _FLOAT_RE.fullmatch(text):
            return float(text)
        return _NULL if _BLANK_RE.fullmatch(value) else _INVALID
    return _INVALID


def _parse_bool(value: Any) -> Any:
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        return bool(value) if value in (0, 1) else _INVALID
    if isinstance(value, str):
        word = _BOOL_WORDS.get(value.strip(_TRIM).lower())
        if word is not None:
            return word
        return _NULL if _BLANK_RE.fullmatch(value) else _INVALID
    return _INVALID


def _parse_datetime(value: Any) -> Any:
    if isinstance(value, (dt.date, np.datetime64)):
        return value
    if isinstance(value, str):
        if _DATETIME_RE.fullmatch(value):
            try:
                return dt.datetime.fromisoformat(value)
            except ValueError:
                return _INVALID
        return _NULL if _BLANK_RE.fullmatch(value) else _INVALID
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


def _make_value_check(rule: ColumnRule) -> Callable[[Any], tuple[str, ...]]:
    """A closure answering which rules one present value breaks; () when it breaks none."""
    null_hit = _OK if rule.nullable else ("null",)
    if rule.type in _TEXT_TYPES:
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


def _make_text_check(
    rule: ColumnRule, null_hit: tuple[str, ...]
) -> Callable[[Any], tuple[str, ...]]:
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


def _expected_texts(rule: ColumnRule) -> dict[str, str]:
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
class _ColumnCheck:
    name: str
    rule: ColumnRule
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

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.label = contract.label
        self.columns = tuple(
            _ColumnCheck(
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

    def _violation(self, column: _ColumnCheck, rule: str, value: Any) -> Violation:
        return Violation(
            column.name,
            rule,
            column.action,
            1,
            None,
            _plain(value),
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


def check_record(contract: Contract, record: Mapping[str, Any]) -> list[Violation]:
    """Check one request's record against ``contract``; returns every violation, [] when clean.

    Example::

        >>> contract = Contract.from_dict({"columns": {"tenure": {"type": "int", "min": 0}}})
        >>> check_record(contract, {"tenure": "abc"})[0].rule
        'type'
    """
    return contract.compiled().check_record(record)


# --------------------------------------------------------------------------------------------------
# The batch path: one vectorized mask per rule and column


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One column read as the contract's type: which rows are null, which hold the wrong type."""

    null: np.ndarray
    invalid: np.ndarray
    numbers: np.ndarray | None = None
    texts: pd.Series | None = None


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
    table = _to_pandas(frame)
    compiled = contract.compiled()
    by_name = _columns_by_name(table, compiled.label)
    collector = _Collector(compiled.label, len(table))
    for column in compiled.columns:
        series = by_name.get(column.name)
        if series is None:
            if column.rule.required:
                collector.add_whole_column(
                    column.name, "missing_column", column.action, column.expected
                )
            continue
        masks = _column_masks(column, series)
        for rule in _RULE_ORDER:
            if rule in masks:
                collector.add(column, rule, masks[rule], series)
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

    def add(self, column: _ColumnCheck, rule: str, mask: np.ndarray, series: pd.Series) -> None:
        count = int(mask.sum())
        if count == 0:
            return
        first = int(mask.argmax())
        example = _plain(series.iloc[first])
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


def _column_masks(column: _ColumnCheck, series: pd.Series) -> dict[str, np.ndarray]:
    series, kind = _normalize(series)
    if kind == "mixed":
        return _elementwise_masks(column.check_value, series)
    rule = column.rule
    parsed = _parse_column(rule.type, series, kind)
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
        for rule in _RULE_ORDER
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


def _parse_column(column_type: str, series: pd.Series, kind: str) -> _Parsed:
    if column_type in _NUMERIC_TYPES:
        return _parse_numbers(series, kind, integer=column_type == "int")
    if column_type == "bool":
        return _parse_bools(series, kind)
    if column_type == "datetime":
        return _parse_datetimes(series, kind)
    null = series.isna().to_numpy(dtype=bool)
    if kind == "string":
        return _Parsed(null, np.zeros_like(null), texts=series)
    return _Parsed(null, ~null)


def _parse_numbers(series: pd.Series, kind: str, *, integer: bool) -> _Parsed:
    if kind == "string":
        return _parse_number_strings(_arrow_strings(series), integer=integer)
    null = series.isna().to_numpy(dtype=bool)
    if kind == "int":
        signed = pd.api.types.is_signed_integer_dtype(series.dtype)
        numbers = series.to_numpy(dtype="int64" if signed else "float64", na_value=0)
        return _Parsed(null, np.zeros_like(null), numbers)
    if kind == "float":
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        null = null | np.isnan(numbers)
        if not integer:
            return _Parsed(null, np.zeros_like(null), numbers)
        whole = np.isfinite(numbers) & (numbers == np.trunc(numbers))
        return _Parsed(null, ~null & ~whole, numbers)
    return _Parsed(null, ~null)


def _parse_number_strings(text: pa.Array, *, integer: bool) -> _Parsed:
    null = _blank_or_null(text)
    trimmed = pc.utf8_trim(text, characters=_TRIM)
    syntax = _INT_SYNTAX if integer else _FLOAT_SYNTAX
    valid = pc.fill_null(pc.match_substring_regex(trimmed, f"^(?:{syntax})$"), False)
    # Rows that do not parse get a placeholder so one cast converts the whole column; Arrow's int
    # cast refuses a leading '+', which Python's int() accepts.
    unsigned = pc.replace_substring_regex(trimmed, pattern=r"^\+", replacement="")
    safe = pc.if_else(valid, unsigned, pa.scalar("0", type=trimmed.type))
    numbers = pc.cast(safe, pa.int64() if integer else pa.float64()).to_numpy(zero_copy_only=False)
    return _Parsed(null, ~null & ~_to_numpy_bool(valid), numbers)


def _parse_bools(series: pd.Series, kind: str) -> _Parsed:
    if kind == "string":
        text = _arrow_strings(series)
        words = pc.utf8_lower(pc.utf8_trim(text, characters=_TRIM))
        known = pc.is_in(words, value_set=pa.array(list(_BOOL_WORDS), type=words.type))
        null = _blank_or_null(text)
        return _Parsed(null, ~null & ~_to_numpy_bool(pc.fill_null(known, False)))
    null = series.isna().to_numpy(dtype=bool)
    if kind == "bool":
        return _Parsed(null, np.zeros_like(null))
    if kind in _NUMERIC_TYPES:
        numbers = series.to_numpy(dtype="float64", na_value=np.nan)
        null = null | np.isnan(numbers)
        return _Parsed(null, ~null & (numbers != 0) & (numbers != 1))
    return _Parsed(null, ~null)


def _parse_datetimes(series: pd.Series, kind: str) -> _Parsed:
    if kind == "string":
        text = _arrow_strings(series)
        null = _blank_or_null(text)
        shaped = pc.fill_null(pc.match_substring_regex(text, f"^(?:{_DATETIME_SYNTAX})$"), False)
        candidates = pd.Series(text.to_numpy(zero_copy_only=False), dtype=object)
        candidates[~_to_numpy_bool(shaped)] = None
        # The shape check comes first so that only ISO 8601 strings reach the parser, which alone
        # would accept more forms than the record path's datetime.fromisoformat.
        stamps = pd.to_datetime(candidates, format="ISO8601", errors="coerce", utc=True)
        return _Parsed(null, ~null & stamps.isna().to_numpy(dtype=bool))
    null = series.isna().to_numpy(dtype=bool)
    if kind == "datetime":
        return _Parsed(null, np.zeros_like(null))
    return _Parsed(null, ~null)


def _blank_or_null(text: pa.Array) -> np.ndarray:
    blank = pc.match_substring_regex(text, f"^{_BLANK_SYNTAX}$")
    return _to_numpy_bool(pc.fill_null(blank, True))


def _to_numpy_bool(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False), dtype=bool)


def _arrow_strings(series: pd.Series) -> pa.Array:
    array = pa.array(series, from_pandas=True)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_null(array.type):
        array = array.cast(pa.string())
    return array


# --------------------------------------------------------------------------------------------------
# Reading frames


_ARROW_TO_PANDAS: dict[pa.DataType, Any] = {
    pa.int8(): pd.Int8Dtype(),
    pa.int16(): pd.Int16Dtype(),
    pa.int32(): pd.Int32Dtype(),
    pa.int64(): pd.Int64Dtype(),
    pa.uint8(): pd.UInt8Dtype(),
    pa.uint16(): pd.UInt16Dtype(),
    pa.uint32(): pd.UInt32Dtype(),
    pa.uint64(): pd.UInt64Dtype(),
    pa.bool_(): pd.BooleanDtype(),
}


def _to_pandas(frame: Any) -> pd.DataFrame:
    if isinstance(frame, pd.DataFrame):
        return frame
    if isinstance(frame, pa.Table | pa.RecordBatch):
        # Nullable pandas dtypes keep an int column with nulls an int column (numpy makes floats).
        return frame.to_pandas(types_mapper=_ARROW_TO_PANDAS.get)
    if type(frame).__module__.partition(".")[0] == "polars" and hasattr(frame, "to_arrow"):
        return _to_pandas(frame.to_arrow())
    raise InvalidInputError(
        f"expected a pandas DataFrame, a pyarrow Table or a polars DataFrame, "
        f"got {type(frame).__name__}; convert the data to one of them first"
    )


def _columns_by_name(table: pd.DataFrame, label: str) -> dict[str, pd.Series]:
    duplicated = table.columns[table.columns.duplicated()]
    if len(duplicated):
        raise InvalidInputError(
            f"{label}: the data has more than one column named '{duplicated[0]}'; rename them"
        )
    return {str(name): table.iloc[:, position] for position, name in enumerate(table.columns)}


def _normalize(series: pd.Series) -> tuple[pd.Series, str]:
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


# --------------------------------------------------------------------------------------------------
# Drafting a contract from training data


def infer_contract(
    frame: Any,
    *,
    max_categories: int = 50,
    name: str | None = None,
    on_violation: Action = "reject",
) -> Contract:
    """Draft a contract from a training frame (pandas, pyarrow or polars) for a person to review.

    Ranges are the observed min and max, so values just outside the training range break them; widen
    them where that is expected. Strings that all parse as numbers (blanks aside) become numbers.

    Example::

        >>> frame = pd.DataFrame({"tenure": [1, 34, 2], "Contract": ["One year", "Two year", None]})
        >>> infer_contract(frame, name="churn").to_dict()["columns"]["tenure"]
        {'type': 'int', 'nullable': False, 'min': 1, 'max': 34}
    """
    if max_categories < 0:
        raise InvalidInputError(f"max_categories must be >= 0, got {max_categories}")
    table = _to_pandas(frame)
    columns = {
        column: _infer_column(column, series, max_categories)
        for column, series in _columns_by_name(table, "infer_contract").items()
    }
    return Contract(name=name, on_violation=on_violation, columns=columns)


def _infer_column(column: str, series: pd.Series, max_categories: int) -> ColumnRule:
    series, kind = _normalize(series)
    if kind == "string":
        return _infer_text(series, max_categories)
    nullable = bool(series.isna().any())
    if kind in ("bool", "datetime"):
        return ColumnRule(type="bool" if kind == "bool" else "datetime", nullable=nullable)
    if kind in _NUMERIC_TYPES:
        parsed = _parse_numbers(series, kind, integer=kind == "int")
        return _numeric_rule("int" if kind == "int" else "float", parsed, nullable)
    seen = sorted({type(value).__name__ for value in series.dropna().head(1000)})
    raise InvalidInputError(
        f"cannot infer a type for column '{column}': it mixes {', '.join(seen)}; "
        f"convert it to one type (e.g. with DataFrame.astype) and infer again"
    )


def _numeric_rule(column_type: ColumnType, parsed: _Parsed, nullable: bool) -> ColumnRule:
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
    text = _arrow_strings(series)
    blank = _blank_or_null(text)
    if not blank.all():
        trimmed = pc.utf8_trim(text, characters=_TRIM)
        for integer, syntax in ((True, _INT_SYNTAX), (False, _FLOAT_SYNTAX)):
            shaped = pc.match_substring_regex(trimmed, f"^(?:{syntax})$")
            if _to_numpy_bool(pc.fill_null(shaped, False))[~blank].all():
                parsed = _parse_number_strings(text, integer=integer)
                column_type: ColumnType = "int" if integer else "float"
                return _numeric_rule(column_type, parsed, nullable=bool(blank.any()))
    nullable = bool(series.isna().any())
    distinct = series.dropna().unique()
    if len(distinct) <= max_categories:
        categories = sorted(str(value) for value in distinct)
        return ColumnRule(type="category", nullable=nullable, categories=categories or None)
    return ColumnRule(type="string", nullable=nullable)


# --------------------------------------------------------------------------------------------------
# Comparing versions


@dataclass(frozen=True, slots=True)
class ContractChange:
    """One difference between two contract versions.

    ``breaking`` means some data the old version accepted cleanly would now be flagged or rejected.
    ``detail`` says what changed; ``description`` adds where, so it reads on its own.
    """

    column: str | None
    field: str
    breaking: bool
    detail: str

    @property
    def description(self) -> str:
        where = f"column '{self.column}'" if self.column is not None else "contract"
        return f"{where}: {self.detail}"

    def line(self) -> str:
        kind = "breaking  " if self.breaking else "compatible"
        return f"{kind} {self.description}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "field": self.field,
            "breaking": self.breaking,
            "description": self.description,
        }


@dataclass(frozen=True)
class ContractDiff:
    """Every change from one contract version to the next, each classed breaking or compatible.

    Example::

        >>> diff = diff_contracts(old, new)  # doctest: +SKIP
        >>> diff.breaking, diff.lines()  # doctest: +SKIP
        (True, ["breaking   column 'tenure': min raised from 0 to 1 (narrowed range)"])
    """

    old: str
    new: str
    changes: tuple[ContractChange, ...]

    @property
    def breaking(self) -> bool:
        return any(change.breaking for change in self.changes)

    @property
    def breaking_changes(self) -> tuple[ContractChange, ...]:
        return tuple(change for change in self.changes if change.breaking)

    @property
    def compatible_changes(self) -> tuple[ContractChange, ...]:
        return tuple(change for change in self.changes if not change.breaking)

    def lines(self) -> list[str]:
        return [change.line() for change in self.changes]

    def summary(self) -> str:
        if not self.changes:
            return f"{self.old} -> {self.new}: no changes"
        return (
            f"{self.old} -> {self.new}: {len(self.breaking_changes)} breaking, "
            f"{len(self.compatible_changes)} compatible changes"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "old": self.old,
            "new": self.new,
            "breaking": self.breaking,
            "changes": [change.to_dict() for change in self.changes],
        }


_STRICTNESS = {"allow": 0, "flag": 1, "reject": 2}


def diff_contracts(old: Contract, new: Contract) -> ContractDiff:
    """Classify each change from ``old`` to ``new`` as breaking or compatible.

    Example::

        >>> old = Contract.from_dict({"columns": {"tenure": {"type": "int", "min": 0}}})
        >>> new = old.model_copy(update={"version": 2, "columns": {
        ...     "tenure": ColumnRule(type="int", min=1)}})
        >>> diff_contracts(old, new).lines()
        ["breaking   column 'tenure': min raised from 0 to 1 (narrowed range)"]
    """
    changes: list[ContractChange] = []
    if old.extra_columns != new.extra_columns:
        stricter = _STRICTNESS[new.extra_columns] > _STRICTNESS[old.extra_columns]
        text = f"extra_columns changed from '{old.extra_columns}' to '{new.extra_columns}'"
        changes.append(ContractChange(None, "extra_columns", stricter, text))
    for column in [*old.columns, *(name for name in new.columns if name not in old.columns)]:
        if column not in old.columns:
            required = new.columns[column].required
            text = "new required column" if required else "new optional column"
            changes.append(ContractChange(column, "columns", required, text))
        elif column not in new.columns:
            # The column becomes an extra column, which breaks data only if extras are not allowed.
            text = f"removed from the contract (extra columns: '{new.extra_columns}')"
            changes.append(ContractChange(column, "columns", new.extra_columns != "allow", text))
        else:
            changes.extend(_diff_column(column, old, new))
    return ContractDiff(old.label, new.label, tuple(changes))


def _diff_column(
    column: str, old_contract: Contract, new_contract: Contract
) -> list[ContractChange]:
    old, new = old_contract.columns[column], new_contract.columns[column]
    changes = [
        *_diff_flag(column, "required", old.required, new.required, "now required", "now optional"),
        *_diff_flag(
            column,
            "nullable",
            not old.nullable,
            not new.nullable,
            "no longer nullable",
            "now nullable",
        ),
        *_diff_flag(
            column,
            "on_violation",
            old_contract.action_for(column) == "reject",
            new_contract.action_for(column) == "reject",
            "violations now rejected instead of flagged",
            "violations now flagged instead of rejected",
        ),
    ]
    if old.type != new.type:
        # Ranges, categories and patterns of different types do not compare; the type change says.
        text = f"type changed from {old.type} to {new.type}"
        return [ContractChange(column, "type", True, text), *changes]
    changes.extend(_diff_bound(column, "min", old.min, new.min, raised_is_narrower=True))
    changes.extend(_diff_bound(column, "max", old.max, new.max, raised_is_narrower=False))
    changes.extend(_diff_categories(column, old.categories, new.categories))
    changes.extend(_diff_pattern(column, old.pattern, new.pattern))
    return changes


def _diff_flag(
    column: str, field: str, old_strict: bool, new_strict: bool, stricter: str, looser: str
) -> list[ContractChange]:
    if old_strict == new_strict:
        return []
    return [ContractChange(column, field, new_strict, stricter if new_strict else looser)]


def _diff_bound(
    column: str,
    field: str,
    old: float | None,
    new: float | None,
    *,
    raised_is_narrower: bool,
) -> list[ContractChange]:
    if old == new:
        return []
    if old is None:
        return [ContractChange(column, field, True, f"{field} {new} added (narrowed range)")]
    if new is None:
        return [ContractChange(column, field, False, f"{field} {old} removed (widened range)")]
    narrower = (new > old) == raised_is_narrower
    verb = "raised" if new > old else "lowered"
    effect = "narrowed range" if narrower else "widened range"
    text = f"{field} {verb} from {old} to {new} ({effect})"
    return [ContractChange(column, field, narrower, text)]


def _diff_categories(
    column: str, old: list[str] | None, new: list[str] | None
) -> list[ContractChange]:
    if old == new:
        return []
    if old is None:
        return [ContractChange(column, "categories", True, f"categories now limited to {new}")]
    if new is None:
        return [ContractChange(column, "categories", False, "any category now allowed")]
    changes = []
    removed = [category for category in old if category not in new]
    added = [category for category in new if category not in old]
    if removed:
        changes.append(ContractChange(column, "categories", True, f"categories removed: {removed}"))
    if added:
        changes.append(ContractChange(column, "categories", False, f"categories added: {added}"))
    return changes


def _diff_pattern(column: str, old: str | None, new: str | None) -> list[ContractChange]:
    if old == new:
        return []
    if old is None:
        return [ContractChange(column, "pattern", True, f"new pattern {new!r}")]
    if new is None:
        return [ContractChange(column, "pattern", False, f"pattern {old!r} removed")]
    # Whether one regular expression accepts a superset of another is not decidable cheaply.
    return [ContractChange(column, "pattern", True, f"pattern changed from {old!r} to {new!r}")]
