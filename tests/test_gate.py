"""The eval gate's decision: the paired test against statsmodels, critical cases, thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.contingency_tables import mcnemar

from steward.errors import ConfigError
from steward.llm.evals.assertions import AssertionResult
from steward.llm.evals.runner import CaseResult, EvalResult
from steward.llm.gate import GateOptions, decide, read_gate_options


def result(outcomes: list[bool | None], *, critical: tuple[int, ...] = ()) -> EvalResult:
    cases = [
        CaseResult(
            case_id=f"c{index}",
            description="",
            critical=index in critical,
            vars={},
            output="",
            completion=None,
            assertions=[
                AssertionResult(type="word-count", passed=ok, score=float(bool(ok)), reason="")
            ],
            passed=ok,
            score=None if ok is None else float(ok),
        )
        for index, ok in enumerate(outcomes)
    ]
    return EvalResult(eval_set="set", eval_set_sha256="", provider="echo", cases=cases)


@pytest.mark.parametrize("seed", range(12))
def test_the_p_value_is_the_one_sided_half_of_statsmodels_exact_mcnemar(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(10, 80))
    baseline = [bool(x) for x in rng.random(n) < rng.uniform(0.5, 0.95)]
    candidate = [bool(x) for x in rng.random(n) < rng.uniform(0.3, 0.95)]
    decision = decide(result(candidate), result(baseline))
    worse = sum(b and not c for b, c in zip(baseline, candidate, strict=True))
    better = sum(c and not b for b, c in zip(baseline, candidate, strict=True))
    assert (decision.worse, decision.better, decision.n_pairs) == (worse, better, n)
    if worse + better == 0:
        assert decision.p_value is None and decision.passed
        return
    table = [[0, worse], [better, 0]]
    two_sided = mcnemar(table, exact=True).pvalue
    if worse > better:
        # statsmodels' exact test is two-sided (twice the smaller tail); the gate asks one side.
        assert decision.p_value == pytest.approx(two_sided / 2, rel=1e-9)
    else:
        assert decision.p_value >= 0.5
    assert decision.passed == (decision.p_value >= 0.05)


def test_equal_pass_rates_pass_and_a_critical_failure_fails_alone() -> None:
    same = [True] * 18 + [False] * 2
    assert decide(result(same), result(same)).passed
    critical = decide(result(same, critical=(19,)), result(same))
    assert not critical.passed
    assert critical.critical_failures == ["c19"]
    assert "critical case(s) failed: c19" in critical.summary()


def test_skipped_cases_are_left_out_of_the_pairs_and_counted() -> None:
    candidate = result([True, None, True, False])
    baseline = result([True, True, None, True])
    decision = decide(candidate, baseline)
    assert (decision.n_pairs, decision.skipped, decision.worse) == (2, 2, 1)


def test_thresholds_without_a_baseline(tmp_path: Path) -> None:
    options = GateOptions(min_pass_rate=0.8, assertions={"word-count": 0.9})
    decision = decide(result([True] * 7 + [False] * 3), None, options)
    assert not decision.passed
    assert decision.reasons == [
        "pass rate 70% is below 80%",
        "'word-count' held in 70% of cases, below its threshold 90%",
    ]
    assert "no baseline" in decision.summary()
    assert decide(result([True] * 10), None, options).passed


def test_gate_options_are_read_from_the_eval_set_and_checked(tmp_path: Path) -> None:
    path = tmp_path / "evals.yaml"
    path.write_text("cases: []\ngate: {alpha: 0.01, min_pass_rate: 0.9, assertions: {cost: 1}}\n")
    assert read_gate_options(path) == GateOptions(0.01, 0.9, {"cost": 1.0})
    assert read_gate_options(path, alpha=0.1).alpha == 0.1
    path.write_text("cases: []\ngate: {min_pass_rate: 90}\n")
    with pytest.raises(ConfigError, match="gate.min_pass_rate must be a share between 0 and 1"):
        read_gate_options(path)
    path.write_text("cases: []\ngate: {minimum: 0.9}\n")
    with pytest.raises(ConfigError, match="gate: expects a mapping with alpha"):
        read_gate_options(path)
