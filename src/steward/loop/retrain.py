"""Retraining: export recent labeled traffic, run the user's command, register what it wrote.

Steward does not train models; it runs the command declared under ``retrain:`` in ``steward.yaml``:

1. ``export_training_data`` takes the predictions of the last ``retrain.window`` that have an
   outcome, and writes their input columns plus the system's ``target`` column (the outcome's value)
   to ``data.parquet`` in a scratch folder under ``.steward/retrain/``;
2. the command is split like a shell would (``shlex``) but run without one, with ``{data}`` and
   ``{output}`` filled in, in the workspace folder, under ``retrain.timeout_seconds``;
3. the file it wrote at ``{output}`` (``model.skops``) is registered with the export as its
   training data, and ``challenger`` and ``shadow`` are pointed at it, so the server starts
   scoring it in shadow and ``promote_if_better`` can compare it with the champion.

A command that cannot start, exits non-zero, times out or writes nothing ends as ``failed``, with the
exit code and the last lines of its stderr; its stdout and stderr (trimmed) are kept either way. The
scratch folder is kept: the export is the new version's training data.

>>> split_command("python train.py --data {data} --out {output}", data="d.parquet", output="m.skops")
['python', 'train.py', '--data', 'd.parquet', '--out', 'm.skops']
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import subprocess
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from steward._util.times import parse_window
from steward.data.events import EventLog
from steward.data.events.schemas import ATTRIBUTES_KEY
from steward.errors import ConfigError, InvalidInputError, StewardError
from steward.loop.promotion import read_golden_set
from steward.model.flavors import inspect_artifact, load_model
from steward.monitoring.metrics import MIN_SAMPLES, join_outcomes
from steward.store import utcnow
from steward.workspace import Workspace
from steward.workspace.retention import EXPORT_SPAN, EXPORTS

__all__ = [
    "OUTPUT_NAME",
    "TRIM_CHARS",
    "RetrainResult",
    "export_training_data",
    "run_retrain",
    "split_command",
]

OUTPUT_NAME: Final = "model.skops"
TRIM_CHARS: Final = 4000  # of stdout and of stderr kept in the action's details
_TAIL_LINES: Final = 5  # of stderr quoted in a failure's reason


@dataclass(frozen=True)
class RetrainResult:
    """How a retrain went: ``done`` (a version registered), ``failed`` or ``skipped``."""

    system: str
    status: str
    reason: str
    version: int | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status == "done"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def split_command(command: str, *, data: str, output: str) -> list[str]:
    """Split ``command`` into arguments and fill ``{data}`` and ``{output}`` in each one."""
    try:
        parts = shlex.split(command)
    except ValueError as error:
        raise ConfigError(f"retrain.command {command!r} cannot be split: {error}") from None
    if not parts:
        raise ConfigError("retrain.command is empty; write the command that trains a model")
    return [part.replace("{data}", data).replace("{output}", output) for part in parts]


def export_training_data(
    steward: Workspace, events: EventLog, system: str, *, start: datetime, end: datetime
) -> pd.DataFrame:
    """Predictions in ``[start, end)`` that have an outcome: input columns plus the target column."""
    info = steward.system(system)
    if not info.target:
        raise ConfigError(
            f"system {system!r} has no target column; set target: in steward.yaml so the export "
            "can name the label column"
        )
    predictions = events.scan("prediction", system, start=start, end=end).to_pandas()
    if predictions.empty:
        return pd.DataFrame()
    outcomes = events.scan("outcome", system, start=start).to_pandas()
    if outcomes.empty:
        return pd.DataFrame()
    joined = join_outcomes(predictions, outcomes, by="each")
    labeled = joined[joined["labeled"]].reset_index(drop=True)
    inputs = pd.DataFrame.from_records(
        [json.loads(text) if isinstance(text, str) else {} for text in labeled["inputs"]]
    )
    values = labeled["outcome_value"].astype("float64")
    target: pd.Series = values.where(values.notna(), labeled["outcome_value_text"])
    if values.notna().all() and np.all(np.mod(values.to_numpy(), 1.0) == 0.0):
        target = values.astype("int64")
    # protected attributes travel beside the record; they are not model inputs to train on
    inputs = inputs.drop(columns=[info.target, ATTRIBUTES_KEY], errors="ignore")
    return inputs.assign(**{info.target: target})


def run_retrain(
    steward: Workspace, events: EventLog, system: str, *, at: datetime | None = None
) -> RetrainResult:
    """Export, run the command, register the result and point ``challenger``/``shadow`` at it.

    >>> result = run_retrain(steward, events, "churn")  # doctest: +SKIP
    >>> result.status, result.version                    # doctest: +SKIP
    ('done', 4)
    """
    config = steward.system(system).declared.retrain
    if config is None:
        raise ConfigError(
            f"system {system!r} has no retrain: section in steward.yaml; declare the training "
            "command there (retrain: {command: 'python train.py {data} {output}'})"
        )
    end = at or utcnow()
    start = end - parse_window(config.window)
    export = export_training_data(steward, events, system, start=start, end=end)
    span = f"{start:%Y-%m-%d %H:%M} to {end:%Y-%m-%d %H:%M} UTC"
    if len(export) < MIN_SAMPLES:
        return RetrainResult(
            system,
            "skipped",
            f"only {len(export)} predictions with outcomes from {span}; a retrain needs at least "
            f"{MIN_SAMPLES}, so nothing was run",
            details={"n_rows": len(export), "window": config.window},
        )
    scratch = _scratch(steward, system, end)
    data, output = scratch / "data.parquet", scratch / OUTPUT_NAME
    export.to_parquet(data, index=False)
    # the span of the export's data, which retention reads to know when the export is too old
    span_file = scratch / EXPORT_SPAN
    span_file.write_text(json.dumps({"start": start.isoformat(), "end": end.isoformat()}))
    arguments = split_command(config.command, data=str(data), output=str(output))
    details: dict[str, Any] = {
        "command": arguments,
        "scratch": str(scratch),
        "export": str(data),
        "n_rows": len(export),
        "window": config.window,
    }
    failure = _run(arguments, steward.settings.workspace, config.timeout_seconds, details)
    if failure is None and (not output.is_file() or output.stat().st_size == 0):
        failure = f"the command exited 0 but wrote nothing at {output}"
    if failure is not None:
        return RetrainResult(system, "failed", failure, details=details)
    try:
        return _register(steward, system, output, data, export, span, details)
    except StewardError as error:
        return RetrainResult(
            system,
            "failed",
            f"the command's model could not be evaluated or registered: {error}",
            None,
            details,
        )


def _scratch(steward: Workspace, system: str, at: datetime) -> Path:
    root = steward.settings.store_dir / EXPORTS
    stem = f"{system}-{at:%Y%m%dT%H%M%S}"
    for attempt in range(1000):
        folder = root / (stem if attempt == 0 else f"{stem}-{attempt}")
        try:
            folder.mkdir(parents=True)
            return folder
        except FileExistsError:
            continue
    raise InvalidInputError(f"cannot make a scratch folder under {root}; clear old retrain runs")


def _run(arguments: list[str], cwd: Path, timeout: int, details: dict[str, Any]) -> str | None:
    """Run the command; fill ``details`` with its exit code and output; return why it failed."""
    try:
        # A session of its own, so a timeout kills the command and anything it started.
        process = subprocess.Popen(
            arguments,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            start_new_session=True,
        )
    except OSError as error:
        details["exit_code"] = None
        return (
            f"could not start {arguments[0]!r}: {error.strerror or error}; check retrain.command "
            "(it runs without a shell, in the workspace folder)"
        )
    timed_out = False
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        with contextlib.suppress(ProcessLookupError):  # the group may be gone
            os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
    details.update(
        exit_code=process.returncode,
        stdout=_trim(stdout),
        stderr=_trim(stderr),
        timed_out=timed_out,
    )
    tail = " | ".join(line for line in stderr.strip().splitlines()[-_TAIL_LINES:] if line.strip())
    said = f"; stderr ends: {tail}" if tail else "; it wrote nothing to stderr"
    if timed_out:
        return f"the command timed out after {timeout} s (retrain.timeout_seconds) and was killed{said}"
    if process.returncode != 0:
        return f"the command exited with code {process.returncode}{said}"
    return None


def _trim(text: str) -> str:
    return text if len(text) <= TRIM_CHARS else "…" + text[-TRIM_CHARS:]


def _register(
    steward: Workspace,
    system: str,
    output: Path,
    data: Path,
    export: pd.DataFrame,
    span: str,
    details: dict[str, Any],
) -> RetrainResult:
    metrics = _golden_metrics(steward, system, output)
    registration = steward.register_model(
        output,
        system=system,
        data=data,
        metrics=metrics,
        description=f"retrained by Steward on {len(export)} labeled predictions from {span}",
        code_dir=steward.settings.workspace,
    )
    version = registration.version.version
    reason = f"retrained on {len(export)} labeled predictions from {span}"
    for alias in ("challenger", "shadow"):
        steward.move_alias(system, alias, version, reason=reason)
    details.update(version=version, created=registration.created, metrics=metrics)
    again = "" if registration.created else " (the same artifact as an earlier version)"
    return RetrainResult(
        system,
        "done",
        f"{reason}: registered v{version}{again} and pointed challenger and shadow at it",
        version,
        details,
    )


def _golden_metrics(steward: Workspace, system: str, output: Path) -> dict[str, Any]:
    """ROC AUC of the new model on the golden set, stored with the version (monitors read it)."""
    info = steward.system(system)
    config = info.declared.retrain
    if config is None or not config.golden_set or info.task != "binary":
        return {}
    features, labels = read_golden_set(steward, config.golden_set, info.target)
    prepared = inspect_artifact(str(output))
    model = load_model(prepared.flavor, prepared.path, prepared.name, prepared.trusted_types)
    scores = np.asarray(model.predict(features, "binary"), dtype=np.float64)
    return {"roc_auc": round(float(roc_auc_score(labels, scores)), 4), "golden_rows": len(labels)}
