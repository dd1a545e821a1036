"""How fast, and in how much memory, does steward.drift compare two large frames, next to Evidently
and NannyML doing the same comparison in the same run?

Data: ``--rows`` rows (default 1,000,000) x 25 columns per side, seeded: 20 numeric (normal,
lognormal and gamma) and 5 categorical with 10 levels. The current side moves 3 numeric columns
(``num_00``, ``num_10``, ``num_15``) by 0.2 reference standard deviations and 10 points of share
in ``cat_0`` from its commonest level to its two rarest; the other 21 columns are redrawn from the
reference distributions.

Each measurement runs in a fresh process (this script with ``--only NAME``) that imports its tool,
builds the frames, then resets the kernel's peak-RSS mark (``/proc/self/clear_refs``) and times the
drift computation alone with ``time.perf_counter``: fit and compare, and reading the flagged
columns out of the result. "cpu s" is the process's CPU time over the same span (every thread),
steadier than wall time on a shared machine. "peak MB" is the process's peak RSS during that
computation (the two frames, about 0.4 GB at 1M rows, included); "+MB" is that peak minus the RSS
before it started, the memory the computation itself needed. RSS counts numpy and Arrow buffers,
which tracemalloc would miss. With ``--repeat N`` every row is measured N times, the rows taking
turns (so a change in the machine's load falls on all of them alike), and the table shows the
median and, in brackets, the range; ratios are taken between medians.

Rows:

- ``evidently``: ``Report([DataDriftPreset()])`` with default settings on the pandas frames (it
  picks normed Wasserstein for numeric columns and Jensen–Shannon for categorical ones above 1,000
  rows); ``steward-w-js``: ``compare`` with the same method per column (two calls, one per column
  kind); ``steward-w-js-all``: one ``compare(methods=["wasserstein", "jensen_shannon"])``, which
  also runs Jensen–Shannon on the numeric columns.
- ``nannyml``: ``UnivariateDriftCalculator`` with every method it offers (continuous: KS,
  Jensen–Shannon, Wasserstein, Hellinger; categorical: chi2, Jensen–Shannon, L-infinity,
  Hellinger), one chunk per side; ``steward-nannyml-set``: ``compare`` with the same methods less
  L-infinity, which Steward lacks.
- ``steward-profiles``: profile mode (``steward.data.profiles``): fit binnings on the reference, profile
  both sides, then ``drift_from_profiles`` for the same methods as ``steward-nannyml-set``.
  Statistics only: profile mode tests no significance except chi-square, so "flagged" there means
  a statistic whose lower bound is above its practical floor.
- ``sort-floor``: no drift at all, the floor under exact mode: ``np.sort`` of every numeric column
  of both frames once, on as many threads as Steward's exact mode uses (one per core, up to 8).
  Each Steward exact row is also given as a multiple of it ("x floor").

Peers are optional: a row whose tool is not installed is reported as skipped. They need their own
environment (see ``benchmarks/requirements-peers.txt``).

Run: ``python benchmarks/bench_drift_peers.py`` (``--rows``, ``--seed``, ``--tools``,
``--timeout``).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from importlib import metadata
from typing import Any

# The peers send usage telemetry by default; this machine has no network and a benchmark should
# not phone home anyway.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("NML_DISABLE_USAGE_LOGGING", "1")

import numpy as np
import pandas as pd

N_NUMERIC = 20
N_CATEGORICAL = 5
LEVELS = np.array([f"level_{i}" for i in range(10)], dtype=object)
LEVEL_SHARES = 0.75 ** np.arange(10) / np.sum(0.75 ** np.arange(10))
SHIFTED_NUMERIC = ("num_00", "num_10", "num_15")
SHIFTED_CATEGORICAL = ("cat_0",)
SHIFTED = (*SHIFTED_NUMERIC, *SHIFTED_CATEGORICAL)
MEAN_SHIFT_STDS = 0.2
MOVED_SHARE = 0.10

NANNYML_CONTINUOUS = ("kolmogorov_smirnov", "jensen_shannon", "wasserstein", "hellinger")
NANNYML_CATEGORICAL = ("chi2", "jensen_shannon", "l_infinity", "hellinger")
#: Steward's names for NannyML's methods, less L-infinity, which Steward does not have.
STEWARD_NUMERIC = ("ks", "jensen_shannon", "wasserstein", "hellinger")
STEWARD_CATEGORICAL = ("chi_square", "jensen_shannon", "hellinger")
STEWARD_NANNYML_SET = tuple(dict.fromkeys((*STEWARD_NUMERIC, *STEWARD_CATEGORICAL)))

#: Each row and the peer its ratios are taken against (None: it is a peer).
ROWS: dict[str, str | None] = {
    "evidently": None,
    "steward-w-js": "evidently",
    "steward-w-js-all": "evidently",
    "nannyml": None,
    "steward-nannyml-set": "nannyml",
    "steward-profiles": "nannyml",
    "sort-floor": None,
}
#: Rows that run Steward's exact mode, given as a multiple of the sort floor too.
EXACT_ROWS = ("steward-w-js", "steward-w-js-all", "steward-nannyml-set")


# --- data --------------------------------------------------------------------------------------


def draw_frame(rng: np.random.Generator, n_rows: int) -> pd.DataFrame:
    """20 numeric columns (10 normal, 5 lognormal, 5 gamma) and 5 categorical ones (10 levels)."""
    columns: dict[str, Any] = {}
    for i in range(N_NUMERIC):
        if i < 10:
            values = rng.normal(loc=float(i), scale=1.0 + i / 10, size=n_rows)
        elif i < 15:
            values = rng.lognormal(mean=0.0, sigma=0.5, size=n_rows)
        else:
            values = rng.gamma(shape=2.0, scale=1.0, size=n_rows)
        columns[f"num_{i:02d}"] = values
    for i in range(N_CATEGORICAL):
        # Indexing an object array shares the 10 level strings instead of making one per row.
        columns[f"cat_{i}"] = LEVELS[rng.choice(LEVELS.size, p=LEVEL_SHARES, size=n_rows)]
    return pd.DataFrame(columns)


def make_frames(n_rows: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The reference and a current drawn the same way, then shifted in ``SHIFTED``."""
    rng = np.random.default_rng(seed)
    reference = draw_frame(rng, n_rows)
    current = draw_frame(rng, n_rows)
    for name in SHIFTED_NUMERIC:
        current[name] = current[name] + MEAN_SHIFT_STDS * float(reference[name].std())
    shares = LEVEL_SHARES.copy()
    shares[0] -= MOVED_SHARE
    shares[-2:] += MOVED_SHARE / 2
    for name in SHIFTED_CATEGORICAL:
        current[name] = LEVELS[rng.choice(LEVELS.size, p=shares, size=n_rows)]
    return reference, current


def numeric_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if name.startswith("num_")]


def categorical_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if name.startswith("cat_")]


# --- the measured computations ---------------------------------------------------------------------
# Each ``prepare_*`` imports its tool (outside the measurement) and returns the computation: a
# function of (reference, current) returning (flagged columns, tests run, extra figures).

Computation = Callable[[pd.DataFrame, pd.DataFrame], tuple[list[str], int, dict[str, Any]]]


def prepare_evidently() -> Computation:
    from evidently import Report
    from evidently.presets import DataDriftPreset

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        snapshot = Report([DataDriftPreset()]).run(current_data=current, reference_data=reference)
        flagged, methods = [], set()
        tests = 0
        for metric in snapshot.dict()["metrics"]:
            config = metric["config"]
            if "column" not in config:
                continue  # the DriftedColumnsCount summary
            tests += 1
            methods.add(config["method"])
            if metric["value"] >= config["threshold"]:
                flagged.append(config["column"])
        return flagged, tests, {"methods": sorted(methods)}

    return run


def prepare_steward_w_js() -> Computation:
    from steward.data.drift import compare

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        flagged, tests = [], 0
        for columns, method in (
            (numeric_columns(reference), "wasserstein"),
            (categorical_columns(reference), "jensen_shannon"),
        ):
            report = compare(reference, current, columns=columns, methods=[method])
            flagged += report.alarmed_columns
            tests += len(report.results)
        return flagged, tests, {}

    return run


def prepare_steward_w_js_all() -> Computation:
    from steward.data.drift import compare

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        report = compare(reference, current, methods=["wasserstein", "jensen_shannon"])
        return report.alarmed_columns, len(report.results), {}

    return run


def prepare_nannyml() -> Computation:
    import warnings

    import nannyml

    # One chunk per side makes NannyML warn that the chunks are too few, once per column and method.
    warnings.filterwarnings("ignore", message="The resulting number of chunks is too low")

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        calculator = nannyml.UnivariateDriftCalculator(
            column_names=list(reference.columns),
            continuous_methods=list(NANNYML_CONTINUOUS),
            categorical_methods=list(NANNYML_CATEGORICAL),
            chunk_number=1,
        )
        calculator.fit(reference)
        frame = calculator.calculate(current).filter(period="analysis").to_df()
        alerts = [key for key in frame.columns if key[2] == "alert" and key[0] != "chunk"]
        flagged = sorted({key[0] for key in alerts if bool(frame[key].iloc[0])})
        chi2_flagged = sorted(
            {key[0] for key in alerts if key[1] == "chi2" and bool(frame[key].iloc[0])}
        )
        return flagged, len(alerts), {"flagged_by_chi2": chi2_flagged}

    return run


def prepare_steward_nannyml_set() -> Computation:
    from steward.data.drift import compare

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        report = compare(reference, current, methods=list(STEWARD_NANNYML_SET))
        return report.alarmed_columns, len(report.results), {}

    return run


def prepare_steward_profiles() -> Computation:
    import pyarrow as pa

    from steward.data.drift import DEFAULT_FLOORS
    from steward.data.profiles import DatasetProfile, drift_from_profiles, fit_binnings

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        started = time.perf_counter()
        reference_table = pa.Table.from_pandas(reference, preserve_index=False)
        current_table = pa.Table.from_pandas(current, preserve_index=False)
        binnings = fit_binnings(reference_table)
        # As a user profiles a frame: every column, on the profiles' own threads.
        reference_window = DatasetProfile.from_frame(reference_table, binnings)
        current_window = DatasetProfile.from_frame(current_table, binnings)
        profiles = {name: (reference_window[name], current_window[name]) for name in binnings}
        profiled = time.perf_counter()
        flagged, tests = [], 0
        for name, (reference_profile, current_profile) in profiles.items():
            numeric = binnings[name].kind_ == "numeric"
            for method in STEWARD_NUMERIC if numeric else STEWARD_CATEGORICAL:
                result = drift_from_profiles(reference_profile, current_profile, method)
                tests += 1
                if result.lower > DEFAULT_FLOORS[method]:
                    flagged.append(name)
        finished = time.perf_counter()
        return (
            list(dict.fromkeys(flagged)),
            tests,
            {
                "profile_seconds": profiled - started,
                "drift_from_profiles_seconds": finished - profiled,
            },
        )

    return run


def prepare_sort_floor() -> Computation:
    from concurrent.futures import ThreadPoolExecutor

    def run(reference: pd.DataFrame, current: pd.DataFrame) -> tuple[list[str], int, dict]:
        columns = [frame[name] for frame in (reference, current) for name in numeric_columns(frame)]
        # np.sort releases the GIL, so threads sort columns side by side, as Steward's do.
        workers = min(len(columns), os.cpu_count() or 1, 8)
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in pool.map(lambda series: np.sort(series.to_numpy(dtype=np.float64)), columns):
                pass  # each sorted copy is dropped at once, as exact mode drops its own
        return [], 0, {"sorted_columns": len(columns), "threads": workers}

    return run


PREPARE: dict[str, Callable[[], Computation]] = {
    "evidently": prepare_evidently,
    "steward-w-js": prepare_steward_w_js,
    "steward-w-js-all": prepare_steward_w_js_all,
    "nannyml": prepare_nannyml,
    "steward-nannyml-set": prepare_steward_nannyml_set,
    "steward-profiles": prepare_steward_profiles,
    "sort-floor": prepare_sort_floor,
}

METHODS = {
    "evidently": "DataDriftPreset defaults: wasserstein (num), jensen_shannon (cat)",
    "steward-w-js": "wasserstein (num), jensen_shannon (cat)",
    "steward-w-js-all": "wasserstein + jensen_shannon (num), jensen_shannon (cat)",
    "nannyml": "ks, js, wasserstein, hellinger (num); chi2, js, l_inf, hellinger (cat)",
    "steward-nannyml-set": "ks, js, wasserstein, hellinger (num); chi2, js, hellinger (cat)",
    "steward-profiles": "same as steward-nannyml-set, from 100-bin profiles",
    "sort-floor": "np.sort of each numeric column of both frames, once",
}


# --- memory ----------------------------------------------------------------------------------------


def _status_mb(field: str) -> float:
    with open("/proc/self/status") as status:
        match = re.search(rf"^{field}:\s+(\d+) kB", status.read(), re.MULTILINE)
    assert match, f"/proc/self/status has no {field}"
    return int(match.group(1)) / 1024


class PeakRss:
    """Peak RSS over a block: the kernel's high-water mark, reset at the start through
    ``/proc/self/clear_refs``; where that cannot be written, a thread sampling RSS every 2 ms."""

    def __enter__(self) -> PeakRss:
        self.before_mb = _status_mb("VmRSS")
        try:
            with open("/proc/self/clear_refs", "w") as clear:
                clear.write("5")  # 5 resets VmHWM to the current RSS
            self.how = "VmHWM reset by /proc/self/clear_refs"
            self._sampler: threading.Thread | None = None
        except OSError:
            self.how = "RSS sampled every 2 ms"
            self._sampled = self.before_mb
            self._stop = threading.Event()
            self._sampler = threading.Thread(target=self._sample, daemon=True)
            self._sampler.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self._sampled = max(self._sampled, _status_mb("VmRSS"))

    def __exit__(self, *exc: object) -> None:
        if self._sampler is None:
            self.peak_mb = _status_mb("VmHWM")
        else:
            self._stop.set()
            self._sampler.join()
            self.peak_mb = max(self._sampled, _status_mb("VmRSS"))


# --- one measurement, in this process ------------------------------------------------------------


def measure(name: str, n_rows: int, seed: int) -> dict[str, Any]:
    try:
        computation = PREPARE[name]()
    except ImportError as error:
        return {"name": name, "skipped": f"{error}; see benchmarks/requirements-peers.txt"}
    reference, current = make_frames(n_rows, seed)
    gc.collect()
    with PeakRss() as memory:
        started, cpu_started = time.perf_counter(), time.process_time()
        flagged, tests, extra = computation(reference, current)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    return {
        "name": name,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "before_mb": memory.before_mb,
        "peak_mb": memory.peak_mb,
        "delta_mb": memory.peak_mb - memory.before_mb,
        "memory_how": memory.how,
        "flagged": sorted(flagged),
        "tests": tests,
        **extra,
    }


# --- the driver ------------------------------------------------------------------------------------


def run_child(name: str, n_rows: int, seed: int, timeout: float) -> dict[str, Any]:
    command = [sys.executable, os.path.abspath(__file__), "--only", name]
    command += ["--rows", str(n_rows), "--seed", str(seed)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"name": name, "skipped": f"timed out after {timeout:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"name": name, "skipped": f"failed (exit {done.returncode}): {tail}"}
    return dict(json.loads(lines[-1][len("RESULT ") :]))


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for package in ("steward", "numpy", "pandas", "pyarrow", "scipy", "evidently", "nannyml"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def _flag_note(flagged: Sequence[str]) -> str:
    expected = set(SHIFTED)
    hits = expected & set(flagged)
    extra = sorted(set(flagged) - expected)
    note = f"{len(hits)}/{len(expected)} shifted"
    if extra:
        note += f", {len(extra)} unshifted" + (f" ({', '.join(extra)})" if len(extra) <= 3 else "")
    return note


def summarize(runs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """One row from its runs: the first run's fields, each figure's median and (low, high)."""
    done = [run for run in runs if "skipped" not in run]
    if not done:
        return dict(runs[-1])
    row = dict(done[0])
    for figure in ("seconds", "cpu_seconds", "peak_mb", "delta_mb"):
        values = [run[figure] for run in done]
        row[figure] = float(np.median(values))
        row[f"{figure}_range"] = (min(values), max(values))
    row["runs"] = len(done)
    row["failed_runs"] = [run["skipped"] for run in runs if "skipped" in run]
    return row


def _figure(row: dict[str, Any], figure: str, digits: int) -> str:
    low, high = row[f"{figure}_range"]
    if row["runs"] == 1:
        return f"{row[figure]:.{digits}f}"
    return f"{row[figure]:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def _ratios(name: str, row: dict[str, Any], results: dict[str, dict[str, Any]]) -> tuple[str, ...]:
    """Peer seconds / these seconds, this peak / the peer's, this +MB / the peer's, x floor."""
    peer = results.get(ROWS[name] or "")
    speedup = peak = delta = floor = ""
    if peer and "skipped" not in peer:
        speedup = f"{peer['seconds'] / row['seconds']:.1f}x"
        peak = f"{row['peak_mb'] / peer['peak_mb']:.2f}"
        delta = f"{row['delta_mb'] / peer['delta_mb']:.2f}"
    sort_floor = results.get("sort-floor")
    if name in EXACT_ROWS and sort_floor and "skipped" not in sort_floor:
        floor = f"{row['seconds'] / sort_floor['seconds']:.1f}x"
    return speedup, peak, delta, floor


def print_table(results: dict[str, dict[str, Any]]) -> None:
    header = (
        f"{'row':<20} {'tests':>5} {'seconds median (range)':>24} {'cpu s':>7} "
        f"{'peak MB median (range)':>24} {'+MB':>6} {'peer s / s':>10} {'peak / peer':>11} "
        f"{'+MB / peer':>10} {'x floor':>8}  flagged"
    )
    print(header)
    print("-" * len(header))
    for name in ROWS:
        row = results.get(name)
        if row is None:
            continue
        if "skipped" in row:
            print(f"{name:<20} skipped: {row['skipped']}")
            continue
        speedup, peak, delta, floor = _ratios(name, row, results)
        flagged = "" if name == "sort-floor" else _flag_note(row["flagged"])
        print(
            f"{name:<20} {row['tests']:>5} {_figure(row, 'seconds', 2):>24} "
            f"{row['cpu_seconds']:>7.2f} {_figure(row, 'peak_mb', 0):>24} {row['delta_mb']:>6.0f} "
            f"{speedup:>10} {peak:>11} {delta:>10} {floor:>8}  {flagged}"
        )
    print()
    for name, row in results.items():
        if "skipped" not in row and name != "sort-floor":
            print(f"{name}: {METHODS[name]}; flagged {', '.join(row['flagged']) or 'nothing'}")
        for failure in row.get("failed_runs", []):
            print(f"{name}: one run failed: {failure}")
    sorts = results.get("sort-floor", {})
    if "sorted_columns" in sorts:
        print(
            f"sort-floor: {sorts['sorted_columns']} columns sorted on {sorts['threads']} threads "
            f"in {sorts['seconds']:.3f} s"
        )
    profiles = results.get("steward-profiles", {})
    if "profile_seconds" in profiles:
        print(
            f"steward-profiles: {profiles['profile_seconds']:.2f} s to fit binnings and profile "
            f"both sides, {profiles['drift_from_profiles_seconds'] * 1000:.1f} ms for drift from "
            "the profiles (first run)"
        )
        exact = results.get("steward-nannyml-set", {})
        if "seconds" in exact:
            print(
                f"steward-profiles against steward-nannyml-set (the same tests in exact mode): "
                f"{profiles['seconds'] / exact['seconds']:.2f}x the time"
            )
    nanny = results.get("nannyml", {})
    if "flagged_by_chi2" in nanny:
        print(f"nannyml chi2 (p < 0.05) alone flagged: {', '.join(nanny['flagged_by_chi2'])}")


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows per side")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tools",
        default=",".join(ROWS),
        help=f"comma-separated rows to measure, from {', '.join(ROWS)}",
    )
    parser.add_argument("--repeat", type=int, default=1, help="measurements of each row")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds per row")
    parser.add_argument("--json", help="also write every run's figures to this file")
    parser.add_argument("--only", choices=list(ROWS), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.only:
        print("RESULT " + json.dumps(measure(args.only, args.rows, args.seed)), flush=True)
        return

    names = [name.strip() for name in args.tools.split(",") if name.strip()]
    unknown = sorted(set(names) - set(ROWS))
    if unknown:
        parser.error(f"unknown rows {unknown}; choose from {list(ROWS)}")
    if args.repeat < 1:
        parser.error(f"--repeat must be at least 1, got {args.repeat}")
    load = os.getloadavg()
    print(f"{args.rows:,} rows x {N_NUMERIC + N_CATEGORICAL} columns per side, seed {args.seed}")
    print(", ".join(f"{package} {version}" for package, version in versions().items()))
    print(f"{os.cpu_count()} cores, load average {load[0]:.1f} at start")
    print(f"shifted: {', '.join(SHIFTED)}; each row in a fresh process, drift computation only\n")
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    for turn in range(args.repeat):
        for name in names:
            row = run_child(name, args.rows, args.seed, args.timeout)
            runs[name].append(row)
            status = row.get("skipped") or (
                f"{row['seconds']:.2f} s (cpu {row['cpu_seconds']:.2f} s), "
                f"peak {row['peak_mb']:.0f} MB"
            )
            print(f"  run {turn + 1}/{args.repeat} {name}: {status}", flush=True)
    results = {name: summarize(name_runs) for name, name_runs in runs.items()}
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end\n")
    print_table(results)
    how = {row["memory_how"] for row in results.values() if "memory_how" in row}
    if how:
        print(f"\npeak RSS: {'; '.join(sorted(how))}")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"rows": args.rows, "versions": versions(), "runs": runs}, handle, indent=1)


if __name__ == "__main__":
    main()
