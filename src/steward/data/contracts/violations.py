"""Violations and reports: what a contract check found, in words and in row masks.

A :class:`Violation` is one broken rule (which column, which rule, how many rows, an example); a
:class:`ContractReport` is everything a batch check found, with masks to keep or drop rows.
:func:`raise_for_rejected` turns the ``reject`` ones into a :class:`ContractViolationError`.

Example::

    >>> Violation("age", "type", "flag", 1, None, "ten", "int", "contract v1").message
    "contract v1: column 'age' expects int, got 'ten'"
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from steward.data.contracts.syntax import Action
from steward.errors import ContractViolationError

__all__ = ["ContractReport", "Violation", "plain_value", "raise_for_rejected"]


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
        """How many rows broke a ``reject`` rule."""
        return int(self.rejected_mask.sum())

    @property
    def n_flagged(self) -> int:
        """How many rows broke a ``flag`` rule."""
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


def plain_value(value: Any) -> Any:
    """A JSON-friendly copy of an example value: numpy scalars unwrapped, nulls as ``None``,
    dates as ISO 8601 text and anything else as its ``repr``.

    >>> plain_value(float("nan")) is None, plain_value(dt.date(2026, 1, 2))
    (True, '2026-01-02')
    """
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
