"""Time helpers shared by every layer: durations written as ``7d``, ``24h``, ``30m`` or ``2w``."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from steward.errors import InvalidInputError

__all__ = ["format_span", "parse_window", "retention_cutoff"]


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


def format_span(label: str) -> str:
    """A window label such as ``336m`` or ``4032m`` as a person reads it: ``5h 36m``, ``2d 19h 12m``.

    >>> format_span("336m"), format_span("4032m"), format_span("1h"), format_span("soon")
    ('5h 36m', '2d 19h 12m', '1h', 'soon')
    """
    match = re.fullmatch(r"(\d+)([smhdw])", label.strip())
    if match is None:
        return label
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count}{unit}")
    return " ".join(parts) or "0s"


_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
