"""Profile-mode drift over Parquet files of growing size: memory stays flat as the rows grow.

Run:  python benchmarks/bench_profile_parquet.py [--sizes 1000000,3000000,10000000]
      [--batch-rows 250000] [--exact-rows 1000000] [--directory DIR]

For each size it generates a Parquet file of 25 columns (20 numeric, 5 categorical; the second
half of the rows drifted by one standard deviation in 3 numeric columns, and onto two of the
eight categories in 1 categorical one), written in row groups of
``--batch-rows`` so no more than one batch is in memory, then, in a fresh process per size,
profiles it one row group at a time (``DatasetProfile.from_frame`` per batch, merged per column) against
binnings fitted on a 50,000-row reference, and compares the merged profile with the reference's
(``compare_profiles``). It prints wall time and the process's peak resident set size per size. The
peer, in the same run, is exact mode on ``--exact-rows`` rows: the file read whole into pandas and
compared with ``steward.data.drift.compare``, whose memory grows with the rows.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

N_NUMERIC, N_CATEGORICAL = 20, 5
CATEGORIES = np.array([f"plan-{i}" for i in range(8)])


def generate(n_rows: int, seed: int, drift_from: int | None = None) -> pd.DataFrame:
    """One batch of rows; rows at or after ``drift_from`` (batch-relative) drift."""
    rng = np.random.default_rng(seed)
    data: dict[str, np.ndarray] = {}
    for index in range(N_NUMERIC):
        values = rng.normal(index, 1.0 + index / 10, size=n_rows)
        if drift_from is not None and index < 3:
            values[drift_from:] += 1.0 + index / 10  # one sd
        data[f"x{index}"] = values
    for index in range(N_CATEGORICAL):
        weights = np.linspace(1.0, 2.0, len(CATEGORIES))
        codes = rng.choice(len(CATEGORIES), size=n_rows, p=weights / weights.sum())
        if drift_from is not None and index == 0:
            codes[drift_from:] = rng.choice(2, size=n_rows - drift_from)  # two plans only
        data[f"c{index}"] = CATEGORIES[codes]
    return pd.DataFrame(data)


def write_file(path: Path, n_rows: int, batch_rows: int) -> None:
    writer = None
    for number, first in enumerate(range(0, n_rows, batch_rows)):
        size = min(batch_rows, n_rows - first)
        half = n_rows // 2
        drift_from = min(max(half - first, 0), size) if first + size > half else None
        table = pa.Table.from_pandas(
            generate(size, 1000 + number, drift_from), preserve_index=False
        )
        writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
        writer.write_table(table, row_group_size=batch_rows)
    assert writer is not None
    writer.close()


def measure_profile(path: Path, batch_rows: int) -> dict[str, float]:
    from steward.data.profiles import DatasetProfile, compare_profiles, fit_binnings, merge_profiles

    began = time.perf_counter()
    reference = generate(50_000, 1)
    binnings = fit_binnings(reference)
    reference_profile = DatasetProfile.from_frame(reference, binnings)
    parts: dict[str, list] = {name: [] for name in binnings}
    n_rows = 0
    # One row group at a time, without pre-buffering: iter_batches with pre_buffer (the default)
    # keeps the file's buffers alive, so its memory grows with the file.
    file = pq.ParquetFile(path, pre_buffer=False)
    for index in range(file.metadata.num_row_groups):
        batch = file.read_row_group(index)
        window = DatasetProfile.from_frame(batch, binnings)
        n_rows += batch.num_rows
        for name, profile in window.profiles.items():
            parts[name].append(profile)
        # Keep the running merge, not every batch's profile: memory independent of the batches.
        parts = {name: [merge_profiles(found)] for name, found in parts.items()}
    current = DatasetProfile({name: found[0] for name, found in parts.items()})
    report = compare_profiles(reference_profile, current)
    return {
        "rows": n_rows,
        "seconds": time.perf_counter() - began,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "alarmed": len(report.alarmed_columns),
    }


def measure_exact(path: Path, n_rows: int) -> dict[str, float]:
    from steward.data.drift import compare

    began = time.perf_counter()
    reference = generate(50_000, 1)
    current = pq.ParquetFile(path).read().slice(0, n_rows).to_pandas()
    report = compare(reference, current)
    return {
        "rows": len(current),
        "seconds": time.perf_counter() - began,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "alarmed": len(report.alarmed_columns),
    }


def in_fresh_process(mode: str, path: Path, rows: int) -> dict[str, float]:
    """Peak RSS only grows in a process: measure each case in its own."""
    output = subprocess.run(
        [sys.executable, __file__, "--measure", mode, "--file", str(path), "--rows", str(rows)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return dict(json.loads(output.strip().splitlines()[-1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,3000000,10000000")
    parser.add_argument("--batch-rows", type=int, default=250_000)
    parser.add_argument("--exact-rows", type=int, default=1_000_000)
    parser.add_argument("--directory", default=None)
    parser.add_argument("--measure", choices=["profile", "exact"], help=argparse.SUPPRESS)
    parser.add_argument("--file", help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        path = Path(args.file)
        measure = measure_profile if args.measure == "profile" else measure_exact
        argument = args.batch_rows if args.measure == "profile" else args.rows
        print(json.dumps(measure(path, argument)))
        return
    directory = Path(args.directory or tempfile.mkdtemp(prefix="bench-profile-parquet-"))
    directory.mkdir(parents=True, exist_ok=True)
    sizes = [int(size) for size in args.sizes.split(",")]
    print(
        f"{'mode':<8} {'rows':>11} {'file MB':>8} {'write s':>8} {'drift s':>8} "
        f"{'peak RSS MB':>12} {'alarmed':>8}"
    )
    for size in sizes:
        path = directory / f"rows-{size}.parquet"
        began = time.perf_counter()
        if not path.exists():
            write_file(path, size, args.batch_rows)
        written = time.perf_counter() - began
        result = in_fresh_process("profile", path, size)
        print(
            f"{'profile':<8} {size:>11,} {path.stat().st_size / 1e6:>8.0f} {written:>8.1f} "
            f"{result['seconds']:>8.1f} {result['peak_rss_mb']:>12.0f} {result['alarmed']:>8}"
        )
        if size == args.exact_rows:
            exact = in_fresh_process("exact", path, size)
            print(
                f"{'exact':<8} {size:>11,} {path.stat().st_size / 1e6:>8.0f} {'':>8} "
                f"{exact['seconds']:>8.1f} {exact['peak_rss_mb']:>12.0f} {exact['alarmed']:>8}"
                f"   (profile/exact time {result['seconds'] / exact['seconds']:.2f}x, "
                f"RSS {result['peak_rss_mb'] / exact['peak_rss_mb']:.2f}x)"
            )


if __name__ == "__main__":
    main()
