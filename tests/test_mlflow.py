"""MLflow models in Steward: a model directory registers and serves; a registry imports with lineage.

The MLflow side is real: MLflow's own client logs the models into a SQLite tracking store (its
default backend) with local artifacts, made fresh in each test.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from click.testing import CliRunner

from steward import Steward
from steward.cli import cli
from steward.demo.model import train_churn_model
from steward.errors import NotFoundError
from steward.model.mlflow_format import read_mlflow_model
from steward.workspace.mlflow_import import import_mlflow

# MLflow warns about its own internals (pydantic, SQLAlchemy, pkg_resources) on import and use.
pytestmark = pytest.mark.filterwarnings(
    "ignore::DeprecationWarning",
    "ignore::FutureWarning",
    "ignore::UserWarning",
    "ignore::PendingDeprecationWarning",
)


@pytest.fixture
def store(tmp_path: Path, telco: tuple[pd.DataFrame, pd.Series]) -> Iterator[dict[str, Any]]:
    """Two logged versions of 'churn' (C=1 and C=0.1), champion on v1 and challenger on v2."""
    import mlflow.sklearn

    frame, target = telco
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = mlflow.MlflowClient(tracking_uri=uri)
    experiment = client.create_experiment("churn", artifact_location=(tmp_path / "art").as_uri())
    mlflow.set_tracking_uri(uri)
    runs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for c in (1.0, 0.1):
            with mlflow.start_run(experiment_id=experiment) as run:
                model = train_churn_model(frame.head(2000), target.head(2000), C=c)
                mlflow.log_param("C", c)
                mlflow.log_metric("roc_auc", 0.8 + c / 100)
                mlflow.sklearn.log_model(
                    model, name="model", input_example=frame.head(5), registered_model_name="churn"
                )
                runs.append(run.info.run_id)
    client.set_registered_model_alias("churn", "champion", "1")
    client.set_registered_model_alias("churn", "challenger", "2")
    yield {"uri": uri, "client": client, "runs": runs, "frame": frame}
    mlflow.set_tracking_uri("")


def test_a_registry_imports_with_versions_aliases_and_lineage(
    workspace: Steward, store: dict[str, Any]
) -> None:
    root = str(workspace.settings.workspace)
    base = ["--workspace", root, "--database-url", workspace.settings.database_url]
    command = [*base, "import", "mlflow", "--tracking-uri", store["uri"], "--model", "churn",
               "--system", "churn"]  # fmt: skip
    first = CliRunner().invoke(cli, command)
    assert first.exit_code == 0, first.output
    assert "MLflow churn v2 -> churn v2 (registered)" in first.output
    versions = {v.version: v for v in workspace.versions("churn")}
    assert set(versions) == {1, 2}
    assert versions[1].aliases == ("champion",) and versions[2].aliases == ("challenger",)
    for number, run_id, c in ((1, store["runs"][0], 1.0), (2, store["runs"][1], 0.1)):
        version = versions[number]
        assert version.params["C"] == str(c)  # MLflow keeps params as text
        assert version.metrics["roc_auc"] == pytest.approx(0.8 + c / 100)
        lineage = version.code["mlflow"]
        assert (lineage["run_id"], lineage["version"], lineage["model"]) == (
            run_id,
            number,
            "churn",
        )
        assert {"name": "tenure", "type": "long", "required": True} in lineage["signature_inputs"]
        # Served scores equal MLflow's own model's, to the last bit that matters.
        ours = workspace.load_model("churn", number).predict(store["frame"].head(300), "binary")
        theirs = mlflow.sklearn.load_model(f"models:/churn/{number}").predict_proba(
            store["frame"].head(300)
        )[:, 1]
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12)

    history = len(workspace.history("churn"))
    again = CliRunner().invoke(cli, command)
    assert again.exit_code == 0, again.output
    assert again.output.count("(already registered)") == 2
    assert len(workspace.history("churn")) == history  # nothing moved twice
    assert len(workspace.versions("churn")) == 2


def test_an_unknown_model_or_store_is_named(workspace: Steward, store: dict[str, Any]) -> None:
    with pytest.raises(NotFoundError, match="no versions of a model named 'nobody'"):
        import_mlflow(workspace, store["uri"], "nobody", system="churn")
    with pytest.raises(NotFoundError, match="nope"):
        import_mlflow(workspace, store["uri"], "churn", system="nope")


def test_a_model_directory_registers_and_drafts_the_contract(
    workspace: Steward, tmp_path: Path, telco: tuple[pd.DataFrame, pd.Series]
) -> None:
    import mlflow.sklearn

    frame, target = telco
    model = train_churn_model(frame.head(1500), target.head(1500))
    saved, pickled = tmp_path / "saved", tmp_path / "pickled"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mlflow.sklearn.save_model(model, saved, input_example=frame.head(5))
        mlflow.sklearn.save_model(model, pickled, serialization_format="cloudpickle")
    base = ["--workspace", str(workspace.settings.workspace), "--database-url",
            workspace.settings.database_url]  # fmt: skip
    runner = CliRunner()
    done = runner.invoke(cli, [*base, "models", "register", str(saved), "--system", "churn"])
    assert done.exit_code == 0, done.output
    version = workspace.version("churn", 1)
    assert version.flavor == "sklearn" and version.code["mlflow"]["run_id"] is None
    scores = workspace.load_model("churn", 1).predict(frame.head(50), "binary")
    np.testing.assert_allclose(scores, model.predict_proba(frame.head(50))[:, 1], atol=1e-12)

    drafted = runner.invoke(cli, [*base, "contract", "infer", str(saved), "--system", "churn"])
    assert drafted.exit_code == 0, drafted.output
    columns = yaml.safe_load(drafted.output)["contract"]["columns"]
    assert columns["tenure"] == {"type": "int"} and columns["MonthlyCharges"] == {"type": "float"}
    assert columns["Contract"] == {"type": "string"}

    refused = runner.invoke(cli, [*base, "models", "register", str(pickled), "--system", "churn"])
    assert refused.exit_code != 0 and "pickle" in refused.output and "--trust" in refused.output
    assert read_mlflow_model(pickled).flavor == "sklearn-pickle"
    trusted = runner.invoke(
        cli, [*base, "models", "register", str(pickled), "--system", "churn", "--trust"]
    )
    assert trusted.exit_code == 0, trusted.output


def test_a_directory_that_is_not_an_mlflow_sklearn_model_is_named(tmp_path: Path) -> None:
    from steward.errors import InvalidInputError

    (tmp_path / "MLmodel").write_text(
        "flavors:\n  python_function:\n    loader_module: my.loader\n"
    )
    with pytest.raises(InvalidInputError, match="loads through my.loader"):
        read_mlflow_model(tmp_path)
    with pytest.raises(InvalidInputError, match="not an MLflow model directory"):
        read_mlflow_model(tmp_path / "elsewhere")
