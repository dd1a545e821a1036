"""Daily rollups: each closed day's hourly profiles merged once, so long windows read days, not hours.

A year of hourly profiles is 8,760 rows per column; a reader that merges them (a year-long
dashboard page, a monitor over a long window) pays for every one. ``ProfileStore.write`` therefore
rolls the hourly rows of each *closed* day (a day that ended before the build's watermark) into one
row per column, model version and binning, kept beside the hourly files:

- ``system=<name>/daily/month-<YYYYMM>-<token>.parquet``: the rolled days of one month, in the
  hourly files' own columns (``bucket_start`` is the day's start);
- ``system=<name>/daily/manifest.json``: per month, its file, the days it holds, and the names of
  every hourly file whose rows it merged (``sources``).

Hourly files carry the first and last day they hold in their names
(``profiles-<stamp>-<token>-d<YYYYMMDD>-<YYYYMMDD>.parquet``), so a reader knows from the folder
listing alone which days a file touches. A rolled day is used only when every hourly file touching
it is among its month's sources; a file written later (late events landing in an old bucket, a
build that crashed before rolling, a concurrent writer) makes the days it touches fall back to
their hourly rows until the next write rolls them again. So a window read from rollups is always
the merge of the same hourly rows: counts, bins, nulls, minima and maxima equal the hourly merge
exactly, moments and bin sums up to rounding, and the KLL sketches stay within their rank error.
Writers need no lock: each manifest describes a consistent state, and the last one written wins.

Example::

    >>> import datetime as dt
    >>> runs = day_runs([dt.date(2026, 1, 1), dt.date(2026, 1, 2), dt.date(2026, 1, 5)])
    >>> [(low.day, high.day) for low, high in runs]
    [(1, 3), (5, 6)]
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

__all__ = [
    "DAILY_DIRECTORY",
    "RolledWindow",
    "day_runs",
    "hourly_name",
    "load_manifest",
    "months_to_roll",
    "rolled_window",
    "save_month",
]

#: Folder, inside a system's profile folder, that holds the daily rollups.
DAILY_DIRECTORY: Final = "daily"
_MANIFEST: Final = "manifest.json"
_FORMAT: Final = 1
_DAY: Final = dt.timedelta(days=1)
_HOURLY: Final = re.compile(r"profiles-[^.]*?(?:-d(?P<first>\d{8})-(?P<last>\d{8}))?\.parquet")
# Month files a newer manifest no longer names are deleted once this old (a reader may hold the
# manifest that named them for a moment).
_KEEP_SUPERSEDED: Final = 600.0


def hourly_name(stamp: str, days: Sequence[dt.date]) -> str:
    """The name of an hourly file written at ``stamp`` holding rows of ``days``.

    >>> hourly_name("20260101T000000Z", [dt.date(2026, 1, 2), dt.date(2026, 1, 1)])[-27:]
    '-d20260101-20260102.parquet'
    """
    token = secrets.token_hex(4)
    return f"profiles-{stamp}-{token}-d{min(days):%Y%m%d}-{max(days):%Y%m%d}.parquet"


def _days_of(name: str) -> tuple[dt.date, dt.date] | None:
    """The first and last day an hourly file holds, from its name; None when it does not say."""
    found = _HOURLY.fullmatch(name)
    if found is None or found["first"] is None:
        return None
    first, last = (dt.datetime.strptime(found[key], "%Y%m%d").date() for key in ("first", "last"))
    return first, last


def _months_touched(span: tuple[dt.date, dt.date]) -> list[str]:
    months, day = [], span[0].replace(day=1)
    while day <= span[1]:
        months.append(f"{day:%Y%m}")
        day = (day + dt.timedelta(days=32)).replace(day=1)
    return months


def _month_start(month: str) -> dt.date:
    return dt.date(int(month[:4]), int(month[4:]), 1)


def _month_end(month: str) -> dt.date:
    return (_month_start(month) + dt.timedelta(days=32)).replace(day=1)


def load_manifest(directory: Path) -> dict[str, Any]:
    """The rollup manifest of a system's folder (empty when nothing was rolled yet)."""
    try:
        data = json.loads((directory / DAILY_DIRECTORY / _MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {"format": _FORMAT, "months": {}}
    if not isinstance(data, dict) or data.get("format") != _FORMAT:
        return {"format": _FORMAT, "months": {}}
    return data


def _hourly_files(directory: Path) -> dict[str, tuple[dt.date, dt.date] | None]:
    if not directory.is_dir():
        return {}
    return {
        entry.name: _days_of(entry.name)
        for entry in os.scandir(directory)
        if entry.name.endswith(".parquet") and entry.is_file()
    }


def _stale_days(
    month: str, entry: dict[str, Any], hourly: dict[str, tuple[dt.date, dt.date] | None]
) -> set[dt.date] | None:
    """Days of a rolled month that hourly files written since its roll touch (None: all)."""
    sources = set(entry.get("sources", ()))
    stale: set[dt.date] = set()
    low, high = _month_start(month), _month_end(month)
    for name, span in hourly.items():
        if name in sources:
            continue
        if span is None:
            return None
        day = max(span[0], low)
        while day <= span[1] and day < high:
            stale.add(day)
            day += _DAY
    return stale


@dataclass(frozen=True)
class RolledWindow:
    """What a window ``[start, end)`` can read from rollups: the month files, and the runs of whole
    days (start, end) they answer; every other bucket comes from the hourly files."""

    files: list[Path]
    runs: list[tuple[dt.datetime, dt.datetime]]


def rolled_window(directory: Path, start: dt.datetime, end: dt.datetime) -> RolledWindow:
    """The rolled days that lie wholly inside ``[start, end)`` and are still up to date."""
    manifest = load_manifest(directory)
    if not manifest["months"]:
        return RolledWindow([], [])
    hourly = _hourly_files(directory)
    first = _ceil_day(start)
    last = end.astimezone(dt.UTC).date()  # days before this one end by `end`
    files: list[Path] = []
    usable: list[dt.date] = []
    for month, entry in sorted(manifest["months"].items()):
        days = [dt.date.fromisoformat(day) for day in entry["days"]]
        inside = [day for day in days if first <= day < last]
        if not inside:
            continue
        stale = _stale_days(month, entry, hourly)
        if stale is None:
            continue
        fresh = [day for day in inside if day not in stale]
        if fresh:
            files.append(directory / DAILY_DIRECTORY / entry["file"])
            usable += fresh
    return RolledWindow(files, day_runs(usable))


def _ceil_day(moment: dt.datetime) -> dt.date:
    moment = moment.astimezone(dt.UTC)
    day = moment.date()
    return day if moment == dt.datetime.combine(day, dt.time(), dt.UTC) else day + _DAY


def day_runs(days: Iterable[dt.date]) -> list[tuple[dt.datetime, dt.datetime]]:
    """Consecutive days as ``[start, end)`` ranges of UTC datetimes."""
    runs: list[tuple[dt.datetime, dt.datetime]] = []
    for day in sorted(set(days)):
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        if runs and runs[-1][1] == start:
            runs[-1] = (runs[-1][0], start + _DAY)
        else:
            runs.append((start, start + _DAY))
    return runs


def months_to_roll(directory: Path, closed_before: dt.date) -> dict[str, list[str]]:
    """Per month with closed days to (re)roll, the hourly files whose rows it must merge.

    A month needs rolling when a file touching its closed days is not among its sources, or when
    days of it closed since its last roll."""
    manifest = load_manifest(directory)
    hourly = _hourly_files(directory)
    touching: dict[str, list[str]] = {}
    for name, span in hourly.items():
        months = _months_touched(span) if span else sorted({*manifest["months"], "unknown"})
        for month in months:
            touching.setdefault(month, []).append(name)
    unknown = touching.pop("unknown", [])
    wanted: dict[str, list[str]] = {}
    for month, names in touching.items():
        if _month_start(month) >= closed_before:
            continue
        entry = manifest["months"].get(month, {})
        sources = set(entry.get("sources", ()))
        # Days of this month closed since its last roll, which some file may hold rows of.
        low = max(
            _month_start(month), dt.date.fromisoformat(entry.get("closed_before", "0001-01-01"))
        )
        high = min(_month_end(month), closed_before)
        newly_closed = low < high and any(
            span[0] < high and span[1] >= low
            for name in names
            if (span := hourly[name]) is not None
        )
        if newly_closed or any(name not in sources for name in names):
            wanted[month] = sorted({*names, *unknown})
    return wanted


def save_month(
    directory: Path,
    month: str,
    written: Path | None,
    days: Sequence[dt.date],
    sources: Sequence[str],
    closed_before: dt.date,
) -> None:
    """Record a month's new rollup file in the manifest (atomically), and drop old month files."""
    folder = directory / DAILY_DIRECTORY
    folder.mkdir(parents=True, exist_ok=True)
    manifest = load_manifest(directory)
    # A month whose closed days hold no rows is recorded too (no file), so it is not rolled again.
    manifest["months"][month] = {
        "file": None if written is None else written.name,
        "days": sorted({day.isoformat() for day in days}) if written is not None else [],
        "sources": sorted(sources),
        "closed_before": min(closed_before, _month_end(month)).isoformat(),
    }
    temporary = folder / f".{_MANIFEST}.{secrets.token_hex(4)}.tmp"
    with open(temporary, "w") as file:
        json.dump(manifest, file, separators=(",", ":"))
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, folder / _MANIFEST)
    named = {entry["file"] for entry in manifest["months"].values() if entry["file"]}
    now = time.time()
    for path in folder.glob("month-*.parquet"):
        if path.name not in named and now - path.stat().st_mtime > _KEEP_SUPERSEDED:
            path.unlink(missing_ok=True)


def month_bounds(month: str, closed_before: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """The UTC datetimes ``[start, end)`` of a month's closed days."""
    start = dt.datetime.combine(_month_start(month), dt.time(), dt.UTC)
    end = dt.datetime.combine(min(_month_end(month), closed_before), dt.time(), dt.UTC)
    return start, end
