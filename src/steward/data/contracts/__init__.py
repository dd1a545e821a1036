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

The code is in one module per part: ``model`` (the contract and its YAML form), ``record``
(the compiled per-record check), ``batch`` (checking a frame), ``parse`` (reading a column as a
type), ``infer`` (drafting a contract, ``read_table``), ``diff`` (comparing versions),
``violations`` (violations and reports), ``personal`` (personal-data columns hashed or dropped
before they are stored) and ``syntax`` (the value syntax both paths share).

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

from steward.data.contracts.batch import check_batch
from steward.data.contracts.diff import ContractChange, ContractDiff, diff_contracts
from steward.data.contracts.infer import infer_contract, read_table
from steward.data.contracts.model import ColumnRule, Contract, read_contract
from steward.data.contracts.personal import (
    REDACTED,
    hash_value,
    protect_record,
    protect_table,
    protect_violations,
    workspace_secret,
)
from steward.data.contracts.record import CompiledContract, check_record
from steward.data.contracts.syntax import Action, ColumnType, ExtraColumns, Personal
from steward.data.contracts.violations import ContractReport, Violation, raise_for_rejected

__all__ = [
    "REDACTED",
    "Action",
    "ColumnRule",
    "ColumnType",
    "CompiledContract",
    "Contract",
    "ContractChange",
    "ContractDiff",
    "ContractReport",
    "ExtraColumns",
    "Personal",
    "Violation",
    "check_batch",
    "check_record",
    "diff_contracts",
    "hash_value",
    "infer_contract",
    "protect_record",
    "protect_table",
    "protect_violations",
    "raise_for_rejected",
    "read_contract",
    "read_table",
    "workspace_secret",
]
