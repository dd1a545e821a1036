"""The prediction API in process (httpx ASGI transport) over the real stores and event log."""

from __future__ import annotations

import asyncio
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
from steward.data.contracts import infer_contract
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.web import create_app

from .conftest import CONFIG

PROBLEM = "application/problem+json"


def serving_config(
    frame: pd.DataFrame, *, action: str = "reject", canary_share: float = 0.0
) -> str:
    config = yaml.safe_load(CONFIG)
    contract = infer_contract(frame, name="churn", on_violation=action).to_dict()
    contract.pop("version")
    config["systems"][0]["contract"] = contract
    config["systems"][0]["policy"] = {
        "thresholds": [{"at": 0.5, "action": "contact"}],
        "default_action": "none",
        "holdout": 0.2,
        "salt": "test",
    }
    config["systems"][0]["traffic"] = {"canary_share": canary_share}
    return yaml.safe_dump(config, sort_keys=False)


class Api:
    """A synchronous face on the ASGI app, so tests read top to bottom."""

    def __init__(self, steward: Steward, events: EventLog) -> None:
        self.app = create_app(
            steward, events=events, max_request_bytes=2_000_000, insecure_local=True
        )
        self.app.state.service.refresh_seconds = 0.0  # see alias moves at once
        self.events = events

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def send() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://localhost"
            ) as client:
                return await client.request(method, path, **kwargs)

        return asyncio.run(send())

    def predict(self, records: list[dict[str, Any]]) -> httpx.Response:
        return self.request("POST", "/v1/systems/churn/predict", json={"records": records})


@pytest.fixture
def served(
    workspace: Steward, telco: tuple[pd.DataFrame, pd.Series], telco_model: object, tmp_path: Path
) -> Iterator[Api]:
    frame, _ = telco
    workspace.settings.config_path.write_text(serving_config(frame))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    events = EventLog(tmp_path / "events")
    yield Api(workspace, events)
    events.close()


def records_of(frame: pd.DataFrame, n: int) -> list[dict[str, Any]]:
    return json.loads(frame.head(n).to_json(orient="records"))


def test_served_scores_equal_the_model_called_directly(
    served: Api, telco: tuple[pd.DataFrame, pd.Series], telco_model: Any
) -> None:
    frame, _ = telco
    response = served.predict(records_of(frame, 200))
    assert response.status_code == 200, response.text
    scores = [item["score"] for item in response.json()["predictions"]]
    direct = telco_model.predict_proba(frame.head(200).drop(columns=["customerID"]))[:, 1]
    np.testing.assert_allclose(scores, direct, rtol=0, atol=1e-12)


def test_every_prediction_is_logged_with_its_decision(served: Api, telco) -> None:
    frame, _ = telco
    records = records_of(frame, 50)
    body = served.predict(records).json()["predictions"]
    logged = served.events.scan("prediction", "churn").to_pandas().set_index("id")
    assert len(logged) == 50
    for item, record in zip(body, records, strict=True):
        row = logged.loc[item["id"]]
        assert row["entity_key"] == record["customerID"]
        assert row["decision"] == item["decision"] and row["holdout"] == item["holdout"]
        assert row["model_version"] == 1
        assert json.loads(row["inputs"])["tenure"] == record["tenure"]
    holdout = [item for item in body if item["holdout"]]
    assert all(item["decision"] == "none" for item in holdout)


def test_holdout_arm_is_sticky_per_customer(served: Api, telco) -> None:
    frame, _ = telco
    records = records_of(frame, 40)
    first = [item["holdout"] for item in served.predict(records).json()["predictions"]]
    second = [item["holdout"] for item in served.predict(records).json()["predictions"]]
    assert first == second


def test_contract_rejects_bad_records_listing_every_violation(served: Api, telco) -> None:
    frame, _ = telco
    records = records_of(frame, 3)
    records[0]["tenure"] = -5
    records[2]["Contract"] = "Lifetime"
    response = served.predict(records)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["title"] == "Contract violation"
    assert {(e["record"], e["column"], e["rule"]) for e in problem["errors"]} == {
        (0, "tenure", "min"),
        (2, "Contract", "category"),
    }
    assert served.events.count("prediction", "churn") == 0


def test_flag_action_serves_and_logs_the_violation(
    workspace: Steward, telco, telco_model, tmp_path: Path
) -> None:
    frame, _ = telco
    workspace.settings.config_path.write_text(serving_config(frame, action="flag"))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    with EventLog(tmp_path / "events") as events:
        api = Api(workspace, events)
        records = records_of(frame, 2)
        records[1]["MonthlyCharges"] = 10_000.0
        response = api.predict(records)
        assert response.status_code == 200
        flagged = response.json()["predictions"][1]["violations"]
        assert [(v["column"], v["rule"]) for v in flagged] == [("MonthlyCharges", "max")]
        logged = events.scan("prediction", "churn").to_pandas().set_index("id")
        assert "MonthlyCharges" in logged.loc[response.json()["predictions"][1]["id"], "violations"]


def test_alias_move_takes_effect_without_restart(served: Api, workspace: Steward, telco) -> None:
    frame, target = telco
    workspace.register_model(train_churn_model(frame, target, C=0.01), system="churn")
    before = served.predict(records_of(frame, 1)).json()["predictions"][0]
    workspace.move_alias("churn", "champion", 2)
    after = served.predict(records_of(frame, 1)).json()["predictions"][0]
    assert (before["model_version"], after["model_version"]) == (1, 2)
    assert before["score"] != after["score"]


def test_shadow_scores_are_logged_off_the_hot_path(served: Api, workspace: Steward, telco) -> None:
    frame, target = telco
    workspace.register_model(train_churn_model(frame, target, C=0.01), system="churn")
    workspace.move_alias("churn", "shadow", 2)
    served_ids = [p["id"] for p in served.predict(records_of(frame, 10)).json()["predictions"]]
    served.app.state.service.close()  # waits for the shadow thread to finish its work
    shadows = served.events.scan("shadow", "churn").to_pandas()
    assert sorted(shadows["id"]) == sorted(served_ids)
    assert set(shadows["model_version"]) == {2}


def test_canary_takes_a_sticky_share_of_entities(
    workspace: Steward, telco, telco_model, tmp_path: Path
) -> None:
    frame, target = telco
    workspace.settings.config_path.write_text(serving_config(frame, canary_share=0.3))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.register_model(train_churn_model(frame, target, C=0.01), system="churn")
    workspace.move_alias("churn", "champion", 1)
    workspace.move_alias("churn", "canary", 2)
    with EventLog(tmp_path / "events") as events:
        api = Api(workspace, events)
        records = records_of(frame, 1000)
        first = [p["model_version"] for p in api.predict(records).json()["predictions"]]
        again = [p["model_version"] for p in api.predict(records).json()["predictions"]]
    assert first == again
    share = first.count(2) / len(first)
    assert 0.25 < share < 0.35  # 1000 draws at 0.3: five standard deviations is about 0.07


def test_outcomes_join_by_prediction_id_and_retries_collapse(served: Api, telco) -> None:
    frame, _ = telco
    ids = [p["id"] for p in served.predict(records_of(frame, 3)).json()["predictions"]]
    body = {
        "outcomes": [
            {"prediction_id": ids[0], "value": 1},
            {"entity_key": "7590-VHVEG", "value": 0, "event_time": "2026-03-03T00:00:00Z"},
        ]
    }
    first = served.request("POST", "/v1/systems/churn/outcomes", json=body)
    again = served.request("POST", "/v1/systems/churn/outcomes", json=body)
    assert first.status_code == again.status_code == 200
    assert first.json()["ids"] == again.json()["ids"]
    assert served.events.count("outcome", "churn") == 2


def test_outcome_for_an_unknown_prediction_is_a_404(served: Api) -> None:
    response = served.request(
        "POST",
        "/v1/systems/churn/outcomes",
        json={"outcomes": [{"prediction_id": "nope", "value": 1}]},
    )
    assert response.status_code == 404
    assert "no prediction with id 'nope'" in response.json()["detail"]


def test_logged_predictions_from_elsewhere_are_stored(served: Api) -> None:
    body = {
        "predictions": [
            {"id": f"ext-{i}", "entity_key": f"c{i}", "score": i / 10, "inputs": {"tenure": i}}
            for i in range(10)
        ]
    }
    response = served.request("POST", "/v1/systems/churn/predictions:log", json=body)
    assert response.status_code == 200 and response.json()["accepted"] == 10
    assert served.events.count("prediction", "churn") == 10


def test_open_inference_protocol_scores_like_the_native_endpoint(served: Api, telco) -> None:
    frame, _ = telco
    head = frame.head(5)
    inputs = []
    for column in head.columns:
        values = head[column].tolist()
        datatype = (
            "FP64"
            if head[column].dtype.kind == "f"
            else ("INT64" if head[column].dtype.kind == "i" else "BYTES")
        )
        inputs.append({"name": column, "shape": [5], "datatype": datatype, "data": values})
    response = served.request(
        "POST", "/v2/models/churn/infer", json={"id": "req-1", "inputs": inputs}
    )
    assert response.status_code == 200, response.text
    scores = response.json()["outputs"][0]["data"]
    native = [p["score"] for p in served.predict(records_of(frame, 5)).json()["predictions"]]
    np.testing.assert_allclose(scores, native, atol=1e-12)
    logged = set(served.events.scan("prediction", "churn").to_pandas()["id"])
    assert {"req-1", "req-1-4"} <= logged
    metadata = served.request("GET", "/v2/models/churn").json()
    assert metadata["versions"] == ["1"]
    assert {"name": "tenure", "datatype": "INT64", "shape": [-1]} in metadata["inputs"]


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status"),
    [
        ("POST", "/v1/systems/churn/predict", {"content": b"{not json"}, 400),
        ("POST", "/v1/systems/churn/predict", {"json": {"records": "many"}}, 422),
        ("POST", "/v1/systems/churn/predict", {"json": {}}, 422),
        ("POST", "/v1/systems/churn/predict", {"json": {"records": []}}, 422),
        ("POST", "/v1/systems/fraud/predict", {"json": {"records": [{"a": 1}]}}, 404),
        ("POST", "/v1/systems/churn/outcomes", {"json": {"outcomes": [{"value": 1}]}}, 422),
        ("POST", "/v1/systems/churn/predict", {"content": b"x" * 2_000_001}, 413),
        ("GET", "/v1/nothing-here", {}, 404),
    ],
)
def test_bad_requests_get_a_problem_document_never_a_500(
    served: Api, method: str, path: str, kwargs: dict[str, Any], status: int
) -> None:
    headers = {"content-type": "application/json"} if "content" in kwargs else {}
    response = served.request(method, path, headers=headers, **kwargs)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert set(problem) >= {"type", "title", "status", "detail", "instance"}
    assert problem["status"] == status and problem["detail"]


def test_open_inference_protocol_errors_take_the_protocols_shape(served: Api) -> None:
    body = {"inputs": [{"name": "a", "shape": [2], "datatype": "FP64", "data": [1]}]}
    response = served.request("POST", "/v2/models/churn/infer", json=body)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {"error": "input 'a': shape says 2 rows but data holds 1"}
    # refused before any route runs (too large a body), still in the protocol's shape
    large = served.request("POST", "/v2/models/churn/infer", content=b"x" * 2_000_001)
    assert large.status_code == 413 and large.headers["content-type"] == "application/json"
    assert large.json() == {
        "error": "the request body is over 2000000 bytes; send fewer records per request, or "
        "raise the max_request_bytes setting"
    }


def test_metrics_count_predictions_per_model_version(served: Api, telco) -> None:
    frame, _ = telco
    served.predict(records_of(frame, 4))
    text = served.request("GET", "/metrics").text
    assert 'steward_predictions_total{model_version="1",system="churn"} 4.0' in text
    assert 'method="POST",route="/v1/systems/{system}/predict",status="200"' in text
    assert "steward_http_request_seconds_bucket" in text


def test_health_and_readiness(served: Api) -> None:
    assert served.request("GET", "/healthz").json() == {"status": "ok"}
    assert served.request("GET", "/readyz").json() == {"status": "ok", "loop": "off"}
    assert served.request("GET", "/v2/health/ready").json() == {"ready": True}


def test_retention_deletes_days_past_the_setting(workspace: Steward, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from steward.cli.main import cli

    old = datetime.now(UTC) - timedelta(days=workspace.settings.retention_days + 2)
    with EventLog(workspace.settings.events_dir) as events:
        events.append(
            [
                {"kind": "prediction", "system": "churn", "id": "old", "event_time": old},
                {"kind": "prediction", "system": "churn", "id": "new"},
            ]
        )
        events.flush()
    result = CliRunner().invoke(
        cli,
        [
            "--workspace",
            str(workspace.settings.workspace),
            "--database-url",
            workspace.settings.database_url,
            "retention",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "removed 1 day partition(s)" in result.output
    with EventLog(workspace.settings.events_dir) as events:
        assert set(events.scan("prediction", "churn")["id"].to_pylist()) == {"new"}


def test_records_the_model_cannot_score_are_a_422_not_a_500(
    workspace: Steward, telco_model: object, tmp_path: Path
) -> None:
    workspace.register_model(telco_model, system="churn")  # no contract on this system
    workspace.move_alias("churn", "champion", 1)
    with EventLog(tmp_path / "events") as events:
        api = Api(workspace, events)
        response = api.predict([{"tenure": 3}])
    assert response.status_code == 422, response.text
    assert "model v1 of 'churn' could not score the records" in response.json()["detail"]
    assert "contract" in response.json()["detail"]


def test_a_version_number_too_large_to_store_is_a_404_page_not_a_500(
    workspace: Steward, tmp_path: Path
) -> None:
    with EventLog(tmp_path / "events") as events:
        response = Api(workspace, events).request(
            "GET", "/ui/systems/churn/versions/99999999999999999999999"
        )
    assert response.status_code == 404, response.text


# --- event times at the door ------------------------------------------------------------------

FAR = "9999-01-01T00:00:00+00:00"


def _refused_as_future(response: object, where: str) -> None:
    assert response.status_code == 422, response.text  # type: ignore[attr-defined]
    assert response.headers["content-type"].startswith(PROBLEM)  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert "9999-01-01" in text and "escape retention" in text and where in text


def test_a_prediction_dated_9999_is_refused_everywhere_it_can_enter(
    served: Api, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    frame, _ = telco
    record = {**records_of(frame, 1)[0], "event_time": FAR}
    _refused_as_future(served.predict([record]), "event_time")

    logged = {"id": "p-far", "score": 0.4, "event_time": FAR, "inputs": {"tenure": 3}}
    body = {"predictions": [logged]}
    _refused_as_future(
        served.request("POST", "/v1/systems/churn/predictions:log", json=body), "event_time"
    )

    far = pa.array([datetime(9999, 1, 1, tzinfo=UTC)], pa.timestamp("us", "UTC"))
    table = pa.table({"id": ["p-far"], "score": [0.4], "event_time": far})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    arrow = served.request(
        "POST", "/v1/systems/churn/predictions:log", content=sink.getvalue().to_pybytes(),
        headers={"content-type": "application/vnd.apache.arrow.stream"},
    )  # fmt: skip
    _refused_as_future(arrow, "event_time")

    outcome = {"id": "o-far", "entity_key": "c-1", "value": 1, "event_time": FAR}
    _refused_as_future(
        served.request("POST", "/v1/systems/churn/outcomes", json={"outcomes": [outcome]}),
        "event_time",
    )
    served.events.flush()
    assert served.events.count("prediction", "churn") == 0
    assert served.events.count("outcome", "churn") == 0


def test_an_hour_of_clock_skew_is_accepted(served: Api) -> None:
    soon = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    logged = {"id": "p-soon", "score": 0.4, "event_time": soon, "inputs": {"tenure": 3}}
    response = served.request(
        "POST", "/v1/systems/churn/predictions:log", json={"predictions": [logged]}
    )
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("days", [2, 365 * 7000])
def test_the_event_log_itself_refuses_future_events(served: Api, days: int) -> None:
    from steward.errors import InvalidInputError

    when = datetime.now(UTC) + timedelta(days=days)
    with pytest.raises(InvalidInputError, match="escape retention"):
        served.events.append(
            [{"kind": "outcome", "system": "churn", "id": "x", "event_time": when}]
        )
