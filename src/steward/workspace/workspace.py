"""``Workspace``: settings, the metadata store, the artifact store and the event log, built once.

Every domain module takes a ``Workspace``; ``steward.Steward`` is the façade over it that the CLI,
the server and the tests build. Its operations delegate to the domain modules below it
(``registry``, ``systems``, ``lineage``, ``flavors``), so it stays thin.

>>> import tempfile
>>> workspace = Workspace.open(tempfile.mkdtemp())
>>> _ = workspace.init()
>>> [change.kind for change in workspace.apply()]
['created']
>>> workspace.close()
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any, Self

import pandas as pd

from steward.data.events import EventLog
from steward.errors import ConfigError, NotFoundError
from steward.model import registry
from steward.model.artifact_stores import open_artifact_store
from steward.model.flavors import LoadedModel, inspect_artifact, load_model, save_sklearn
from steward.model.lineage import (
    code_version,
    fingerprint_frame,
    library_versions,
    read_table,
    reference_sample,
)
from steward.model.mlflow_format import is_mlflow_model, read_mlflow_model
from steward.settings import Settings
from steward.store import Store, audit, open_store
from steward.workspace import systems
from steward.workspace.config import TEMPLATE, StewardConfig, load_config, retention_problem

__all__ = ["Workspace"]


class Workspace:
    """Settings, the metadata store, the artifact store and the event log of one workspace."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.artifacts = open_artifact_store(
            settings.artifacts_dir, settings.artifacts_url, settings.store_dir / "artifact-cache"
        )
        self._store: Store | None = None
        self._events: EventLog | None = None

    @classmethod
    def open(cls, workspace: str | Path | None = None, **overrides: Any) -> Self:
        """Build from settings: ``overrides``, then ``STEWARD_*`` variables, then defaults."""
        if workspace is not None:
            overrides["workspace"] = str(workspace)
        return cls(Settings.load(overrides))

    @property
    def store(self) -> Store:
        if self._store is None:
            if self.settings.database_url.startswith("sqlite"):
                self.settings.store_dir.mkdir(parents=True, exist_ok=True)
            self._store = open_store(self.settings.database_url)
        return self._store

    @property
    def events(self) -> EventLog:
        """The event log (predictions, outcomes), built once from the settings.

        ``close()`` rolls what this process wrote into Parquet; the next use opens it again.
        Every Parquet file it adds or removes (roll, compaction, retention, erasure) is committed
        by hash to the audit log in an ``events.files`` entry, in a transaction of its own
        (``docs/audit.md``); so never roll, compact or erase inside a ``store.write()`` block.
        """
        if self._events is None or self._events.closed:

            def commit(added: dict[str, str], removed: list[str], reason: str) -> None:
                summary = f"{reason}: {len(added)} added, {len(removed)} removed"
                details = {"summary": summary, "reason": reason}
                with self.store.write() as session:
                    audit.record(
                        session,
                        actor=self.actor,
                        action="events.files",
                        target="events",
                        details={**details, "added": added, "removed": removed},
                    )

            settings = self.settings
            self._events = EventLog(
                settings.events_dir,
                fsync=settings.events_fsync,
                on_files=commit,
                remote=settings.events_url or None,
                sync_seconds=settings.events_sync_seconds,
                backlog_bytes=settings.events_backlog_mb * 2**20,
            )
        return self._events

    @property
    def actor(self) -> str:
        return self.settings.user

    def close(self) -> None:
        """Close the event log (rolling its segments into Parquet) and the store's connections."""
        events, self._events = self._events, None
        if events is not None:
            events.close()
        if self._store is not None:
            self._store.dispose()
            self._store = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # Workspace and config as code

    def init(self) -> list[Path]:
        """Create ``steward.yaml`` (commented) and ``.steward/`` where missing; return what was made."""
        made = []
        if not self.settings.config_path.exists():
            self.settings.workspace.mkdir(parents=True, exist_ok=True)
            self.settings.config_path.write_text(TEMPLATE)
            made.append(self.settings.config_path)
        if not self.settings.store_dir.exists():
            self.settings.store_dir.mkdir(parents=True)
            made.append(self.settings.store_dir)
        _ = self.store  # creates and migrates the database
        return made

    def apply(self, path: Path | None = None) -> list[systems.SystemChange]:
        """Load ``steward.yaml`` into the store; each change goes to the audit log."""
        config = load_config(path or self.settings.config_path)
        self.check_retention(config)
        return systems.apply_config(self.store, config, actor=self.actor)

    def check_retention(self, config: StewardConfig) -> None:
        """Refuse a config whose systems would keep their logs less than their risk tier's floor
        under the workspace's ``retention_days`` (a system's own is checked when it is read)."""
        for declared in config.systems:
            if declared.retention_days is None:
                problem = retention_problem(
                    declared.name, declared.risk_tier, self.settings.retention_days,
                    "the workspace's retention_days setting",
                )  # fmt: skip
                if problem:
                    raise ConfigError(problem + f" under system {declared.name!r}")

    def retention_days(self, system: str) -> int:
        """How many days ``system``'s events are kept: its own ``retention_days``, else the
        workspace's setting."""
        own = self.system(system).config.get("retention_days")
        return int(own) if own is not None else self.settings.retention_days

    def system(self, name: str) -> systems.SystemInfo:
        return systems.get_system(self.store, name)

    def systems(self) -> list[systems.SystemInfo]:
        return systems.list_systems(self.store)

    # Registry

    def register_model(
        self,
        artifact: Any,
        *,
        system: str,
        flavor: str | None = None,
        trust: bool = False,
        data: pd.DataFrame | str | Path | None = None,
        params: dict[str, Any] | None = None,
        metrics: dict[str, Any] | None = None,
        description: str = "",
        code_dir: str | Path = ".",
        code: dict[str, Any] | None = None,
    ) -> registry.Registration:
        """Register ``artifact`` (a file path, ``module:function``, an MLflow model directory, or a
        fitted scikit-learn model). ``code`` replaces the git lineage read from ``code_dir``.

        An MLflow model directory registers its sklearn model; its run id, model id and signature
        are kept in the version's ``code["mlflow"]`` (``steward.model.mlflow_format``).

        >>> registration = steward.register_model(pipeline, system="churn", data=train_frame,
        ...                                       metrics={"roc_auc": 0.84})  # doctest: +SKIP
        """
        self.system(system)  # fail early, before any file work, on an unknown system
        lineage = dict(code) if code is not None else code_version(code_dir)
        if isinstance(artifact, str | Path) and is_mlflow_model(artifact):
            found = read_mlflow_model(artifact)
            artifact, flavor = found.artifact, flavor or found.flavor
            lineage["mlflow"] = {**found.lineage(), **lineage.get("mlflow", {})}
        with tempfile.TemporaryDirectory() as scratch:
            if not isinstance(artifact, str | Path):
                artifact = save_sklearn(artifact, Path(scratch) / "model.skops")
            prepared = inspect_artifact(str(artifact), flavor, trust=trust)
            digest = self.artifacts.put_file(prepared.path)
        return registry.register_version(
            self.store,
            system=system,
            actor=self.actor,
            flavor=prepared.flavor,
            artifact_sha256=digest,
            artifact_name=prepared.name,
            artifact_size=self.artifacts.size(digest),
            trusted_types=prepared.trusted_types,
            params={**prepared.params, **(params or {})},
            metrics=metrics or {},
            data=self._data_lineage(data),
            code=lineage,
            libraries=library_versions(),
            description=description,
        )

    def _data_lineage(self, data: pd.DataFrame | str | Path | None) -> dict[str, Any]:
        if data is None:
            return {}
        source = None if isinstance(data, pd.DataFrame) else str(data)
        frame = data if isinstance(data, pd.DataFrame) else read_table(data)
        lineage = fingerprint_frame(frame)
        sample = reference_sample(frame, self.settings.reference_sample_rows)
        lineage["reference_sha256"] = self.artifacts.put_bytes(sample)
        lineage["reference_rows"] = min(len(frame), self.settings.reference_sample_rows)
        if source:
            lineage["source"] = source
        return lineage

    def version(self, system: str, reference: int | str = "champion") -> registry.ModelVersion:
        return registry.get_version(self.store, system, reference)

    def versions(self, system: str) -> list[registry.ModelVersion]:
        return registry.list_versions(self.store, system)

    def load_model(self, system: str, reference: int | str = "champion") -> LoadedModel:
        version = self.version(system, reference)
        path = self.artifacts.open_path(version.artifact_sha256)
        return load_model(
            version.flavor,
            path,
            version.artifact_name,
            version.trusted_types,
            expected_sha256=version.artifact_sha256,
        )

    def reference_data(self, system: str, reference: int | str = "champion") -> pd.DataFrame:
        """The training sample stored with a version, for drift checks."""
        version = self.version(system, reference)
        digest = version.data.get("reference_sha256")
        if not digest:
            raise NotFoundError(
                f"{system} v{version.version} was registered without training data; "
                "register with --data FILE to keep a reference sample"
            )
        return pd.read_parquet(self.artifacts.open_path(digest))

    def move_alias(
        self, system: str, alias: str, version: int | str | None, reason: str = ""
    ) -> registry.AliasChange:
        return registry.move_alias(
            self.store, system, alias, version, actor=self.actor, reason=reason
        )

    def rollback(
        self, system: str, reason: str = "", alias: str = "champion"
    ) -> registry.AliasChange:
        return registry.rollback(self.store, system, actor=self.actor, reason=reason, alias=alias)

    def history(self, system: str, alias: str | None = None) -> list[registry.AliasChange]:
        return registry.alias_history(self.store, system, alias)

    def diff(self, system: str, a: int | str, b: int | str) -> list[registry.DiffRow]:
        return registry.diff_versions(self.version(system, a), self.version(system, b))
