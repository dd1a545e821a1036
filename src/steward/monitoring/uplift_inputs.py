"""The uplift measurement's inputs, checked: its settings, and the frame turned into two arms.

``steward.monitoring.uplift`` measures; this module makes sure there is something sound to measure:
``UpliftSettings`` checks the settings once on the way in, and ``prepare_arms`` checks the frame's
columns (``intended_action``, ``holdout``, the outcome, optionally ``decision``) and keeps the rows
of the intended action as a treated arm and a control arm. Every check raises an
``InvalidInputError`` that names the value at fault and what to do about it.

>>> frame = pd.DataFrame({"intended_action": ["contact", "contact", "none"],
...                       "holdout": [False, True, True], "value": [1, 0, 1]})
>>> prepare_arms(frame, UpliftSettings("contact", "value", 0.95, None, None, 30, "auto")).arms
   treated  value  actioned
0     True    1.0       NaN
1    False    0.0       NaN
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

import numpy as np
import pandas as pd
from pandas.api import types as pandas_types
from pandas.tseries.frequencies import to_offset

from steward.errors import InvalidInputError

__all__ = [
    "DECISION_COLUMN",
    "HOLDOUT_COLUMN",
    "INTENDED_ACTION_COLUMN",
    "OUTCOME_TYPES",
    "PreparedArms",
    "UpliftSettings",
    "check_counts",
    "checked_confidence",
    "checked_offset",
    "checked_times",
    "is_real",
    "is_whole",
    "prepare_arms",
]

HOLDOUT_COLUMN: Final = "holdout"
INTENDED_ACTION_COLUMN: Final = "intended_action"
DECISION_COLUMN: Final = "decision"
OUTCOME_TYPES: Final = ("auto", "binary", "continuous")

OutcomeType = Literal["auto", "binary", "continuous"]


@dataclass(frozen=True)
class UpliftSettings:
    """The measurement's settings, checked once on the way in."""

    action: str
    outcome: str
    confidence: float
    value_per_outcome: float | None
    cost_per_action: float | None
    minimum_per_arm: int
    outcome_type: OutcomeType

    def __post_init__(self) -> None:
        if not isinstance(self.action, str) or not self.action:
            raise InvalidInputError(f"action must be a non-empty action name, got {self.action!r}")
        if self.outcome_type not in OUTCOME_TYPES:
            raise InvalidInputError(
                f"outcome_type={self.outcome_type!r} is unknown; use one of {OUTCOME_TYPES}"
            )
        if not is_whole(self.minimum_per_arm) or self.minimum_per_arm < 2:
            raise InvalidInputError(
                f"minimum_per_arm must be a whole number >= 2, got {self.minimum_per_arm!r}; "
                "the default is 30"
            )
        checked_confidence(self.confidence)
        for name in ("value_per_outcome", "cost_per_action"):
            amount = getattr(self, name)
            if amount is not None and not (is_real(amount) and math.isfinite(amount)):
                raise InvalidInputError(f"{name} must be a finite number or None, got {amount!r}")
        if self.cost_per_action is not None and self.value_per_outcome is None:
            raise InvalidInputError(
                f"cost_per_action={self.cost_per_action!r} needs value_per_outcome, what one unit "
                "of outcome is worth (1.0 if the outcome is already money), to put uplift and cost "
                "in one unit"
            )


def is_real(value: object) -> bool:
    """Whether ``value`` is a real number (Python or NumPy), not a bool."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(value, bool)


def is_whole(value: object) -> bool:
    """Whether ``value`` is a whole number (Python or NumPy integer), not a bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def checked_confidence(confidence: float) -> float:
    """``confidence`` as a float, or ``InvalidInputError`` unless it lies in (0, 1)."""
    if not is_real(confidence) or not 0 < confidence < 1:
        raise InvalidInputError(f"confidence must be in (0, 1), got {confidence!r}; e.g. 0.95")
    return float(confidence)


def checked_offset(freq: str) -> pd.DateOffset:
    """The pandas offset ``freq`` names (``"7D"``, ``"W-MON"``), or ``InvalidInputError``."""
    try:
        return to_offset(freq)
    except (ValueError, TypeError):
        raise InvalidInputError(
            f"freq={freq!r} is not a pandas frequency; use e.g. '7D' or 'W-MON'"
        ) from None


def checked_times(times: pd.Series, time_column: str) -> pd.Series:
    """``times`` unchanged, or ``InvalidInputError`` unless all are timestamps, none missing."""
    if not pandas_types.is_datetime64_any_dtype(times) or times.isna().any():
        raise InvalidInputError(
            f"column {time_column!r} must hold timestamps, none missing; got dtype {times.dtype} "
            f"with {int(times.isna().sum()):,} missing. Convert it with pd.to_datetime(..., utc=True)"
        )
    return times


@dataclass(frozen=True)
class PreparedArms:
    """The rows of the intended action, as given and as the two arms the measurement compares."""

    subset: pd.DataFrame  # the input's rows with the intended action, index reset
    arms: pd.DataFrame  # treated (bool), value (float; NaN: no outcome yet), actioned (float)
    outcome_type: Literal["binary", "continuous"]


def prepare_arms(
    frame: pd.DataFrame, settings: UpliftSettings, extra_columns: Sequence[str] = ()
) -> PreparedArms:
    """The rows of ``frame`` whose ``intended_action`` is ``settings.action``, as two arms.

    ``extra_columns`` (segment or time columns) must exist too. The outcome type is resolved here:
    ``"auto"`` becomes ``"binary"`` when every observed outcome is 0 or 1.
    """
    if not isinstance(frame, pd.DataFrame):
        raise InvalidInputError(
            f"uplift needs a pandas DataFrame, got {type(frame).__name__}; convert it first"
        )
    required = [INTENDED_ACTION_COLUMN, HOLDOUT_COLUMN, settings.outcome, *extra_columns]
    missing = [column for column in dict.fromkeys(required) if column not in frame.columns]
    if missing:
        raise InvalidInputError(
            f"uplift needs column {missing[0]!r}, which the frame lacks (it has "
            f"{_preview([str(column) for column in frame.columns])}); join outcomes to predictions "
            "by prediction id or entity key first, or name the right column"
        )
    if frame.empty:
        raise InvalidInputError("the frame has no rows; there is nothing to measure")
    holdout = _holdout_values(frame[HOLDOUT_COLUMN])
    values = _outcome_values(frame[settings.outcome], settings.outcome)
    outcome_type = _resolved_outcome_type(values, settings)
    if not holdout.any():
        raise InvalidInputError(
            f"none of the {len(frame):,} rows is in the holdout, so there is nothing to compare "
            "with; set `holdout:` (e.g. 0.1) under `policy:` of the system in steward.yaml and "
            "measure again once held-out entities have outcomes"
        )
    intended = frame[INTENDED_ACTION_COLUMN]
    mask = (intended == settings.action).fillna(False).to_numpy(dtype=bool)
    if not mask.any():
        known = sorted({str(value) for value in intended.dropna().unique()})
        raise InvalidInputError(
            f"no row has intended_action {settings.action!r}; the frame's intended actions are "
            f"{_preview(known)}; pass one of them as action="
        )
    actioned = np.full(int(mask.sum()), np.nan)
    if DECISION_COLUMN in frame.columns:
        decisions = frame[DECISION_COLUMN].to_numpy(dtype=object)[mask]
        actioned = (decisions == settings.action).astype(float)
    arms = pd.DataFrame({"treated": ~holdout[mask], "value": values[mask], "actioned": actioned})
    subset = frame.loc[mask].reset_index(drop=True)
    return PreparedArms(subset, arms, outcome_type)


def _preview(names: Sequence[str], limit: int = 12) -> str:
    shown = ", ".join(repr(name) for name in names[:limit])
    return f"[{shown}{', ...' if len(names) > limit else ''}]"


def _holdout_values(column: pd.Series) -> np.ndarray:
    missing = int(column.isna().sum())
    if missing:
        raise InvalidInputError(
            f"column 'holdout' has {missing:,} missing values; every prediction must say whether "
            "it was held out (true or false), so drop or fix those rows"
        )
    if pandas_types.is_bool_dtype(column):
        return column.to_numpy(dtype=bool)
    distinct = pd.unique(column.to_numpy(dtype=object))
    whole = all(isinstance(value, bool | int | np.integer | np.bool_) for value in distinct)
    if whole and set(distinct) <= {0, 1}:
        return column.to_numpy(dtype=object).astype(bool)
    examples = _preview([str(value) for value in distinct], 5)
    raise InvalidInputError(
        f"column 'holdout' must hold true/false, got values like {examples}; convert it to bool"
    )


def _outcome_values(column: pd.Series, name: str) -> np.ndarray:
    if not (pandas_types.is_bool_dtype(column) or pandas_types.is_numeric_dtype(column)):
        raise InvalidInputError(
            f"outcome column {name!r} must be numeric (1/0 such as retained, or an amount), got "
            f"dtype {column.dtype}; convert it, e.g. frame[{name!r}].astype(float)"
        )
    values = column.to_numpy(dtype=float, na_value=np.nan)
    if np.isinf(values).any():
        raise InvalidInputError(
            f"outcome column {name!r} has {int(np.isinf(values).sum()):,} infinite values; "
            "an outcome must be finite, so drop or fix those rows"
        )
    return values


def _resolved_outcome_type(
    values: np.ndarray, settings: UpliftSettings
) -> Literal["binary", "continuous"]:
    observed = values[~np.isnan(values)]
    is_binary = bool(np.isin(observed, (0.0, 1.0)).all())
    if settings.outcome_type == "continuous":
        return "continuous"
    if settings.outcome_type == "binary" and not is_binary:
        odd = observed[~np.isin(observed, (0.0, 1.0))]
        raise InvalidInputError(
            f"outcome_type='binary' but column {settings.outcome!r} holds values other than 0 and "
            f"1 (e.g. {odd[0]:g}); use outcome_type='continuous' or recode the outcome"
        )
    return "binary" if is_binary else "continuous"


def check_counts(successes: int, trials: int, name: str) -> None:
    """Raise ``InvalidInputError`` unless ``0 <= successes <= trials``, whole, with a trial.

    ``name`` is what the caller calls ``successes``, for the message.
    """
    for label, count in ((name, successes), ("trials", trials)):
        if not is_whole(count):
            raise InvalidInputError(f"{label} must be a whole number, got {count!r}")
    if trials < 1 or not 0 <= successes <= trials:
        raise InvalidInputError(
            f"{name}={successes} out of {trials} trials is impossible; "
            "pass 0 <= successes <= trials with at least one trial"
        )
