"""Protected attributes beside the record: logged for the fairness monitor, never given to the model.

The ``churn`` system declares ``fairness.attributes: [segment]``; ``segment`` is not a column of
the Telco model. Predictions are served with a ``segment`` beside each record, chosen so that the
model's true positive rate is far lower in one segment; ``steward.loop.tick`` then finds the gap.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import yaml

from steward import Steward
from steward.data.events import EventLog
from steward.data.events.schemas import ATTRIBUTES_KEY
from steward.delivery.serving import Service
from steward.loop.tick import tick
from steward.monitoring.window import MonitorWindow
from steward.web import create_app

from .conftest import CONFIG

ARROW = "application/vnd.apache.arrow.stream"


@pytest.fixture
def watched(workspace: Steward, telco_model: object) -> Steward:
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["fairness"] = {"attributes": ["segment"], "max_gap": 0.1}
    config["systems"][0]["monitors"] = {"window": "1d", "every": "1h"}
    config["systems"][0]["policy"] = {"thresholds": [{"at": 0.5, "action": "contact"}]}
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    return workspace


@pytest.fixture
def service(watched: Steward) -> Iterator[Service]:
    running = Service(watched, watched.events)
    yield running
    running.close()


def records_of(frame: pd.DataFrame) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = json.loads(frame.to_json(orient="records"))
    return records


def test_attributes_beside_the_record_drive_a_fairness_breach_through_the_loop(
    watched: Steward,
    service: Service,
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: Any,
) -> None:
    frame, target = telco
    frame, truth = frame.head(3000), target.head(3000).to_numpy()
    direct = telco_model.predict_proba(frame.drop(columns=["customerID"]))[:, 1]
    # Segment b gets the churners the model misses, a those it catches; the rest split evenly.
    rng = np.random.default_rng(5)
    positive = truth == 1
    segment = np.where(
        positive, np.where(direct >= 0.5, "a", "b"), rng.choice(["a", "b"], len(frame))
    )
    expected_tpr = {
        name: float((direct[positive & (segment == name)] >= 0.5).mean()) for name in "ab"
    }
    assert expected_tpr == {"a": 1.0, "b": 0.0}

    now = datetime.now(UTC).replace(microsecond=0)
    start = now - timedelta(hours=20)
    records = records_of(frame)
    for index, record in enumerate(records):
        record["event_time"] = (start + timedelta(seconds=20 * index)).isoformat()
    attributes = [{"segment": str(name)} for name in segment]
    results = []
    for first in range(0, len(records), 500):
        chunk = slice(first, first + 500)
        results += service.predict("churn", records[chunk], attributes=attributes[chunk])
    # The model scored the records alone: the attributes change no score.
    np.testing.assert_allclose([r.score for r in results], direct, rtol=0, atol=1e-12)
    plain = service.predict("churn", records[:50])
    assert [r.score for r in plain] == [r.score for r in results[:50]]

    watched.events.append(
        [
            {"kind": "outcome", "system": "churn", "id": f"o{i}", "prediction_id": result.id,
             "event_time": start + timedelta(seconds=20 * i, minutes=5), "value": int(truth[i])}
            for i, result in enumerate(results)
        ]
    )  # fmt: skip
    watched.events.flush()
    stored = watched.events.scan("prediction", "churn").to_pandas().set_index("id")
    inputs = json.loads(stored.loc[results[0].id, "inputs"])
    assert inputs[ATTRIBUTES_KEY] == {"segment": segment[0]}
    assert "segment" not in inputs

    report = tick(watched, watched.events, now=now + timedelta(minutes=30), force_monitors=True)
    assert report.errors == []
    fairness = [r for r in report.monitor_results if r.monitor == "fairness"]
    assert [r.status for r in fairness] == ["breach"], [r.summary for r in fairness]
    assert any(alert.rule == "monitor:fairness" for alert in report.fired)
    groups = {g["group"]: g for g in fairness[0].details["attributes"]["segment"]["groups"]}
    # The monitor's rates, from the logged attributes, equal those computed here.
    assert groups["a"]["tpr"] == pytest.approx(expected_tpr["a"])
    assert groups["b"]["tpr"] == pytest.approx(expected_tpr["b"])
    assert fairness[0].details["missing_attributes"] == []
    # the other monitors read model inputs only: the attributes are not a column to them
    others = [r for r in report.monitor_results if r.monitor != "fairness"]
    assert others and all(ATTRIBUTES_KEY not in json.dumps(r.details) for r in others)
    day = (now - timedelta(days=1), now + timedelta(minutes=30))
    window = MonitorWindow(watched, watched.events, watched.system("churn"), *day, None, None)
    assert ATTRIBUTES_KEY not in window.inputs.columns and "tenure" in window.inputs.columns


def post(steward: Steward, events: EventLog, path: str, body: Any) -> httpx.Response:
    app = create_app(steward, events=events, max_request_bytes=2_000_000, insecure_local=True)
    if isinstance(body, pa.Table):
        sink = io.BytesIO()
        with pa.ipc.new_stream(sink, body.schema) as writer:
            writer.write_table(body)
        sent = {"content": sink.getvalue(), "headers": {"content-type": ARROW}}
    else:
        sent = {"json": body}

    async def send() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return await client.post(path, **sent)

    return asyncio.run(send())


def test_routes_take_known_attributes_and_name_unknown_ones(
    watched: Steward, telco: tuple[pd.DataFrame, pd.Series], tmp_path: Path
) -> None:
    frame, _ = telco
    records = records_of(frame.head(2))
    with EventLog(tmp_path / "events") as events:
        predict = "/v1/systems/churn/predict"
        refused = post(
            watched, events, predict, {"records": records, "attributes": [{"sex": "F"}, None]}
        )
        assert refused.status_code == 422, refused.text
        detail = refused.json()["detail"]
        assert "attributes[0] names attributes ['sex']" in detail and "segment" in detail
        short = post(watched, events, predict, {"records": records, "attributes": [{}]})
        assert short.status_code == 422 and "1 items for 2 records" in short.json()["detail"]
        reserved = [{**records[0], ATTRIBUTES_KEY: {"segment": "a"}}]
        clash = post(watched, events, predict, {"records": reserved})
        assert clash.status_code == 422 and "reserved key" in clash.json()["detail"]
        served = post(
            watched, events, predict, {"records": records, "attributes": [{"segment": "a"}, None]}
        )
        assert served.status_code == 200, served.text

        log = "/v1/systems/churn/predictions:log"
        body = {
            "predictions": [
                {"id": "l0", "inputs": {"tenure": 3}, "attributes": {"segment": "b"}},
                {"id": "l1", "inputs": {"tenure": 4}},
            ]
        }
        assert post(watched, events, log, body).status_code == 200
        body["predictions"][1]["attributes"] = {"age_band": "40s"}
        unknown = post(watched, events, log, body)
        assert unknown.status_code == 422, unknown.text
        assert "predictions[1].attributes names attributes ['age_band']" in unknown.json()["detail"]

        arrow = pa.table({"id": ["r0", "r1"], "tenure": [5, 6],
                          "attributes": [{"segment": "c"}, None]})  # fmt: skip
        assert post(watched, events, log, arrow).status_code == 200
        rows = {row["id"]: row for row in events.scan("prediction", "churn").to_pylist()}
        assert json.loads(rows["r0"]["inputs"]) == {"tenure": 5, ATTRIBUTES_KEY: {"segment": "c"}}
        assert json.loads(rows["r1"]["inputs"]) == {"tenure": 6}
        ids = [item["id"] for item in served.json()["predictions"]]
        assert json.loads(rows[ids[0]]["inputs"])[ATTRIBUTES_KEY] == {"segment": "a"}
        assert ATTRIBUTES_KEY not in json.loads(rows[ids[1]]["inputs"])
        assert json.loads(rows["l0"]["inputs"]) == {"tenure": 3, ATTRIBUTES_KEY: {"segment": "b"}}
        assert json.loads(rows["l1"]["inputs"]) == {"tenure": 4}
