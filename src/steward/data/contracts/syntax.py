"""What each column type accepts: the value syntax both check paths share, and the rule names.

The record path (:mod:`steward.data.contracts.record`, Python ``re``) and the batch path
(:mod:`steward.data.contracts.parse`, Arrow's RE2) read values with the same patterns, so a record
and the same row in a batch get the same verdict. Each pattern is ASCII-only and anchored
explicitly, where the two engines agree exactly.

Example::

    >>> import re
    >>> bool(re.fullmatch(INT_SYNTAX, "+42")), bool(re.fullmatch(INT_SYNTAX, "4.2"))
    (True, False)
"""

from __future__ import annotations

import re
from typing import Literal

__all__ = [
    "BLANK_RE",
    "BLANK_SYNTAX",
    "BOOL_WORDS",
    "DATETIME_RE",
    "DATETIME_SYNTAX",
    "FLOAT_RE",
    "FLOAT_SYNTAX",
    "INT_RE",
    "INT_SYNTAX",
    "NUMERIC_TYPES",
    "RULE_ORDER",
    "TEXT_TYPES",
    "TRIM",
    "Action",
    "ColumnType",
    "ExtraColumns",
    "Personal",
]

#: The type a column holds.
ColumnType = Literal["int", "float", "bool", "string", "category", "datetime"]
#: What a broken rule does: reject the record (or row), or flag it and go on.
Action = Literal["reject", "flag"]
#: What a column that the contract does not name does.
ExtraColumns = Literal["allow", "flag", "reject"]
#: What becomes of a personal-data column at the door: stored as a keyed hash, or not stored.
Personal = Literal["hash", "drop"]

#: An integer: 18 digits always fit in int64, so both paths parse it the same.
INT_SYNTAX = r"[+-]?[0-9]{1,18}"
#: A decimal number, with an optional exponent.
FLOAT_SYNTAX = r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
#: A blank string, which counts as null in int, float, bool and datetime columns.
BLANK_SYNTAX = r"[ \t\r\n]*"
#: An ISO 8601 date, or date and time with an optional offset.
DATETIME_SYNTAX = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
    r"(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
INT_RE = re.compile(INT_SYNTAX)
FLOAT_RE = re.compile(FLOAT_SYNTAX)
BLANK_RE = re.compile(BLANK_SYNTAX)
DATETIME_RE = re.compile(DATETIME_SYNTAX)
#: The strings a bool column reads (lower-cased and trimmed first), and their values.
BOOL_WORDS = {"true": True, "1": True, "false": False, "0": False}
#: The characters trimmed around numeric and bool strings.
TRIM = " \t"

#: The value rules, in the order they apply to a present value (and reports list them).
RULE_ORDER = ("null", "type", "min", "max", "category", "pattern")
#: Column types that take min/max.
NUMERIC_TYPES = ("int", "float")
#: Column types that take categories and a pattern.
TEXT_TYPES = ("string", "category")
