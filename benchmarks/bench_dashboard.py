"""Dashboard page loads over a year of hourly data for a 30-feature system, through a real server.

Fills a workspace directly (fast): two registered versions with a reference sample, a year of hourly
stored monitor results (drift over 30 features with two methods each, data quality), daily
performance, estimated performance and uplift results, and a year of hourly profiles of 30 columns
in the monitors' profile store. Then starts `steward serve` and times each page over HTTP: median
and p95 of N loads after a first one timed apart, in milliseconds. The target is under 1 s per page,
and under 300 ms median for the year-long system page.

    python benchmarks/bench_dashboard.py [--loads 20] [--days 365] [--database-url URL] [--pages 365d]
"""

from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
from sqlalchemy import insert

from steward import Steward
from steward.data.profiles import ColumnProfile, fit_binnings
from steward.data.profiles.store import ProfileRow, ProfileStore
from steward.governance.access import Role, add_identity, create_token
from steward.model.registry import find_system, move_alias, register_version
from steward.store import ActionRow, AlertRow, MonitorResultRow

N_FEATURES = 30
SYSTEM = "bench"
CONFIG = f"""\
version: 1
systems:
  - name: {SYSTEM}
    task: binary
    owner: bench@example.com
    intended_use: Benchmark the dashboard.
    policy:
      thresholds: [{{at: 0.5, action: contact}}]
      holdout: 0.1
"""


def _reference(rng: np.random.Generator) -> pd.DataFrame:
    columns = {f"f{i:02d}": rng.normal(size=2_000) for i in range(N_FEATURES - 5)}
    columns |= {f"c{i}": rng.choice(["a", "b", "c", "d"], size=2_000) for i in range(5)}
    return pd.DataFrame(columns)


def _register(steward: Steward, reference: pd.DataFrame) -> str:
    buffer = io.BytesIO()
    reference.to_parquet(buffer)
    digest = steward.artifacts.put_bytes(buffer.getvalue())
    for version in (1, 2):
        register_version(
            steward.store,
            system=SYSTEM,
            actor="bench",
            flavor="sklearn",
            artifact_sha256=f"{version:064d}",
            artifact_name="model.skops",
            artifact_size=1,
            metrics={"roc_auc": 0.8 + version / 100},
            data={"reference_sha256": digest, "n_rows": len(reference), "sha256": digest},
        )
    move_alias(steward.store, SYSTEM, "champion", 1, actor="bench", reason="first")
    move_alias(steward.store, SYSTEM, "challenger", 2, actor="bench", reason="retrained")
    return digest


def _results(steward: Steward, end: datetime, days: int, rng: np.random.Generator) -> int:
    columns = [f"f{i:02d}" for i in range(N_FEATURES - 5)] + [f"c{i}" for i in range(5)]
    hours = days * 24
    with steward.store.write() as session:
        system_id = find_system(session, SYSTEM).id
    rows = []
    for hour in range(hours):
        window_end = end - timedelta(hours=hours - hour - 1)
        window_start = window_end - timedelta(hours=1)
        drifting = hour % 500 < 20
        results = [
            {
                "column": column,
                "method": method,
                "statistic": float(
                    abs(rng.normal(0.02, 0.01)) + (0.3 if drifting and j < 2 else 0)
                ),
                "p_value": 0.5,
                "adjusted_p_value": 0.5,
                "threshold": 0.1,
                "significant": drifting and j < 2,
                "alarm": drifting and j < 2,
            }
            for j, column in enumerate(columns)
            for method in ("ks", "psi")
        ]
        common = {"system_id": system_id, "window_start": window_start, "window_end": window_end}
        rows.append(
            {
                **common,
                "monitor": "drift",
                "status": "breach" if drifting else "ok",
                "summary": "drift" if drifting else "no drift",
                "details": {"results": results},
            }
        )
        rows.append(
            {
                **common,
                "monitor": "data_quality",
                "status": "ok",
                "summary": "ok",
                "details": {
                    "volume": 1000,
                    "violation_rate": float(rng.uniform(0, 0.02)),
                    "null_rates": {c: 0.0 for c in columns},
                },
            }
        )
        if hour % 24 == 23:
            auc = float(0.8 + rng.normal(0, 0.01))
            rows.append(
                {
                    **common,
                    "monitor": "performance",
                    "status": "ok",
                    "summary": "ok",
                    "details": {
                        "metrics": [
                            {
                                "metric": "roc_auc",
                                "value": auc,
                                "lower": auc - 0.02,
                                "upper": auc + 0.02,
                                "model_version": 1,
                                "status": "ok",
                                "n_labeled": 900,
                            }
                        ],
                        "unlabeled_share": 0.1,
                    },
                }
            )
            rows.append(
                {
                    **common,
                    "monitor": "estimated_performance",
                    "status": "ok",
                    "summary": "ok",
                    "details": {
                        "estimated_roc_auc": {
                            "value": auc,
                            "lower": auc - 0.03,
                            "upper": auc + 0.03,
                        }
                    },
                }
            )
            lift = float(rng.normal(-0.05, 0.01))
            rows.append(
                {
                    **common,
                    "monitor": "uplift",
                    "status": "ok",
                    "summary": "uplift",
                    "details": {
                        "uplift": lift,
                        "uplift_low": lift - 0.03,
                        "uplift_high": lift + 0.03,
                        "enough_data": True,
                    },
                }
            )
    with steward.store.write() as session:
        for offset in range(0, len(rows), 2_000):
            session.execute(insert(MonitorResultRow), rows[offset : offset + 2_000])
        for k in range(50):
            alert = AlertRow(
                system_id=system_id,
                rule="monitor:drift",
                state="resolved",
                summary=f"drift {k}",
                fired_at=end - timedelta(days=7 * k),
                last_seen_at=end - timedelta(days=7 * k),
            )
            session.add(alert)
            session.flush()
            session.add(
                ActionRow(
                    system_id=system_id,
                    alert_id=alert.id,
                    kind="notify",
                    status="done",
                    reason="sent",
                    actor="steward",
                    created_at=end - timedelta(days=7 * k),
                )
            )
    return len(rows)


def _profiles(
    steward: Steward,
    reference: pd.DataFrame,
    digest: str,
    end: datetime,
    days: int,
    rng: np.random.Generator,
) -> int:
    binnings = fit_binnings(reference)
    variants = {
        name: [
            ColumnProfile.from_values(
                reference[name].sample(200, random_state=int(seed)).to_numpy(), binning
            )
            for seed in rng.integers(0, 1_000_000, size=4)
        ]
        for name, binning in binnings.items()
    }
    store = ProfileStore(steward.settings.events_dir / "profiles" / f"reference-{digest[:16]}")
    hours = days * 24
    first = (end - timedelta(hours=hours)).replace(minute=0, second=0, microsecond=0)
    written = 0
    for month in range(0, hours, 24 * 30):
        rows = [
            ProfileRow(first + timedelta(hours=hour), name, variants[name][hour % 4], 1)
            for hour in range(month, min(hours, month + 24 * 30))
            for name in binnings
        ]
        store.write(SYSTEM, rows, watermark=end)
        written += len(rows)
    return written


def _serve(workspace: Path, database_url: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "STEWARD_DATABASE_URL": database_url, "STEWARD_LOOP_INTERVAL": "0"}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "steward",
            "--workspace",
            str(workspace),
            "serve",
            "--port",
            str(port),
        ],
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("the server did not start within 180 s")


def _time(client: httpx.Client, path: str, loads: int) -> tuple[float, float, float]:
    """The first load (imports, template compiling, nothing drawn yet) apart, then the median and
    p95 of ``loads`` more, in milliseconds."""
    started = time.perf_counter()
    client.get(path).raise_for_status()
    first = (time.perf_counter() - started) * 1000
    timings = []
    for _ in range(loads):
        started = time.perf_counter()
        client.get(path).raise_for_status()
        timings.append((time.perf_counter() - started) * 1000)
    timings.sort()
    p95 = timings[min(len(timings) - 1, int(np.ceil(0.95 * len(timings))) - 1)]
    return first, statistics.median(timings), p95


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=20)
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--database-url", default=None)
    parser.add_argument(
        "--pages",
        nargs="*",
        default=None,
        help="time only the pages whose name contains one of these, e.g. --pages 365d",
    )
    arguments = parser.parse_args()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as scratch:
        workspace = Path(scratch) / "workspace"
        workspace.mkdir()
        (workspace / "steward.yaml").write_text(CONFIG)
        steward = Steward.open(workspace, database_url=arguments.database_url, user="bench")
        steward.init()
        steward.apply()
        started = time.perf_counter()
        reference = _reference(rng)
        digest = _register(steward, reference)
        end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
        n_results = _results(steward, end, arguments.days, rng)
        n_profiles = _profiles(steward, reference, digest, end, arguments.days, rng)
        print(
            f"filled {arguments.days} days: {n_results:,} monitor results, {n_profiles:,} "
            f"profile rows, {N_FEATURES} features in {time.perf_counter() - started:.1f} s "
            f"({steward.store.dialect})"
        )
        process, url = _serve(workspace, steward.settings.database_url)
        cell_end = end
        cell = (
            f"/ui/systems/{SYSTEM}/drift/cell?column=f00&start="
            f"{(cell_end - timedelta(hours=1)).isoformat()}&end={cell_end.isoformat()}"
        )
        pages = {
            "overview /": "/",
            "system (7d)": f"/ui/systems/{SYSTEM}",
            "system (30d)": f"/ui/systems/{SYSTEM}?range=30d",
            "system (365d)": f"/ui/systems/{SYSTEM}?range=365d",
            "drift cell overlay": cell.replace("+", "%2B"),
            "versions + diff": f"/ui/systems/{SYSTEM}/versions?a=1&b=2",
            "version v1": f"/ui/systems/{SYSTEM}/versions/1",
            "review queue": f"/ui/systems/{SYSTEM}/reviews",
            "history": "/ui/history",
            "history page 5": f"/ui/history?system={SYSTEM}&page=5",
        }
        try:
            add_identity(steward, "bench-viewer", Role.VIEWER)
            token = create_token(steward, "bench-viewer", expires_in=timedelta(hours=1)).secret
            signed_in = {"Authorization": f"Bearer {token}"}
            with httpx.Client(base_url=url, timeout=60, headers=signed_in) as client:
                print(
                    f"{'page':<22}{'first ms':>10}{'median ms':>11}{'p95 ms':>10}"
                    f"  ({arguments.loads} loads after the first)"
                )
                for name, path in pages.items():
                    if arguments.pages and not any(part in name for part in arguments.pages):
                        continue
                    first, median, p95 = _time(client, path, arguments.loads)
                    flag = "" if p95 < 1000 else "  over 1 s"
                    print(f"{name:<22}{first:>10.0f}{median:>11.0f}{p95:>10.0f}{flag}")
                load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
                print(f"load average (1, 5, 15 min) after timing: {load} on {os.cpu_count()} CPUs")
        finally:
            process.terminate()
            process.wait(timeout=30)
            steward.close()


if __name__ == "__main__":
    main()
