"""Profiles computed by Spark equal the embedded engine's (steward.data.profiles.spark).

PySpark runs in local mode on two cores with several partitions, so every hour's profile is the
merge of partials from several Spark tasks. Exact fields are compared for equality, floating sums
to rounding, sketches against their stated bounds on the raw values.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import datasketches
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from steward import Steward
from steward.cli import cli
from steward.data.events import EventLog
from steward.data.profiles import (
    Binning,
    ColumnProfile,
    DatasetProfile,
    ProfileRow,
    ProfileStore,
    build_profiles,
    compare_profiles,
    fit_binnings,
    profile_frame,
)
from steward.data.profiles.spark import (
    build_event_profiles_spark,
    build_profiles_spark,
    read_event_log,
    require_pyspark,
    spark_session,
)
from steward.errors import ConfigError, InvalidInputError
from steward.monitoring.profiles import BUCKET, monitor_store, profile_context, reference_inputs
from tests.conftest import CONFIG

pytestmark = pytest.mark.slow

TELCO = Path(__file__).parent.parent / "src" / "steward" / "demo" / "data" / "telco-churn.csv"
NUMERIC = ["tenure", "MonthlyCharges", "TotalCharges"]
CATEGORICAL = ["Contract", "PaymentMethod", "InternetService", "customerID"]
EXACT = ["count", "null_count", "violation_count", "unseen_count", "infinite_count", "finite_count"]
SECONDS_PER_ROW = 6  # 7,043 rows over about 11.7 hours


def _needs_spark() -> None:
    """Skip without PySpark or Java, except on CI, where the Spark engine must be tested."""
    missing = []
    try:
        require_pyspark()
    except ConfigError:
        missing.append("pyspark")
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        missing.append("java")
    if missing and os.environ.get("CI"):
        pytest.fail(f"the Spark engine tests need {missing} on CI")
    if missing:
        pytest.skip(f"needs {missing}")


@pytest.fixture(scope="session")
def spark() -> Iterator[Any]:
    _needs_spark()
    os.environ["PYSPARK_PYTHON"] = sys.executable
    sql = require_pyspark()
    session = (
        sql.SparkSession.builder.master("local[2]")
        .appName("steward-tests")
        .config("spark.sql.shuffle.partitions", "4")
        .config("spark.default.parallelism", "4")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.session.timeZone", "UTC")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="module")
def telco() -> pd.DataFrame:
    frame = pd.read_csv(TELCO)
    frame["TotalCharges"] = pd.to_numeric(frame["TotalCharges"], errors="coerce")  # 11 blanks
    start = pd.Timestamp("2026-03-01 00:17", tz="UTC")
    frame["event_time"] = start + pd.to_timedelta(np.arange(len(frame)) * SECONDS_PER_ROW, "s")
    frame["model_version"] = 1 + np.arange(len(frame)) % 2
    return frame


@pytest.fixture(scope="module")
def binnings(telco: pd.DataFrame) -> dict[str, Binning]:
    """Bins fitted on a reference without two categories and with few customer ids, so the
    current rows bring unseen values: a few frequent ones and thousands of single ones."""
    reference = telco[
        (telco["PaymentMethod"] != "Mailed check") & (telco["Contract"] != "Two year")
    ].iloc[:1500]
    return fit_binnings(reference, [*NUMERIC, *CATEGORICAL], max_categories=50)


@pytest.fixture(scope="module")
def parquet_table(telco: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rows as a user's Parquet table: five files, rows of each hour spread over them."""
    folder = tmp_path_factory.mktemp("table")
    table = pa.Table.from_pandas(telco, preserve_index=False)
    for part in range(5):
        pq.write_table(table.take(np.arange(part, len(telco), 5)), folder / f"part-{part}.parquet")
    return folder


def _keyed(rows: list[ProfileRow]) -> dict[tuple[str, dt.datetime, int | None], ColumnProfile]:
    keyed = {(row.column, row.bucket_start, row.model_version): row.profile for row in rows}
    assert len(keyed) == len(rows), "one row per bucket, column and version"
    return keyed


def _assert_equal_profiles(spark_rows: list[ProfileRow], embedded_rows: list[ProfileRow]) -> None:
    ours, theirs = _keyed(spark_rows), _keyed(embedded_rows)
    assert sorted(ours, key=str) == sorted(theirs, key=str)
    for key, profile in ours.items():
        expected = theirs[key]
        for name in EXACT:
            assert getattr(profile, name) == getattr(expected, name), (key, name)
        assert profile.bin_counts.tolist() == expected.bin_counts.tolist(), key
        if profile.kind == "categorical":
            assert profile.category_counts == expected.category_counts
            continue
        assert (profile.minimum, profile.maximum) == (expected.minimum, expected.maximum), key
        assert profile.finite_mean == pytest.approx(expected.finite_mean, rel=1e-9, abs=1e-12)
        assert profile.finite_m2 == pytest.approx(expected.finite_m2, rel=1e-9, abs=1e-9)
        assert profile.bin_sums is not None and expected.bin_sums is not None
        np.testing.assert_allclose(profile.bin_sums, expected.bin_sums, rtol=1e-12, atol=1e-9)


def _hour(moments: pd.Series) -> pd.Series:
    return moments.dt.floor("1h").map(lambda stamp: stamp.to_pydatetime())


def _assert_sketches_within_bounds(rows: list[ProfileRow], telco: pd.DataFrame) -> None:
    """KLL quantiles within the stated rank error, and frequent-items bounds holding the true
    counts, both checked against the raw rows of each hour."""
    hours = _hour(telco["event_time"])
    error_type = datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES
    for row in rows:
        mask = (hours == row.bucket_start) & (telco["model_version"] == row.model_version)
        values = telco.loc[mask, row.column]
        profile = row.profile
        if profile.kind == "numeric":
            finite = np.sort(values.dropna().to_numpy(dtype=np.float64))
            epsilon = profile.quantile_rank_error
            for q in np.linspace(0.05, 0.95, 19):
                found = profile.quantile(q)
                low = np.searchsorted(finite, found, side="left") / finite.size
                high = np.searchsorted(finite, found, side="right") / finite.size
                assert low - epsilon <= q <= high + epsilon, (row.column, q, low, high)
            continue
        unseen = values[~values.isin(profile.binning.categories_) & values.notna()]
        truth = unseen.value_counts().to_dict()
        items = profile.unseen_sketch.get_frequent_items(error_type)
        for item, _, lower, upper in items:
            assert lower <= truth[item] <= upper, (row.column, item)
        threshold = profile.unseen_sketch.epsilon * profile.unseen_sketch.total_weight
        listed = {item for item, *_ in items}
        assert {item for item, count in truth.items() if count > threshold} <= listed


def test_frame_profiles_equal_embedded_engine(
    spark: Any, telco: pd.DataFrame, binnings: dict[str, Binning], parquet_table: Path
) -> None:
    frame = spark.read.parquet(str(parquet_table))
    assert frame.rdd.getNumPartitions() >= 2  # so each hour merges partials of several tasks
    rows = build_profiles_spark(frame, binnings, model_version_column="model_version")
    embedded = profile_frame(telco, binnings, model_version_column="model_version")
    _assert_equal_profiles(rows, embedded)
    hours = telco["event_time"].dt.floor("1h")
    assert len({row.bucket_start for row in rows}) == hours.nunique() >= 10
    # Independently of both engines: rows per hour and version, and the hour's extremes.
    expected = telco.assign(hour=_hour(telco["event_time"])).groupby(["hour", "model_version"])
    counts, maxima = expected.size(), expected["MonthlyCharges"].max()
    for row in rows:
        key = (row.bucket_start, row.model_version)
        assert row.profile.count == counts[key]
        if row.column == "MonthlyCharges":
            assert row.profile.maximum == maxima[key]
    _assert_sketches_within_bounds(rows, telco)


def test_drift_from_either_engines_profiles_raises_the_same_alarms(
    spark: Any, telco: pd.DataFrame, binnings: dict[str, Binning], parquet_table: Path
) -> None:
    reference_rows = telco[
        (telco["PaymentMethod"] != "Mailed check") & (telco["Contract"] != "Two year")
    ].iloc[:1500]
    reference = DatasetProfile.from_rows(profile_frame(reference_rows, binnings))
    current = telco.iloc[3500:]
    table = spark.read.parquet(str(parquet_table)).where(
        f"event_time >= '{current.event_time.min()}'"
    )
    ours = compare_profiles(
        reference, DatasetProfile.from_rows(build_profiles_spark(table, binnings))
    )
    theirs = compare_profiles(reference, DatasetProfile.from_rows(profile_frame(current, binnings)))
    assert ours.alarmed_columns == theirs.alarmed_columns
    assert {"PaymentMethod", "Contract"} <= set(ours.alarmed_columns)  # the categories unseen
    assert len(ours.results) == len(theirs.results) > 0
    for mine, other in zip(ours.results, theirs.results, strict=True):
        assert (mine.column, mine.method, mine.alarm) == (other.column, other.method, other.alarm)
        assert mine.statistic == pytest.approx(other.statistic, rel=1e-9, abs=1e-12)
        assert mine.p_value == pytest.approx(other.p_value, rel=1e-9, abs=1e-12)


def test_frame_profiles_are_one_row_per_bucket_in_column_order(
    spark: Any, telco: pd.DataFrame, binnings: dict[str, Binning], parquet_table: Path
) -> None:
    frame = spark.read.parquet(str(parquet_table)).repartition(7)
    rows = build_profiles_spark(frame, {"tenure": binnings["tenure"]}, bucket="3h")
    starts = [row.bucket_start for row in rows]
    assert starts == sorted(set(starts))
    assert all(start.hour % 3 == 0 for start in starts)
    assert sum(row.profile.count for row in rows) == len(telco)


def _event(index: int, row: pd.Series) -> dict[str, Any]:
    inputs = {
        name: None if pd.isna(row[name]) else row[name].item() if hasattr(row[name], "item")
        else row[name]
        for name in [*NUMERIC, *CATEGORICAL]
    }  # fmt: skip
    event: dict[str, Any] = {
        "kind": "prediction",
        "system": "churn",
        "id": f"p{index}",
        "entity_key": str(row["customerID"]),
        "event_time": row["event_time"].to_pydatetime(),
        "model_version": int(row["model_version"]),
        "inputs": json.dumps(inputs),
        "score": (index % 97) / 97,
        "decision": "churn" if index % 3 else "stay",
    }
    if index % 11 == 0:
        event["violations"] = [{"column": "tenure", "rule": "minimum"}]
    return event


@pytest.fixture(scope="module")
def event_log(telco: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """An event log of the rows as predictions: over ten hours back from now, two rolled Parquet
    files and a write-ahead tail, resent duplicates and one erased customer."""
    shift = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0) - dt.timedelta(
        hours=14
    )
    moved = telco.assign(event_time=telco["event_time"] - telco["event_time"].min() + shift)
    events = [_event(index, row) for index, row in moved.iterrows()]
    with EventLog(tmp_path_factory.mktemp("log") / "events", fsync=False) as log:
        log.append(events[:3000])
        log.flush()
        log.append(events[3000:5000])
        log.flush()
        middle = dt.datetime.now(dt.UTC)
        log.append(events[5000:] + events[:20])  # the first 20 again: kept by their first copy
        log.erase("churn", str(telco["customerID"][3]))
        yield log, middle


def _event_binnings(binnings: dict[str, Binning]) -> dict[str, Binning]:
    chosen = {name: binnings[name] for name in ["tenure", "TotalCharges", "Contract"]}
    chosen["score"] = Binning().fit(np.linspace(0.0, 1.0, 50))
    chosen["decision"] = Binning("categorical").fit(["stay"])
    chosen["lateness_seconds"] = Binning().fit(np.geomspace(1.0, 1e6, 30))
    return chosen


def test_event_log_profiles_equal_embedded_engine(
    spark: Any, event_log: tuple[Any, dt.datetime], binnings: dict[str, Binning]
) -> None:
    log, middle = event_log
    chosen = _event_binnings(binnings)
    events = read_event_log(spark, log, "churn")
    embedded_events = log.scan_received("prediction", "churn")
    assert events.count() == embedded_events.num_rows == 7043 - 1  # one customer erased

    rows, watermark = build_event_profiles_spark(events, chosen, None, until=middle)
    expected, expected_watermark = build_profiles(embedded_events, chosen, None, until=middle)
    assert watermark == expected_watermark == middle
    _assert_equal_profiles(rows, expected)
    assert sum(row.profile.violation_count for row in rows if row.column == "tenure") > 0

    later = read_event_log(spark, log, "churn", after=middle)
    rows, watermark = build_event_profiles_spark(later, chosen, middle)
    expected, expected_watermark = build_profiles(
        log.scan_received("prediction", "churn", after=middle), chosen, middle
    )
    assert watermark == expected_watermark
    assert watermark is not None and watermark > middle
    _assert_equal_profiles(rows, expected)


def test_cli_builds_the_same_store_with_either_engine(
    spark: Any, telco: pd.DataFrame, parquet_table: Path, tmp_path: Path
) -> None:
    reference = tmp_path / "reference.parquet"
    telco[[*NUMERIC, "Contract"]].iloc[:2000].to_parquet(reference)
    windows = {}
    for engine in ("duckdb", "spark"):
        result = CliRunner().invoke(
            cli,
            [
                "profiles", "build", str(parquet_table), "--reference", str(reference),
                "--store", str(tmp_path / engine), "--system", "churn", "--engine", engine,
            ],
        )  # fmt: skip
        assert result.exit_code == 0, result.output
        assert f"by {engine}" in result.output
        start = dt.datetime(2026, 3, 1, tzinfo=dt.UTC)
        windows[engine] = ProfileStore(tmp_path / engine).read(
            "churn", start, start + dt.timedelta(days=1)
        )
    duckdb, spark_window = windows["duckdb"], windows["spark"]
    assert duckdb.columns == spark_window.columns == sorted([*NUMERIC, "Contract"])
    for name in duckdb.columns:
        assert spark_window[name].count == duckdb[name].count == len(telco)
        assert spark_window[name].bin_counts.tolist() == duckdb[name].bin_counts.tolist()


def test_a_frame_missing_a_column_is_a_clear_error(
    spark: Any, binnings: dict[str, Binning], parquet_table: Path
) -> None:
    frame = spark.read.parquet(str(parquet_table)).drop("tenure")
    with pytest.raises(InvalidInputError, match=r"lacks the columns \['tenure'\]"):
        build_profiles_spark(frame, binnings)
    with pytest.raises(InvalidInputError, match="expected a pyspark DataFrame"):
        build_profiles_spark(pd.DataFrame(), binnings)


def test_spark_session_helper_reuses_the_running_session(spark: Any) -> None:
    assert spark_session() is spark


def test_missing_pyspark_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pyspark", None)
    monkeypatch.setitem(sys.modules, "pyspark.sql", None)
    with pytest.raises(ConfigError, match=r"pip install 'steward\[spark\]'"):
        require_pyspark()


@pytest.mark.skipif(
    not os.environ.get("STEWARD_TEST_SPARK_CONNECT"),
    reason="set STEWARD_TEST_SPARK_CONNECT=sc://host:15002 to test through Spark Connect",
)
def test_spark_connect_profiles_equal_embedded_engine(
    telco: pd.DataFrame, binnings: dict[str, Binning], parquet_table: Path
) -> None:
    """Through a Spark Connect server (started apart: ``$SPARK_HOME/sbin/start-connect-server.sh``
    with PYSPARK_PYTHON naming a Python that has Steward). Run on its own: a process holds either
    a classic or a Connect session."""
    _needs_spark()
    remote = spark_session(os.environ["STEWARD_TEST_SPARK_CONNECT"])
    assert type(remote).__module__.startswith("pyspark.sql.connect")
    frame = remote.read.parquet(str(parquet_table))
    rows = build_profiles_spark(frame, binnings, model_version_column="model_version")
    _assert_equal_profiles(
        rows, profile_frame(telco, binnings, model_version_column="model_version")
    )
    _assert_sketches_within_bounds(rows, telco)


@pytest.mark.parametrize("engine", ["duckdb", "spark"])
def test_cli_says_which_table_it_cannot_read(spark: Any, engine: str, tmp_path: Path) -> None:
    table = tmp_path / "table.parquet"
    table.write_text("tenure,event_time\n1,2026-01-01\n")
    reference = tmp_path / "reference.csv"
    reference.write_text("tenure\n1\n2\n")
    result = CliRunner().invoke(
        cli,
        [
            "profiles", "build", str(table), "--reference", str(reference),
            "--store", str(tmp_path / "store"), "--system", "churn", "--engine", engine,
        ],
    )  # fmt: skip
    assert result.exit_code == 1
    assert f"could not read '{table}' as Parquet" in result.output
    assert "Traceback" not in result.output


def test_cli_refresh_by_spark_fills_the_store_the_monitors_read(
    spark: Any, telco: pd.DataFrame, tmp_path: Path
) -> None:
    from sklearn.linear_model import LogisticRegression

    root = tmp_path / "workspace"
    root.mkdir()
    (root / "steward.yaml").write_text(CONFIG)
    steward = Steward.open(root, user="tester")
    steward.init()
    steward.apply()
    reference = telco[[*NUMERIC, "Contract", "customerID"]].iloc[:2000]
    churned = (telco["Churn"] == "Yes").iloc[:2000]
    model = LogisticRegression(max_iter=200).fit(reference[NUMERIC].fillna(0.0), churned)
    steward.register_model(model, system="churn", data=reference.assign(Churn=churned))
    steward.move_alias("churn", "champion", 1)
    shift = dt.datetime.now(dt.UTC) - dt.timedelta(hours=14) - telco["event_time"].min()
    events = [_event(index, row) for index, row in telco.assign(
        event_time=telco["event_time"] + shift).iterrows()]  # fmt: skip
    steward.events.append(events[:4000])
    steward.events.flush()  # some in Parquet files, the rest in the write-ahead tail
    steward.events.append(events[4000:])

    command = ["--workspace", str(root), "profiles", "refresh", "churn", "--settle-seconds", "0"]
    result = CliRunner().invoke(cli, [*command, "--engine", "spark"])
    assert result.exit_code == 0, result.output
    assert "by spark" in result.output

    # Where the monitors read, with their binnings (the reference's inputs plus lateness).
    store, binnings = monitor_store(
        steward, steward.events, "churn", reference_inputs(steward, "churn")
    )
    assert sorted(binnings) == sorted([*NUMERIC, "Contract", "lateness_seconds"])
    watermark = store.watermark("churn")
    assert watermark is not None
    files = store.hourly_files("churn")
    start, end = telco["event_time"].min() + shift - BUCKET, watermark + BUCKET
    expected, _ = build_profiles(
        steward.events.scan_received("prediction", "churn"), binnings, None, bucket=BUCKET,
        until=watermark,
    )  # fmt: skip
    _assert_equal_profiles(store.read_rows("churn", start, end), expected)

    # A monitor run goes on from Spark's watermark: nothing is profiled twice.
    context = profile_context(
        steward, steward.events, "churn", reference_inputs(steward, "churn"), settle=dt.timedelta(0)
    )
    assert store.hourly_files("churn") == files
    assert context.window(start, end)["tenure"].count == len(telco)
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0 and "0 profiles of churn by duckdb" in again.output
    steward.close()
