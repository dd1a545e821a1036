"""``steward.Client`` refuses wrong arguments when it is made, with a message that says what to pass."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

from steward import Client, Steward
from steward.errors import InvalidInputError, UnauthenticatedError
from steward.governance.access import Role, add_identity, create_token
from tests.conftest import Server


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"base_url": "ftp://steward.example.com"}, "http:// or https:// URL"),
        ({"base_url": "localhost:8000"}, "http:// or https:// URL"),
        ({"base_url": "http://"}, "with a host"),
        ({"base_url": "steward.example.com"}, "http:// or https:// URL"),
        ({"base_url": 8000}, "must be the server's URL as a string, got int 8000"),
        ({"base_url": None}, "got NoneType"),
        ({"base_url": "http://x", "timeout": 0}, "timeout must be a positive number"),
        ({"base_url": "http://x", "timeout": -1.5}, "got -1.5"),
        ({"base_url": "http://x", "timeout": float("nan")}, "timeout must be a positive number"),
        ({"base_url": "http://x", "timeout": "30"}, "got '30'"),
        ({"base_url": "http://x", "timeout": True}, "timeout must be a positive number"),
        ({"base_url": "http://x", "token": b"stw_abc"}, "token must be a string"),
        ({"base_url": "http://x", "token": 12345}, "got int"),
        ({"base_url": "http://x", "token": ""}, "token is empty"),
        ({"base_url": "http://x", "token": "stw_abc\n"}, "spaces around it"),
        ({"base_url": "http://x", "prompt_max_staleness": 0}, "staleness bound"),
        ({"base_url": "http://x", "prompt_max_staleness": "60"}, "staleness bound"),
    ],
)
def test_wrong_arguments_are_refused_at_construction(
    arguments: dict[str, Any], message: str
) -> None:
    base_url = arguments.pop("base_url")
    with pytest.raises(InvalidInputError, match=message.replace("(", r"\(")) as raised:
        Client(base_url, **arguments)
    # Never a token in the message: it may be printed or logged.
    assert "stw_abc" not in str(raised.value)


def test_a_refused_token_is_not_echoed() -> None:
    with pytest.raises(InvalidInputError) as raised:
        Client("http://x", token=" stw_secret ")
    assert "stw_secret" not in str(raised.value)


@pytest.fixture
def signed_in_server(
    workspace: Steward, telco_model: object, tmp_path: Path
) -> Iterator[tuple[Server, str]]:
    """A real ``steward serve`` with sign-in on, and a client-role token for it."""
    workspace.register_model(telco_model, system="churn")
    workspace.move_alias("churn", "champion", 1)
    add_identity(workspace, "scorer", Role.CLIENT, kind="service")
    token = create_token(workspace, "scorer", expires_in=timedelta(hours=1)).secret
    running = Server(
        workspace.settings.workspace, workspace.settings.database_url, insecure_local=False
    )
    running.start()
    yield running, token
    running.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_good_arguments_make_a_client_that_signs_in_with_its_token(
    signed_in_server: tuple[Server, str],
    telco: tuple[pd.DataFrame, pd.Series],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    server, token = signed_in_server
    frame, _ = telco
    records = frame.drop(columns=["customerID"]).head(2).to_dict(orient="records")
    with Client(httpx.URL(server.url), token=token, timeout=10) as client:
        assert len(client.predict("churn", records)) == 2
    with (
        Client(server.url + "/", token="stw_not_a_token", timeout=10) as client,
        pytest.raises(UnauthenticatedError),
    ):
        client.predict("churn", records)
    monkeypatch.setenv("STEWARD_TOKEN", token)  # no token given: the environment's
    with Client(server.url, timeout=10.0) as client:
        assert len(client.predict("churn", records)) == 2
