"""Bring an MLflow registered model's versions and aliases into a Steward system, with lineage.

``import_mlflow`` reads the registry at ``tracking_uri`` with MLflow's own client (the ``mlflow``
extra: ``pip install 'steward[mlflow]'``), downloads each version's model, registers it in
version order with its run's params and metrics and the MLflow facts as lineage
(``code["mlflow"]``: tracking URI, model name and version, run id, source, tags), then points
Steward's aliases where MLflow's point. Importing again registers nothing new: a version whose
artifact is already registered is found by its hash, and an alias already in place is not moved.

Example::

    report = import_mlflow(steward, "sqlite:///mlflow.db", "churn", system="churn")
    report.versions    # [ImportedVersion(mlflow_version=1, version=1, created=True), ...]
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from steward.errors import ConfigError, ForbiddenError, InvalidInputError, NotFoundError

if TYPE_CHECKING:
    from steward.workspace.workspace import Workspace

__all__ = ["ImportReport", "ImportedVersion", "import_mlflow"]


@dataclass(frozen=True)
class ImportedVersion:
    """One MLflow version and the Steward version it became."""

    mlflow_version: int
    version: int
    created: bool


@dataclass
class ImportReport:
    """What an import registered, which aliases it moved, and what it could not bring."""

    model: str
    system: str
    versions: list[ImportedVersion] = field(default_factory=list)
    aliases: dict[str, int] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)


def import_mlflow(
    workspace: Workspace,
    tracking_uri: str,
    model: str,
    *,
    system: str,
    trust: bool = False,
    registry_uri: str | None = None,
) -> ImportReport:
    """Import every version of MLflow's registered ``model`` into ``system``, then its aliases."""
    workspace.system(system)  # an unknown system fails before MLflow is asked anything
    client = _client(tracking_uri, registry_uri)
    mlflow_versions = _versions(client, model, tracking_uri)
    report = ImportReport(model, system)
    steward_version: dict[int, int] = {}
    for found in mlflow_versions:
        number = int(found.version)
        with tempfile.TemporaryDirectory() as scratch:
            directory = _download(client, model, number, scratch)
            params, metrics, tags = _run(client, found.run_id)
            registration = workspace.register_model(
                directory,
                system=system,
                trust=trust,
                params=params,
                metrics=metrics,
                description=found.description or f"MLflow {model} v{number}",
                code={"mlflow": _lineage(tracking_uri, model, found, tags)},
            )
        steward_version[number] = registration.version.version
        report.versions.append(
            ImportedVersion(number, registration.version.version, registration.created)
        )
    current = {alias: view.version for view in workspace.versions(system) for alias in view.aliases}
    for alias, pointed in sorted(_registered_aliases(client, model).items()):
        target = steward_version.get(int(pointed))
        if target is None:
            report.skipped.append(f"alias {alias!r} points at MLflow v{pointed}, not imported")
            continue
        if current.get(alias) == target:
            report.aliases[alias] = target
            continue
        try:
            workspace.move_alias(system, alias, target, reason=f"imported from MLflow {model}")
        except (InvalidInputError, ForbiddenError) as error:
            report.skipped.append(f"alias {alias!r}: {error}")
            continue
        report.aliases[alias] = target
    return report


def _client(tracking_uri: str, registry_uri: str | None) -> Any:
    try:
        from mlflow import MlflowClient
    except ImportError:
        raise ConfigError(
            "importing from MLflow needs MLflow's client: pip install 'steward[mlflow]'"
        ) from None
    return MlflowClient(tracking_uri=tracking_uri, registry_uri=registry_uri or tracking_uri)


def _versions(client: Any, model: str, tracking_uri: str) -> list[Any]:
    from mlflow.exceptions import MlflowException

    try:
        found = client.search_model_versions(f"name = '{model.replace(chr(39), '')}'")
    except MlflowException as error:
        raise InvalidInputError(
            f"cannot read MLflow's registry at {tracking_uri!r}: {error.message}"
        ) from None
    if not found:
        raise NotFoundError(
            f"MLflow's registry at {tracking_uri!r} has no versions of a model named {model!r}; "
            "check the name (`mlflow models` lists them) and the tracking URI"
        )
    return sorted(found, key=lambda version: int(version.version))


def _download(client: Any, model: str, number: int, scratch: str) -> str:
    from mlflow.artifacts import download_artifacts

    uri = client.get_model_version_download_uri(model, str(number))
    return str(
        download_artifacts(artifact_uri=uri, dst_path=scratch, tracking_uri=client.tracking_uri)
    )


def _run(client: Any, run_id: str | None) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The run's params, metrics and its ``mlflow.*`` tags (source, git commit, user)."""
    if not run_id:
        return {}, {}, {}
    from mlflow.exceptions import MlflowException

    try:
        run = client.get_run(run_id)
    except MlflowException:
        return {}, {}, {}  # the run was deleted; the model still imports
    tags = {key: value for key, value in run.data.tags.items() if key.startswith("mlflow.")}
    return dict(run.data.params), dict(run.data.metrics), tags


def _lineage(tracking_uri: str, model: str, found: Any, tags: dict[str, str]) -> dict[str, Any]:
    return {
        "tracking_uri": tracking_uri,
        "model": model,
        "version": int(found.version),
        "run_id": found.run_id,
        "source": found.source,
        "git_commit": tags.get("mlflow.source.git.commit"),
        "user": tags.get("mlflow.user"),
        "tags": dict(found.tags or {}),
    }


def _registered_aliases(client: Any, model: str) -> dict[str, str]:
    return dict(client.get_registered_model(model).aliases or {})
