"""Fuzz every operation of the published OpenAPI with schemathesis: no input produces a 5xx."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import schemathesis
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.generation import GenerationMode

from steward import Steward
from steward.data.contracts import infer_contract
from steward.data.events import EventLog
from steward.web import create_app

from .conftest import CONFIG


@pytest.fixture
def app(
    tmp_path: Path, telco: tuple[pd.DataFrame, pd.Series], telco_model: object
) -> Iterator[Any]:
    root = tmp_path / "workspace"
    root.mkdir()
    config = yaml.safe_load(CONFIG)
    contract = infer_contract(telco[0], name="churn").to_dict()
    contract.pop("version")
    config["systems"][0]["contract"] = contract
    config["systems"][0]["policy"] = {"thresholds": [{"at": 0.5, "action": "contact"}]}
    (root / "steward.yaml").write_text(yaml.safe_dump(config))
    steward = Steward.open(root, user="fuzzer")
    steward.init()
    steward.apply()
    steward.register_model(telco_model, system="churn")
    steward.move_alias("churn", "champion", 1)
    with EventLog(tmp_path / "events") as events:
        yield create_app(
            steward,
            events=events,
            max_request_bytes=1_000_000,
            insecure_local=True,
            allowed_hosts=["testserver", "localhost"],
        )
    steward.close()


def test_no_request_makes_the_server_fail(app: Any) -> None:
    """Every operation, fed schemathesis-generated requests (valid and invalid), answers < 500."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    checked = []
    for result, mode in itertools.product(schema.get_all_operations(), GenerationMode):
        operation = result.ok()

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=30, deadline=None, database=None, suppress_health_check=list(HealthCheck)
        )
        def exercise(case: Any) -> None:
            response = case.call()
            assert response.status_code < 500, (case.method, case.path, response.text)
            if response.status_code >= 400:
                content_type = response.headers["content-type"]
                if case.path.startswith("/v2"):  # the Open Inference Protocol's own shape
                    assert "error" in response.json(), response.text
                else:
                    assert "application/problem+json" in content_type, response.text

        try:
            exercise()
        except Unsatisfiable:
            # No invalid request exists for an operation without parameters or body.
            assert mode is GenerationMode.NEGATIVE and operation.method.upper() == "GET"
            continue
        checked.append(f"{operation.method.upper()} {operation.path} {mode.value}")
    assert "POST /v1/systems/{system}/predict negative" in checked
    assert "POST /v2/models/{name}/infer positive" in checked
