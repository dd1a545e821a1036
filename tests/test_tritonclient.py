"""Triton's own client against a real `steward serve`: the Open Inference Protocol over HTTP (JSON
and binary tensors) and over gRPC, scoring as the model called directly and logging every row."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
import tritonclient.grpc as grpcclient
import tritonclient.http as httpclient
import yaml
from tritonclient.utils import (
    InferenceServerException,
    deserialize_bytes_tensor,
    serialize_byte_tensor,
)

from steward import Steward
from steward.data.events import EventLog
from steward.demo import train_churn_model
from steward.errors import InvalidInputError
from steward.governance.access import Role, add_identity, create_token
from steward.web.oip_binary import HEADER, decode_tensor, encode_tensor, split_body

from .conftest import CONFIG, Server, free_port

N_ROWS = 40


class ProtocolServer(Server):
    """`steward serve --grpc-port N` in a subprocess, signing callers in with tokens."""

    def __init__(self, workspace: Path, database_url: str) -> None:
        super().__init__(workspace, database_url, insecure_local=False)
        self.grpc_port = free_port()

    def start(self) -> None:
        if self.log_handle is None:
            self.log_handle = self.log.open("ab")
        command = [sys.executable, "-m", "steward", "--workspace", str(self.workspace), "serve"]
        command += ["--port", str(self.port), "--grpc-port", str(self.grpc_port)]
        self.process = subprocess.Popen(
            command,
            env={**os.environ, "STEWARD_DATABASE_URL": self.database_url},
            stdout=subprocess.DEVNULL,
            stderr=self.log_handle,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.kill()
        raise AssertionError("the server did not become ready within 60 s")


@pytest.fixture(scope="module")
def resting_model(telco: tuple[pd.DataFrame, pd.Series]) -> object:
    """Another model, registered as version 2 and never made champion."""
    return train_churn_model(*telco, C=0.1)


@pytest.fixture
def running(
    workspace: Steward, telco_model: object, resting_model: object
) -> Iterator[ProtocolServer]:
    config = yaml.safe_load(CONFIG)
    config["systems"][0]["policy"] = {
        "thresholds": [{"at": 0.5, "action": "contact"}],
        "holdout": 0.1,
    }
    workspace.settings.config_path.write_text(yaml.safe_dump(config))
    workspace.apply()
    workspace.register_model(telco_model, system="churn")
    workspace.register_model(resting_model, system="churn")  # version 2: registered, not serving
    workspace.move_alias("churn", "champion", 1)
    server = ProtocolServer(workspace.settings.workspace, workspace.settings.database_url)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture
def tokens(workspace: Steward) -> dict[Role, str]:
    made = {}
    for role in (Role.VIEWER, Role.CLIENT):
        add_identity(workspace, f"holder-{role.label}", role)
        made[role] = create_token(
            workspace, f"holder-{role.label}", expires_in=timedelta(hours=1)
        ).secret
    return made


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def datatype_of(column: pd.Series) -> str:
    return {"f": "FP64", "i": "INT64", "b": "BOOL"}.get(column.dtype.kind, "BYTES")


def triton_inputs(module: Any, frame: pd.DataFrame, *, binary: bool = True) -> list[Any]:
    """One tensor per column, as a Triton user builds them from a frame."""
    inputs = []
    for name in frame.columns:
        datatype = datatype_of(frame[name])
        values = frame[name].to_numpy(dtype=object if datatype == "BYTES" else None)
        tensor = module.InferInput(name, [len(frame)], datatype)
        if module is httpclient:
            tensor.set_data_from_numpy(values, binary_data=binary)
        else:
            tensor.set_data_from_numpy(values)
        inputs.append(tensor)
    return inputs


def direct_scores(model: Any, frame: pd.DataFrame) -> np.ndarray:
    return np.asarray(model.predict_proba(frame.drop(columns=["customerID"]))[:, 1])


def logged_predictions(server: ProtocolServer, workspace: Steward) -> pd.DataFrame:
    server.stop()  # rolls the server's segments into Parquet
    with EventLog(workspace.settings.events_dir) as events:
        return events.scan("prediction", "churn").to_pandas().set_index("id")


def text(value: bytes | str) -> str:
    """A BYTES element as text: Triton's client gives bytes from binary outputs, str from JSON."""
    return value.decode() if isinstance(value, bytes) else value


def request_ids(request_id: str, n_rows: int) -> list[str]:
    return [request_id] + [f"{request_id}-{index}" for index in range(1, n_rows)]


def test_tritonclient_http_scores_as_the_model_with_json_and_binary_tensors(
    running: ProtocolServer,
    workspace: Steward,
    tokens: dict[Role, str],
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: Any,
) -> None:
    frame = telco[0].head(N_ROWS)
    direct = direct_scores(telco_model, frame)
    client = httpclient.InferenceServerClient(f"127.0.0.1:{running.port}")
    # tritonclient.http adds its own headers to the dict it is given: a copy for each request.
    headers = bearer(tokens[Role.CLIENT])
    try:
        assert client.is_server_live() and client.is_server_ready()
        assert client.is_model_ready("churn", headers=headers)
        assert client.is_model_ready("churn", "1", headers=headers)
        metadata = client.get_model_metadata("churn", headers=headers)
        assert metadata["versions"] == ["1", "2"]
        assert {output["name"] for output in metadata["outputs"]} == {"score", "decision"}
        answers = {}
        # JSON inputs and JSON outputs; binary inputs and outputs (Triton's default); binary
        # inputs with JSON outputs and a version in the path; a gzip-compressed binary request.
        for request_id, binary_in, binary_out, version, compression in [
            ("http-json", False, False, "", None),
            ("http-binary", True, True, "", None),
            ("http-mixed", True, False, "1", None),
            ("http-gzip", True, True, "", "gzip"),
        ]:
            outputs = [
                httpclient.InferRequestedOutput("score", binary_data=binary_out),
                httpclient.InferRequestedOutput("decision", binary_data=binary_out),
            ]
            result = client.infer(
                "churn",
                triton_inputs(httpclient, frame, binary=binary_in),
                model_version=version,
                outputs=outputs,
                request_id=request_id,
                headers=dict(headers),
                request_compression_algorithm=compression,
            )
            response = result.get_response()
            assert response["id"] == request_id and response["model_version"] == "1"
            binary_sizes = [
                output.get("parameters", {}).get("binary_data_size")
                for output in response["outputs"]
            ]
            assert all(size is not None for size in binary_sizes) is binary_out
            np.testing.assert_allclose(result.as_numpy("score"), direct, rtol=0, atol=1e-12)
            answers[request_id] = result
        # No outputs named: Triton's client asks for every output in binary form.
        plain = client.infer(
            "churn", triton_inputs(httpclient, frame), request_id="http-all", headers=dict(headers)
        )
        np.testing.assert_allclose(plain.as_numpy("score"), direct, rtol=0, atol=1e-12)
        answers["http-all"] = plain
    finally:
        client.close()
    logged = logged_predictions(running, workspace)
    assert len(logged) == N_ROWS * len(answers)
    for request_id, result in answers.items():
        assert_logged_as_answered(logged, request_id, result, direct, frame)


def assert_logged_as_answered(
    logged: pd.DataFrame, request_id: str, result: Any, direct: np.ndarray, frame: pd.DataFrame
) -> None:
    """One prediction event per row of the request, with the score and decision it answered."""
    rows = logged.loc[request_ids(request_id, len(frame))]
    np.testing.assert_allclose(rows["score"], direct, rtol=0, atol=1e-12)
    decisions = [text(value) for value in result.as_numpy("decision")]
    assert decisions == ["" if pd.isna(value) else value for value in rows["decision"]]
    assert list(rows["entity_key"]) == list(frame["customerID"])


def test_tritonclient_grpc_scores_as_the_model_and_logs_every_row(
    running: ProtocolServer,
    workspace: Steward,
    tokens: dict[Role, str],
    telco: tuple[pd.DataFrame, pd.Series],
    telco_model: Any,
) -> None:
    frame = telco[0].head(N_ROWS)
    direct = direct_scores(telco_model, frame)
    viewer, client_headers = bearer(tokens[Role.VIEWER]), bearer(tokens[Role.CLIENT])
    with grpcclient.InferenceServerClient(f"127.0.0.1:{running.grpc_port}") as client:
        assert client.is_server_live() and client.is_server_ready()
        assert client.get_server_metadata(headers=viewer).name == "steward"
        assert client.is_model_ready("churn", headers=viewer)
        metadata = client.get_model_metadata("churn", headers=viewer)
        assert list(metadata.versions) == ["1", "2"]
        assert [output.name for output in metadata.outputs] == ["score", "decision"]
        result = client.infer(
            "churn",
            triton_inputs(grpcclient, frame),
            outputs=[grpcclient.InferRequestedOutput("score")],
            request_id="grpc-1",
            headers=client_headers,
        )
        response = result.get_response()
        assert response.id == "grpc-1" and response.model_version == "1"
        assert [output.name for output in response.outputs] == ["score"]
        np.testing.assert_allclose(result.as_numpy("score"), direct, rtol=0, atol=1e-12)
        both = client.infer(
            "churn", triton_inputs(grpcclient, frame), model_version="1", headers=client_headers
        )
        decisions = [text(value) for value in both.as_numpy("decision")]
        np.testing.assert_allclose(both.as_numpy("score"), direct, rtol=0, atol=1e-12)
    logged = logged_predictions(running, workspace)
    assert len(logged) == 2 * N_ROWS
    rows = logged.loc[request_ids("grpc-1", N_ROWS)]
    np.testing.assert_allclose(rows["score"], direct, rtol=0, atol=1e-12)
    assert list(rows["entity_key"]) == list(frame["customerID"])
    others = logged.drop(index=request_ids("grpc-1", N_ROWS))
    assert sorted(others["decision"].fillna("")) == sorted(decisions)


def bad_http_requests() -> list[tuple[str, bytes, dict[str, str], int, str]]:
    """(path under /v2/models, body, headers, status, a part of the error) for each bad request."""
    tenure = {"name": "tenure", "shape": [2], "datatype": "INT64", "data": [1]}
    short = json.dumps({"inputs": [tenure]}).encode()
    binary = {"name": "tenure", "shape": [2], "datatype": "INT64"}
    binary["parameters"] = {"binary_data_size": 16}
    header = json.dumps({"inputs": [binary]}).encode()
    octets = {HEADER: str(len(header)), "content-type": "application/octet-stream"}
    return [
        # JSON with no Content-Type, as Triton's client sends it: parsed, then refused for shape.
        ("churn/infer", short, {}, 400, "data holds 1"),
        ("churn/infer", b"{not json", {}, 400, "not valid JSON"),
        ("churn/infer", b'{"inputs": []}', {}, 400, "inputs"),
        ("fraud/infer", short, {}, 404, "fraud"),
        ("churn/versions/7/infer", short, {}, 404, "no version '7'"),
        ("churn/versions/2/infer", short, {}, 400, "promote version 2"),
        ("churn/infer", header + b"\x01" * 8, octets, 400, "binary_data_size 16"),  # 8 of 16
        ("churn/infer", b"{}", {HEADER: "9999"}, 400, HEADER),
    ]


def test_bad_http_input_gets_the_protocols_error_shape(
    running: ProtocolServer, tokens: dict[Role, str], telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    client_headers = bearer(tokens[Role.CLIENT])
    base = f"{running.url}/v2/models"
    for path, body, headers, status, message in bad_http_requests():
        answer = httpx.post(f"{base}/{path}", content=body, headers={**client_headers, **headers})
        assert answer.status_code == status, (path, answer.text)
        assert answer.headers["content-type"] == "application/json", answer.text
        assert set(answer.json()) == {"error"} and message in answer.json()["error"], answer.text
    anonymous = httpx.post(f"{base}/churn/infer", content=b"{}")
    assert anonymous.status_code == 401 and "client role" in anonymous.json()["error"]
    assert anonymous.headers["www-authenticate"].startswith("Bearer")
    viewer = httpx.post(f"{base}/churn/infer", content=b"{}", headers=bearer(tokens[Role.VIEWER]))
    assert viewer.status_code == 403 and "client" in viewer.json()["error"]
    versioned = httpx.get(f"{base}/churn/versions/1/ready", headers=client_headers)
    assert versioned.status_code == 200 and versioned.json()["ready"] is True
    resting = httpx.get(f"{base}/churn/versions/2/ready", headers=client_headers)
    assert resting.status_code == 400 and resting.json()["ready"] is False
    assert "the champion, version 1, does" in resting.json()["error"]
    unknown = httpx.get(f"{base}/churn/versions/3/ready", headers=client_headers)
    assert unknown.status_code == 404 and "no version '3'" in unknown.json()["error"]
    http = httpclient.InferenceServerClient(f"127.0.0.1:{running.port}")
    try:
        with pytest.raises(InferenceServerException, match="'fraud'") as caught:
            inputs = triton_inputs(httpclient, telco[0].head(3))
            http.infer("fraud", inputs, headers=dict(client_headers))
        assert caught.value.status() == "404"
    finally:
        http.close()


def test_bad_grpc_input_gets_a_status_and_a_message_naming_it(
    running: ProtocolServer, tokens: dict[Role, str], telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    client_headers = bearer(tokens[Role.CLIENT])
    frame = telco[0].head(3)
    cases = [
        ("fraud", "", client_headers, "NOT_FOUND", "'fraud'"),
        ("churn", "7", client_headers, "NOT_FOUND", "no version '7'"),
        ("churn", "", None, "UNAUTHENTICATED", "needs the client role"),
        ("churn", "", bearer("stw_not-a-token"), "UNAUTHENTICATED", "unknown, expired"),
        ("churn", "", bearer(tokens[Role.VIEWER]), "PERMISSION_DENIED", "client or above"),
    ]
    with grpcclient.InferenceServerClient(f"127.0.0.1:{running.grpc_port}") as client:
        for model, version, headers, code, message in cases:
            with pytest.raises(InferenceServerException, match=message) as caught:
                inputs = triton_inputs(grpcclient, frame)
                client.infer(model, inputs, model_version=version, headers=headers)
            assert caught.value.status() == f"StatusCode.{code}"
        tenure = grpcclient.InferInput("tenure", [3], "INT64")
        tenure.set_data_from_numpy(np.array([1, 2, 3], dtype=np.int64))
        charges = grpcclient.InferInput("MonthlyCharges", [2], "FP64")
        charges.set_data_from_numpy(np.array([20.5, 99.0]))
        with pytest.raises(InferenceServerException, match="has 2 rows, the others 3") as caught:
            client.infer("churn", [tenure, charges], headers=client_headers)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
        with pytest.raises(InferenceServerException, match="needs the viewer role") as caught:
            client.get_model_metadata("churn")
        assert caught.value.status() == "StatusCode.UNAUTHENTICATED"
        viewer = bearer(tokens[Role.VIEWER])
        assert client.is_model_ready("churn", "1", headers=viewer)
        assert not client.is_model_ready("churn", "2", headers=viewer)  # registered, not serving
        with pytest.raises(InferenceServerException, match="the champion, version 1") as caught:
            client.infer("churn", triton_inputs(grpcclient, frame), "2", headers=client_headers)
        assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"


@pytest.mark.parametrize(
    ("datatype", "values"),
    [
        ("FP64", [0.1, -2.5, 1e300]),
        ("FP32", [0.5, -1.25]),
        ("INT64", [-(2**62), 0, 7]),
        ("INT32", [-5, 2**31 - 1]),
        ("UINT8", [0, 255]),
        ("BOOL", [True, False, True]),
        ("BYTES", ["Month-to-month", "", "naïve"]),
    ],
)
def test_tensor_bytes_match_tritons_own_encoding(datatype: str, values: list[Any]) -> None:
    if datatype == "BYTES":
        theirs = serialize_byte_tensor(np.array(values, dtype=object)).item()
        assert [v.decode() for v in deserialize_bytes_tensor(encode_tensor(datatype, values))] == [
            str(value) for value in values
        ]
    else:
        dtype = {"FP64": "<f8", "FP32": "<f4", "INT64": "<i8", "INT32": "<i4"}.get(datatype)
        numpy_type = dtype or {"UINT8": "|u1", "BOOL": "|b1"}[datatype]
        theirs = np.array(values, dtype=numpy_type).tobytes()
    assert encode_tensor(datatype, values) == theirs
    assert decode_tensor(datatype, theirs, "x") == values


def test_malformed_tensor_bytes_name_the_input() -> None:
    with pytest.raises(InvalidInputError, match="'tenure': 12 bytes is not a whole number"):
        decode_tensor("INT64", b"\x00" * 12, "tenure")
    with pytest.raises(InvalidInputError, match="says it holds 9 bytes"):
        decode_tensor("BYTES", (9).to_bytes(4, "little") + b"abc", "Contract")
    with pytest.raises(InvalidInputError, match="not UTF-8"):
        decode_tensor("BYTES", (1).to_bytes(4, "little") + b"\xff", "Contract")
    with pytest.raises(InvalidInputError, match="not an Open Inference Protocol type"):
        decode_tensor("BF16", b"", "tenure")
    assert split_body(b'{"a": 1}tail', "8") == (b'{"a": 1}', b"tail")
