"""Text that can be stored: every string a user sends must be valid Unicode.

JSON may carry a lone surrogate (``"\\ud800"``), which Python decodes but no store can encode; it
must be refused at the door with the field it sits in, not fail deep inside Arrow.
"""

from __future__ import annotations

from typing import Any

from steward.errors import InvalidInputError

__all__ = ["check_text", "is_valid_text"]


def check_text(value: Any, where: str) -> None:
    """Raise ``InvalidInputError`` naming the first field (``where`` and below) holding a string
    that is not valid Unicode, in keys as in values.

    >>> check_text({"plan": ["basic", "pro"]}, "records[0]")
    >>> check_text({"plan": "\\ud800"}, "records[0]")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    steward.errors.InvalidInputError: records[0].plan holds text that is not valid Unicode ...
    """
    if isinstance(value, str):
        if not is_valid_text(value):
            raise InvalidInputError(
                f"{where} holds text that is not valid Unicode (a lone surrogate such as "
                f"{_first_bad(value)!r}); send UTF-8 text"
            )
    elif isinstance(value, dict):
        for key, item in value.items():
            if isinstance(key, str) and not is_valid_text(key):
                raise InvalidInputError(
                    f"{where} has a field name that is not valid Unicode ({key!r}); send UTF-8 text"
                )
            check_text(item, f"{where}.{key}")
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            check_text(item, f"{where}[{index}]")


def is_valid_text(text: str) -> bool:
    """Whether ``text`` can be stored: it encodes as UTF-8 (no lone surrogates)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _first_bad(text: str) -> str:
    return next((char for char in text if not is_valid_text(char)), text[:10])
