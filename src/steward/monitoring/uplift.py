"""Did the model move the metric? Uplift of a policy's action, measured against its holdout.

The decision policy (``steward.model.policy``) keeps a random holdout: a held-out entity gets the default
action whatever its score, and the action it would have got is kept as ``intended_action``. The causal
comparison is therefore **within one intended action**: entities the policy meant to ``contact`` that
were contacted (the treated arm) against entities it meant to ``contact`` that were held out (the
control arm). Comparing everyone actioned with the whole holdout would mix in the low-score entities
of the holdout, whose outcomes differ for reasons that have nothing to do with the action.

The treated arm is everyone the policy meant to action and did not hold out, whatever happened next
(a review, a call nobody answered): an intention-to-treat comparison, which keeps the randomization
intact. :func:`uplift` measures one action, :func:`uplift_by_segment` and :func:`uplift_over_time`
per segment and per window, :func:`sample_size_for_uplift` sizes a holdout. ``docs/uplift.md``
explains the interval methods (Newcombe's hybrid score for 0/1 outcomes, Welch's t otherwise).

Example::

    >>> frame = pd.DataFrame({
    ...     "intended_action": ["contact"] * 80,
    ...     "holdout": [False] * 40 + [True] * 40,
    ...     "value": [1] * 30 + [0] * 10 + [1] * 20 + [0] * 20,
    ... })
    >>> result = uplift(frame)
    >>> result.uplift, result.n_treated, result.n_control
    (0.25, 40, 40)
    >>> result.summary("calls", "retention")
    'calls raised retention by 25.0 points (95% CI 3.8 to 43.3, p=0.02; 40 actioned vs 40 held out)'
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types as pandas_types
from scipy import stats

from steward.errors import InvalidInputError
from steward.monitoring.uplift_inputs import (
    DECISION_COLUMN,
    HOLDOUT_COLUMN,
    INTENDED_ACTION_COLUMN,
    OUTCOME_TYPES,
    OutcomeType,
    UpliftSettings,
    check_counts,
    checked_confidence,
    checked_offset,
    checked_times,
    is_real,
    is_whole,
    prepare_arms,
)

__all__ = [
    "DECISION_COLUMN",
    "HOLDOUT_COLUMN",
    "INTENDED_ACTION_COLUMN",
    "OUTCOME_TYPES",
    "UpliftResult",
    "newcombe_interval",
    "sample_size_for_uplift",
    "uplift",
    "uplift_by_segment",
    "uplift_over_time",
    "wilson_interval",
]


Interval = tuple[float, float]

# --- intervals on counts ---------------------------------------------------------------------------


def _z_value(confidence: float) -> float:
    return float(stats.norm.ppf(0.5 + confidence / 2))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95) -> Interval:
    """The Wilson score interval for a proportion ``successes / trials`` (no continuity correction).

    It stays inside [0, 1] and keeps close to its nominal coverage for small counts and rates near
    0 or 1, where the Wald interval fails. Equal to ``scipy.stats.binomtest(...).proportion_ci(
    method="wilson")``.

    >>> [round(bound, 4) for bound in wilson_interval(0, 10)]
    [0.0, 0.2775]
    """
    check_counts(successes, trials, "successes")
    z = _z_value(checked_confidence(confidence))
    rate = successes / trials
    denominator = 1.0 + z * z / trials
    centre = (rate + z * z / (2 * trials)) / denominator
    half_width = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials**2)) / denominator
    # At 0 or n successes one bound is exactly 0 or 1; rounding must not push it past.
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def newcombe_interval(
    successes_treated: int,
    n_treated: int,
    successes_control: int,
    n_control: int,
    confidence: float = 0.95,
) -> Interval:
    """Newcombe's hybrid score interval (1998, method 10) for the difference of two proportions.

    The interval is for ``successes_treated / n_treated - successes_control / n_control``, built
    from the two arms' Wilson intervals ``(l1, u1)`` and ``(l2, u2)``: the difference ``d`` minus
    ``sqrt((p1 - l1)² + (u2 - p2)²)`` to ``d`` plus ``sqrt((u1 - p1)² + (p2 - l2)²)``. Newcombe's
    example (a), 56/70 against 48/80, gives 0.2 with the interval 0.0524 to 0.3339.

    >>> [round(bound, 4) for bound in newcombe_interval(56, 70, 48, 80)]
    [0.0524, 0.3339]
    """
    check_counts(successes_treated, n_treated, "successes_treated")
    check_counts(successes_control, n_control, "successes_control")
    low_treated, high_treated = wilson_interval(successes_treated, n_treated, confidence)
    low_control, high_control = wilson_interval(successes_control, n_control, confidence)
    rate_treated = successes_treated / n_treated
    rate_control = successes_control / n_control
    difference = rate_treated - rate_control
    below = math.hypot(rate_treated - low_treated, high_control - rate_control)
    above = math.hypot(high_treated - rate_treated, rate_control - low_control)
    return difference - below, difference + above


# --- the result ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UpliftResult:
    """What an action did to an outcome: the two arms, their difference, and what it is worth.

    ``treated_mean`` and ``control_mean`` are rates for a 0/1 outcome. Intervals are
    ``(low, high)`` at ``confidence``. When either arm has fewer than ``minimum_per_arm`` rows with
    an outcome, ``enough_data`` is False, ``reason`` says why, and the comparison fields are None.

    >>> frame = pd.DataFrame({"intended_action": "contact", "holdout": [False, True] * 2,
    ...                       "value": [1, 0, 1, 1]})
    >>> uplift(frame).to_dict()["reason"][:44]
    'too few rows to compare: 2 actioned and 2 he'
    """

    action: str
    outcome: str
    outcome_type: str
    method: str
    confidence: float
    n_treated: int
    n_control: int
    n_without_outcome: int
    minimum_per_arm: int
    enough_data: bool
    reason: str | None = None
    treated_mean: float | None = None
    treated_mean_interval: Interval | None = None
    control_mean: float | None = None
    control_mean_interval: Interval | None = None
    uplift: float | None = None
    uplift_interval: Interval | None = None
    relative_uplift: float | None = None
    relative_uplift_interval: Interval | None = None
    p_value: float | None = None
    number_needed_to_treat: float | None = None
    number_needed_to_treat_interval: Interval | None = None
    value_per_outcome: float | None = None
    cost_per_action: float | None = None
    value_per_decision: float | None = None
    value_per_decision_interval: Interval | None = None
    treated_share_actioned: float | None = None

    @property
    def significant(self) -> bool | None:
        """Whether the uplift's interval excludes zero; None without enough data."""
        if self.uplift_interval is None:
            return None
        low, high = self.uplift_interval
        return low > 0 or high < 0

    def to_dict(self) -> dict[str, Any]:
        """A flat, JSON-safe dict: intervals as ``<name>_low``/``<name>_high``, no NaN or inf."""
        flat: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name.endswith("_interval"):
                stem = field.name.removesuffix("_interval")
                low, high = value if value is not None else (None, None)
                flat[f"{stem}_low"], flat[f"{stem}_high"] = _json_number(low), _json_number(high)
            else:
                flat[field.name] = _json_number(value)
        flat["significant"] = self.significant
        flat["summary"] = self.summary()
        return flat

    def summary(self, subject: str | None = None, metric: str | None = None) -> str:
        """One line a person reads; ``subject`` names the action, ``metric`` the outcome.

        Without them the line says ``action 'contact'`` and the outcome column's name.
        """
        subject = subject or f"action {self.action!r}"
        metric = metric or self.outcome
        counts = f"{self.n_treated:,} actioned vs {self.n_control:,} held out"
        if self.uplift is None or self.uplift_interval is None:
            return (
                f"not enough data to tell whether {subject} changed {metric}: {counts} "
                f"(each arm needs at least {self.minimum_per_arm:,} rows with an outcome)"
            )
        scale, unit = (100.0, " points") if self.outcome_type == "binary" else (1.0, "")
        low, high = (bound * scale for bound in self.uplift_interval)
        estimate = self.uplift * scale
        places = _decimals_for(high - low, minimum=1 if unit else 0)
        level = f"{self.confidence * 100:g}% CI"
        if self.significant:
            verb = "raised" if estimate > 0 else "lowered"
            if estimate < 0:
                estimate, low, high = -estimate, -high, -low
            line = f"{subject} {verb} {metric} by {_fixed(estimate, places)}{unit}"
        else:
            shown = _fixed(estimate, places)
            sign = "+" if not shown.startswith("-") else ""
            line = f"{subject} did not measurably change {metric}: {sign}{shown}{unit}"
        line += f" ({level} {_fixed(low, places)} to {_fixed(high, places)}, "
        line += f"{_format_p(self.p_value)}; {counts})"
        if self.value_per_decision is not None and self.value_per_decision_interval is not None:
            value_low, value_high = self.value_per_decision_interval
            places = _decimals_for(value_high - value_low, minimum=0)
            line += (
                f"; worth {_fixed(self.value_per_decision, places)} per decision "
                f"({level} {_fixed(value_low, places)} to {_fixed(value_high, places)})"
            )
        return line


def _json_number(value: Any) -> Any:
    if isinstance(value, bool | str) or value is None:
        return value
    if isinstance(value, int | np.integer):
        return int(value)
    number = float(value)
    return number if math.isfinite(number) else None


def _decimals_for(width: float, minimum: int) -> int:
    # Enough decimals that the interval's width shows about two significant digits.
    if not math.isfinite(width) or width <= 0:
        return max(minimum, 2)
    return min(6, max(minimum, 1 - math.floor(math.log10(width))))


def _fixed(number: float, places: int) -> str:
    # Thousands separators, and never "-0.0": a value that rounds to zero reads as zero.
    rounded = round(number, places) + 0.0
    return f"{rounded:,.{places}f}"


def _format_p(p_value: float | None) -> str:
    if p_value is None:
        return "p not defined"
    if p_value < 0.001:
        return "p<0.001"
    return f"p={p_value:.3f}" if p_value < 0.01 else f"p={p_value:.2f}"


# --- the public measurements -----------------------------------------------------------------------


def uplift(
    frame: pd.DataFrame,
    *,
    action: str = "contact",
    outcome: str = "value",
    confidence: float = 0.95,
    value_per_outcome: float | None = None,
    cost_per_action: float | None = None,
    minimum_per_arm: int = 30,
    outcome_type: OutcomeType = "auto",
) -> UpliftResult:
    """The uplift of ``action`` on ``outcome``: treated against held out, within the intended action.

    ``frame`` holds predictions joined with their outcomes: ``intended_action``, ``holdout`` (bool),
    the ``outcome`` column (1/0 such as retained, or an amount such as revenue; rows still waiting
    for theirs may hold NaN and are counted in ``n_without_outcome``) and, optionally, ``decision``.
    ``outcome_type="auto"`` treats an outcome column holding only 0 and 1 as binary.

    ``value_per_outcome`` (what one unit of outcome is worth) and ``cost_per_action`` give the value
    per decision, ``uplift × value_per_outcome - cost_per_action``, with the uplift's interval
    carried through; the cost needs the value (1.0 if the outcome is already money).

    >>> frame = pd.DataFrame({
    ...     "intended_action": ["contact"] * 80 + ["none"] * 10,
    ...     "holdout": [False] * 40 + [True] * 40 + [True] * 10,
    ...     "value": [1] * 30 + [0] * 10 + [1] * 20 + [0] * 20 + [1] * 10,
    ... })
    >>> result = uplift(frame, value_per_outcome=200.0, cost_per_action=5.0)
    >>> result.value_per_decision, result.number_needed_to_treat
    (45.0, 4.0)
    """
    settings = UpliftSettings(
        action,
        outcome,
        confidence,
        value_per_outcome,
        cost_per_action,
        minimum_per_arm,
        outcome_type,
    )
    prepared = prepare_arms(frame, settings)
    return _measure(prepared.arms, settings, prepared.outcome_type)


def uplift_by_segment(
    frame: pd.DataFrame,
    segment_columns: str | Sequence[str],
    *,
    action: str = "contact",
    outcome: str = "value",
    confidence: float = 0.95,
    value_per_outcome: float | None = None,
    cost_per_action: float | None = None,
    minimum_per_arm: int = 30,
    outcome_type: OutcomeType = "auto",
    bins: int = 4,
) -> pd.DataFrame:
    """:func:`uplift` per segment: one row per combination of the ``segment_columns`` values.

    A numeric column with more than ``bins`` distinct values is cut at its quantiles (over the rows
    of the intended action) into ``bins`` segments labelled ``"low to high"``. Rows hold the segment
    values and :meth:`UpliftResult.to_dict` (without ``summary``), plus ``p_value_adjusted``:
    Benjamini–Hochberg across the segments with enough data, since among many segments some will
    look significant by chance. ``table.attrs["note"]`` says so in words.

    >>> frame = pd.DataFrame({
    ...     "intended_action": ["contact"] * 160,
    ...     "holdout": ([False] * 40 + [True] * 40) * 2,
    ...     "value": [1] * 30 + [0] * 10 + [1] * 20 + [0] * 20 + [1, 0] * 40,
    ...     "plan": ["monthly"] * 80 + ["yearly"] * 80,
    ... })
    >>> table = uplift_by_segment(frame, "plan")
    >>> table[["plan", "uplift", "p_value_adjusted"]].round(3).values.tolist()
    [['monthly', 0.25, 0.042], ['yearly', 0.0, 1.0]]
    """
    columns = [segment_columns] if isinstance(segment_columns, str) else list(segment_columns)
    if not columns:
        raise InvalidInputError("segment_columns is empty; name at least one column to segment by")
    if not is_whole(bins) or bins < 2:
        raise InvalidInputError(f"bins must be a whole number >= 2, got {bins!r}; e.g. bins=4")
    settings = UpliftSettings(
        action,
        outcome,
        confidence,
        value_per_outcome,
        cost_per_action,
        minimum_per_arm,
        outcome_type,
    )
    prepared = prepare_arms(frame, settings, extra_columns=columns)
    keys = [_segment_key(prepared.subset[column], bins) for column in columns]
    grouped = prepared.arms.groupby(keys, dropna=False, sort=True, observed=True)
    table = pd.DataFrame(
        {**dict(zip(columns, labels, strict=True)), **_row(group, settings, prepared.outcome_type)}
        for labels, group in grouped
    )
    return _with_adjusted_p_values(table)


def uplift_over_time(
    frame: pd.DataFrame,
    freq: str = "7D",
    time_column: str = "event_time",
    *,
    action: str = "contact",
    outcome: str = "value",
    confidence: float = 0.95,
    value_per_outcome: float | None = None,
    cost_per_action: float | None = None,
    minimum_per_arm: int = 30,
    outcome_type: OutcomeType = "auto",
) -> pd.DataFrame:
    """:func:`uplift` per time window of ``freq`` (a pandas frequency: ``"7D"``, ``"W-MON"``, ``"MS"``).

    Windows are ``[window_start, window_end)`` on ``time_column`` (the prediction's time, so each
    row counts in the window of the decision), from midnight of the first row's day (from the anchor
    before it for an anchored frequency such as ``"W-MON"``); empty windows are kept as rows
    without enough data. Each window is its own comparison: stopping the first week whose
    p-value dips below 0.05 inflates false positives (see ``docs/uplift.md``).

    >>> frame = pd.DataFrame({
    ...     "intended_action": ["contact"] * 80,
    ...     "holdout": [False, True] * 40,
    ...     "value": [1] * 80,
    ...     "event_time": pd.date_range("2026-03-02", periods=80, freq="6h", tz="UTC"),
    ... })
    >>> table = uplift_over_time(frame, freq="10D", minimum_per_arm=10)
    >>> table[["window_start", "n_treated", "n_control"]].astype(str).values.tolist()
    [['2026-03-02 00:00:00+00:00', '20', '20'], ['2026-03-12 00:00:00+00:00', '20', '20']]
    """
    settings = UpliftSettings(
        action,
        outcome,
        confidence,
        value_per_outcome,
        cost_per_action,
        minimum_per_arm,
        outcome_type,
    )
    offset = checked_offset(freq)
    prepared = prepare_arms(frame, settings, extra_columns=[time_column])
    times = checked_times(prepared.subset[time_column], time_column)
    arms, kind = prepared.arms.assign(_window_time=times.to_numpy()), prepared.outcome_type
    grouped = arms.groupby(pd.Grouper(key="_window_time", freq=offset, closed="left", label="left"))
    return pd.DataFrame(
        {"window_start": start, "window_end": start + offset, **_row(group, settings, kind)}
        for start, group in grouped
    )


def sample_size_for_uplift(
    baseline_rate: float,
    minimum_detectable_uplift: float,
    holdout_fraction: float,
    alpha: float = 0.05,
    power: float = 0.8,
) -> int:
    """How many treated (actioned) entities detect ``minimum_detectable_uplift`` on a 0/1 outcome.

    For the two-sided pooled two-proportion z-test at level ``alpha`` with the given ``power``,
    when the control rate is ``baseline_rate`` and the holdout keeps ``holdout_fraction`` of the
    entities with the intended action (so the control arm has ``n × h / (1 - h)`` of them):
    ``n = (z_{1-α/2} sqrt(p̄(1-p̄)(1 + 1/k)) + z_{power} sqrt(p1(1-p1) + p0(1-p0)/k))² / Δ²`` with
    ``k = h / (1 - h)`` and ``p̄`` the pooled rate. Divide by ``1 - h`` for the entities the policy
    must intend to action in all.

    >>> sample_size_for_uplift(0.2, 0.05, holdout_fraction=0.5)
    1094
    >>> sample_size_for_uplift(0.2, 0.05, holdout_fraction=0.1)
    5594
    """
    shares = {"baseline_rate": baseline_rate, "holdout_fraction": holdout_fraction}
    for name, value in {**shares, "alpha": alpha, "power": power}.items():
        if not is_real(value) or not 0 < value < 1:
            raise InvalidInputError(f"{name} must be strictly between 0 and 1, got {value!r}")
    real = is_real(minimum_detectable_uplift) and minimum_detectable_uplift != 0
    treated_rate = baseline_rate + minimum_detectable_uplift if real else math.nan
    if not 0 < treated_rate < 1:
        raise InvalidInputError(
            f"minimum_detectable_uplift must be non-zero and keep the treated rate in (0, 1), got "
            f"{minimum_detectable_uplift!r} on a baseline of {baseline_rate!r}; pass e.g. 0.02"
        )
    ratio = holdout_fraction / (1 - holdout_fraction)
    pooled = (treated_rate + ratio * baseline_rate) / (1 + ratio)
    null_spread = math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio))
    alternative_spread = math.sqrt(
        treated_rate * (1 - treated_rate) + baseline_rate * (1 - baseline_rate) / ratio
    )
    root = _z_value(1 - alpha) * null_spread + float(stats.norm.ppf(power)) * alternative_spread
    # A hair below an integer is float noise, not a reason to ask for one more entity.
    return math.ceil(root**2 / minimum_detectable_uplift**2 - 1e-9)


# --- the measurement --------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Arm:
    count: int
    total: float
    variance: float  # sample variance (ddof=1); NaN below two rows

    @classmethod
    def of(cls, values: np.ndarray) -> _Arm:
        count = len(values)
        variance = float(np.var(values, ddof=1)) if count > 1 else math.nan
        return cls(count, float(values.sum()), variance)

    @property
    def mean(self) -> float:
        return self.total / self.count


def _measure(arms: pd.DataFrame, settings: UpliftSettings, outcome_type: str) -> UpliftResult:
    values = arms["value"].to_numpy(dtype=float)
    treated = arms["treated"].to_numpy(dtype=bool)
    has_outcome = ~np.isnan(values)
    treated_arm = _Arm.of(values[treated & has_outcome])
    control_arm = _Arm.of(values[~treated & has_outcome])
    actioned = arms["actioned"].to_numpy(dtype=float)[treated]
    known_decisions = bool(np.isfinite(actioned).any())
    z = _z_value(settings.confidence)
    base: dict[str, Any] = {
        "action": settings.action,
        "outcome": settings.outcome,
        "outcome_type": outcome_type,
        "method": "newcombe-hybrid-score" if outcome_type == "binary" else "welch-t",
        "confidence": settings.confidence,
        "n_treated": treated_arm.count,
        "n_control": control_arm.count,
        "n_without_outcome": int((~has_outcome).sum()),
        "minimum_per_arm": settings.minimum_per_arm,
        "value_per_outcome": settings.value_per_outcome,
        "cost_per_action": settings.cost_per_action,
        "treated_share_actioned": float(np.nanmean(actioned)) if known_decisions else None,
    }
    for name, arm in (("treated", treated_arm), ("control", control_arm)):
        base[f"{name}_mean"] = arm.mean if arm.count else None
        base[f"{name}_mean_interval"] = _mean_interval(arm, outcome_type, settings.confidence)
    short = min(treated_arm.count, control_arm.count)
    if short < settings.minimum_per_arm:
        return UpliftResult(**base, enough_data=False, reason=_shortage_reason(base, settings))
    if outcome_type == "binary":
        comparison = _binary_comparison(treated_arm, control_arm, settings.confidence, z)
    else:
        comparison = _continuous_comparison(treated_arm, control_arm, settings.confidence, z)
    comparison.update(
        _value_per_decision(comparison["uplift_interval"], comparison["uplift"], settings)
    )
    return UpliftResult(**base, **comparison, enough_data=True)


def _row(arms: pd.DataFrame, settings: UpliftSettings, outcome_type: str) -> dict[str, Any]:
    # A table row: the result's fields without the sentence, which a table has no room for.
    row = _measure(arms, settings, outcome_type).to_dict()
    del row["summary"]
    return row


def _shortage_reason(base: dict[str, Any], settings: UpliftSettings) -> str:
    waiting = base["n_without_outcome"]
    return (
        f"too few rows to compare: {base['n_treated']:,} actioned and {base['n_control']:,} held "
        f"out with intended_action {settings.action!r} and an outcome; each arm needs at least "
        f"{settings.minimum_per_arm:,}. Widen the window"
        + (f", wait for outcomes ({waiting:,} rows have none yet)" if waiting else "")
        + " or raise the policy's holdout"
    )


def _mean_interval(arm: _Arm, outcome_type: str, confidence: float) -> Interval | None:
    if outcome_type == "binary":
        return wilson_interval(round(arm.total), arm.count, confidence) if arm.count else None
    if arm.count < 2:
        return None
    half_width = float(stats.t.ppf(0.5 + confidence / 2, arm.count - 1)) * math.sqrt(
        arm.variance / arm.count
    )
    return arm.mean - half_width, arm.mean + half_width


def _binary_comparison(treated: _Arm, control: _Arm, confidence: float, z: float) -> dict[str, Any]:
    successes_treated, successes_control = round(treated.total), round(control.total)
    difference = treated.mean - control.mean
    interval = newcombe_interval(
        successes_treated, treated.count, successes_control, control.count, confidence
    )
    pooled = (treated.total + control.total) / (treated.count + control.count)
    null_error = math.sqrt(pooled * (1 - pooled) * (1 / treated.count + 1 / control.count))
    # Both arms all 0 or all 1: no difference is possible under the null, nor observed.
    p_value = 2 * float(stats.norm.sf(abs(difference) / null_error)) if null_error > 0 else 1.0
    relative: dict[str, Any] = {}
    if successes_treated > 0 and successes_control > 0:
        # Katz's log interval for the ratio of two proportions.
        log_error = math.sqrt(
            1 / successes_treated - 1 / treated.count + 1 / successes_control - 1 / control.count
        )
        relative = _relative_uplift(treated.mean / control.mean, log_error, z)
    needed, needed_interval = None, None
    if difference > 0:
        needed = 1 / difference
        if interval[0] > 0:
            needed_interval = (1 / interval[1], 1 / interval[0])
    return {
        "uplift": difference,
        "uplift_interval": interval,
        "p_value": p_value,
        **relative,
        "number_needed_to_treat": needed,
        "number_needed_to_treat_interval": needed_interval,
    }


def _continuous_comparison(
    treated: _Arm, control: _Arm, confidence: float, z: float
) -> dict[str, Any]:
    difference = treated.mean - control.mean
    share_treated = treated.variance / treated.count
    share_control = control.variance / control.count
    error = math.sqrt(share_treated + share_control)
    if error > 0:
        # Welch–Satterthwaite degrees of freedom, as scipy's ttest_ind(equal_var=False).
        freedom = error**4 / (
            share_treated**2 / (treated.count - 1) + share_control**2 / (control.count - 1)
        )
        half_width = float(stats.t.ppf(0.5 + confidence / 2, freedom)) * error
        interval = (difference - half_width, difference + half_width)
        p_value = 2 * float(stats.t.sf(abs(difference) / error, freedom))
    else:
        # Every outcome in each arm is the same: the difference is known exactly.
        interval = (difference, difference)
        p_value = 1.0 if difference == 0 else 0.0
    relative: dict[str, Any] = {}
    if treated.mean > 0 and control.mean > 0:
        # Delta method on the log of the ratio of means.
        log_error = math.sqrt(share_treated / treated.mean**2 + share_control / control.mean**2)
        relative = _relative_uplift(treated.mean / control.mean, log_error, z)
    return {"uplift": difference, "uplift_interval": interval, "p_value": p_value, **relative}


def _relative_uplift(ratio: float, log_error: float, z: float) -> dict[str, Any]:
    # A normal interval on the log of the ratio, mapped back: ratio - 1 is the relative uplift.
    log_ratio = math.log(ratio)
    return {
        "relative_uplift": ratio - 1,
        "relative_uplift_interval": (
            math.expm1(log_ratio - z * log_error),
            math.expm1(log_ratio + z * log_error),
        ),
    }


def _value_per_decision(
    interval: Interval, estimate: float, settings: UpliftSettings
) -> dict[str, Any]:
    if settings.value_per_outcome is None:
        return {}
    worth, cost = settings.value_per_outcome, settings.cost_per_action or 0.0
    # A linear map of the uplift: its interval maps too, flipped when a unit of outcome costs.
    ends = sorted((interval[0] * worth - cost, interval[1] * worth - cost))
    return {
        "value_per_decision": estimate * worth - cost,
        "value_per_decision_interval": (ends[0], ends[1]),
    }


def _segment_key(column: pd.Series, bins: int) -> pd.Series:
    is_number = pandas_types.is_numeric_dtype(column) and not pandas_types.is_bool_dtype(column)
    if not is_number or column.nunique(dropna=True) <= bins:
        return column
    values = column.to_numpy(dtype=float, na_value=np.nan)
    edges = np.unique(np.nanquantile(values, np.linspace(0, 1, bins + 1)))
    labels = [f"{low:.4g} to {high:.4g}" for low, high in itertools.pairwise(edges)]
    # pd.cut's include_lowest keeps the minimum in the first bin; the labels keep bin order.
    return pd.cut(column, edges, labels=labels, include_lowest=True, ordered=True)


def _with_adjusted_p_values(table: pd.DataFrame) -> pd.DataFrame:
    """Add ``p_value_adjusted``: Benjamini–Hochberg across the rows with a p-value, and a note."""
    tested = table["p_value"].notna()
    adjusted = np.full(len(table), np.nan)
    if tested.any():
        p_values = table.loc[tested, "p_value"].to_numpy(dtype=float)
        adjusted[tested.to_numpy()] = stats.false_discovery_control(p_values, method="bh")
    table["p_value_adjusted"] = adjusted
    table.attrs["note"] = (
        f"p_value_adjusted is Benjamini–Hochberg across the {int(tested.sum())} of {len(table)} "
        "segments with enough data; the intervals are per segment, not adjusted, so read a "
        "segment's interval as one look among many"
    )
    return table
