"""Serving figures on this machine, in one run, against a real uvicorn server on loopback.

1. Logged predictions per second through ``POST /v1/systems/{system}/predictions:log`` (batches of
   ``--batch`` records, several client threads), every event durable before the response.
2. Single-record ``POST /v1/systems/{system}/predict`` latency p50/p99, over HTTP, against the bare
   model call (``pipeline.predict_proba`` on a one-row frame) measured in this process, so the cost
   Steward adds is seen next to what the model itself costs.
   The HTTP client sends a client-role token, as a production caller does, so the figure includes
   checking it.
3. The in-process hot path (``Service.predict``: contract check, model, policy, durable append)
   without HTTP, to separate Steward's work from the web framework's.

Run: ``python benchmarks/bench_serving.py [--requests 2000] [--batches 40] [--batch 10000]``.
It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import yaml

from steward import Steward
from steward.data.contracts import infer_contract
from steward.data.events import EventLog
from steward.delivery.serving import Service
from steward.demo import load_telco, train_churn_model
from steward.governance.access import Role, add_identity, create_token


def build_workspace(root: Path) -> tuple[Steward, Any, pd.DataFrame]:
    frame, target = load_telco()
    contract = infer_contract(frame, name="churn").to_dict()
    contract.pop("version")
    config = {
        "version": 1,
        "systems": [
            {
                "name": "churn",
                "task": "binary",
                "entity_key": "customerID",
                "contract": contract,
                "policy": {"thresholds": [{"at": 0.5, "action": "contact"}], "holdout": 0.1},
            }
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "steward.yaml").write_text(yaml.safe_dump(config))
    steward = Steward.open(root, user="bench")
    steward.init()
    steward.apply()
    model = train_churn_model(frame, target)
    steward.register_model(model, system="churn")
    steward.move_alias("churn", "champion", 1)
    return steward, model, frame


def percentiles(samples_ms: list[float]) -> str:
    p50, p99 = np.percentile(samples_ms, [50, 99])
    return f"p50 {p50:.3f} ms, p99 {p99:.3f} ms"


def interleaved(
    model: Any,
    steward: Steward,
    url: str,
    records: list[dict[str, Any]],
    n: int,
    root: Path,
    fsync: bool,
) -> dict[str, list[float]]:
    """Time the bare model, the in-process hot path and HTTP in turn for each record.

    Interleaving puts the three under the same machine load at every step, so their differences are
    fair on a busy machine; the per-step differences give what Steward adds.
    """
    features = [{k: v for k, v in r.items() if k != "customerID"} for r in records]
    samples: dict[str, list[float]] = {"bare": [], "in_process": [], "http": [], "model": []}
    with (
        EventLog(root / "events-in-process", fsync=fsync) as events,
        httpx.Client(base_url=url, timeout=60, headers=HEADERS) as client,
    ):
        service = Service(steward, events)
        service.predict("churn", records[:1])  # load the model first
        # The service reports the time of its own model call: total minus that is Steward's work.
        service.on_prediction = lambda _s, _v, latency_ms, _x: samples["model"].append(latency_ms)
        client.post("/v1/systems/churn/predict", json={"records": records[:1]})
        for index in range(n):
            record = records[index % len(records)]
            started = time.perf_counter()
            model.predict_proba(pd.DataFrame([features[index % len(features)]]))
            samples["bare"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            service.predict("churn", [record])
            samples["in_process"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            response = client.post("/v1/systems/churn/predict", json={"records": [record]})
            samples["http"].append((time.perf_counter() - started) * 1000)
            if response.status_code != 200:
                raise SystemExit(f"predict failed: {response.text}")
        service.close()
    return samples


#: The client's credential, made with the workspace before the server starts (``client_token``).
HEADERS: dict[str, str] = {}


def client_token(root: Path) -> None:
    """A token with the client role, as a production caller would hold, put in ``HEADERS``."""
    with Steward.open(root) as steward:
        add_identity(steward, "bench-client", Role.CLIENT, kind="service")
        token = create_token(steward, "bench-client", expires_in=timedelta(hours=6)).secret
    HEADERS["Authorization"] = f"Bearer {token}"


def start_server(root: Path, fsync: bool) -> tuple[subprocess.Popen[bytes], str]:
    client_token(root)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "steward", "--workspace", str(root), "serve", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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


def log_throughput(url: str, batches: int, batch: int, threads: int) -> float:
    rng = np.random.default_rng(0)
    bodies = [
        json.dumps(
            {
                "predictions": [
                    {
                        "id": f"t{thread}-b{index}-{row}",
                        "entity_key": f"c{row}",
                        "score": float(score),
                        "decision": "contact" if score > 0.5 else "none",
                        "model_version": 1,
                        "inputs": {"tenure": int(row % 72), "MonthlyCharges": 50.0},
                    }
                    for row, score in enumerate(rng.random(batch))
                ]
            }
        ).encode()
        for thread in range(threads)
        for index in range(batches // threads)
    ]
    chunks = [bodies[start::threads] for start in range(threads)]

    def send(chunk: list[bytes]) -> None:
        with httpx.Client(base_url=url, timeout=120, headers=HEADERS) as client:
            for body in chunk:
                response = client.post(
                    "/v1/systems/churn/predictions:log",
                    content=body,
                    headers={"content-type": "application/json"},
                )
                if response.status_code != 200:
                    raise SystemExit(f"log failed: {response.text[:300]}")

    workers = [threading.Thread(target=send, args=(chunk,)) for chunk in chunks]
    started = time.perf_counter()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    elapsed = time.perf_counter() - started
    return len(bodies) * batch / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--no-fsync",
        action="store_true",
        help="acknowledge once written to the OS (survives kill -9, not a crash)",
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="steward-bench-serving-"))
    steward, model, frame = build_workspace(root / "workspace")
    records = json.loads(frame.head(500).to_json(orient="records"))
    print(f"machine: {os.cpu_count()} cores; workspace {root}")

    fsync = not args.no_fsync
    print(f"events_fsync = {fsync}")
    process, url = start_server(root / "workspace", fsync)
    try:
        samples = interleaved(model, steward, url, records, args.requests, root, fsync)
        throughput = log_throughput(url, args.batches, args.batch, args.threads)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=60)
    steward.close()

    model_ms = np.array(samples["model"])
    in_process = np.array(samples["in_process"])
    http = np.array(samples["http"])
    print(f"{'bare model call (1 row)':<34}: {percentiles(samples['bare'])}")
    print(f"{'model call inside Service.predict':<34}: {percentiles(samples['model'])}")
    print(f"{'Service.predict in process':<34}: {percentiles(samples['in_process'])}")
    print(f"{'POST /predict over HTTP':<34}: {percentiles(samples['http'])}")
    print(f"{'added in process (total - model)':<34}: {percentiles(list(in_process - model_ms))}")
    print(f"{'added over HTTP (total - model)':<34}: {percentiles(list(http - model_ms))}")
    print(
        f"{'predictions:log throughput':<34}: {throughput:,.0f} durable events/s "
        f"({args.batches} batches of {args.batch}, {args.threads} client threads)"
    )


if __name__ == "__main__":
    main()
