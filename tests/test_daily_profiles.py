"""Daily rollups: a window read from rolled days equals the merge of the same hourly profiles; late
rows, unrolled writes and month boundaries fall back to the hourly rows; volume is unchanged."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from steward.data.profiles import Binning, DatasetProfile, fit_binnings, profile_frame
from steward.data.profiles.store import ProfileRow, ProfileStore
from steward.render.queries import volume_series

START = dt.datetime(2026, 10, 27, tzinfo=dt.UTC)  # the days run across a month's end
DAY = dt.timedelta(days=1)


def frame_over(days: int, n_rows: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    offsets = np.sort(rng.integers(0, days * 86_400_000_000, n_rows))
    amount = rng.lognormal(3.0, 1.0, n_rows)
    amount[rng.random(n_rows) < 0.02] = np.nan
    return pd.DataFrame(
        {
            "event_time": START + pd.to_timedelta(offsets, unit="us"),
            "amount": amount,
            "plan": rng.choice(["basic", "plus", "pro", None], n_rows),
            "model_version": rng.choice([1, 2], n_rows),
        }
    )


def profile_rows(
    frame: pd.DataFrame, binnings: dict[str, Binning] | None = None
) -> list[ProfileRow]:
    binnings = binnings or fit_binnings(frame[["amount", "plan"]].iloc[:2_000])
    return profile_frame(frame, binnings, model_version_column="model_version")


def assert_same_window(rolled: DatasetProfile, hourly: DatasetProfile) -> None:
    assert rolled.columns == hourly.columns
    for name in hourly.columns:
        left, right = rolled[name], hourly[name]
        for field in ("count", "null_count", "violation_count", "unseen_count", "infinite_count"):
            assert getattr(left, field) == getattr(right, field), field
        assert np.array_equal(left.bin_counts, right.bin_counts)
        if left.kind == "numeric":
            assert (left.finite_count, left.minimum, left.maximum) == (
                right.finite_count,
                right.minimum,
                right.maximum,
            )
            assert left.mean == pytest.approx(right.mean, rel=1e-12)
            assert left.variance == pytest.approx(right.variance, rel=1e-9)
            assert left.bin_sums is not None and right.bin_sums is not None
            assert np.allclose(left.bin_sums, right.bin_sums, rtol=1e-9, atol=1e-9)
            bound = left.quantile_rank_error + right.quantile_rank_error
            for q in (0.1, 0.5, 0.9):
                assert right.quantile(q) <= left.quantile(min(q + bound, 1.0))
                assert left.quantile(max(q - bound, 0.0)) <= right.quantile(q)


def rolled_day_rows(store: ProfileStore, start: dt.datetime, end: dt.datetime) -> int:
    hourly = len(store.read_rows("churn", start, end))
    return hourly - len(store.read_rows("churn", start, end, daily=True))


def test_a_window_of_rolled_days_equals_the_merge_of_their_hourly_profiles(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    rows = profile_rows(frame_over(10, 30_000, seed=1))
    store.write("churn", rows, watermark=START + 10 * DAY)
    for start, end in [(START, START + 10 * DAY), (START + dt.timedelta(hours=5), START + 7 * DAY)]:
        assert rolled_day_rows(store, start, end) > 0  # days did come from the rollups
        hourly = DatasetProfile.from_rows(store.read_rows("churn", start, end))
        assert_same_window(store.read("churn", start, end), hourly)
        for version in (1, 2):
            assert_same_window(
                store.read("churn", start, end, model_versions=[version]),
                DatasetProfile.from_rows(
                    store.read_rows("churn", start, end), model_versions=[version]
                ),
            )
    manifest = json.loads((tmp_path / "system=churn" / "daily" / "manifest.json").read_text())
    assert sorted(manifest["months"]) == ["202610", "202611"]


def test_only_days_closed_by_the_watermark_are_rolled(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.write("churn", profile_rows(frame_over(4, 8_000, seed=2)), watermark=START + 2 * DAY)
    manifest = json.loads((tmp_path / "system=churn" / "daily" / "manifest.json").read_text())
    days = [day for month in manifest["months"].values() for day in month["days"]]
    assert days == ["2026-10-27", "2026-10-28"]
    store.write("churn", [], watermark=START + 4 * DAY)  # the watermark moves on: two more close
    manifest = json.loads((tmp_path / "system=churn" / "daily" / "manifest.json").read_text())
    days = [day for month in manifest["months"].values() for day in month["days"]]
    assert days == ["2026-10-27", "2026-10-28", "2026-10-29", "2026-10-30"]


def test_late_rows_for_a_rolled_day_are_read_before_and_after_the_next_roll(
    tmp_path: Path,
) -> None:
    store = ProfileStore(tmp_path)
    frame = frame_over(6, 12_000, seed=3)
    binnings = fit_binnings(frame[["amount", "plan"]].iloc[:2_000])
    store.write("churn", profile_rows(frame, binnings), watermark=START + 6 * DAY)
    late = profile_rows(frame.iloc[:300], binnings)  # first-day events, profiled again later
    store.write("churn", late, watermark=None)  # a build that stopped before rolling
    window = (START, START + 6 * DAY)
    assert store.read("churn", *window)["amount"].count == 12_300
    assert_same_window(
        store.read("churn", *window), DatasetProfile.from_rows(store.read_rows("churn", *window))
    )
    store.write("churn", [], watermark=START + 6 * DAY)  # the next build rolls the day again
    assert rolled_day_rows(store, *window) > 0
    assert store.read("churn", *window)["amount"].count == 12_300


def test_rollups_deleted_or_corrupt_manifest_fall_back_to_hourly_rows(tmp_path: Path) -> None:
    store = ProfileStore(tmp_path)
    store.write("churn", profile_rows(frame_over(3, 6_000, seed=4)), watermark=START + 3 * DAY)
    window = (START, START + 3 * DAY)
    expected = DatasetProfile.from_rows(store.read_rows("churn", *window))
    (tmp_path / "system=churn" / "daily" / "manifest.json").write_text("{not json")
    assert rolled_day_rows(store, *window) == 0
    assert_same_window(store.read("churn", *window), expected)
    shutil.rmtree(tmp_path / "system=churn" / "daily")
    assert_same_window(store.read("churn", *window), expected)


def test_volume_from_rolled_days_equals_volume_from_hourly_profiles(tmp_path: Path) -> None:
    frame = frame_over(40, 40_000, seed=5)
    store = ProfileStore(tmp_path / "reference-a")
    store.write("churn", profile_rows(frame), watermark=START + 39 * DAY)
    other = ProfileStore(tmp_path / "reference-b")  # a second reference profiling the same events
    other.write("churn", profile_rows(frame), watermark=None)  # whose build has not rolled yet
    roots = [tmp_path / "reference-a", tmp_path / "reference-b"]
    start, end = START + dt.timedelta(hours=3), START + 40 * DAY
    rolled = volume_series(roots, "churn", start, end, limit=30)  # a step of whole days
    for root in roots:
        shutil.rmtree(root / "system=churn" / "daily", ignore_errors=True)
    assert rolled == volume_series(roots, "churn", start, end, limit=30)
    inside = frame[(frame["event_time"] >= start) & (frame["event_time"] < end)]
    assert sum(count for _, count in rolled) == len(inside)
    assert all(moment.hour == 0 for moment, _ in rolled)  # drawn in whole days
