"""Joining logged outcomes to logged predictions, by prediction id or by entity key.

``join_outcomes`` is the first step of every performance measurement (``docs/performance.md``):
each prediction keeps its row and gains the outcome that labels it, if one arrived.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

import numpy as np
import pandas as pd

from steward.errors import InvalidInputError

__all__ = ["JOIN_KEYS", "join_outcomes", "require_columns"]

JOIN_KEYS: Final = ("prediction_id", "entity_key", "each")
_OUTCOME_COLUMNS: Final = {
    "id": "outcome_id",
    "event_time": "outcome_time",
    "value": "outcome_value",
    "value_text": "outcome_value_text",
}
_TIME: Final = "datetime64[ns, UTC]"


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
    ignores outcomes later than the prediction time plus the horizon. ``by="each"`` joins each
    outcome by its own key: by prediction id when it has one, else by entity key; a prediction a
    prediction id labels keeps that label. Outcome rows repeating an
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
            f"join by {by!r} is not supported; use 'prediction_id', 'entity_key' or 'each'"
        )
    if by == "each":
        return _join_each(predictions, outcomes, _as_horizon(horizon))
    require_columns(predictions, ("id", "event_time"), "predictions")
    require_columns(outcomes, ("id", "event_time", by, "value"), "outcomes")
    if by == "entity_key":
        require_columns(predictions, ("entity_key",), "predictions")
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


def _join_each(
    predictions: pd.DataFrame, outcomes: pd.DataFrame, limit: pd.Timedelta | None
) -> pd.DataFrame:
    """Outcomes with a prediction id by id, the others by entity key; the id's label wins."""
    require_columns(outcomes, ("id", "event_time", "value"), "outcomes")
    keyed = (
        outcomes["prediction_id"].notna()
        if "prediction_id" in outcomes
        else pd.Series(False, index=outcomes.index)
    )
    by_id = join_outcomes(
        predictions, outcomes[keyed.to_numpy()], by="prediction_id", horizon=limit
    )
    if keyed.all() or "entity_key" not in outcomes or "entity_key" not in predictions:
        return by_id
    rest = outcomes[~keyed.to_numpy()]
    by_key = join_outcomes(predictions, rest, by="entity_key", horizon=limit)
    added = [column for column in by_key.columns if column not in predictions.columns]
    take = (~by_id["labeled"]).to_numpy() & by_key["labeled"].to_numpy()
    joined = by_id.copy()
    joined.loc[take, added] = by_key.loc[take, added].to_numpy()
    joined["n_outcomes"] = joined["n_outcomes"].astype("int64")
    joined["labeled"] = joined["labeled"].astype(bool)
    return joined


def _without_review_decisions(outcomes: pd.DataFrame) -> pd.DataFrame:
    # steward.review logs each reviewer's decision as an outcome "review:<prediction id>"; it says
    # what was done, not what happened, so it must never replace or stand in for a label.
    decided = outcomes["id"].astype("string").str.startswith("review:").fillna(False)
    return outcomes[~decided.to_numpy(dtype=bool)] if decided.any() else outcomes


def require_columns(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """Raise ``InvalidInputError`` naming the ``columns`` that ``frame`` (called ``what``) lacks.

    The message lists the columns the frame has and where the event schemas are documented.
    """
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
