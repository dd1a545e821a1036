"""The performance monitors of a binary system: realized (with segments), estimated, uplift, and why.

``performance_monitors`` is called by ``steward.monitoring.runner.run_monitors`` with the window's predictions
and returns:

- ``performance``: realized metrics per model version once outcomes arrived, a breach when the ROC
  AUC interval lies wholly below the champion's registered ROC AUC less ``AUC_TOLERANCE``; with
  ``monitors.segments`` declared, ``details["segments"]`` gives ROC AUC per value of each segment
  column (numeric columns with many values are cut at their window quartiles);
- ``estimated_performance``: CBPE fitted on the champion's reference sample scored by the champion
  (cached per version), applied to the champion's scores in the window; a breach on the same rule,
  with the estimated band in place of the realized interval;
- ``uplift`` when the policy keeps a holdout (reported, never a breach).

When ``performance`` or ``estimated_performance`` breaches and drift alarmed, ``details["why"]``
lists the drifted features ranked by drift times permutation importance on the reference
(``steward.monitoring.why.rank_drift_by_importance``), top five, and the summary names the first.

Example::

    results = performance_monitors(steward, events, steward.system("churn"), (start, end),
                                   predictions, reference, report)
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any, Final

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from steward.data.drift import DriftReport
from steward.data.events import EventLog
from steward.errors import InvalidInputError, NotFoundError
from steward.model.flavors import LoadedModel
from steward.model.registry import ModelVersion
from steward.monitoring.metrics import (
    CBPE,
    estimate_performance,
    join_outcomes,
    realized_performance,
)
from steward.monitoring.result import AUC_TOLERANCE, MIN_ROWS, MonitorResult
from steward.monitoring.uplift import UpliftResult, uplift
from steward.monitoring.why import rank_drift_by_importance
from steward.workspace import Workspace
from steward.workspace.systems import SystemInfo

__all__ = [
    "MAX_SEGMENT_VALUES",
    "WHY_TOP",
    "FittedCBPECache",
    "decision_threshold",
    "performance_monitors",
    "uplift_between",
]

#: A numeric segment column with more distinct values is cut at its quartiles.
MAX_SEGMENT_VALUES: Final = 10
#: How many drifted features ``details["why"]`` lists.
WHY_TOP: Final = 5

Window = tuple[datetime, datetime]
CBPEKey = tuple[str, int, str, float]


class FittedCBPECache:
    """Fitted CBPEs by key, at most ``size`` of them (the oldest goes first), safe across threads.

    The loop's thread and a request's thread may both run the monitors: a lock guards the dict.
    A fit runs outside the lock, so one system's slow fit never holds up another's lookup; two
    threads fitting the same key at once both fit, and the first stored is kept.

    >>> cache = FittedCBPECache(size=1)
    >>> fitted = cache.get_or_fit(("sha", 1, "ref", 0.5), lambda: CBPE())
    >>> cache.get_or_fit(("sha", 1, "ref", 0.5), lambda: CBPE()) is fitted
    True
    >>> _ = cache.get_or_fit(("sha", 2, "ref", 0.5), lambda: CBPE())
    >>> len(cache)
    1
    """

    def __init__(self, size: int) -> None:
        if size < 1:
            raise InvalidInputError(
                f"FittedCBPECache size {size} is too small; pass size=1 or more"
            )
        self.size = size
        self._fitted: dict[CBPEKey, CBPE] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._fitted)

    def get_or_fit(self, key: CBPEKey, fit: Callable[[], CBPE]) -> CBPE:
        """The CBPE stored under ``key``, or ``fit()``'s, stored first (evicting the oldest)."""
        with self._lock:
            found = self._fitted.get(key)
        if found is not None:
            return found
        fitted = fit()
        with self._lock:
            if key not in self._fitted:
                while len(self._fitted) >= self.size:
                    self._fitted.pop(next(iter(self._fitted)))
                self._fitted[key] = fitted
            return self._fitted[key]

    def clear(self) -> None:
        """Forget every fitted CBPE."""
        with self._lock:
            self._fitted.clear()


# Fitted CBPEs per (artifact, version, reference, threshold): scoring the reference once per
# champion version, not once per run. Small: a process watches a few systems.
_CBPE_CACHE: Final = FittedCBPECache(size=16)


def performance_monitors(
    steward: Workspace,
    events: EventLog,
    info: SystemInfo,
    window: Window,
    predictions: pd.DataFrame,
    reference: pd.DataFrame | None,
    report: DriftReport | None,
) -> list[MonitorResult]:
    """Realized and estimated performance (and uplift) over the window's predictions."""
    start, _ = window
    outcomes = events.scan("outcome", info.name, start=start).to_pandas()
    joined = _join(predictions, outcomes)
    try:
        champion: ModelVersion | None = steward.version(info.name, "champion")
    except NotFoundError:
        champion = None
    registered = None if champion is None else champion.metrics.get("roc_auc")
    registered = None if registered is None else float(registered)
    threshold = decision_threshold(info.config)
    segments = list(info.declared.monitors.segments)
    figures = _registered_aucs(steward, info.name)
    results = [_performance(info.name, window, joined, threshold, figures, segments)]
    results.append(
        _estimated(steward, info, window, predictions, reference, champion, threshold, registered)
    )
    action = _first_action(info.config)
    if action and predictions["holdout"].fillna(False).any():
        results.append(_uplift(info.name, window, joined, action))
    breached = any(result.breach for result in results[:2])
    if breached and report is not None and report.alarmed_columns and reference is not None:
        why = _why(steward, info, reference, predictions, report)
        results = [_with_why(result, why) if result.breach else result for result in results]
    return results


def _join(predictions: pd.DataFrame, outcomes: pd.DataFrame) -> pd.DataFrame:
    if outcomes.empty:
        return predictions.assign(outcome_value=np.nan, labeled=False)
    return join_outcomes(predictions, outcomes, by="each")  # each outcome by its own key


def _first_action(config: dict[str, Any]) -> str | None:
    thresholds = (config.get("policy") or {}).get("thresholds") or []
    return str(thresholds[0]["action"]) if thresholds else None


def decision_threshold(config: dict[str, Any]) -> float:
    """The policy's first threshold (0.5 without a policy): the score at which the model decides."""
    return float(((config.get("policy") or {}).get("thresholds") or [{"at": 0.5}])[0]["at"])


def _below(upper: float, registered: float | None) -> bool:
    return registered is not None and upper < registered - AUC_TOLERANCE


# --- realized ----------------------------------------------------------------------------------


def _performance(
    system: str,
    window: Window,
    joined: pd.DataFrame,
    threshold: float,
    registered: dict[int, float],
    segments: list[str],
) -> MonitorResult:
    """Realized ROC AUC per model version, each judged against the figure *it* was registered
    with (a v1 window is never held to v2's figure)."""
    labeled = joined[joined["labeled"]]
    if labeled.empty:
        text = f"no outcomes yet for the window's {len(joined)} predictions"
        return MonitorResult(system, "performance", *window, "not_enough_data", text)
    table = realized_performance(joined, task="binary", threshold=threshold)
    details: dict[str, Any] = {
        "metrics": json.loads(table.to_json(orient="records")),
        "unlabeled_share": float(1 - joined["labeled"].mean()),
    }
    if segments:
        details["segments"] = _segments(labeled, segments, threshold)
    auc = table[(table["metric"] == "roc_auc") & (table["status"] == "ok")]
    if auc.empty:
        text = f"{len(labeled)} labeled predictions: " + str(table["status"].iloc[0])
        return MonitorResult(system, "performance", *window, "not_enough_data", text, details)
    # Predictions logged from elsewhere may name no model version: held to no registered figure.
    own = [
        registered.get(int(version)) if pd.notna(version) else None
        for version in auc["model_version"]
    ]
    below = [_below(float(upper), figure) for upper, figure in zip(auc["upper"], own, strict=True)]
    breaching = auc[below]
    worst = (breaching if not breaching.empty else auc).sort_values("upper").iloc[0]
    named = pd.notna(worst["model_version"])
    which = f"v{int(worst['model_version'])}" if named else "predictions of no named version"
    text = (
        f"ROC AUC {worst['value']:.3f} ({worst['lower']:.3f} to {worst['upper']:.3f}) for "
        f"{which} over {int(worst['n_labeled'])} labeled predictions"
    )
    if not breaching.empty:
        version = int(worst["model_version"])
        text += f", below the {registered[version]:.3f} it was registered with"
        return MonitorResult(system, "performance", *window, "breach", text, details)
    return MonitorResult(system, "performance", *window, "ok", text, details)


def _registered_aucs(steward: Workspace, system: str) -> dict[int, float]:
    """The ROC AUC each version was registered with, by version number (numbers only)."""
    figures = {}
    for version in steward.versions(system):
        value = version.metrics.get("roc_auc")
        if isinstance(value, int | float) and not isinstance(value, bool):
            figures[version.version] = float(value)
    return figures


def _segments(
    labeled: pd.DataFrame, columns: list[str], threshold: float
) -> dict[str, list[dict[str, Any]]]:
    """ROC AUC per segment value of each column, with ``status`` saying when a segment is small."""
    decoded = [json.loads(text) if isinstance(text, str) else {} for text in labeled["inputs"]]
    found = {}
    for column in columns:
        keys = _segment_keys(pd.Series([row.get(column) for row in decoded], index=labeled.index))
        rows = []
        for key, group in labeled.groupby(keys, sort=True):
            table = realized_performance(group, task="binary", threshold=threshold, by=())
            auc = table[table["metric"] == "roc_auc"].iloc[0]
            ok = auc["status"] == "ok"
            rows.append(
                {
                    "segment": str(key),
                    "n_labeled": len(group),
                    "roc_auc": float(auc["value"]) if ok else None,
                    "lower": float(auc["lower"]) if ok else None,
                    "upper": float(auc["upper"]) if ok else None,
                    "status": str(auc["status"]),
                }
            )
        found[column] = rows
    return found


def _segment_keys(values: pd.Series) -> pd.Series:
    numeric = pd.to_numeric(values, errors="coerce")
    is_numeric = numeric.notna().sum() == values.notna().sum() and values.notna().any()
    if is_numeric and numeric.nunique() > MAX_SEGMENT_VALUES:
        cut = pd.qcut(numeric, 4, duplicates="drop")
        return cut.astype(str).where(numeric.notna(), "(missing)")
    return values.map(lambda value: "(missing)" if value is None else str(value))


# --- estimated ---------------------------------------------------------------------------------


def _estimated(
    steward: Workspace,
    info: SystemInfo,
    window: Window,
    predictions: pd.DataFrame,
    reference: pd.DataFrame | None,
    champion: ModelVersion | None,
    threshold: float,
    registered: float | None,
) -> MonitorResult:
    system = info.name

    def not_enough(text: str, details: dict[str, Any] | None = None) -> MonitorResult:
        return MonitorResult(
            system, "estimated_performance", *window, "not_enough_data", text, details or {}
        )

    if champion is None:
        return not_enough("no champion: CBPE calibrates the champion's scores")
    if reference is None or not info.target or info.target not in reference.columns:
        return not_enough(
            "no labeled reference: register the champion with --data including the target "
            f"column {info.target!r}"
        )
    scored = predictions[
        (predictions["model_version"] == champion.version) & predictions["score"].notna()
    ]
    if len(scored) < MIN_ROWS:
        return not_enough(
            f"{len(scored)} scored predictions by v{champion.version}; CBPE needs {MIN_ROWS}"
        )
    try:
        cbpe = _cbpe(steward, info, champion, reference, threshold)
    except InvalidInputError as error:
        return not_enough(f"CBPE could not be fitted on the reference: {error}")
    table = estimate_performance(scored, cbpe)
    roc = table[table["metric"] == "roc_auc"].iloc[0]
    estimated = {key: _number(roc[key]) for key in ("value", "lower", "upper")}
    details = {
        "estimated_roc_auc": {**estimated, "status": str(roc["status"])},
        "metrics": json.loads(table.to_json(orient="records")),
        "model_version": champion.version,
        "n_predictions": len(scored),
        "reference_calibration_error": float(cbpe.reference_calibration_error_),
        "registered_roc_auc": registered,
    }
    if roc["status"] != "ok":
        return not_enough(f"v{champion.version}: {roc['status']}", details)
    text = (
        f"estimated ROC AUC {roc['value']:.3f} ({roc['lower']:.3f} to {roc['upper']:.3f}) for "
        f"v{champion.version} over {len(scored)} predictions (assuming P(label | score) is as "
        "on the labeled reference)"
    )
    if _below(float(roc["upper"]), registered):
        text += f", below the {registered:.3f} it was registered with"
        return MonitorResult(system, "estimated_performance", *window, "breach", text, details)
    return MonitorResult(system, "estimated_performance", *window, "ok", text, details)


def _number(value: Any) -> float | None:
    return None if pd.isna(value) else float(value)


def _features(info: SystemInfo, reference: pd.DataFrame) -> pd.DataFrame:
    drop = [c for c in (info.target, info.entity_key) if c and c in reference.columns]
    return reference.drop(columns=drop)


def _cbpe(
    steward: Workspace,
    info: SystemInfo,
    champion: ModelVersion,
    reference: pd.DataFrame,
    threshold: float,
) -> CBPE:
    key = (
        champion.artifact_sha256,
        champion.version,
        str(champion.data.get("reference_sha256")),
        threshold,
    )

    def fit() -> CBPE:
        model = steward.load_model(info.name, champion.version)
        scores = np.asarray(model.predict(_features(info, reference), "binary"), dtype=np.float64)
        labels = _positive_labels(reference[info.target], model, scores)
        return CBPE(threshold=threshold).fit(scores, labels)

    return _CBPE_CACHE.get_or_fit(key, fit)


def _positive_labels(target: pd.Series, model: LoadedModel, scores: np.ndarray) -> np.ndarray:
    """The reference target as 0/1, the positive class being the model's second class.

    When the stored target does not use the model's class values (a model fitted on
    ``target == "UP"``, a reference that keeps "UP"/"DOWN"), the positive class is the value
    the champion's scores rank higher: a champion ranks its positives above its negatives.
    """
    values = target.to_numpy()
    if pd.isna(values).any():
        raise InvalidInputError(
            f"the reference target {target.name!r} has {int(pd.isna(values).sum())} missing values"
        )
    classes = getattr(model.model, "classes_", None)
    distinct = pd.unique(values)
    if classes is not None and len(classes) == 2 and set(distinct) <= set(classes):
        return (values == classes[1]).astype(np.float64)
    if len(distinct) != 2:
        raise InvalidInputError(
            f"the reference target {target.name!r} has {len(distinct)} distinct values; a binary "
            "system needs two"
        )
    labels = (values == sorted(distinct, key=str)[1]).astype(np.float64)
    if roc_auc_score(labels, scores) < 0.5:
        labels = 1.0 - labels
    return labels


# --- uplift and why ----------------------------------------------------------------------------


def _uplift(system: str, window: Window, joined: pd.DataFrame, action: str) -> MonitorResult:
    frame = joined[joined["labeled"]].rename(columns={"outcome_value": "value"})
    try:
        result = uplift(frame, action=action)
    except InvalidInputError as error:
        return MonitorResult(system, "uplift", *window, "not_enough_data", str(error))
    if not result.enough_data:
        text = result.reason or "not enough data"
        return MonitorResult(system, "uplift", *window, "not_enough_data", text, result.to_dict())
    # Reported, not judged: whether a lower outcome rate is good (churn) or bad (retention) is
    # not declared anywhere yet, so the uplift monitor never breaches on its own.
    return MonitorResult(system, "uplift", *window, "ok", result.summary(), result.to_dict())


def uplift_between(
    steward: Workspace, events: EventLog, system: str, start: datetime, end: datetime
) -> UpliftResult | str:
    """The uplift of the policy's first action over every labeled prediction made in
    ``[start, end)``: what the dashboard's range and the weekly report show. A string says why
    there is none (no policy action, no labeled prediction yet).

    A monitor's uplift covers one window, whose latest weeks wait for their late labels; a claim
    about the calls' effect wants every labeled prediction of the period, so this reads them all.
    """
    info = steward.system(system)
    action = _first_action(info.config)
    if action is None:
        return "no uplift: the system's policy has no action to compare against its holdout"
    predictions = events.scan("prediction", system, start=start, end=end).to_pandas()
    if predictions.empty:
        return "no predictions in this range yet"
    joined = _join(predictions, events.scan("outcome", system, start=start).to_pandas())
    frame = joined[joined["labeled"]].rename(columns={"outcome_value": "value"})
    if frame.empty:
        return f"none of the range's {len(predictions):,} predictions has an outcome yet"
    try:
        return uplift(frame, action=action)
    except InvalidInputError as error:
        return f"no uplift for this range: {error}"


def _why(
    steward: Workspace,
    info: SystemInfo,
    reference: pd.DataFrame,
    predictions: pd.DataFrame,
    report: DriftReport,
) -> list[dict[str, Any]]:
    """The drifted features ranked by drift times permutation importance, top ``WHY_TOP``."""
    features = _features(info, reference)
    model = steward.load_model(info.name, "champion")
    scores = np.asarray(model.predict(features, "binary"), dtype=np.float64)
    labels = _positive_labels(reference[info.target], model, scores).astype(int)
    decoded = [json.loads(text) if isinstance(text, str) else {} for text in predictions["inputs"]]
    current = pd.DataFrame.from_records(decoded).reindex(columns=features.columns)
    covered = {result.column for result in report.results} | set(report.skipped_columns)
    # A report that left columns out (e.g. no values in the window) cannot rank them: let
    # rank_drift_by_importance compare the window's rows itself.
    given = report if covered >= set(features.columns) else None
    table = rank_drift_by_importance(model, features, labels, current, report=given)
    drifted = table[table["alarm"]].head(WHY_TOP)
    return json.loads(drifted.to_json(orient="records"))


def _with_why(result: MonitorResult, why: list[dict[str, Any]]) -> MonitorResult:
    if not why:
        return result
    details = {**result.details, "why": why}
    summary = f"{result.summary}; drift in {why[0]['column']} explains most"
    return dataclasses.replace(result, summary=summary, details=details)
