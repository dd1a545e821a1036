"""Decision policy: from a model's score to what the system does about an entity.

A :class:`Policy` is plain data with a YAML form (``policy:`` of a system in ``steward.yaml``)::

    policy:
      thresholds:                 # first matching rule wins, in order; score >= at -> action
        - {at: 0.7, action: contact}
        - {at: 0.4, action: email}
      default_action: none
      holdout: 0.1                # share of entities kept out of any action
      review_band: [0.65, 0.75]   # scores in [low, high) go to a person instead
      salt: churn-2026            # the holdout is redrawn only when the salt changes

Three outcomes, in order of precedence:

1. **Holdout.** An entity whose draw (a hash of salt and entity key, uniform in [0, 1)) falls below
   ``holdout`` gets ``default_action``, whatever its score. The action it would have got is kept as
   ``intended_action`` so that uplift can be measured against it.
2. **Review.** A score in ``review_band`` gets the action ``review``; the intended action is kept.
3. **Act.** Otherwise the first threshold with ``score >= at`` names the action, else the default.

The draw uses BLAKE2b, not Python's ``hash()``, so an entity stays in the same arm across processes,
restarts, machines and library versions.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from steward.errors import ConfigError, InvalidInputError

__all__ = [
    "REVIEW_ACTION",
    "Decision",
    "Policy",
    "Threshold",
    "decide",
    "decide_batch",
    "holdout_draw",
]

REVIEW_ACTION = "review"


class Threshold(BaseModel):
    """One rule of a policy: a score at or above ``at`` gets ``action``.

    Example::

        >>> Threshold(at=0.7, action="contact").action
        'contact'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    at: float
    action: str

    @field_validator("at")
    @classmethod
    def _finite(cls, at: float) -> float:
        if not math.isfinite(at):
            raise ValueError(f"'at' must be a finite number, got {at}")
        return at

    @field_validator("action")
    @classmethod
    def _named(cls, action: str) -> str:
        if not action.strip():
            raise ValueError("action must be a non-empty name, got an empty string")
        return action


class Policy(BaseModel):
    """Thresholds, a default, a holdout share and an optional human-review band.

    Example::

        >>> policy = Policy.from_dict({
        ...     "thresholds": [{"at": 0.7, "action": "contact"}, {"at": 0.4, "action": "email"}],
        ...     "holdout": 0.1, "salt": "churn-2026",
        ... })
        >>> policy.intended_action(0.5)
        'email'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    thresholds: tuple[Threshold, ...] = ()
    default_action: str = "none"
    holdout: float = 0.0
    review_band: tuple[float, float] | None = None
    salt: str = ""

    def __init__(self, **data: Any) -> None:
        # Pydantic routes validation from model_validate here too, so every way in says ConfigError.
        try:
            super().__init__(**data)
        except ValidationError as error:
            raise ConfigError(_describe_validation_error(error)) from None

    @model_validator(mode="after")
    def _check_consistency(self) -> Policy:
        problems = _policy_problems(self)
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Policy:
        """Build a policy from its YAML form; errors are :class:`ConfigError` naming the value.

        Example::

            >>> Policy.from_dict({"holdout": 0.05}).holdout
            0.05
        """
        if not isinstance(data, Mapping):
            raise ConfigError(f"policy: expected a mapping, got {type(data).__name__}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form; the optional review band and salt are left out when unset.

        Example::

            >>> Policy(holdout=0.1).to_dict()
            {'thresholds': [], 'default_action': 'none', 'holdout': 0.1}
        """
        return self.model_dump(
            mode="json", exclude_none=True, exclude={"salt"} if not self.salt else None
        )

    def intended_action(self, score: float) -> str:
        """The action the thresholds give ``score``, before holdout and review.

        Example::

            >>> Policy(thresholds=[Threshold(at=0.5, action="call")]).intended_action(0.5)
            'call'
        """
        for threshold in self.thresholds:
            if score >= threshold.at:
                return threshold.action
        return self.default_action

    def in_review_band(self, score: float) -> bool:
        """Whether ``score`` falls in ``[low, high)`` of the review band."""
        band = self.review_band
        return band is not None and band[0] <= score < band[1]


def _policy_problems(policy: Policy) -> list[str]:
    problems = []
    levels = [threshold.at for threshold in policy.thresholds]
    for position in range(1, len(levels)):
        if levels[position] >= levels[position - 1]:
            problems.append(
                f"thresholds must descend (the first match wins), but at {levels[position]} "
                f"(threshold {position + 1}) follows at {levels[position - 1]} (threshold "
                f"{position}); order them from highest to lowest 'at'"
            )
            break
    if not 0.0 <= policy.holdout < 1.0:
        problems.append(
            f"holdout must be in [0, 1), got {policy.holdout}; it is the share of entities kept "
            f"out of any action (0.1 keeps 10%)"
        )
    if policy.review_band is not None:
        low, high = policy.review_band
        if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
            problems.append(
                f"review_band must be [low, high) with low < high, got [{low}, {high}]; "
                f"write the lower score first"
            )
    if not policy.default_action.strip():
        problems.append("default_action must be a non-empty name, got an empty string")
    return problems


def _describe_validation_error(error: ValidationError) -> str:
    problems = []
    for detail in error.errors():
        location = ".".join(str(part) for part in detail["loc"]) or "policy"
        message = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            owner = Threshold if detail["loc"][:1] == ("thresholds",) else Policy
            allowed = ", ".join(sorted(owner.model_fields))
            where = ".".join(str(part) for part in detail["loc"][:-1])
            place = f" in {where}" if where else ""
            problems.append(f"unknown key '{detail['loc'][-1]}'{place}; allowed keys: {allowed}")
        elif detail["type"] == "value_error":
            problems.append(message if location == "policy" else f"{location}: {message}")
        else:
            problems.append(f"{location}: {message} (got {detail.get('input')!r})")
    return "policy: " + "; ".join(problems)


@dataclass(frozen=True, slots=True)
class Decision:
    """What the policy decided for one entity, and why.

    ``intended_action`` is what the thresholds gave; ``action`` is what is done. They differ for
    holdout entities (which get the default) and for scores in the review band (``review``).
    """

    entity_key: str
    score: float
    action: str
    intended_action: str
    holdout: bool
    review: bool
    reason: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "entity_key": self.entity_key,
            "score": self.score,
            "action": self.action,
            "intended_action": self.intended_action,
            "holdout": self.holdout,
            "review": self.review,
            "reason": self.reason,
        }


def holdout_draw(entity_key: str | int, *, salt: str = "") -> float:
    """The entity's fixed draw, uniform in [0, 1): below the holdout share means held out.

    Example::

        >>> holdout_draw("7590-VHVEG", salt="churn-2026") == holdout_draw("7590-VHVEG", salt="churn-2026")
        True
    """
    digest = _salted_hasher(salt)
    digest.update(_key_text(entity_key).encode("utf-8"))
    return _unit(int.from_bytes(digest.digest(), "big"))


def _salted_hasher(salt: str) -> Any:
    # The salt is length-prefixed so that no (salt, key) pair collides with another by concatenation.
    encoded = salt.encode("utf-8")
    return hashlib.blake2b(len(encoded).to_bytes(4, "big") + encoded, digest_size=8)


def _unit(value: int) -> float:
    # The top 53 bits fill a double's mantissa exactly, so the result is < 1.0 without rounding up.
    return (value >> 11) * 2.0**-53


def _key_text(entity_key: Any) -> str:
    if isinstance(entity_key, str):
        return entity_key
    if isinstance(entity_key, int | np.integer) and not isinstance(entity_key, bool | np.bool_):
        return str(int(entity_key))
    raise InvalidInputError(
        f"entity key must be a string or an integer, got {type(entity_key).__name__} "
        f"{entity_key!r}; pass the entity's stable ID as text"
    )


def decide(policy: Policy, score: float, entity_key: str | int) -> Decision:
    """Decide for one entity: holdout first, then the review band, then the thresholds.

    Example::

        >>> policy = Policy.from_dict({"thresholds": [{"at": 0.7, "action": "contact"}]})
        >>> decide(policy, 0.82, "7590-VHVEG").action
        'contact'
    """
    key = _key_text(entity_key)
    value = float(score)
    if math.isnan(value):
        raise InvalidInputError(f"score for entity '{key}' is NaN; score it before deciding")
    intended = policy.intended_action(value)
    if policy.holdout > 0 and holdout_draw(key, salt=policy.salt) < policy.holdout:
        reason = (
            f"entity in the {policy.holdout:.4g} holdout (salt '{policy.salt}'): "
            f"'{policy.default_action}' instead of '{intended}'"
        )
        return Decision(key, value, policy.default_action, intended, True, False, reason)
    if policy.in_review_band(value):
        assert policy.review_band is not None, "in_review_band implies a band"
        low, high = policy.review_band
        reason = f"score {value:.4g} in review band [{low:g}, {high:g}): review, not '{intended}'"
        return Decision(key, value, REVIEW_ACTION, intended, False, True, reason)
    return Decision(key, value, intended, intended, False, False, _threshold_reason(policy, value))


def _threshold_reason(policy: Policy, score: float) -> str:
    for threshold in policy.thresholds:
        if score >= threshold.at:
            return f"score {score:.4g} >= {threshold.at:g}: '{threshold.action}'"
    return f"score {score:.4g} below every threshold: default '{policy.default_action}'"


def decide_batch(
    policy: Policy,
    scores: np.ndarray | Sequence[float],
    entity_keys: Sequence[str | int] | np.ndarray | pd.Series,
) -> pd.DataFrame:
    """Decide for many entities at once; the same decisions as :func:`decide`, without reasons.

    Returns one row per entity with ``entity_key``, ``score``, ``action``, ``intended_action``,
    ``holdout`` and ``review``.

    Example::

        >>> policy = Policy.from_dict({"thresholds": [{"at": 0.5, "action": "call"}]})
        >>> decide_batch(policy, np.array([0.9, 0.1]), ["a", "b"]).action.tolist()
        ['call', 'none']
    """
    values = _checked_scores(scores)
    keys = [_key_text(key) for key in entity_keys]
    if len(keys) != len(values):
        raise InvalidInputError(
            f"got {len(values)} scores but {len(keys)} entity keys; pass one key per score"
        )
    intended = np.full(len(values), policy.default_action, dtype=object)
    # With thresholds descending, assigning from the lowest up leaves the first match in place.
    for threshold in reversed(policy.thresholds):
        intended[values >= threshold.at] = threshold.action
    holdout = _holdout_mask(policy, keys)
    review = np.zeros(len(values), dtype=bool)
    if policy.review_band is not None:
        low, high = policy.review_band
        review = (values >= low) & (values < high) & ~holdout
    action = intended.copy()
    action[review] = REVIEW_ACTION
    action[holdout] = policy.default_action
    return pd.DataFrame(
        {
            "entity_key": keys,
            "score": values,
            "action": action,
            "intended_action": intended,
            "holdout": holdout,
            "review": review,
        }
    )


def _checked_scores(scores: np.ndarray | Sequence[float]) -> np.ndarray:
    try:
        values = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise InvalidInputError(f"scores must be numbers: {error}") from None
    if values.ndim != 1:
        raise InvalidInputError(f"scores must be one-dimensional, got shape {values.shape}")
    missing = np.isnan(values)
    if missing.any():
        raise InvalidInputError(
            f"scores hold NaN at {int(missing.sum())} positions (first at {int(missing.argmax())}); "
            f"score every entity or drop those rows before deciding"
        )
    return values


def _holdout_mask(policy: Policy, keys: list[str]) -> np.ndarray:
    if policy.holdout <= 0 or not keys:
        return np.zeros(len(keys), dtype=bool)
    # One hash per key is the price of a draw that no library upgrade can move; the salted state is
    # hashed once and copied, and the digests become numbers in one vectorized step.
    salted = _salted_hasher(policy.salt)
    digests = bytearray()
    for key in keys:
        hasher = salted.copy()
        hasher.update(key.encode("utf-8"))
        digests += hasher.digest()
    values = np.frombuffer(bytes(digests), dtype=">u8")
    draws = (values >> np.uint64(11)).astype(np.float64) * 2.0**-53
    return draws < policy.holdout
