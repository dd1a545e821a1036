"""Plugins: a third party's flavor, step, notifier, monitor, command and router are used like the
built-ins, which are registered through the same hooks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from fastapi import APIRouter

from steward import Steward
from steward.cli.main import cli
from steward.loop import notify, playbooks
from steward.model.flavors import PreparedArtifact, available_flavors, load_model
from steward.monitoring.monitors import available_monitors
from steward.monitoring.result import MonitorResult
from steward.plugins import DEFAULT_PLUGINS, hookimpl, plugin_manager
from steward.web.roles import Role, requires
from steward.workspace.config import NotifyConfig


class ConstantFlavor:
    """Scores every row with the number written in a ``.const`` file."""

    name = "constant"

    def matches(self, spec: str) -> bool:
        return spec.endswith(".const")

    def prepare(self, spec: str, trust: bool) -> PreparedArtifact:
        return PreparedArtifact(self.name, Path(spec), Path(spec).name)

    def load(self, path: Path, name: str, trusted_types: list[str], expected: str | None) -> Any:
        return float(path.read_text())

    def predict(self, model: Any, frame: pd.DataFrame, task: str) -> np.ndarray:
        return np.full(len(frame), model)


class PagerNotifier:
    channel = "pager"
    target = "on-call"

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, message: notify.Message) -> None:
        self.sent.append(message.text)


class Plugin:
    """One plugin implementing every hook."""

    def __init__(self) -> None:
        self.pager = PagerNotifier()

    @hookimpl
    def steward_flavors(self) -> list[Any]:
        return [ConstantFlavor()]

    @hookimpl
    def steward_notifiers(self, workspace: Any, config: Any) -> list[Any]:
        return [self.pager]

    @hookimpl
    def steward_playbook_steps(self) -> list[Any]:
        def page(context: playbooks.StepContext) -> playbooks.StepOutcome:
            return playbooks.StepOutcome("done", f"paged the on-call for {context.system}")

        return [playbooks.FunctionStep("page_oncall", page)]

    @hookimpl
    def steward_monitors(self) -> list[Any]:
        class Heartbeat:
            name = "heartbeat"

            def run(self, window: Any) -> list[MonitorResult]:
                return [
                    MonitorResult(window.system, "heartbeat", window.start, window.end, "ok", "")
                ]

        return [Heartbeat()]

    @hookimpl
    def steward_cli_commands(self) -> list[click.Command]:
        @click.command("hello")
        def hello() -> None:
            """Say hello from a plugin."""
            click.echo("hello from a plugin")

        return [hello]

    @hookimpl
    def steward_routers(self) -> list[APIRouter]:
        router = APIRouter()

        @router.get("/v1/plugin/ping", dependencies=[requires(Role.VIEWER)])
        def ping() -> dict[str, str]:
            return {"pong": "plugin"}

        return [router]


@pytest.fixture
def plugin() -> Iterator[Plugin]:
    manager = plugin_manager()
    registered = Plugin()
    manager.register(registered, name="test-plugin")
    try:
        yield registered
    finally:
        manager.unregister(name="test-plugin")


def test_the_built_ins_are_registered_through_the_hooks() -> None:
    names = plugin_manager().list_name_plugin()
    assert {name for name, _ in names} >= set(DEFAULT_PLUGINS)
    assert list(available_flavors()) == ["sklearn", "sklearn-pickle", "onnx", "python"]
    assert [monitor.name for monitor in available_monitors()] == [
        "drift",
        "data_quality",
        "performance",
        "fairness",
        "llm_outputs",
    ]
    assert list(playbooks.available_steps()) == list(playbooks.STEPS)


def test_a_plugins_flavor_monitor_step_and_notifier_are_used(
    plugin: Plugin, tmp_path: Path
) -> None:
    artifact = tmp_path / "model.const"
    artifact.write_text("0.25")
    loaded = load_model("constant", artifact, artifact.name)
    assert loaded.predict(pd.DataFrame({"x": [1, 2]}), "binary").tolist() == [0.25, 0.25]
    assert [monitor.name for monitor in available_monitors()][-1] == "heartbeat"
    assert "page_oncall" in playbooks.available_steps()
    channels = [n.channel for n in notify.notifiers_for(None, NotifyConfig())]  # type: ignore[arg-type]
    assert channels == ["log", "pager"]


def test_a_plugins_step_is_accepted_by_steward_yaml_and_runs(
    plugin: Plugin, workspace: Steward
) -> None:
    config = workspace.settings.config_path
    config.write_text(
        config.read_text()
        + "    playbooks:\n      - when: '*'\n        do: [notify, page_oncall]\n"
    )
    workspace.apply()
    action = playbooks.run_step(workspace, workspace.events, "churn", "page_oncall")
    assert (action.status, action.reason) == ("done", "paged the on-call for churn")


def test_a_plugins_command_and_router_are_served(plugin: Plugin, workspace: Steward) -> None:
    result = CliRunner().invoke(cli, ["hello"])
    assert result.exit_code == 0 and result.output == "hello from a plugin\n"
    from .test_web import Api

    response = Api(workspace, workspace.events).request("GET", "/v1/plugin/ping")
    assert response.status_code == 200 and response.json() == {"pong": "plugin"}
