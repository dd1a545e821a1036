"""Model performance: outcomes joined to predictions, realized quality, and quality estimated early.

Three steps, each a function or a fitted object (``docs/performance.md`` has the definitions):

1. ``join_outcomes`` attaches the logged outcomes to the logged predictions, by prediction id or by
   entity key (the first outcome at or after the prediction, within a horizon).
2. ``realized_performance`` scores the labeled predictions per model version and time window, with a
   95% interval on every metric (Wilson, DeLong or a vectorized bootstrap) and a ``status`` saying
   "not enough data" where a group is too small for a number to mean anything.
3. ``CBPE`` estimates a binary classifier's quality before the labels arrive, from the scores alone
   (confidence-based performance estimation); ``estimate_performance`` does it per window.

Example::

    >>> import pandas as pd
    >>> predictions = pd.DataFrame({"id": ["p1", "p2"], "score": [0.9, 0.2],
    ...     "event_time": pd.to_datetime(["2024-05-01", "2024-05-02"], utc=True)})
    >>> outcomes = pd.DataFrame({"id": ["o1"], "prediction_id": ["p1"], "value": [1.0],
    ...     "event_time": pd.to_datetime(["2024-05-20"], utc=True)})
    >>> join_outcomes(predictions, outcomes)["labeled"].tolist()
    [True, False]
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold

from steward.errors import InvalidInputError, NotFittedError

__all__ = [
    "BINARY_METRICS",
    "CALIBRATION_BINS",
    "CBPE",
    "ESTIMATED_METRICS",
    "JOIN_KEYS",
    "MIN_PER_CLASS",
    "MIN_SAMPLES",
    "REGRESSION_METRICS",
    "auc_placements",
    "estimate_performance",
    "expected_calibration_error",
    "join_outcomes",
    "realized_performance",
]

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]
# A metric on weighted rows: (values, targets, weights of shape (resamples, rows)) -> per resample.
_Statistic = Callable[[FloatArray, FloatArray, FloatArray], FloatArray]

JOIN_KEYS: Final = ("prediction_id", "entity_key")
BINARY_METRICS: Final = (
    "roc_auc",
    "pr_auc",
    "precision",
    "recall",
    "f1",
    "fpr",
    "fnr",
    "brier",
    "ece",
)
REGRESSION_METRICS: Final = ("mae", "rmse", "mape", "r2")
ESTIMATED_METRICS: Final = ("roc_auc", "precision", "recall", "f1", "fpr", "accuracy")
# Below these counts an interval is so wide (or a class so thin) that a number misleads more
# than it informs: 30 labeled rows per group, and 5 of each class for the ranking metrics.
MIN_SAMPLES: Final = 30
MIN_PER_CLASS: Final = 5
CALIBRATION_BINS: Final = 10
# Bootstrap resamples are drawn in batches of at most this many cells (resamples x rows), so a
# million-row window costs memory in megabytes, not gigabytes.
_BATCH_CELLS: Final = 4_000_000
_OK: Final = "ok"
_BOUNDS: Final = ("", "_lower", "_upper")
_OUTCOME_COLUMNS: Final = {
    "id": "outcome_id",
    "event_time": "outcome_time",
    "value": "outcome_value",
    "value_text": "outcome_value_text",
}


class _Metric(NamedTuple):
    value: float
    lower: float
    upper: float
    method: str
    status: str


class _Settings(NamedTuple):
    threshold: float
    min_samples: int
    min_per_class: int
    confidence: float
    n_resamples: int


def _missing(status: str, method: str = "") -> _Metric:
    return _Metric(np.nan, np.nan, np.nan, method, status)


# ---------------------------------------------------------------------------------------------
# Joining outcomes to predictions


def join_outcomes(
    predictions: pd.DataFrame,
    outcomes: pd.DataFrame,
    *,
    by: str = "prediction_id",
    horizon: str | dt.timedelta | pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Left-join outcomes to predictions; every prediction stays, unlabeled if nothing matched.

    ``by="prediction_id"`` matches outcomes whose ``prediction_id`` is the prediction's ``id``;
    when several match, the latest (by ``event_time``, then ``received_at`` and ``sequence``)
    wins and ``n_outcomes`` says how many there were. ``by="entity_key"`` takes the first outcome
    of the same entity at or after the prediction's ``event_time``. ``horizon`` (e.g. ``"30D"``)
    ignores outcomes later than the prediction time plus the horizon. Outcome rows repeating an
    outcome ``id`` count once (the last copy, as the event log reads them). Adds ``outcome_id``,
    ``outcome_time``, ``outcome_value`` (and ``outcome_value_text``), ``n_outcomes`` and
    ``labeled``; rows keep the order of ``predictions``. Outcomes whose id starts with
    ``review:`` record a reviewer's decision (``steward.governance.review``), not a label, and are ignored.

    Example::

        >>> import pandas as pd
        >>> times = pd.to_datetime(["2024-05-01", "2024-05-03", "2024-06-20"], utc=True)
        >>> predictions = pd.DataFrame({"id": ["p1", "p2"], "entity_key": ["c1", "c1"],
        ...                             "event_time": times[:2], "score": [0.7, 0.8]})
        >>> outcomes = pd.DataFrame({"id": ["o1"], "entity_key": ["c1"], "value": [1.0],
        ...                          "event_time": times[2:], "prediction_id": [None]})
        >>> join_outcomes(predictions, outcomes, by="entity_key", horizon="30D")["labeled"].tolist()
        [False, False]
        >>> join_outcomes(predictions, outcomes, by="entity_key", horizon="60D")["labeled"].tolist()
        [True, True]
    """
    if by not in JOIN_KEYS:
        raise InvalidInputError(
            f"join by {by!r} is not supported; use 'prediction_id' or 'entity_key'"
        )
    _require_columns(predictions, ("id", "event_time"), "predictions")
    _require_columns(outcomes, ("id", "event_time", by, "value"), "outcomes")
    if by == "entity_key":
        _require_columns(predictions, ("entity_key",), "predictions")
    limit = _as_horizon(horizon)
    # The system is part of every event's identity: match within it when both frames carry it.
    system = ["system"] if "system" in predictions and "system" in outcomes else []
    left = predictions.reset_index(drop=True)
    left = left.assign(event_time=pd.to_datetime(left["event_time"], utc=True).astype(_TIME))
    right = _outcome_rows(_without_review_decisions(outcomes), by, system)
    if by == "prediction_id":
        matched = _match_by_prediction_id(left, right, system, limit)
    else:
        matched = _match_by_entity_key(left, right, system, limit)
    joined = left.join(matched)
    joined["n_outcomes"] = joined["n_outcomes"].fillna(0).astype("int64")
    joined["labeled"] = joined["outcome_id"].notna()
    return joined


_TIME: Final = "datetime64[ns, UTC]"


def _without_review_decisions(outcomes: pd.DataFrame) -> pd.DataFrame:
    # steward.review logs each reviewer's decision as an outcome "review:<prediction id>"; it says
    # what was done, not what happened, so it must never replace or stand in for a label.
    decided = outcomes["id"].astype("string").str.startswith("review:").fillna(False)
    return outcomes[~decided.to_numpy(dtype=bool)] if decided.any() else outcomes


def _require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [column for column in columns if column not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"{what} lack column(s) {', '.join(map(repr, missing))} (they have "
            f"{', '.join(map(str, frame.columns)) or 'none'}); read them with EventLog.scan, "
            "whose schemas are in steward.events"
        )


def _as_horizon(horizon: str | dt.timedelta | pd.Timedelta | None) -> pd.Timedelta | None:
    if horizon is None:
        return None
    try:
        limit = pd.Timedelta(horizon)
    except ValueError as error:
        raise InvalidInputError(
            f"horizon {horizon!r} is not a duration; pass e.g. '30D', '12h' or a timedelta"
        ) from error
    if limit <= pd.Timedelta(0):
        raise InvalidInputError(f"horizon {horizon!r} must be positive, e.g. '30D'")
    return limit


def _outcome_rows(outcomes: pd.DataFrame, by: str, system: list[str]) -> pd.DataFrame:
    """One row per outcome id, oldest event first, columns renamed.

    A repeated id keeps its last received copy (the event log's rule: a correction replaces),
    ordered by ``received_at``, ``writer``, ``sequence`` where present, else by row order.
    """
    receipt = [c for c in ("received_at", "writer", "sequence") if c in outcomes.columns]
    rows = outcomes.sort_values(receipt, kind="stable") if receipt else outcomes
    rows = rows.drop_duplicates([*system, "id"], keep="last")
    columns = [*system, by, *(c for c in _OUTCOME_COLUMNS if c in rows.columns)]
    rows = rows[[*columns, *receipt]].rename(columns=_OUTCOME_COLUMNS)
    rows["outcome_time"] = pd.to_datetime(rows["outcome_time"], utc=True).astype(_TIME)
    rows = rows.sort_values(["outcome_time", *receipt], kind="stable").drop(columns=receipt)
    return rows[rows[by].notna()].reset_index(drop=True)


def _match_by_prediction_id(
    left: pd.DataFrame, right: pd.DataFrame, system: list[str], limit: pd.Timedelta | None
) -> pd.DataFrame:
    keys = left[[*system, "id", "event_time"]].assign(_row=np.arange(len(left)))
    pairs = keys.merge(right, left_on=[*system, "id"], right_on=[*system, "prediction_id"])
    if limit is not None:
        pairs = pairs[pairs["outcome_time"] - pairs["event_time"] <= limit]
    counts = pairs.groupby("_row").size()
    # _outcome_rows sorted oldest first and merge keeps that order: the last row is the latest.
    latest = pairs.drop_duplicates("_row", keep="last").set_index("_row")
    latest = latest.drop(columns=[*system, "id", "event_time", "prediction_id"])
    return latest.assign(n_outcomes=counts).reindex(range(len(left)))


def _match_by_entity_key(
    left: pd.DataFrame, right: pd.DataFrame, system: list[str], limit: pd.Timedelta | None
) -> pd.DataFrame:
    keys = left[[*system, "entity_key", "event_time"]].assign(_row=np.arange(len(left)))
    keys = keys[keys["entity_key"].notna()].sort_values("event_time", kind="stable")
    # merge_asof wants identical key dtypes; logged frames mix object and string columns.
    keys = keys.astype(dict.fromkeys([*system, "entity_key"], object))
    right = right.astype(dict.fromkeys([*system, "entity_key"], object))
    # Two outcomes of one entity at the same instant: the later write wins, as for ids.
    right = right.drop_duplicates([*system, "entity_key", "outcome_time"], keep="last")
    matched = pd.merge_asof(
        keys,
        right.sort_values("outcome_time", kind="stable"),
        left_on="event_time",
        right_on="outcome_time",
        by=[*system, "entity_key"],
        direction="forward",
        allow_exact_matches=True,
        tolerance=limit,
    )
    matched = matched.drop(columns=[*system, "entity_key", "event_time"]).set_index("_row")
    matched["n_outcomes"] = matched["outcome_id"].notna().astype("int64")
    return matched.reindex(range(len(left)))


# ---------------------------------------------------------------------------------------------
# Windows and groups


def _with_windows(
    frame: pd.DataFrame, freq: str | None, windows: Sequence[tuple[Any, Any]] | None
) -> tuple[pd.DataFrame, list[str]]:
    """The rows with ``window_start``/``window_end`` by prediction time, and the window columns."""
    if freq is not None and windows is not None:
        raise InvalidInputError("pass freq (e.g. '7D') or explicit windows, not both")
    if freq is None and windows is None:
        return frame, []
    _require_columns(frame, ("event_time",), "predictions")
    times = pd.to_datetime(frame["event_time"], utc=True)
    if freq is not None:
        start, end = _floor_times(times, freq)
        return frame.assign(window_start=start, window_end=end), ["window_start", "window_end"]
    parts = []
    for window in windows or ():
        start, end = (pd.Timestamp(bound) for bound in window)
        start, end = (t.tz_localize("UTC") if t.tzinfo is None else t for t in (start, end))
        if not start < end:
            raise InvalidInputError(f"window [{start}, {end}) is empty; the start must come first")
        inside = (times >= start) & (times < end)
        parts.append(frame[inside].assign(window_start=start, window_end=end))
    if not parts:
        raise InvalidInputError("windows is empty; pass at least one (start, end) pair")
    return pd.concat(parts, ignore_index=True), ["window_start", "window_end"]


def _floor_times(times: pd.Series, freq: str) -> tuple[pd.Series, pd.Series]:
    try:
        offset = pd.tseries.frequencies.to_offset(freq)
    except ValueError as error:
        raise InvalidInputError(
            f"freq {freq!r} is not a pandas frequency; use e.g. '1D', '7D', '1h' or 'W'"
        ) from error
    try:
        # Fixed lengths (days, hours) align to the Unix epoch, so windows never depend on the data.
        start = times.dt.floor(offset)
        return start, start + offset
    except ValueError:
        # Calendar lengths (weeks, months) have no fixed size: cut at calendar boundaries from
        # the one at or before the first prediction.
        first = offset.rollback(times.min().normalize())
        edges = pd.date_range(first, times.max() + offset, freq=offset)
        index = edges.searchsorted(times, side="right") - 1
        return (
            pd.Series(edges[index], index=times.index),
            pd.Series(edges[index + 1], index=times.index),
        )


def _groups(frame: pd.DataFrame, keys: list[str]) -> Iterator[tuple[dict[str, Any], pd.DataFrame]]:
    if not keys:
        yield {}, frame
        return
    for values, group in frame.groupby(keys, dropna=False, sort=True):
        yield dict(zip(keys, values, strict=True)), group


# ---------------------------------------------------------------------------------------------
# Realized performance


def realized_performance(
    joined: pd.DataFrame,
    *,
    task: str = "binary",
    threshold: float = 0.5,
    freq: str | None = None,
    windows: Sequence[tuple[Any, Any]] | None = None,
    by: Sequence[str] = ("model_version",),
    min_samples: int = MIN_SAMPLES,
    min_per_class: int = MIN_PER_CLASS,
    confidence: float = 0.95,
    n_resamples: int = 400,
    seed: int = 0,
) -> pd.DataFrame:
    """Score labeled predictions per group and window, one row per metric, with an interval.

    ``joined`` is what ``join_outcomes`` returns (``score``, ``outcome_value``, ``labeled``).
    Groups are the ``by`` columns and, with ``freq`` (``"1D"``, ``"7D"``, ``"W"``) or explicit
    ``windows`` (``[(start, end), ...]``, half-open), the window of the prediction's event time.
    Binary metrics use ``score >= threshold`` as the positive decision. Columns: the group keys,
    ``n_predictions``, ``n_labeled``, ``unlabeled_share``, ``metric``, ``value``, ``lower``,
    ``upper``, ``ci_method`` and ``status`` (``"ok"``, or why ``value`` is NaN).

    Example::

        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> scores = rng.uniform(size=200)
        >>> joined = pd.DataFrame({"model_version": 1, "score": scores, "labeled": True,
        ...                        "outcome_value": (rng.uniform(size=200) < scores) * 1.0})
        >>> table = realized_performance(joined).set_index("metric")
        >>> bool(table.loc["roc_auc", "lower"] < table.loc["roc_auc", "value"] < 1)
        True
    """
    if task not in ("binary", "regression"):
        raise InvalidInputError(f"task {task!r} is not supported; use 'binary' or 'regression'")
    _check_settings(confidence, n_resamples, min_samples, min_per_class)
    settings = _Settings(threshold, min_samples, min_per_class, confidence, n_resamples)
    _require_columns(joined, ("score", "outcome_value", "labeled", *by), "joined predictions")
    frame, window_keys = _with_windows(joined, freq, windows)
    rows = []
    for keys, group in _groups(frame, [*by, *window_keys]):
        usable = group["labeled"].astype(bool).to_numpy() & group["score"].notna().to_numpy()
        scores = group["score"].to_numpy(dtype=np.float64)[usable]
        labels = _labels(group["outcome_value"][usable], task)
        score = _binary_metrics if task == "binary" else _regression_metrics
        metrics = score(scores, labels, settings, np.random.default_rng(seed))
        counts = {
            "n_predictions": len(group),
            "n_labeled": int(usable.sum()),
            "unlabeled_share": 1.0 - usable.sum() / len(group),
        }
        for name, metric in metrics.items():
            rows.append({**keys, **counts, "metric": name, **metric._asdict()})
    columns = [*by, *window_keys, "n_predictions", "n_labeled", "unlabeled_share", "metric"]
    result = pd.DataFrame(rows, columns=[*columns, *_Metric._fields])
    return result.rename(columns={"method": "ci_method"})


def _check_settings(confidence: float, n_resamples: int, min_samples: int, minimum: int) -> None:
    if not 0.0 < confidence < 1.0:
        raise InvalidInputError(f"confidence {confidence} must lie in (0, 1), e.g. 0.95")
    if n_resamples < 10:
        raise InvalidInputError(f"n_resamples {n_resamples} is too few; use 200 or more")
    if min_samples < 2 or minimum < 1:
        raise InvalidInputError(
            f"min_samples {min_samples} must be >= 2 and min_per_class {minimum} >= 1"
        )


def _labels(values: pd.Series, task: str) -> FloatArray:
    labels = pd.to_numeric(values, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(labels) | ((labels != 0.0) & (labels != 1.0) if task == "binary" else False)
    if bad.any():
        first = values[bad].tolist()[0]
        expected = "0 or 1" if task == "binary" else "a finite number"
        raise InvalidInputError(
            f"outcome value {first!r} (and {int(bad.sum()) - 1} more) is not {expected}, as a "
            f"{task} task needs; log outcomes with 'value' set, or pick the right task"
        )
    return labels


def _binary_metrics(
    scores: FloatArray, labels: FloatArray, settings: _Settings, rng: np.random.Generator
) -> dict[str, _Metric]:
    threshold, min_samples, min_per_class, confidence, n_resamples = settings
    n_positive, n_negative = int(labels.sum()), int(len(labels) - labels.sum())
    if len(labels) < min_samples:
        status = f"not enough data: {len(labels)} labeled, minimum {min_samples}"
        return {name: _missing(status) for name in BINARY_METRICS}
    class_status = _OK
    if min(n_positive, n_negative) < min_per_class:
        class_status = (
            f"not enough data: {n_positive} positive and {n_negative} negative labels, "
            f"minimum {min_per_class} of each"
        )
    decided = scores >= threshold
    tp = int((decided & (labels == 1)).sum())
    fp, fn = int(decided.sum()) - tp, n_positive - tp
    tn = n_negative - fp
    metrics = {
        "roc_auc": _delong(scores, labels, confidence) if class_status == _OK else None,
        "precision": _wilson(tp, tp + fp, confidence, "no predicted positives"),
        "recall": _wilson(tp, tp + fn, confidence, "no positive labels"),
        "fpr": _wilson(fp, fp + tn, confidence, "no negative labels"),
        "fnr": _wilson(fn, fn + tp, confidence, "no positive labels"),
    }
    statistics: dict[str, _Statistic] = {"f1": lambda s, y, w: _f1_rows(s, y, w, threshold)}
    if class_status == _OK:
        statistics["pr_auc"] = _average_precision_rows
    in_unit_interval = bool(((scores >= 0.0) & (scores <= 1.0)).all())
    if in_unit_interval:
        statistics.update(brier=_brier_rows, ece=_calibration_error_rows)
    metrics.update(_bootstrap(statistics, scores, labels, labels, confidence, n_resamples, rng))
    fallbacks = {
        "roc_auc": _missing(class_status, "delong"),
        "pr_auc": _missing(class_status, "stratified bootstrap"),
        "brier": _missing("undefined: scores outside [0, 1] are not probabilities"),
        "ece": _missing("undefined: scores outside [0, 1] are not probabilities"),
    }
    return {name: metrics.get(name) or fallbacks[name] for name in BINARY_METRICS}


def _regression_metrics(
    predicted: FloatArray, observed: FloatArray, settings: _Settings, rng: np.random.Generator
) -> dict[str, _Metric]:
    _, min_samples, _, confidence, n_resamples = settings
    if len(observed) < min_samples:
        status = f"not enough data: {len(observed)} labeled, minimum {min_samples}"
        return {name: _missing(status) for name in REGRESSION_METRICS}
    statistics = {"mae": _mae_rows, "rmse": _rmse_rows, "mape": _mape_rows, "r2": _r2_rows}
    metrics = _bootstrap(statistics, predicted, observed, None, confidence, n_resamples, rng)
    if np.ptp(observed) == 0.0:
        metrics["r2"] = _missing("undefined: every outcome is the same value", "bootstrap")
    return metrics


# ---------------------------------------------------------------------------------------------
# Intervals


def _z(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2.0))


def _wilson(successes: int, trials: int, confidence: float, empty: str) -> _Metric:
    """A proportion and its Wilson score interval (good coverage even near 0 or 1)."""
    if trials == 0:
        return _missing(f"undefined: {empty}", "wilson")
    z, share = _z(confidence), successes / trials
    denominator = 1.0 + z**2 / trials
    center = (share + z**2 / (2 * trials)) / denominator
    half = z / denominator * np.sqrt(share * (1 - share) / trials + z**2 / (4 * trials**2))
    return _Metric(share, max(0.0, center - half), min(1.0, center + half), "wilson", _OK)


def auc_placements(
    positives: FloatArray, negatives: FloatArray
) -> tuple[float, FloatArray, FloatArray]:
    """The ROC AUC (Mann–Whitney form) and DeLong's placement values: each positive's share of
    negatives scored below it, each negative's share of positives scored above it (midranks for
    ties). The unpaired interval here and the paired test in ``steward.loop.promotion`` both build on it.
    """
    m, n = len(positives), len(negatives)
    combined = stats.rankdata(np.concatenate([positives, negatives]))
    within_positives, within_negatives = stats.rankdata(positives), stats.rankdata(negatives)
    auc = (combined[:m].sum() - m * (m + 1) / 2.0) / (m * n)
    positive_placements = (combined[:m] - within_positives) / n
    negative_placements = 1.0 - (combined[m:] - within_negatives) / m
    return float(auc), positive_placements, negative_placements


def _delong(scores: FloatArray, labels: FloatArray, confidence: float) -> _Metric:
    """ROC AUC as a Mann–Whitney statistic, with DeLong's variance (Sun & Xu's midrank form)."""
    positives, negatives = scores[labels == 1], scores[labels == 0]
    m, n = len(positives), len(negatives)
    auc, positive_placements, negative_placements = auc_placements(positives, negatives)
    variance = positive_placements.var(ddof=1) / m + negative_placements.var(ddof=1) / n
    half = _z(confidence) * np.sqrt(variance)
    return _Metric(float(auc), max(0.0, auc - half), min(1.0, auc + half), "delong", _OK)


def _bootstrap(
    statistics: Mapping[str, _Statistic],
    values: FloatArray,
    targets: FloatArray,
    strata: FloatArray | None,
    confidence: float,
    n_resamples: int,
    rng: np.random.Generator,
) -> dict[str, _Metric]:
    """Point values and percentile intervals, resampling rows (within each stratum if given).

    A resample is a row of weights (how often each row was drawn) over rows sorted once by
    descending value, so ranking metrics need a cumulative sum per resample, not a sort.
    """
    method = "bootstrap" if strata is None else "stratified bootstrap"
    order = np.argsort(-values, kind="stable")
    values, targets = values[order], targets[order]
    strata = None if strata is None else strata[order]
    draws: dict[str, list[FloatArray]] = {name: [] for name in statistics}
    for weights in _resample_weights(strata, len(values), n_resamples, rng):
        for name, statistic in statistics.items():
            draws[name].append(statistic(values, targets, weights))
    metrics = {}
    for name, statistic in statistics.items():
        value = float(statistic(values, targets, np.ones((1, len(values))))[0])
        if not np.isfinite(value):
            metrics[name] = _missing(f"undefined: {name} has a zero denominator here", method)
            continue
        resampled = np.concatenate(draws[name])
        resampled = resampled[np.isfinite(resampled)]
        tail = (1.0 - confidence) / 2.0
        lower, upper = np.quantile(resampled, [tail, 1.0 - tail])
        metrics[name] = _Metric(value, float(lower), float(upper), method, _OK)
    return metrics


def _resample_weights(
    strata: FloatArray | None, n_rows: int, n_resamples: int, rng: np.random.Generator
) -> Iterator[FloatArray]:
    """Batches of resample weights, shape (batch, n_rows): each stratum keeps its size."""
    groups = (
        [np.arange(n_rows)] if strata is None else [np.flatnonzero(strata == v) for v in (1, 0)]
    )
    batch = max(1, min(n_resamples, _BATCH_CELLS // max(n_rows, 1)))
    for start in range(0, n_resamples, batch):
        size = min(batch, n_resamples - start)
        offsets = n_rows * np.arange(size)[:, None]
        drawn = [g[rng.integers(0, len(g), (size, len(g)))] + offsets for g in groups]
        counts = np.bincount(np.concatenate(drawn, axis=1).ravel(), minlength=size * n_rows)
        yield counts.reshape(size, n_rows).astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Metrics on weighted rows: each takes the rows (sorted by descending value), their targets and
# a (resamples, rows) array of weights, and returns one value per resample. With unit weights
# each equals scikit-learn's metric.


def _average_precision_rows(
    scores: FloatArray, labels: FloatArray, weights: FloatArray
) -> FloatArray:
    """Average precision as ``sklearn.metrics.average_precision_score``: ties share a threshold."""
    hits = weights * labels
    predicted, true_positives = np.cumsum(weights, axis=1), np.cumsum(hits, axis=1)
    precision = np.divide(
        true_positives, predicted, out=np.zeros_like(predicted), where=predicted > 0
    )
    # Each positive earns the precision at the end of its block of tied scores.
    block_end = np.append(scores[:-1] != scores[1:], True)
    end_index = np.where(block_end, np.arange(len(scores)), len(scores))
    end_index = np.minimum.accumulate(end_index[::-1])[::-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return (hits * precision[:, end_index]).sum(axis=1) / hits.sum(axis=1)


def _f1_rows(
    scores: FloatArray, labels: FloatArray, weights: FloatArray, threshold: float
) -> FloatArray:
    decided = scores >= threshold
    true_positives = weights @ (decided & (labels == 1)).astype(np.float64)
    wrong = weights @ (decided != (labels == 1)).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.asarray(2.0 * true_positives / (2.0 * true_positives + wrong), dtype=np.float64)


def _brier_rows(scores: FloatArray, labels: FloatArray, weights: FloatArray) -> FloatArray:
    return np.asarray(weights @ (scores - labels) ** 2 / len(scores), dtype=np.float64)


def _calibration_error_rows(
    scores: FloatArray, labels: FloatArray, weights: FloatArray
) -> FloatArray:
    """Expected calibration error over 10 equal-width bins (as ``calibration_curve`` bins them)."""
    edges = np.linspace(0.0, 1.0, CALIBRATION_BINS + 1)
    bins = np.searchsorted(edges[1:-1], scores)
    gaps = np.zeros((len(scores), CALIBRATION_BINS))
    gaps[np.arange(len(scores)), bins] = labels - scores
    # sum over bins of (n_bin / n) * |mean label - mean score| = sum |label sum - score sum| / n
    return np.asarray(np.abs(weights @ gaps).sum(axis=1) / len(scores), dtype=np.float64)


def _mae_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    return np.asarray(weights @ np.abs(observed - predicted) / len(observed), dtype=np.float64)


def _rmse_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    squared = weights @ (observed - predicted) ** 2 / len(observed)
    return np.asarray(np.sqrt(squared), dtype=np.float64)


def _mape_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    # scikit-learn's guard: a zero outcome divides by machine epsilon, not zero.
    scale = np.maximum(np.abs(observed), np.finfo(np.float64).eps)
    return np.asarray(weights @ (np.abs(observed - predicted) / scale) / len(observed))


def _r2_rows(predicted: FloatArray, observed: FloatArray, weights: FloatArray) -> FloatArray:
    residual = weights @ (observed - predicted) ** 2
    # Centred first, so the weighted variance does not cancel catastrophically for large means.
    centred = observed - observed.mean()
    total = weights @ centred**2 - (weights @ centred) ** 2 / len(observed)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 1.0 - residual / np.where(total > 0, total, 1.0), np.nan)


def expected_calibration_error(labels: npt.ArrayLike, scores: npt.ArrayLike) -> float:
    """Expected calibration error: the share-weighted gap between mean label and mean score.

    Bins are 10 equal-width intervals of [0, 1], right-closed (the first also holds 0), exactly
    as ``sklearn.calibration.calibration_curve(..., n_bins=10)`` forms them.

    Example::

        >>> round(expected_calibration_error([0, 1, 1, 0], [0.05, 0.95, 0.95, 0.05]), 6)
        0.05
    """
    score_array = np.asarray(scores, dtype=np.float64)
    label_array = np.asarray(labels, dtype=np.float64)
    if score_array.shape != label_array.shape or score_array.ndim != 1 or not len(score_array):
        raise InvalidInputError(
            f"labels ({label_array.shape}) and scores ({score_array.shape}) must be two "
            "non-empty 1-D arrays of the same length"
        )
    if not ((score_array >= 0) & (score_array <= 1)).all():
        raise InvalidInputError("scores must be probabilities in [0, 1] for a calibration error")
    return float(
        _calibration_error_rows(score_array, label_array, np.ones((1, len(score_array))))[0]
    )


# ---------------------------------------------------------------------------------------------
# Confidence-based performance estimation


class CBPE:
    """Estimate a binary classifier's quality from its scores alone, before labels arrive.

    ``fit`` learns a map from score to probability on a labeled reference (isotonic regression,
    cross-fitted in ``n_folds`` stratified folds: each reference row gets a probability from a
    calibrator that never saw it, and new scores get the mean of the fold calibrators).
    ``estimate`` turns the calibrated probabilities ``p`` of new scores into the expected
    confusion matrix (``TP = sum of p`` over rows with ``score >= threshold``, and so on), the
    metrics that follow from it, and the expected ROC AUC. Each comes with a band for the metric
    the labels will show: the spread of the realized metric over ``n_simulations`` label draws
    from ``p`` (this window's sampling noise), widened by a delete-a-fold jackknife over the
    calibrators (the reference's). All of it holds while the calibration does: under covariate
    shift, not under concept drift.

    Example::

        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> scores = rng.uniform(size=2_000)
        >>> labels = (rng.uniform(size=2_000) < scores).astype(int)
        >>> estimate = CBPE().fit(scores, labels).estimate(rng.uniform(0.4, 0.6, size=500))
        >>> bool(estimate["roc_auc_lower"] < estimate["roc_auc"] < estimate["roc_auc_upper"])
        True
    """

    def __init__(
        self,
        threshold: float = 0.5,
        metrics: Sequence[str] = ESTIMATED_METRICS,
        *,
        n_folds: int = 5,
        n_simulations: int = 500,
        confidence: float = 0.95,
        seed: int = 0,
    ) -> None:
        self.threshold = threshold
        self.metrics = metrics
        self.n_folds = n_folds
        self.n_simulations = n_simulations
        self.confidence = confidence
        self.seed = seed

    def fit(self, reference_scores: npt.ArrayLike, reference_labels: npt.ArrayLike) -> CBPE:
        """Calibrate the scores on a labeled reference, cross-fitted; return ``self``.

        Example::

            >>> cbpe = CBPE().fit([0.1, 0.4, 0.35, 0.8] * 10, [0, 0, 1, 1] * 10)
            >>> len(cbpe.calibrators_), cbpe.n_reference_
            (5, 40)
        """
        unknown = sorted(set(self.metrics) - set(ESTIMATED_METRICS))
        if unknown:
            raise InvalidInputError(
                f"CBPE cannot estimate {', '.join(unknown)}; choose from {', '.join(ESTIMATED_METRICS)}"
            )
        _check_settings(self.confidence, self.n_simulations, 2, 1)
        scores, labels = _reference_arrays(reference_scores, reference_labels, self.n_folds)
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.seed)
        probabilities = np.empty_like(scores)
        calibrators = []
        for train, held_out in folds.split(scores, labels):
            calibrator = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
            calibrator.fit(scores[train], labels[train])
            probabilities[held_out] = calibrator.predict(scores[held_out])
            calibrators.append(calibrator)
        self.calibrators_ = calibrators
        self.reference_probabilities_ = probabilities
        self.reference_calibration_error_ = expected_calibration_error(labels, probabilities)
        self.n_reference_ = len(scores)
        return self

    def calibrate(self, scores: npt.ArrayLike) -> FloatArray:
        """Calibrated probabilities of ``scores``: the mean of the fold calibrators.

        Example::

            >>> cbpe = CBPE().fit([0.2, 0.4, 0.6, 0.8] * 10, [0, 0, 1, 1] * 10)
            >>> cbpe.calibrate([0.1, 0.9]).tolist()
            [0.0, 1.0]
        """
        calibrators = self._fitted()
        values = _score_array(scores, "scores")
        return np.mean([calibrator.predict(values) for calibrator in calibrators], axis=0)

    def estimate(self, scores: npt.ArrayLike) -> dict[str, float]:
        """Expected confusion matrix and metrics for unlabeled ``scores``, each with its band.

        Keys: ``n_predictions``, ``expected_tp``/``fp``/``fn``/``tn``, ``expected_positives``
        (the sum of probabilities), and per metric ``name``, ``name_lower`` and ``name_upper``.

        Example::

            >>> cbpe = CBPE(metrics=("precision",)).fit([0.2, 0.4, 0.6, 0.8] * 10, [0, 0, 1, 1] * 10)
            >>> cbpe.estimate([0.9, 0.9, 0.1])["precision"]
            1.0
        """
        values = _score_array(scores, "scores")
        fold_probabilities = [calibrator.predict(values) for calibrator in self._fitted()]
        probabilities = np.mean(fold_probabilities, axis=0)
        decided = values >= self.threshold
        expected = _expected_metrics(values, probabilities, decided)
        # Calibrator error: a delete-a-fold jackknife, each fold's calibrator having left one out.
        per_fold = [
            list(_expected_metrics(values, p, decided).values()) for p in fold_probabilities
        ]
        spread = np.sqrt((len(per_fold) - 1) * np.var(per_fold, axis=0))
        jackknife = dict(zip(expected, spread, strict=True))
        result = {"n_predictions": float(len(values)), **expected}
        simulated = _simulate_realized(
            values, probabilities, decided, self.n_simulations, np.random.default_rng(self.seed)
        )
        z, tail = _z(self.confidence), (1.0 - self.confidence) / 2.0
        for name in self.metrics:
            draws = simulated[name][np.isfinite(simulated[name])]
            low, high = np.quantile(draws, [tail, 1 - tail]) if len(draws) else (np.nan,) * 2
            value, calibration = result[name], z * jackknife[name]
            # Two independent errors, label draws and calibrator, add in quadrature per side.
            result[f"{name}_lower"] = np.clip(value - np.hypot(value - low, calibration), 0, 1)
            result[f"{name}_upper"] = np.clip(value + np.hypot(high - value, calibration), 0, 1)
        return {key: float(value) for key, value in result.items()}

    def _fitted(self) -> list[IsotonicRegression]:
        if not hasattr(self, "calibrators_"):
            raise NotFittedError(
                "this CBPE is not fitted; call fit(reference_scores, reference_labels) first"
            )
        return list(self.calibrators_)


def _expected_metrics(
    scores: FloatArray, probabilities: FloatArray, decided: BoolArray
) -> dict[str, float]:
    """The expected confusion matrix and every estimated metric, for one set of probabilities."""
    tp = float(probabilities[decided].sum())
    fn = float(probabilities[~decided].sum())
    fp, tn = float(decided.sum()) - tp, float((~decided).sum()) - fn
    counts = {"expected_tp": tp, "expected_fp": fp, "expected_fn": fn, "expected_tn": tn}
    metrics = _confusion_metrics(*(np.array([count]) for count in counts.values()))
    return {
        "expected_positives": tp + fn,
        **counts,
        **{name: float(values[0]) for name, values in metrics.items()},
        "roc_auc": _expected_auc(scores, probabilities),
    }


def _score_array(scores: npt.ArrayLike, what: str) -> FloatArray:
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise InvalidInputError(
            f"{what} must be a 1-D array of finite numbers; drop rows without a score first"
        )
    return values


def _reference_arrays(
    scores: npt.ArrayLike, labels: npt.ArrayLike, n_folds: int
) -> tuple[FloatArray, FloatArray]:
    score_array = _score_array(scores, "reference_scores")
    label_array = np.asarray(labels, dtype=np.float64)
    if label_array.shape != score_array.shape:
        raise InvalidInputError(
            f"reference_labels has {label_array.size} values and reference_scores "
            f"{score_array.size}; pass one label per score"
        )
    if not np.isin(label_array, (0.0, 1.0)).all():
        raise InvalidInputError("reference_labels must be 0 or 1; map the positive class to 1")
    counts = (int(label_array.sum()), int(len(label_array) - label_array.sum()))
    if min(counts) < n_folds:
        raise InvalidInputError(
            f"the reference has {counts[0]} positive and {counts[1]} negative labels; "
            f"cross-fitting in {n_folds} folds needs at least {n_folds} of each"
        )
    return score_array, label_array


def _confusion_metrics(
    tp: FloatArray, fp: FloatArray, fn: FloatArray, tn: FloatArray
) -> dict[str, FloatArray]:
    with np.errstate(invalid="ignore", divide="ignore"):
        return {
            "precision": tp / (tp + fp),
            "recall": tp / (tp + fn),
            "f1": 2 * tp / (2 * tp + fp + fn),
            "fpr": fp / (fp + tn),
            "accuracy": (tp + tn) / (tp + fp + fn + tn),
        }


def _expected_auc(scores: FloatArray, probabilities: FloatArray) -> float:
    """E[concordant positive-negative pairs] / E[positive x negative pairs], labels ~ Bernoulli(p).

    A row is never paired with itself, which is where this differs (by O(1/n)) from NannyML's
    trapezoid over expected true and false positive rates. Tied scores count half.
    """
    order = np.argsort(scores, kind="stable")
    ranked, positive = scores[order], probabilities[order]
    negative = 1.0 - positive
    _, block = np.unique(ranked, return_inverse=True)
    negative_per_block = np.bincount(block, weights=negative)
    negative_below = np.concatenate([[0.0], np.cumsum(negative_per_block)[:-1]])[block]
    tied_others = negative_per_block[block] - negative
    concordant = (positive * (negative_below + 0.5 * tied_others)).sum()
    pairs = positive.sum() * negative.sum() - (positive * negative).sum()
    return float(concordant / pairs) if pairs > 0 else np.nan


def _simulate_realized(
    scores: FloatArray,
    probabilities: FloatArray,
    decided: BoolArray,
    n_simulations: int,
    rng: np.random.Generator,
) -> dict[str, FloatArray]:
    """The realized metrics under ``n_simulations`` label draws from the calibrated probabilities."""
    n = len(scores)
    ranks = stats.rankdata(scores)
    decided_count = float(decided.sum())
    pieces: dict[str, list[FloatArray]] = {}
    batch = max(1, min(n_simulations, _BATCH_CELLS // max(n, 1)))
    for start in range(0, n_simulations, batch):
        size = min(batch, n_simulations - start)
        labels = (rng.random((size, n)) < probabilities).astype(np.float64)
        positives, tp = labels.sum(axis=1), labels @ decided.astype(np.float64)
        drawn = _confusion_metrics(
            tp, decided_count - tp, positives - tp, n - decided_count - positives + tp
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            # Mann–Whitney from midranks: a ranking metric as one matrix product per batch.
            drawn["roc_auc"] = (labels @ ranks - positives * (positives + 1) / 2) / (
                positives * (n - positives)
            )
        for name, values in drawn.items():
            pieces.setdefault(name, []).append(values)
    return {name: np.concatenate(values) for name, values in pieces.items()}


def estimate_performance(
    predictions: pd.DataFrame,
    cbpe: CBPE,
    *,
    freq: str | None = None,
    windows: Sequence[tuple[Any, Any]] | None = None,
    by: Sequence[str] = (),
    min_samples: int = MIN_SAMPLES,
    min_per_class: int = MIN_PER_CLASS,
) -> pd.DataFrame:
    """CBPE estimates per group and window of prediction time, one row per metric.

    Pass the predictions of the model version ``cbpe`` was fitted for: its calibration belongs to
    that model. A window with fewer than ``min_samples`` scored predictions, or (for ROC AUC)
    fewer than ``min_per_class`` expected positives or negatives, gets NaN and a ``status``.
    Columns: the group keys, ``n_predictions``, ``metric``, ``value``, ``lower``, ``upper``,
    ``status``.

    Example::

        >>> import numpy as np, pandas as pd
        >>> rng = np.random.default_rng(0)
        >>> reference = rng.uniform(size=1_000)
        >>> cbpe = CBPE().fit(reference, rng.uniform(size=1_000) < reference)
        >>> frame = pd.DataFrame({"score": rng.uniform(size=110),
        ...     "event_time": pd.date_range("2024-05-01", periods=110, freq="h", tz="UTC")})
        >>> estimate_performance(frame, cbpe, freq="2D")["status"].unique().tolist()
        ['ok', 'not enough data: 14 predictions, minimum 30']
    """
    _require_columns(predictions, ("score", *by), "predictions")
    scored = predictions[predictions["score"].notna()]
    frame, window_keys = _with_windows(scored, freq, windows)
    rows = []
    for keys, group in _groups(frame, [*by, *window_keys]):
        scores = group["score"].to_numpy(dtype=np.float64)
        for metric in _estimated_metrics(scores, cbpe, min_samples, min_per_class):
            rows.append({**keys, "n_predictions": len(scores), **metric})
    columns = [*by, *window_keys, "n_predictions", "metric", "value", "lower", "upper", "status"]
    return pd.DataFrame(rows, columns=columns)


def _estimated_metrics(
    scores: FloatArray, cbpe: CBPE, min_samples: int, min_per_class: int
) -> list[dict[str, Any]]:
    if len(scores) < min_samples:
        status = f"not enough data: {len(scores)} predictions, minimum {min_samples}"
        return [_estimated_row(name, {}, status) for name in cbpe.metrics]
    estimate = cbpe.estimate(scores)
    expected_positives = estimate["expected_positives"]
    smaller_class = min(expected_positives, len(scores) - expected_positives)
    rows = []
    for name in cbpe.metrics:
        status = _OK
        if name == "roc_auc" and smaller_class < min_per_class:
            status = (
                f"not enough data: {smaller_class:.1f} expected in the smaller class, "
                f"minimum {min_per_class}"
            )
        rows.append(_estimated_row(name, estimate if status == _OK else {}, status))
    return rows


def _estimated_row(name: str, estimate: Mapping[str, float], status: str) -> dict[str, Any]:
    value, lower, upper = (estimate.get(f"{name}{suffix}", np.nan) for suffix in _BOUNDS)
    return {"metric": name, "value": value, "lower": lower, "upper": upper, "status": status}
