"""Serving the demo's champion three ways in one run, on this machine, over loopback HTTP.

The model is the demo's champion: a pipeline (scaling, one-hot encoding) ending in gradient-boosted
trees, trained on the shipped Telco data. It is served by

1. a bare FastAPI endpoint that calls ``predict_proba`` on the request's records (no checks, no log),
2. MLServer (``mlserver`` with ``mlserver-sklearn``, KServe's runtime) with its defaults, and again
   with its adaptive batching on (``max_batch_size`` and ``max_batch_time`` set to Steward's own
   ``batch_max_records`` and ``batch_max_wait_ms``),
3. ``steward serve``: contract check, policy with a holdout, durable (fsynced) log, a client-role
   token checked on every request.

Steward's batch worker runs a model call of up to ``SINGLE_THREAD_ROWS`` rows on one OpenMP
thread (``steward.delivery.batching.NativeThreads``); the others run with their libraries'
defaults (a team of threads per core). ``--peer-threads 1`` gives the bare endpoint and MLServer
``OMP_NUM_THREADS=1`` too (and the in-process bare call the same one-thread limit), to compare the
servers apart from that setting.

Each is loaded by closed-loop clients (one keep-alive connection each, one record per request),
one client, then 8, then 32, for ``--seconds`` each; the servers take turns, and each level is
repeated ``--rounds`` times, so all are measured under the same machine load. It prints the
median and range over rounds of requests/s, p50 and p99, and Steward's ratios against the others
in the same round. Then, without HTTP, it times the bare model call against ``Service.predict``
(contract, model, policy, durable append) in this process, to show what Steward adds to the call.

MLServer lives in its own venv (its pins must not reach Steward's lock)::

    python3 -m venv /work/mlserver-venv
    /work/mlserver-venv/bin/pip install mlserver==1.7.1 mlserver-sklearn==1.7.1 "uvloop<0.22" \\
        scikit-learn==<the version in Steward's venv>

Run: ``python benchmarks/bench_serving.py [--seconds 5] [--rounds 3] [--requests 1000]
[--clients 1,8,32] [--servers bare,mlserver,mlserver-batching] [--peer-threads 1]``.
It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import nullcontext
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import joblib
import numpy as np
import pandas as pd
import yaml
from threadpoolctl import ThreadpoolController

from steward import Steward
from steward.data.contracts import infer_contract
from steward.data.events import EventLog
from steward.delivery.serving import Service
from steward.demo import load_telco, train_churn_model
from steward.governance.access import Role, add_identity, create_token

POLICY = {"thresholds": [{"at": 0.5, "action": "contact"}], "holdout": 0.1}
MLSERVER = "/work/mlserver-venv/bin/mlserver"


def build_workspace(root: Path) -> tuple[Any, pd.DataFrame]:
    """A workspace serving the demo's champion behind a contract and a policy; the model too."""
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
                "policy": POLICY,
            }
        ],
    }
    root.mkdir(parents=True, exist_ok=True)
    (root / "steward.yaml").write_text(yaml.safe_dump(config))
    model = train_churn_model(frame, target, boosting=True)
    with Steward.open(root, user="bench") as steward:
        steward.init()
        steward.apply()
        steward.register_model(model, system="churn")
        steward.move_alias("churn", "champion", 1)
        add_identity(steward, "bench-client", Role.CLIENT, kind="service")
        token = create_token(steward, "bench-client", expires_in=timedelta(hours=6)).secret
    HEADERS["Authorization"] = f"Bearer {token}"
    return model, frame


#: The client's credential for Steward, made with the workspace before the server starts.
HEADERS: dict[str, str] = {}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_ready(process: subprocess.Popen[bytes], url: str, name: str) -> None:
    for _ in range(1200):
        if process.poll() is not None:
            raise SystemExit(f"{name} exited with {process.returncode} before it was ready")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    process.kill()
    raise SystemExit(f"{name} did not become ready")


# -- the three servers


def bare_app(model_path: str) -> Any:
    """The bare endpoint: FastAPI calling the model, as one would write it without Steward."""
    from fastapi import FastAPI

    model = joblib.load(model_path)
    app = FastAPI()

    @app.post("/predict")
    def predict(body: dict[str, Any]) -> dict[str, Any]:
        frame = pd.DataFrame(body["records"]).drop(columns=["customerID"], errors="ignore")
        return {"scores": model.predict_proba(frame)[:, 1].tolist()}

    return app


def peer_environment(threads: int | None) -> dict[str, str] | None:
    """The environment of the bare endpoint and MLServer: OpenMP limited when asked."""
    return None if threads is None else {**os.environ, "OMP_NUM_THREADS": str(threads)}


def start_bare(
    model_path: Path, log: Any, threads: int | None = None
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, __file__, "--serve-bare", str(model_path), "--port", str(port)],
        stdout=log,
        stderr=log,
        env=peer_environment(threads),
    )
    wait_ready(process, f"http://127.0.0.1:{port}/docs", "the bare endpoint")
    return process, port


def start_mlserver(
    root: Path,
    model_path: Path,
    batching: tuple[int, float] | None,
    log: Any,
    threads: int | None = None,
) -> tuple[subprocess.Popen[bytes], int]:
    folder = root / ("mlserver-batching" if batching else "mlserver")
    (folder / "churn").mkdir(parents=True)
    port = free_port()
    settings = {
        "http_port": port,
        "grpc_port": free_port(),
        "metrics_port": free_port(),
        "debug": False,
    }
    (folder / "settings.json").write_text(json.dumps(settings))
    model_settings: dict[str, Any] = {
        "name": "churn",
        "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": str(model_path), "version": "v1"},
    }
    if batching:
        model_settings["max_batch_size"], model_settings["max_batch_time"] = batching
    (folder / "churn" / "model-settings.json").write_text(json.dumps(model_settings))
    process = subprocess.Popen(
        [MLSERVER, "start", str(folder)], stdout=log, stderr=log, env=peer_environment(threads)
    )
    wait_ready(process, f"http://127.0.0.1:{port}/v2/models/churn/ready", "MLServer")
    return process, port


def start_steward(root: Path, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "steward", "--workspace", str(root), "serve", "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    wait_ready(process, f"http://127.0.0.1:{port}/readyz", "steward serve")
    return process, port


# -- request bodies, one record each


def steward_body(record: dict[str, Any]) -> bytes:
    return json.dumps({"records": [record]}).encode()


def mlserver_body(record: dict[str, Any]) -> bytes:
    inputs = []
    for name, value in record.items():
        if name == "customerID":
            continue
        if isinstance(value, str):
            datatype, parameters = "BYTES", {"content_type": "str"}
        else:
            datatype, parameters = ("INT64" if isinstance(value, int) else "FP64"), {}
        inputs.append(
            {
                "name": name,
                "shape": [1],
                "datatype": datatype,
                "data": [value],
                "parameters": parameters,
            }
        )
    request = {
        "parameters": {"content_type": "pd"},
        "inputs": inputs,
        "outputs": [{"name": "predict_proba"}],
    }
    return json.dumps(request).encode()


def score_of(name: str, answer: dict[str, Any]) -> float:
    if name == "bare":
        return float(answer["scores"][0])
    if name.startswith("mlserver"):
        return float(answer["outputs"][0]["data"][1])
    return float(answer["predictions"][0]["score"])


# -- the load: closed-loop clients on raw keep-alive connections (cheap, so the servers get the CPU)


async def client(
    port: int,
    path: str,
    bodies: list[bytes],
    headers: dict[str, str],
    deadline: float,
    latencies: list[float],
    errors: list[bytes],
    start: int,
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    head = "".join(f"{key}: {value}\r\n" for key, value in headers.items())
    index = start
    try:
        while time.perf_counter() < deadline:
            body = bodies[index % len(bodies)]
            index += 1
            request = (
                f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n{head}\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            status = await reader.readline()
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                name, _, value = line.decode("latin-1").partition(":")
                if name.lower() == "content-length":
                    length = int(value)
            answer = await reader.readexactly(length)
            latencies.append((time.perf_counter() - started) * 1000)
            if b" 200 " not in status:
                errors.append(answer[:300])
    finally:
        writer.close()


async def load(
    port: int, path: str, bodies: list[bytes], headers: dict[str, str], clients: int, seconds: float
) -> tuple[float, list[float], list[bytes]]:
    """Requests/s and latencies of ``clients`` closed-loop clients for ``seconds``."""
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    await asyncio.gather(
        *(
            client(port, path, bodies, headers, warm_until, [], [], 97 * number)
            for number in range(clients)
        )
    )
    latencies: list[float] = []
    errors: list[bytes] = []
    started = time.perf_counter()
    await asyncio.gather(
        *(
            client(port, path, bodies, headers, started + seconds, latencies, errors, 97 * number)
            for number in range(clients)
        )
    )
    return len(latencies) / (time.perf_counter() - started), latencies, errors


# -- in process: what Steward adds to the model call, without HTTP


def in_process(
    root: Path, model: Any, records: list[dict[str, Any]], n: int, threads: int | None = None
) -> dict[str, Any]:
    """Bare model call and ``Service.predict`` in turn, record by record, under the same load.

    The durable append inside ``Service.predict`` is timed too (``append``), to show how much of
    the added time it is. ``threads`` limits the bare call's OpenMP team, as ``--peer-threads``.
    """
    features = [{k: v for k, v in r.items() if k != "customerID"} for r in records]
    samples: dict[str, list[float]] = {"bare": [], "service": [], "model": [], "append": []}
    with Steward.open(root) as steward, EventLog(root / "events-in-process") as events:
        service = Service(steward, events)
        service.start()  # as the server does: the store is checked off the request path
        service.predict("churn", records[:1])
        service.on_prediction = lambda _s, _v, latency_ms, _x: samples["model"].append(latency_ms)
        append = events.append

        def timed_append(rows: Any) -> None:
            started = time.perf_counter()
            append(rows)
            samples["append"].append((time.perf_counter() - started) * 1000)

        events.append = timed_append  # type: ignore[method-assign,assignment]
        openmp = ThreadpoolController().select(user_api="openmp")
        for index in range(n):
            started = time.perf_counter()
            with nullcontext() if threads is None else openmp.limit(limits=threads):
                model.predict_proba(pd.DataFrame([features[index % len(features)]]))
            samples["bare"].append((time.perf_counter() - started) * 1000)
            started = time.perf_counter()
            service.predict("churn", [records[index % len(records)]])
            samples["service"].append((time.perf_counter() - started) * 1000)
        service.close()
    added = np.array(samples["service"]) - np.array(samples["model"])
    return {**samples, "added": list(added), "other": list(added - np.array(samples["append"]))}


def p(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q))


def spread(values: list[float], digits: int = 1) -> str:
    return f"{np.median(values):.{digits}f} [{min(values):.{digits}f}-{max(values):.{digits}f}]"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--requests", type=int, default=1000, help="in-process calls")
    parser.add_argument("--mlserver", default=MLSERVER, help="the mlserver command, own venv")
    parser.add_argument(
        "--servers",
        default="bare,mlserver,mlserver-batching",
        help="the servers measured beside Steward",
    )
    parser.add_argument(
        "--peer-threads",
        type=int,
        help="OMP_NUM_THREADS for the bare endpoint and MLServer (default: their own)",
    )
    parser.add_argument("--serve-bare", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_bare:  # the bare endpoint's own process
        import uvicorn

        uvicorn.run(
            bare_app(args.serve_bare), host="127.0.0.1", port=args.port, log_level="warning"
        )
        return

    root = Path(tempfile.mkdtemp(prefix="steward-bench-serving-"))
    model, frame = build_workspace(root / "workspace")
    model_path = root / "model.joblib"
    joblib.dump(model, model_path)
    records = json.loads(frame.head(500).to_json(orient="records"))
    with Steward.open(root / "workspace") as steward:
        batching = (steward.settings.batch_max_records, steward.settings.batch_max_wait_ms)
    print(f"machine: {os.cpu_count()} cores; workspace {root}")
    print(f"Steward batch_max_records {batching[0]}, batch_max_wait_ms {batching[1]}")
    peers = args.servers.split(",") if args.servers else []
    threads = args.peer_threads
    print(f"bare endpoint and MLServer: OMP_NUM_THREADS {threads or 'unset (their default)'}")

    log = (root / "servers.log").open("ab")
    servers: dict[str, tuple[subprocess.Popen[bytes], int, str, list[bytes], dict[str, str]]] = {}
    try:
        if "bare" in peers:
            process, port = start_bare(model_path, log, threads)
            servers["bare"] = (process, port, "/predict", [steward_body(r) for r in records], {})
        if Path(args.mlserver).exists():
            for name, batch in (("mlserver", None), ("mlserver-batching", batching)):
                if name not in peers:
                    continue
                ml_batch = None if batch is None else (batch[0], batch[1] / 1000)
                process, port = start_mlserver(root, model_path, ml_batch, log, threads)
                bodies = [mlserver_body(r) for r in records]
                servers[name] = (process, port, "/v2/models/churn/infer", bodies, {})
        else:
            print(f"MLServer not found at {args.mlserver}: its rows are left out")
        process, port = start_steward(root / "workspace", log)
        path = "/v1/systems/churn/predict"
        servers["steward"] = (process, port, path, [steward_body(r) for r in records], HEADERS)
        check_scores(servers, model, records)
        results = run_levels(servers, [int(c) for c in args.clients.split(",")], args)
    finally:
        for process, *_ in servers.values():
            process.send_signal(signal.SIGTERM)
        for process, *_ in servers.values():
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        log.close()
    report(results, list(servers))
    if args.requests <= 0:
        return
    samples = in_process(root / "workspace", model, records, args.requests, threads)
    print(f"\nin process, {args.requests} one-record calls (ms):")
    for label, key in (
        ("bare model call", "bare"),
        ("model call inside Service.predict", "model"),
        ("Service.predict", "service"),
        ("added by Steward (total - model)", "added"),
        ("  of which the durable append", "append"),
        ("  of which the rest", "other"),
    ):
        print(f"  {label:<36} p50 {p(samples[key], 50):7.3f}  p99 {p(samples[key], 99):7.3f}")


def check_scores(servers: dict[str, Any], model: Any, records: list[dict[str, Any]]) -> None:
    """Each server answers record 0 with the model's own score, or the comparison is void."""
    features = pd.DataFrame([records[0]]).drop(columns=["customerID"])
    expected = float(model.predict_proba(features)[0, 1])
    for name, (_, port, path, bodies, headers) in servers.items():
        answer = httpx.post(
            f"http://127.0.0.1:{port}{path}",
            content=bodies[0],
            headers={**headers, "content-type": "application/json"},
            timeout=60,
        )
        answer.raise_for_status()
        score = score_of(name, answer.json())
        if abs(score - expected) > 1e-9:
            raise SystemExit(f"{name} scored record 0 as {score}, the model as {expected}")
    print(f"every server scores record 0 as the model does ({expected:.6f})")


def run_levels(
    servers: dict[str, Any], levels: list[int], args: argparse.Namespace
) -> dict[int, dict[str, list[tuple[float, float, float]]]]:
    """Per level and server, per round: requests/s, p50 ms, p99 ms."""
    results: dict[int, dict[str, list[tuple[float, float, float]]]] = {}
    for clients in levels:
        results[clients] = {name: [] for name in servers}
        for _ in range(args.rounds):
            for name, (_, port, path, bodies, headers) in servers.items():
                rate, latencies, errors = asyncio.run(
                    load(port, path, bodies, headers, clients, args.seconds)
                )
                if errors:
                    raise SystemExit(f"{name}: {len(errors)} failed requests: {errors[0]!r}")
                results[clients][name].append((rate, p(latencies, 50), p(latencies, 99)))
    return results


def report(
    results: dict[int, dict[str, list[tuple[float, float, float]]]], names: list[str]
) -> None:
    for clients, by_server in results.items():
        rounds = len(next(iter(by_server.values())))
        print(f"\n{clients} client(s), median [range] of {rounds} rounds")
        print(f"  {'server':<18} {'requests/s':>22} {'p50 ms':>22} {'p99 ms':>22}")
        for name in names:
            rows = by_server[name]
            print(
                f"  {name:<18} {spread([r[0] for r in rows]):>22} "
                f"{spread([r[1] for r in rows]):>22} {spread([r[2] for r in rows]):>22}"
            )
        steward = by_server["steward"]
        for name in names:
            if name == "steward":
                continue
            other = by_server[name]
            rate = [s[0] / o[0] for s, o in zip(steward, other, strict=True)]
            p50 = [s[1] / o[1] for s, o in zip(steward, other, strict=True)]
            p99 = [s[2] / o[2] for s, o in zip(steward, other, strict=True)]
            print(
                f"  steward / {name:<17} throughput {spread(rate, 2)}x, "
                f"p50 {spread(p50, 2)}x, p99 {spread(p99, 2)}x"
            )


if __name__ == "__main__":
    main()
