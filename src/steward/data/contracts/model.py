"""The contract model: column rules and the contract, plain data with a YAML form.

:class:`ColumnRule` says what one column must hold; :class:`Contract` names every input column
with its rule and says what a violation does. Both are frozen pydantic models that round-trip to
the YAML users write under ``contract:`` in ``steward.yaml`` (:meth:`Contract.from_dict`,
:meth:`Contract.to_dict`, :func:`read_contract`); a bad form raises :class:`ConfigError` with one
line per problem, in the words a YAML author uses.

Example::

    >>> Contract.from_dict({"columns": {"age": {"type": "int"}}}, name="churn").label
    "contract 'churn' v1"
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from steward.data.contracts.record import CompiledContract
from steward.data.contracts.syntax import (
    NUMERIC_TYPES,
    TEXT_TYPES,
    Action,
    ColumnType,
    ExtraColumns,
    Personal,
)
from steward.errors import ConfigError, InvalidInputError

__all__ = ["ColumnRule", "Contract", "read_contract"]


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
    #: Personal data: ``hash`` stores a keyed hash of the value, ``drop`` does not store it.
    personal: Personal | None = None

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _check_consistency(self) -> ColumnRule:
        problems = _column_rule_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self


def _column_rule_problems(rule: ColumnRule) -> list[str]:
    problems = []
    if (rule.min is not None or rule.max is not None) and rule.type not in NUMERIC_TYPES:
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
    if rule.pattern is not None and rule.type not in TEXT_TYPES:
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
        >>> from steward.data.contracts import check_record
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

    @property
    def personal(self) -> dict[str, Personal]:
        """The personal-data columns and what becomes of each at the door (``hash`` or ``drop``).

        Example::

            >>> Contract.from_dict({"columns": {"email": {"type": "string", "personal": "hash"}}}
            ...     ).personal
            {'email': 'hash'}
        """
        return {name: rule.personal for name, rule in self.columns.items() if rule.personal}

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
