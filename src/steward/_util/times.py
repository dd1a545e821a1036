"""Time helpers shared by every layer: durations written as ``7d``, ``24h``, ``30m`` or ``2w``."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from steward.errors import InvalidInputError

__all__ = ["parse_window", "retention_cutoff"]


def parse_window(text: str) -> timedelta:
    """``7d``, ``24h``, ``30m`` or ``2w`` as a duration.

    >>> parse_window("7d")
    datetime.timedelta(days=7)
    """
    units = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.isdigit() or int(value) == 0:
        raise InvalidInputError(f"window {text!r} is not a duration; write e.g. 7d, 24h, 30m or 2w")
    return timedelta(**{units[unit]: int(value)})


def retention_cutoff(retention_days: int) -> datetime:
    """Events dated before this moment are past the ``retention_days`` setting."""
    return datetime.now(UTC) - timedelta(days=retention_days)
