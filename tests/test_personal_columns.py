"""Personal-data columns at the door: dropped or hashed in every stored byte, raw for the model.

A contract marks ``email`` (not a model input) and ``PaymentMethod`` (a model input) as
``personal: hash`` and ``ssn`` as ``personal: drop``. Records go in through the predict route,
``predictions:log`` as JSON (both the columnar and the exact reading) and as an Arrow stream; then
every file of the event log, write-ahead segments and Parquet alike, is read as raw bytes (and
each Parquet file decoded) to show that no raw value is stored, while each hashed value equals an
HMAC-SHA256 computed here with the workspace's key file.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import io
import json
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from steward import Steward
from steward.data.contracts import REDACTED, infer_contract
from steward.data.events import EventLog
from steward.errors import ConfigError
from steward.web import create_app

from .conftest import CONFIG

ARROW = "application/vnd.apache.arrow.stream"


def personal_config(frame: pd.DataFrame) -> dict[str, Any]:
    config = yaml.safe_load(CONFIG)
    contract = infer_contract(frame, name="churn", on_violation="reject").to_dict()
    contract.pop("version")
    contract["columns"]["PaymentMethod"]["personal"] = "hash"
    contract["columns"]["email"] = {"type": "string", "required": False, "personal": "hash"}
    contract["columns"]["ssn"] = {
        "type": "string",
        "required": False,
        "pattern": "^[0-9]{3}-[0-9]{2}-[0-9]{4}$",
        "on_violation": "flag",
        "personal": "drop",
    }
    config["systems"][0]["contract"] = contract
    return config


class Api:
    """The app in process, with its own event log, called through httpx's ASGI transport."""

    def __init__(self, steward: Steward, events: EventLog) -> None:
        self.app = create_app(
            steward, events=events, max_request_bytes=5_000_000, insecure_local=True
        )
        self.events = events

    def post(self, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                return await client.post(path, **kwargs)

        return asyncio.run(send())


@pytest.fixture
def served(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: object, tmp_path: Path
) -> Iterator[Api]:
    frame, _ = telco
    workspace.settings.config_path.write_text(yaml.safe_dump(personal_config(frame)))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    events = EventLog(tmp_path / "events")
    yield Api(workspace, events)
    events.close()


def with_personal(frame: pd.DataFrame, rows: range) -> list[dict[str, Any]]:
    """Telco records with a distinctive e-mail and a distinctive (pattern-breaking) ssn each."""
    records = json.loads(frame.iloc[list(rows)].to_json(orient="records"))
    for index, record in zip(rows, records, strict=True):
        record["email"] = f"zq{index:04d}.personal@example.org"
        record["ssn"] = f"SSN-QX7Z-{index:04d}"
        record["note"] = f"NOTE-KEPT-{index:04d}"  # not personal: the control, found as sent
    return records


def keyed(secret: bytes, value: str) -> str:
    return hmac.new(secret, value.encode(), hashlib.sha256).hexdigest()


def every_stored_byte(root: Path) -> list[tuple[Path, bytes]]:
    """Every file under the event log, as raw bytes; each Parquet file decoded to text too."""
    found = []
    for path in sorted(item for item in root.rglob("*") if item.is_file()):
        found.append((path, path.read_bytes()))
        if path.suffix == ".parquet":
            decoded = json.dumps(pq.read_table(path).to_pylist(), default=str).encode()
            found.append((path.with_suffix(".decoded"), decoded))
    return found


def assert_absent(root: Path, raw: list[str], kept: list[str]) -> None:
    """No raw personal value in any stored byte, while each kept value is found: the bytes read
    are the ones that hold the inputs, uncompressed (segments) or decoded (Parquet)."""
    files = every_stored_byte(root)
    everything = b"".join(data for _, data in files)
    assert all(value.encode() in everything for value in kept)
    for path, data in files:
        for value in raw:
            assert value.encode() not in data, f"{value!r} is stored in {path}"


def test_personal_columns_are_hashed_or_dropped_in_every_stored_byte(
    served: Api,
    workspace: Steward,
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: Any,
    tmp_path: Path,
) -> None:
    frame, _ = telco
    sent: dict[str, dict[str, Any]] = {}

    # 1. the predict route: the model scores the raw record
    records = with_personal(frame, range(0, 20))
    response = served.post("/v1/systems/churn/predict", json={"records": records})
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    direct = telco_model.predict_proba(pd.DataFrame(records).drop(columns=["customerID"]))[:, 1]
    np.testing.assert_allclose([p["score"] for p in predictions], direct, rtol=0, atol=1e-12)
    for prediction, record in zip(predictions, records, strict=True):
        sent[prediction["id"]] = record
        (flagged,) = prediction["violations"]  # the ssn breaks its pattern: flagged, not shown
        assert flagged["column"] == "ssn" and flagged["example"] == REDACTED
        assert record["ssn"] not in flagged["message"]

    # 2. predictions:log, JSON read column-wise (every record has an id) ...
    records = with_personal(frame, range(20, 30))
    body = {"predictions": [{"id": f"j{i}", "inputs": r} for i, r in enumerate(records)]}
    response = served.post("/v1/systems/churn/predictions:log", json=body)
    assert response.status_code == 200, response.text
    assert {item["example"] for item in response.json()["violations"]} == {REDACTED}
    sent.update({f"j{i}": record for i, record in enumerate(records)})
    # ... and the exact way (no ids: each is derived from the inputs as stored)
    records = with_personal(frame, range(30, 40))
    body = {"predictions": [{"inputs": r, "score": 0.5} for r in records]}
    response = served.post("/v1/systems/churn/predictions:log", json=body)
    assert response.status_code == 200, response.text
    exact = records

    # 3. predictions:log as an Arrow IPC stream, the inputs beside the envelope columns
    records = with_personal(frame, range(40, 50))
    table = pa.Table.from_pylist([{"id": f"a{i}", **r} for i, r in enumerate(records)])
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    response = served.post(
        "/v1/systems/churn/predictions:log",
        content=sink.getvalue(),
        headers={"content-type": ARROW},
    )
    assert response.status_code == 200, response.text
    sent.update({f"a{i}": record for i, record in enumerate(records)})

    key_file = workspace.settings.store_dir / "personal.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    secret = key_file.read_bytes()
    assert len(secret) == 32

    everything = [*sent.values(), *exact]
    raw = sorted(
        {r["email"] for r in everything}
        | {r["ssn"] for r in everything}
        | {r["PaymentMethod"] for r in everything}
    )
    kept = [r["note"] for r in everything]
    root = tmp_path / "events"
    assert not any(path.suffix == ".parquet" for path in root.rglob("*"))
    assert_absent(root, raw, kept)  # write-ahead segments
    served.events.flush()
    assert any(path.suffix == ".parquet" for path in root.rglob("*"))
    assert_absent(root, raw, kept)  # Parquet, raw and decoded

    stored = {row["id"]: row for row in served.events.scan("prediction", "churn").to_pylist()}
    assert len(stored) == len(sent) + len(exact)
    for identifier, record in sent.items():
        inputs = json.loads(stored[identifier]["inputs"])
        assert inputs["email"] == keyed(secret, record["email"])
        assert inputs["PaymentMethod"] == keyed(secret, record["PaymentMethod"])
        assert "ssn" not in inputs
        assert inputs["tenure"] == record["tenure"]  # what is not personal is stored as sent
    hashed = {json.loads(row["inputs"])["email"] for row in stored.values()}
    assert {keyed(secret, r["email"]) for r in exact} <= hashed
    logged_violations = [json.loads(stored[p["id"]]["violations"]) for p in predictions]
    assert all(v[0]["example"] == REDACTED for v in logged_violations)


def test_the_entity_key_cannot_be_marked_personal(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, _ = telco
    config = personal_config(frame)
    config["systems"][0]["contract"]["columns"]["customerID"]["personal"] = "hash"
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError) as caught:
        workspace.apply()
    message = str(caught.value)
    assert "'customerID' is the system's entity_key" in message
    assert "personal: hash" in message


def test_an_unknown_personal_mode_is_refused_with_the_allowed_ones() -> None:
    from steward.data.contracts import Contract

    with pytest.raises(ConfigError) as caught:
        Contract.from_dict({"columns": {"email": {"type": "string", "personal": "mask"}}})
    assert "column 'email'" in str(caught.value) and "'hash' or 'drop'" in str(caught.value)
