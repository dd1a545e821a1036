from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

import steward.model.policy as policy_module
from steward.errors import ConfigError, InvalidInputError
from steward.model.policy import (
    REVIEW_ACTION,
    Policy,
    decide,
    decide_batch,
    holdout_draw,
)

SPEC_YAML = """
policy:
  thresholds:
    - {at: 0.7, action: contact}
    - {at: 0.4, action: email}
  default_action: none
  holdout: 0.1
  review_band: [0.65, 0.75]
  salt: churn-2026
"""
# A one-in-a-million false alarm rate keeps the statistical tests quiet unless something is wrong.
ALPHA = 1e-6


@pytest.fixture
def policy() -> Policy:
    return Policy.from_dict(yaml.safe_load(SPEC_YAML)["policy"])


def without(policy: Policy, **changes: Any) -> Policy:
    return Policy.from_dict({**policy.to_dict(), **changes})


def binomial_bounds(n: int, share: float) -> tuple[float, float]:
    low, high = stats.binom.interval(1 - ALPHA, n, share)
    return float(low), float(high)


# --------------------------------------------------------------------------------------------------
# Thresholds


def test_first_threshold_at_or_below_the_score_names_the_action(policy: Policy) -> None:
    plain = without(policy, holdout=0.0, review_band=None)
    high, low = plain.thresholds

    assert decide(plain, high.at, "a").action == high.action
    assert decide(plain, np.nextafter(high.at, 0), "a").action == low.action
    assert decide(plain, low.at, "a").action == low.action
    assert decide(plain, np.nextafter(low.at, 0), "a").action == plain.default_action
    assert decide(plain, 1.0, "a").reason == f"score 1 >= {high.at:g}: '{high.action}'"


def test_a_policy_without_thresholds_always_takes_the_default() -> None:
    policy = Policy(default_action="wait")

    assert {decide(policy, score, "a").action for score in (-1.0, 0.0, 0.5, 9.0)} == {"wait"}


@pytest.mark.parametrize(
    ("written", "named"),
    [
        ({"thresholds": [{"at": 0.4, "action": "a"}, {"at": 0.7, "action": "b"}]}, "at 0.7"),
        ({"thresholds": [{"at": 0.4, "action": "a"}, {"at": 0.4, "action": "b"}]}, "at 0.4"),
        ({"thresholds": [{"at": float("nan"), "action": "a"}]}, "got nan"),
        ({"holdout": 1.0}, "holdout must be in [0, 1), got 1.0"),
        ({"holdout": -0.1}, "got -0.1"),
        ({"review_band": [0.75, 0.65]}, "got [0.75, 0.65]"),
        ({"review_band": [0.5, 0.5]}, "got [0.5, 0.5]"),
        ({"holdot": 0.1}, "unknown key 'holdot'; allowed keys: default_action, holdout"),
        ({"thresholds": [{"at": 0.1, "action": "a", "when": 1}]}, "unknown key 'when' in thresholds.0"),
        ({"thresholds": [{"at": "high", "action": "a"}]}, "got 'high'"),
    ],
)  # fmt: skip
def test_invalid_policies_are_config_errors_naming_the_value(
    written: dict[str, Any], named: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        Policy.from_dict(written)

    assert named in str(caught.value)


def test_yaml_form_round_trips(policy: Policy) -> None:
    written = yaml.safe_load(SPEC_YAML)["policy"]

    assert policy.to_dict() == written
    assert Policy.from_dict(yaml.safe_load(yaml.safe_dump(policy.to_dict()))) == policy


# --------------------------------------------------------------------------------------------------
# Review band


def test_review_band_sends_scores_to_review_and_keeps_the_intended_action(policy: Policy) -> None:
    no_holdout = without(policy, holdout=0.0)
    assert no_holdout.review_band is not None
    low, high = no_holdout.review_band

    inside = decide(no_holdout, low, "a")
    at_high = decide(no_holdout, high, "a")

    assert (inside.action, inside.review, inside.holdout) == (REVIEW_ACTION, True, False)
    assert inside.intended_action == no_holdout.intended_action(low)
    assert "review band" in inside.reason
    assert not at_high.review
    assert at_high.action == no_holdout.intended_action(high)


# --------------------------------------------------------------------------------------------------
# Holdout


def test_holdout_share_over_100k_keys_is_within_binomial_bounds(policy: Policy) -> None:
    keys = [f"customer-{index}" for index in range(100_000)]

    held_out = decide_batch(policy, np.full(len(keys), 0.9), keys).holdout.sum()

    low, high = binomial_bounds(len(keys), policy.holdout)
    assert low <= held_out <= high


def test_holdout_draws_are_uniform_on_the_unit_interval(policy: Policy) -> None:
    draws = [holdout_draw(f"customer-{index}", salt=policy.salt) for index in range(20_000)]

    assert min(draws) >= 0.0 and max(draws) < 1.0
    assert stats.kstest(draws, "uniform").pvalue > ALPHA


def test_holdout_entities_get_the_default_with_the_intended_action_recorded(
    policy: Policy,
) -> None:
    keys = [f"customer-{index}" for index in range(2_000)]
    decisions = [decide(policy, 0.95, key) for key in keys]
    held_out = [decision for decision in decisions if decision.holdout]

    assert held_out
    assert {decision.action for decision in held_out} == {policy.default_action}
    assert {decision.intended_action for decision in held_out} == {policy.intended_action(0.95)}
    assert not any(decision.review for decision in held_out)
    assert all(
        (holdout_draw(decision.entity_key, salt=policy.salt) < policy.holdout) == decision.holdout
        for decision in decisions
    )


def test_holdout_outranks_the_review_band(policy: Policy) -> None:
    assert policy.review_band is not None
    score = policy.review_band[0]
    keys = [f"customer-{index}" for index in range(2_000)]

    decisions = [decide(policy, score, key) for key in keys]

    assert not any(decision.holdout and decision.review for decision in decisions)
    assert {d.action for d in decisions if d.holdout} == {policy.default_action}
    assert {d.action for d in decisions if not d.holdout} == {REVIEW_ACTION}


def test_the_same_key_lands_in_the_same_arm_in_a_fresh_process(policy: Policy) -> None:
    keys = [f"customer-{index}" for index in range(300)]
    here = [decide(policy, 0.9, key).holdout for key in keys]
    script = (
        "import json, sys\n"
        "from steward.model.policy import Policy, decide\n"
        "policy = Policy.from_dict(json.loads(sys.argv[1]))\n"
        "keys = json.loads(sys.argv[2])\n"
        "print(json.dumps([decide(policy, 0.9, key).holdout for key in keys]))\n"
    )
    # A different hash seed proves the arm does not depend on Python's hash().
    environment = {**os.environ, "PYTHONHASHSEED": "12345"}

    finished = subprocess.run(
        [sys.executable, "-c", script, json.dumps(policy.to_dict()), json.dumps(keys)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )

    assert json.loads(finished.stdout) == here
    assert any(here) and not all(here)


def test_holdout_changes_only_when_the_salt_changes(policy: Policy) -> None:
    keys = [f"customer-{index}" for index in range(20_000)]
    scores = np.full(len(keys), 0.9)
    retuned = without(policy, thresholds=[{"at": 0.5, "action": "call"}], review_band=None)
    resalted = without(policy, salt="churn-2027")

    base = decide_batch(policy, scores, keys).holdout.to_numpy()
    same_salt = decide_batch(retuned, scores, keys).holdout.to_numpy()
    new_salt = decide_batch(resalted, scores, keys).holdout.to_numpy()

    assert (same_salt == base).all()
    # A new salt redraws independently: the overlap of the two holdouts is about share squared.
    low, high = binomial_bounds(len(keys), policy.holdout**2)
    assert low <= (base & new_salt).sum() <= high


def test_integer_keys_hash_like_their_text() -> None:
    assert holdout_draw(42, salt="s") == holdout_draw("42", salt="s")


def test_keys_that_are_neither_text_nor_integers_are_refused(policy: Policy) -> None:
    with pytest.raises(InvalidInputError, match="got float 1.5"):
        decide(policy, 0.5, 1.5)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Batch


policies = st.builds(
    lambda levels, holdout, band, salt: Policy(
        thresholds=[
            {"at": level, "action": f"action-{rank}"}
            for rank, level in enumerate(sorted(set(levels), reverse=True))
        ],
        holdout=holdout,
        review_band=band,
        salt=salt,
    ),
    st.lists(st.floats(-1, 2), max_size=4),
    st.one_of(st.just(0.0), st.floats(0, 0.99)),
    st.one_of(
        st.none(),
        st.lists(st.floats(-1, 2), min_size=2, max_size=2, unique=True).map(
            lambda pair: (min(pair), max(pair))
        ),
    ),
    st.text(max_size=8),
)


@settings(max_examples=200, deadline=None)
@given(
    policies,
    st.lists(st.tuples(st.floats(-1, 2), st.one_of(st.text(max_size=12), st.integers())), max_size=40),
)  # fmt: skip
def test_decide_batch_equals_decide_per_record(
    policy: Policy, rows: list[tuple[float, str | int]]
) -> None:
    scores = np.array([score for score, _ in rows], dtype=np.float64)
    keys = [key for _, key in rows]

    batch = decide_batch(policy, scores, keys)

    expected = [decide(policy, score, key) for score, key in rows]
    columns = ["entity_key", "score", "action", "intended_action", "holdout", "review"]
    assert batch.columns.tolist() == columns
    assert batch.to_dict("records") == [
        {column: getattr(decision, column) for column in columns} for decision in expected
    ]


def test_decide_batch_refuses_nan_scores_naming_the_first_position(policy: Policy) -> None:
    scores = np.array([0.1, np.nan, 0.3, np.nan])

    with pytest.raises(InvalidInputError, match="NaN at 2 positions \\(first at 1\\)"):
        decide_batch(policy, scores, ["a", "b", "c", "d"])


def test_decide_batch_refuses_mismatched_lengths(policy: Policy) -> None:
    with pytest.raises(InvalidInputError, match="2 scores but 3 entity keys"):
        decide_batch(policy, np.array([0.1, 0.2]), ["a", "b", "c"])


def test_decide_refuses_a_nan_score(policy: Policy) -> None:
    with pytest.raises(InvalidInputError, match="entity 'a' is NaN"):
        decide(policy, float("nan"), "a")


def test_decision_renders_to_json(policy: Policy) -> None:
    decision = decide(policy, 0.9, "customer-1")

    assert json.loads(json.dumps(decision.to_dict()))["reason"] == decision.reason


def test_module_exports_every_public_name() -> None:
    public = {
        name
        for name, value in vars(policy_module).items()
        if not name.startswith("_") and getattr(value, "__module__", None) == policy_module.__name__
    }

    assert public <= set(policy_module.__all__)
