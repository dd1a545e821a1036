"""The time range a dashboard page shows: a preset ending now, or explicit bounds from the URL.

``?range=`` takes a preset (``1d``, ``7d``, ``30d``, ``90d``, ``365d``: the span ending now) or two
ISO dates or times joined by ``..`` (``2026-01-01..2026-02-01``; a time without a zone is UTC, a
date means its midnight). ``?from=&to=`` (the picker's custom form) mean the same as
``range=FROM..TO``. Zooming a chart writes the ``FROM..TO`` form, so a reload shows the zoom.

Without ``range`` the page shows the last 7 days, unless they hold nothing: then the smallest
preset that reaches back to the system's latest activity, with a note saying so.

>>> from datetime import datetime, UTC
>>> now = datetime(2026, 3, 1, tzinfo=UTC)
>>> chosen = choose_range(None, None, None, now=now, latest=datetime(2026, 2, 10, tzinfo=UTC))
>>> chosen.key, chosen.note
('30d', 'Showing 30 days: the latest activity is 10 Feb 2026 00:00 UTC, 19 days ago.')
>>> choose_range("2026-01-01..2026-02-01", None, None, now=now, latest=None).key
'2026-01-01T00:00..2026-02-01T00:00'
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from steward.errors import InvalidInputError

__all__ = ["DEFAULT", "PRESETS", "PageRange", "choose_range", "parse_moment"]

#: The presets the picker offers, each the span that ends now.
PRESETS: dict[str, timedelta] = {
    "1d": timedelta(days=1),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "90d": timedelta(days=90),
    "365d": timedelta(days=365),
}
#: The preset shown when the URL names none and the last 7 days hold activity.
DEFAULT = "7d"
#: The longest custom range a page draws (the charts downsample, the heatmap samples).
LONGEST = timedelta(days=400)
#: The shortest custom range: a zoom narrower than this is widened to it.
SHORTEST = timedelta(minutes=10)


@dataclass(frozen=True)
class PageRange:
    """What a page shows: ``(start, end]``, the key the URL carries, and a note when chosen for you."""

    start: datetime
    end: datetime
    key: str
    preset: bool
    note: str = ""

    @property
    def span(self) -> timedelta:
        return self.end - self.start

    @property
    def query(self) -> str:
        """The URL parameter that reproduces this range (``range=...``)."""
        return f"range={self.key}"


def parse_moment(text: str, what: str) -> datetime:
    """An ISO date or time as an aware UTC time (naive means UTC; a date means its midnight).

    >>> parse_moment("2026-01-02", "from").isoformat()
    '2026-01-02T00:00:00+00:00'
    >>> parse_moment("2026-01-02T10:30+01:00", "to").isoformat()
    '2026-01-02T09:30:00+00:00'
    """
    cleaned = text.strip().replace(" ", "T")
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        try:
            moment = datetime.combine(date.fromisoformat(cleaned), datetime.min.time())
        except ValueError:
            raise InvalidInputError(
                f"the range's {what} {text!r} is not an ISO date or time; "
                "write it as 2026-01-31 or 2026-01-31T14:00"
            ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _key(moment: datetime) -> str:
    return f"{moment:%Y-%m-%dT%H:%M}"


def _explicit(low_text: str, high_text: str) -> PageRange:
    low, high = parse_moment(low_text, "start"), parse_moment(high_text, "end")
    if high <= low:
        raise InvalidInputError(
            f"the range {low_text!r}..{high_text!r} ends before it starts; put the earlier time first"
        )
    if high - low > LONGEST:
        raise InvalidInputError(
            f"the range {low_text!r}..{high_text!r} spans {(high - low).days} days; "
            f"choose at most {LONGEST.days} days"
        )
    if high - low < SHORTEST:
        middle = low + (high - low) / 2
        low, high = middle - SHORTEST / 2, middle + SHORTEST / 2
    low, high = low.replace(second=0, microsecond=0), high.replace(second=0, microsecond=0)
    return PageRange(low, high, f"{_key(low)}..{_key(high)}", preset=False)


def _moment_text(moment: datetime) -> str:
    return f"{moment:%d %b %Y %H:%M} UTC"


def _default(now: datetime, latest: datetime | None) -> PageRange:
    """The last 7 days, or the smallest preset back to ``latest`` when they hold nothing."""
    if latest is None or latest > now - PRESETS[DEFAULT]:
        return PageRange(now - PRESETS[DEFAULT], now, DEFAULT, preset=True)
    ago = now - latest
    note = f"the latest activity is {_moment_text(latest)}, {ago.days} days ago."
    for key, span in PRESETS.items():
        if span > PRESETS[DEFAULT] and now - span < latest:
            return PageRange(now - span, now, key, True, f"Showing {span.days} days: {note}")
    start = latest - PRESETS[DEFAULT]
    chosen = _explicit(_key(start), _key(latest + timedelta(minutes=1)))
    return PageRange(
        chosen.start,
        chosen.end,
        chosen.key,
        preset=False,
        note=f"Showing the 7 days up to the latest activity: {note}",
    )


def choose_range(
    range_text: str | None,
    low: str | None,
    high: str | None,
    *,
    now: datetime,
    latest: datetime | None,
) -> PageRange:
    """The range a page shows from its URL's ``range``, ``from`` and ``to``; see the module doc.

    Raises ``InvalidInputError`` naming the bad value (an unknown preset, an unreadable or
    reversed pair of times, a range longer than 400 days).
    """
    if low or high:
        if not (low and high):
            raise InvalidInputError(
                f"a custom range needs both from and to (got from={low!r}, to={high!r})"
            )
        return _explicit(low, high)
    if not range_text:
        return _default(now, latest)
    if range_text in PRESETS:
        return PageRange(now - PRESETS[range_text], now, range_text, preset=True)
    if ".." in range_text:
        first, _, second = range_text.partition("..")
        return _explicit(first, second)
    raise InvalidInputError(
        f"range {range_text!r} is neither a preset ({', '.join(PRESETS)}) nor FROM..TO "
        "(such as 2026-01-01..2026-02-01)"
    )
