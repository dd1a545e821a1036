"""Bulk logging: durable events per second through ``POST /v1/systems/{system}/predictions:log``.

A real ``steward serve`` subprocess (``events_fsync`` on, a client-role token, a contract on the
system) receives batches of logged predictions from one client, one request at a time. Each event
carries the Telco features (19 columns) as inputs, an id, an entity key, a score, a decision and a
model version. The same events go as JSON (``application/json``) and as an Arrow IPC stream
(``application/vnd.apache.arrow.stream``); bodies are encoded before the clock starts, so the figure
is the server's: parse, validate against the contract, encode and append with one fsync per request.

Each run sends ``--batches`` requests of ``--batch`` events per body format, the formats interleaved
request by request so both see the same machine load; the figures are the median and range over
``--runs`` runs, with the events per CPU-second the server process used (the machine is shared:
the wall clock also counts other processes' turns). It prints figures; it asserts nothing::

    python benchmarks/bench_logging.py
    python benchmarks/bench_logging.py --runs 3 --batches 10 --batch 10000
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import yaml

from steward import Steward
from steward.data.contracts import infer_contract
from steward.demo import load_telco
from steward.governance.access import Role, add_identity, create_token

ARROW = "application/vnd.apache.arrow.stream"


def build_workspace(root: Path, features: pd.DataFrame) -> str:
    """A workspace whose ``churn`` system has a contract inferred from the features; a token."""
    contract = infer_contract(features, name="churn").to_dict()
    contract.pop("version")
    config = {
        "version": 1,
        "systems": [{"name": "churn", "task": "binary", "contract": contract}],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "steward.yaml").write_text(yaml.safe_dump(config))
    with Steward.open(root, user="bench") as steward:
        steward.init()
        steward.apply()
        add_identity(steward, "bench-client", Role.CLIENT, kind="service")
        return create_token(steward, "bench-client", expires_in=timedelta(hours=6)).secret


def start_server(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    environment = {**os.environ, "STEWARD_EVENTS_FSYNC": "true"}
    process = subprocess.Popen(
        [sys.executable, "-m", "steward", "--workspace", str(root), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=environment,
    )
    url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.1)
    process.kill()
    raise SystemExit("server did not start")


def batch_frame(features: pd.DataFrame, entities: pd.Series, size: int, tag: str) -> pd.DataFrame:
    """``size`` events: the envelope columns, then the features, rows cycling over the data."""
    rows = np.arange(size) % len(features)
    scores = np.random.default_rng(len(tag)).random(size)
    envelope = pd.DataFrame(
        {
            "id": [f"{tag}-{row}" for row in range(size)],
            "entity_key": entities.to_numpy()[rows],
            "score": scores,
            "decision": np.where(scores > 0.5, "contact", "none"),
            "model_version": np.ones(size, dtype="int64"),
        }
    )
    return pd.concat([envelope, features.iloc[rows].reset_index(drop=True)], axis=1)


def json_body(frame: pd.DataFrame, feature_names: list[str]) -> bytes:
    records = json.loads(frame.to_json(orient="records"))
    predictions = [
        {
            "id": record["id"],
            "entity_key": record["entity_key"],
            "score": record["score"],
            "decision": record["decision"],
            "model_version": record["model_version"],
            "inputs": {name: record[name] for name in feature_names},
        }
        for record in records
    ]
    return json.dumps({"predictions": predictions}).encode()


def arrow_body(frame: pd.DataFrame) -> bytes:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue()


def send(client: httpx.Client, body: bytes, content_type: str) -> float:
    started = time.perf_counter()
    response = client.post(
        "/v1/systems/churn/predictions:log", content=body, headers={"content-type": content_type}
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 200:
        raise SystemExit(f"{content_type} log failed: {response.status_code} {response.text[:400]}")
    return elapsed


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the server process has used so far (Linux ``/proc``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def summary(rates: list[float]) -> str:
    return (
        f"median {statistics.median(rates):>9,.0f} events/s "
        f"(range {min(rates):,.0f}-{max(rates):,.0f}; runs: "
        + ", ".join(f"{rate:,.0f}" for rate in rates)
        + ")"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batches", type=int, default=10, help="requests per format and run")
    parser.add_argument("--batch", type=int, default=10_000, help="events per request")
    parser.add_argument("--formats", default="json,arrow")
    args = parser.parse_args()
    formats = [name.strip() for name in args.formats.split(",") if name.strip()]

    frame, _ = load_telco()
    entities = frame["customerID"]
    features = frame.drop(columns=["customerID"])
    feature_names = list(features.columns)
    root = Path(tempfile.mkdtemp(prefix="steward-bench-logging-")) / "workspace"
    token = build_workspace(root, features)
    encoders = {
        "json": (lambda batch: json_body(batch, feature_names), "application/json"),
        "arrow": (arrow_body, ARROW),
    }
    bodies: dict[str, list[list[bytes]]] = {name: [] for name in formats}
    for name in formats:
        encode = encoders[name][0]
        for run in range(args.runs):
            bodies[name].append(
                [
                    encode(batch_frame(features, entities, args.batch, f"{name}-{run}-{index}"))
                    for index in range(args.batches)
                ]
            )
    sizes = {name: len(bodies[name][0][0]) / args.batch for name in formats}
    print(
        f"machine: {os.cpu_count()} cores; events_fsync = true; one client, one request at a time"
    )
    print(
        f"{args.runs} runs x {args.batches} requests x {args.batch:,} events per format; "
        + ", ".join(f"{name} {size:.0f} bytes/event" for name, size in sizes.items())
    )
    process, url = start_server(root)
    rates: dict[str, list[float]] = {name: [] for name in formats}
    per_cpu: dict[str, list[float]] = {name: [] for name in formats}
    try:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, timeout=300, headers=headers) as client:
            for name in formats:  # warm up: first request of each format, not timed
                warm = encoders[name][0](batch_frame(features, entities, 100, f"warm-{name}"))
                send(client, warm, encoders[name][1])
            for run in range(args.runs):
                elapsed = dict.fromkeys(formats, 0.0)
                cpu = dict.fromkeys(formats, 0.0)
                for index in range(args.batches):
                    for name in formats:
                        body = bodies[name][run][index]
                        before = cpu_seconds(process.pid)
                        elapsed[name] += send(client, body, encoders[name][1])
                        cpu[name] += cpu_seconds(process.pid) - before
                for name in formats:
                    rates[name].append(args.batches * args.batch / elapsed[name])
                    per_cpu[name].append(args.batches * args.batch / max(cpu[name], 1e-3))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=120)
    for name in formats:
        print(f"predictions:log {name:<6}: {summary(rates[name])}")
    # On a shared machine the wall clock counts other processes' turns; the server's own CPU
    # time per event does not (it includes the background roll into Parquet while it ran).
    for name in formats:
        print(
            f"server CPU, {name:<6}: {summary(per_cpu[name]).replace('events/s', 'events/CPU-s')}"
        )
    if "json" in rates and "arrow" in rates:
        ratios = [a / j for a, j in zip(rates["arrow"], rates["json"], strict=True)]
        print(f"arrow / json (same run): median {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
