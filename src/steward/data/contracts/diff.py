"""Comparing contract versions: which changes break data the old version accepted.

:func:`diff_contracts` lists every change from one version to the next as a
:class:`ContractChange`, classed breaking (some data the old version accepted cleanly would now be
flagged or rejected) or compatible, in a :class:`ContractDiff`.

Example::

    >>> old = Contract.from_dict({"columns": {"age": {"type": "int"}}})
    >>> new = Contract.from_dict({"version": 2, "columns": {"age": {"type": "int", "min": 0}}})
    >>> diff_contracts(old, new).summary()
    'contract v1 -> contract v2: 1 breaking, 0 compatible changes'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from steward.data.contracts.model import Contract

__all__ = ["ContractChange", "ContractDiff", "diff_contracts"]


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
        """The change with where it happened: ``column 'tenure': min raised ...``."""
        where = f"column '{self.column}'" if self.column is not None else "contract"
        return f"{where}: {self.detail}"

    def line(self) -> str:
        """One line for a CLI: ``breaking`` or ``compatible``, then the description."""
        kind = "breaking  " if self.breaking else "compatible"
        return f"{kind} {self.description}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields and the description."""
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
        """Whether any change breaks data the old version accepted."""
        return any(change.breaking for change in self.changes)

    @property
    def breaking_changes(self) -> tuple[ContractChange, ...]:
        """The breaking changes, in order."""
        return tuple(change for change in self.changes if change.breaking)

    @property
    def compatible_changes(self) -> tuple[ContractChange, ...]:
        """The compatible changes, in order."""
        return tuple(change for change in self.changes if not change.breaking)

    def lines(self) -> list[str]:
        """One line per change, as :meth:`ContractChange.line` writes it."""
        return [change.line() for change in self.changes]

    def summary(self) -> str:
        """One line: both versions and how many changes of each class."""
        if not self.changes:
            return f"{self.old} -> {self.new}: no changes"
        return (
            f"{self.old} -> {self.new}: {len(self.breaking_changes)} breaking, "
            f"{len(self.compatible_changes)} compatible changes"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: both versions, whether it breaks, and every change."""
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

        >>> from steward.data.contracts import ColumnRule
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
    if old.personal != new.personal:
        # What is stored changes, not what is accepted: never breaking.
        text = f"personal changed from {old.personal or 'none'} to {new.personal or 'none'}"
        changes.append(ContractChange(column, "personal", False, text))
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
